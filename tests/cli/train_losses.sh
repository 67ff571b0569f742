#!/usr/bin/env bash
# train.loss from the command line: every loss trains v3 and v2 on the tiny
# set (the loss falls over two epochs, validation runs, the step lines carry
# the ranking term), the combinations that cannot run stop with exit 2 and a
# message naming the keys, and `train --dump-step` writes its dump and the
# parameters beside it without updating anything (its contents are checked
# against PyTorch by torch_check_grad.sh; here its structure, with h5py when
# present). Runs in the sanitizer stage too.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d /tmp/dtrain_losses_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code description command...
  local want=$1 what=$2
  shift 2
  "$@" >"$work/out.txt" 2>"$work/err.txt"
  local got=$?
  [ $got -eq "$want" ] || fail "$what: exit $got, expected $want; stderr: $(tail -3 "$work/err.txt")"
}
expect_err() { grep -q -- "$1" "$work/err.txt" || fail "$2: the message does not say '$1': $(tail -3 "$work/err.txt")"; }
v3=(--config "$src/tests/configs/tiny_v3.json" --set data.output="$work/d3.h5")
v2=(--config "$src/tests/configs/tiny_v2.json" --set data.output="$work/d2.h5")
"$bin" prep "${v3[@]}" --quiet >/dev/null || fail "prep v3"
"$bin" prep "${v2[@]}" --quiet >/dev/null || fail "prep v2"

# every loss trains (2 epochs, validation on, no final test evaluation)
for loss in bpr bce sampled_softmax softmax; do
  negs=$([ $loss = softmax ] && echo 1 || echo 4)
  for m in v3 v2; do
    [ $m = v3 ] && cfg=("${v3[@]}") || cfg=("${v2[@]}")
    run="$work/$m-$loss"
    "$bin" train "${cfg[@]}" --set run.dir="$run" --set train.loss=$loss --set train.n_neg=$negs --epochs 2 \
      --set train.softmax_chunk=64 --no-final-eval --quiet >/dev/null 2>"$work/err.txt" ||
      fail "$m train.loss=$loss: $(tail -3 "$work/err.txt")"
    "$py" - "$run/metrics.jsonl" "$loss" $negs $m <<'PY' || fail "$m train.loss=$loss: metrics.jsonl"
import json, math, sys
loss, negs, model = sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if l["type"] == "step"]
epochs = [l for l in lines if l["type"] == "epoch"]
assert len(epochs) == 2 and all("valid" in e for e in epochs), epochs
for s in steps:
    assert math.isfinite(s["loss"]) and "ranking" in s, s
    assert ("bpr" in s) == (loss == "bpr"), s
# the second epoch's ranking term is below that of scores that rank nothing
# (all equal), and v3 (table lr 1e-2) lowers its loss from epoch to epoch
# (v2, the thesis recipe, learns slowly: 0.1% below after 2 epochs with 4
# shared negatives; 10 epochs reach bpr's validation NDCG@10)
uniform = {"bpr": math.log(2), "bce": (1 + negs) * math.log(2), "sampled_softmax": math.log(1 + negs),
           "softmax": math.log(160)}[loss]
late = [s["ranking"] for s in steps if s["epoch"] == 2]
assert sum(late) / len(late) < uniform, (loss, sum(late) / len(late), uniform)
assert model != "v3" or epochs[1]["loss"] < epochs[0]["loss"], (epochs[0]["loss"], epochs[1]["loss"])
PY
  done
done

# combinations that cannot run
expect_exit 2 "an unknown loss" "$bin" train "${v3[@]}" --set train.loss=hinge --max-steps 1
expect_err "train.loss" "an unknown loss"
expect_exit 2 "bpr with 2000 negatives per positive" "$bin" train "${v3[@]}" --set train.n_neg=2000 --max-steps 1 \
  --set run.dir="$work/bad"
expect_err "train.n_neg" "bpr with 2000 negatives per positive"
expect_err "sampled_softmax" "bpr with 2000 negatives per positive"
# ...but sampled_softmax shares that many over the global batch
"$bin" train "${v3[@]}" --set train.loss=sampled_softmax --set train.n_neg=2000 --max-steps 2 --no-final-eval \
  --set run.dir="$work/ss2000" --quiet >/dev/null 2>"$work/err.txt" || fail "sampled_softmax with 2000 shared negatives"
if command -v mpirun >/dev/null && ! "$bin" --version | grep -q "mpi    not compiled"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  expect_exit 2 "--dump-step on two ranks" mpirun -np 2 "$bin" train "${v3[@]}" --dump-step "$work/x.h5" \
    --set run.dir="$work/bad2"
  expect_err "one process" "--dump-step on two ranks"
fi

# --dump-step: the dump and the parameters it started from; nothing trained
"$bin" train "${v2[@]}" --set train.loss=softmax --set train.softmax_chunk=50 --set run.dir="$work/dump" \
  --dump-step "$work/step.h5" >"$work/out.txt" 2>"$work/err.txt" || fail "--dump-step: $(tail -3 "$work/err.txt")"
[ -f "$work/step.h5" ] && [ -f "$work/step.params.h5" ] || fail "--dump-step wrote no step.h5 / step.params.h5"
[ -e "$work/dump/checkpoints" ] && fail "--dump-step trained (a checkpoints directory exists)"
grep -q "torch_grad_check.py" "$work/out.txt" || fail "--dump-step does not say how to check the dump"
if "$py" -c "import h5py, numpy" 2>/dev/null; then
  "$py" - "$work/step.h5" "$work/step.params.h5" <<'PY' || fail "--dump-step: the dump's structure"
import sys, h5py, numpy as np
f, p = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert f.attrs["format"] in ("dtrain-grad-dump", b"dtrain-grad-dump") and f.attrs["format_version"] == 1
assert f.attrs["dropout_off"] == 1 and f.attrs["checkpoint"] in ("step.params.h5", b"step.params.h5")
B, C = f["batch/cands"].shape
assert C == 1 and f["batch/users"].shape == (B,) and f["batch/context"].shape == (B, 5), (B, C)
assert f["out/scores"].shape == (B, 1) and f["out/alpha"].shape == (B, 3)
n_items = p["params/static.item_emb"].shape[0]
rows = f["grad/tables/static.item_emb/rows"][()]
assert len(rows) == n_items and len(np.unique(rows)) == n_items, "softmax touches every item once"
for name in p["params"]:
    if name in ("static.user_emb", "static.item_emb", "dynamic.item_emb"):
        continue
    assert f["grad/dense/" + name].shape == p["params/" + name].shape, name
l = f["loss"].attrs
assert abs(l["total"] - (l["ranking"] + f.attrs["lambda_ent"] * l["entropy"] + f.attrs["lambda_bal"] * l["balance"])) < 1e-9
PY
fi
echo "train losses: ok"
