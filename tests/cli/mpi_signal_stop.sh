#!/usr/bin/env bash
# A stop signal under MPI (issue 11 item 8): SIGTERM to one rank only (as
# `kill` of one process does; mpirun and srun signal them all) stops every
# rank at the same step boundary (the ranks agree on it with one small
# all-reduce per step); last.h5 is written, every rank exits 143, and a
# resume on 2 ranks ends bit-identical to an uninterrupted 2-rank run. And
# SIGUSR1 to mpirun, which forwards it to every rank (what launch.sh does
# with the signal Slurm sends before the time limit): the same, exit 138.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
# shellcheck source=lib/mpi_env.sh
. "$src/tests/cli/lib/mpi_env.sh"
mpi_test_env "$bin"
command -v h5diff >/dev/null || { echo "SKIP: h5diff (hdf5-tools) is not installed"; exit 77; }
work=$(mktemp -d /tmp/dtrain_mpisig_XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
"$bin" prep --config "$cfg" --set data.output="$work/data.h5" --quiet >/dev/null || fail "prep"
common=(--config "$cfg" --set data.output="$work/data.h5" --set train.epochs=10 --no-final-eval)
mpirun -np 2 "$bin" train "${common[@]}" --set run.dir="$work/straight" --quiet >/dev/null 2>"$work/straight.err" ||
  fail "straight 2-rank run: $(tail -3 "$work/straight.err")"

# start DIR: a 2-rank run in the background ($mpi), once it logged 30 steps
start() {
  mpirun -np 2 "$bin" train "${common[@]}" --set run.dir="$1" >/dev/null 2>"$1.err" &
  mpi=$!
  for _ in $(seq 1000); do
    [ "$(grep -c '"type":"step"' "$1/metrics.jsonl" 2>/dev/null)" -ge 30 ] 2>/dev/null && return 0
    kill -0 $mpi 2>/dev/null || fail "the run in $1 ended early: $(tail -3 "$1.err")"
    sleep 0.02
  done
  fail "the run in $1 logged no 30 steps in 20 s"
}
# check DIR SIG RC: stopped by SIG with exit RC, resumable bit-identically
check() {
  local dir=$1 sig=$2 rc=$3 want=$4
  [ "$rc" -eq "$want" ] || fail "SIG$sig: mpirun exit $rc, expected $want: $(tail -5 "$dir.err")"
  grep -q "stopped by SIG$sig after" "$dir.err" || fail "SIG$sig: where it stopped is not said: $(tail -5 "$dir.err")"
  [ -f "$dir/checkpoints/last.h5" ] || fail "SIG$sig: no last.h5"
  mpirun -np 2 "$bin" train --resume "$dir/checkpoints/last.h5" --no-final-eval --quiet >/dev/null 2>"$dir.err2" ||
    fail "SIG$sig: resume: $(tail -3 "$dir.err2")"
  for g in /params /optim; do
    h5diff "$work/straight/checkpoints/last.h5" "$dir/checkpoints/last.h5" $g >/dev/null ||
      fail "SIG$sig: $g differs from the uninterrupted 2-rank run after the resume"
  done
}

# SIGTERM to one rank only
start "$work/one"
victim=$(pgrep -P $mpi -f "dtrain" | tail -n 1)
[ -n "$victim" ] || fail "no rank process under mpirun $mpi"
kill -TERM "$victim"
wait $mpi
rc=$?
[ "$(grep -c "got SIGTERM" "$work/one.err")" -eq 1 ] || fail "SIGTERM reached more than the one rank: $(cat "$work/one.err")"
check "$work/one" TERM $rc 143
echo "SIGTERM to one of 2 ranks: both stopped at one step boundary, exit 143, resumed bit-identical"

# SIGUSR1 to mpirun: forwarded to both ranks
start "$work/usr1"
kill -USR1 $mpi
wait $mpi
rc=$?
check "$work/usr1" USR1 $rc 138
echo "SIGUSR1 to mpirun: both ranks stopped, exit 138, resumed bit-identical"
echo "MPI stop signals: ok"
