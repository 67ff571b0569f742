/* ReLU + dropout, in place. The mask is never stored: the forward and the
 * backward (without ReLU) redraw it from the key, one Philox call per four
 * columns (dt_dropout_draws), exactly as the CUDA kernels do. */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

/* Philox work per element is large enough that rows parallelise early. */
static int dropout_threads(dt_backend *be, int64_t rows, int cols, float p) {
  return dt_cpu_threads_for(be, p > 0.0f ? rows * cols * 8 : rows * cols);
}

/* Multiplies row `x` (cols values, keyed by row_key) by mask/(1-p), after
 * a ReLU when `relu`. */
static void dropout_row(float *restrict x, int cols, int relu, float p, float scale, const dt_dropout_key *key,
                        int64_t row_key) {
  for (int g = 0; g * 4 < cols; g++) {
    dt_rand4 r = dt_dropout_draws(key->seed, key->step, key->site, row_key, g);
    int j1 = g * 4 + 4 < cols ? g * 4 + 4 : cols;
    for (int j = g * 4; j < j1; j++) {
      float v = x[j];
      if (relu && !(v > 0.0f)) v = 0.0f;
      x[j] = dt_dropout_keep_draw(r.v[j & 3], p) ? v * scale : 0.0f;
    }
  }
}

static int check_args(const char *op, int64_t rows, int cols, float p, const dt_dropout_key *key) {
  if (rows < 0 || cols < 0) return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: negative shape [%lld, %d]", op,
                                           (long long)rows, cols);
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

int dt_cpu_relu_dropout_fwd(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p,
                            dt_dropout_key key) {
  DT_TRY(check_args("relu_dropout_fwd", rows, cols, p, &key));
  int nt = dropout_threads(be, rows, cols, p);
  if (p == 0.0f) {
    if (!relu) return 0;
    int64_t total = rows * cols;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < total; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return 0;
  }
  float scale = 1.0f / (1.0f - p);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) dropout_row(x + r * cols, cols, relu, p, scale, &key, key.row_keys[r]);
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
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < total; i++) d[i] = yy[i] > 0.0f ? d[i] * scale : 0.0f;
    return 0;
  }
  if (p == 0.0f) return 0;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) dropout_row(dy + r * cols, cols, 0, p, scale, &key, key.row_keys[r]);
  return 0;
}
