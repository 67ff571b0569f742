/* ReLU + dropout, in place. The mask is never stored: the forward and the
 * backward (without ReLU) redraw it from the key. The draws are exactly
 * dt_dropout_draws() of op_math.h (Philox4x32-10, one call per four
 * columns); the kernel set runs a row's calls 4 (SSE2) or 8 (AVX2) at a
 * time in vector lanes, where the scalar call costs ~10 ns per element.
 * test_backend_cpu_dropout checks every bit against dt_dropout_keep. */
#include "backend/cpu/cpu_ops.h"

static int check_args(const char *op, int64_t rows, int cols, float p, const dt_dropout_key *key) {
  if (rows < 0 || cols < 0)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: negative shape [%lld, %d]", op, (long long)rows, cols);
  if (!(p >= 0.0f && p < 1.0f))
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: dropout probability %g is outside [0, 1)", op, (double)p);
  if (p > 0.0f && rows > 0 && !key->row_keys)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: dropout p=%g needs row_keys", op, (double)p);
  /* the counter holds the column group in the low 16 bits beside the site */
  if (cols > 4 * 0x10000)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: %d columns exceed the dropout counter's %d", op, cols,
                   4 * 0x10000);
  return 0;
}

/* Philox work per element is about that of 4 adds */
static int dropout_threads(dt_backend *be, int64_t rows, int cols, float p) {
  return dt_cpu_threads_for(be, p > 0.0f ? rows * cols * 4 : rows * cols);
}

int dt_cpu_relu_dropout_fwd(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p, dt_dropout_key key) {
  DT_TRY(check_args("relu_dropout_fwd", rows, cols, p, &key));
  int nt = dropout_threads(be, rows, cols, p);
  if (p == 0.0f) {
    if (!relu) return 0;
    int64_t total = rows * cols;
    float *restrict xx = x;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < total; i++) xx[i] = xx[i] > 0.0f ? xx[i] : 0.0f;
    return 0;
  }
  const dt_cpu_kernels *k = dt_cpu(be)->kern;
#pragma omp parallel num_threads(nt)
  {
    int64_t r0, r1;
    dt_cpu_share(rows, &r0, &r1);
    k->dropout_rows(x, r0, r1, cols, relu, p, &key);
  }
  return 0;
}

int dt_cpu_relu_dropout_bwd(dt_backend *be, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                            dt_dropout_key key) {
  DT_TRY(check_args("relu_dropout_bwd", rows, cols, p, &key));
  int nt = dropout_threads(be, rows, cols, relu ? 0.0f : p);
  float scale = 1.0f / (1.0f - p);
  if (relu) {
    /* y > 0 exactly where the ReLU passed and dropout kept: no redraw */
    DT_CPU_REQUIRE(y != NULL || rows * cols == 0, "relu_dropout_bwd", "relu needs the forward output y");
    int64_t total = rows * cols;
    const float *restrict yy = y;
    float *restrict d = dy;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < total; i++) d[i] = yy[i] > 0.0f ? d[i] * scale : 0.0f;
    return 0;
  }
  if (p == 0.0f) return 0;
  const dt_cpu_kernels *k = dt_cpu(be)->kern;
#pragma omp parallel num_threads(nt)
  {
    int64_t r0, r1;
    dt_cpu_share(rows, &r0, &r1);
    k->dropout_rows(dy, r0, r1, cols, 0, p, &key);
  }
  return 0;
}
