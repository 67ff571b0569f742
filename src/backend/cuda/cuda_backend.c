/* cuda_backend.c: the CUDA backend's lifetime, device choice, memory ops and
 * scratch buffers; the compute ops live in the cuda_ops_*.c files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "dtrain/backend_cuda.h"
#include "dtrain/build_info.h"
#include "dtrain/log.h"

/* cuBLAS's recommended workspace on Hopper (4 MiB suffices before it). */
#define DT_CUDA_CUBLAS_WORKSPACE (32u << 20)

static const char *backend_name = "cuda";

/* ---- helpers shared by the ops files ---- */

int dt_cuda_enter(dt_backend *be, dt_cuda **out) {
  dt_cuda *c = be->impl;
  *out = c;
  DT_CUDA(cudaSetDevice(c->device));
  return 0;
}

int dt_cuda_scratch(dt_cuda *c, int slot, size_t bytes, void **out) {
  if (bytes == 0) bytes = 1;
  if (c->scratch_bytes[slot] < bytes) {
    /* Grow by half again, so that slowly rising sizes do not reallocate
     * every step. */
    size_t want = bytes + bytes / 2;
    if (c->scratch[slot]) {
      DT_CUDA(cudaStreamSynchronize(c->stream));
      DT_CUDA(cudaFree(c->scratch[slot]));
      c->scratch[slot] = NULL;
      c->scratch_bytes[slot] = 0;
    }
    cudaError_t e = cudaMalloc(&c->scratch[slot], want);
    if (e != cudaSuccess) {
      c->scratch[slot] = NULL;
      (void)cudaGetLastError(); /* an allocation failure is not sticky: clear it */
      return dt_fail_context(dt_cuda_fail_at(e, "cudaMalloc (scratch)", __FILE__, __LINE__),
                             "cuda backend: %zu bytes of scratch", want);
    }
    c->scratch_bytes[slot] = want;
  }
  *out = c->scratch[slot];
  return 0;
}

int dt_cuda_small_to_host(dt_cuda *c, void *dst_host, const void *src, size_t bytes) {
  if (bytes > DT_CUDA_PINNED_BYTES) dt_panic("dt_cuda_small_to_host: %zu bytes", bytes);
  DT_CUDA(cudaMemcpyAsync(c->pinned, src, bytes, cudaMemcpyDeviceToHost, c->stream));
  DT_CUDA(cudaStreamSynchronize(c->stream));
  memcpy(dst_host, c->pinned, bytes);
  return 0;
}

int dt_cuda_partials_to_host(dt_cuda *c, int count, double *out_host) {
  DT_KERNEL(dtk_sum_partials, (c->stream, c->partials, count, c->partials + DTK_MAX_PARTIALS));
  return dt_cuda_small_to_host(c, out_host, c->partials + DTK_MAX_PARTIALS, sizeof(double));
}

int dt_cuda_bad_call(const char *op, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return dt_fail(DT_EXIT_RUNTIME, "cuda backend: %s: %s (a bug in the caller)", op, what);
}

/* ---- memory ops ---- */

static void *cu_alloc(dt_backend *be, size_t bytes) {
  dt_cuda *c;
  if (dt_cuda_enter(be, &c)) return NULL;
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    dt_fail_context(dt_cuda_fail_at(e, "cudaMalloc", __FILE__, __LINE__),
                    "cuda backend: allocating %zu bytes on device %d", bytes, c->device);
    return NULL;
  }
  return p;
}

static void cu_free(dt_backend *be, void *p) {
  dt_cuda *c;
  if (!p || dt_cuda_enter(be, &c)) return;
  cudaError_t e = cudaFree(p);
  if (e != cudaSuccess)
    dt_log_warn("cuda backend: cudaFree failed: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
}

/* Waits for the copy: the caller may reuse or free src_host as soon as
 * upload returns (a pinned source would otherwise still be read by the DMA). */
static int cu_upload(dt_backend *be, void *dst, const void *src_host, size_t bytes) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (bytes == 0) return 0;
  DT_CUDA(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, c->stream));
  DT_CUDA(cudaStreamSynchronize(c->stream));
  return 0;
}

static int cu_download(dt_backend *be, void *dst_host, const void *src, size_t bytes) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (bytes == 0) return 0;
  DT_CUDA(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, c->stream));
  DT_CUDA(cudaStreamSynchronize(c->stream));
  return 0;
}

static int cu_copy(dt_backend *be, void *dst, const void *src, size_t bytes) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (bytes == 0) return 0;
  DT_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
  return 0;
}

static int cu_zero(dt_backend *be, void *p, size_t bytes) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (bytes == 0) return 0;
  DT_CUDA(cudaMemsetAsync(p, 0, bytes, c->stream));
  return 0;
}

static int cu_sync(dt_backend *be) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_CUDA(cudaStreamSynchronize(c->stream));
  return 0;
}

/* ---- lifetime ---- */

/* Releases whatever init_device created; safe on a partly built state. */
static void teardown(dt_cuda *c) {
  if (cudaSetDevice(c->device) != cudaSuccess) return;
  if (c->stream) (void)cudaStreamSynchronize(c->stream);
  if (c->cublas) (void)cublasDestroy(c->cublas);
  for (int i = 0; i < DT_CUDA_SCR_COUNT; i++)
    if (c->scratch[i]) (void)cudaFree(c->scratch[i]);
  if (c->partials) (void)cudaFree(c->partials);
  if (c->scalars) (void)cudaFree(c->scalars);
  if (c->cublas_workspace) (void)cudaFree(c->cublas_workspace);
  if (c->pinned) (void)cudaFreeHost(c->pinned);
  if (c->stream) (void)cudaStreamDestroy(c->stream);
}

static void cu_destroy(dt_backend *be) {
  if (!be) return;
  dt_cuda *c = be->impl;
  if (c) {
    teardown(c);
    free(c);
  }
  free(be);
}

/* The lowest compute capability (major*10 + minor) this build has code
 * for, from CMAKE_CUDA_ARCHITECTURES ("80;86;89;90", "90a", "80-real"); 0
 * when the list has no numbers ("native", "all"): then only the probe
 * kernel can tell. */
static int min_compiled_arch(void) {
  const char *p = DTRAIN_CUDA_ARCHS;
  int best = 0;
  while (*p) {
    if (*p >= '0' && *p <= '9') {
      char *end = NULL;
      int v = (int)strtol(p, &end, 10);
      if (v > 0 && (best == 0 || v < best)) best = v;
      p = end;
      while (*p && *p != ';') p++;
    } else {
      p++;
    }
  }
  return best;
}

static int no_device(int device, const char *why) {
  return dt_fail(DT_EXIT_RUNTIME,
                 "backend \"cuda\": no usable CUDA device for device %d: %s. Check the NVIDIA driver (nvidia-smi) "
                 "and CUDA_VISIBLE_DEVICES, or set backend.name = \"cpu\" (or \"auto\", which falls back to the "
                 "CPU and says so)",
                 device, why);
}

int dt_backend_cuda_device_count(char *why, int why_size) {
  int n = -1;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (why && why_size > 0)
      snprintf(why, (size_t)why_size, "cudaGetDeviceCount failed: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    return 0;
  }
  if (n <= 0) {
    if (why && why_size > 0) snprintf(why, (size_t)why_size, "the CUDA runtime sees no device");
    return 0;
  }
  const int min_arch = min_compiled_arch();
  int usable = 0;
  char old[256] = "";
  for (int d = 0; d < n; d++) {
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    if (min_arch && prop.major * 10 + prop.minor < min_arch) {
      snprintf(old, sizeof old, "device %d (%s) has compute capability %d.%d, below this build's lowest (%s)", d,
               prop.name, prop.major, prop.minor, DTRAIN_CUDA_ARCHS);
      continue;
    }
    usable++;
  }
  if (usable == 0 && why && why_size > 0)
    snprintf(why, (size_t)why_size, "%s", old[0] ? old : "no device could be queried");
  return usable;
}

static int init_device(dt_cuda *c) {
  int n = -1;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    char why[512];
    snprintf(why, sizeof why, "cudaGetDeviceCount failed with %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    return no_device(c->device, why);
  }
  if (n <= 0) return no_device(c->device, "the CUDA runtime sees no device");
  if (c->device < 0 || c->device >= n) {
    char why[128];
    snprintf(why, sizeof why, "only %d device%s visible (ordinals 0..%d)", n, n == 1 ? " is" : "s are", n - 1);
    return no_device(c->device, why);
  }

  struct cudaDeviceProp prop;
  DT_CUDA(cudaGetDeviceProperties(&prop, c->device));
  snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
  c->cc_major = prop.major;
  c->cc_minor = prop.minor;
  c->sm_count = prop.multiProcessorCount;
  c->total_mem = prop.totalGlobalMem;
  const int min_arch = min_compiled_arch();
  if (min_arch && c->cc_major * 10 + c->cc_minor < min_arch)
    return dt_fail(DT_EXIT_RUNTIME,
                   "backend \"cuda\": device %d (%s) has compute capability %d.%d, but this build has code for %s "
                   "only: rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d, or set backend.name = \"cpu\"",
                   c->device, c->device_name, c->cc_major, c->cc_minor, DTRAIN_CUDA_ARCHS, c->cc_major, c->cc_minor);

  DT_CUDA(cudaSetDevice(c->device));
  DT_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  DT_CUBLAS(cublasCreate(&c->cublas));
  DT_CUBLAS(cublasSetStream(c->cublas, c->stream));
  /* After cublasSetStream, which resets the workspace to cuBLAS's pool. */
  DT_CUDA(cudaMalloc(&c->cublas_workspace, DT_CUDA_CUBLAS_WORKSPACE));
  DT_CUBLAS(cublasSetWorkspace(c->cublas, c->cublas_workspace, DT_CUDA_CUBLAS_WORKSPACE));
  DT_CUBLAS(cublasSetMathMode(c->cublas, c->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  DT_CUBLAS(cublasSetPointerMode(c->cublas, CUBLAS_POINTER_MODE_HOST));

  DT_CUDA(cudaMalloc((void **)&c->partials, (DTK_MAX_PARTIALS + 1) * sizeof(double)));
  DT_CUDA(cudaMalloc((void **)&c->scalars, 16 * sizeof(int32_t)));
  DT_CUDA(cudaMallocHost(&c->pinned, DT_CUDA_PINNED_BYTES));

  /* Run one real kernel: a build without code for this architecture, or a
   * driver that cannot run it, fails here rather than mid-training. */
  DT_KERNEL(dt_cuda_probe_launch, (c->scalars, c->stream));
  int probe = 0;
  DT_TRY(dt_cuda_small_to_host(c, &probe, c->scalars, sizeof probe));
  if (probe != 42)
    return dt_fail(DT_EXIT_RUNTIME, "backend \"cuda\": the probe kernel on device %d (%s) wrote %d instead of 42",
                   c->device, c->device_name, probe);
  return 0;
}

int dt_backend_cuda_create(int device, int tf32, dt_backend **out) {
  *out = NULL;
  const char *sync_env = getenv("DTRAIN_CUDA_SYNC_DEBUG");
  if (sync_env && *sync_env && strcmp(sync_env, "0") != 0) dtk_set_sync_debug(1);
  dt_cuda *c = dt_xcalloc(1, sizeof *c);
  c->device = device;
  c->tf32 = tf32 ? 1 : 0;
  int rc = init_device(c);
  if (rc) {
    teardown(c);
    free(c);
    return rc;
  }

  dt_backend *be = dt_xcalloc(1, sizeof *be);
  be->name = backend_name;
  be->impl = c;
  be->alloc = cu_alloc;
  be->free = cu_free;
  be->upload = cu_upload;
  be->download = cu_download;
  be->copy = cu_copy;
  be->zero = cu_zero;
  be->sync = cu_sync;
  be->destroy = cu_destroy;
  dt_cuda_fill_dense_ops(be);
  dt_cuda_fill_sparse_ops(be);
  dt_cuda_fill_model_ops(be);
  dt_cuda_fill_optim_ops(be);
  dt_cuda_fill_eval_ops(be);
  dt_cuda_fill_seq_ops(be);
  dt_cuda_fill_loss_ops(be);

  dt_log_info("cuda backend: device %d, %s (compute capability %d.%d, %d SMs, %.1f GiB), TF32 %s%s", c->device,
              c->device_name, c->cc_major, c->cc_minor, c->sm_count, (double)c->total_mem / (1024.0 * 1024.0 * 1024.0),
              c->tf32 ? "on" : "off", dtk_sync_debug() ? ", synchronising after every kernel (sync-debug)" : "");
  *out = be;
  return 0;
}

/* ---- backend_cuda.h ---- */

static int is_cuda(dt_backend *be) { return be && be->name == backend_name; }

void *dt_backend_cuda_stream(dt_backend *be) { return is_cuda(be) ? (void *)((dt_cuda *)be->impl)->stream : NULL; }

int dt_backend_cuda_device(dt_backend *be) { return is_cuda(be) ? ((dt_cuda *)be->impl)->device : -1; }

int dt_backend_cuda_mem_info(dt_backend *be, size_t *used_bytes, size_t *total_bytes) {
  if (!is_cuda(be)) return dt_fail(DT_EXIT_RUNTIME, "dt_backend_cuda_mem_info: not a CUDA backend");
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  size_t free_b = 0, total_b = 0;
  DT_CUDA(cudaMemGetInfo(&free_b, &total_b));
  *used_bytes = total_b - free_b;
  *total_bytes = total_b;
  return 0;
}

int dt_cuda_host_alloc(size_t bytes, void **out) {
  *out = NULL;
  cudaError_t e = cudaMallocHost(out, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    *out = NULL;
    return dt_fail_context(dt_cuda_fail_at(e, "cudaMallocHost", __FILE__, __LINE__), "pinned host buffer of %zu bytes",
                           bytes);
  }
  return 0;
}

void dt_cuda_host_free(void *p) {
  if (!p) return;
  cudaError_t e = cudaFreeHost(p);
  if (e != cudaSuccess) dt_log_warn("cudaFreeHost failed: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
}
