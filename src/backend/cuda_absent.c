/* The CUDA entry points of backend.h for a build without CUDA: they say so,
 * so "auto" falls back to the CPU with the reason and "cuda" fails clearly. */
#ifndef DTRAIN_HAVE_CUDA

#include <stdio.h>

#include "dtrain/backend.h"
#include "dtrain/error.h"

static const char k_not_compiled[] =
    "CUDA was not compiled into this dtrain (rebuild with -DDTRAIN_CUDA=ON on a machine with the CUDA Toolkit)";

int dt_backend_cuda_device_count(char *why, int why_size) {
  if (why && why_size > 0) snprintf(why, (size_t)why_size, "%s", k_not_compiled);
  return 0;
}

int dt_backend_cuda_create(int device, int tf32, dt_backend **out) {
  (void)device;
  (void)tf32;
  *out = NULL;
  return dt_fail(DT_EXIT_RUNTIME, "backend cuda: %s", k_not_compiled);
}

#else
/* ISO C forbids an empty translation unit */
typedef int dt_cuda_absent_unused;
#endif
