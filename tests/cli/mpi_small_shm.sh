#!/usr/bin/env bash
# Shared-memory windows live in Open MPI's backing directory (/dev/shm, a
# tmpfs; a container's is often 64 MB). When it is too small, auto falls back
# to the copying dense update with a warning that names the directory and
# the fix, and trains; comm.dense_update=shared_memory stops with exit 4 and
# the same advice. A 256 KB tmpfs stands in for a small /dev/shm (needs
# root and mount; skips otherwise).
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
# shellcheck source=lib/mpi_env.sh
. "$src/tests/cli/lib/mpi_env.sh"
mpi_test_env "$bin"
work=$(mktemp -d /tmp/dtrain_small_shm_XXXXXX)
shm="$work/shm"
mkdir -p "$shm"
trap 'umount "$shm" 2>/dev/null; rm -rf "$work"' EXIT
mount -t tmpfs -o size=256k tmpfs "$shm" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here (needs root)"; exit 77; }
export OMPI_MCA_osc_sm_backing_directory="$shm"
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
common=(--config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --max-steps 5 --no-final-eval)
"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --quiet >/dev/null || fail prep

mpirun -np 2 "$bin" train "${common[@]}" --set run.dir="$work/auto" >"$work/auto.out" 2>&1 ||
  fail "auto with a small backing directory: $(tail -3 "$work/auto.out")"
grep -q "dense update: sharded, not shared_memory: it needs .* MB in $shm, which has .* MB free" "$work/auto.out" ||
  fail "no fallback warning: $(grep -i "dense update" "$work/auto.out")"

mpirun -np 2 "$bin" train "${common[@]}" --set comm.dense_update=shared_memory --set run.dir="$work/forced" \
  >"$work/forced.out" 2>&1
rc=$?
[ $rc -eq 4 ] || fail "comm.dense_update=shared_memory with a small backing directory exited $rc, not 4"
grep -q "comm.dense_update=shared_memory needs .* MB in $shm, which has .* MB free" "$work/forced.out" ||
  fail "no message naming the directory: $(grep error "$work/forced.out" | head -2)"
echo "small shared memory: auto fell back to the sharded dense update; shared_memory stopped with exit 4"
