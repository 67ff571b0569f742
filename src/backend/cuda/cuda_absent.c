/* cuda_absent.c: the CUDA backend's entry points in a build without CUDA
 * (compiled instead of the other files of this folder): creating the backend
 * fails with a message saying how to get one, and the helpers of
 * backend_cuda.h fall back to plain host memory so that callers need no
 * #ifdef. */
#include <stdio.h>
#include <stdlib.h>

#include "dtrain/backend.h"
#include "dtrain/backend_cuda.h"
#include "dtrain/error.h"

#if defined(DTRAIN_HAVE_CUDA)
#error "cuda_absent.c is for builds without CUDA (CMakeLists.txt compiles it only then)"
#endif

static const char *not_built =
    "this dtrain was built without CUDA: reconfigure with -DDTRAIN_CUDA=ON on a machine with the CUDA Toolkit "
    "(nvcc, cuBLAS), or set backend.name = \"cpu\"";

int dt_backend_cuda_create(int device, int tf32, dt_backend **out) {
  *out = NULL;
  return dt_fail(DT_EXIT_RUNTIME, "backend \"cuda\" (device %d): %s", device, not_built);
}

int dt_backend_cuda_device_count(char *why, int why_size) {
  if (why && why_size > 0) snprintf(why, (size_t)why_size, "%s", not_built);
  return 0;
}

void *dt_backend_cuda_stream(dt_backend *be) { return NULL; }

int dt_backend_cuda_device(dt_backend *be) { return -1; }

int dt_backend_cuda_mem_info(dt_backend *be, size_t *used_bytes, size_t *total_bytes) {
  return dt_fail(DT_EXIT_RUNTIME, "dt_backend_cuda_mem_info: %s", not_built);
}

int dt_cuda_host_alloc(size_t bytes, void **out) {
  *out = malloc(bytes ? bytes : 1);
  if (!*out) return dt_fail(DT_EXIT_RUNTIME, "out of host memory allocating a %zu-byte staging buffer", bytes);
  return 0;
}

void dt_cuda_host_free(void *p) { free(p); }
