#!/usr/bin/env bash
# Resume is exact on the CPU backend: 4 epochs straight equal 2 epochs +
# resume + 2 epochs, bit for bit (every parameter, every optimizer moment
# and per-row step), and likewise when stopped inside an epoch; the SASRec
# encoder (dynamic_only) likewise.
# args: dtrain-binary source-root shared-data-dir
set -u
# Debian's python3 (h5py, numpy, torch come from Debian packages)
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
command -v h5diff >/dev/null || { echo "SKIP: h5diff (hdf5-tools) is not installed"; exit 77; }
work=$(mktemp -d /tmp/dtrain_resume_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg="$src/tests/configs/tiny_v3.json"
common=(--config "$cfg" --set data.output="$work/data.h5" --no-final-eval --quiet)

"$bin" train "${common[@]}" --set run.dir="$work/straight" || fail "straight run"
steps=$("$py" -c '
import json,sys
ep=[json.loads(l) for l in open(sys.argv[1]) if "\"epoch\"" in l]
print([e["step"] for e in ep if e.get("type")=="epoch"][1])' "$work/straight/metrics.jsonl") || fail "reading metrics"
[ "$steps" -gt 0 ] || fail "no steps in the straight run"

# stop at the end of epoch 2, resume for epochs 3-4
"$bin" train "${common[@]}" --set run.dir="$work/split" --max-steps "$steps" || fail "first half"
[ -f "$work/split/checkpoints/last.h5" ] || fail "no last.h5 after --max-steps"
"$bin" train "${common[@]}" --set run.dir="$work/split" --resume "$work/split/checkpoints/last.h5" || fail "resumed half"
h5diff "$work/straight/checkpoints/last.h5" "$work/split/checkpoints/last.h5" /params >/dev/null ||
  fail "parameters differ after resume at an epoch boundary: $(h5diff -q "$work/straight/checkpoints/last.h5" "$work/split/checkpoints/last.h5" /params 2>&1 | head -5)"
h5diff "$work/straight/checkpoints/last.h5" "$work/split/checkpoints/last.h5" /optim >/dev/null ||
  fail "optimizer state differs after resume at an epoch boundary"

# stop inside epoch 2 (step 1.5 epochs), resume with the stored config only
mid=$((steps * 3 / 4))
"$bin" train "${common[@]}" --set run.dir="$work/mid" --max-steps "$mid" || fail "first part (mid-epoch)"
"$bin" train --resume "$work/mid/checkpoints/last.h5" --no-final-eval --quiet || fail "resume mid-epoch"
h5diff "$work/straight/checkpoints/last.h5" "$work/mid/checkpoints/last.h5" /params >/dev/null ||
  fail "parameters differ after resume inside an epoch"

# the loss lines of the resumed run continue the straight run's exactly
"$py" - "$work/straight/metrics.jsonl" "$work/split/metrics.jsonl" <<'EOF' || fail "loss curves differ"
import json, sys
def losses(p):
    return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if j.get("type") == "step"}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert a.keys() == b.keys(), (len(a), len(b))
bad = [s for s in a if a[s] != b[s]]
assert not bad, f"steps {bad[:5]}: {[(a[s], b[s]) for s in bad[:5]]}"
EOF
# the SASRec encoder and dynamic_only (dropout on every token site, the
# positional table dense): stopped inside epoch 2 of 3, resumed
sas=(--set model.encoder=sasrec --set model.variant=dynamic_only --set train.epochs=3)
"$bin" train "${common[@]}" "${sas[@]}" --set run.dir="$work/sas_straight" || fail "sasrec straight run"
"$bin" train "${common[@]}" "${sas[@]}" --set run.dir="$work/sas_mid" --max-steps "$((steps * 3 / 4))" ||
  fail "sasrec first part (mid-epoch)"
"$bin" train --resume "$work/sas_mid/checkpoints/last.h5" --no-final-eval --quiet || fail "sasrec resume mid-epoch"
for part in /params /optim; do
  h5diff "$work/sas_straight/checkpoints/last.h5" "$work/sas_mid/checkpoints/last.h5" $part >/dev/null ||
    fail "sasrec: $part differs after resume inside an epoch"
done
echo "resume: bit-identical at an epoch boundary and inside an epoch ($steps steps per 2 epochs), sasrec too"
