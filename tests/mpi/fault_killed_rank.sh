#!/usr/bin/env bash
# A rank that is killed (kill -9 from outside), leaves without MPI_Finalize
# (exit code 0 or 3) or crashes (SIGSEGV) mid-loop: the job must end within
# 60 s with a non-zero status, and every surviving rank must print the line
# naming itself and the step it was at.
#
# usage: fault_killed_rank.sh MPIEXEC COMM_MPI_TEST
set -u
mpiexec=$1
exe=$2
work=$(mktemp -d)
mpipid=
cleanup() {
  [ -n "$mpipid" ] && kill "$mpipid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# mpirun sends SIGTERM, waits this many seconds, then SIGKILL (default 1):
# on a loaded, oversubscribed machine a rank spinning in a collective may
# not be scheduled within 1 s to print its line.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-2}
failures=0
fail() {
  echo "FAIL: $*"
  echo "----- log -----"
  cat "$log"
  echo "---------------"
  failures=$((failures + 1))
}

# Waits for mpirun (at most 60 s after the fault); sets rc and elapsed.
wait_job() {
  local t0=$SECONDS
  while kill -0 "$mpipid" 2>/dev/null && [ $((SECONDS - t0)) -lt 60 ]; do sleep 0.2; done
  elapsed=$((SECONDS - t0))
  if kill -0 "$mpipid" 2>/dev/null; then
    kill -9 "$mpipid" 2>/dev/null
    wait "$mpipid" 2>/dev/null
    rc=timeout
  else
    wait "$mpipid"
    rc=$?
  fi
  mpipid=
}

# check_survivors NP DEAD_RANK: every other rank printed its stop line.
check_survivors() {
  local np=$1 dead=$2 r
  for ((r = 0; r < np; r++)); do
    [ "$r" -eq "$dead" ] && continue
    grep -Eq "^dtrain: rank $r of $np \(host [^,]*, pid [0-9]+\) (stopped by|got) SIGTERM at epoch 0 step [0-9]+" "$log" ||
      fail "$scenario: rank $r did not print a line naming itself and its step"
  done
  [ "$rc" != timeout ] || fail "$scenario: the job was still running 60 s after the fault"
  [ "$rc" != 0 ] || fail "$scenario: mpirun exited 0"
  echo "$scenario: mpirun exit $rc after ${elapsed}s"
}

# 1. kill -9 of rank 1 of 2 from outside, mid-loop.
scenario="kill -9"
log=$work/kill.log
"$mpiexec" -np 2 "$exe" loop 100000 20 >"$log" 2>&1 &
mpipid=$!
for _ in $(seq 1 300); do grep -q '^step 20$' "$log" && break; sleep 0.1; done
victim=$(awk '/^rank 1 pid/{print $4}' "$log")
if [ -z "$victim" ] || ! grep -q '^step 20$' "$log"; then
  fail "$scenario: the loop did not start"
else
  kill -9 "$victim"
  wait_job
  check_survivors 2 1
  grep -q "exited on signal 9" "$log" || fail "$scenario: mpirun did not name the killed rank"
fi

# 2./3./4. rank 1 of 3 leaves at step 30: exit 3, exit 0 (no MPI_Finalize), SIGSEGV.
for how in exit exit0 crash; do
  scenario="rank 1 $how"
  log=$work/$how.log
  "$mpiexec" -np 3 "$exe" loop 100000 10 1 30 "$how" >"$log" 2>&1 &
  mpipid=$!
  wait_job
  check_survivors 3 1
done

if [ "$failures" -ne 0 ]; then
  echo "fault tests: $failures failure(s)"
  exit 1
fi
echo "fault tests: all scenarios ended the job with a non-zero status within 60 s, survivors named"
