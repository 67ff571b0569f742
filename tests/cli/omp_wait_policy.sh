#!/usr/bin/env bash
# The OpenMP wait policy (issue 11, item 13): libgomp's threads spin 300,000
# iterations while they wait, which slowed training 10-30x next to one busy
# process (bench/bench_omp_wait.sh measures it). dtrain restarts itself once
# with GOMP_SPINCOUNT=10000 when the user set neither GOMP_SPINCOUNT nor
# OMP_WAIT_POLICY, and says so; a user's own setting is kept and named.
# args: dtrain-binary source-root shared-data-dir
set -uo pipefail
bin=$1
src=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$T/data.h5" --quiet >/dev/null || fail "prep"
run() { # env settings... -- runs two training steps, log in $T/err
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" "$bin" train --config "$src/tests/configs/tiny_v3.json" \
    --set data.output="$T/data.h5" --set run.dir="$T/run" --max-steps 2 --no-final-eval --set train.eval_every=0 \
    --set backend.threads=2 >/dev/null 2>"$T/err" || fail "train $*: $(tail -3 "$T/err")"
  rm -rf "$T/run"
}
run
grep -q "OpenMP threads spin briefly before they sleep (GOMP_SPINCOUNT=10000, set by dtrain" "$T/err" ||
  fail "with nothing set, dtrain does not say it set GOMP_SPINCOUNT=10000: $(grep -i openmp "$T/err")"
run GOMP_SPINCOUNT=300000
grep -q "OpenMP wait policy from your environment: GOMP_SPINCOUNT=300000" "$T/err" ||
  fail "the user's GOMP_SPINCOUNT is not kept: $(grep -i openmp "$T/err")"
run OMP_WAIT_POLICY=active
grep -q "OpenMP wait policy from your environment: OMP_WAIT_POLICY=active$" "$T/err" ||
  fail "the user's OMP_WAIT_POLICY is not kept alone: $(grep -i openmp "$T/err")"
[ "$(grep -c "OpenMP" "$T/err")" -eq 1 ] || fail "the policy is logged more than once"
echo "omp wait policy: ok"
