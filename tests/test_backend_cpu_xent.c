/* The losses of issue 13 on the CPU backend: binary cross-entropy, and
 * softmax cross-entropy with its columns in blocks (running max/sum per row,
 * the loss, each block's gradient), against double-precision references
 * and central finite differences (test_backend_cpu_util.h); blocks in any
 * order, column slices of a wider matrix (ld > cols), in-place gradients,
 * targets given by the caller, and rows with extreme values (|s| up to 1e4,
 * -inf entries, a block that is -inf throughout). */
#include "dtrain/op_math.h"
#include "test_backend_cpu_util.h"

static double softplus_ref(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* ---------------------------------------------------------------- bce */

typedef struct {
  int n, c;
  double inv_count;
} bce_ctx;

static double bce_objective(const double *s, const void *vctx) {
  const bce_ctx *c = vctx;
  double l = 0.0;
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->c; j++) l += softplus_ref(j == 0 ? -s[i * c->c] : s[i * c->c + j]);
  return c->inv_count * l;
}

static void test_bce(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(500);
  enum { N = 6, C = 3 };
  float *s = tb_floats(&t, N * C), *ds = tb_floats(&t, N * C);
  tb_fill(&r, s, N * C, -4, 4);
  s[0] = 60.0f;  /* a confident positive: loss ~0, finite */
  s[3] = -60.0f; /* a hopeless positive: loss ~60 */
  s[4] = 80.0f;  /* a negative scored far too high */
  const float inv = 1.0f / N;
  double p[N * C], g[N * C], loss = -1.0;
  tb_to_double(p, s, N * C);
  bce_ctx ctx = {N, C, inv};
  TB_OK(t.be->bce(t.be, s, N, C, inv, ds, &loss));
  const double want = bce_objective(p, &ctx) / (double)inv;
  TB_EXPECT_ERR("bce loss sum", fabs(loss - want) / want, 1e-6);
  tb_fd_gradient(bce_objective, &ctx, p, N * C, TB_FD_H, g);
  TB_EXPECT_ERR("bce dscores", tb_rel_err(ds, g, N * C, 1e-6), TB_TOL_GRAD);
  /* in place (dscores = scores), and one column (positives only) */
  float *s2 = tb_floats(&t, N * C);
  memcpy(s2, s, sizeof(float) * N * C);
  TB_OK(t.be->bce(t.be, s2, N, C, inv, s2, &loss));
  assert_memory_equal(s2, ds, sizeof(float) * N * C);
  TB_OK(t.be->bce(t.be, s, N * C, 1, 1.0f, ds, &loss));
  double want1 = 0.0;
  for (int i = 0; i < N * C; i++) want1 += softplus_ref(-p[i]);
  TB_EXPECT_ERR("bce loss sum, c = 1", fabs(loss - want1) / want1, 1e-6);
  TB_OK(t.be->bce(t.be, s, 0, C, inv, ds, &loss));
  assert_true(loss == 0.0);
  tb_close(&t);
}

/* ---------------------------------------------------------------- softmax xent */

typedef struct {
  int n, cols;
  const int32_t *target; /* global columns, < 0: the given score tgt_given */
  const double *tgt_given;
  double scale;
} xent_ctx;

/* scale * sum_i (lse_i - s_target) over the full matrix [n, cols] */
static double xent_objective(const double *s, const void *vctx) {
  const xent_ctx *c = vctx;
  double l = 0.0;
  for (int i = 0; i < c->n; i++) {
    double m = -INFINITY, sum = 0.0;
    for (int j = 0; j < c->cols; j++) m = s[i * c->cols + j] > m ? s[i * c->cols + j] : m;
    for (int j = 0; j < c->cols; j++) sum += exp(s[i * c->cols + j] - m);
    const int tg = c->target ? c->target[i] : 0;
    l += m + log(sum) - (tg >= 0 ? s[i * c->cols + tg] : c->tgt_given[i]);
  }
  return c->scale * l;
}

/* Scores [N, COLS] in three column blocks processed out of order, as slices
 * of the full matrix (ld = COLS) or as separate packed blocks. */
enum { XN = 8, XCOLS = 50 };
static const int block_start[3] = {0, 7, 27}, block_cols[3] = {7, 20, 23}, block_order[3] = {1, 2, 0};

static void xent_case(tb_ctx *t, const float *s, const int32_t *target, const float *tgt_given, int packed,
                      int in_place, const char *name) {
  const float scale = 1.0f / XN;
  float *run_max = tb_floats(t, XN), *run_sum = tb_floats(t, XN), *tgt = tb_floats(t, XN), *lse = tb_floats(t, XN);
  float *grad = tb_floats(t, XN * XCOLS);
  for (int i = 0; i < XN; i++) tgt[i] = tgt_given ? tgt_given[i] : NAN;
  float *blocks[3];
  for (int b = 0; b < 3; b++) {
    if (packed) { /* a block of its own, [XN, cols] */
      blocks[b] = tb_floats(t, XN * block_cols[b]);
      for (int i = 0; i < XN; i++)
        memcpy(blocks[b] + i * block_cols[b], s + i * XCOLS + block_start[b], sizeof(float) * block_cols[b]);
    } else {
      blocks[b] = (float *)s + block_start[b];
    }
  }
  for (int q = 0; q < 3; q++) {
    const int b = block_order[q], ld = packed ? block_cols[b] : XCOLS;
    TB_OK(t->be->xent_stats(t->be, blocks[b], XN, block_cols[b], ld, block_start[b], target, q == 0, run_max, run_sum,
                            tgt));
  }
  double loss = -1.0;
  TB_OK(t->be->xent_loss(t->be, run_max, run_sum, tgt, XN, lse, &loss));
  for (int q = 0; q < 3; q++) {
    const int b = block_order[q], ld = packed ? block_cols[b] : XCOLS;
    float *out = in_place && packed ? blocks[b] : grad + block_start[b];
    TB_OK(t->be->xent_grad(t->be, blocks[b], XN, block_cols[b], ld, block_start[b], target, lse, scale, out,
                           in_place && packed ? block_cols[b] : XCOLS));
    if (in_place && packed)
      for (int i = 0; i < XN; i++)
        memcpy(grad + i * XCOLS + block_start[b], blocks[b] + i * block_cols[b], sizeof(float) * block_cols[b]);
  }
  /* the references */
  double p[XN * XCOLS], g[XN * XCOLS], given[XN], wlse[XN];
  tb_to_double(p, s, XN * XCOLS);
  for (int i = 0; i < XN; i++) given[i] = tgt_given ? tgt_given[i] : 0.0;
  xent_ctx ctx = {XN, XCOLS, target, given, scale};
  for (int i = 0; i < XN; i++) {
    double m = -INFINITY, sum = 0.0;
    for (int j = 0; j < XCOLS; j++) m = p[i * XCOLS + j] > m ? p[i * XCOLS + j] : m;
    for (int j = 0; j < XCOLS; j++) sum += exp(p[i * XCOLS + j] - m);
    wlse[i] = m + log(sum);
  }
  char what[96];
  snprintf(what, sizeof what, "xent lse (%s)", name);
  TB_EXPECT_ERR(what, tb_rel_err(lse, wlse, XN, 1e-6), TB_TOL_FWD);
  const double want = xent_objective(p, &ctx) / (double)scale;
  snprintf(what, sizeof what, "xent loss sum (%s)", name);
  TB_EXPECT_ERR(what, fabs(loss - want) / fabs(want), 1e-6);
  /* finite differences only where the scores are finite */
  tb_fd_gradient(xent_objective, &ctx, p, XN * XCOLS, TB_FD_H, g);
  for (int i = 0; i < XN * XCOLS; i++)
    if (!isfinite(p[i])) g[i] = 0.0;
  snprintf(what, sizeof what, "xent dscores (%s)", name);
  TB_EXPECT_ERR(what, tb_rel_err(grad, g, XN * XCOLS, 1e-6), TB_TOL_GRAD);
}

static void test_softmax_xent(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(501);
  float *s = tb_floats(&t, XN * XCOLS);
  tb_fill(&r, s, XN * XCOLS, -3, 3);
  /* extreme rows: row 1 near +100 (e^s overflows float; two close
   * leaders), row 2 spans +-80, row 3 has -inf entries and a first block of
   * -inf throughout. (Near 1e4 a float lse is only good to ulp(1e4)/2 =
   * 5e-4, which moves the gradient by 5e-4 relative: see the one-block test
   * for that scale.) */
  for (int j = 0; j < XCOLS; j++) s[1 * XCOLS + j] += 100.0f;
  s[1 * XCOLS + 30] += 1.0f;
  s[2 * XCOLS + 3] = 80.0f;
  s[2 * XCOLS + 40] = -80.0f;
  for (int j = 0; j < 7; j++) s[3 * XCOLS + j] = -INFINITY;
  s[3 * XCOLS + 33] = -INFINITY;
  int32_t target[XN] = {0, 30, 40, 12, 49, 7, 26, 27};
  xent_case(&t, s, target, NULL, 0, 0, "column slices, targets by column");
  xent_case(&t, s, target, NULL, 1, 0, "packed blocks");
  xent_case(&t, s, target, NULL, 1, 1, "packed blocks, in place");
  /* target NULL: column 0; and targets the caller scores itself (-1) */
  s[3 * XCOLS] = 0.5f; /* row 3's column 0 is the target now: finite */
  xent_case(&t, s, NULL, NULL, 0, 0, "target NULL = column 0");
  int32_t given_tg[XN] = {-1, 30, -1, 12, -1, -1, 26, 27};
  float given[XN];
  for (int i = 0; i < XN; i++) given[i] = tb_uniform(&r, -2, 2);
  xent_case(&t, s, given_tg, given, 1, 0, "target scores given");
  tb_close(&t);
}

/* dt_softmax_xent (one block, column 0 the target) equals the three ops,
 * and sampled softmax's [positive, negatives] rows against the reference. */
static void test_softmax_xent_one_block(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(502);
  enum { N = 9, C = 5 };
  float *s = tb_floats(&t, N * C), *ds = tb_floats(&t, N * C);
  float *work = tb_floats(&t, 3 * N * C); /* the c = 1 call below has N * C rows */
  tb_fill(&r, s, N * C, -5, 5);
  s[2 * C + 1] = 1.0e4f; /* a negative far above the rest: lse = 1e4 exactly in float */
  double p[N * C], g[N * C], loss = -1.0;
  tb_to_double(p, s, N * C);
  const float scale = 0.25f;
  xent_ctx ctx = {N, C, NULL, NULL, scale};
  TB_OK(dt_softmax_xent(t.be, s, N, C, scale, ds, work, &loss));
  const double want = xent_objective(p, &ctx) / (double)scale;
  TB_EXPECT_ERR("dt_softmax_xent loss sum", fabs(loss - want) / want, 1e-6);
  tb_fd_gradient(xent_objective, &ctx, p, N * C, TB_FD_H, g);
  TB_EXPECT_ERR("dt_softmax_xent dscores", tb_rel_err(ds, g, N * C, 1e-6), TB_TOL_GRAD);
  /* in place */
  TB_OK(dt_softmax_xent(t.be, s, N, C, scale, s, work, &loss));
  assert_memory_equal(s, ds, sizeof(float) * N * C);
  /* c = 1: only the target, loss 0, gradient 0 */
  TB_OK(dt_softmax_xent(t.be, ds, N * C, 1, 1.0f, ds, work, &loss));
  assert_true(loss == 0.0);
  for (int i = 0; i < N * C; i++) assert_true(ds[i] == 0.0f);
  tb_close(&t);
}

/* The online merge itself: empty parts, -inf, and the order of parts. */
static void test_lse_merge(void **state) {
  (void)state;
  float m = -INFINITY, sum = 0.0f;
  dt_lse_merge(&m, &sum, -INFINITY, 0.0f); /* empty into empty */
  assert_true(m == -INFINITY && sum == 0.0f);
  dt_lse_merge(&m, &sum, 2.0f, 1.5f); /* into empty: taken as is */
  assert_true(m == 2.0f && sum == 1.5f);
  dt_lse_merge(&m, &sum, -INFINITY, 0.0f); /* empty into a running state */
  assert_true(m == 2.0f && sum == 1.5f);
  float m2 = 5.0f, s2 = 1.0f;
  dt_lse_merge(&m2, &s2, 2.0f, 1.5f); /* the other order */
  dt_lse_merge(&m, &sum, 5.0f, 1.0f);
  const double want = log(1.5 * exp(2.0) + exp(5.0));
  print_message("  lse merge: %.9g and %.9g, want %.9g\n", (double)dt_lse(m, sum), (double)dt_lse(m2, s2), want);
  assert_true(fabs(dt_lse(m, sum) - want) < 1e-6 * want && fabs(dt_lse(m2, s2) - want) < 1e-6 * want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bce),
      cmocka_unit_test(test_softmax_xent),
      cmocka_unit_test(test_softmax_xent_one_block),
      cmocka_unit_test(test_lse_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
