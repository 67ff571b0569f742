/* cuda_ops_dense.c: gemm (cuBLAS), bias, axpy, scale, sumsq and the
 * ReLU/dropout activations of the CUDA backend. */
#include <math.h>

#include "backend/cuda/cuda_internal.h"

/* Row-major C[m,n] = alpha op(A) op(B) + beta C through column-major cuBLAS:
 * a row-major matrix with row stride ld is the column-major transpose with
 * the same ld, so C^T[n,m] = op(B)^T op(A)^T is one column-major call with
 * the operands swapped and their op flags kept. */
static int cu_gemm(dt_backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *cm, int ldc) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (m < 0 || n < 0 || k < 0) return dt_cuda_bad_call("gemm", "negative size m=%d n=%d k=%d", m, n, k);
  if (m == 0 || n == 0) return 0;
  const int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < n)
    return dt_cuda_bad_call("gemm",
                            "leading dimension too small: m=%d n=%d k=%d trans_a=%d trans_b=%d lda=%d ldb=%d ldc=%d", m,
                            n, k, trans_a, trans_b, lda, ldb, ldc);
  if (k == 0) {
    /* C = beta C. With beta = 0, C is not read (it may hold NaN), as in
     * BLAS; otherwise cuBLAS's in-place geam scales it. */
    if (beta == 0.0f) {
      DT_CUDA(cudaMemset2DAsync(cm, (size_t)ldc * sizeof(float), 0, (size_t)n * sizeof(float), (size_t)m, c->stream));
    } else {
      const float zero = 0.0f;
      DT_CUBLAS(cublasSgeam(c->cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, &beta, cm, ldc, &zero, cm, ldc, cm, ldc));
    }
    return 0;
  }
  DT_CUBLAS(cublasSgemm(c->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                        &alpha, b, ldb, a, lda, &beta, cm, ldc));
  return 0;
}

static int cu_add_bias(dt_backend *be, float *y, const float *bias, int64_t rows, int cols) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (rows < 0 || cols < 0) return dt_cuda_bad_call("add_bias", "rows=%lld cols=%d", (long long)rows, cols);
  if (rows == 0 || cols == 0) return 0;
  DT_KERNEL(dtk_add_bias, (c->stream, y, bias, rows, cols));
  return 0;
}

/* Deterministic column sums: fixed chunks of rows summed in a fixed order,
 * then the chunks in order (kernels/dense.cu). */
static int cu_bias_grad(dt_backend *be, float *dbias, const float *dy, int64_t rows, int cols) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (rows < 0 || cols < 0) return dt_cuda_bad_call("bias_grad", "rows=%lld cols=%d", (long long)rows, cols);
  if (rows == 0 || cols == 0) return 0;
  const int64_t chunks = (rows + DTK_BIAS_CHUNK - 1) / DTK_BIAS_CHUNK;
  if (chunks > 65535)
    return dt_cuda_bad_call("bias_grad", "%lld rows is more than the %d this kernel supports", (long long)rows,
                            65535 * DTK_BIAS_CHUNK);
  void *partials;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, (size_t)chunks * (size_t)cols * sizeof(float), &partials));
  DT_KERNEL(dtk_bias_grad_partials, (c->stream, dy, rows, cols, partials));
  DT_KERNEL(dtk_bias_grad_finish, (c->stream, partials, chunks, cols, dbias));
  return 0;
}

static int cu_axpy(dt_backend *be, float *y, const float *x, int64_t n, float alpha) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0) return dt_cuda_bad_call("axpy", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_axpy, (c->stream, y, x, n, alpha));
  return 0;
}

static int cu_scale(dt_backend *be, float *x, int64_t n, float alpha) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0) return dt_cuda_bad_call("scale", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_scale, (c->stream, x, n, alpha));
  return 0;
}

static int cu_sumsq(dt_backend *be, const float *x, int64_t n, double *out_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *out_host = 0.0;
  if (n < 0) return dt_cuda_bad_call("sumsq", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_sumsq_partials, (c->stream, x, n, c->partials));
  return dt_cuda_partials_to_host(c, dtk_partial_count(n), out_host);
}

static int check_dropout(const char *op, int64_t rows, int cols, float p, dt_dropout_key key) {
  if (rows < 0 || cols < 0) return dt_cuda_bad_call(op, "rows=%lld cols=%d", (long long)rows, cols);
  if (!(p >= 0.0f && p < 1.0f)) return dt_cuda_bad_call(op, "dropout probability %g is outside [0, 1)", (double)p);
  if (p > 0.0f && rows > 0 && !key.row_keys) return dt_cuda_bad_call(op, "dropout without row_keys");
  return 0;
}

static int cu_relu_dropout_fwd(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p,
                               dt_dropout_key key) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_dropout("relu_dropout_fwd", rows, cols, p, key));
  if (rows == 0 || cols == 0 || (!relu && p == 0.0f)) return 0;
  DT_KERNEL(dtk_relu_dropout_fwd, (c->stream, x, rows, cols, relu, p, key));
  return 0;
}

static int cu_relu_dropout_bwd(dt_backend *be, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                               dt_dropout_key key) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_dropout("relu_dropout_bwd", rows, cols, p, key));
  if (rows == 0 || cols == 0 || (!relu && p == 0.0f)) return 0;
  DT_KERNEL(dtk_relu_dropout_bwd, (c->stream, dy, y, rows, cols, relu, p, key));
  return 0;
}

void dt_cuda_fill_dense_ops(dt_backend *be) {
  be->gemm = cu_gemm;
  be->add_bias = cu_add_bias;
  be->bias_grad = cu_bias_grad;
  be->axpy = cu_axpy;
  be->scale = cu_scale;
  be->sumsq = cu_sumsq;
  be->relu_dropout_fwd = cu_relu_dropout_fwd;
  be->relu_dropout_bwd = cu_relu_dropout_bwd;
}
