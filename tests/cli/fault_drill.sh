#!/usr/bin/env bash
# The fault drill (issue 11): training is killed 20 times at random moments,
# with SIGKILL (nothing to clean up with) and SIGTERM (a graceful stop),
# half of them the moment a checkpoint's temporary file appears (during a
# checkpoint write). After each kill every remaining checkpoint must load
# and evaluate (`dtrain eval`), a SIGTERM must have left a last.h5 at the
# step it stopped at, and the next run (resumed from the newest checkpoint,
# as slurm/launch.sh picks it) must continue past that checkpoint's step and
# clear the temporary files the killed run left. At the end metrics.jsonl
# must read as one run. Prints "kills N, checkpoints checked M, lost L" and
# fails unless L is 0.
#
# Label `slow` (about 1-3 minutes): `ctest -L slow` (or `ctest -R
# fault_drill`); DTRAIN_DRILL_KILLS sets the number of kills (default 20),
# DTRAIN_DRILL_SEED the random sequence (default: the time).
# args: dtrain-binary source-root shared-data-dir
set -u
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
kills_wanted=${DTRAIN_DRILL_KILLS:-20}
seed=${DTRAIN_DRILL_SEED:-$(date +%s)}
RANDOM=$seed
work=$(mktemp -d /tmp/dtrain_drill_XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
cfg=$src/tests/configs/tiny_v3.json
"$bin" prep --config "$cfg" --set data.output="$work/data.h5" --quiet >/dev/null || { echo "FAIL: prep"; exit 1; }
run=$work/run
ck=$run/checkpoints
# frequent checkpoints on a tiny model: every epoch (a few hundred ms) writes
# epoch-N.h5, often best.h5, and a kill lands in a write often
common=(--config "$cfg" --set data.output="$work/data.h5" --set run.dir="$run" --set train.epochs=100000
        --set train.patience=0 --set ckpt.every=1 --set ckpt.keep_last=2 --set eval.protocol=sampled --no-final-eval)
has_h5py=0
"$py" -c "import h5py" 2>/dev/null && has_h5py=1
kills=0 checked=0 lost=0 in_write=0
lose() {
  echo "LOST: $*"
  lost=$((lost + 1))
}
global_step() { "$py" -c "import h5py,sys; print(int(h5py.File(sys.argv[1])['state'].attrs['global_step']))" "$1"; }
max_logged_step() {
  "$py" - "$run/metrics.jsonl" <<'EOF'
import json, sys
m = 0
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue  # a torn last line after SIGKILL
    if o.get("type") == "step":
        m = max(m, o["step"])
print(m)
EOF
}

# The next run: resume from the newest checkpoint (last.h5 when newer than
# the newest epoch file), or start over when none is there yet.
start() {
  from_step=0
  args=()
  local latest
  latest=$(find "$ck" -maxdepth 1 -name 'epoch-*.h5' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  if [ -f "$ck/last.h5" ] && { [ -z "$latest" ] || [ "$ck/last.h5" -nt "$ck/$latest" ]; }; then
    args=(--resume "$ck/last.h5")
  elif [ -n "$latest" ]; then
    args=(--resume "$ck/$latest")
  elif [ -e "$run/config.json" ]; then
    args=(--overwrite)
  fi
  if [ "${args[0]:-}" = --resume ] && [ $has_h5py -eq 1 ]; then from_step=$(global_step "${args[1]}"); fi
  # the killed run may have logged steps past that checkpoint: the new one
  # must get past those too (it drops them, then redoes the steps)
  [ -f "$run/metrics.jsonl" ] && before=$(max_logged_step) || before=0
  [ "$before" -gt "$from_step" ] && from_step=$before
  "$bin" train "${common[@]}" "${args[@]}" >/dev/null 2>"$work/train.err" &
  pid=$!
}
# Waits until the run has logged a step past the one it resumed from (and
# past what the killed run logged).
continues() {
  for _ in $(seq 1500); do
    if [ -f "$run/metrics.jsonl" ] && [ "$(max_logged_step)" -gt "$from_step" ]; then return 0; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
  done
  return 1
}

t0=$SECONDS
start
while [ $kills -lt "$kills_wanted" ]; do
  if ! continues; then
    lose "the run started with '${args[*]}' did not continue past step $from_step: $(tail -3 "$work/train.err")"
    kill -9 $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    start
    continue
  fi
  # stale temporary files of the killed run are gone once the next one runs
  stale=$(find "$run" -name '*.tmp.*' ! -name "*.tmp.$pid" 2>/dev/null)
  [ -z "$stale" ] || lose "temporary files of a killed run were not removed: $stale"
  sig=KILL
  [ $((RANDOM % 2)) -eq 0 ] && sig=TERM
  when="at a random moment"
  if [ $((kills % 2)) -eq 1 ]; then
    # the moment a checkpoint is being written (polled; 5 s at most)
    for _ in $(seq 2500); do
      compgen -G "$ck/*.h5.tmp.$pid" >/dev/null && break
      sleep 0.002
    done
    compgen -G "$ck/*.h5.tmp.$pid" >/dev/null && when="during a checkpoint write" && in_write=$((in_write + 1))
  else
    sleep "0.$((RANDOM % 8))$((RANDOM % 10))"
  fi
  kill -$sig $pid 2>/dev/null
  { wait $pid; } 2>/dev/null
  rc=$?
  kills=$((kills + 1))
  expect=$((128 + $(kill -l $sig)))
  [ $rc -eq $expect ] || lose "kill $kills (SIG$sig $when): exit $rc, expected $expect: $(tail -2 "$work/train.err")"
  if [ $sig = TERM ] && [ $rc -eq 143 ] && grep -q "wrote $ck/last.h5" "$work/train.err" && [ $has_h5py -eq 1 ]; then
    # a graceful stop: last.h5 holds every step that was logged
    [ "$(global_step "$ck/last.h5")" -ge "$(max_logged_step)" ] ||
      lose "kill $kills: last.h5 is behind the logged steps after SIGTERM"
  fi
  [ $sig = TERM ] && compgen -G "$run/*.tmp.*" >/dev/null && lose "kill $kills: SIGTERM left temporary files"
  # every checkpoint there loads and evaluates
  n=0
  for c in "$ck"/*.h5; do
    [ -e "$c" ] || continue
    n=$((n + 1))
    "$bin" eval --checkpoint "$c" --set data.output="$work/data.h5" --set eval.protocol=sampled --quiet \
      >/dev/null 2>"$work/eval.err" || lose "kill $kills (SIG$sig $when): $(basename "$c") does not evaluate: $(tail -1 "$work/eval.err")"
  done
  checked=$((checked + n))
  echo "kill $kills: SIG$sig $when (exit $rc), $n checkpoint(s) evaluate: $(cd "$ck" 2>/dev/null && ls | tr '\n' ' ')"
  start
done
# the last run continues, then stops gracefully; metrics.jsonl is one run
continues || lose "the final resume did not continue"
kill -TERM $pid
wait $pid
"$py" - "$run/metrics.jsonl" <<'EOF' || lose "metrics.jsonl does not read as one run"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [o["step"] for o in lines if o["type"] == "step"]
assert steps == list(range(1, len(steps) + 1)), f"step lines are not 1..{len(steps)} once each"
epochs = [o["epoch"] for o in lines if o["type"] == "epoch"]
assert epochs == list(range(1, len(epochs) + 1)), f"epoch lines {epochs}"
print(f"metrics.jsonl: {len(steps)} steps, {len(epochs)} epochs, each once")
EOF
echo "fault drill (seed $seed, $((SECONDS - t0)) s; $in_write kills during a checkpoint write):"
echo "kills $kills, checkpoints checked $checked, lost $lost"
[ $lost -eq 0 ]
