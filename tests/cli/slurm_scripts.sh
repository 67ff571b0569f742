#!/usr/bin/env bash
# slurm/*.sbatch and slurm/launch.sh without a cluster: stand-in sbatch,
# scontrol, srun and mpirun record what they are asked. Checks: run with
# bash outside a job, the scripts submit themselves and ask for a GPU per
# task exactly when backend.name is cuda; inside a job, a copy of the script
# in a spool directory (as sbatch runs it) finds the checkout from the
# submitted path that scontrol reports, from any working directory; srun's
# MPI plugin is DTRAIN_SRUN_MPI and mpirun takes over when srun lacks it;
# a CUDA job without GPUs gets a warning; the account/partition
# placeholders are there and inert. Stop signals (issue 11 item 8):
# train.sbatch asks for SIGUSR1 before the time limit; launch.sh forwards
# it to the launcher and requeues the job when dtrain stopped; a requeued
# job resumes from last.h5 when it is newer than the newest epoch
# checkpoint, and starts over (--overwrite) when it stopped before any.
# Args: dtrain-binary source-root shared-data-dir
set -uo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$2
T=$(mktemp -d /tmp/dtrain_slurm_scripts_XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

fake=$T/bin
mkdir -p "$fake" "$T/spool/job42" "$T/work"
cat >"$fake/sbatch" <<'SH'
#!/usr/bin/env bash
echo "SBATCH $*" >>"$FAKE_LOG"
SH
cat >"$fake/scontrol" <<'SH'
#!/usr/bin/env bash
if [ "$1" = requeue ]; then echo "SCONTROL requeue $2" >>"$FAKE_LOG"; exit 0; fi
[ "$1 $2" = "show job" ] || exit 1
echo "JobId=$3 JobName=dtrain"
echo "   Command=$FAKE_COMMAND"
echo "   WorkDir=/somewhere"
SH
cat >"$fake/srun" <<'SH'
#!/usr/bin/env bash
if [ "$1" = "--mpi=list" ]; then printf 'MPI plugin types are...\n\tnone\n%b' "$FAKE_MPI_PLUGINS"; exit 0; fi
echo "SRUN $*" >>"$FAKE_LOG"
if [ -n "${FAKE_SRUN_WAIT:-}" ]; then # a training that stops on SIGUSR1 as dtrain does: exit 128 + 10
  trap 'echo "SRUN got USR1" >>"$FAKE_LOG"; exit 138' USR1
  echo "SRUN running" >>"$FAKE_LOG"
  for _ in $(seq 300); do sleep 0.1; done
  exit 0
fi
SH
cat >"$fake/mpirun" <<'SH'
#!/usr/bin/env bash
echo "MPIRUN $*" >>"$FAKE_LOG"
SH
chmod +x "$fake"/*
export PATH=$fake:$PATH FAKE_LOG=$T/log FAKE_MPI_PLUGINS='\tpmi2\n\tpmix\n'
unset SLURM_JOB_ID SLURM_ARRAY_TASK_ID DTRAIN_ROOT DTRAIN_SBATCH_ARGS CUDA_VISIBLE_DEVICES
export DTRAIN_BIN=$bin
cfg=$src/tests/configs/tiny_v3.json

# ---- outside a job: submit, with GPUs for cuda only ----
(cd / && bash "$src/slurm/train.sbatch" --config "$cfg" --set backend.name=cuda >"$T/out" 2>&1) || fail "submit: $(cat "$T/out")"
grep -q "^SBATCH --gpus-per-task=1 $src/slurm/train.sbatch --config $cfg --set backend.name=cuda$" "$T/log" ||
  fail "cuda submit: $(cat "$T/log")"
: >"$T/log"
(cd / && bash "$src/slurm/train.sbatch" --config "$cfg" >"$T/out" 2>&1) || fail "cpu submit: $(cat "$T/out")"
grep -q "^SBATCH $src/slurm/train.sbatch --config $cfg$" "$T/log" || fail "cpu submit asked for: $(cat "$T/log")"
: >"$T/log"
(cd / && DTRAIN_SET="backend.name=cuda" DTRAIN_SBATCH_ARGS="--gres=gpu:2 --nodes=2" \
  bash "$src/slurm/ablation.sbatch" --config "$cfg" >"$T/out" 2>&1) || fail "ablation submit: $(cat "$T/out")"
grep -q "^SBATCH --gres=gpu:2 --nodes=2 $src/slurm/ablation.sbatch --config $cfg$" "$T/log" ||
  fail "a user's own GPU request should be kept as is: $(cat "$T/log")"
: >"$T/log"
(cd / && bash "$src/slurm/train.sbatch" --set model.dim=0 >"$T/out" 2>&1) && fail "an invalid config was submitted"
[ -s "$T/log" ] && fail "an invalid config reached sbatch"

# ---- inside a job: sbatch's copy in its spool directory, another working directory ----
for s in train ablation; do
  cp "$src/slurm/$s.sbatch" "$T/spool/job42/slurm_script"
  : >"$T/log"
  (cd "$T/work" && SLURM_JOB_ID=42 SLURM_NTASKS=2 SLURM_ARRAY_TASK_ID=2 FAKE_COMMAND=$src/slurm/$s.sbatch \
    bash "$T/spool/job42/slurm_script" --config "$cfg" --set backend.name=cpu >"$T/out" 2>&1) ||
    fail "$s in a job: $(cat "$T/out")"
  grep -q "^SRUN --mpi=pmix --kill-on-bad-exit=1 $bin train --set backend.threads=1 --config $cfg --set backend.name=cpu" \
    "$T/log" || fail "$s launched: $(cat "$T/log") / $(cat "$T/out")"
done
grep -q -- "--set model.variant=no_content --set run.name=ablation-no_content$" "$T/log" || fail "array task 2: $(cat "$T/log")"
# Slurm reporting the command relative to the submit directory
cp "$src/slurm/train.sbatch" "$T/spool/job42/slurm_script"
: >"$T/log"
(cd "$T/work" && SLURM_JOB_ID=42 SLURM_SUBMIT_DIR=$src FAKE_COMMAND=slurm/train.sbatch \
  bash "$T/spool/job42/slurm_script" --config "$cfg" >"$T/out" 2>&1) || fail "relative Command=: $(cat "$T/out")"
grep -q "^SRUN" "$T/log" || fail "relative Command=: $(cat "$T/out")"
# no way to find the checkout: a clear error
(cd "$T/work" && SLURM_JOB_ID=42 FAKE_COMMAND=/nonexistent/train.sbatch bash "$T/spool/job42/slurm_script" >"$T/out" 2>&1)
[ $? -eq 2 ] && grep -q "launch.sh not found.*DTRAIN_ROOT" "$T/out" || fail "lost script: $(cat "$T/out")"

# ---- the launcher: DTRAIN_SRUN_MPI, the mpirun fallback, the GPU warning ----
run_job() { (cd "$T/work" && SLURM_JOB_ID=42 FAKE_COMMAND=$src/slurm/train.sbatch \
  bash "$T/spool/job42/slurm_script" --config "$cfg" "$@" >"$T/out" 2>&1) || fail "job: $(cat "$T/out")"; }
: >"$T/log"
DTRAIN_SRUN_MPI=pmi2 run_job
grep -q "^SRUN --mpi=pmi2 " "$T/log" || fail "DTRAIN_SRUN_MPI=pmi2: $(cat "$T/log")"
: >"$T/log"
FAKE_MPI_PLUGINS='\tpmi2\n' run_job
grep -q "^MPIRUN " "$T/log" || fail "no pmix in srun: $(cat "$T/log")"
grep -q "srun offers no 'pmix' MPI plugin.*using mpirun" "$T/out" || fail "the fallback is not said: $(cat "$T/out")"
: >"$T/log"
FAKE_MPI_PLUGINS='\tpmi2\n' DTRAIN_LAUNCHER=srun run_job
grep -q "^SRUN --mpi=pmix " "$T/log" || fail "an explicit DTRAIN_LAUNCHER=srun: $(cat "$T/log")"
run_job --set backend.name=cuda
grep -q "warning: backend.name is cuda but Slurm gave this job no GPUs" "$T/out" || fail "no GPU warning: $(cat "$T/out")"
CUDA_VISIBLE_DEVICES=0 run_job --set backend.name=cuda
grep -q "warning: backend.name is cuda" "$T/out" && fail "a warning although the job has a GPU"

# ---- stop signals: SIGUSR1 before the time limit, forwarded, then a requeue ----
grep -q '^#SBATCH --signal=B:USR1@120$' "$src/slurm/train.sbatch" || fail "train.sbatch does not ask for SIGUSR1 before the time limit"
cp "$src/slurm/train.sbatch" "$T/spool/job42/slurm_script"
: >"$T/log"
cd "$T/work" || fail "cd"
SLURM_JOB_ID=42 FAKE_COMMAND=$src/slurm/train.sbatch FAKE_SRUN_WAIT=1 \
  bash "$T/spool/job42/slurm_script" --config "$cfg" >"$T/out" 2>&1 &
job=$!
for _ in $(seq 100); do grep -q "SRUN running" "$T/log" && break; sleep 0.1; done
grep -q "SRUN running" "$T/log" || fail "the stand-in srun did not start: $(cat "$T/out")"
kill -USR1 $job
wait $job
rc=$?
cd / || fail "cd"
[ $rc -eq 138 ] || fail "the job script after SIGUSR1: exit $rc, expected dtrain's 138: $(cat "$T/out")"
grep -q "SRUN got USR1" "$T/log" || fail "SIGUSR1 was not forwarded to srun: $(cat "$T/log") / $(cat "$T/out")"
grep -q "SCONTROL requeue 42" "$T/log" || fail "the stopped job was not requeued: $(cat "$T/log") / $(cat "$T/out")"
# resume: last.h5 when newer than the newest epoch checkpoint, else that epoch
ckd=$T/work/runs/tiny_v3/checkpoints
mkdir -p "$ckd"
touch -d "2020-01-01 10:00" "$ckd/epoch-0002.h5"
touch -d "2020-01-01 09:00" "$ckd/epoch-0001.h5"
touch -d "2020-01-01 11:00" "$ckd/last.h5"
: >"$T/log"
run_job
grep -q -- "--resume runs/tiny_v3/checkpoints/last.h5" "$T/log" || fail "a newer last.h5 was not resumed from: $(cat "$T/log")"
touch -d "2020-01-01 08:00" "$ckd/last.h5"
: >"$T/log"
run_job
grep -q -- "--resume runs/tiny_v3/checkpoints/epoch-0002.h5" "$T/log" || fail "an older last.h5 was picked: $(cat "$T/log")"
rm -f "$ckd"/*.h5
: >"$T/log"
SLURM_RESTART_COUNT=1 run_job
grep -q -- "--overwrite" "$T/log" || fail "a requeue without checkpoints does not start over: $(cat "$T/log")"
: >"$T/log"
run_job
grep -q -- "--overwrite" "$T/log" && fail "a first start passed --overwrite"
rm -rf "$T/work/runs"

# ---- placeholders for the site's account and partition, inert until edited ----
for s in train ablation; do
  grep -q '^##SBATCH --account=<account>$' "$src/slurm/$s.sbatch" || fail "$s.sbatch lacks the --account placeholder"
  grep -q '^##SBATCH --partition=<partition>$' "$src/slurm/$s.sbatch" || fail "$s.sbatch lacks the --partition placeholder"
done
grep -q -- "--mpi=pmix" "$src/slurm/launch.sh" && fail "launch.sh still hard-codes --mpi=pmix"
echo "ok"
