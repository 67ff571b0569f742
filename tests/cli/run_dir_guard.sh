#!/usr/bin/env bash
# The run directory (issue 11 items 2, 3, 9):
# - a fresh `train` into a directory holding an earlier run refuses (exit 2)
#   naming --resume, --overwrite and another run.name, and touches nothing;
#   --overwrite removes exactly the earlier run's files (no old epoch file
#   mixed into the new run) and keeps the user's own files;
# - a second training into a directory in use stops with exit 2 naming the
#   holder's host and pid, and the first one finishes unharmed; a lock file
#   left by a killed run is no obstacle;
# - temporary files of dtrain's names left by processes that are gone are
#   removed at start, those of a live process are left alone.
# Before the fix: the second run wiped the first (exit 0), two concurrent
# runs both exited 0, temporary files piled up.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
work=$(mktemp -d /tmp/dtrain_rundir_XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
"$bin" prep --config "$cfg" --set data.output="$work/data.h5" --quiet >/dev/null || fail "prep"
run=$work/run
common=(--config "$cfg" --set data.output="$work/data.h5" --set run.dir="$run" --no-final-eval)

# ---- 2. an earlier run is refused, or replaced with --overwrite ----
"$bin" train "${common[@]}" --quiet || fail "first run"
[ -f "$run/checkpoints/epoch-0004.h5" ] || fail "the first run wrote no epoch-0004.h5"
sums() { (cd "$run" && find . -type f ! -name dtrain.lock -exec md5sum {} + | sort); }
before=$(sums)
"$bin" train "${common[@]}" --epochs 2 --quiet 2>"$work/err.txt"
rc=$?
[ $rc -eq 2 ] || fail "a fresh run into an existing run directory: exit $rc, expected 2"
for way in "--resume $run/checkpoints/last.h5" "--overwrite" "run.name"; do
  grep -qF -- "$way" "$work/err.txt" || fail "the refusal does not name '$way': $(cat "$work/err.txt")"
done
[ "$(sums)" = "$before" ] || fail "the refused run changed the earlier run's files"

echo "my notes" >"$run/notes.txt"
echo "mine" >"$run/checkpoints/mine.txt"
"$bin" train "${common[@]}" --epochs 2 --overwrite 2>"$work/err.txt" >/dev/null || fail "--overwrite: $(tail -3 "$work/err.txt")"
grep -q "removed the earlier run's" "$work/err.txt" || fail "--overwrite does not say what it removed"
grep -q "kept what dtrain did not write there: checkpoints/mine.txt, notes.txt" "$work/err.txt" ||
  fail "--overwrite does not say what it kept: $(grep overwrite "$work/err.txt")"
[ -f "$run/notes.txt" ] && [ -f "$run/checkpoints/mine.txt" ] || fail "--overwrite removed the user's files"
for old in epoch-0003.h5 epoch-0004.h5; do
  [ -e "$run/checkpoints/$old" ] && fail "--overwrite left the earlier run's $old mixed into the new run"
done
[ -f "$run/checkpoints/epoch-0002.h5" ] || fail "--overwrite: the new run wrote no epoch-0002.h5"
epochs=$(grep -c '"type":"epoch"' "$run/metrics.jsonl")
[ "$epochs" -eq 2 ] || fail "--overwrite: metrics.jsonl has $epochs epoch lines, expected the new run's 2"
"$bin" train "${common[@]}" --overwrite --resume "$run/checkpoints/last.h5" --quiet 2>/dev/null
[ $? -eq 2 ] || fail "--overwrite with --resume should be a usage error"
echo "earlier run: refused (exit 2) with the three ways on; --overwrite removed its files and kept the user's"

# ---- 3. the lock ----
slow=(--config "$cfg" --set data.output="$work/data.h5" --set run.dir="$work/busy" --no-final-eval
      --set train.epochs=400 --set train.eval_every=0 --set ckpt.every=0)
"$bin" train "${slow[@]}" --quiet >/dev/null 2>"$work/first.txt" &
first=$!
for _ in $(seq 300); do
  grep -q '"type":"step"' "$work/busy/metrics.jsonl" 2>/dev/null && break
  sleep 0.1
done
kill -0 $first 2>/dev/null || fail "the first training ended early: $(tail -3 "$work/first.txt")"
"$bin" train "${slow[@]}" --overwrite --quiet 2>"$work/err.txt" >/dev/null
rc=$?
[ $rc -eq 2 ] || fail "a second training into a directory in use: exit $rc, expected 2"
grep -q "in use by another training (host $(hostname), pid $first" "$work/err.txt" ||
  fail "the refusal does not name the holder (host $(hostname), pid $first): $(cat "$work/err.txt")"
kill -0 $first 2>/dev/null || fail "the first training died when the second started"
kill -TERM $first
wait $first
rc=$?
[ $rc -eq 143 ] || fail "the first training stopped by SIGTERM exited $rc, expected 143: $(tail -3 "$work/first.txt")"
grep -q '"type":"step"' "$work/busy/metrics.jsonl" || fail "metrics.jsonl of the first training lost its lines"
"$(command -v /usr/bin/python3 || command -v python3)" - "$work/busy/metrics.jsonl" <<'EOF' || fail "metrics.jsonl of the first training is not valid JSON lines"
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)
EOF
# the lock file of that (now ended) run stays, and is no obstacle
[ -s "$work/busy/dtrain.lock" ] || fail "no lock file with the holder's text"
"$bin" train "${slow[@]}" --resume "$work/busy/checkpoints/last.h5" --set train.epochs=1 --quiet >/dev/null 2>"$work/err.txt" ||
  fail "a stale lock file stopped the next run: $(tail -3 "$work/err.txt")"
echo "lock: a second training exited 2 naming host $(hostname) and pid $first; a stale lock file is no obstacle"

# ---- 9. stale temporary files ----
dead=4194000
while kill -0 $dead 2>/dev/null; do dead=$((dead - 1)); done
touch "$run/checkpoints/epoch-0003.h5.tmp.$dead" "$run/checkpoints/last.h5.tmp.$dead" "$run/metrics.jsonl.tmp.$dead" \
  "$run/checkpoints/best.h5.tmp.$$"
"$bin" train "${common[@]}" --resume "$run/checkpoints/epoch-0002.h5" --epochs 3 --quiet ||
  fail "resume with stale temporary files"
for f in checkpoints/epoch-0003.h5.tmp.$dead checkpoints/last.h5.tmp.$dead metrics.jsonl.tmp.$dead; do
  [ -e "$run/$f" ] && fail "stale $f (pid $dead is gone) was not removed"
done
[ -e "$run/checkpoints/best.h5.tmp.$$" ] || fail "the temporary file of a live process ($$) was removed"
find "$run" -name "*.tmp.*" ! -name "*.tmp.$$" | grep -q . &&
  fail "temporary files left after a run: $(find "$run" -name '*.tmp.*')"
echo "stale temporary files of gone processes removed, a live one's kept"
echo "run directory: ok"
