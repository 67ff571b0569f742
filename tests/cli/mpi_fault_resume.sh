#!/usr/bin/env bash
# A rank killed mid-training: the other stops within 60 s naming itself and
# its step, the job exits non-zero, the last completed checkpoint stays
# loadable, and training resumes from it.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
# shellcheck source=lib/mpi_env.sh
. "$src/tests/cli/lib/mpi_env.sh"
mpi_test_env "$bin"
# the grace between mpirun's SIGTERM and SIGKILL (slurm/README.md, "Faults")
export OMPI_MCA_odls_base_sigkill_timeout=2
work=$(mktemp -d /tmp/dtrain_fault_XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
common=(--config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --set run.dir="$work/run"
        --set train.epochs=200 --set train.patience=1000 --set ckpt.keep_last=2 --no-final-eval --quiet)
"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --quiet >/dev/null || fail prep

mpirun -np 2 "$bin" train "${common[@]}" >"$work/out.txt" 2>"$work/err.txt" &
mpi=$!
# two epochs done (keep_last=2 may already have removed epoch-0002.h5 when
# the machine is fast: any later epoch counts)
two_epochs() { ls "$work"/run/checkpoints/epoch-*.h5 2>/dev/null | grep -qv "epoch-0001.h5"; }
for _ in $(seq 600); do
  two_epochs && break
  kill -0 $mpi 2>/dev/null || fail "training ended early: $(tail -3 "$work/err.txt")"
  sleep 0.1
done
two_epochs || fail "no checkpoint after epoch 2 within 60 s"
victim=$(pgrep -P $mpi -f dtrain | tail -n 1)
[ -n "$victim" ] || fail "no rank process found under mpirun $mpi"
killed_at=$(date +%s)
kill -9 "$victim"
wait $mpi
rc=$?
took=$(($(date +%s) - killed_at))
[ $rc -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
[ $took -lt 60 ] || fail "the surviving rank took $took s to stop"
# the survivor's line: "got SIGTERM" while it waits to stop at a step
# boundary (it never gets there: its peer is gone), "stopped by" if the
# signal came outside the training loop
grep -qE "rank [01] of 2 .*(got|stopped by) SIGTERM at epoch [0-9]+ step [0-9]+" "$work/err.txt" ||
  fail "no line naming the surviving rank and its step: $(tail -5 "$work/err.txt")"

newest=$(ls "$work"/run/checkpoints/epoch-*.h5 | sort | tail -n 1)
"$bin" eval --checkpoint "$newest" --set eval.protocol=sampled --quiet >/dev/null || fail "the newest checkpoint $newest is not loadable"
done_epochs=$(basename "$newest" .h5 | sed 's/epoch-0*//')
mpirun -np 2 "$bin" train "${common[@]}" --resume "$newest" --set train.epochs=$((done_epochs + 2)) >/dev/null 2>"$work/err2.txt" ||
  fail "resume after the fault: $(tail -3 "$work/err2.txt")"
[ -f "$work/run/checkpoints/epoch-$(printf %04d $((done_epochs + 2))).h5" ] || fail "resumed training wrote no later epoch"
grep -m1 -E "(got|stopped by) SIGTERM" "$work/err.txt"
echo "fault: a killed rank stopped the job in $took s (exit $rc); resumed from $(basename "$newest")"
