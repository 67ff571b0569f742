#!/usr/bin/env bash
# cuda_build_report.sh: builds dtrain with the CUDA backend (warnings are
# errors) and prints, per kernel and architecture, the registers, shared
# memory, stack frame and spills that ptxas reported. Fails when the build
# prints any warning or any kernel spills registers.
#
# Usage: tools/cuda_build_report.sh [build-dir] [extra cmake arguments...]
#   build-dir defaults to build-cuda-report; e.g.
#   tools/cuda_build_report.sh build-cuda-report -DCMAKE_CUDA_ARCHITECTURES=90
# Environment: JOBS (parallel compile jobs, default 2); TARGETS (what to build
# after the kernels, default all).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-cuda-report}
[ $# -gt 0 ] && shift
jobs=${JOBS:-2}
mkdir -p "$build"
log=$build/cuda_build_report.log
: >"$log"

# Ninja prints each compile's output in one piece, so ptxas lines stay next to
# their file; with Make, one job at a time does the same.
generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if grep -q 'CMAKE_GENERATOR:INTERNAL=Ninja' "$build/CMakeCache.txt" 2>/dev/null || [ ${#generator[@]} -gt 0 ]; then
  kernel_jobs=$jobs
else
  kernel_jobs=1
fi

echo "== configure ($build)"
cmake -S "$root" -B "$build" "${generator[@]}" -DDTRAIN_CUDA=ON -DDTRAIN_WERROR=ON "$@" 2>&1 | tee -a "$log" | tail -n 3
echo "== build kernels (from scratch, so that ptxas reports every kernel)"
set +e
cmake --build "$build" --target dtrain_kernels --clean-first -j "$kernel_jobs" >>"$log" 2>&1
rc_kernels=$?
echo "== build ${TARGETS:-everything else}"
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" ${TARGETS:+--target $TARGETS} >>"$log" 2>&1
rc_all=$?
set -e

# One row per (kernel, architecture): name, file, arch, regs, smem, stack, spill stores, spill loads.
table=$build/cuda_kernel_resources.tsv
awk '
  /Building CUDA object/ { n = split($0, p, "/"); file = p[n]; sub(/\.o$/, "", file) }
  /ptxas info *: Compiling entry function/ {
    match($0, /function \047[^\047]+\047/); fn = substr($0, RSTART + 10, RLENGTH - 11)
    match($0, /for \047sm_[0-9a-z]+\047/); arch = substr($0, RSTART + 5, RLENGTH - 6)
    stack = 0; sst = 0; sld = 0; next
  }
  /bytes stack frame/ {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) == "bytes" && $(i + 2) == "stack") stack = $i
      if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^stores/) sst = $i
      if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^loads/) sld = $i
    }
    next
  }
  /ptxas info *: Used [0-9]+ registers/ && fn != "" {
    regs = 0; smem = 0
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^registers/) regs = $i
      if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i
    }
    printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", fn, file, arch, regs, smem, stack, sst, sld
    fn = ""
  }
' "$log" >"$table.raw"

demangle="cat"
if command -v c++filt >/dev/null 2>&1; then demangle=c++filt; fi
cut -f1 "$table.raw" | $demangle | sed -e 's/(anonymous namespace):://g' -e 's/^void //' -e 's/(.*$//' \
  -e 's/cub::CUB_[0-9A-Z_]*::/cub::/g' | cut -c1-70 >"$table.names"
paste "$table.names" <(cut -f2- "$table.raw") >"$table"
rm -f "$table.raw" "$table.names"

printf '%-70s %-9s %-7s %5s %7s %6s %6s %6s\n' kernel file arch regs smem stack spill_st spill_ld
sort -t$'\t' -k2,2 -k1,1 -k3,3 "$table" | awk -F'\t' '{ printf "%-70s %-9s %-7s %5d %7d %6d %6d %6d\n", $1, $2, $3, $4, $5, $6, $7, $8 }'

kernels=$(cut -f1,3 "$table" | sort -u | wc -l)
spills=$(awk -F'\t' '$7 > 0 || $8 > 0' "$table" | wc -l)
warnings=$(grep -ciE '(^|[^-])warning' "$log" || true)
echo
echo "kernel builds: $kernels (kernel x architecture); with spills: $spills; warning lines in the build log: $warnings"
echo "full log: $log; table: $table"
status=0
if [ "$rc_kernels" -ne 0 ] || [ "$rc_all" -ne 0 ]; then
  echo "FAILED: the build failed (exit codes: kernels $rc_kernels, all $rc_all); errors:"
  grep -E 'error|Error' "$log" | head -n 20
  status=1
fi
if [ "$kernels" -eq 0 ]; then echo "FAILED: no ptxas resource lines found (is -Xptxas=-v on?)"; status=1; fi
if [ "$spills" -gt 0 ]; then
  echo "FAILED: kernels spill registers:"
  awk -F'\t' '$7 > 0 || $8 > 0 { print "  " $1 " (" $3 "): " $7 " bytes stored, " $8 " loaded" }' "$table"
  status=1
fi
if [ "$warnings" -gt 0 ]; then
  echo "FAILED: the build printed warnings:"
  grep -iE '(^|[^-])warning' "$log" | head -n 20
  status=1
fi
[ $status -eq 0 ] && echo "OK: no warnings, no spills"
exit $status
