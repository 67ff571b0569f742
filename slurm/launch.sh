#!/usr/bin/env bash
# slurm/launch.sh: starts `dtrain train` on the job's tasks; run by
# train.sbatch and ablation.sbatch inside an allocation (see slurm/README.md).
# `launch.sh --submit SCRIPT ARGS...` (what the .sbatch scripts do when run
# with bash outside a job) submits SCRIPT with sbatch instead, asking for one
# GPU per task when the merged config's backend.name is cuda.
#
# Arguments are passed to `dtrain train` (e.g. --set key=value,
# --check-replicas 100). Environment:
#   DTRAIN_ROOT      repository checkout (default: the one holding this script)
#   DTRAIN_BIN       the dtrain binary (default: $DTRAIN_ROOT/build/dtrain)
#   DTRAIN_WORKDIR   where the job runs; relative paths such as runs/<name>
#                    resolve here (default: the job's working directory,
#                    i.e. sbatch --chdir or the submit directory)
#   DTRAIN_CONFIG    config file (--config)
#   DTRAIN_SET       overrides, whitespace-separated key=value pairs
#   DTRAIN_LAUNCHER  auto (default: srun when it offers the MPI plugin
#                    DTRAIN_SRUN_MPI, else mpirun) | srun | mpirun
#   DTRAIN_SRUN_MPI  srun's --mpi plugin (default pmix; `srun --mpi=list`)
#   DTRAIN_RESUME    auto (default: <run dir>/checkpoints/last.h5 when it is
#                    newer than the newest epoch-*.h5, else that epoch
#                    checkpoint) | none | a checkpoint file
#   DTRAIN_REQUEUE   yes (default): after a stop signal (SIGUSR1 or SIGTERM,
#                    e.g. train.sbatch's --signal before the time limit)
#                    dtrain writes last.h5 and this script requeues the job,
#                    which resumes from it | no
#   DTRAIN_SRUN_ARGS / DTRAIN_MPIRUN_ARGS  extra launcher arguments
#   DTRAIN_SBATCH_ARGS  extra sbatch options for --submit
set -u

say() { echo "[launch $(date '+%F %T')] $*"; }
die() {
  echo "[launch] error: $*" >&2
  exit 2
}

submit_script=
if [ "${1:-}" = --submit ]; then
  submit_script=${2:-}
  [ -f "$submit_script" ] || die "--submit needs the .sbatch script to submit"
  shift 2
fi
root=${DTRAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
bin=${DTRAIN_BIN:-$root/build/dtrain}
workdir=${DTRAIN_WORKDIR:-$PWD}
launcher=${DTRAIN_LAUNCHER:-auto}
srun_mpi=${DTRAIN_SRUN_MPI:-pmix}
[ -x "$bin" ] || die "dtrain binary '$bin' not found or not executable: build it (cmake --build build) or set DTRAIN_BIN"
[ -n "$submit_script" ] || cd "$workdir" || die "cannot enter DTRAIN_WORKDIR '$workdir'"

# ---- the configuration arguments, in order: file, job defaults, env, args ----
cfg_args=()
[ -n "${DTRAIN_CONFIG:-}" ] && cfg_args+=(--config "$DTRAIN_CONFIG")
# One thread per CPU Slurm gave the task (backend.threads=0 would count the
# whole node); later --set arguments override this.
cfg_args+=(--set "backend.threads=${SLURM_CPUS_PER_TASK:-1}")
for kv in ${DTRAIN_SET:-}; do cfg_args+=(--set "$kv"); done
# Pick the configuration options out of the arguments too, so the run
# directory below is the one the trainer will use.
explicit_resume=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  a=${args[i]}
  case $a in
    --config | -c | --set) cfg_args+=("$a" "${args[i + 1]:-}"); i=$((i + 1)) ;;
    --config=* | --set=*) cfg_args+=("$a") ;;
    --resume | --resume=*) explicit_resume=1 ;;
  esac
done

# ---- the merged configuration ----
merged=$("$bin" config "${cfg_args[@]}") || die "the configuration is invalid (dtrain config said why above)"
config_field() { # config_field SECTION KEY: SECTION.KEY of the merged configuration
  if command -v jq >/dev/null 2>&1; then
    jq -r ".$1.$2" <<<"$merged"
  else # cJSON's pretty print: one key per line inside the section's object
    awk -v s="\"$1\":" -v k="\"$2\":" '$1 == s && /^\t"/ {r = 1; next} r && /^\t}/ {exit}
      r && $1 == k {v = $0; sub(/^[^:]*:[ \t]*"?/, "", v); sub(/"?,?[ \t]*$/, "", v); print v; exit}' <<<"$merged"
  fi
}
backend=$(config_field backend name)

# ---- --submit: sbatch the script, with GPUs for the CUDA backend ----
if [ -n "$submit_script" ]; then
  command -v sbatch >/dev/null 2>&1 || die "sbatch not found: run this on a Slurm login node (or submit with sbatch yourself)"
  # shellcheck disable=SC2206
  sb=(${DTRAIN_SBATCH_ARGS:-})
  if [ "$backend" = cuda ] && ! printf '%s\n' "${sb[@]}" | grep -q -- '--gpus\|--gres'; then
    sb+=(--gpus-per-task=1)
  fi
  say "backend.name is $backend: sbatch ${sb[*]} $submit_script $*"
  exec sbatch "${sb[@]}" "$submit_script" "$@"
fi

# ---- resume from the newest complete checkpoint ----
run_dir=$(config_field run dir)
[ -n "$run_dir" ] || run_dir=runs/$(config_field run name)
resume=()
case ${DTRAIN_RESUME:-auto} in
  none) ;;
  auto)
    if [ -z "$explicit_resume" ] && [ -d "$run_dir/checkpoints" ]; then
      # Checkpoints are written to a temporary name and renamed, so every
      # epoch-NNNN.h5 and last.h5 is complete. last.h5 (written when a stop
      # signal or --max-steps ended a run inside an epoch, and at a run's
      # end) wins when it is newer than the highest epoch.
      ck=$run_dir/checkpoints
      latest=$(find "$ck" -maxdepth 1 -name 'epoch-*.h5' ! -name '*.tmp*' -printf '%f\n' | sort -V | tail -n 1)
      if [ -f "$ck/last.h5" ] && { [ -z "$latest" ] || [ "$ck/last.h5" -nt "$ck/$latest" ]; }; then
        resume=(--resume "$ck/last.h5")
      elif [ -n "$latest" ]; then
        resume=(--resume "$ck/$latest")
      fi
    fi
    # a requeued job that stopped before its first checkpoint starts over
    # in its own run directory (a first start never replaces a run)
    if [ -z "$explicit_resume" ] && [ ${#resume[@]} -eq 0 ] && [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
      resume=(--overwrite)
    fi
    ;;
  *) resume=(--resume "$DTRAIN_RESUME") ;;
esac

# ---- the launcher ----
tasks=${SLURM_NTASKS:-1}
if [ "$backend" = cuda ] && [ -z "${SLURM_JOB_GPUS:-}${SLURM_STEP_GPUS:-}${SLURM_GPUS_ON_NODE:-}${CUDA_VISIBLE_DEVICES:-}" ]; then
  say "warning: backend.name is cuda but Slurm gave this job no GPUs (dtrain will stop with exit 4 if it finds no" \
    "device): submit with --gpus-per-task=1, or with 'bash slurm/train.sbatch ...', which asks for them"
fi
if [ "$launcher" = auto ]; then
  # srun needs an MPI plugin that Open MPI speaks (PMIx for Debian's); without
  # it, mpirun reads the allocation from Slurm itself.
  if command -v srun >/dev/null 2>&1 && srun --mpi=list 2>&1 | grep -qw -- "$srun_mpi"; then
    launcher=srun
  else
    launcher=mpirun
    say "srun offers no '$srun_mpi' MPI plugin (srun --mpi=list; DTRAIN_SRUN_MPI picks another): using mpirun"
  fi
fi
say "job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}: $tasks tasks, ${SLURM_CPUS_PER_TASK:-1} CPUs each, launcher $launcher"
case ${resume[0]:-} in
  --resume) say "run directory $run_dir, resuming from ${resume[1]}" ;;
  --overwrite) say "run directory $run_dir: requeued before its first checkpoint, starting over (--overwrite)" ;;
  *) say "run directory $run_dir" ;;
esac
cmd=()
case $launcher in
  srun)
    # --kill-on-bad-exit: one failed rank ends the step instead of leaving
    # the others waiting (they print their rank/step line on SIGTERM).
    # shellcheck disable=SC2206
    cmd=(srun --mpi="$srun_mpi" --kill-on-bad-exit=1 ${DTRAIN_SRUN_ARGS:-})
    ;;
  mpirun)
    # Open MPI reads the allocation from Slurm; as root it needs consent.
    # shellcheck disable=SC2206
    cmd=(mpirun ${DTRAIN_MPIRUN_ARGS:-})
    [ "$(id -u)" -eq 0 ] && cmd+=(--allow-run-as-root)
    # Surviving ranks get 3 s (Open MPI's default: 1) between mpirun's
    # SIGTERM and SIGKILL to print where they were.
    export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-3}
    ;;
  *) die "DTRAIN_LAUNCHER must be auto, srun or mpirun, not '$launcher'" ;;
esac
# The configuration arguments go first so the user's own ones come later
# and win; arguments already in "$@" are not repeated.
base_cfg=()
[ -n "${DTRAIN_CONFIG:-}" ] && base_cfg+=(--config "$DTRAIN_CONFIG")
base_cfg+=(--set "backend.threads=${SLURM_CPUS_PER_TASK:-1}")
for kv in ${DTRAIN_SET:-}; do base_cfg+=(--set "$kv"); done
say "${cmd[*]} $bin train ${base_cfg[*]} ${resume[*]} $*"
# A stop signal for this script (train.sbatch asks Slurm for SIGUSR1 before
# the time limit; scancel --signal=USR1 --batch does it by hand) goes on to
# the launcher, which forwards it to every rank: dtrain stops at its next
# step boundary, writes last.h5 and exits 128 + the signal. Then the job is
# requeued and resumes from last.h5.
stop_sig=
child=
forward() {
  stop_sig=$1
  say "got SIG$1: asking dtrain to stop at its next step boundary and write last.h5"
  [ -n "$child" ] && kill -s "$1" "$child" 2>/dev/null
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
"${cmd[@]}" "$bin" train "${base_cfg[@]}" "${resume[@]}" "$@" &
child=$!
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break # a signal interrupted the wait, not the launcher's end
done
say "dtrain exited with $rc"
if [ -n "$stop_sig" ] && [ $rc -ne 0 ] && [ -n "${SLURM_JOB_ID:-}" ] && [ "${DTRAIN_REQUEUE:-yes}" != no ]; then
  say "stopped by SIG$stop_sig: requeueing job $SLURM_JOB_ID (it resumes from $run_dir/checkpoints/last.h5)"
  scontrol requeue "$SLURM_JOB_ID" || say "scontrol requeue failed: resubmit the job to continue"
fi
exit $rc
