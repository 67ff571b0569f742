/* Backend selection: "cpu", "cuda", or "auto" (CUDA when a device is usable,
 * else the CPU, saying which and why). */
#include <omp.h>
#include <string.h>

#include "dtrain/backend.h"
#include "dtrain/error.h"
#include "dtrain/log.h"

static int create_cuda(int local_rank, int tf32, int count, dt_backend **out) {
  /* ranks on one node take devices round-robin by local rank */
  int device = local_rank >= 0 ? local_rank % count : 0;
  int rc = dt_backend_cuda_create(device, tf32, out);
  if (rc) return dt_fail_context(rc, "backend cuda (device %d of %d, local rank %d)", device, count, local_rank);
  dt_log_info("backend cuda: device %d of %d (local rank %d)", device, count, local_rank);
  return 0;
}

/* the thread count dt_backend_cpu_create resolves 0 to */
static int cpu_threads(int threads) { return threads > 0 ? threads : omp_get_num_procs(); }

int dt_backend_create(const char *name, int threads, int local_rank, int tf32, dt_backend **out) {
  *out = NULL;
  char why[512] = "";
  if (strcmp(name, "cpu") == 0) {
    DT_TRY(dt_backend_cpu_create(threads, out));
    dt_log_info("backend cpu: %d threads (backend.name = \"cpu\")", cpu_threads(threads));
    return 0;
  }
  if (strcmp(name, "cuda") == 0) {
    int count = dt_backend_cuda_device_count(why, (int)sizeof why);
    if (count <= 0)
      return dt_fail(DT_EXIT_RUNTIME,
                     "backend.name = \"cuda\" but no usable CUDA device: %s. Set backend.name to \"cpu\" or "
                     "\"auto\" to train on the CPU",
                     why[0] ? why : "no device found");
    return create_cuda(local_rank, tf32, count, out);
  }
  if (strcmp(name, "auto") == 0) {
    int count = dt_backend_cuda_device_count(why, (int)sizeof why);
    if (count > 0) return create_cuda(local_rank, tf32, count, out);
    DT_TRY(dt_backend_cpu_create(threads, out));
    dt_log_info("backend auto: no usable CUDA device (%s), using cpu with %d threads", why[0] ? why : "no device found",
                cpu_threads(threads));
    return 0;
  }
  return dt_fail(DT_EXIT_USAGE, "backend.name = \"%s\": expected \"auto\", \"cpu\" or \"cuda\"", name);
}

int dt_backend_host_memory(const dt_backend *be) { return !strcmp(be->name, "cpu"); }

int dt_backend_alloc(dt_backend *be, size_t bytes, void **out) {
  *out = be->alloc(be, bytes);
  if (!*out) return dt_fail_context(DT_EXIT_RUNTIME, "backend %s: allocating %zu bytes", be->name, bytes);
  return 0;
}

int dt_backend_replace(dt_backend *be, void **p, size_t bytes) {
  if (*p) be->free(be, *p);
  *p = NULL;
  return bytes ? dt_backend_alloc(be, bytes, p) : 0;
}
