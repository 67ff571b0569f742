/* cuda_ops_seq.c: the SASRec encoder's ops on the CUDA backend (issue 13):
 * layer norm, the input embedding and its positional gradient, and causal
 * multi-head attention over packed windows.
 *
 * Attention pads every (window, head) pair to the longest window T inside
 * the op, so that each of its matrix products is one cuBLAS
 * strided-batched GEMM over n_seq * heads pairs (kernels/attn.cu has the
 * layouts). Scratch, in floats, with B = n_seq * heads and dh = d / heads:
 * forward 3 B T dh + B T^2, backward 4 B T dh + 2 B T^2 (at the SASRec
 * chunk step, 41 windows of 99 tokens, d = 64, one head: 1.0 and 1.3 M
 * floats). The padded rows and columns are zeros, so every GEMM's valid
 * entries are the unpadded products. */
#include <math.h>
#include <stdint.h>

#include "backend/cuda/cuda_internal.h"

/* ---- layer norm ---- */

static int cu_layer_norm_fwd(dt_backend *be, const float *x, const float *weight, const float *bias, float eps,
                             int64_t n, int d, float *y, float *mean, float *rstd) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || d < 1) return dt_cuda_bad_call("layer_norm_fwd", "n=%lld d=%d", (long long)n, d);
  if (n == 0) return 0;
  DT_KERNEL(dtk_layer_norm_fwd, (c->stream, x, weight, bias, eps, n, d, y, mean, rstd));
  return 0;
}

static int cu_layer_norm_bwd(dt_backend *be, const float *dy, const float *x, const float *weight, const float *mean,
                             const float *rstd, int64_t n, int d, float *dx, int accumulate_dx, float *dweight,
                             float *dbias) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || d < 1) return dt_cuda_bad_call("layer_norm_bwd", "n=%lld d=%d", (long long)n, d);
  if (n == 0) return 0;
  DT_KERNEL(dtk_layer_norm_bwd_dx, (c->stream, dy, x, weight, mean, rstd, n, d, dx, accumulate_dx));
  if (!dweight && !dbias) return 0;
  const int64_t chunks = (n + DTK_BIAS_CHUNK - 1) / DTK_BIAS_CHUNK;
  if (chunks > 65535)
    return dt_cuda_bad_call("layer_norm_bwd", "%lld rows is more than the %d this kernel supports", (long long)n,
                            65535 * DTK_BIAS_CHUNK);
  void *part;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, 2 * (size_t)chunks * (size_t)d * sizeof(float), &part));
  float *part_w = part, *part_b = part_w + chunks * d;
  DT_KERNEL(dtk_layer_norm_bwd_partials, (c->stream, dy, x, mean, rstd, n, d, part_w, part_b));
  if (dweight) DT_KERNEL(dtk_bias_grad_finish, (c->stream, part_w, chunks, d, dweight));
  if (dbias) DT_KERNEL(dtk_bias_grad_finish, (c->stream, part_b, chunks, d, dbias));
  return 0;
}

/* ---- windows ---- */

/* What the host can check of a dt_seq_windows (its offsets are device
 * memory: the CPU backend checks them, and the op tests run both). */
static int check_windows(const char *op, dt_seq_windows w) {
  if (w.n_seq < 0 || w.n_tokens < 0 || w.max_len < 0 || w.n_tokens > INT32_MAX || (w.n_seq > 0 && !w.offsets) ||
      (w.n_tokens > 0 && w.n_tokens > w.n_seq * (int64_t)w.max_len))
    return dt_cuda_bad_call(op, "windows n_seq=%lld n_tokens=%lld max_len=%d offsets=%p", (long long)w.n_seq,
                            (long long)w.n_tokens, w.max_len, (const void *)w.offsets);
  return 0;
}

static int cu_seq_embed_fwd(dt_backend *be, const float *table, const int32_t *ids, float scale, const float *pos,
                            int64_t pos_rows, dt_seq_windows w, int d, float *out) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_windows("seq_embed_fwd", w));
  if (d < 0 || w.max_len > pos_rows)
    return dt_cuda_bad_call("seq_embed_fwd", "d=%d, max_len %d with %lld positions", d, w.max_len, (long long)pos_rows);
  if (w.n_tokens == 0 || d == 0) return 0;
  DT_KERNEL(dtk_seq_embed, (c->stream, table, ids, scale, pos, w.offsets, w.n_seq, d, out));
  return 0;
}

static int cu_seq_pos_grad(dt_backend *be, const float *dx, dt_seq_windows w, int d, int64_t pos_rows, float *dpos) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_windows("seq_pos_grad", w));
  if (d < 0 || w.max_len > pos_rows)
    return dt_cuda_bad_call("seq_pos_grad", "d=%d, max_len %d with %lld positions", d, w.max_len, (long long)pos_rows);
  if (w.n_tokens == 0 || d == 0) return 0;
  DT_KERNEL(dtk_seq_pos_grad, (c->stream, dx, w.offsets, w.n_seq, w.max_len, d, dpos));
  return 0;
}

/* ---- attention ---- */

/* Row-major C_b = alpha op(A_b) op(B_b) + beta C_b for b < batch, operand b
 * at b times its stride: the column-major transposes, as cu_gemm does. */
static int gemm_batched(dt_cuda *c, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        long long sa, const float *b, int ldb, long long sb, float beta, float *cm, int ldc,
                        long long sc, int batch) {
  DT_CUBLAS(cublasSgemmStridedBatched(c->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
                                      k, &alpha, b, ldb, sb, a, lda, sa, &beta, cm, ldc, sc, batch));
  return 0;
}

typedef struct {
  int64_t n_seq;
  int heads, d, dh, T, batch;
  long long op, sq; /* strides: a padded operand [T, dh], a score matrix [T, T] */
  float scale;
} attn_shape;

static int attn_check(const char *op, dt_seq_windows w, int d, int heads, attn_shape *sh) {
  DT_TRY(check_windows(op, w));
  if (heads < 1 || d < 1 || d % heads != 0) return dt_cuda_bad_call(op, "d=%d is not a multiple of heads=%d", d, heads);
  if (w.n_seq * heads > INT32_MAX || (double)w.n_seq * heads * w.max_len * (double)w.max_len > 9.0e18)
    return dt_cuda_bad_call(op, "%lld windows x %d heads of up to %d tokens is too large", (long long)w.n_seq, heads,
                            w.max_len);
  sh->n_seq = w.n_seq;
  sh->heads = heads;
  sh->d = d;
  sh->dh = d / heads;
  sh->T = w.max_len;
  sh->batch = (int)(w.n_seq * heads);
  sh->op = (long long)sh->T * sh->dh;
  sh->sq = (long long)sh->T * sh->T;
  sh->scale = 1.0f / sqrtf((float)sh->dh);
  return 0;
}

/* The compact probabilities' window offsets (backend.h), [n_seq + 1], in
 * scratch slot 0: heads * len^2 per window, scanned. */
static int prob_offsets(dt_cuda *c, dt_seq_windows w, int heads, int64_t **poff) {
  void *buf, *temp;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, 2 * (size_t)(w.n_seq + 1) * sizeof(int64_t), &buf));
  int64_t *sizes = buf, *off = sizes + w.n_seq + 1;
  size_t temp_bytes = 0;
  DT_KERNEL(dtk_exclusive_sum_i64, (c->stream, NULL, &temp_bytes, sizes, off, w.n_seq + 1));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_CUB, temp_bytes, &temp));
  DT_KERNEL(dtk_attn_prob_sizes, (c->stream, w.offsets, w.n_seq, heads, sizes));
  DT_KERNEL(dtk_exclusive_sum_i64, (c->stream, temp, &temp_bytes, sizes, off, w.n_seq + 1));
  *poff = off;
  return 0;
}

/* Pads Q, K, V of qkv [n_tokens, 3d] into q, k, v. */
static int pad_qkv(dt_cuda *c, const attn_shape *sh, const float *qkv, const int32_t *offsets, float *q, float *k,
                   float *v) {
  float *dst[3] = {q, k, v};
  for (int part = 0; part < 3; part++)
    DT_KERNEL(dtk_attn_pad,
              (c->stream, qkv, 3 * sh->d, part * sh->d, offsets, sh->n_seq, sh->heads, sh->T, sh->dh, dst[part]));
  return 0;
}

static int cu_attn_fwd(dt_backend *be, const float *qkv, dt_seq_windows w, int d, int heads, float *out, float *probs) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  attn_shape sh = {0};
  DT_TRY(attn_check("attn_fwd", w, d, heads, &sh));
  if (w.n_tokens == 0) return 0;
  int64_t *poff;
  DT_TRY(prob_offsets(c, w, heads, &poff));
  void *buf;
  const size_t nop = (size_t)sh.batch * (size_t)sh.op, nsq = (size_t)sh.batch * (size_t)sh.sq;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_1, (3 * nop + nsq) * sizeof(float), &buf));
  float *q = buf, *k = q + nop, *v = k + nop, *S = v + nop;
  DT_TRY(pad_qkv(c, &sh, qkv, w.offsets, q, k, v));
  /* S = Q K^T / sqrt(dh); P = causal softmax(S) in place (+ the compact copy); O = P V into q */
  DT_TRY(gemm_batched(c, 0, 1, sh.T, sh.T, sh.dh, sh.scale, q, sh.dh, sh.op, k, sh.dh, sh.op, 0.0f, S, sh.T, sh.sq,
                      sh.batch));
  DT_KERNEL(dtk_attn_softmax_fwd, (c->stream, S, w.offsets, poff, w.n_seq, heads, sh.T, probs));
  DT_TRY(
      gemm_batched(c, 0, 0, sh.T, sh.dh, sh.T, 1.0f, S, sh.T, sh.sq, v, sh.dh, sh.op, 0.0f, q, sh.dh, sh.op, sh.batch));
  DT_KERNEL(dtk_attn_unpad, (c->stream, q, w.offsets, w.n_seq, heads, sh.T, sh.dh, d, 0, out));
  return 0;
}

static int cu_attn_bwd(dt_backend *be, const float *qkv, const float *probs, const float *dout, dt_seq_windows w, int d,
                       int heads, float *dqkv) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  attn_shape sh = {0};
  DT_TRY(attn_check("attn_bwd", w, d, heads, &sh));
  if (w.n_tokens == 0) return 0;
  int64_t *poff;
  DT_TRY(prob_offsets(c, w, heads, &poff));
  void *buf;
  const size_t nop = (size_t)sh.batch * (size_t)sh.op, nsq = (size_t)sh.batch * (size_t)sh.sq;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_1, (4 * nop + 2 * nsq) * sizeof(float), &buf));
  float *q = buf, *k = q + nop, *v = k + nop, *dO = v + nop, *P = dO + nop, *dS = P + nsq;
  DT_TRY(pad_qkv(c, &sh, qkv, w.offsets, q, k, v));
  DT_KERNEL(dtk_attn_pad, (c->stream, dout, d, 0, w.offsets, w.n_seq, heads, sh.T, sh.dh, dO));
  DT_KERNEL(dtk_attn_expand_probs, (c->stream, probs, w.offsets, poff, w.n_seq, heads, sh.T, P));
  /* dP = dO V^T, then dS = P (dP - <P, dP>) in place */
  DT_TRY(gemm_batched(c, 0, 1, sh.T, sh.T, sh.dh, 1.0f, dO, sh.dh, sh.op, v, sh.dh, sh.op, 0.0f, dS, sh.T, sh.sq,
                      sh.batch));
  DT_KERNEL(dtk_attn_softmax_bwd, (c->stream, P, dS, w.offsets, w.n_seq, heads, sh.T));
  /* each product goes into an operand no later product reads:
   * dV = P^T dO into v, dK = dS^T Q / sqrt(dh) into dO, dQ = dS K / sqrt(dh) into q */
  DT_TRY(gemm_batched(c, 1, 0, sh.T, sh.dh, sh.T, 1.0f, P, sh.T, sh.sq, dO, sh.dh, sh.op, 0.0f, v, sh.dh, sh.op,
                      sh.batch));
  DT_TRY(gemm_batched(c, 1, 0, sh.T, sh.dh, sh.T, sh.scale, dS, sh.T, sh.sq, q, sh.dh, sh.op, 0.0f, dO, sh.dh, sh.op,
                      sh.batch));
  DT_TRY(gemm_batched(c, 0, 0, sh.T, sh.dh, sh.T, sh.scale, dS, sh.T, sh.sq, k, sh.dh, sh.op, 0.0f, q, sh.dh, sh.op,
                      sh.batch));
  float *grads[3] = {q, dO, v};
  for (int part = 0; part < 3; part++)
    DT_KERNEL(dtk_attn_unpad, (c->stream, grads[part], w.offsets, w.n_seq, heads, sh.T, sh.dh, 3 * d, part * d, dqkv));
  return 0;
}

void dt_cuda_fill_seq_ops(dt_backend *be) {
  be->layer_norm_fwd = cu_layer_norm_fwd;
  be->layer_norm_bwd = cu_layer_norm_bwd;
  be->attn_fwd = cu_attn_fwd;
  be->attn_bwd = cu_attn_bwd;
  be->seq_embed_fwd = cu_seq_embed_fwd;
  be->seq_pos_grad = cu_seq_pos_grad;
}
