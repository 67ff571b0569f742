#!/usr/bin/env bash
# The watchdog: with comm.timeout_s = 2, the last of 3 ranks sleeps 20 s at
# step 5 while the others wait in an all-reduce. They must abort the job
# (exit code 4) after about 2 s, naming rank, epoch/step and collective.
#
# usage: fault_watchdog.sh MPIEXEC COMM_MPI_TEST
set -u
mpiexec=$1
exe=$2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
t0=$SECONDS
timeout 60 "$mpiexec" -np 3 "$exe" hang 2 >"$log" 2>&1
rc=$?
elapsed=$((SECONDS - t0))
ok=1
[ "$rc" -eq 4 ] || { echo "FAIL: exit code $rc, expected 4 (MPI_Abort by the watchdog)"; ok=0; }
[ "$elapsed" -lt 15 ] || { echo "FAIL: took ${elapsed}s; the watchdog should fire after about 2 s"; ok=0; }
grep -Eq "^dtrain: error: rank [01] of 3 \(host [^)]*\): communication timeout: MPI_Allreduce\(sum, float\) has waited [0-9.]+ s \(comm.timeout_s = 2\) at epoch 1 step 5" "$log" ||
  { echo "FAIL: no timeout message naming rank, collective and step"; ok=0; }
if [ "$ok" -ne 1 ]; then
  echo "----- log -----"
  cat "$log"
  exit 1
fi
echo "watchdog: exit 4 after ${elapsed}s"
grep "communication timeout" "$log" | head -1
