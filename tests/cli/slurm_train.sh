#!/usr/bin/env bash
# A real single-node Slurm cluster (tools/slurm_local.sh: private munged,
# slurmctld, slurmd on this machine) runs slurm/train.sbatch with the CPU
# backend on 2 tasks via `sbatch --wait`, on a tiny synthetic data set; the
# job's runs/<name>/metrics.jsonl must have epoch lines. Then a stop
# signal: SIGUSR1 to a running job's batch script stops dtrain with last.h5
# and requeues the job, and the next start resumes from last.h5. The
# daemons are stopped on every exit path.
#
# Before that, a 2-task MPI job (tests/mpi/comm_mpi_test under
# srun --mpi=pmix) checks the cluster half alone, so a failure says whether
# Slurm/MPI or the trainer broke.
#
# usage: slurm_train.sh DTRAIN_BINARY SOURCE_ROOT SHARED_DATA_DIR
# Skips (77) without slurmctld/slurmd/munged, without root, or when dtrain
# was built without MPI.
set -u
bin=$1
src=$2
for prog in slurmctld slurmd munged mungekey sbatch sinfo; do
  if ! command -v "$prog" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$prog" ]; then
    echo "skipped: $prog is not installed (Debian: apt-get install slurmctld slurmd slurm-client munge)"
    exit 77
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: the private Slurm cluster needs root (slurmd, munged)"
  exit 77
fi
if ! "$bin" --version | grep -Eq '^ +mpi +[^ n]'; then
  echo "skipped: $bin was built without MPI (2 tasks would be 2 separate runs)"
  exit 77
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
builddir=$(dirname "$bin")

work=$(mktemp -d /tmp/dtrain-slurm-test.XXXXXX)
chmod 755 "$work"
export DTRAIN_SLURM_DIR=$work/cluster
cleanup() {
  bash "$src/tools/slurm_local.sh" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

show() { # show FILE...: print files for the log of a failed run
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "----- $f"
    tail -n 60 "$f"
  done
}

t0=$SECONDS
env_line=$(bash "$src/tools/slurm_local.sh" start) || {
  rc=$?
  [ $rc -eq 77 ] && exit 77
  echo "FAIL: tools/slurm_local.sh start failed"
  show "$DTRAIN_SLURM_DIR"/log/*
  exit 1
}
eval "$env_line"
echo "cluster up after $((SECONDS - t0))s ($SLURM_CONF)"

# ---- 1. the cluster half: 2 MPI ranks through srun + PMIx ----
hello=$builddir/tests/mpi/comm_mpi_test
if [ -x "$hello" ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  if ! timeout 120 sbatch --wait --quiet --ntasks=2 --output="$work/hello.out" --error="$work/hello.out" \
    --wrap "srun --mpi=pmix $hello collectives"; then
    echo "FAIL: a 2-task MPI job did not succeed on the local cluster"
    show "$work/hello.out" "$DTRAIN_SLURM_DIR"/log/slurmctld.log "$DTRAIN_SLURM_DIR"/log/slurmd.log
    exit 1
  fi
  if ! grep -q "np 2: [0-9]* passed, 0 failed" "$work/hello.out"; then
    echo "FAIL: the 2-task MPI job did not report 2 ranks passing"
    show "$work/hello.out"
    exit 1
  fi
  echo "cluster half ok: $(grep 'np 2:' "$work/hello.out")"
fi

# ---- 2. slurm/train.sbatch with the trainer ----
if "$bin" train --help 2>&1 | grep -q "not built yet"; then
  echo "skipped: the cluster works (2-task MPI job above), but 'dtrain train' is not built yet, so there is no"
  echo "         metrics file to check; this test passes once the trainer lands"
  exit 77
fi
name=slurm-test
sets="backend.name=cpu run.name=$name data.format=synthetic data.output=$work/data/dataset.h5
data.synthetic.users=300 data.synthetic.items=120 data.synthetic.interactions=6000 data.kcore=3
data.tfidf_terms=200 data.history_len=10 model.dim=16 model.gru_hidden=16 model.content_hidden1=32
model.content_hidden2=16 model.gate_hidden=8 model.head_hidden=8 model.static_hidden=16 train.epochs=2
train.batch_size=256 train.patience=0 eval.protocol=sampled eval.negatives=20 comm.timeout_s=120"
set_args=()
for kv in $sets; do set_args+=(--set "$kv"); done
if [ ! -f "$work/data/dataset.h5" ] && ! "$bin" prep --help 2>&1 | grep -q "not built yet"; then
  mkdir -p "$work/data"
  if ! (cd "$work" && "$bin" prep "${set_args[@]}" >"$work/prep.log" 2>&1); then
    echo "FAIL: dtrain prep of the tiny synthetic data set failed"
    show "$work/prep.log"
    exit 1
  fi
fi
t1=$SECONDS
# DTRAIN_* reach the job through sbatch's default --export=ALL. No
# DTRAIN_ROOT, submitted from another directory: the script finds the
# checkout from its own (submitted) location.
(cd / && DTRAIN_BIN=$bin DTRAIN_WORKDIR=$work DTRAIN_SET=$sets \
  timeout 480 sbatch --wait --quiet --nodes=1 --ntasks=2 --cpus-per-task=1 --chdir="$work" \
  --output="$work/train.out" --error="$work/train.err" "$src/slurm/train.sbatch")
rc=$?
echo "sbatch --wait slurm/train.sbatch: exit $rc after $((SECONDS - t1))s"
metrics=$work/runs/$name/metrics.jsonl
if [ $rc -ne 0 ]; then
  echo "FAIL: the training job failed"
  show "$work/train.out" "$work/train.err" "$DTRAIN_SLURM_DIR"/log/slurmd.log
  exit 1
fi
if [ ! -s "$metrics" ] || ! grep -q '"epoch"' "$metrics"; then
  echo "FAIL: $metrics is missing or has no line with \"epoch\""
  ls -lR "$work/runs" 2>/dev/null
  show "$work/train.out" "$work/train.err"
  exit 1
fi
echo "ok: $(grep -c '"epoch"' "$metrics") metrics lines with \"epoch\" in runs/$name/metrics.jsonl"

# ---- 3. a stop signal before the time limit (issue 11 item 8) ----
# train.sbatch has Slurm send its batch script SIGUSR1 two minutes before the
# time limit; `scancel --signal=USR1 --batch` sends the same now. launch.sh
# forwards it through srun to both ranks, dtrain stops at the next step
# boundary with last.h5 (exit 138), and the job requeues itself. Slurm holds
# a requeued job a few minutes before it starts it again, so the test
# cancels it there and starts the next run itself: the same start the
# requeue makes, which resumes from last.h5.
name=slurm-signal
sig_sets=$(sed "s/run.name=slurm-test/run.name=$name/; s/train.epochs=2/train.epochs=20/; s/batch_size=256/batch_size=64/" <<<"$sets")
submit() { # submit OUT [--wait]
  (cd / && DTRAIN_BIN=$bin DTRAIN_WORKDIR=$work DTRAIN_SET=$sig_sets \
    timeout 480 sbatch --parsable "${@:2}" --nodes=1 --ntasks=2 --cpus-per-task=1 --chdir="$work" \
    --output="$work/$1.out" --error="$work/$1.err" "$src/slurm/train.sbatch")
}
t1=$SECONDS
jid=$(submit sig1) || { echo "FAIL: sbatch of the signal job"; exit 1; }
metrics=$work/runs/$name/metrics.jsonl
for _ in $(seq 240); do
  grep -q '"type":"step"' "$metrics" 2>/dev/null && break
  sleep 0.5
done
grep -q '"type":"step"' "$metrics" 2>/dev/null || { echo "FAIL: the signal job logged no step"; show "$work/sig1.out" "$work/sig1.err"; exit 1; }
scancel --signal=USR1 --batch "$jid" || { echo "FAIL: scancel --signal=USR1 --batch"; exit 1; }
for _ in $(seq 120); do
  grep -q "requeueing job $jid" "$work/sig1.out" 2>/dev/null && break
  sleep 0.5
done
scontrol hold "$jid" >/dev/null 2>&1
restarts=$(scontrol show job "$jid" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
scancel "$jid" 2>/dev/null
if ! grep -q "requeueing job $jid" "$work/sig1.out" || [ "${restarts:-0}" -lt 1 ]; then
  echo "FAIL: SIGUSR1 did not end in a requeue (Restarts=${restarts:-?})"
  show "$work/sig1.out" "$work/sig1.err"
  exit 1
fi
grep -q "dtrain exited with 138" "$work/sig1.out" && grep -q "stopped by SIGUSR1 after" "$work/sig1.err" &&
  [ -f "$work/runs/$name/checkpoints/last.h5" ] || {
  echo "FAIL: dtrain did not stop with last.h5 on SIGUSR1"
  show "$work/sig1.out" "$work/sig1.err"
  exit 1
}
echo "SIGUSR1 to the batch script: dtrain stopped with last.h5 (exit 138), job $jid requeued (Restarts=$restarts)"
submit sig2 --wait >/dev/null
rc=$?
if [ $rc -ne 0 ] || ! grep -q "resuming from runs/$name/checkpoints/last.h5" "$work/sig2.out"; then
  echo "FAIL: the next start did not resume from last.h5 and finish (exit $rc)"
  show "$work/sig2.out" "$work/sig2.err"
  exit 1
fi
if command -v python3 >/dev/null && ! python3 - "$metrics" <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [o["step"] for o in lines if o["type"] == "step"]
assert steps == sorted(set(steps)), "steps repeat or go back"
assert [o["epoch"] for o in lines if o["type"] == "epoch"] == list(range(1, 21)), "epochs"
PY
  echo "FAIL: $metrics does not read as one run after the stop and the resume"
  exit 1
fi
echo "ok: the resumed job finished from last.h5 after $((SECONDS - t1))s; metrics.jsonl reads as one run"
