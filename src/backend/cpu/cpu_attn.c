/* Causal multi-head self-attention over packed windows on the CPU: per
 * (window, head), S = Q K^T / sqrt(dh) with one CBLAS call straight into the
 * saved probabilities, the causal softmax of each row in place (op_math.h),
 * then O = P V with one more; the backward is four CBLAS calls and the
 * softmax backward. (window, head) pairs are independent and run in
 * parallel, each on one thread: the bits do not depend on the thread count.
 * The upper triangle is computed by the GEMMs and then zeroed: at the
 * model's window lengths (<= 2L-1 = 99) one GEMM beats a triangle loop. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

/* Checks the arguments and writes each window's offset into probs
 * (heads * sum of the earlier windows' len^2) to poff [n_seq]. */
static int attn_setup(const char *op, dt_seq_windows w, int d, int heads, int64_t *poff) {
  DT_TRY(dt_cpu_check_windows(op, w));
  if (heads < 1 || d < 1 || d % heads != 0)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: d=%d is not a multiple of heads=%d", op, d, heads);
  int64_t acc = 0;
  for (int64_t s = 0; s < w.n_seq; s++) {
    const int64_t len = (int64_t)w.offsets[s + 1] - w.offsets[s];
    poff[s] = acc;
    acc += heads * len * len;
  }
  return 0;
}

/* Row i of a causal softmax in place: entries 0..i of row (length len)
 * become probabilities, the rest 0. */
static void causal_softmax_row(float *restrict row, int i, int len) {
  float m = row[0];
  for (int j = 1; j <= i; j++) m = row[j] > m ? row[j] : m;
  float sum = 0.0f;
  for (int j = 0; j <= i; j++) {
    row[j] = dt_softmax_term(row[j], m);
    sum += row[j];
  }
  for (int j = 0; j <= i; j++) row[j] = row[j] / sum;
  for (int j = i + 1; j < len; j++) row[j] = 0.0f;
}

int dt_cpu_attn_fwd(dt_backend *be, const float *qkv, dt_seq_windows w, int d, int heads, float *out, float *probs) {
  if (w.n_seq < 0) return dt_fail(DT_EXIT_RUNTIME, "cpu backend attn_fwd: n_seq=%lld", (long long)w.n_seq);
  int64_t *poff = dt_cpu_scratch(be, (size_t)(w.n_seq + 1) * sizeof(int64_t), "attn_fwd");
  if (!poff) return DT_EXIT_RUNTIME;
  DT_TRY(attn_setup("attn_fwd", w, d, heads, poff));
  if (w.n_tokens == 0) return 0;
  const int dh = d / heads, ld = 3 * d;
  const float scale = 1.0f / sqrtf((float)dh);
  const int64_t pairs = w.n_seq * heads;
  const int64_t work = w.n_tokens * (int64_t)w.max_len * d;
  int nt = dt_cpu_threads_for(be, work);
  /* dynamic: windows differ in length, and a pair's result does not depend
   * on the thread that computes it */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t q = 0; q < pairs; q++) {
    const int64_t s = q / heads;
    const int k = (int)(q % heads);
    const int64_t t0 = w.offsets[s];
    const int len = (int)(w.offsets[s + 1] - t0);
    if (len == 0) continue;
    float *P = probs + poff[s] + (int64_t)k * len * len;
    const float *Q = qkv + t0 * ld + k * dh, *K = Q + d, *V = Q + 2 * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, dh, scale, Q, ld, K, ld, 0.0f, P, len);
    for (int i = 0; i < len; i++) causal_softmax_row(P + (int64_t)i * len, i, len);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, dh, len, 1.0f, P, len, V, ld, 0.0f,
                out + t0 * d + k * dh, d);
  }
  return 0;
}

int dt_cpu_attn_bwd(dt_backend *be, const float *qkv, const float *probs, const float *dout, dt_seq_windows w, int d,
                    int heads, float *dqkv) {
  if (w.n_seq < 0 || w.max_len < 0)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend attn_bwd: n_seq=%lld max_len=%d", (long long)w.n_seq, w.max_len);
  const int64_t work = w.n_tokens * (int64_t)w.max_len * d;
  int nt = dt_cpu_threads_for(be, work);
  /* scratch: poff [n_seq + 1], then one [max_len, max_len] dP/dS buffer per
   * thread (64-byte aligned) */
  const size_t head = ((size_t)(w.n_seq + 1) * sizeof(int64_t) + 63) / 64 * 64;
  const size_t per_thread = ((size_t)w.max_len * (size_t)w.max_len * sizeof(float) + 63) / 64 * 64;
  char *scr = dt_cpu_scratch(be, head + (size_t)nt * per_thread, "attn_bwd");
  if (!scr) return DT_EXIT_RUNTIME;
  int64_t *poff = (int64_t *)scr;
  DT_TRY(attn_setup("attn_bwd", w, d, heads, poff));
  if (w.n_tokens == 0) return 0;
  const int dh = d / heads, ld = 3 * d;
  const float scale = 1.0f / sqrtf((float)dh);
  const int64_t pairs = w.n_seq * heads;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t q = 0; q < pairs; q++) {
    const int64_t s = q / heads;
    const int k = (int)(q % heads);
    const int64_t t0 = w.offsets[s];
    const int len = (int)(w.offsets[s + 1] - t0);
    if (len == 0) continue;
    float *dS = (float *)(scr + head + (size_t)omp_get_thread_num() * per_thread);
    const float *P = probs + poff[s] + (int64_t)k * len * len;
    const float *Q = qkv + t0 * ld + k * dh, *K = Q + d, *V = Q + 2 * d;
    const float *dO = dout + t0 * d + k * dh;
    float *dQ = dqkv + t0 * ld + k * dh, *dK = dQ + d, *dV = dQ + 2 * d;
    /* dP = dO V^T, then dS = P (dP - <P, dP>) row by row, in place */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, dh, 1.0f, dO, d, V, ld, 0.0f, dS, len);
    for (int i = 0; i < len; i++) {
      const float *restrict p = P + (int64_t)i * len;
      float *restrict g = dS + (int64_t)i * len;
      float dot = 0.0f;
      for (int j = 0; j <= i; j++) dot += p[j] * g[j];
      for (int j = 0; j <= i; j++) g[j] = dt_softmax_bwd(p[j], g[j], dot);
      for (int j = i + 1; j < len; j++) g[j] = 0.0f;
    }
    /* dQ = dS K scale, dK = dS^T Q scale, dV = P^T dO */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, dh, len, scale, dS, len, K, ld, 0.0f, dQ, ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, dh, len, scale, dS, len, Q, ld, 0.0f, dK, ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, dh, len, 1.0f, P, len, dO, d, 0.0f, dV, ld);
  }
  return 0;
}
