/* cuda_internal.h: the CUDA backend's state, shared by its host-side files
 * (the .c files of src/backend/cuda) and nothing else.
 *
 * The backend owns: one non-blocking stream (every op runs on it, in
 * order), a cuBLAS handle bound to that stream with a workspace of its own
 * (so cuBLAS picks the same kernels every run), scratch device buffers that
 * grow as ops need them and are reused across ops (stream order makes that
 * safe), device memory for reduction partials and scalars, and a small
 * pinned host buffer through which scalar results come back.
 */
#ifndef DTRAIN_CUDA_INTERNAL_H
#define DTRAIN_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "dtrain/backend.h"
#include "dtrain/error.h"

/* Scratch slots: an op uses any of them for its temporaries; the contents
 * do not survive to the next op. */
enum {
  DT_CUDA_SCR_CUB = 0,
  DT_CUDA_SCR_0,
  DT_CUDA_SCR_1,
  DT_CUDA_SCR_2,
  DT_CUDA_SCR_3,
  DT_CUDA_SCR_4,
  DT_CUDA_SCR_5,
  DT_CUDA_SCR_6,
  DT_CUDA_SCR_7,
  DT_CUDA_SCR_COUNT
};

/* Bytes of the pinned host buffer for results that come back to the host
 * (scalars; larger results go through dt_cuda_download_to). */
#define DT_CUDA_PINNED_BYTES 4096

typedef struct {
  int device;
  int tf32;
  char device_name[256];
  int cc_major, cc_minor;
  int sm_count;
  size_t total_mem;

  cudaStream_t stream;
  cublasHandle_t cublas;
  void *cublas_workspace;

  void *scratch[DT_CUDA_SCR_COUNT];
  size_t scratch_bytes[DT_CUDA_SCR_COUNT];

  double *partials; /* DTK_MAX_PARTIALS + 1 doubles: partial sums, then the total */
  int32_t *scalars; /* 16 int32 of device memory for counts that come back */
  void *pinned;     /* DT_CUDA_PINNED_BYTES of pinned host memory */
} dt_cuda;

/* The backend's state, after making its device current on this thread. */
int dt_cuda_enter(dt_backend *be, dt_cuda **out);
/* A scratch buffer of at least `bytes` bytes in `slot` (grown when smaller:
 * the stream is synchronised first, since queued work may still use the
 * old buffer). */
int dt_cuda_scratch(dt_cuda *c, int slot, size_t bytes, void **out);
/* Adds c->partials[0, count) on the device and returns the total. */
int dt_cuda_partials_to_host(dt_cuda *c, int count, double *out_host);
/* Copies `bytes` (<= DT_CUDA_PINNED_BYTES) from device memory to the host
 * through the pinned buffer and waits for it. */
int dt_cuda_small_to_host(dt_cuda *c, void *dst_host, const void *src, size_t bytes);
/* Records "cuda backend: <op>: <what>" for a call that broke an op's
 * contract (a bug in the caller) and returns DT_EXIT_RUNTIME. */
int dt_cuda_bad_call(const char *op, const char *fmt, ...) DT_PRINTF(2, 3);

/* Each ops file fills its entries of the table. */
void dt_cuda_fill_dense_ops(dt_backend *be);
void dt_cuda_fill_sparse_ops(dt_backend *be);
void dt_cuda_fill_model_ops(dt_backend *be);
void dt_cuda_fill_optim_ops(dt_backend *be);
void dt_cuda_fill_eval_ops(dt_backend *be);
/* issue 13: sequence encoder (cuda_ops_seq.c), losses (cuda_ops_loss.c) */
void dt_cuda_fill_seq_ops(dt_backend *be);
void dt_cuda_fill_loss_ops(dt_backend *be);

#endif
