/* The ops whose per-element math include/dtrain/op_math.h holds once give
 * the same bits on the CPU backend and on the CUDA backend's kernels:
 * dense Adam (bias corrections, decayed gradient, update), lazy Adam rows
 * (per-row step counts and bias corrections), row-wise Adagrad (the
 * accumulator, the per-row step, the update), the gate's softmax forward and
 * backward, and the gate regularisers' gradient (coefficients, entropy
 * term). Before op_math.h held them once, row-wise Adagrad rounded
 * lr / (sqrt(a) + eps) * g on the CPU but lr * g / (sqrt(a) + eps) in the
 * kernel, and the regularisers' coefficients were float on the CPU and
 * double on the GPU.
 *
 * Inputs that a reduction sums are chosen so that every partial sum is
 * exact (multiples of 1/16, a power-of-two dim), so the summation order of
 * the two backends cannot matter and any difference is the per-element
 * math. The entropy sum (double, added in different orders) is compared to
 * 1e-12 relative.
 *
 * Bits are required under the CUDA emulator (-DDTRAIN_CUDA_EMU=ON: the
 * kernels compiled by the host compiler, no FMA contraction); on a real GPU
 * nvcc contracts a*b+c into FMA, so there the bound is 2e-6 relative.
 * Skipped (77) where no CUDA backend can be created.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/backend.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

static dt_backend *g_cpu, *g_gpu;

#ifdef DTRAIN_CUDA_EMU
static const int g_exact = 1;
#else
static const int g_exact = 0;
#endif

#define OK(expr)                                                              \
  do {                                                                        \
    int ok_rc_ = (expr);                                                      \
    if (ok_rc_ != 0) {                                                        \
      print_error("%s failed (%d): %s\n", #expr, ok_rc_, dt_error_message()); \
      fail();                                                                 \
    }                                                                         \
  } while (0)

/* Uniform values in [lo, hi) from (stream, i). */
static void fill(float *x, size_t n, uint32_t stream, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    dt_rand4 r = dt_philox(7, DT_RNG_TEST, stream, (uint32_t)i, 0, 0);
    x[i] = lo + (hi - lo) * dt_u01(r.v[0]);
  }
}

/* Multiples of 1/16 in [-k/16, k/16]: their squares and sums are exact. */
static void fill_sixteenths(float *x, size_t n, uint32_t stream, int k) {
  for (size_t i = 0; i < n; i++) {
    dt_rand4 r = dt_philox(7, DT_RNG_TEST, stream, (uint32_t)i, 1, 0);
    x[i] = (float)((int)(r.v[0] % (uint32_t)(2 * k + 1)) - k) / 16.0f;
  }
}

/* A host array on both backends. */
typedef struct {
  void *cpu, *gpu;
  size_t bytes;
} both;

static both both_new(const void *host, size_t bytes) {
  both b = {g_cpu->alloc(g_cpu, bytes), g_gpu->alloc(g_gpu, bytes), bytes};
  assert_non_null(b.cpu);
  assert_non_null(b.gpu);
  OK(g_cpu->upload(g_cpu, b.cpu, host, bytes));
  OK(g_gpu->upload(g_gpu, b.gpu, host, bytes));
  return b;
}

static void both_free(both *b) {
  g_cpu->free(g_cpu, b->cpu);
  g_gpu->free(g_gpu, b->gpu);
}

/* The two backends' copies of n floats agree (bits, or 2e-6 relative on a GPU). */
static void expect_same(const char *what, const both *b, size_t n) {
  float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
  OK(g_cpu->download(g_cpu, x, b->cpu, n * sizeof(float)));
  OK(g_gpu->download(g_gpu, y, b->gpu, n * sizeof(float)));
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    int same =
        g_exact ? memcmp(&x[i], &y[i], sizeof(float)) == 0 : fabsf(x[i] - y[i]) <= 2e-6f * fmaxf(fabsf(x[i]), 1e-30f);
    if (!same && bad++ == 0) first = i;
  }
  if (bad) {
    uint32_t bx, by;
    memcpy(&bx, &x[first], 4);
    memcpy(&by, &y[first], 4);
    print_error("%s: %zu of %zu elements differ; first [%zu]: cpu %.9g (0x%08x) gpu %.9g (0x%08x)\n", what, bad, n,
                first, (double)x[first], bx, (double)y[first], by);
    fail();
  }
  printf("  %s: %zu elements %s\n", what, n, g_exact ? "bit-identical" : "within 2e-6");
  free(x);
  free(y);
}

static void test_adam_dense(void **state) {
  (void)state;
  const size_t n = 5000;
  float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float)),
        *v = malloc(n * sizeof(float));
  fill(p, n, 1, -1, 1);
  fill(g, n, 2, -0.5f, 0.5f);
  fill(m, n, 3, -0.1f, 0.1f);
  fill(v, n, 4, 0, 0.01f);
  both bp = both_new(p, n * 4), bg = both_new(g, n * 4), bm = both_new(m, n * 4), bv = both_new(v, n * 4);
  for (int64_t t = 1; t <= 3; t++) { /* bias corrections of several steps */
    dt_adam_hyper h = {1e-2f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0.75f, t * 97};
    OK(g_cpu->adam(g_cpu, bp.cpu, bg.cpu, bm.cpu, bv.cpu, (int64_t)n, h));
    OK(g_gpu->adam(g_gpu, bp.gpu, bg.gpu, bm.gpu, bv.gpu, (int64_t)n, h));
  }
  expect_same("adam param", &bp, n);
  expect_same("adam m", &bm, n);
  expect_same("adam v", &bv, n);
  both_free(&bp), both_free(&bg), both_free(&bm), both_free(&bv);
  free(p), free(g), free(m), free(v);
}

static void test_adam_rows(void **state) {
  (void)state;
  const int64_t rows = 300, m = 120;
  const int dim = 24;
  float *tab = malloc((size_t)(rows * dim) * sizeof(float)), *mt = calloc((size_t)(rows * dim), sizeof(float)),
        *vt = calloc((size_t)(rows * dim), sizeof(float)), *gr = malloc((size_t)(m * dim) * sizeof(float));
  int64_t *step = malloc((size_t)rows * sizeof(int64_t));
  int32_t *ids = malloc((size_t)m * sizeof(int32_t));
  fill(tab, (size_t)(rows * dim), 5, -0.1f, 0.1f);
  fill(gr, (size_t)(m * dim), 6, -1, 1);
  for (int64_t r = 0; r < rows; r++) step[r] = r % 7 == 0 ? 5000 + r : r; /* early and late bias corrections */
  for (int64_t k = 0; k < m; k++) ids[k] = (int32_t)((k * 37) % rows);    /* unique */
  both bt = both_new(tab, (size_t)(rows * dim) * 4), bm = both_new(mt, (size_t)(rows * dim) * 4),
       bv = both_new(vt, (size_t)(rows * dim) * 4), bs = both_new(step, (size_t)rows * 8),
       bi = both_new(ids, (size_t)m * 4), bg = both_new(gr, (size_t)(m * dim) * 4);
  dt_adam_hyper h = {1e-2f, 0.9f, 0.999f, 1e-8f, 1e-3f, 0.5f, 0};
  for (int rep = 0; rep < 2; rep++) {
    OK(g_cpu->adam_rows(g_cpu, bt.cpu, bm.cpu, bv.cpu, bs.cpu, bi.cpu, bg.cpu, m, dim, h));
    OK(g_gpu->adam_rows(g_gpu, bt.gpu, bm.gpu, bv.gpu, bs.gpu, bi.gpu, bg.gpu, m, dim, h));
  }
  expect_same("lazy adam rows", &bt, (size_t)(rows * dim));
  expect_same("lazy adam m", &bm, (size_t)(rows * dim));
  expect_same("lazy adam v", &bv, (size_t)(rows * dim));
  both *all[] = {&bt, &bm, &bv, &bs, &bi, &bg};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) both_free(all[i]);
  free(tab), free(mt), free(vt), free(gr), free(step), free(ids);
}

static void test_adagrad_rows(void **state) {
  (void)state;
  const int64_t rows = 200, m = 90;
  const int dim = 32; /* a power of two: the mean of exact squares stays exact */
  float *tab = malloc((size_t)(rows * dim) * sizeof(float)), *acc = malloc((size_t)rows * sizeof(float)),
        *gr = malloc((size_t)(m * dim) * sizeof(float));
  int32_t *ids = malloc((size_t)m * sizeof(int32_t));
  fill(tab, (size_t)(rows * dim), 7, -0.1f, 0.1f);
  fill_sixteenths(acc, (size_t)rows, 8, 32);
  for (int64_t r = 0; r < rows; r++) acc[r] = fabsf(acc[r]);
  fill_sixteenths(gr, (size_t)(m * dim), 9, 40);
  for (int64_t k = 0; k < m; k++) ids[k] = (int32_t)((k * 53) % rows);
  both bt = both_new(tab, (size_t)(rows * dim) * 4), ba = both_new(acc, (size_t)rows * 4),
       bi = both_new(ids, (size_t)m * 4), bg = both_new(gr, (size_t)(m * dim) * 4);
  /* no weight decay (its products with the weights are not exact, and the
   * two backends sum the squares in different orders); grad_scale 0.5 is */
  dt_adam_hyper h = {3e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.5f, 0};
  OK(g_cpu->adagrad_rows(g_cpu, bt.cpu, ba.cpu, bi.cpu, bg.cpu, m, dim, h));
  OK(g_gpu->adagrad_rows(g_gpu, bt.gpu, ba.gpu, bi.gpu, bg.gpu, m, dim, h));
  expect_same("adagrad accumulators", &ba, (size_t)rows);
  expect_same("adagrad rows", &bt, (size_t)(rows * dim));
  both_free(&bt), both_free(&ba), both_free(&bi), both_free(&bg);
  free(tab), free(acc), free(gr), free(ids);
}

static void test_gate(void **state) {
  (void)state;
  const int64_t n = 777, n_global = 1500;
  float *logits = malloc((size_t)(n * 3) * sizeof(float)), *da = malloc((size_t)(n * 3) * sizeof(float));
  fill(logits, (size_t)(n * 3), 10, -4, 4);
  fill(da, (size_t)(n * 3), 11, -1, 1);
  both bl = both_new(logits, (size_t)(n * 3) * 4), ba = both_new(logits, (size_t)(n * 3) * 4),
       bda = both_new(da, (size_t)(n * 3) * 4), bdl = both_new(da, (size_t)(n * 3) * 4);
  OK(g_cpu->softmax3_fwd(g_cpu, bl.cpu, ba.cpu, n));
  OK(g_gpu->softmax3_fwd(g_gpu, bl.gpu, ba.gpu, n));
  expect_same("softmax3 forward", &ba, (size_t)(n * 3));
  OK(g_cpu->softmax3_bwd(g_cpu, ba.cpu, bda.cpu, bdl.cpu, n));
  OK(g_gpu->softmax3_bwd(g_gpu, ba.gpu, bda.gpu, bdl.gpu, n));
  expect_same("softmax3 backward", &bdl, (size_t)(n * 3));
  /* the regularisers' gradient, accumulated into da; a global mean far
   * from uniform so the balance term counts */
  const float mean[3] = {0.61f, 0.27f, 0.12f};
  double ea = 0, eb = 0;
  OK(g_cpu->gate_reg(g_cpu, ba.cpu, n, 0.05f, 0.01f, mean, n_global, bda.cpu, &ea));
  OK(g_gpu->gate_reg(g_gpu, ba.gpu, n, 0.05f, 0.01f, mean, n_global, bda.gpu, &eb));
  expect_same("gate regulariser gradient", &bda, (size_t)(n * 3));
  printf("  gate negated-entropy sum: cpu %.17g gpu %.17g\n", ea, eb);
  assert_true(fabs(ea - eb) <= 1e-12 * fabs(ea));
  /* the balance coefficients alone (no entropy term, a zeroed gradient):
   * float arithmetic rounds 2 lambda (mean - 1/3) / N differently from
   * double arithmetic rounded once, for most means */
  float *zero = calloc((size_t)(n * 3), sizeof(float));
  both bz = both_new(zero, (size_t)(n * 3) * 4);
  for (int trial = 0; trial < 8; trial++) {
    const float m3[3] = {0.05f + 0.11f * (float)trial, 0.3f, 0.65f - 0.11f * (float)trial};
    OK(g_cpu->gate_reg(g_cpu, ba.cpu, n, 0.0f, 0.01f + 0.003f * (float)trial, m3, n_global, bz.cpu, &ea));
    OK(g_gpu->gate_reg(g_gpu, ba.gpu, n, 0.0f, 0.01f + 0.003f * (float)trial, m3, n_global, bz.gpu, &eb));
  }
  expect_same("gate balance coefficients (8 means, summed)", &bz, (size_t)(n * 3));
  both_free(&bz);
  free(zero);
  both_free(&bl), both_free(&ba), both_free(&bda), both_free(&bdl);
  free(logits), free(da);
}

int main(void) {
  dt_backend *probe = NULL;
  if (dt_backend_cuda_create(0, 0, &probe) != 0) {
    printf("SKIP: no CUDA backend here (%s)\n", dt_error_message());
    return 77;
  }
  g_gpu = probe;
  if (dt_backend_cpu_create(1, &g_cpu) != 0) {
    printf("cannot create the CPU backend: %s\n", dt_error_message());
    return 1;
  }
  printf("CPU vs %s CUDA backend: %s\n", g_exact ? "emulated" : "real", g_exact ? "identical bits required" : "2e-6");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adam_dense),
      cmocka_unit_test(test_adam_rows),
      cmocka_unit_test(test_adagrad_rows),
      cmocka_unit_test(test_gate),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  g_gpu->destroy(g_gpu);
  g_cpu->destroy(g_cpu);
  return failed ? 1 : 0;
}
