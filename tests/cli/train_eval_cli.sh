#!/usr/bin/env bash
# train -> eval -> recommend from the command line, the run directory's
# contents, the evaluation JSON's keys, and the errors users meet: a bad
# checkpoint, a checkpoint for another model, an unknown user, a NaN model.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d /tmp/dtrain_cli_XXXXXX)
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
cfg="$src/tests/configs/tiny_v3.json"
sets=(--set data.output="$work/data.h5" --set run.dir="$work/run")

"$bin" train --config "$cfg" "${sets[@]}" --epochs 2 --set ckpt.keep_last=1 >"$work/train.out" 2>"$work/train.err" ||
  fail "train: $(tail -5 "$work/train.err")"
grep -q "sampled 1+49" "$work/train.out" || fail "train did not print the metric table"
for f in config.json metrics.jsonl eval_test.json checkpoints/best.h5 checkpoints/last.h5 checkpoints/epoch-0002.h5; do
  [ -f "$work/run/$f" ] || fail "run directory lacks $f"
done
[ -f "$work/run/checkpoints/epoch-0001.h5" ] && fail "ckpt.keep_last=1 kept epoch-0001.h5"
"$py" - "$work/run/metrics.jsonl" <<'EOF' || fail "metrics.jsonl"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if l["type"] == "step"]
epochs = [l for l in lines if l["type"] == "epoch"]
assert steps and len(epochs) == 2, (len(steps), len(epochs))
for k in ("step", "epoch", "loss", "examples_per_sec", "alpha_mean", "grad_norm"):
    assert k in steps[0], k
for k in ("step", "epoch", "loss", "examples_per_sec", "valid"):
    assert k in epochs[0], k
assert "ndcg@10" in epochs[0]["valid"]
assert lines[-1]["type"] == "test"
EOF

# eval: table + JSON with the documented keys
"$bin" eval --checkpoint "$work/run/checkpoints/best.h5" --json "$work/eval.json" >"$work/eval.out" 2>"$work/eval.err" ||
  fail "eval: $(tail -3 "$work/eval.err")"
grep -q "cold start" "$work/eval.out" || fail "eval printed no bucket table"
"$py" - "$work/eval.json" <<'EOF' || fail "eval JSON keys"
import json, sys
r = json.load(open(sys.argv[1]))
for path in ("sampled.ndcg@10", "sampled.hr@10", "sampled.mrr", "full.recall@10", "full.ndcg@10",
             "popularity.sampled.ndcg@10"):
    node = r
    for part in path.split("."):
        node = node[part]
    assert isinstance(node, float), path
assert len(r["alpha_mean"]) == 3
assert [b["name"] for b in r["buckets"]] == ["<=3", "4-10", "11-30", ">30"]
for b in r["buckets"]:
    assert set(b) >= {"name", "users", "ndcg@10", "hr@10", "alpha"}
EOF

# the sampled protocol asks for more negatives than any user has unseen
# items: each is ranked against all of its unseen items, and the report
# counts them (text, JSON, and the JSON's "negatives")
"$bin" eval --checkpoint "$work/run/checkpoints/best.h5" --set eval.negatives=1000 --set eval.protocol=sampled \
  --json "$work/eval_all.json" >"$work/eval_all.out" 2>"$work/eval_all.err" || fail "eval with 1000 negatives: $(tail -3 "$work/eval_all.err")"
grep -qE "sampled 1\+1000 " "$work/eval_all.out" || fail "the table does not say 1+1000: $(cat "$work/eval_all.out")"
grep -qE "[0-9]+ users have fewer than 1000 unseen items" "$work/eval_all.out" || fail "no count of short users in the text report"
"$py" - "$work/eval.json" "$work/eval_all.json" <<'EOF2' || fail "users_fewer_negatives in the eval JSON"
import json, sys
r49, r1000 = (json.load(open(p))["sampled"] for p in sys.argv[1:3])
assert r49["negatives"] == 49 and 0 <= r49["users_fewer_negatives"] < r49["users"], r49
assert r1000["negatives"] == 1000 and r1000["users_fewer_negatives"] == r1000["users"] > 0, r1000
# against every unseen item, popularity and the model rank among all of them
assert r1000["mrr"] < r49["mrr"], (r1000["mrr"], r49["mrr"])
EOF2

# recommend: one user, a batch file, an unknown user
user=$("$py" -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(f['users/ids'][0].decode())" "$work/data.h5") || fail "reading a user id"
"$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --user "$user" -k 5 >"$work/rec.txt" 2>"$work/rec.err" ||
  fail "recommend: $(tail -3 "$work/rec.err")"
[ "$(wc -l <"$work/rec.txt")" -eq 5 ] || fail "recommend -k 5 printed $(wc -l <"$work/rec.txt") lines"
"$py" - "$work/data.h5" "$user" "$work/rec.txt" <<'EOF' || fail "recommend returned a seen item or unsorted scores"
import h5py, sys
f = h5py.File(sys.argv[1])
ids = [x.decode() for x in f["users/ids"][()]]
items = [x.decode() for x in f["items/ids"][()]]
u = ids.index(sys.argv[2])
ptr = f["users/ptr"][()]
seen = {items[i] for i in f["users/items"][ptr[u]:ptr[u + 1]]}
rows = [l.split("\t") for l in open(sys.argv[3]).read().splitlines()]
assert not seen & {r[2] for r in rows}, "seen items recommended"
scores = [float(r[3]) for r in rows]
assert scores == sorted(scores, reverse=True)
EOF
printf '%s\n%s\n' "$user" "$user" >"$work/users.txt"
"$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --users "$work/users.txt" -k 3 --json >"$work/rec.json" ||
  fail "recommend --users"
[ "$(wc -l <"$work/rec.json")" -eq 2 ] || fail "recommend --users: one JSON line per user expected"
# --users naming a directory, a missing file or a file without ids: exit 3
# naming it, never exit 0 with no output
expect_exit 3 "recommend --users DIR" "$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --users "$work"
grep -q "$work.*directory" "$work/err.txt" || fail "recommend --users DIR: $(cat "$work/err.txt")"
expect_exit 3 "recommend --users MISSING" "$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --users "$work/none.txt"
grep -q "none.txt" "$work/err.txt" || fail "recommend --users MISSING: $(cat "$work/err.txt")"
printf '\n\n' >"$work/blank.txt"
expect_exit 3 "recommend --users with no ids" "$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --users "$work/blank.txt"
grep -q "blank.txt.*no user ids" "$work/err.txt" || fail "recommend --users BLANK: $(cat "$work/err.txt")"
printf '%s\n' "$user" | "$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --users - -k 2 >"$work/rec_stdin.txt" ||
  fail "recommend --users - (stdin)"
[ "$(wc -l <"$work/rec_stdin.txt")" -eq 2 ] || fail "recommend --users - printed $(wc -l <"$work/rec_stdin.txt") lines"
expect_exit 3 "unknown user" "$bin" recommend --checkpoint "$work/run/checkpoints/best.h5" --user no-such-user
grep -q "unknown user 'no-such-user'" "$work/err.txt" || fail "unknown user message: $(cat "$work/err.txt")"

# bad checkpoints
echo "not a checkpoint" >"$work/bogus.h5"
expect_exit 3 "eval of a text file" "$bin" eval --checkpoint "$work/bogus.h5"
grep -q "bogus.h5" "$work/err.txt" || fail "the message does not name the file"
expect_exit 3 "eval of a missing file" "$bin" eval --checkpoint "$work/missing.h5"
expect_exit 3 "a v3 checkpoint read as v2" "$bin" eval --checkpoint "$work/run/checkpoints/best.h5" \
  --config "$src/tests/configs/tiny_v2.json" --set data.output="$work/data.h5"
grep -qE "checkpoint .* (has no dataset|has shape)" "$work/err.txt" || fail "mismatch message: $(cat "$work/err.txt")"
expect_exit 3 "model sizes differ" "$bin" eval --checkpoint "$work/run/checkpoints/best.h5" --set model.dim=8
grep -q "has shape" "$work/err.txt" || fail "shape message: $(cat "$work/err.txt")"
expect_exit 2 "eval without --checkpoint" "$bin" eval
expect_exit 2 "bad override" "$bin" train --config "$cfg" --set train.batch_size=0

# a checkpoint whose parameters are NaN: a damaged file, refused when it is
# loaded (exit 3 naming the dataset; issue 11 item 7), and left as it was
cp "$work/run/checkpoints/last.h5" "$work/nan.h5"
"$py" -c "
import h5py, numpy as np, sys
f = h5py.File(sys.argv[1], 'r+')
w = f['params/static.item_bias']
w[...] = np.nan
" "$work/nan.h5" || fail "poisoning a checkpoint"
sum_before=$(md5sum <"$work/nan.h5")
expect_exit 3 "training from NaN parameters" "$bin" train --resume "$work/nan.h5" --set run.dir="$work/nanrun" --epochs 3
grep -q "params/static.item_bias holds a non-finite value" "$work/err.txt" || fail "NaN message: $(tail -3 "$work/err.txt")"
[ "$(md5sum <"$work/nan.h5")" = "$sum_before" ] || fail "the resumed-from checkpoint changed"
echo "train/eval/recommend CLI: ok"
