/* Dense linear algebra: gemm through CBLAS (OpenBLAS with its run-time
 * AVX2/AVX-512 kernels, one call per OpenMP thread), the rest as loops. */
#include <cblas.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"

/* Below this many flops one call on one thread is faster than a split. */
#define GEMM_SPLIT_FLOPS 2e6
/* Split points are multiples of this (OpenBLAS register tiles are 4..16). */
enum { GEMM_PIECE_ALIGN = 16 };

int dt_cpu_gemm(dt_backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc) {
  DT_CPU_REQUIRE(m >= 0 && n >= 0 && k >= 0, "gemm", "negative shape m=%d n=%d k=%d", m, n, k);
  if (m == 0 || n == 0) return 0;
  /* Row-major leading dimensions: the row length of each stored matrix. */
  int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  DT_CPU_REQUIRE(lda >= (a_cols > 1 ? a_cols : 1), "gemm", "lda=%d < %d (A is [%d,%d]%s)", lda, a_cols, trans_a ? k : m,
                 a_cols, trans_a ? " transposed" : "");
  DT_CPU_REQUIRE(ldb >= (b_cols > 1 ? b_cols : 1), "gemm", "ldb=%d < %d (B is [%d,%d]%s)", ldb, b_cols, trans_b ? n : k,
                 b_cols, trans_b ? " transposed" : "");
  DT_CPU_REQUIRE(ldc >= n, "gemm", "ldc=%d < n=%d", ldc, n);
  if (k == 0 || alpha == 0.0f) {
    /* BLAS semantics: C = beta*C, and beta == 0 never reads C (NaN-safe). */
    for (int i = 0; i < m; i++) {
      float *restrict ci = c + (size_t)i * (size_t)ldc;
      if (beta == 0.0f)
        memset(ci, 0, (size_t)n * sizeof *ci);
      else if (beta != 1.0f)
        for (int j = 0; j < n; j++) ci[j] *= beta;
    }
    return 0;
  }
  int nt = dt_cpu(be)->threads;
  double flops = 2.0 * m * n * k;
  if (nt == 1 || flops < GEMM_SPLIT_FLOPS) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
    return 0;
  }
  /* One thread pool for everything: OpenBLAS runs single-threaded and the
   * OpenMP threads each multiply one block of C's rows (or columns, when C
   * is wide and short). With OpenBLAS's own pool beside OpenMP's, each
   * pool's spinning workers would steal the cores the other one needs. Every
   * element of C is still one full-k dot product in one call: deterministic. */
  int split_rows = m >= n || m >= 64 * nt;
  int len = split_rows ? m : n;
  int pieces = (len + GEMM_PIECE_ALIGN - 1) / GEMM_PIECE_ALIGN;
  if (pieces > nt) pieces = nt;
#pragma omp parallel for num_threads(pieces) schedule(static)
  for (int q = 0; q < pieces; q++) {
    /* aligned split points, so the micro-kernel sees whole register tiles */
    int blocks = (len + GEMM_PIECE_ALIGN - 1) / GEMM_PIECE_ALIGN;
    int i0 = (int)((int64_t)blocks * q / pieces) * GEMM_PIECE_ALIGN;
    int i1 = (int)((int64_t)blocks * (q + 1) / pieces) * GEMM_PIECE_ALIGN;
    if (i1 > len) i1 = len;
    if (i1 <= i0) continue;
    if (split_rows) {
      /* rows i0..i1 of op(A): row offset in A, or column offset when A^T */
      const float *ap = trans_a ? a + i0 : a + (size_t)i0 * (size_t)lda;
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, i1 - i0, n,
                  k, alpha, ap, lda, b, ldb, beta, c + (size_t)i0 * (size_t)ldc, ldc);
    } else {
      /* columns i0..i1 of op(B): column offset in B, or row offset when B^T */
      const float *bp = trans_b ? b + (size_t)i0 * (size_t)ldb : b + i0;
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, i1 - i0,
                  k, alpha, a, lda, bp, ldb, beta, c + i0, ldc);
    }
  }
  return 0;
}

int dt_cpu_add_bias(dt_backend *be, float *y, const float *bias, int64_t rows, int cols) {
  DT_CPU_REQUIRE(rows >= 0 && cols >= 0, "add_bias", "negative shape [%lld, %d]", (long long)rows, cols);
  int nt = dt_cpu_threads_for(be, rows * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    float *restrict yr = y + r * cols;
    const float *restrict b = bias;
    for (int j = 0; j < cols; j++) yr[j] += b[j];
  }
  return 0;
}

/* Rows per partial sum of bias_grad. Fixed (not per thread) so the order of
 * the additions, and so the bits, do not depend on the thread count. */
enum { BIAS_BLOCK_ROWS = 256 };

int dt_cpu_bias_grad(dt_backend *be, float *dbias, const float *dy, int64_t rows, int cols) {
  DT_CPU_REQUIRE(rows >= 0 && cols >= 0, "bias_grad", "negative shape [%lld, %d]", (long long)rows, cols);
  if (rows == 0 || cols == 0) return 0;
  int64_t nb = (rows + BIAS_BLOCK_ROWS - 1) / BIAS_BLOCK_ROWS;
  float *part = dt_cpu_scratch(be, (size_t)nb * (size_t)cols * sizeof(float), "bias_grad");
  if (!part) return DT_EXIT_RUNTIME;
  int nt = dt_cpu_threads_for(be, rows * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) {
    float *restrict s = part + blk * cols;
    int64_t r0 = blk * BIAS_BLOCK_ROWS, r1 = r0 + BIAS_BLOCK_ROWS < rows ? r0 + BIAS_BLOCK_ROWS : rows;
    memcpy(s, dy + r0 * cols, (size_t)cols * sizeof *s);
    for (int64_t r = r0 + 1; r < r1; r++) {
      const float *restrict d = dy + r * cols;
      for (int j = 0; j < cols; j++) s[j] += d[j];
    }
  }
  /* block partials in block order, then into dbias */
  float *restrict s0 = part;
  for (int64_t blk = 1; blk < nb; blk++) {
    const float *restrict s = part + blk * cols;
    for (int j = 0; j < cols; j++) s0[j] += s[j];
  }
  for (int j = 0; j < cols; j++) dbias[j] += s0[j];
  return 0;
}

int dt_cpu_axpy(dt_backend *be, float *y, const float *x, int64_t n, float alpha) {
  DT_CPU_REQUIRE(n >= 0, "axpy", "negative length %lld", (long long)n);
  int nt = dt_cpu_threads_for(be, n);
  float *restrict yy = y;
  const float *restrict xx = x;
#pragma omp parallel for simd num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) yy[i] += alpha * xx[i];
  return 0;
}

int dt_cpu_scale(dt_backend *be, float *x, int64_t n, float alpha) {
  DT_CPU_REQUIRE(n >= 0, "scale", "negative length %lld", (long long)n);
  int nt = dt_cpu_threads_for(be, n);
  float *restrict xx = x;
#pragma omp parallel for simd num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) xx[i] *= alpha;
  return 0;
}

/* Elements per partial sum of sumsq (fixed, for thread-count-free bits). */
enum { SUMSQ_BLOCK = 8192 };

int dt_cpu_sumsq(dt_backend *be, const float *x, int64_t n, double *out_host) {
  DT_CPU_REQUIRE(n >= 0, "sumsq", "negative length %lld", (long long)n);
  int64_t nb = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
  if (nb == 0) {
    *out_host = 0.0;
    return 0;
  }
  double *part = dt_cpu_scratch(be, (size_t)nb * sizeof(double), "sumsq");
  if (!part) return DT_EXIT_RUNTIME;
  int nt = dt_cpu_threads_for(be, n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t i0 = blk * SUMSQ_BLOCK, i1 = i0 + SUMSQ_BLOCK < n ? i0 + SUMSQ_BLOCK : n;
    const float *restrict xb = x;
    double s = 0.0;
    /* the simd reduction's lane order is fixed at compile time: same bits
     * every run */
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; i++) s += (double)xb[i] * (double)xb[i];
    part[blk] = s;
  }
  double total = 0.0;
  for (int64_t blk = 0; blk < nb; blk++) total += part[blk];
  *out_host = total;
  return 0;
}
