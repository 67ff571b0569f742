/* backend.h: the op set the model is written against.
 *
 * A backend is a table of function pointers plus an allocator (the shape of
 * ggml's backend interface). The model, loss, optimizers and evaluation call
 * only these ops, so the CPU backend (src/backend/cpu, CBLAS + C) and the
 * CUDA backend (src/backend/cuda + kernels/, cuBLAS + CUDA C) are
 * interchangeable, and tests run one op on both and compare.
 *
 * Conventions, for every op:
 *  - Pointers named in the signature are backend memory (dt_backend.alloc),
 *    unless the name ends in _host. Row-major everywhere; shapes are in the
 *    comment above each op as [rows, cols].
 *  - Ops may run asynchronously (CUDA: in order on the backend's stream);
 *    results written to _host pointers are complete when the op returns.
 *  - "accumulate" means the op adds into its output (+=); otherwise it
 *    overwrites.
 *  - Every op returns 0 or an error code (error.h) with a message naming the
 *    op (CUDA: the failing call with file/line).
 *  - Reductions are deterministic: the same inputs give the same bits on
 *    the same backend and thread count (no float atomics in results).
 *  - One thread at a time calls a given backend's ops (they share its work
 *    space and, on CUDA, its stream); the ops parallelise internally.
 */
#ifndef DTRAIN_BACKEND_H
#define DTRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct dt_backend dt_backend;

/* Adam hyper-parameters for one update. The gradient used is
 * g = grad_scale * grad + weight_decay * param (torch.optim.Adam's L2). */
typedef struct {
  float lr, beta1, beta2, eps, weight_decay;
  float grad_scale; /* global-norm clipping factor (1 = none) */
  int64_t step;     /* dense: the update's step number t >= 1 (bias correction) */
} dt_adam_hyper;

/* What a dropout mask is keyed by: Philox(seed, DT_RNG_DROPOUT) with counter
 * (step, site, row_keys[r] low/high 32 bits, element); dropping is
 * dt_dropout_keep() of op_math.h. row_keys are backend memory, one per row,
 * unique across the global batch and independent of the rank count. */
typedef struct {
  uint64_t seed;
  uint32_t step;
  uint32_t site; /* which dropout layer (DT_SITE_*) */
  const int64_t *row_keys;
} dt_dropout_key;

/* ==== Sequence encoder (SASRec) and softmax losses: types (issue 13) ==== */

/* Variable-length windows packed sequence-major, the SASRec encoder's
 * layout: window s holds rows [offsets[s], offsets[s+1]) of a [n_tokens, *]
 * matrix, its positions p = 0 .. len_s - 1 in order (len_s = offsets[s+1] -
 * offsets[s], 0 allowed). offsets[0] = 0, ascending, offsets[n_seq] =
 * n_tokens. max_len (a host value) must be >= every len_s: the CUDA backend
 * pads each window to it inside the attention ops, the CPU backend checks
 * the offsets against it. Passed by value. */
typedef struct {
  const int32_t *offsets; /* backend memory, [n_seq + 1] */
  int64_t n_seq;
  int64_t n_tokens;
  int max_len;
} dt_seq_windows;

/* ==== end of issue 13 types ==== */

struct dt_backend {
  const char *name; /* "cpu" or "cuda" */
  void *impl;

  /* ---- memory ---- */
  void *(*alloc)(dt_backend *be, size_t bytes); /* NULL on failure (message set) */
  void (*free)(dt_backend *be, void *p);
  int (*upload)(dt_backend *be, void *dst, const void *src_host, size_t bytes);
  int (*download)(dt_backend *be, void *dst_host, const void *src, size_t bytes);
  int (*copy)(dt_backend *be, void *dst, const void *src, size_t bytes);
  int (*zero)(dt_backend *be, void *p, size_t bytes);
  int (*sync)(dt_backend *be);

  /* ---- dense linear algebra ---- */
  /* C[m,n] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T (trans_x != 0);
   * A is [m,k] (or [k,m] transposed), B is [k,n] (or [n,k]); leading
   * dimensions are row strides. */
  int (*gemm)(dt_backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);
  /* y[r,c] += bias[c]          y: [rows, cols] */
  int (*add_bias)(dt_backend *be, float *y, const float *bias, int64_t rows, int cols);
  /* dbias[c] += sum_r dy[r,c]  (accumulate) */
  int (*bias_grad)(dt_backend *be, float *dbias, const float *dy, int64_t rows, int cols);
  /* y[i] += alpha * x[i] */
  int (*axpy)(dt_backend *be, float *y, const float *x, int64_t n, float alpha);
  /* x[i] *= alpha */
  int (*scale)(dt_backend *be, float *x, int64_t n, float alpha);
  /* *out_host = sum_i x[i]^2, accumulated in double */
  int (*sumsq)(dt_backend *be, const float *x, int64_t n, double *out_host);

  /* ---- activations ---- */
  /* In place on x [rows, cols]: x = relu(x) if `relu`, then dropout with
   * probability p (kept values scaled by 1/(1-p)) when p > 0. */
  int (*relu_dropout_fwd)(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p, dt_dropout_key key);
  /* In place on dy [rows, cols], given the forward output y: with relu,
   * dy *= (y > 0) / (1-p); without relu, dy *= mask / (1-p) (the mask is
   * recomputed from `key`). */
  int (*relu_dropout_bwd)(dt_backend *be, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                          dt_dropout_key key);

  /* ---- embedding tables ---- */
  /* out[i,:] = table[ids[i],:]       out: [n, dim] */
  int (*gather_rows)(dt_backend *be, float *out, const float *table, const int32_t *ids, int64_t n, int dim);
  /* dst[ids[i],:] += src[i,:] for ids[i] in [0, dst_rows); other ids are
   * skipped. In-range ids must be unique (no two rows add into one).
   * dst: [dst_rows, dim], src: [n, dim]. (The backward of gather_rows when
   * the gathered rows are distinct, e.g. GRU read-outs.) */
  int (*scatter_add_rows)(dt_backend *be, float *dst, int64_t dst_rows, const int32_t *ids, const float *src, int64_t n,
                          int dim);
  /* Coalesces sparse row gradients: sorts ids, sums the rows of equal ids
   * (in input order, deterministic) into sums [m, dim], writes the sorted
   * unique ids to uniq and m to *m_host. ids: [n], grads: [n, dim]; uniq
   * and sums must have room for n rows. */
  int (*coalesce_rows)(dt_backend *be, const int32_t *ids, const float *grads, int64_t n, int dim, int32_t *uniq,
                       float *sums, int64_t *m_host);

  /* ---- GRU (torch.nn.GRU gate order r, z, n) ---- */
  /* One time step for `a` sequences, hidden size h:
   *   xg [a,3h] = x W_ih^T + b_ih,   hg [a,3h] = h_prev W_hh^T + b_hh
   *   r = sig(xg_r + hg_r), z = sig(xg_z + hg_z), n = tanh(xg_n + r*hg_n)
   *   h_out = (1-z)*n + z*h_prev
   * cache [a,4h] keeps (r, z, n, hg_n) for the backward step. h_prev may be
   * NULL (zero state). */
  int (*gru_step_fwd)(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out, float *cache,
                      int64_t a, int h);
  /* Backward of one step: from dh_out [a,h] writes dxg [a,3h] and dhg [a,3h]
   * (gradients of the pre-activations above) and accumulates the direct
   * term z*dh_out into dh_prev [a,h] (dh_prev may be NULL when h_prev was
   * NULL). The caller adds dhg W_hh into dh_prev with gemm. */
  int (*gru_step_bwd)(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                      float *dhg, float *dh_prev, int64_t a, int h);

  /* ---- TF-IDF (CSR) x dense ---- */
  /* out[i,:] = sum_j X[rows[i], j] * wt[j,:]   out: [n, o], wt: [vocab, o]
   * X is the CSR (indptr [n_rows+1], indices, values) uploaded once. */
  int (*csr_matmul)(dt_backend *be, float *out, const int64_t *indptr, const int32_t *indices, const float *values,
                    const int32_t *rows, int64_t n, const float *wt, int o);
  /* dwt[j,:] += sum_i X[rows[i], j] * dout[i,:]  (accumulate; deterministic) */
  int (*csr_matmul_grad)(dt_backend *be, float *dwt, const int64_t *indptr, const int32_t *indices, const float *values,
                         const int32_t *rows, int64_t n, const float *dout, int o, int64_t vocab);

  /* ---- gate ---- */
  /* alpha[i,:] = softmax(logits[i,:])   [n, 3] */
  int (*softmax3_fwd)(dt_backend *be, const float *logits, float *alpha, int64_t n);
  /* dlogits[i,:] = alpha * (dalpha - <alpha, dalpha>)   (overwrite) */
  int (*softmax3_bwd)(dt_backend *be, const float *alpha, const float *dalpha, float *dlogits, int64_t n);
  /* Anti-collapse regularisers (MODEL.md "Loss") over the global batch of
   * n_global rows whose column means are mean_host[3]:
   *   ent = lambda_ent / n_global * sum_i sum_k alpha log(alpha + 1e-8)
   *   bal = lambda_bal * sum_k (mean_k - 1/3)^2
   * Accumulates d(ent + bal)/dalpha into dalpha [n,3] for the local rows and
   * writes the local part of sum_i sum_k alpha log(alpha+1e-8) (the negated
   * entropy sum) to *neg_entropy_sum_host. */
  int (*gate_reg)(dt_backend *be, const float *alpha, int64_t n, float lambda_ent, float lambda_bal,
                  const float *mean_host, int64_t n_global, float *dalpha, double *neg_entropy_sum_host);

  /* ---- scores and loss ---- */
  /* BPR over scores [n, c] (column 0 the positive, 1..c-1 negatives):
   *   loss_sum = sum_i sum_j>0 softplus(-(s_i0 - s_ij))
   *   dscores = inv_pairs * d(loss_sum)      (overwrite)
   * *loss_sum_host gets the local sum (double). */
  int (*bpr)(dt_backend *be, const float *scores, int64_t n, int c, float inv_pairs, float *dscores,
             double *loss_sum_host);
  /* out[i,j] = <u[i,:], v[i*c+j,:]>   u: [n,d], v: [n*c, d], out: [n,c] */
  int (*rowdot_fwd)(dt_backend *be, const float *u, const float *v, float *out, int64_t n, int c, int d);
  /* du[i,:] += sum_j dout[i,j] v[i*c+j,:];  dv[i*c+j,:] += dout[i,j] u[i,:]
   * (accumulate; either output may be NULL) */
  int (*rowdot_bwd)(dt_backend *be, const float *u, const float *v, const float *dout, float *du, float *dv, int64_t n,
                    int c, int d);
  /* Thesis fusion: z[i*c+j,:] = a_s hs[i*c+j,:] + a_d hd[i,:] + a_c hc[i*c+j,:]
   * with (a_s, a_d, a_c) = alpha[i,:]; a NULL tower contributes 0.
   * z, hs, hc: [n*c, d]; hd: [n, d]; alpha: [n,3]. */
  int (*mix3_fwd)(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc, float *z,
                  int64_t n, int c, int d);
  /* dalpha[i,k] = sum_j <dz[i*c+j,:], h_k>  (overwrite); dhs, dhc accumulate
   * a_k dz; dhd[i,:] accumulates a_d sum_j dz[i*c+j,:]. NULL skips. */
  int (*mix3_bwd)(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc,
                  const float *dz, float *dalpha, float *dhs, float *dhd, float *dhc, int64_t n, int c, int d);
  /* v3 mixture: s[i,j] = sum_k alpha[i,k] sk[i,j] + bias[i,j]; a NULL sk is 0,
   * a NULL bias is 0. All [n, c] except alpha [n,3]. */
  int (*score_mix_fwd)(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                       const float *bias, float *s, int64_t n, int c);
  /* dalpha[i,k] = sum_j ds[i,j] sk[i,j] (overwrite; 0 for NULL sk);
   * dsk[i,j] = alpha[i,k] ds[i,j] (overwrite; NULL skips). */
  int (*score_mix_bwd)(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                       const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int c);

  /* ---- optimizers ---- */
  /* Adam over a contiguous buffer of n parameters (one fused pass). */
  int (*adam)(dt_backend *be, float *param, const float *grad, float *m, float *v, int64_t n, dt_adam_hyper hyper);
  /* Lazy Adam on the touched rows of a table [rows, dim]: for each k < m,
   * row = ids[k], row_step[row] += 1, then Adam on that row with bias
   * correction from row_step[row] and grads [m, dim] (hyper.step unused).
   * ids are unique. */
  int (*adam_rows)(dt_backend *be, float *table, float *m_table, float *v_table, int64_t *row_step, const int32_t *ids,
                   const float *grads, int64_t m, int dim, dt_adam_hyper hyper);
  /* Row-wise Adagrad: g = grad_scale*grad + wd*row; acc[row] += mean(g^2);
   * row -= lr * g / (sqrt(acc[row]) + eps). */
  int (*adagrad_rows)(dt_backend *be, float *table, float *acc, const int32_t *ids, const float *grads, int64_t m,
                      int dim, dt_adam_hyper hyper);

  /* ---- evaluation ---- */
  /* For each row i of scores [n, cols]: the k largest (value, column) pairs,
   * highest first, ties to the lower column; columns with -INFINITY are
   * never returned (fewer than k are then padded with column -1). */
  int (*topk)(dt_backend *be, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx_host, float *val_host);

  /* ---- lifetime ---- */
  void (*destroy)(dt_backend *be);

  /* ==== Sequence encoder (SASRec, MODEL.md 1c) and softmax losses (issue 13) ====
   * Shapes as above; dt_seq_windows is described with its type. */

  /* ---- layer norm (torch.nn.LayerNorm over the last dimension) ---- */
  /* For each row r of x [n, d]:
   *   mean_r = sum_c x[r,c] / d,  var_r = sum_c (x[r,c] - mean_r)^2 / d (biased),
   *   rstd_r = 1 / sqrt(var_r + eps),
   *   y[r,c] = (x[r,c] - mean_r) rstd_r weight[c] + bias[c].
   * y [n, d], mean [n], rstd [n] are overwritten (mean and rstd are what the
   * backward needs); y must not alias x. */
  int (*layer_norm_fwd)(dt_backend *be, const float *x, const float *weight, const float *bias, float eps, int64_t n,
                        int d, float *y, float *mean, float *rstd);
  /* Backward, from dy [n, d] and the forward's x, mean, rstd:
   *   xhat = (x - mean) rstd, g = dy weight,
   *   dx[r,c] = rstd_r (g - mean_c'(g) - xhat mean_c'(g xhat)): written to
   *     dx [n, d], or added to it when accumulate_dx != 0 (the residual
   *     branch's gradient already there);
   *   dweight[c] += sum_r dy xhat, dbias[c] += sum_r dy (accumulate,
   *     deterministic column sums as bias_grad; either may be NULL).
   * dx must not alias dy or x. */
  int (*layer_norm_bwd)(dt_backend *be, const float *dy, const float *x, const float *weight, const float *mean,
                        const float *rstd, int64_t n, int d, float *dx, int accumulate_dx, float *dweight,
                        float *dbias);

  /* ---- causal multi-head self-attention within packed windows ---- */
  /* d = heads * dh. qkv [n_tokens, 3d] is in_proj's output (as
   * torch.nn.MultiheadAttention: Q in columns [0, d), K in [d, 2d), V in
   * [2d, 3d)); head k uses columns k*dh .. k*dh + dh - 1 of each. For window
   * s, head k and positions i, j < len_s (rows offsets[s] + i, + j):
   *   S_ij = <Q_i, K_j> / sqrt(dh),
   *   P_ij = exp(S_ij - max_{j'<=i} S_ij') / sum_{j'<=i} exp(S_ij' - max) for
   *          j <= i (causal: a position sees itself and earlier ones of its
   *          own window only), P_ij = 0 for j > i,
   *   out[row i, k*dh + c] = sum_{j<=i} P_ij V[row j, k*dh + c].
   * out [n_tokens, d] is overwritten (heads side by side: out_proj's input).
   * probs (overwritten) keeps P for the backward, dt_attn_probs_floats()
   * floats = heads * sum_s len_s^2: window s's part starts at heads *
   * sum_{s'<s} len_s'^2, then head k's [len_s, len_s] matrix, row-major, at
   * k * len_s^2 (zeros above the diagonal). Same layout on every backend. */
  int (*attn_fwd)(dt_backend *be, const float *qkv, dt_seq_windows w, int d, int heads, float *out, float *probs);
  /* Backward, from dout [n_tokens, d] and the forward's qkv and probs, to
   * dqkv [n_tokens, 3d] (overwritten, in qkv's layout):
   *   dV_j = sum_{i>=j} P_ij dout_i,  dP_ij = <dout_i, V_j>,
   *   dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'),
   *   dQ_i = sum_j dS_ij K_j / sqrt(dh),  dK_j = sum_i dS_ij Q_i / sqrt(dh).
   * Each window and head is independent: deterministic. */
  int (*attn_bwd)(dt_backend *be, const float *qkv, const float *probs, const float *dout, dt_seq_windows w, int d,
                  int heads, float *dqkv);

  /* ---- the encoder's input embedding ---- */
  /* out[t,:] = scale * table[ids[t],:] + pos[p_t,:] for the token in row t
   * at position p_t of its window (SASRec: scale = sqrt(d), ids = item + 1).
   * table [*, d], ids [n_tokens], pos [pos_rows, d] with w.max_len <=
   * pos_rows; out [n_tokens, d] overwritten. The table rows' gradient is
   * scale * dout, coalesced by ids as any gathered row's. */
  int (*seq_embed_fwd)(dt_backend *be, const float *table, const int32_t *ids, float scale, const float *pos,
                       int64_t pos_rows, dt_seq_windows w, int d, float *out);
  /* The positional table's gradient: dpos[p,:] += sum over the windows s with
   * len_s > p, in window order, of dx[offsets[s] + p, :] (accumulate; the
   * same order on every backend; p < w.max_len <= pos_rows). */
  int (*seq_pos_grad)(dt_backend *be, const float *dx, dt_seq_windows w, int d, int64_t pos_rows, float *dpos);

  /* ---- losses ---- */
  /* Binary cross-entropy (SASRec's loss) over scores [n, c], column 0 the
   * positive, 1..c-1 negatives:
   *   loss_sum = sum_i [softplus(-s_i0) + sum_{j>0} softplus(s_ij)]
   *   dscores = inv_count * d(loss_sum)/dscores  (overwrite; may be scores)
   * *loss_sum_host gets the local sum (double), as bpr. */
  int (*bce)(dt_backend *be, const float *scores, int64_t n, int c, float inv_count, float *dscores,
             double *loss_sum_host);
  /* Softmax cross-entropy, loss_i = lse_i - s_i,target_i with lse_i = log
   * sum_j e^{s_ij} over all columns, when the columns (classes) arrive in
   * blocks: a block [n, cols] with row stride ld holds the score columns
   * col0 .. col0 + cols - 1. target [n] holds each row's target column
   * (global; NULL: column 0 for every row; < 0: in no block, when the caller
   * scores the targets itself and fills tgt_score). Blocks may come in any
   * order.
   * Pass 1, once per block: each row's running max and sum, [n] each:
   *   m' = max(m, max_j s_ij),  sum' = sum e^{m - m'} + sum_j e^{s_ij - m'}
   * (first != 0: this is the first block; the old contents are ignored),
   * and tgt_score[i] = s_i,target_i when the target column is in the block
   * (rows whose target is elsewhere keep their tgt_score). */
  int (*xent_stats)(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                    const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score);
  /* After pass 1: lse[i] = run_max[i] + log(run_sum[i]) ([n], overwrite;
   * may be run_max or run_sum, in place) and *loss_sum_host = sum_i (lse_i -
   * tgt_score_i) over the local rows, in double. */
  int (*xent_loss)(dt_backend *be, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                   float *lse, double *loss_sum_host);
  /* Pass 2, once per block: dscores[i,j] = scale (e^{s_ij - lse_i} - [col0 +
   * j == target_i]) with row stride ldd (overwrite; dscores may be scores
   * with ldd == ld, in place). */
  int (*xent_grad)(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                   const int32_t *target, const float *lse, float scale, float *dscores, int ldd);

  /* ==== end of issue 13 ops ==== */
};

/* Dropout sites (the `site` of dt_dropout_key). Never renumber. */
enum {
  DT_SITE_STATIC = 1,
  DT_SITE_GRU = 2,
  DT_SITE_CONTENT = 3,
  DT_SITE_HEAD = 4,
  /* the SASRec encoder (MODEL.md 1c): its input embedding, then per
   * block k the attention output, the FFN hidden layer and the FFN
   * output, at site + DT_SITE_BLOCK * k */
  DT_SITE_SASREC_EMB = 5,
  DT_SITE_SASREC_ATTN = 6,
  DT_SITE_SASREC_FFN_HIDDEN = 7,
  DT_SITE_SASREC_FFN_OUT = 8
};
#define DT_SITE_BLOCK 256u

/* Creates the CPU backend with `threads` threads (0 = all cores). */
int dt_backend_cpu_create(int threads, dt_backend **out);

/* What the CPU libraries read when they load (cpu_blas_core.c,
 * cpu_omp_wait.c). dt_cpu_restart_check runs first thing in main() and
 * restarts the binary once (execv of /proc/self/exe) with
 * - OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels on a
 *   CPU that runs faster ones and OPENBLAS_CORETYPE is unset;
 * - GOMP_SPINCOUNT=10000 when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is
 *   set (libgomp's threads spin 300000 iterations while they wait, which
 *   slows training 10-30x when another process is busy on the machine).
 * A user's own setting of either is kept. */
void dt_cpu_restart_check(char **argv);
/* Logs (once, at info level) what was chosen and by whom; the CPU backend
 * calls it when it starts. */
void dt_blas_core_note(void);
/* The core to restart with for OpenBLAS core name `core`, its config string
 * and the user's OPENBLAS_CORETYPE (NULL if unset), or NULL to keep it. */
const char *dt_blas_core_choice(const char *core, const char *config, const char *user_setting);
/* The OpenMP wait setting to restart with, given the user's OMP_WAIT_POLICY
 * and GOMP_SPINCOUNT (NULL or "" = unset): 1 with the variable to set in
 * *var and its value in *value, or 0 (the user chose) with both NULL. */
int dt_omp_wait_choice(const char *user_policy, const char *user_spincount, const char **var, const char **value);
/* Logs the wait policy in force: set by dtrain's restart (set_by_dtrain),
 * the user's, or the runtime's default when the restart failed. */
void dt_omp_wait_note(int set_by_dtrain);
/* Creates the CUDA backend on device `device` (DT_EXIT_RUNTIME with a clear
 * message when CUDA is not compiled in or no usable device exists). */
int dt_backend_cuda_create(int device, int tf32, dt_backend **out);
/* Number of usable CUDA devices (0 when none or not compiled in); `why`
 * receives the reason when 0. */
int dt_backend_cuda_device_count(char *why, int why_size);
/* Picks a backend from its config name ("auto" | "cpu" | "cuda"); auto picks
 * CUDA when a device is usable and says which it picked. */
int dt_backend_create(const char *name, int threads, int local_rank, int tf32, dt_backend **out);

/* Whether the backend's memory is the host's (the CPU backend): host code may
 * then read and write its buffers directly, with no upload or download. */
int dt_backend_host_memory(const dt_backend *be);

/* Convenience wrappers that check the result of alloc. */
int dt_backend_alloc(dt_backend *be, size_t bytes, void **out);
/* Frees *p (if set) and allocates `bytes` in its place (contents are not
 * kept); bytes == 0 leaves *p NULL. For grow-only work buffers. */
int dt_backend_replace(dt_backend *be, void **p, size_t bytes);

/* ==== Sequence encoder and softmax losses: helpers (issue 13; backend_seq.c) ==== */

/* Floats of attn_fwd's probs for windows with these offsets (host copy,
 * [n_seq + 1]): heads * sum_s len_s^2. */
int64_t dt_attn_probs_floats(const int32_t *offsets_host, int64_t n_seq, int heads);
/* Softmax cross-entropy over scores [n, c] in one block, column 0 every
 * row's target (sampled softmax with [positive, negatives] rows): the three
 * xent ops above. dscores = scale * d(sum_i lse_i - s_i0)/dscores
 * (overwrite; may be scores), *loss_sum_host = that sum (local rows,
 * double). work: 3n floats of backend memory. */
int dt_softmax_xent(dt_backend *be, const float *scores, int64_t n, int c, float scale, float *dscores, float *work,
                    double *loss_sum_host);

/* ==== end of issue 13 helpers ==== */

#endif
