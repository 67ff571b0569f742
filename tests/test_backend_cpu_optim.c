/* Optimizer steps of the CPU backend against values computed by hand in
 * double: dense Adam (torch.optim.Adam with L2 weight decay, gradient
 * scaling, bias correction) for t = 1 and t = 2, lazy Adam on touched rows
 * with per-row step counters, and row-wise Adagrad. */
#include "test_backend_cpu_util.h"

/* float results vs double references: parameters are O(1) and updates
 * O(lr), so 3e-7 absolute is a few float ulps of the parameter. */
#define PARAM_TOL 3e-7
#define MOMENT_RTOL 1e-6

static void expect_close(const char *what, const float *got, const double *want, int n, double atol, double rtol) {
  for (int i = 0; i < n; i++) {
    double err = fabs((double)got[i] - want[i]);
    if (!(err <= atol + rtol * fabs(want[i])))
      fail_msg("%s[%d] = %.9g, expected %.9g (error %.3g)", what, i, (double)got[i], want[i], err);
  }
}

/* torch.optim.Adam's update in double */
static void adam_ref(double *p, double *m, double *v, double grad, const dt_adam_hyper *h, int64_t t) {
  double g = (double)h->grad_scale * grad + (double)h->weight_decay * *p;
  *m = h->beta1 * *m + (1.0 - h->beta1) * g;
  *v = h->beta2 * *v + (1.0 - h->beta2) * g * g;
  double bc1 = 1.0 - pow(h->beta1, (double)t), bc2 = 1.0 - pow(h->beta2, (double)t);
  *p -= h->lr / bc1 * *m / (sqrt(*v) / sqrt(bc2) + h->eps);
}

static void test_adam_dense_two_steps(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  enum { N = 6 };
  float *p = tb_floats(&t, N), *g = tb_floats(&t, N), *m = tb_floats(&t, N), *v = tb_floats(&t, N);
  const float p0[N] = {0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 0.0f};
  const float g1[N] = {0.1f, -0.2f, 0.0f, 1.5f, 0.3f, -0.05f};
  const float g2[N] = {-0.3f, 0.4f, 0.2f, 1.0f, -0.1f, 0.05f};
  memcpy(p, p0, sizeof p0);
  memcpy(g, g1, sizeof g1);
  TB_OK(t.be->zero(t.be, m, N * sizeof(float)));
  TB_OK(t.be->zero(t.be, v, N * sizeof(float)));
  dt_adam_hyper hy = {
      .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f, .grad_scale = 0.5f, .step = 1};
  TB_OK(t.be->adam(t.be, p, g, m, v, N, hy));

  /* t = 1 by hand: m = (1-b1) g, v = (1-b2) g^2, so m/bc1 = g and
   * sqrt(v/bc2) = |g|: p moves by lr * g / (|g| + eps), about lr * sign(g) */
  double rp[N], rm[N], rv[N];
  for (int i = 0; i < N; i++) {
    double gg = 0.5 * g1[i] + 0.1 * p0[i];
    rm[i] = (1.0 - (double)0.9f) * gg;
    rv[i] = (1.0 - (double)0.999f) * gg * gg;
    rp[i] = p0[i] - (double)0.01f * gg / (fabs(gg) + (double)1e-8f);
  }
  expect_close("adam t=1 param", p, rp, N, PARAM_TOL, 0);
  expect_close("adam t=1 m", m, rm, N, 1e-12, MOMENT_RTOL);
  expect_close("adam t=1 v", v, rv, N, 1e-15, MOMENT_RTOL);

  /* t = 2: the recurrences, with bias corrections 1 - b^2 */
  memcpy(g, g2, sizeof g2);
  hy.step = 2;
  TB_OK(t.be->adam(t.be, p, g, m, v, N, hy));
  double qp[N], qm[N], qv[N];
  for (int i = 0; i < N; i++) {
    qp[i] = p0[i];
    qm[i] = qv[i] = 0.0;
    adam_ref(&qp[i], &qm[i], &qv[i], g1[i], &hy, 1);
    adam_ref(&qp[i], &qm[i], &qv[i], g2[i], &hy, 2);
  }
  expect_close("adam t=2 param", p, qp, N, PARAM_TOL, 0);
  expect_close("adam t=2 m", m, qm, N, 1e-12, MOMENT_RTOL);
  expect_close("adam t=2 v", v, qv, N, 1e-15, MOMENT_RTOL);

  /* step 0 has no bias correction: an error, not a division by zero */
  hy.step = 0;
  assert_int_equal(t.be->adam(t.be, p, g, m, v, N, hy), DT_EXIT_RUNTIME);
  tb_close(&t);
}

static void test_adam_rows_lazy(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(41);
  enum { ROWS = 6, DIM = 5, M = 2 };
  float *table = tb_floats(&t, ROWS * DIM), *mt = tb_floats(&t, ROWS * DIM), *vt = tb_floats(&t, ROWS * DIM);
  float *grads = tb_floats(&t, M * DIM);
  int64_t *row_step = tb_alloc(&t, ROWS * sizeof(int64_t));
  int32_t *ids = tb_ints(&t, M);
  tb_fill(&r, table, ROWS * DIM, -1, 1);
  tb_fill(&r, mt, ROWS * DIM, -0.1f, 0.1f); /* moments from earlier steps */
  tb_fill(&r, vt, ROWS * DIM, 0.0f, 0.01f);
  tb_fill(&r, grads, M * DIM, -1, 1);
  const int64_t steps0[ROWS] = {0, 3, 0, 0, 1, 7};
  memcpy(row_step, steps0, sizeof steps0);
  ids[0] = 4; /* row 4 goes to step 2, row 1 to step 4 */
  ids[1] = 1;
  float t0[ROWS * DIM], m0[ROWS * DIM], v0[ROWS * DIM];
  memcpy(t0, table, sizeof t0);
  memcpy(m0, mt, sizeof m0);
  memcpy(v0, vt, sizeof v0);
  dt_adam_hyper hy = {.lr = 0.01f,
                      .beta1 = 0.9f,
                      .beta2 = 0.999f,
                      .eps = 1e-8f,
                      .weight_decay = 0.05f,
                      .grad_scale = 0.8f,
                      .step = 1000 /* unused by adam_rows */};
  TB_OK(t.be->adam_rows(t.be, table, mt, vt, row_step, ids, grads, M, DIM, hy));

  const int64_t steps1[ROWS] = {0, 4, 0, 0, 2, 7};
  assert_memory_equal(row_step, steps1, sizeof steps1);
  for (int row = 0; row < ROWS; row++) {
    int k = row == 4 ? 0 : row == 1 ? 1 : -1;
    if (k < 0) { /* untouched: table and moments keep their bits */
      assert_memory_equal(table + row * DIM, t0 + row * DIM, DIM * sizeof(float));
      assert_memory_equal(mt + row * DIM, m0 + row * DIM, DIM * sizeof(float));
      assert_memory_equal(vt + row * DIM, v0 + row * DIM, DIM * sizeof(float));
      continue;
    }
    double rp[DIM], rm[DIM], rv[DIM];
    for (int j = 0; j < DIM; j++) {
      rp[j] = t0[row * DIM + j];
      rm[j] = m0[row * DIM + j];
      rv[j] = v0[row * DIM + j];
      adam_ref(&rp[j], &rm[j], &rv[j], grads[k * DIM + j], &hy, steps1[row]);
    }
    expect_close("adam_rows param", table + row * DIM, rp, DIM, PARAM_TOL, 0);
    expect_close("adam_rows m", mt + row * DIM, rm, DIM, 1e-12, MOMENT_RTOL);
    expect_close("adam_rows v", vt + row * DIM, rv, DIM, 1e-15, MOMENT_RTOL);
  }
  tb_close(&t);
}

/* The bias corrections come from a table the backend fills once per step
 * count and refills when the betas change: a backend that ran other betas
 * first gives the bits of a fresh one. */
static void test_adam_rows_bias_table(void **state) {
  (void)state;
  tb_ctx a, b;
  tb_open(&a, 1);
  tb_open(&b, 1);
  enum { ROWS = 8, DIM = 16, M = 3 };
  tb_rng r = tb_seed(43);
  float init[ROWS * DIM], g[M * DIM];
  tb_fill(&r, init, ROWS * DIM, -1, 1);
  tb_fill(&r, g, M * DIM, -1, 1);
  const int64_t steps0[ROWS] = {0, 5000, 2, 0, 70, 1, 0, 9};
  const int32_t ids0[M] = {1, 4, 7};
  float *out[2];
  tb_ctx *ctx[2] = {&a, &b};
  for (int which = 0; which < 2; which++) {
    tb_ctx *t = ctx[which];
    float *table = tb_floats(t, ROWS * DIM), *mt = tb_floats(t, ROWS * DIM), *vt = tb_floats(t, ROWS * DIM);
    float *grads = tb_floats(t, M * DIM);
    int64_t *row_step = tb_alloc(t, ROWS * sizeof(int64_t));
    int32_t *ids = tb_ints(t, M);
    memcpy(ids, ids0, sizeof ids0);
    memcpy(grads, g, sizeof g);
    dt_adam_hyper hy = {
        .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .grad_scale = 1.0f, .step = 1};
    if (which == 0) { /* other betas first, up to large step counts */
      memset(mt, 0, ROWS * DIM * sizeof(float));
      memset(vt, 0, ROWS * DIM * sizeof(float));
      memcpy(row_step, steps0, sizeof steps0);
      TB_OK(t->be->adam_rows(t->be, table, mt, vt, row_step, ids, grads, M, DIM, hy));
    }
    memcpy(table, init, sizeof init);
    memset(mt, 0, ROWS * DIM * sizeof(float));
    memset(vt, 0, ROWS * DIM * sizeof(float));
    memcpy(row_step, steps0, sizeof steps0);
    hy.beta1 = 0.8f;
    hy.beta2 = 0.99f;
    TB_OK(t->be->adam_rows(t->be, table, mt, vt, row_step, ids, grads, M, DIM, hy));
    out[which] = table;
  }
  assert_memory_equal(out[0], out[1], ROWS * DIM * sizeof(float));
  tb_close(&a);
  tb_close(&b);
}

static void test_adagrad_rows(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(42);
  enum { ROWS = 5, DIM = 4, M = 2 };
  float *table = tb_floats(&t, ROWS * DIM), *acc = tb_floats(&t, ROWS), *grads = tb_floats(&t, M * DIM);
  int32_t *ids = tb_ints(&t, M);
  tb_fill(&r, table, ROWS * DIM, -1, 1);
  tb_fill(&r, acc, ROWS, 0.0f, 0.5f);
  tb_fill(&r, grads, M * DIM, -1, 1);
  ids[0] = 3;
  ids[1] = 0;
  float t0[ROWS * DIM], a0[ROWS];
  memcpy(t0, table, sizeof t0);
  memcpy(a0, acc, sizeof a0);
  dt_adam_hyper hy = {.lr = 0.1f, .eps = 1e-10f, .weight_decay = 0.01f, .grad_scale = 2.0f};
  TB_OK(t.be->adagrad_rows(t.be, table, acc, ids, grads, M, DIM, hy));
  for (int row = 0; row < ROWS; row++) {
    int k = row == 3 ? 0 : row == 0 ? 1 : -1;
    if (k < 0) {
      assert_memory_equal(table + row * DIM, t0 + row * DIM, DIM * sizeof(float));
      assert_true(acc[row] == a0[row]);
      continue;
    }
    /* by hand: g = 2 grad + 0.01 row; acc += mean(g^2); row -= 0.1 g / (sqrt(acc) + eps) */
    double g[DIM], ss = 0.0, want[DIM];
    for (int j = 0; j < DIM; j++) {
      g[j] = 2.0 * grads[k * DIM + j] + (double)0.01f * t0[row * DIM + j];
      ss += g[j] * g[j];
    }
    double a = a0[row] + ss / DIM;
    for (int j = 0; j < DIM; j++) want[j] = t0[row * DIM + j] - (double)0.1f * g[j] / (sqrt(a) + (double)1e-10f);
    double wa = a;
    expect_close("adagrad acc", acc + row, &wa, 1, 0, MOMENT_RTOL);
    expect_close("adagrad row", table + row * DIM, want, DIM, PARAM_TOL, 1e-6);
  }
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adam_dense_two_steps),
      cmocka_unit_test(test_adam_rows_lazy),
      cmocka_unit_test(test_adam_rows_bias_table),
      cmocka_unit_test(test_adagrad_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
