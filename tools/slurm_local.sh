#!/usr/bin/env bash
# slurm_local.sh: a private single-node Slurm cluster on this machine, for
# testing slurm/*.sbatch without touching the system's Slurm or munge.
#
#   tools/slurm_local.sh start    start munged, slurmctld and slurmd; prints
#                                 the `export SLURM_CONF=...` line to use
#   tools/slurm_local.sh status   which of the three daemons run; sinfo
#   tools/slurm_local.sh stop     stop exactly the daemons start started (by
#                                 their pid files) and remove the state
#   tools/slurm_local.sh env      print the export line again
#
# Everything lives in one directory, $DTRAIN_SLURM_DIR (default
# /tmp/dtrain-slurm-$UID): its own slurm.conf (used through SLURM_CONF, so
# /etc/slurm is left alone), munge key and socket, ports, state, spool, logs
# and pid files. No systemd. Runs as root (Debian's daemons are started by
# hand as root here); ports from $DTRAIN_SLURM_PORT (default 16817, the next
# free pair is taken). The one node is `localhost` with all cores
# (EnforcePartLimits=ALL, so a job asking for more is rejected instead of
# pending forever). Set DTRAIN_SLURM_KEEP=1 to keep logs after stop.
set -u

dir=${DTRAIN_SLURM_DIR:-/tmp/dtrain-slurm-$(id -u)}
conf=$dir/slurm.conf

die() {
  echo "slurm_local: error: $*" >&2
  exit 1
}

need() {
  local missing=()
  for prog in munged mungekey slurmctld slurmd sinfo sbatch; do
    command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || missing+=("$prog")
  done
  if [ ${#missing[@]} -ne 0 ]; then
    echo "slurm_local: not installed: ${missing[*]} (Debian: apt-get install slurmctld slurmd slurm-client munge)" >&2
    return 1
  fi
}

prog_path() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

# pid_of NAME: the pid from NAME's pid file when that process is alive and
# is NAME (pids get reused: never signal a stranger).
pid_of() {
  local name=$1 file pid
  case $name in
    munged) file=$dir/munged.pid ;;
    slurmctld) file=$dir/slurmctld.pid ;;
    slurmd) file=$dir/slurmd.pid ;;
  esac
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm")" = "$name" ] || return 1
  echo "$pid"
}

port_free() {
  # Nothing answers on it (bash's /dev/tcp connects or fails at once).
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_env() { echo "export SLURM_CONF=$conf"; }

wait_for() { # wait_for SECONDS COMMAND...: poll until the command succeeds
  local limit=$1 t0=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -ge "$limit" ] && return 1
    sleep 0.3
  done
}

start() {
  need || exit 77
  [ "$(id -u)" -eq 0 ] || die "start needs root (slurmd starts jobs as their user; munged/slurmctld run as root here)"
  if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null || pid_of munged >/dev/null; then
    die "a cluster from $dir is already running (tools/slurm_local.sh status / stop)"
  fi
  rm -rf "$dir"
  mkdir -p "$dir" "$dir/state" "$dir/spool" "$dir/log" "$dir/munge" || die "cannot create $dir"
  chmod 700 "$dir"
  # munged checks that its socket directory is not writable by others and
  # lets clients reach the socket through it.
  chmod 711 "$dir/munge"
  chmod 755 "$dir/log"

  local port=${DTRAIN_SLURM_PORT:-16817} tries=0
  while ! port_free "$port" || ! port_free $((port + 1)); do
    port=$((port + 2))
    tries=$((tries + 1))
    [ $tries -lt 50 ] || die "no free port pair from ${DTRAIN_SLURM_PORT:-16817}"
  done
  local cpus mem host
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  host=$(hostname -s)

  "$(prog_path mungekey)" -c -k "$dir/munge/munge.key" >"$dir/log/mungekey.log" 2>&1 ||
    die "mungekey failed: $(cat "$dir/log/mungekey.log")"
  chmod 600 "$dir/munge/munge.key"
  "$(prog_path munged)" --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    >"$dir/log/munged.out" 2>&1 || die "munged failed to start: $(cat "$dir/log/munged.out" "$dir/log/munged.log" 2>/dev/null)"
  wait_for 10 pid_of munged || die "munged did not start (see $dir/log/munged.log)"

  cat >"$conf" <<EOF
# Private single-node cluster of tools/slurm_local.sh (generated).
ClusterName=dtrain-local
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
PlugStackConfig=$dir/plugstack.conf
KillWait=10
NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$dir/plugstack.conf"
  export SLURM_CONF=$conf
  "$(prog_path slurmctld)" -i -c >"$dir/log/slurmctld.out" 2>&1 ||
    die "slurmctld failed to start: $(tail -5 "$dir/log/slurmctld.log" 2>/dev/null)"
  wait_for 15 pid_of slurmctld || die "slurmctld did not start (see $dir/log/slurmctld.log)"
  "$(prog_path slurmd)" -N localhost >"$dir/log/slurmd.out" 2>&1 ||
    die "slurmd failed to start: $(tail -5 "$dir/log/slurmd.log" 2>/dev/null)"
  wait_for 15 pid_of slurmd || die "slurmd did not start (see $dir/log/slurmd.log)"
  # The node is usable once sinfo shows it idle (about 3 s).
  if ! wait_for 30 bash -c "sinfo -h -N -o '%T' | grep -qx idle"; then
    sinfo -N -l >&2
    die "the node did not become idle (see $dir/log/slurmctld.log and slurmd.log)"
  fi
  echo "slurm_local: cluster up in $dir (ports $port/$((port + 1)), node localhost, $cpus CPUs)" >&2
  print_env
}

stop_daemons() { # TERM to each running daemon, wait up to 10 s, then KILL
  local name pid pids=() names=() t0 i
  for name in slurmd slurmctld munged; do
    pid=$(pid_of "$name") || continue
    kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
    names+=("$name")
  done
  t0=$SECONDS
  for i in "${!pids[@]}"; do
    while [ -d "/proc/${pids[i]}" ] && [ $((SECONDS - t0)) -lt 10 ]; do sleep 0.1; done
    if [ -d "/proc/${pids[i]}" ]; then
      echo "slurm_local: ${names[i]} (pid ${pids[i]}) ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "${pids[i]}" 2>/dev/null
    fi
  done
}

stop() {
  [ -d "$dir" ] || {
    echo "slurm_local: nothing to stop ($dir does not exist)" >&2
    return 0
  }
  # Jobs first: slurmstepd and the job's processes would outlive slurmd.
  if pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null; then
    local jobs t0
    jobs=$(SLURM_CONF=$conf squeue -h -o %A 2>/dev/null)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      SLURM_CONF=$conf scancel $jobs 2>/dev/null
      t0=$SECONDS
      while [ -n "$(SLURM_CONF=$conf squeue -h -o %A 2>/dev/null)" ] && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.5; done
    fi
  fi
  # Then all three at once: none needs another to shut down (jobs still running
  # are ended by slurmd's own shutdown or by the KILL after 10 s).
  stop_daemons
  if [ "${DTRAIN_SLURM_KEEP:-0}" = 1 ]; then
    echo "slurm_local: stopped; logs kept in $dir/log" >&2
  else
    rm -rf "$dir"
    echo "slurm_local: stopped and removed $dir" >&2
  fi
}

status() {
  local rc=0 name pid
  for name in munged slurmctld slurmd; do
    if pid=$(pid_of "$name"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"
      rc=1
    fi
  done
  if [ $rc -eq 0 ]; then
    SLURM_CONF=$conf sinfo -N -l
    print_env
  fi
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *)
    echo "usage: tools/slurm_local.sh start|stop|status|env   (state in \$DTRAIN_SLURM_DIR, default $dir)" >&2
    exit 2
    ;;
esac
