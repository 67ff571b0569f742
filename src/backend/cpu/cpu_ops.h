/* cpu_ops.h: the CPU backend's ops, shared between its source files.
 *
 * Private to src/backend/cpu: the public surface is dt_backend_cpu_create()
 * in backend.h, which fills a dt_backend with these functions. Backend
 * memory is host memory here, so every op reads and writes its pointers
 * directly. One backend is used by one calling thread at a time (ops share
 * the scratch buffer below); each op parallelises internally with OpenMP.
 *
 * Determinism: parallel loops split work over rows (or columns) whose
 * results do not depend on each other, and every reduction sums in a fixed
 * order that depends neither on the thread count nor on the schedule, so
 * the same inputs give the same bits with any number of threads
 * (test_backend_cpu_misc checks 1 vs 2). The exception is gemm: each
 * element of C is one OpenBLAS call's full-k product, but which block of C
 * a call gets depends on the thread count, and OpenBLAS does not promise
 * block-independent bits; repeated runs with one thread count agree.
 */
#ifndef DTRAIN_BACKEND_CPU_OPS_H
#define DTRAIN_BACKEND_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <omp.h>

#include "backend/cpu/cpu_kernels.h"
#include "dtrain/backend.h"
#include "dtrain/error.h"

typedef struct {
  int threads;                /* OpenMP threads per parallel loop (>= 1) */
  const dt_cpu_kernels *kern; /* inner loops for this processor (SSE2 or AVX2) */
  void *scratch;              /* grow-only work space, owned here */
  size_t scratch_bytes;
  /* lazy Adam's bias corrections 1 - beta^t for t = 1..bc_n (index t - 1),
   * computed once each instead of two pow() per row and step */
  float *bc1, *bc2;
  int64_t bc_n, bc_cap;
  float bc_beta1, bc_beta2;
} dt_cpu_impl;

static inline dt_cpu_impl *dt_cpu(dt_backend *be) { return (dt_cpu_impl *)be->impl; }

/* Threads to use for a loop doing `work` element operations: one below the
 * size where starting a parallel region costs more than it saves. */
static inline int dt_cpu_threads_for(dt_backend *be, int64_t work) {
  int t = dt_cpu(be)->threads;
  return work < (int64_t)1 << 15 ? 1 : t;
}

/* This thread's share [*i0, *i1) of n items inside a parallel region
 * (contiguous, in thread order). */
static inline void dt_cpu_share(int64_t n, int64_t *i0, int64_t *i1) {
  int64_t t = omp_get_thread_num(), tn = omp_get_num_threads();
  *i0 = n * t / tn;
  *i1 = n * (t + 1) / tn;
}

/* Asks for the cache lines of `bytes` at p ahead of use: the row ops read
 * rows scattered over large tables, where one miss at a time would leave
 * the loop waiting on memory latency. */
static inline void dt_cpu_prefetch(const void *p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch((const char *)p + b);
}

/* Replaces the kernel set (tests compare the sets bit for bit). */
static inline void dt_cpu_use_kernels(dt_backend *be, const dt_cpu_kernels *k) { dt_cpu(be)->kern = k; }

/* Returns the scratch buffer with room for `bytes` (NULL + message on OOM). */
void *dt_cpu_scratch(dt_backend *be, size_t bytes, const char *op);

/* Fails with DT_EXIT_RUNTIME naming the op when `cond` is false: a bad
 * argument here is a bug in the caller (the model), not bad input. */
#define DT_CPU_REQUIRE(cond, op, ...)                                                 \
  do {                                                                                \
    if (!(cond)) return dt_fail(DT_EXIT_RUNTIME, "cpu backend " op ": " __VA_ARGS__); \
  } while (0)

/* dense (cpu_dense.c) */
int dt_cpu_gemm(dt_backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc);
int dt_cpu_add_bias(dt_backend *be, float *y, const float *bias, int64_t rows, int cols);
int dt_cpu_bias_grad(dt_backend *be, float *dbias, const float *dy, int64_t rows, int cols);
int dt_cpu_axpy(dt_backend *be, float *y, const float *x, int64_t n, float alpha);
int dt_cpu_scale(dt_backend *be, float *x, int64_t n, float alpha);
int dt_cpu_sumsq(dt_backend *be, const float *x, int64_t n, double *out_host);

/* activations (cpu_dropout.c) */
int dt_cpu_relu_dropout_fwd(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p, dt_dropout_key key);
int dt_cpu_relu_dropout_bwd(dt_backend *be, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                            dt_dropout_key key);

/* embedding rows (cpu_rows.c) */
int dt_cpu_gather_rows(dt_backend *be, float *out, const float *table, const int32_t *ids, int64_t n, int dim);
int dt_cpu_scatter_add_rows(dt_backend *be, float *dst, int64_t dst_rows, const int32_t *ids, const float *src,
                            int64_t n, int dim);
int dt_cpu_coalesce_rows(dt_backend *be, const int32_t *ids, const float *grads, int64_t n, int dim, int32_t *uniq,
                         float *sums, int64_t *m_host);

/* GRU (cpu_gru.c) */
int dt_cpu_gru_step_fwd(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h);
int dt_cpu_gru_step_bwd(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h);

/* CSR x dense (cpu_csr.c) */
int dt_cpu_csr_matmul(dt_backend *be, float *out, const int64_t *indptr, const int32_t *indices, const float *values,
                      const int32_t *rows, int64_t n, const float *wt, int o);
int dt_cpu_csr_matmul_grad(dt_backend *be, float *dwt, const int64_t *indptr, const int32_t *indices,
                           const float *values, const int32_t *rows, int64_t n, const float *dout, int o,
                           int64_t vocab);

/* gate (cpu_gate.c) */
int dt_cpu_softmax3_fwd(dt_backend *be, const float *logits, float *alpha, int64_t n);
int dt_cpu_softmax3_bwd(dt_backend *be, const float *alpha, const float *dalpha, float *dlogits, int64_t n);
int dt_cpu_gate_reg(dt_backend *be, const float *alpha, int64_t n, float lambda_ent, float lambda_bal,
                    const float *mean_host, int64_t n_global, float *dalpha, double *neg_entropy_sum_host);

/* scores and loss (cpu_score.c) */
int dt_cpu_bpr(dt_backend *be, const float *scores, int64_t n, int c, float inv_pairs, float *dscores,
               double *loss_sum_host);
int dt_cpu_rowdot_fwd(dt_backend *be, const float *u, const float *v, float *out, int64_t n, int c, int d);
int dt_cpu_rowdot_bwd(dt_backend *be, const float *u, const float *v, const float *dout, float *du, float *dv,
                      int64_t n, int c, int d);
int dt_cpu_mix3_fwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc, float *z,
                    int64_t n, int c, int d);
int dt_cpu_mix3_bwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc,
                    const float *dz, float *dalpha, float *dhs, float *dhd, float *dhc, int64_t n, int c, int d);
int dt_cpu_score_mix_fwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                         const float *bias, float *s, int64_t n, int c);
int dt_cpu_score_mix_bwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                         const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int c);

/* optimizers (cpu_optim.c) */
int dt_cpu_adam(dt_backend *be, float *param, const float *grad, float *m, float *v, int64_t n, dt_adam_hyper hyper);
int dt_cpu_adam_rows(dt_backend *be, float *table, float *m_table, float *v_table, int64_t *row_step,
                     const int32_t *ids, const float *grads, int64_t m, int dim, dt_adam_hyper hyper);
int dt_cpu_adagrad_rows(dt_backend *be, float *table, float *acc, const int32_t *ids, const float *grads, int64_t m,
                        int dim, dt_adam_hyper hyper);

/* evaluation (cpu_topk.c) */
int dt_cpu_topk(dt_backend *be, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx_host,
                float *val_host);

/* ==== sequence encoder and softmax losses (issue 13) ==== */

/* Checks a dt_seq_windows against its contract (offsets from 0 to n_tokens,
 * ascending, no window longer than max_len); names `op` in the message. */
int dt_cpu_check_windows(const char *op, dt_seq_windows w);

/* layer norm, input embedding (cpu_seq.c) */
int dt_cpu_layer_norm_fwd(dt_backend *be, const float *x, const float *weight, const float *bias, float eps, int64_t n,
                          int d, float *y, float *mean, float *rstd);
int dt_cpu_layer_norm_bwd(dt_backend *be, const float *dy, const float *x, const float *weight, const float *mean,
                          const float *rstd, int64_t n, int d, float *dx, int accumulate_dx, float *dweight,
                          float *dbias);
int dt_cpu_seq_embed_fwd(dt_backend *be, const float *table, const int32_t *ids, float scale, const float *pos,
                         int64_t pos_rows, dt_seq_windows w, int d, float *out);
int dt_cpu_seq_pos_grad(dt_backend *be, const float *dx, dt_seq_windows w, int d, int64_t pos_rows, float *dpos);

/* attention (cpu_attn.c) */
int dt_cpu_attn_fwd(dt_backend *be, const float *qkv, dt_seq_windows w, int d, int heads, float *out, float *probs);
int dt_cpu_attn_bwd(dt_backend *be, const float *qkv, const float *probs, const float *dout, dt_seq_windows w, int d,
                    int heads, float *dqkv);

/* losses (cpu_xent.c) */
int dt_cpu_bce(dt_backend *be, const float *scores, int64_t n, int c, float inv_count, float *dscores,
               double *loss_sum_host);
int dt_cpu_xent_stats(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                      const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score);
int dt_cpu_xent_loss(dt_backend *be, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                     float *lse, double *loss_sum_host);
int dt_cpu_xent_grad(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                     const int32_t *target, const float *lse, float scale, float *dscores, int ldd);

/* ==== end of issue 13 ==== */

#endif
