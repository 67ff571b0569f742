/* The CPU backend's table, memory and threads. Backend memory is 64-byte
 * aligned host memory, so upload/download/copy are memcpy and sync has
 * nothing to wait for. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "dtrain/log.h"

enum { CPU_ALIGN = 64 };

static void *cpu_alloc(dt_backend *be, size_t bytes) {
  (void)be;
  /* Round up so a zero-byte request still gives a distinct pointer and the
   * last vector load of a row never leaves the allocation's cache line. */
  size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  if (rounded == 0) rounded = CPU_ALIGN;
  if (rounded < bytes) {
    dt_fail(DT_EXIT_RUNTIME, "cpu backend alloc: %zu bytes is too large", bytes);
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, CPU_ALIGN, rounded) != 0) {
    dt_fail(DT_EXIT_RUNTIME, "cpu backend alloc: out of memory allocating %zu bytes; reduce the batch size or data set",
            bytes);
    return NULL;
  }
  return p;
}

static void cpu_free(dt_backend *be, void *p) {
  (void)be;
  free(p);
}

static int cpu_upload(dt_backend *be, void *dst, const void *src_host, size_t bytes) {
  (void)be;
  if (bytes) memcpy(dst, src_host, bytes);
  return 0;
}

static int cpu_download(dt_backend *be, void *dst_host, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memcpy(dst_host, src, bytes);
  return 0;
}

static int cpu_copy(dt_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  /* memmove: a copy within one buffer may overlap */
  if (bytes) memmove(dst, src, bytes);
  return 0;
}

static int cpu_zero(dt_backend *be, void *p, size_t bytes) {
  (void)be;
  if (bytes) memset(p, 0, bytes);
  return 0;
}

static int cpu_sync(dt_backend *be) {
  (void)be;
  return 0;
}

void *dt_cpu_scratch(dt_backend *be, size_t bytes, const char *op) {
  dt_cpu_impl *impl = dt_cpu(be);
  if (impl->scratch_bytes >= bytes) return impl->scratch;
  size_t want = bytes + bytes / 2; /* grow geometrically: batch sizes vary a little */
  void *p = cpu_alloc(be, want);
  if (!p) {
    dt_fail_context(DT_EXIT_RUNTIME, "cpu backend %s: work space", op);
    return NULL;
  }
  free(impl->scratch);
  impl->scratch = p;
  impl->scratch_bytes = want;
  return p;
}

static void cpu_destroy(dt_backend *be) {
  if (!be) return;
  dt_cpu_impl *impl = dt_cpu(be);
  if (impl) {
    free(impl->scratch);
    free(impl->bc1);
    free(impl->bc2);
  }
  free(impl);
  free(be);
}

int dt_backend_cpu_create(int threads, dt_backend **out) {
  *out = NULL;
  if (threads < 0) return dt_fail(DT_EXIT_USAGE, "backend.threads = %d: must be >= 0 (0 = all cores)", threads);
  int cores = omp_get_num_procs(); /* respects the process's CPU affinity mask */
  if (threads == 0) threads = cores > 0 ? cores : 1;

  dt_cpu_impl *impl = dt_xcalloc(1, sizeof *impl);
  impl->threads = threads;
  impl->kern = dt_cpu_kernels_best();
  dt_backend *be = dt_xcalloc(1, sizeof *be);
  be->name = "cpu";
  be->impl = impl;

  be->alloc = cpu_alloc;
  be->free = cpu_free;
  be->upload = cpu_upload;
  be->download = cpu_download;
  be->copy = cpu_copy;
  be->zero = cpu_zero;
  be->sync = cpu_sync;

  be->gemm = dt_cpu_gemm;
  be->add_bias = dt_cpu_add_bias;
  be->bias_grad = dt_cpu_bias_grad;
  be->axpy = dt_cpu_axpy;
  be->scale = dt_cpu_scale;
  be->sumsq = dt_cpu_sumsq;

  be->relu_dropout_fwd = dt_cpu_relu_dropout_fwd;
  be->relu_dropout_bwd = dt_cpu_relu_dropout_bwd;

  be->gather_rows = dt_cpu_gather_rows;
  be->scatter_add_rows = dt_cpu_scatter_add_rows;
  be->coalesce_rows = dt_cpu_coalesce_rows;

  be->gru_step_fwd = dt_cpu_gru_step_fwd;
  be->gru_step_bwd = dt_cpu_gru_step_bwd;

  be->csr_matmul = dt_cpu_csr_matmul;
  be->csr_matmul_grad = dt_cpu_csr_matmul_grad;

  be->softmax3_fwd = dt_cpu_softmax3_fwd;
  be->softmax3_bwd = dt_cpu_softmax3_bwd;
  be->gate_reg = dt_cpu_gate_reg;

  be->bpr = dt_cpu_bpr;
  be->rowdot_fwd = dt_cpu_rowdot_fwd;
  be->rowdot_bwd = dt_cpu_rowdot_bwd;
  be->mix3_fwd = dt_cpu_mix3_fwd;
  be->mix3_bwd = dt_cpu_mix3_bwd;
  be->score_mix_fwd = dt_cpu_score_mix_fwd;
  be->score_mix_bwd = dt_cpu_score_mix_bwd;

  be->adam = dt_cpu_adam;
  be->adam_rows = dt_cpu_adam_rows;
  be->adagrad_rows = dt_cpu_adagrad_rows;

  be->topk = dt_cpu_topk;
  be->destroy = cpu_destroy;

  /* sequence encoder and softmax losses (issue 13) */
  be->layer_norm_fwd = dt_cpu_layer_norm_fwd;
  be->layer_norm_bwd = dt_cpu_layer_norm_bwd;
  be->attn_fwd = dt_cpu_attn_fwd;
  be->attn_bwd = dt_cpu_attn_bwd;
  be->seq_embed_fwd = dt_cpu_seq_embed_fwd;
  be->seq_pos_grad = dt_cpu_seq_pos_grad;
  be->bce = dt_cpu_bce;
  be->xent_stats = dt_cpu_xent_stats;
  be->xent_loss = dt_cpu_xent_loss;
  be->xent_grad = dt_cpu_xent_grad;

  /* OpenBLAS runs single-threaded inside the OpenMP threads (dt_cpu_gemm
   * splits C among them): one pool, no oversubscription. The setting is
   * process-wide and the same for every backend. */
  openblas_set_num_threads(1);
  dt_blas_core_note();
  dt_log_debug("backend cpu: %d thread%s (%d cores visible), %s kernels, OpenBLAS %s", threads, threads == 1 ? "" : "s",
               cores, impl->kern->name, openblas_get_config());
  *out = be;
  return 0;
}
