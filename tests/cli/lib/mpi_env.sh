# Sourced by the tests/cli/mpi_*.sh tests: skips (exit 77) without mpirun
# or with a dtrain built without MPI, and lets mpirun start ranks as root and
# more ranks than cores (this machine has 2). usage: mpi_test_env BINARY
mpi_test_env() {
  command -v mpirun >/dev/null || { echo "SKIP: mpirun is not installed"; exit 77; }
  if "$1" --version | grep -q "mpi    not compiled"; then echo "SKIP: this dtrain was built without MPI"; exit 77; fi
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}
