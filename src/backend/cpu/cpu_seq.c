/* The SASRec encoder's row ops on the CPU: layer norm (forward, backward
 * with deterministic column sums) and the input embedding with its
 * positional gradient, over windows packed as dt_seq_windows describes. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

int dt_cpu_check_windows(const char *op, dt_seq_windows w) {
  if (w.n_seq < 0 || w.n_tokens < 0 || w.max_len < 0 || w.n_tokens > INT32_MAX)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: windows n_seq=%lld n_tokens=%lld max_len=%d", op,
                   (long long)w.n_seq, (long long)w.n_tokens, w.max_len);
  if (w.n_seq == 0) {
    if (w.n_tokens != 0)
      return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: %lld tokens in no window", op, (long long)w.n_tokens);
    return 0;
  }
  if (!w.offsets) return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: windows without offsets", op);
  if (w.offsets[0] != 0 || w.offsets[w.n_seq] != w.n_tokens)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: offsets run from %d to %d, expected 0 to n_tokens=%lld", op,
                   w.offsets[0], w.offsets[w.n_seq], (long long)w.n_tokens);
  for (int64_t s = 0; s < w.n_seq; s++) {
    int64_t len = (int64_t)w.offsets[s + 1] - w.offsets[s];
    if (len < 0 || len > w.max_len)
      return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: window %lld has length %lld (max_len %d)", op, (long long)s,
                     (long long)len, w.max_len);
  }
  return 0;
}

/* ---- layer norm ---- */

int dt_cpu_layer_norm_fwd(dt_backend *be, const float *x, const float *weight, const float *bias, float eps, int64_t n,
                          int d, float *y, float *mean, float *rstd) {
  DT_CPU_REQUIRE(n >= 0 && d >= 1, "layer_norm_fwd", "bad shape [%lld, %d]", (long long)n, d);
  int nt = dt_cpu_threads_for(be, n * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < n; r++) {
    const float *restrict xr = x + r * d;
    float *restrict yr = y + r * d;
    /* two passes (mean, then squared deviations): no cancellation when the
     * mean is large next to the spread */
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < d; c++) s += xr[c];
    const float m = s / (float)d;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < d; c++) v += (xr[c] - m) * (xr[c] - m);
    const float rs = dt_layer_norm_rstd(v / (float)d, eps);
    for (int c = 0; c < d; c++) yr[c] = dt_layer_norm_fwd(xr[c], m, rs, weight[c], bias[c]);
    mean[r] = m;
    rstd[r] = rs;
  }
  return 0;
}

/* Rows per partial column sum of layer_norm_bwd: fixed, so the additions'
 * order (and the bits) do not depend on the thread count. */
enum { LN_BLOCK_ROWS = 256 };

int dt_cpu_layer_norm_bwd(dt_backend *be, const float *dy, const float *x, const float *weight, const float *mean,
                          const float *rstd, int64_t n, int d, float *dx, int accumulate_dx, float *dweight,
                          float *dbias) {
  DT_CPU_REQUIRE(n >= 0 && d >= 1, "layer_norm_bwd", "bad shape [%lld, %d]", (long long)n, d);
  if (n == 0) return 0;
  const int64_t nb = (n + LN_BLOCK_ROWS - 1) / LN_BLOCK_ROWS;
  /* per block: sum dy xhat [d], then sum dy [d] */
  float *part = dt_cpu_scratch(be, (size_t)nb * 2 * (size_t)d * sizeof(float), "layer_norm_bwd");
  if (!part) return DT_EXIT_RUNTIME;
  const float inv_d = 1.0f / (float)d;
  int nt = dt_cpu_threads_for(be, n * d * 3);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) {
    float *restrict pw = part + blk * 2 * d, *restrict pb = pw + d;
    memset(pw, 0, 2 * (size_t)d * sizeof *pw);
    const int64_t r1 = (blk + 1) * LN_BLOCK_ROWS < n ? (blk + 1) * LN_BLOCK_ROWS : n;
    for (int64_t r = blk * LN_BLOCK_ROWS; r < r1; r++) {
      const float *restrict xr = x + r * d, *restrict g = dy + r * d;
      float *restrict dxr = dx + r * d;
      const float m = mean[r], rs = rstd[r];
      float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
      for (int c = 0; c < d; c++) {
        const float gw = g[c] * weight[c];
        sg += gw;
        sgx += gw * ((xr[c] - m) * rs);
      }
      const float mg = sg * inv_d, mgx = sgx * inv_d;
      for (int c = 0; c < d; c++) {
        const float xhat = (xr[c] - m) * rs;
        const float v = dt_layer_norm_bwd(g[c] * weight[c], xhat, rs, mg, mgx);
        dxr[c] = accumulate_dx ? dxr[c] + v : v;
        pw[c] += g[c] * xhat;
        pb[c] += g[c];
      }
    }
  }
  /* block partials in block order, then into the outputs */
  float *restrict s0 = part;
  for (int64_t blk = 1; blk < nb; blk++) {
    const float *restrict s = part + blk * 2 * d;
    for (int c = 0; c < 2 * d; c++) s0[c] += s[c];
  }
  if (dweight)
    for (int c = 0; c < d; c++) dweight[c] += s0[c];
  if (dbias)
    for (int c = 0; c < d; c++) dbias[c] += s0[d + c];
  return 0;
}

/* ---- the encoder's input embedding ---- */

int dt_cpu_seq_embed_fwd(dt_backend *be, const float *table, const int32_t *ids, float scale, const float *pos,
                         int64_t pos_rows, dt_seq_windows w, int d, float *out) {
  DT_TRY(dt_cpu_check_windows("seq_embed_fwd", w));
  DT_CPU_REQUIRE(d >= 0 && w.max_len <= pos_rows, "seq_embed_fwd", "d=%d, max_len %d with %lld positions", d, w.max_len,
                 (long long)pos_rows);
  int nt = dt_cpu_threads_for(be, w.n_tokens * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t s = 0; s < w.n_seq; s++) {
    for (int64_t t = w.offsets[s]; t < w.offsets[s + 1]; t++) {
      const float *restrict e = table + (int64_t)ids[t] * d, *restrict p = pos + (t - w.offsets[s]) * d;
      float *restrict o = out + t * d;
      for (int c = 0; c < d; c++) o[c] = dt_seq_embed(e[c], scale, p[c]);
    }
  }
  return 0;
}

int dt_cpu_seq_pos_grad(dt_backend *be, const float *dx, dt_seq_windows w, int d, int64_t pos_rows, float *dpos) {
  DT_TRY(dt_cpu_check_windows("seq_pos_grad", w));
  DT_CPU_REQUIRE(d >= 0 && w.max_len <= pos_rows, "seq_pos_grad", "d=%d, max_len %d with %lld positions", d, w.max_len,
                 (long long)pos_rows);
  if (w.n_tokens == 0 || d == 0) return 0;
  /* one row of sums per position: windows added in order from 0, then the
   * total into dpos (the order the CUDA kernel uses too) */
  float *acc = dt_cpu_scratch(be, (size_t)w.max_len * (size_t)d * sizeof(float), "seq_pos_grad");
  if (!acc) return DT_EXIT_RUNTIME;
  int nt = dt_cpu_threads_for(be, w.n_tokens * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t p = 0; p < w.max_len; p++) {
    float *restrict a = acc + p * d;
    memset(a, 0, (size_t)d * sizeof *a);
    for (int64_t s = 0; s < w.n_seq; s++) {
      if (w.offsets[s + 1] - w.offsets[s] <= p) continue;
      const float *restrict g = dx + (w.offsets[s] + p) * d;
      for (int c = 0; c < d; c++) a[c] += g[c];
    }
    float *restrict o = dpos + p * d;
    for (int c = 0; c < d; c++) o[c] += a[c];
  }
  return 0;
}
