#!/usr/bin/env bash
# metrics.jsonl reads as one run after a resume (issue 11 item 10): the
# lines past the checkpoint's step (what a killed run wrote after its last
# checkpoint, its test line, a half-written last line) are dropped before
# the resumed run appends, so every step and epoch appears once, in order,
# with the values of an uninterrupted run. Before the fix: the resumed
# run's lines repeated steps and epochs after the old ones.
# args: dtrain-binary source-root shared-data-dir
set -u
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
work=$(mktemp -d /tmp/dtrain_metrics_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
common=(--config "$cfg" --set data.output="$work/data.h5" --set eval.protocol=sampled --quiet)
"$bin" train "${common[@]}" --set run.dir="$work/straight" >/dev/null || fail "straight run"

# as if killed during epoch 4's checkpoint: the run directory as it ended,
# resumed from epoch-0002.h5 (epochs 3 and 4 were logged already)
cp -r "$work/straight" "$work/resumed"
"$bin" train "${common[@]}" --set run.dir="$work/resumed" --resume "$work/resumed/checkpoints/epoch-0002.h5" \
  >/dev/null 2>"$work/err.txt" || fail "resume: $(tail -3 "$work/err.txt")"

# one_run STRAIGHT RESUMED: RESUMED reads as one run with STRAIGHT's values
one_run() {
  "$py" - "$1" "$2" <<'EOF'
import json, sys
def lines(p):
    return [json.loads(l) for l in open(p)]
a, b = lines(sys.argv[1]), lines(sys.argv[2])
steps = [o["step"] for o in b if o["type"] == "step"]
assert steps == sorted(set(steps)), f"step lines repeat or go back: {steps[:60]}"
epochs = [o["epoch"] for o in b if o["type"] == "epoch"]
assert epochs == list(range(1, len(epochs) + 1)), f"epoch lines: {epochs}"
tests = [o for o in b if o["type"] == "test"]
assert len(tests) == 1 and b[-1]["type"] == "test", f"{len(tests)} test lines, last line {b[-1]['type']}"
loss = lambda ls: {o["step"]: o["loss"] for o in ls if o["type"] == "step"}
assert loss(a) == loss(b), "step losses differ from the uninterrupted run"
ep = lambda ls: [(o["epoch"], o["step"], o["valid"]["ndcg@10"]) for o in ls if o["type"] == "epoch"]
assert ep(a) == ep(b), f"epoch lines differ: {ep(a)} vs {ep(b)}"
print(f"{len(steps)} step lines, epochs {epochs}, one test line")
EOF
}
one_run "$work/straight/metrics.jsonl" "$work/resumed/metrics.jsonl" || fail "metrics.jsonl after a resume from epoch 2"

# a half-written last line (killed while writing it) and a resume from the end
cp -r "$work/straight" "$work/torn"
printf '{"type":"step","epoch":5,"step":9' >>"$work/torn/metrics.jsonl"
"$bin" train "${common[@]}" --set run.dir="$work/torn" --resume "$work/torn/checkpoints/last.h5" \
  >/dev/null 2>"$work/err.txt" || fail "resume after a torn line: $(tail -3 "$work/err.txt")"
one_run "$work/straight/metrics.jsonl" "$work/torn/metrics.jsonl" || fail "metrics.jsonl after a torn last line"
echo "metrics.jsonl: one run after resumes"
