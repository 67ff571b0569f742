#!/usr/bin/env bash
# dtrain's one-command set-up, used by the README's two commands and by CI.
#
#   bash tools/setup.sh quickstart   install what is missing, build, train the
#                                    quickstart model, evaluate, checkpoint
#   bash tools/setup.sh test         install what is missing (test tools too),
#                                    build the three variants (CUDA + MPI; no MPI,
#                                    no CUDA, sanitizers; the CUDA emulator),
#                                    run the whole suite
#   bash tools/setup.sh build        install and build only
#
# Packages are installed with apt-get when run as root (or with sudo);
# otherwise the exact package list is printed and the script stops.
set -euo pipefail

mode=${1:-quickstart}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

# What the build needs, and what the tests need on top.
build_pkgs=(build-essential cmake ninja-build pkg-config git libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
  libcjson-dev zlib1g-dev libopenblas-dev libopenblas-openmp-dev librandom123-dev libcmocka-dev)
test_pkgs=(slurmctld slurmd slurm-client munge python3 python3-numpy python3-h5py python3-torch
  python3-pip python3-setuptools python3-wheel python3-venv clang clang-format libclang-rt-dev chromium)

log() { printf '[setup] %s\n' "$*" >&2; }

missing_packages() {
  local p out=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      out+=("$p")
    fi
  done
  printf '%s\n' "${out[@]}"
}

install_packages() {
  local -a need
  mapfile -t need < <(missing_packages "$@" | sed '/^$/d')
  if [ ${#need[@]} -eq 0 ]; then
    log "system packages: all present"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    log "missing packages (install them with your package manager): ${need[*]}"
    exit 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      log "missing packages; install them as root, then run this again:"
      echo "  apt-get install -y ${need[*]}"
      exit 1
    fi
  fi
  log "installing: ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# configure DIR [cmake options...]
configure() {
  local dir=$1
  shift
  log "configure $dir: $*"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log"
    exit 1
  }
}

# build DIR [targets...] (all when none are named)
build() {
  local dir=$1
  shift
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  log "build $dir${1:+ (${*})}"
  cmake --build "$dir" -j "$jobs" "${targets[@]}" >"$dir.build.log" 2>&1 || {
    tail -n 60 "$dir.build.log"
    exit 1
  }
}

# configure_and_build DIR [cmake options...]
configure_and_build() {
  configure "$@"
  build "$1"
}

case "$mode" in
  quickstart | build)
    install_packages "${build_pkgs[@]}"
    # The CUDA backend only for the GPU this machine has: a GPU -> its own
    # architecture (quick to compile); nvcc without a GPU -> not at all (the
    # test command still compiles it for every target architecture).
    cuda_opts=()
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
      cuda_opts=(-DDTRAIN_CUDA=AUTO -DCMAKE_CUDA_ARCHITECTURES=native)
    else
      log "no NVIDIA GPU here: building the CPU backend only"
      cuda_opts=(-DDTRAIN_CUDA=OFF)
    fi
    configure_and_build build "${cuda_opts[@]}"
    if [ "$mode" = quickstart ]; then
      log "quickstart: prepare the synthetic data set, train v3, evaluate, checkpoint"
      # --overwrite: running the quickstart again replaces its earlier run
      ./build/dtrain train --config configs/quickstart.json --overwrite
      # the run report (HTML with inline charts; prints its path)
      ./build/dtrain report runs/quickstart -o runs/quickstart/report.html
    fi
    ;;
  test)
    install_packages "${build_pkgs[@]}" "${test_pkgs[@]}"
    # 1. The default build: MPI, warnings as errors, and the CUDA backend
    #    when nvcc exists (compile and link only without a GPU; the build
    #    report prints ptxas' registers/shared memory/spills per kernel and
    #    fails on any warning or spill). Every test runs.
    if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
      log "build with the CUDA backend (tools/cuda_build_report.sh)"
      JOBS=$jobs bash tools/cuda_build_report.sh build
    else
      log "nvcc not found: building without the CUDA backend"
      configure_and_build build -DDTRAIN_WERROR=ON
    fi
    # (the fault drill, label slow, kills training 20 times in 1-3 minutes:
    # `ctest --test-dir build -L slow` runs it)
    (cd build && ctest --output-on-failure -j "$jobs" -LE slow)
    # 2. The laptop fallback (no MPI, no CUDA) under AddressSanitizer +
    #    UndefinedBehaviorSanitizer (leak checks on): unit tests and the
    #    command-line tests, which train, evaluate and checkpoint. (With MPI
    #    the leak checker reports Open MPI's own allocations, so the MPI
    #    code runs sanitizer-free in stage 1 only.) The PyTorch and Slurm
    #    tests ran in stage 1; the MPI tests skip themselves here.
    configure_and_build build-asan -DDTRAIN_WERROR=ON -DDTRAIN_SANITIZE=ON -DDTRAIN_MPI=OFF -DDTRAIN_CUDA=OFF \
      -DCMAKE_BUILD_TYPE=Debug
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs" -E "torch_check|slurm" -LE slow)
    # 3. The CUDA backend with its kernels run on the CPU by the emulator
    #    (kernels/emu; no MPI): the GPU tests (label gpu), among them the
    #    CPU-vs-CUDA bit test of the ops whose math op_math.h holds once.
    #    Only their executables are built.
    configure build-emu -DDTRAIN_WERROR=ON -DDTRAIN_CUDA=OFF -DDTRAIN_CUDA_EMU=ON -DDTRAIN_MPI=OFF
    mapfile -t gpu_tests < <(cd build-emu && ctest -L gpu -N | sed -n 's/^ *Test *#[0-9]*: *//p')
    build build-emu "${gpu_tests[@]}"
    (cd build-emu && ctest --output-on-failure -j "$jobs" -L gpu)
    log "all test stages passed"
    ;;
  *)
    echo "usage: bash tools/setup.sh [quickstart|test|build]" >&2
    exit 2
    ;;
esac
