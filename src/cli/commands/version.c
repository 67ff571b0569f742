/* dtrain --version: what was compiled in, with the libraries' own versions. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <stdio.h>
#include <zlib.h>

#include <Random123/features/compilerfeatures.h>

#include "dtrain/build_info.h"
#include "dtrain/cli.h"

#if defined(DTRAIN_HAVE_MPI)
#include <mpi.h>
#endif
#if defined(DTRAIN_HAVE_CUDA)
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#endif
#if defined(DTRAIN_HAVE_NCCL)
#include <nccl.h>
#endif

void dt_print_version(void) {
  printf("dtrain %s (git %s, %s build, %s)\n", DTRAIN_VERSION, DTRAIN_GIT_HASH, DTRAIN_BUILD_TYPE, DTRAIN_C_COMPILER);
  printf("backends:\n");
  printf("  cpu    CBLAS: %s\n", openblas_get_config());
#if defined(DTRAIN_HAVE_CUDA)
  int rt = 0;
  cudaRuntimeGetVersion(&rt); /* works without a driver */
  printf("  cuda   CUDA runtime %d.%d, cuBLAS %d.%d.%d, architectures %s\n", rt / 1000, (rt % 1000) / 10,
         CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, DTRAIN_CUDA_ARCHS);
#else
  printf("  cuda   not compiled in (configure with -DDTRAIN_CUDA=ON)\n");
#endif
  printf("communication:\n");
#if defined(DTRAIN_HAVE_MPI)
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  for (int i = 0; i < len; i++)
    if (mpi[i] == '\n' || mpi[i] == ',') {
      mpi[i] = '\0';
      break;
    }
  printf("  mpi    %s (MPI %d.%d)\n", mpi, MPI_VERSION, MPI_SUBVERSION);
#else
  printf("  mpi    not compiled in (single process)\n");
#endif
#if defined(DTRAIN_HAVE_NCCL)
  int nv = 0;
  ncclGetVersion(&nv);
  printf("  nccl   %d.%d.%d\n", nv / 10000, (nv % 10000) / 100, nv % 100);
#else
  printf("  nccl   not compiled in\n");
#endif
  unsigned h5maj = 0, h5min = 0, h5rel = 0;
  H5get_libversion(&h5maj, &h5min, &h5rel);
  printf("libraries: HDF5 %u.%u.%u, cJSON %s, zlib %s, Random123 (Philox4x32-10)\n", h5maj, h5min, h5rel,
         cJSON_Version(), zlibVersion());
}
