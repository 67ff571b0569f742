/* Dropout masks of the CPU backend: the keep rate, what the mask is keyed
 * by (same key = same mask; step, site and row key each change it; the row
 * position does not), agreement with dt_dropout_keep element by element,
 * and the backward redrawing the forward's mask. */
#include "dtrain/op_math.h"
#include "test_backend_cpu_util.h"

enum { ROWS = 512, COLS = 2048, N = ROWS * COLS };

typedef struct {
  tb_ctx t;
  int64_t *keys;
  float *x;
} fixture;

static void setup_keys(fixture *f) {
  tb_open(&f->t, 2);
  f->keys = tb_alloc(&f->t, ROWS * sizeof(int64_t));
  /* global example indices, some above 2^32 so both key halves matter */
  for (int i = 0; i < ROWS; i++) f->keys[i] = (int64_t)i * 7919 + ((int64_t)(i & 3) << 32);
  f->x = tb_floats(&f->t, N);
}

static void fill_ones(float *x) {
  for (int64_t i = 0; i < N; i++) x[i] = 1.0f;
}

/* mask of one forward pass over ones: 1 = kept */
static void mask_of(fixture *f, dt_dropout_key key, float p, unsigned char *mask) {
  fill_ones(f->x);
  TB_OK(f->t.be->relu_dropout_fwd(f->t.be, f->x, ROWS, COLS, 0, p, key));
  for (int64_t i = 0; i < N; i++) mask[i] = f->x[i] != 0.0f;
}

static double fraction_differing(const unsigned char *a, const unsigned char *b) {
  int64_t d = 0;
  for (int64_t i = 0; i < N; i++) d += a[i] != b[i];
  return (double)d / N;
}

static void test_keep_rate_and_scale(void **state) {
  (void)state;
  fixture f;
  setup_keys(&f);
  const float ps[3] = {0.1f, 0.2f, 0.5f};
  for (int q = 0; q < 3; q++) {
    float p = ps[q];
    dt_dropout_key key = {42, 7, DT_SITE_HEAD, f.keys};
    fill_ones(f.x);
    TB_OK(f.t.be->relu_dropout_fwd(f.t.be, f.x, ROWS, COLS, 0, p, key));
    int64_t kept = 0;
    const float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < N; i++) {
      if (f.x[i] != 0.0f) {
        kept++;
        if (f.x[i] != scale) fail_msg("kept value %g != 1/(1-p) = %g", (double)f.x[i], (double)scale);
      }
    }
    /* binomial: 5 standard deviations of the keep rate over 2^20 elements */
    double rate = (double)kept / N, tol = 5.0 * sqrt(p * (1.0 - p) / N);
    print_message("  p=%.1f keep rate %.5f, expected %.5f +- %.5f\n", (double)p, rate, 1.0 - p, tol);
    assert_true(fabs(rate - (1.0 - p)) <= tol);
  }
  tb_close(&f.t);
}

static void test_mask_is_keyed(void **state) {
  (void)state;
  fixture f;
  setup_keys(&f);
  const float p = 0.1f;
  unsigned char *base = malloc(N), *other = malloc(N);
  assert_non_null(base);
  assert_non_null(other);
  dt_dropout_key key = {1234, 5, DT_SITE_STATIC, f.keys};
  mask_of(&f, key, p, base);

  /* same key: same mask, and element by element what dt_dropout_keep says */
  mask_of(&f, key, p, other);
  assert_memory_equal(base, other, N);
  int64_t disagree = 0;
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c < COLS; c++)
      disagree += base[(int64_t)r * COLS + c] != dt_dropout_keep(key.seed, key.step, key.site, f.keys[r], c, p);
  assert_int_equal(disagree, 0);

  /* a width that is not a multiple of the 64-column draw blocks: the tail
   * block's columns too are exactly dt_dropout_keep's */
  {
    enum { R = 3, C = 150 };
    float *x = tb_floats(&f.t, R * C);
    for (int i = 0; i < R * C; i++) x[i] = 1.0f;
    TB_OK(f.t.be->relu_dropout_fwd(f.t.be, x, R, C, 0, p, key));
    for (int r = 0; r < R; r++)
      for (int c = 0; c < C; c++)
        assert_int_equal(x[r * C + c] != 0.0f, dt_dropout_keep(key.seed, key.step, key.site, f.keys[r], c, p));
  }

  /* independent masks differ in about 2p(1-p) of the elements */
  const double expect = 2.0 * p * (1.0 - p), tol = 0.01;
  dt_dropout_key changed[4] = {key, key, key, key};
  const char *what[4] = {"step", "site", "seed", "row key (high half)"};
  changed[0].step++;
  changed[1].site = DT_SITE_GRU;
  changed[2].seed++;
  int64_t *keys_hi = tb_alloc(&f.t, ROWS * sizeof(int64_t));
  for (int i = 0; i < ROWS; i++) keys_hi[i] = f.keys[i] + ((int64_t)1 << 40);
  changed[3].row_keys = keys_hi;
  for (int q = 0; q < 4; q++) {
    mask_of(&f, changed[q], p, other);
    double d = fraction_differing(base, other);
    print_message("  another %-20s changes %.4f of the mask (expected %.4f)\n", what[q], d, expect);
    assert_true(fabs(d - expect) <= tol);
  }

  /* the mask follows the row key, not the row's position (rank-count free) */
  int64_t *keys_rev = tb_alloc(&f.t, ROWS * sizeof(int64_t));
  for (int i = 0; i < ROWS; i++) keys_rev[i] = f.keys[ROWS - 1 - i];
  dt_dropout_key rev = key;
  rev.row_keys = keys_rev;
  mask_of(&f, rev, p, other);
  for (int i = 0; i < ROWS; i++)
    assert_memory_equal(other + (int64_t)i * COLS, base + (int64_t)(ROWS - 1 - i) * COLS, COLS);

  /* neighbouring columns (which share a Philox call) are independent */
  int64_t both = 0, pairs = 0;
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c + 1 < COLS; c++, pairs++) both += base[(int64_t)r * COLS + c] && base[(int64_t)r * COLS + c + 1];
  double joint = (double)both / pairs, want = (1.0 - p) * (1.0 - p);
  print_message("  P(keep c and c+1) %.4f, expected %.4f\n", joint, want);
  assert_true(fabs(joint - want) <= 0.003);
  free(base);
  free(other);
  tb_close(&f.t);
}

static void test_backward_matches_forward(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(31);
  enum { R = 64, C = 37, M = R * C };
  int64_t *keys = tb_alloc(&t, R * sizeof(int64_t));
  for (int i = 0; i < R; i++) keys[i] = 1000 + i;
  dt_dropout_key key = {99, 3, DT_SITE_GRU, keys};
  const float p = 0.25f, scale = 1.0f / (1.0f - p);
  float *y = tb_floats(&t, M), *dy = tb_floats(&t, M), *ones = tb_floats(&t, M);

  /* without ReLU the backward applies the same mask and scale */
  for (int i = 0; i < M; i++) ones[i] = dy[i] = 1.0f;
  TB_OK(t.be->relu_dropout_fwd(t.be, ones, R, C, 0, p, key));
  TB_OK(t.be->relu_dropout_bwd(t.be, dy, NULL, R, C, 0, p, key));
  assert_memory_equal(dy, ones, M * sizeof(float));

  /* with ReLU: dy passes exactly where y > 0, scaled by 1/(1-p) */
  tb_fill_away0(&r, y, M, 0.01f, 1.0f);
  TB_OK(t.be->relu_dropout_fwd(t.be, y, R, C, 1, p, key));
  tb_fill(&r, dy, M, -1, 1);
  float *dy0 = tb_floats(&t, M);
  memcpy(dy0, dy, M * sizeof(float));
  TB_OK(t.be->relu_dropout_bwd(t.be, dy, y, R, C, 1, p, key));
  int64_t passed = 0;
  for (int i = 0; i < M; i++) {
    float want = y[i] > 0.0f ? dy0[i] * scale : 0.0f;
    assert_true(dy[i] == want);
    passed += y[i] > 0.0f;
  }
  /* about half the inputs are positive and 3/4 of those kept */
  assert_true(passed > M / 4 && passed < M / 2);
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keep_rate_and_scale),
      cmocka_unit_test(test_mask_is_keyed),
      cmocka_unit_test(test_backward_matches_forward),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
