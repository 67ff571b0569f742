#!/usr/bin/env bash
# make_gpu_carry.sh: prepares, here, what a lent GPU machine needs to run the
# CUDA backend's tests and benchmark with tools/gpu_check.sh. That machine has
# CUDA 13, its driver and PyTorch, but no MPI, HDF5, cJSON, OpenBLAS or
# cmocka, and nothing can be fetched there, so this builds dtrain here
# (CUDA on, MPI off) and packs the gpu-labelled test programs, bench_cuda and
# dtrain with every shared library they load that is neither the C runtime
# nor CUDA's (the machine's own libcudart/libcublas/libnccl are used there).
#
# Usage: tools/make_gpu_carry.sh [carry-dir]      (default: carry/gpu, git-ignored)
# Then:  the device tool's run with carry ["carry/gpu"] and the command
#        tools/gpu_check.sh carry/gpu
# Environment: BUILD (build folder, default build-gpu-carry), ARCHS (CUDA
# architectures, default 90: H100 and H200), JOBS (default 2).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/carry/gpu}
build=${BUILD:-$root/build-gpu-carry}
archs=${ARCHS:-90}
jobs=${JOBS:-2}
limit_mib=60 # the device tool carries 64 MiB in all

generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
echo "== configure $build (CUDA architectures $archs, MPI off)"
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DDTRAIN_CUDA=ON -DDTRAIN_MPI=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$archs" -DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed >/dev/null
echo "== build"
cmake --build "$build" -j "$jobs" >"$build/make_gpu_carry.log" 2>&1 || {
  tail -n 30 "$build/make_gpu_carry.log"
  echo "make_gpu_carry: the build failed (log: $build/make_gpu_carry.log)" >&2
  exit 1
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/dtrain-gpu
mkdir -p "$pkg/bin" "$pkg/tests" "$pkg/lib"
tests=$(cd "$build" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: *//p')
[ -n "$tests" ] || { echo "make_gpu_carry: no gpu-labelled tests in $build" >&2; exit 1; }
for t in $tests; do cp "$build/tests/$t" "$pkg/tests/"; done
cp "$build/bench/bench_cuda" "$build/dtrain" "$pkg/bin/"

# Shared libraries: all that ldd resolves, minus glibc's (present on any
# Linux, and tied to its own version: a carried libresolv would break the
# machine's glibc), the compiler runtime and CUDA's own (the machine's match
# its driver).
missing=0
for b in "$pkg"/bin/* "$pkg"/tests/*; do
  if ldd "$b" | grep -q 'not found'; then
    echo "$b:" >&2
    ldd "$b" | grep 'not found' >&2
    missing=1
  fi
done
[ $missing -eq 0 ] || { echo "make_gpu_carry: some libraries are missing here too" >&2; exit 1; }
for b in "$pkg"/bin/* "$pkg"/tests/*; do
  ldd "$b" | awk '/=> \// { print $3 }'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | libnsl.so.* | \
      libnss_* | libanl.so.* | libutil.so.* | ld-linux* | libgcc_s.so.* | libstdc++.so.* | \
      libcuda.so.* | libcudart.so.* | libcublas.so.* | libcublasLt.so.* | libnccl.so.* | libnvidia-*) ;;
    *) cp -L "$lib" "$pkg/lib/" ;;
  esac
done

{
  echo "dtrain GPU carry"
  echo "git: $(git -C "$root" rev-parse --short=12 HEAD)$(git -C "$root" diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "made: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n)"
  echo "CUDA architectures: $archs"
  echo "tests: $(tr '\n' ' ' <<<"$tests")"
  echo "libraries:"
  find "$pkg/lib" -type f -printf '  %f %s\n' | sort
} >"$pkg/MANIFEST"

mkdir -p "$out"
tar -czf "$out/dtrain-gpu.tar.gz" -C "$stage" dtrain-gpu
cp "$pkg/MANIFEST" "$out/MANIFEST"
size_mib=$(($(stat -c %s "$out/dtrain-gpu.tar.gz") / 1048576))
cat "$out/MANIFEST"
echo "carry: $out/dtrain-gpu.tar.gz ($size_mib MiB)"
if [ "$size_mib" -ge "$limit_mib" ]; then
  echo "make_gpu_carry: the carry is over $limit_mib MiB; the device tool takes 64 MiB with the working tree" >&2
  exit 1
fi
