#!/usr/bin/env bash
# OpenMP wait policies on an idle and on a busy machine (issue 11, item 13):
# training steps and a standalone full-ranking evaluation of the quickstart
# model, with libgomp's default spinning (GOMP_SPINCOUNT=300000, what an
# unset OMP_WAIT_POLICY gives), with passive waiting, with dtrain's own
# choice (nothing set: dtrain sets GOMP_SPINCOUNT=10000), and with any other
# settings named in POLICIES; idle, and next to one busy
# process (`yes`, pinned to CPU 0). Runs are interleaved (repeat r runs every
# condition x workload x policy once) and the JSON reports medians.
#
#   bash bench/bench_omp_wait.sh BUILD/dtrain [REPEATS]
#
# Environment: WORK (a directory to keep the data set and checkpoint in;
# default a temporary one), STEPS (training steps timed, default 50, after
# 10 untimed), EVAL_USERS (full-ranking users, default 5000), PRIORITY=high
# (run everything, the competitor included, in a new scheduler group at
# nice -20: on a machine shared with other work this approximates an idle
# machine; needs root, and slows everything else on the machine while it
# runs), CONDITIONS (default "idle busy"), POLICIES (more space-separated
# NAME=ENV settings, e.g. "s3k=GOMP_SPINCOUNT=3000"), ONLY (the names of
# the policies to run, e.g. "spin dtrain"; spin must stay for the ratios).
# Train time is the step lines' time_s between steps 10 and 10+STEPS (no
# start-up); eval time is the whole command's wall time.
set -euo pipefail
bin=$(readlink -f "$1")
repeats=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
py=$(command -v /usr/bin/python3 || command -v python3)
steps=${STEPS:-50}
eval_users=${EVAL_USERS:-5000}
work=${WORK:-$(mktemp -d /tmp/dtrain_omp_wait_XXXXXX)}
mkdir -p "$work"
log() { echo "[bench_omp_wait] $*" >&2; }

if [ "${PRIORITY:-}" = high ] && [ -z "${BENCH_OMP_WAIT_INNER:-}" ]; then
  export BENCH_OMP_WAIT_INNER=1 WORK="$work"
  exec setsid bash -c 'echo -20 >/proc/self/autogroup && exec nice -n -20 bash "$0" "$@"' "$0" "$@"
fi

data="$work/qs.h5"
cfg=(--config "$src/configs/quickstart.json" --set data.output="$data" --set backend.name=cpu)
ck="$work/ck/checkpoints/last.h5"
if [ ! -f "$ck" ]; then
  log "preparing the quickstart data set and a checkpoint (200 steps) in $work"
  OMP_WAIT_POLICY=passive "$bin" train "${cfg[@]}" --set run.dir="$work/ck" --max-steps 200 --no-final-eval \
    --set train.eval_every=0 --quiet >/dev/null
fi

policies=("spin=GOMP_SPINCOUNT=300000" "passive=OMP_WAIT_POLICY=passive" "dtrain=")
for p in ${POLICIES:-}; do policies+=("$p"); done
if [ -n "${ONLY:-}" ]; then # keep only the named policies
  kept=()
  for p in "${policies[@]}"; do [[ " $ONLY " == *" ${p%%=*} "* ]] && kept+=("$p"); done
  policies=("${kept[@]}")
fi
results="$work/results.jsonl"
: >"$results"
competitor=

stop_competitor() { if [ -n "$competitor" ]; then kill "$competitor" 2>/dev/null || true; wait "$competitor" 2>/dev/null || true; competitor=; fi; }
trap stop_competitor EXIT

run_one() { # condition workload policy-name env-setting
  local cond=$1 wl=$2 name=$3 setting=$4 t
  local envs=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
  [ -n "$setting" ] && envs+=("$setting")
  if [ "$wl" = train ]; then
    rm -rf "$work/run"
    "${envs[@]}" "$bin" train "${cfg[@]}" --set run.dir="$work/run" \
      --max-steps $((steps + 10)) --set run.log_every=10 --no-final-eval --set train.eval_every=0 --quiet >/dev/null
    t=$("$py" -c '
import json, sys
s = {j["step"]: j["time_s"] for j in map(json.loads, open(sys.argv[1])) if j.get("type") == "step"}
print(s[max(s)] - s[10])' "$work/run/metrics.jsonl")
  else
    local t0 t1
    t0=$(date +%s.%N)
    "${envs[@]}" "$bin" eval --checkpoint "$ck" --set data.output="$data" \
      --set eval.protocol=full --set eval.full_max_users="$eval_users" --quiet >/dev/null
    t1=$(date +%s.%N)
    t=$("$py" -c "print($t1 - $t0)")
  fi
  log "repeat $r $cond $wl $name: $t s"
  printf '{"condition": "%s", "workload": "%s", "policy": "%s", "setting": "%s", "seconds": %s}\n' \
    "$cond" "$wl" "$name" "$setting" "$t" >>"$results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$repeats"); do
  for cond in ${CONDITIONS:-idle busy}; do
    if [ $cond = busy ]; then
      taskset -c 0 yes >/dev/null &
      competitor=$!
    fi
    for wl in train eval; do
      for p in "${policies[@]}"; do run_one "$cond" "$wl" "${p%%=*}" "${p#*=}"; done
    done
    stop_competitor
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$results" "$repeats" "$steps" "$eval_users" "$load_before" "$load_after" "${PRIORITY:-normal}" <<'EOF'
import json, statistics, sys, os
path, repeats, steps, users, lb, la, prio = sys.argv[1:8]
rows = [json.loads(l) for l in open(path)]
out = {"bench": "omp_wait", "repeats": int(repeats), "train_steps_timed": int(steps), "eval_full_users": int(users),
       "cores": os.cpu_count(), "priority": prio, "loadavg_before": lb, "loadavg_after": la, "results": []}
keys = sorted({(r["condition"], r["workload"], r["policy"]) for r in rows})
for cond, wl, pol in keys:
    xs = [r["seconds"] for r in rows if (r["condition"], r["workload"], r["policy"]) == (cond, wl, pol)]
    out["results"].append({"condition": cond, "workload": wl, "policy": pol, "median_s": round(statistics.median(xs), 3),
                           "min_s": round(min(xs), 3), "max_s": round(max(xs), 3), "n": len(xs)})
med = {(r["condition"], r["workload"], r["policy"]): r["median_s"] for r in out["results"]}
# each policy's median over the default spinning's, per condition and workload
out["vs_spin"] = {f"{c}.{w}.{p}": round(med[(c, w, p)] / med[(c, w, "spin")], 3)
                  for c, w, p in keys if p != "spin" and (c, w, "spin") in med}
print(json.dumps(out, indent=1))
EOF
