#!/usr/bin/env bash
# gpu_check.sh: on a lent GPU machine, runs what cannot run elsewhere: the
# gpu-labelled tests, bench_cuda, compute-sanitizer memcheck over the gpu
# tests, and the PyTorch reference when bench/torch_reference.py exists;
# then prints a short table (last, so that it is in the device tool's reply).
#
# The machine has CUDA 13 and PyTorch but no MPI, HDF5, cJSON or OpenBLAS,
# so it runs a build made here by tools/make_gpu_carry.sh and carried along:
#   device run, carry ["carry/gpu"], command: tools/gpu_check.sh carry/gpu
#
# Usage: tools/gpu_check.sh [carry-dir] [--only STEPS] [--seed N]
#   STEPS: comma-separated of tests,bench,memcheck,torch (default: all)
# Logs and JSON go to $OUT when set (the device tool brings them back),
# else to ./gpu_check_out. Exit status: 0 when every step that ran passed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
carry=$root/carry/gpu
steps=tests,bench,memcheck,torch
seed=${DTRAIN_TEST_SEED:-$(date +%s)}
while [ $# -gt 0 ]; do
  case $1 in
    --only) steps=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) carry=$1; shift ;;
  esac
done
want() { case ",$steps," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

out=${OUT:-$PWD/gpu_check_out}
mkdir -p "$out"
log=$out/gpu_check.log
: >"$log"
say() { echo "$*" | tee -a "$log"; }
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
# A library inside a Python wheel (nvidia-nccl-cu13 and friends, PyTorch's).
pyfind() {
  python3 -c 'import glob, site, sys
for p in site.getsitepackages():
    for f in glob.glob(p + "/nvidia/*/lib/" + sys.argv[1]):
        print(f)
        sys.exit()' "$1" 2>/dev/null
}
rows=()
row() { rows+=("$(printf '%-34s %-8s %8s  %s' "$1" "$2" "$3" "$4")"); }
status=0

# ---- the carried build ----
tarball=$carry/dtrain-gpu.tar.gz
[ -f "$tarball" ] || { say "gpu_check: no $tarball (make it here with tools/make_gpu_carry.sh)"; exit 2; }
work=$(mktemp -d /tmp/dtrain-gpu.XXXXXX)
tar -xzf "$tarball" -C "$work"
pkg=$work/dtrain-gpu
say "== carried build"
tee -a "$log" <"$pkg/MANIFEST"

# The machine's CUDA libraries (toolkit folders, or PyTorch's nvidia-* wheels
# for NCCL), after the carried ones.
libdirs=$pkg/lib
for name in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  found=$(find /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu \
    /opt /usr/local/lib -name "$name" 2>/dev/null | head -n 1)
  [ -n "$found" ] || found=$(pyfind "$name")
  [ -n "$found" ] || continue
  case ":$libdirs:" in *":$(dirname "$found"):"*) ;; *) libdirs=$libdirs:$(dirname "$found") ;; esac
done
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# tests that read the repository's files (test_model_cuda's configs) find it here
export DTRAIN_SOURCE_ROOT=$root
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
for b in "$pkg"/bin/* "$pkg"/tests/*; do
  if ldd "$b" | grep -q 'not found'; then
    say "gpu_check: $b cannot load:"
    ldd "$b" | grep 'not found' | tee -a "$log"
    status=1
  fi
done
[ $status -eq 0 ] || exit 1

say "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee -a "$log"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)

# ---- gpu tests (synchronising after every kernel, so a fault names it) ----
if want tests; then
  say "== gpu tests (DTRAIN_TEST_SEED=$seed, DTRAIN_CUDA_SYNC_DEBUG=1)"
  for t in "$pkg"/tests/*; do
    name=$(basename "$t")
    start=$(date +%s.%N)
    DTRAIN_TEST_SEED=$seed DTRAIN_CUDA_SYNC_DEBUG=1 timeout 900 "$t" >"$out/$name.log" 2>&1
    rc=$?
    secs=$(elapsed "$start")
    cat "$out/$name.log" >>"$log"
    case $rc in
      0) row "$name" PASS "${secs}s" "" ;;
      77) row "$name" SKIP "${secs}s" "$(grep -m1 -i skip "$out/$name.log")"; status=1 ;;
      *) row "$name" FAIL "${secs}s" "exit $rc: $(grep -m1 -E 'FAILED|failed' "$out/$name.log")"; status=1 ;;
    esac
  done
fi

# ---- benchmark ----
if want bench; then
  say "== bench_cuda"
  start=$(date +%s.%N)
  timeout 900 "$pkg/bin/bench_cuda" >"$out/bench_cuda.json" 2>>"$log"
  rc=$?
  secs=$(elapsed "$start")
  cat "$out/bench_cuda.json" >>"$log"
  if [ $rc -eq 0 ] && python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$out/bench_cuda.json" 2>/dev/null; then
    summary=$(python3 - "$out/bench_cuda.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
p = b.get("peaks", {})
f = b["floor"]
print("fp32 %.1f TF/s, tf32 %.1f TF/s, copy %.2f TB/s; floor/step v2 %.3f ms, v3 %.3f ms" % (
    p.get("sgemm_fp32_flops", 0) / 1e12, p.get("sgemm_tf32_flops", 0) / 1e12, p.get("copy_bytes_per_s", 0) / 1e12,
    f["v2_prefix"]["floor_ms_fp32"], f["v3_chunk"]["floor_ms_fp32"]))
PY
)
    if grep -q '"skipped"' "$out/bench_cuda.json"; then
      row bench_cuda SKIP "${secs}s" "no usable device; floor only: $summary"
      status=1
    else
      row bench_cuda PASS "${secs}s" "$summary"
    fi
  else
    row bench_cuda FAIL "${secs}s" "exit $rc (see $out/bench_cuda.json)"
    status=1
  fi
fi

# ---- compute-sanitizer memcheck over the gpu tests ----
if want memcheck; then
  say "== compute-sanitizer memcheck"
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ -z "$sanitizer" ]; then
    row memcheck SKIP "" "compute-sanitizer not found"
    status=1
  else
    for t in "$pkg"/tests/*; do
      name=$(basename "$t")
      start=$(date +%s.%N)
      DTRAIN_TEST_SEED=$seed timeout 1200 "$sanitizer" --tool memcheck --leak-check full --error-exitcode 99 "$t" \
        >"$out/memcheck_$name.log" 2>&1
      rc=$?
      secs=$(elapsed "$start")
      cat "$out/memcheck_$name.log" >>"$log"
      errors=$(grep -m1 -E 'ERROR SUMMARY' "$out/memcheck_$name.log")
      case $rc in
        0) row "memcheck $name" PASS "${secs}s" "$errors" ;;
        77) row "memcheck $name" SKIP "${secs}s" "" ; status=1 ;;
        *) row "memcheck $name" FAIL "${secs}s" "exit $rc; $errors"; status=1 ;;
      esac
    done
  fi
fi

# ---- the PyTorch reference on the same card ----
if want torch; then
  if [ -f "$root/bench/torch_reference.py" ]; then
    say "== bench/torch_reference.py ${TORCH_REF_ARGS:-}"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 timeout 1200 python3 "$root/bench/torch_reference.py" ${TORCH_REF_ARGS:-} \
      >"$out/torch_reference.out" 2>&1
    rc=$?
    secs=$(elapsed "$start")
    cat "$out/torch_reference.out" >>"$log"
    if [ $rc -eq 0 ]; then row torch_reference PASS "${secs}s" "$(tail -n 1 "$out/torch_reference.out" | cut -c1-80)"
    else row torch_reference FAIL "${secs}s" "exit $rc"; status=1; fi
  else
    row torch_reference SKIP "" "no bench/torch_reference.py in this tree"
  fi
fi

rm -rf "$work"
echo
echo "gpu_check on ${gpu:-an unknown GPU}, seed $seed (logs: $out)"
printf '%-34s %-8s %8s  %s\n' step result time note
for r in "${rows[@]}"; do echo "$r"; done
exit $status
