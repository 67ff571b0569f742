/* The CPU backend's two kernel sets (baseline SSE2 and AVX2, picked at run
 * time) give the same bits for GRU steps, dropout and Adam: a run's results
 * do not depend on which processor of a cluster it ran on. Skipped where
 * the processor or the build has no AVX2 set. */
#include "backend/cpu/cpu_ops.h"
#include "test_backend_cpu_util.h"

typedef struct {
  float *out[8];
  size_t bytes[8];
  int n;
} results;

static void keep(tb_ctx *t, results *res, const float *x, int64_t n) {
  float *copy = tb_floats(t, n);
  memcpy(copy, x, (size_t)n * sizeof(float));
  res->out[res->n] = copy;
  res->bytes[res->n++] = (size_t)n * sizeof(float);
}

/* Runs each kernel-backed op with kernel set `k` on fixed inputs. */
static void run_ops(tb_ctx *t, const dt_cpu_kernels *k, results *res) {
  dt_backend *be = t->be;
  dt_cpu_use_kernels(be, k);
  tb_rng r = tb_seed(61);
  enum { A = 9, H = 37, ROWS = 7, COLS = 150, N = 1001 }; /* odd sizes: vector tails */
  float *xg = tb_floats(t, A * 3 * H), *hg = tb_floats(t, A * 3 * H), *hp = tb_floats(t, A * H);
  float *ho = tb_floats(t, A * H), *cache = tb_floats(t, A * 4 * H), *dh = tb_floats(t, A * H);
  float *dxg = tb_floats(t, A * 3 * H), *dhg = tb_floats(t, A * 3 * H), *dprev = tb_floats(t, A * H);
  tb_fill(&r, xg, A * 3 * H, -4, 4);
  tb_fill(&r, hg, A * 3 * H, -4, 4);
  tb_fill(&r, hp, A * H, -1, 1);
  tb_fill(&r, dh, A * H, -1, 1);
  for (int with_state = 0; with_state < 2; with_state++) {
    const float *h_prev = with_state ? hp : NULL;
    TB_OK(be->gru_step_fwd(be, xg, hg, h_prev, ho, cache, A, H));
    memset(dprev, 0, A * H * sizeof(float));
    TB_OK(be->gru_step_bwd(be, dh, h_prev, cache, dxg, dhg, with_state ? dprev : NULL, A, H));
    keep(t, res, ho, A * H);
    keep(t, res, dxg, A * 3 * H);
    keep(t, res, dhg, A * 3 * H);
  }
  int64_t *keys = tb_alloc(t, ROWS * sizeof(int64_t));
  for (int i = 0; i < ROWS; i++) keys[i] = ((int64_t)i << 35) + 17 * i;
  dt_dropout_key key = {77, 3, DT_SITE_CONTENT, keys};
  float *x = tb_floats(t, ROWS * COLS);
  tb_fill(&r, x, ROWS * COLS, -1, 1);
  TB_OK(be->relu_dropout_fwd(be, x, ROWS, COLS, 1, 0.3f, key));
  TB_OK(be->relu_dropout_bwd(be, x, NULL, ROWS, COLS, 0, 0.3f, key));
  keep(t, res, x, ROWS * COLS);
  float *p = tb_floats(t, N), *g = tb_floats(t, N), *m = tb_floats(t, N), *v = tb_floats(t, N);
  tb_fill(&r, p, N, -1, 1);
  tb_fill(&r, g, N, -1, 1);
  tb_fill(&r, m, N, -0.1f, 0.1f);
  tb_fill(&r, v, N, 0, 0.01f);
  dt_adam_hyper hy = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0.5f, 7};
  TB_OK(be->adam(be, p, g, m, v, N, hy));
  keep(t, res, p, N);
}

static void test_kernel_sets_agree(void **state) {
  (void)state;
#if defined(__x86_64__) && defined(__GNUC__)
  int have_avx2 = __builtin_cpu_supports("avx2");
#else
  int have_avx2 = 0;
#endif
  if (!dt_cpu_kernels_avx2.gru_fwd_rows || !have_avx2) {
    print_message("  no AVX2 kernel set on this build/processor\n");
    skip();
  }
  tb_ctx t;
  tb_open(&t, 2);
  results base = {0}, avx2 = {0};
  run_ops(&t, &dt_cpu_kernels_base, &base);
  run_ops(&t, &dt_cpu_kernels_avx2, &avx2);
  assert_int_equal(base.n, avx2.n);
  for (int i = 0; i < base.n; i++) {
    if (memcmp(base.out[i], avx2.out[i], base.bytes[i]) != 0) fail_msg("result %d differs between sse2 and avx2", i);
  }
  print_message("  %d results bit-identical between the baseline and AVX2 kernels\n", base.n);
  /* the backend picked the widest set by itself */
  dt_backend *be = NULL;
  TB_OK(dt_backend_cpu_create(1, &be));
  assert_ptr_equal(dt_cpu(be)->kern, &dt_cpu_kernels_avx2);
  be->destroy(be);
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_kernel_sets_agree)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
