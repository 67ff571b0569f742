/* CPU backend ops against independent double-precision references: forward
 * values, and every backward against central finite differences of the
 * reference objective L = <dout, f(x)> (see test_backend_cpu_util.h for the
 * error measure and tolerances). */
#include "dtrain/op_math.h"
#include "test_backend_cpu_util.h"

/* ---------------------------------------------------------------- gemm */

static double mat_at(const float *x, int ld, int trans, int i, int j) {
  return trans ? (double)x[(size_t)j * ld + i] : (double)x[(size_t)i * ld + j];
}

static void test_gemm_matches_reference(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(1);
  const int m = 7, n = 5, k = 6;
  const float alpha = 0.7f, beta = 0.3f;
  for (int ta = 0; ta < 2; ta++) {
    for (int tb = 0; tb < 2; tb++) {
      int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 3, ldc = n + 1;
      float *a = tb_floats(&t, (int64_t)(ta ? k : m) * lda);
      float *b = tb_floats(&t, (int64_t)(tb ? n : k) * ldb);
      float *c = tb_floats(&t, (int64_t)m * ldc);
      tb_fill(&r, a, (int64_t)(ta ? k : m) * lda, -1, 1);
      tb_fill(&r, b, (int64_t)(tb ? n : k) * ldb, -1, 1);
      tb_fill(&r, c, (int64_t)m * ldc, -1, 1);
      double want[7 * 5];
      float got[7 * 5];
      float pad[7];
      for (int i = 0; i < m; i++) {
        pad[i] = c[i * ldc + n];
        for (int j = 0; j < n; j++) {
          double s = 0.0;
          for (int p = 0; p < k; p++) s += mat_at(a, lda, ta, i, p) * mat_at(b, ldb, tb, p, j);
          want[i * n + j] = alpha * s + beta * (double)c[i * ldc + j];
        }
      }
      TB_OK(t.be->gemm(t.be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) got[i * n + j] = c[i * ldc + j];
        assert_true(c[i * ldc + n] == pad[i]); /* ldc padding untouched */
      }
      char what[64];
      snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d", ta, tb);
      TB_EXPECT_ERR(what, tb_rel_err(got, want, m * n, 1e-6), TB_TOL_FWD);
    }
  }
  /* k = 0 with beta = 0 clears C without reading it (NaN-safe) */
  float *c = tb_floats(&t, 6);
  for (int i = 0; i < 6; i++) c[i] = NAN;
  TB_OK(t.be->gemm(t.be, 0, 0, 2, 3, 0, 1.0f, c, 1, c, 3, 0.0f, c, 3));
  for (int i = 0; i < 6; i++) assert_true(c[i] == 0.0f);
  /* a leading dimension shorter than the row is the caller's bug: an error */
  assert_int_equal(t.be->gemm(t.be, 0, 0, 2, 3, 4, 1.0f, c, 3, c, 3, 0.0f, c, 3), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "lda"));
  tb_close(&t);
}

/* Shapes above the split threshold: C is cut into row blocks (tall C) or
 * column blocks (wide, short C) over the threads, each one CBLAS call. */
static void test_gemm_split_matches_reference(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(14);
  const int shapes[2][3] = {{301, 70, 50}, {40, 603, 50}}; /* m, n, k: row split, column split */
  for (int s = 0; s < 2; s++) {
    int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    for (int ta = 0; ta < 2; ta++) {
      for (int tb = 0; tb < 2; tb++) {
        int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
        int64_t na = (int64_t)(ta ? k : m) * lda, nb = (int64_t)(tb ? n : k) * ldb, nc = (int64_t)m * ldc;
        float *a = tb_floats(&t, na), *b = tb_floats(&t, nb), *c = tb_floats(&t, nc);
        float *got = tb_floats(&t, (int64_t)m * n);
        double *want = tb_doubles(&t, (int64_t)m * n);
        tb_fill(&r, a, na, -1, 1);
        tb_fill(&r, b, nb, -1, 1);
        tb_fill(&r, c, nc, -1, 1);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) acc += mat_at(a, lda, ta, i, p) * mat_at(b, ldb, tb, p, j);
            want[(int64_t)i * n + j] = 1.5 * acc - 0.5 * c[(int64_t)i * ldc + j];
          }
        float pad = c[ldc - 1];
        TB_OK(t.be->gemm(t.be, ta, tb, m, n, k, 1.5f, a, lda, b, ldb, -0.5f, c, ldc));
        for (int i = 0; i < m; i++) memcpy(got + (int64_t)i * n, c + (int64_t)i * ldc, (size_t)n * sizeof(float));
        assert_true(c[ldc - 1] == pad);
        char what[80];
        snprintf(what, sizeof what, "gemm %s split [%d,%d,%d] ta=%d tb=%d", s ? "column" : "row", m, n, k, ta, tb);
        TB_EXPECT_ERR(what, tb_rel_err(got, want, (int64_t)m * n, 1e-6), TB_TOL_FWD);
      }
    }
  }
  tb_close(&t);
}

/* ---------------------------------------------------------------- Linear */

/* y = x W^T + b as the model's Linear layer does it: gemm + add_bias;
 * backward: dx = dy W, dW += dy^T x, db += colsum(dy). */
typedef struct {
  int rows, in, out;
  const double *dy;
} linear_ctx;

static double linear_objective(const double *p, const void *vctx) {
  const linear_ctx *c = vctx;
  const double *x = p, *w = p + c->rows * c->in, *b = w + c->out * c->in;
  double l = 0.0;
  for (int r = 0; r < c->rows; r++)
    for (int o = 0; o < c->out; o++) {
      double y = b[o];
      for (int i = 0; i < c->in; i++) y += x[r * c->in + i] * w[o * c->in + i];
      l += c->dy[r * c->out + o] * y;
    }
  return l;
}

static void test_linear_layer_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(2);
  const int rows = 6, in = 5, out = 4;
  const int nx = rows * in, nw = out * in, np = nx + nw + out;
  float *x = tb_floats(&t, nx), *w = tb_floats(&t, nw), *b = tb_floats(&t, out);
  float *y = tb_floats(&t, rows * out), *dy = tb_floats(&t, rows * out);
  float *dx = tb_floats(&t, nx), *dw = tb_floats(&t, nw), *db = tb_floats(&t, out);
  tb_fill(&r, x, nx, -1, 1);
  tb_fill(&r, w, nw, -1, 1);
  tb_fill(&r, b, out, -1, 1);
  tb_fill(&r, dy, rows * out, -1, 1);

  TB_OK(t.be->gemm(t.be, 0, 1, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out));
  TB_OK(t.be->add_bias(t.be, y, b, rows, out));
  double p[6 * 5 + 4 * 5 + 4], ddy[6 * 4], want_y[6 * 4], g[6 * 5 + 4 * 5 + 4];
  tb_to_double(p, x, nx);
  tb_to_double(p + nx, w, nw);
  tb_to_double(p + nx + nw, b, out);
  for (int i = 0; i < rows; i++)
    for (int o = 0; o < out; o++) {
      double s = b[o];
      for (int k = 0; k < in; k++) s += (double)x[i * in + k] * w[o * in + k];
      want_y[i * out + o] = s;
    }
  TB_EXPECT_ERR("linear forward (gemm + add_bias)", tb_rel_err(y, want_y, rows * out, 1e-6), TB_TOL_FWD);

  /* dW and db accumulate: start them from known values */
  for (int i = 0; i < nw; i++) dw[i] = 0.25f;
  for (int i = 0; i < out; i++) db[i] = -0.5f;
  TB_OK(t.be->gemm(t.be, 0, 0, rows, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in));
  TB_OK(t.be->gemm(t.be, 1, 0, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dw, in));
  TB_OK(t.be->bias_grad(t.be, db, dy, rows, out));
  for (int i = 0; i < nw; i++) dw[i] -= 0.25f;
  for (int i = 0; i < out; i++) db[i] += 0.5f;

  tb_to_double(ddy, dy, rows * out);
  linear_ctx ctx = {rows, in, out, ddy};
  tb_fd_gradient(linear_objective, &ctx, p, np, TB_FD_H, g);
  TB_EXPECT_ERR("linear dx = dy W", tb_rel_err(dx, g, nx, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("linear dW += dy^T x", tb_rel_err(dw, g + nx, nw, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("linear db += colsum(dy)", tb_rel_err(db, g + nx + nw, out, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

/* bias_grad over many row blocks, and add_bias, against double sums */
static void test_bias_ops_many_rows(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(3);
  const int64_t rows = 1000; /* several 256-row blocks and a remainder */
  const int cols = 33;
  float *dy = tb_floats(&t, rows * cols), *db = tb_floats(&t, cols), *bias = tb_floats(&t, cols);
  tb_fill(&r, dy, rows * cols, -1, 1);
  tb_fill(&r, bias, cols, -1, 1);
  double want[33];
  for (int j = 0; j < cols; j++) {
    db[j] = 1.0f;
    want[j] = 1.0;
    for (int64_t i = 0; i < rows; i++) want[j] += dy[i * cols + j];
  }
  TB_OK(t.be->bias_grad(t.be, db, dy, rows, cols));
  TB_EXPECT_ERR("bias_grad 1000 rows (accumulate)", tb_rel_err(db, want, cols, 1e-6), TB_TOL_FWD);

  double *want_y = tb_doubles(&t, rows * cols);
  for (int64_t i = 0; i < rows * cols; i++) want_y[i] = (double)dy[i] + bias[i % cols];
  TB_OK(t.be->add_bias(t.be, dy, bias, rows, cols));
  TB_EXPECT_ERR("add_bias 1000 rows", tb_rel_err(dy, want_y, rows * cols, 1e-6), 1e-7);
  tb_close(&t);
}

static void test_axpy_scale_sumsq(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(4);
  const int64_t n = 100003;
  float *x = tb_floats(&t, n), *y = tb_floats(&t, n);
  double *want = tb_doubles(&t, n);
  tb_fill(&r, x, n, -2, 2);
  tb_fill(&r, y, n, -2, 2);
  for (int64_t i = 0; i < n; i++) want[i] = (double)y[i] + 0.375 * x[i];
  TB_OK(t.be->axpy(t.be, y, x, n, 0.375f));
  TB_EXPECT_ERR("axpy", tb_rel_err(y, want, n, 1e-6), 2e-7);
  for (int64_t i = 0; i < n; i++) want[i] = (double)x[i] * -1.5;
  TB_OK(t.be->scale(t.be, x, n, -1.5f));
  TB_EXPECT_ERR("scale", tb_rel_err(x, want, n, 1e-6), 2e-7);
  double ss = 0.0, got = -1.0;
  for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  TB_OK(t.be->sumsq(t.be, x, n, &got));
  double err = fabs(got - ss) / ss;
  print_message("  %-44s rel err %.2e (tol 1e-12)\n", "sumsq (double accumulation)", err);
  assert_true(err <= 1e-12);
  TB_OK(t.be->sumsq(t.be, x, 0, &got));
  assert_true(got == 0.0);
  tb_close(&t);
}

/* ---------------------------------------------------------------- ReLU + dropout */

typedef struct {
  int rows, cols, relu;
  float p;
  const unsigned char *keep;
  const double *dy;
} dropout_ctx;

static double dropout_objective(const double *x, const void *vctx) {
  const dropout_ctx *c = vctx;
  double l = 0.0;
  for (int i = 0; i < c->rows * c->cols; i++) {
    double v = x[i];
    if (c->relu && v < 0.0) v = 0.0;
    l += c->dy[i] * (c->keep[i] ? v / (1.0 - (double)c->p) : 0.0);
  }
  return l;
}

static void test_relu_dropout_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(5);
  enum { ROWS = 5, COLS = 11, N = ROWS * COLS };
  int64_t *keys = tb_alloc(&t, ROWS * sizeof(int64_t));
  for (int i = 0; i < ROWS; i++) keys[i] = (int64_t)1000003 * (i + 1) + ((int64_t)i << 33);
  dt_dropout_key key = {0xC0FFEEULL, 17, DT_SITE_CONTENT, keys};
  const float p = 0.3f;
  unsigned char keep[N];
  for (int i = 0; i < ROWS; i++)
    for (int j = 0; j < COLS; j++)
      keep[i * COLS + j] = (unsigned char)dt_dropout_keep(key.seed, key.step, key.site, keys[i], j, p);
  for (int relu = 0; relu < 2; relu++) {
    float *x = tb_floats(&t, N), *dy = tb_floats(&t, N);
    double xd[N], dyd[N], want[N], g[N];
    tb_fill_away0(&r, x, N, 0.05f, 1.0f); /* |x| >= 0.05 >> h: no kink inside the stencil */
    tb_fill(&r, dy, N, -1, 1);
    tb_to_double(xd, x, N);
    tb_to_double(dyd, dy, N);
    for (int i = 0; i < N; i++) {
      double v = relu && xd[i] < 0 ? 0.0 : xd[i];
      want[i] = keep[i] ? v / (1.0 - (double)p) : 0.0;
    }
    TB_OK(t.be->relu_dropout_fwd(t.be, x, ROWS, COLS, relu, p, key));
    TB_EXPECT_ERR(relu ? "relu_dropout_fwd relu=1" : "relu_dropout_fwd relu=0", tb_rel_err(x, want, N, 1e-6),
                  TB_TOL_FWD);
    TB_OK(t.be->relu_dropout_bwd(t.be, dy, x, ROWS, COLS, relu, p, key));
    dropout_ctx ctx = {ROWS, COLS, relu, p, keep, dyd};
    tb_fd_gradient(dropout_objective, &ctx, xd, N, TB_FD_H, g);
    TB_EXPECT_ERR(relu ? "relu_dropout_bwd relu=1" : "relu_dropout_bwd relu=0", tb_rel_err(dy, g, N, 1e-6),
                  TB_TOL_GRAD);
  }
  /* p = 0: plain ReLU forward and backward, no keys needed */
  dt_dropout_key nokey = {0, 0, 0, NULL};
  float v[4] = {-1.0f, 2.0f, 0.0f, 3.5f}, d[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  TB_OK(t.be->relu_dropout_fwd(t.be, v, 1, 4, 1, 0.0f, nokey));
  TB_OK(t.be->relu_dropout_bwd(t.be, d, v, 1, 4, 1, 0.0f, nokey));
  assert_true(v[0] == 0.0f && v[1] == 2.0f && v[2] == 0.0f && v[3] == 3.5f);
  assert_true(d[0] == 0.0f && d[1] == 1.0f && d[2] == 0.0f && d[3] == 1.0f);
  /* p outside [0, 1) is rejected */
  assert_int_equal(t.be->relu_dropout_fwd(t.be, v, 1, 4, 0, 1.0f, key), DT_EXIT_RUNTIME);
  tb_close(&t);
}

/* ---------------------------------------------------------------- gather / coalesce */

typedef struct {
  int n, dim;
  const int32_t *ids;
  const double *dout;
} gather_ctx;

static double gather_objective(const double *table, const void *vctx) {
  const gather_ctx *c = vctx;
  double l = 0.0;
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->dim; j++) l += c->dout[i * c->dim + j] * table[c->ids[i] * c->dim + j];
  return l;
}

static void test_gather_coalesce_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(6);
  enum { V = 7, DIM = 5, N = 9 };
  const int32_t ids_init[N] = {4, 1, 6, 4, 0, 1, 4, 3, 6}; /* duplicates, unsorted, rows 2 and 5 untouched */
  int32_t *ids = tb_ints(&t, N), *uniq = tb_ints(&t, N);
  memcpy(ids, ids_init, sizeof ids_init);
  float *table = tb_floats(&t, V * DIM), *out = tb_floats(&t, N * DIM), *dout = tb_floats(&t, N * DIM);
  float *sums = tb_floats(&t, N * DIM);
  tb_fill(&r, table, V * DIM, -1, 1);
  tb_fill(&r, dout, N * DIM, -1, 1);
  TB_OK(t.be->gather_rows(t.be, out, table, ids, N, DIM));
  for (int i = 0; i < N; i++) assert_memory_equal(out + i * DIM, table + ids[i] * DIM, DIM * sizeof(float));

  int64_t m = -1;
  TB_OK(t.be->coalesce_rows(t.be, ids, dout, N, DIM, uniq, sums, &m));
  assert_int_equal(m, 5);
  const int32_t want_uniq[5] = {0, 1, 3, 4, 6};
  assert_memory_equal(uniq, want_uniq, sizeof want_uniq);
  float dtable[V * DIM];
  memset(dtable, 0, sizeof dtable);
  for (int k = 0; k < m; k++) memcpy(dtable + uniq[k] * DIM, sums + k * DIM, DIM * sizeof(float));

  double p[V * DIM], dd[N * DIM], g[V * DIM];
  tb_to_double(p, table, V * DIM);
  tb_to_double(dd, dout, N * DIM);
  gather_ctx ctx = {N, DIM, ids, dd};
  tb_fd_gradient(gather_objective, &ctx, p, V * DIM, TB_FD_H, g);
  TB_EXPECT_ERR("gather_rows backward = coalesce_rows", tb_rel_err(dtable, g, V * DIM, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

/* ---------------------------------------------------------------- CSR x dense */

typedef struct {
  const int64_t *indptr;
  const int32_t *indices;
  const float *values;
  const int32_t *rows;
  int n, o;
  const double *dout;
} csr_ctx;

static void csr_reference(const csr_ctx *c, const double *wt, double *out) {
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->o; j++) {
      double s = 0.0;
      for (int64_t e = c->indptr[c->rows[i]]; e < c->indptr[c->rows[i] + 1]; e++)
        s += (double)c->values[e] * wt[c->indices[e] * c->o + j];
      out[i * c->o + j] = s;
    }
}

static double csr_objective(const double *wt, const void *vctx) {
  const csr_ctx *c = vctx;
  double out[5 * 6], l = 0.0;
  csr_reference(c, wt, out);
  for (int i = 0; i < c->n * c->o; i++) l += c->dout[i] * out[i];
  return l;
}

static void test_csr_matmul_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(7);
  enum { VOCAB = 9, O = 6, NNZ = 10, N = 5 };
  const int64_t indptr_init[6] = {0, 3, 3, 5, 9, 10}; /* row 1 empty */
  const int32_t indices_init[NNZ] = {0, 4, 8, 2, 4, 1, 3, 5, 8, 7};
  const int32_t rows_init[N] = {3, 0, 3, 1, 4}; /* a repeated row and the empty one */
  int64_t *indptr = tb_alloc(&t, sizeof indptr_init);
  int32_t *indices = tb_ints(&t, NNZ), *rows = tb_ints(&t, N);
  float *values = tb_floats(&t, NNZ), *wt = tb_floats(&t, VOCAB * O), *out = tb_floats(&t, N * O);
  float *dout = tb_floats(&t, N * O), *dwt = tb_floats(&t, VOCAB * O);
  memcpy(indptr, indptr_init, sizeof indptr_init);
  memcpy(indices, indices_init, sizeof indices_init);
  memcpy(rows, rows_init, sizeof rows_init);
  tb_fill(&r, values, NNZ, 0.1f, 1);
  tb_fill(&r, wt, VOCAB * O, -1, 1);
  tb_fill(&r, dout, N * O, -1, 1);
  double p[VOCAB * O], dd[N * O], want[N * O], g[VOCAB * O];
  tb_to_double(p, wt, VOCAB * O);
  tb_to_double(dd, dout, N * O);
  csr_ctx ctx = {indptr, indices, values, rows, N, O, dd};
  csr_reference(&ctx, p, want);
  TB_OK(t.be->csr_matmul(t.be, out, indptr, indices, values, rows, N, wt, O));
  TB_EXPECT_ERR("csr_matmul forward", tb_rel_err(out, want, N * O, 1e-6), TB_TOL_FWD);
  for (int i = 0; i < VOCAB * O; i++) dwt[i] = 2.0f;
  TB_OK(t.be->csr_matmul_grad(t.be, dwt, indptr, indices, values, rows, N, dout, O, VOCAB));
  for (int i = 0; i < VOCAB * O; i++) dwt[i] -= 2.0f;
  tb_fd_gradient(csr_objective, &ctx, p, VOCAB * O, TB_FD_H, g);
  TB_EXPECT_ERR("csr_matmul_grad (accumulate)", tb_rel_err(dwt, g, VOCAB * O, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

/* ---------------------------------------------------------------- gate */

typedef struct {
  int n;
  const double *dalpha;
} softmax_ctx;

static void softmax3_ref(const double *l, double *a) {
  double mx = fmax(l[0], fmax(l[1], l[2]));
  double e[3], s = 0.0;
  for (int k = 0; k < 3; k++) s += e[k] = exp(l[k] - mx);
  for (int k = 0; k < 3; k++) a[k] = e[k] / s;
}

static double softmax_objective(const double *logits, const void *vctx) {
  const softmax_ctx *c = vctx;
  double l = 0.0, a[3];
  for (int i = 0; i < c->n; i++) {
    softmax3_ref(logits + 3 * i, a);
    for (int k = 0; k < 3; k++) l += c->dalpha[3 * i + k] * a[k];
  }
  return l;
}

static void test_softmax3_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(8);
  enum { N = 6 };
  float *logits = tb_floats(&t, 3 * N), *alpha = tb_floats(&t, 3 * N), *da = tb_floats(&t, 3 * N);
  float *dl = tb_floats(&t, 3 * N);
  tb_fill(&r, logits, 3 * N, -3, 3);
  logits[0] = 80.0f; /* large logits must not overflow */
  tb_fill(&r, da, 3 * N, -1, 1);
  double p[3 * N], dd[3 * N], want[3 * N], g[3 * N];
  tb_to_double(p, logits, 3 * N);
  tb_to_double(dd, da, 3 * N);
  for (int i = 0; i < N; i++) softmax3_ref(p + 3 * i, want + 3 * i);
  TB_OK(t.be->softmax3_fwd(t.be, logits, alpha, N));
  TB_EXPECT_ERR("softmax3_fwd", tb_rel_err(alpha, want, 3 * N, 1e-6), TB_TOL_FWD);
  TB_OK(t.be->softmax3_bwd(t.be, alpha, da, dl, N));
  softmax_ctx ctx = {N, dd};
  tb_fd_gradient(softmax_objective, &ctx, p, 3 * N, TB_FD_H, g);
  TB_EXPECT_ERR("softmax3_bwd", tb_rel_err(dl, g, 3 * N, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

typedef struct {
  int n;
  double lambda_ent, lambda_bal;
} gate_reg_ctx;

static double gate_reg_objective(const double *alpha, const void *vctx) {
  const gate_reg_ctx *c = vctx;
  double ent = 0.0, mean[3] = {0, 0, 0};
  for (int i = 0; i < c->n; i++)
    for (int k = 0; k < 3; k++) {
      double a = alpha[3 * i + k];
      ent += a * log(a + 1e-8);
      mean[k] += a / c->n;
    }
  double bal = 0.0;
  for (int k = 0; k < 3; k++) bal += (mean[k] - 1.0 / 3.0) * (mean[k] - 1.0 / 3.0);
  return c->lambda_ent / c->n * ent + c->lambda_bal * bal;
}

static void test_gate_reg_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(9);
  enum { N = 8 };
  const float lent = 0.5f, lbal = 2.0f; /* large, so both terms weigh in the gradient */
  float *logits = tb_floats(&t, 3 * N), *alpha = tb_floats(&t, 3 * N), *da = tb_floats(&t, 3 * N);
  float *da_split = tb_floats(&t, 3 * N);
  tb_fill(&r, logits, 3 * N, -2, 2);
  TB_OK(t.be->softmax3_fwd(t.be, logits, alpha, N));
  float mean[3] = {0, 0, 0};
  double p[3 * N], g[3 * N], want_ne = 0.0;
  tb_to_double(p, alpha, 3 * N);
  for (int i = 0; i < N; i++)
    for (int k = 0; k < 3; k++) {
      mean[k] += alpha[3 * i + k] / N;
      want_ne += p[3 * i + k] * log(p[3 * i + k] + 1e-8);
    }
  for (int i = 0; i < 3 * N; i++) da[i] = da_split[i] = 0.125f; /* accumulates */
  double ne = 0.0, ne0 = 0.0, ne1 = 0.0;
  TB_OK(t.be->gate_reg(t.be, alpha, N, lent, lbal, mean, N, da, &ne));
  for (int i = 0; i < 3 * N; i++) da[i] -= 0.125f;
  gate_reg_ctx ctx = {N, lent, lbal};
  tb_fd_gradient(gate_reg_objective, &ctx, p, 3 * N, TB_FD_H, g);
  TB_EXPECT_ERR("gate_reg dalpha (entropy + balance)", tb_rel_err(da, g, 3 * N, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("gate_reg negated entropy sum", fabs(ne - want_ne) / fabs(want_ne), 1e-6);

  /* two ranks holding rows [0,3) and [3,8) of the same global batch give the
   * same rows and the same total */
  TB_OK(t.be->gate_reg(t.be, alpha, 3, lent, lbal, mean, N, da_split, &ne0));
  TB_OK(t.be->gate_reg(t.be, alpha + 9, N - 3, lent, lbal, mean, N, da_split + 9, &ne1));
  for (int i = 0; i < 3 * N; i++) da_split[i] -= 0.125f;
  assert_memory_equal(da_split, da, 3 * N * sizeof(float));
  assert_true(fabs(ne0 + ne1 - ne) <= 1e-12 * fabs(ne));
  tb_close(&t);
}

/* ---------------------------------------------------------------- BPR */

typedef struct {
  int n, c;
  double inv_pairs;
} bpr_ctx;

static double softplus_ref(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double bpr_objective(const double *s, const void *vctx) {
  const bpr_ctx *c = vctx;
  double l = 0.0;
  for (int i = 0; i < c->n; i++)
    for (int j = 1; j < c->c; j++) l += softplus_ref(-(s[i * c->c] - s[i * c->c + j]));
  return c->inv_pairs * l;
}

static void test_bpr_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(10);
  enum { N = 5, C = 4 };
  float *s = tb_floats(&t, N * C), *ds = tb_floats(&t, N * C);
  tb_fill(&r, s, N * C, -4, 4);
  s[1] = 60.0f; /* a far-off pair: softplus must stay finite */
  const float inv_pairs = 1.0f / (N * (C - 1));
  double p[N * C], g[N * C], loss = -1.0;
  tb_to_double(p, s, N * C);
  bpr_ctx ctx = {N, C, inv_pairs};
  TB_OK(t.be->bpr(t.be, s, N, C, inv_pairs, ds, &loss));
  double want = bpr_objective(p, &ctx) / (double)inv_pairs;
  TB_EXPECT_ERR("bpr loss sum", fabs(loss - want) / want, 1e-6);
  tb_fd_gradient(bpr_objective, &ctx, p, N * C, TB_FD_H, g);
  TB_EXPECT_ERR("bpr dscores", tb_rel_err(ds, g, N * C, 1e-6), TB_TOL_GRAD);
  /* one column (no negatives): no pairs, zero loss and gradient */
  TB_OK(t.be->bpr(t.be, s, N, 1, 1.0f, ds, &loss));
  assert_true(loss == 0.0);
  for (int i = 0; i < N; i++) assert_true(ds[i] == 0.0f);
  tb_close(&t);
}

/* ---------------------------------------------------------------- rowdot */

typedef struct {
  int n, c, d;
  const double *dout;
} rowdot_ctx;

static double rowdot_objective(const double *p, const void *vctx) {
  const rowdot_ctx *c = vctx;
  const double *u = p, *v = p + c->n * c->d;
  double l = 0.0;
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->c; j++) {
      double s = 0.0;
      for (int k = 0; k < c->d; k++) s += u[i * c->d + k] * v[(i * c->c + j) * c->d + k];
      l += c->dout[i * c->c + j] * s;
    }
  return l;
}

static void test_rowdot_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(11);
  enum { N = 3, C = 4, D = 5, NU = N * D, NV = N * C * D };
  float *u = tb_floats(&t, NU), *v = tb_floats(&t, NV), *out = tb_floats(&t, N * C), *dout = tb_floats(&t, N * C);
  float *du = tb_floats(&t, NU), *dv = tb_floats(&t, NV);
  tb_fill(&r, u, NU, -1, 1);
  tb_fill(&r, v, NV, -1, 1);
  tb_fill(&r, dout, N * C, -1, 1);
  double p[NU + NV], dd[N * C], g[NU + NV], want[N * C];
  tb_to_double(p, u, NU);
  tb_to_double(p + NU, v, NV);
  tb_to_double(dd, dout, N * C);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < C; j++) {
      want[i * C + j] = 0.0;
      for (int k = 0; k < D; k++) want[i * C + j] += p[i * D + k] * p[NU + (i * C + j) * D + k];
    }
  TB_OK(t.be->rowdot_fwd(t.be, u, v, out, N, C, D));
  TB_EXPECT_ERR("rowdot_fwd", tb_rel_err(out, want, N * C, 1e-6), TB_TOL_FWD);
  for (int i = 0; i < NU; i++) du[i] = 1.0f;
  for (int i = 0; i < NV; i++) dv[i] = -1.0f;
  TB_OK(t.be->rowdot_bwd(t.be, u, v, dout, du, dv, N, C, D));
  for (int i = 0; i < NU; i++) du[i] -= 1.0f;
  for (int i = 0; i < NV; i++) dv[i] += 1.0f;
  rowdot_ctx ctx = {N, C, D, dd};
  tb_fd_gradient(rowdot_objective, &ctx, p, NU + NV, TB_FD_H, g);
  TB_EXPECT_ERR("rowdot_bwd du (accumulate)", tb_rel_err(du, g, NU, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("rowdot_bwd dv (accumulate)", tb_rel_err(dv, g + NU, NV, 1e-6), TB_TOL_GRAD);
  /* du NULL: dv alone, same values */
  float *dv2 = tb_floats(&t, NV);
  memset(dv2, 0, NV * sizeof(float));
  TB_OK(t.be->rowdot_bwd(t.be, u, v, dout, NULL, dv2, N, C, D));
  TB_EXPECT_ERR("rowdot_bwd dv with du = NULL", tb_rel_err(dv2, g + NU, NV, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

/* ---------------------------------------------------------------- mix3 */

typedef struct {
  int n, c, d, has_hd;
  const double *dz;
} mix3_ctx;

/* p = [alpha n*3 | hs n*c*d | hd n*d | hc n*c*d] */
static double mix3_objective(const double *p, const void *vctx) {
  const mix3_ctx *m = vctx;
  int n = m->n, c = m->c, d = m->d;
  const double *al = p, *hs = p + 3 * n, *hd = hs + n * c * d, *hc = hd + n * d;
  double l = 0.0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < c; j++)
      for (int k = 0; k < d; k++) {
        int e = (i * c + j) * d + k;
        double z = al[3 * i] * hs[e] + (m->has_hd ? al[3 * i + 1] * hd[i * d + k] : 0.0) + al[3 * i + 2] * hc[e];
        l += m->dz[e] * z;
      }
  return l;
}

static void test_mix3_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(12);
  enum { N = 3, C = 2, D = 5, NZ = N * C * D, NA = 3 * N, NP = NA + NZ + N * D + NZ };
  float *alpha = tb_floats(&t, NA), *hs = tb_floats(&t, NZ), *hd = tb_floats(&t, N * D), *hc = tb_floats(&t, NZ);
  float *z = tb_floats(&t, NZ), *dz = tb_floats(&t, NZ), *dalpha = tb_floats(&t, NA);
  float *dhs = tb_floats(&t, NZ), *dhd = tb_floats(&t, N * D), *dhc = tb_floats(&t, NZ);
  tb_fill(&r, alpha, NA, 0, 1);
  tb_fill(&r, hs, NZ, -1, 1);
  tb_fill(&r, hd, N * D, -1, 1);
  tb_fill(&r, hc, NZ, -1, 1);
  tb_fill(&r, dz, NZ, -1, 1);
  for (int has_hd = 1; has_hd >= 0; has_hd--) {
    double p[NP], dd[NZ], g[NP], want[NZ];
    tb_to_double(p, alpha, NA);
    tb_to_double(p + NA, hs, NZ);
    tb_to_double(p + NA + NZ, hd, N * D);
    tb_to_double(p + NA + NZ + N * D, hc, NZ);
    tb_to_double(dd, dz, NZ);
    for (int i = 0; i < N; i++)
      for (int j = 0; j < C; j++)
        for (int k = 0; k < D; k++) {
          int e = (i * C + j) * D + k;
          want[e] = p[3 * i] * p[NA + e] + (has_hd ? p[3 * i + 1] * p[NA + NZ + i * D + k] : 0.0) +
                    p[3 * i + 2] * p[NA + NZ + N * D + e];
        }
    const float *hd_in = has_hd ? hd : NULL;
    TB_OK(t.be->mix3_fwd(t.be, alpha, hs, hd_in, hc, z, N, C, D));
    TB_EXPECT_ERR(has_hd ? "mix3_fwd" : "mix3_fwd hd = NULL", tb_rel_err(z, want, NZ, 1e-6), TB_TOL_FWD);
    for (int i = 0; i < NZ; i++) dhs[i] = dhc[i] = 0.5f;
    for (int i = 0; i < N * D; i++) dhd[i] = 0.5f;
    for (int i = 0; i < NA; i++) dalpha[i] = 99.0f; /* overwritten */
    TB_OK(t.be->mix3_bwd(t.be, alpha, hs, hd_in, hc, dz, dalpha, dhs, has_hd ? dhd : NULL, dhc, N, C, D));
    for (int i = 0; i < NZ; i++) {
      dhs[i] -= 0.5f;
      dhc[i] -= 0.5f;
    }
    mix3_ctx ctx = {N, C, D, has_hd, dd};
    tb_fd_gradient(mix3_objective, &ctx, p, NP, TB_FD_H, g);
    TB_EXPECT_ERR("mix3_bwd dalpha", tb_rel_err(dalpha, g, NA, 1e-6), TB_TOL_GRAD);
    TB_EXPECT_ERR("mix3_bwd dhs", tb_rel_err(dhs, g + NA, NZ, 1e-6), TB_TOL_GRAD);
    TB_EXPECT_ERR("mix3_bwd dhc", tb_rel_err(dhc, g + NA + NZ + N * D, NZ, 1e-6), TB_TOL_GRAD);
    if (has_hd) {
      for (int i = 0; i < N * D; i++) dhd[i] -= 0.5f;
      TB_EXPECT_ERR("mix3_bwd dhd", tb_rel_err(dhd, g + NA + NZ, N * D, 1e-6), TB_TOL_GRAD);
    } else {
      for (int i = 0; i < N; i++) assert_true(dalpha[3 * i + 1] == 0.0f);
    }
  }
  tb_close(&t);
}

/* ---------------------------------------------------------------- score_mix */

typedef struct {
  int n, c, has_sd;
  const double *ds;
} score_mix_ctx;

/* p = [alpha n*3 | ss | sd | sc | bias], each n*c */
static double score_mix_objective(const double *p, const void *vctx) {
  const score_mix_ctx *m = vctx;
  int nc = m->n * m->c;
  const double *al = p, *ss = p + 3 * m->n, *sd = ss + nc, *sc = sd + nc, *b = sc + nc;
  double l = 0.0;
  for (int i = 0; i < m->n; i++)
    for (int j = 0; j < m->c; j++) {
      int e = i * m->c + j;
      double s = al[3 * i] * ss[e] + (m->has_sd ? al[3 * i + 1] * sd[e] : 0.0) + al[3 * i + 2] * sc[e] + b[e];
      l += m->ds[e] * s;
    }
  return l;
}

static void test_score_mix_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(13);
  enum { N = 4, C = 3, NC = N * C, NA = 3 * N, NP = NA + 4 * NC };
  float *alpha = tb_floats(&t, NA), *sk = tb_floats(&t, 4 * NC), *s = tb_floats(&t, NC), *ds = tb_floats(&t, NC);
  float *dalpha = tb_floats(&t, NA), *dsk = tb_floats(&t, 3 * NC);
  tb_fill(&r, alpha, NA, 0, 1);
  tb_fill(&r, sk, 4 * NC, -2, 2);
  tb_fill(&r, ds, NC, -1, 1);
  const float *ss = sk, *sd = sk + NC, *sc = sk + 2 * NC, *bias = sk + 3 * NC;
  for (int has_sd = 1; has_sd >= 0; has_sd--) {
    double p[NP], dd[NC], g[NP], want[NC];
    tb_to_double(p, alpha, NA);
    tb_to_double(p + NA, sk, 4 * NC);
    tb_to_double(dd, ds, NC);
    score_mix_ctx ctx = {N, C, has_sd, dd};
    for (int e = 0; e < NC; e++) {
      int i = e / C;
      want[e] = p[3 * i] * ss[e] + (has_sd ? p[3 * i + 1] * sd[e] : 0.0) + p[3 * i + 2] * sc[e] + bias[e];
    }
    TB_OK(t.be->score_mix_fwd(t.be, alpha, ss, has_sd ? sd : NULL, sc, bias, s, N, C));
    TB_EXPECT_ERR(has_sd ? "score_mix_fwd" : "score_mix_fwd sd = NULL", tb_rel_err(s, want, NC, 1e-6), TB_TOL_FWD);
    for (int i = 0; i < 3 * NC; i++) dsk[i] = 99.0f; /* overwritten */
    TB_OK(t.be->score_mix_bwd(t.be, alpha, ss, has_sd ? sd : NULL, sc, ds, dalpha, dsk, has_sd ? dsk + NC : NULL,
                              dsk + 2 * NC, N, C));
    tb_fd_gradient(score_mix_objective, &ctx, p, NP, TB_FD_H, g);
    TB_EXPECT_ERR("score_mix_bwd dalpha", tb_rel_err(dalpha, g, NA, 1e-6), TB_TOL_GRAD);
    TB_EXPECT_ERR("score_mix_bwd dss", tb_rel_err(dsk, g + NA, NC, 1e-6), TB_TOL_GRAD);
    TB_EXPECT_ERR("score_mix_bwd dsc", tb_rel_err(dsk + 2 * NC, g + NA + 2 * NC, NC, 1e-6), TB_TOL_GRAD);
    /* d/dbias is ds itself: the model passes ds on, no op needed */
    TB_EXPECT_ERR("score_mix d/dbias = ds", tb_rel_err(ds, g + NA + 3 * NC, NC, 1e-6), TB_TOL_GRAD);
    if (has_sd) {
      TB_EXPECT_ERR("score_mix_bwd dsd", tb_rel_err(dsk + NC, g + NA + NC, NC, 1e-6), TB_TOL_GRAD);
    } else {
      for (int i = 0; i < N; i++) assert_true(dalpha[3 * i + 1] == 0.0f);
      for (int i = 0; i < NC; i++) assert_true(dsk[NC + i] == 99.0f); /* NULL dsd: untouched buffer */
    }
  }
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_matches_reference),
      cmocka_unit_test(test_gemm_split_matches_reference),
      cmocka_unit_test(test_linear_layer_gradients),
      cmocka_unit_test(test_bias_ops_many_rows),
      cmocka_unit_test(test_axpy_scale_sumsq),
      cmocka_unit_test(test_relu_dropout_gradients),
      cmocka_unit_test(test_gather_coalesce_gradients),
      cmocka_unit_test(test_csr_matmul_gradients),
      cmocka_unit_test(test_softmax3_gradients),
      cmocka_unit_test(test_gate_reg_gradients),
      cmocka_unit_test(test_bpr_gradients),
      cmocka_unit_test(test_rowdot_gradients),
      cmocka_unit_test(test_mix3_gradients),
      cmocka_unit_test(test_score_mix_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
