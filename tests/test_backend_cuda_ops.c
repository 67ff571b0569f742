/* Every op of the CUDA backend against the CPU backend (the reference), on
 * fresh random inputs with the outputs poisoned (NaN) first, so an element
 * the GPU never writes fails the comparison.
 *
 * Tolerance: |gpu - cpu| <= tol * max(|cpu|, rms(cpu)) per element, with
 * tol = 1e-5 for fp32 and 5e-3 for the TF32 gemm (the rms floor keeps sums
 * that cancel to near zero from failing on rounding alone). Ids, counts,
 * masks and top-k columns must match exactly. Reductions must also give the
 * same bits when run twice (determinism).
 *
 * Skipped (exit 77) when no CUDA device is usable. The random inputs come
 * from DTRAIN_TEST_SEED when set, else from the clock; the seed is printed
 * so that a failure can be replayed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dtrain/backend.h"
#include "dtrain/backend_cuda.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

#define TOL_FP32 1e-5
#define TOL_TF32 5e-3

static dt_backend *g_cpu, *g_gpu, *g_tf32;
static uint64_t g_seed;
static uint32_t g_draw; /* each fill draws from a fresh Philox counter */

#define OK(expr)                                                              \
  do {                                                                        \
    int ok_rc_ = (expr);                                                      \
    if (ok_rc_ != 0) {                                                        \
      print_error("%s failed (%d): %s\n", #expr, ok_rc_, dt_error_message()); \
      fail();                                                                 \
    }                                                                         \
  } while (0)

/* ---- random inputs ---- */

static dt_rand4 draw4(uint64_t i) {
  return dt_philox(g_seed, DT_RNG_TEST, g_draw, (uint32_t)i, (uint32_t)(i >> 32), 0);
}

static void fill_uniform(float *x, size_t n, float lo, float hi) {
  g_draw++;
  for (size_t i = 0; i < n; i += 4) {
    dt_rand4 r = draw4(i / 4);
    for (size_t j = 0; j < 4 && i + j < n; j++) x[i + j] = lo + (hi - lo) * dt_u01(r.v[j]);
  }
}

/* Integers in [0, n). */
static void fill_ids(int32_t *x, size_t count, int64_t n) {
  g_draw++;
  for (size_t i = 0; i < count; i++) {
    dt_rand4 r = draw4(i);
    x[i] = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)n);
  }
}

static int64_t rand_below(int64_t n) {
  g_draw++;
  dt_rand4 r = draw4(0);
  return (int64_t)dt_below64(r.v[0], r.v[1], (uint64_t)n);
}

/* `count` distinct integers from [0, n), in random order. */
static void fill_unique_ids(int32_t *x, size_t count, int64_t n) {
  int32_t *all = malloc((size_t)n * sizeof *all);
  for (int64_t i = 0; i < n; i++) all[i] = (int32_t)i;
  for (size_t i = 0; i < count; i++) {
    int64_t j = (int64_t)i + rand_below(n - (int64_t)i);
    int32_t t = all[i];
    all[i] = all[j];
    all[j] = t;
    x[i] = all[i];
  }
  free(all);
}

static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static float *fnew(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

/* ---- one buffer on two backends ---- */

typedef struct {
  void *a, *b; /* on the reference (CPU) and the tested backend */
  dt_backend *ba, *bb;
  size_t bytes;
} pair;

static pair pair_on(dt_backend *ba, dt_backend *bb, const void *host, size_t bytes) {
  pair p = {NULL, NULL, ba, bb, bytes};
  p.a = ba->alloc(ba, bytes ? bytes : 1);
  p.b = bb->alloc(bb, bytes ? bytes : 1);
  if (!p.a || !p.b) {
    print_error("alloc of %zu bytes failed: %s\n", bytes, dt_error_message());
    fail();
  }
  if (host && bytes) {
    OK(ba->upload(ba, p.a, host, bytes));
    OK(bb->upload(bb, p.b, host, bytes));
  }
  return p;
}

static pair pair_new(const void *host, size_t bytes) { return pair_on(g_cpu, g_gpu, host, bytes); }

static void pair_read(pair p, void *host_a, void *host_b) {
  OK(p.ba->download(p.ba, host_a, p.a, p.bytes));
  OK(p.bb->download(p.bb, host_b, p.b, p.bytes));
}

static void pair_free(pair *p) {
  p->ba->free(p->ba, p->a);
  p->bb->free(p->bb, p->b);
  p->a = p->b = NULL;
}

/* ---- comparisons ---- */

/* |got - ref| <= tol * scale[i] for every element, where scale[i] is the
 * magnitude the error of element i is measured against. NaN in the
 * reference (a poisoned element the op must not touch) must be NaN in
 * `got` too; a NaN in `got` elsewhere (never written) fails. */
static int within(const char *what, const float *ref, const float *got, const double *scale, size_t n, double tol) {
  size_t bad = 0, worst_i = 0;
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double err;
    if (!isfinite(ref[i])) {
      err = (isnan(ref[i]) ? isnan(got[i]) : ref[i] == got[i]) ? 0.0 : INFINITY;
    } else {
      const double diff = fabs((double)got[i] - (double)ref[i]);
      err = scale[i] > 0.0 ? diff / scale[i] : (diff == 0.0 ? 0.0 : INFINITY);
      if (isnan(err)) err = INFINITY;
    }
    if (!(err <= tol)) bad++;
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  printf("  %-34s n=%-8zu worst rel err %.2e (tol %.0e)%s\n", what, n, worst, tol, bad ? "  FAILED" : "");
  if (bad)
    printf("    %zu elements out of tolerance; worst at %zu: cpu %.9g gpu %.9g\n", bad, worst_i, (double)ref[worst_i],
           (double)got[worst_i]);
  return bad == 0;
}

/* Relative error against max(|ref|, rms(ref)): the rms floor keeps outputs
 * that are near zero (a sum that cancels) from failing on rounding alone. */
static int close_enough(const char *what, const float *ref, const float *got, size_t n, double tol) {
  double ss = 0.0;
  size_t finite = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(ref[i])) {
      ss += (double)ref[i] * ref[i];
      finite++;
    }
  const double rms = finite ? sqrt(ss / (double)finite) : 0.0;
  double *scale = malloc((n ? n : 1) * sizeof *scale);
  for (size_t i = 0; i < n; i++) scale[i] = fmax(fabs((double)ref[i]), rms);
  int ok = within(what, ref, got, scale, n, tol);
  free(scale);
  return ok;
}

static int same_i32(const char *what, const int32_t *ref, const int32_t *got, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ref[i] != got[i]) {
      printf("  %-34s differs at %zu: cpu %d gpu %d  FAILED\n", what, i, ref[i], got[i]);
      return 0;
    }
  printf("  %-34s n=%-8zu identical\n", what, n);
  return 1;
}

static int same_i64(const char *what, const int64_t *ref, const int64_t *got, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ref[i] != got[i]) {
      printf("  %-34s differs at %zu: cpu %lld gpu %lld  FAILED\n", what, i, (long long)ref[i], (long long)got[i]);
      return 0;
    }
  printf("  %-34s n=%-8zu identical\n", what, n);
  return 1;
}

static int same_bits(const char *what, const void *a, const void *b, size_t bytes) {
  int same = memcmp(a, b, bytes) == 0;
  printf("  %-34s %s\n", what, same ? "same bits on a second run" : "DIFFERENT bits on a second run  FAILED");
  return same;
}

/* Reads a float pair and compares it. */
static void check_pair(const char *what, pair p, double tol) {
  size_t n = p.bytes / sizeof(float);
  float *ha = fnew(n), *hb = fnew(n);
  pair_read(p, ha, hb);
  int ok = close_enough(what, ha, hb, n, tol);
  free(ha);
  free(hb);
  assert_true(ok);
}

/* Reads a float pair and compares it against per-element scales. */
static void check_pair_scaled(const char *what, pair p, const double *scale, double tol) {
  size_t n = p.bytes / sizeof(float);
  float *ha = fnew(n), *hb = fnew(n);
  pair_read(p, ha, hb);
  int ok = within(what, ha, hb, scale, n, tol);
  free(ha);
  free(hb);
  assert_true(ok);
}

/* ---- dense linear algebra ---- */

static void gemm_case(dt_backend *tested, double tol, int ta, int tb, int m, int n, int k, int pad, float alpha,
                      float beta) {
  const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  const size_t a_rows = (size_t)(ta ? k : m), b_rows = (size_t)(tb ? n : k);
  const size_t na = a_rows * (size_t)lda, nb = b_rows * (size_t)ldb, nc = (size_t)m * (size_t)ldc;
  float *A = fnew(na), *B = fnew(nb), *C = fnew(nc);
  fill_uniform(A, na, -1.0f, 1.0f);
  fill_uniform(B, nb, -1.0f, 1.0f);
  if (beta == 0.0f) {
    /* beta = 0 overwrites: the old C is never read, so NaN must vanish,
     * except in the padding columns, which must stay untouched. */
    fill_nan(C, nc);
  } else {
    fill_uniform(C, nc, -1.0f, 1.0f);
  }
  pair pa = pair_on(g_cpu, tested, A, na * 4), pb = pair_on(g_cpu, tested, B, nb * 4),
       pc = pair_on(g_cpu, tested, C, nc * 4);
  OK(g_cpu->gemm(g_cpu, ta, tb, m, n, k, alpha, pa.a, lda, pb.a, ldb, beta, pc.a, ldc));
  OK(tested->gemm(tested, ta, tb, m, n, k, alpha, pa.b, lda, pb.b, ldb, beta, pc.b, ldc));
  /* A product's rounding error scales with |alpha| sum_l |a_il b_lj| +
   * |beta c_ij|, not with the result, which cancels towards zero as k grows:
   * measure the error against that (the padding columns against 1). */
  double *scale = malloc(nc * sizeof *scale);
  for (size_t i = 0; i < nc; i++) scale[i] = 1.0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double acc = 0.0;
      for (int l = 0; l < k; l++) {
        const double av = A[ta ? (size_t)l * lda + i : (size_t)i * lda + l];
        const double bv = B[tb ? (size_t)j * ldb + l : (size_t)l * ldb + j];
        acc += fabs(av * bv);
      }
      const double cv = beta != 0.0f ? fabs((double)beta * C[(size_t)i * ldc + j]) : 0.0;
      scale[(size_t)i * ldc + j] = fabs((double)alpha) * acc + cv;
    }
  char what[96];
  snprintf(what, sizeof what, "gemm%s %c%c %dx%dx%d b=%g", tested == g_tf32 ? " tf32" : "", ta ? 'T' : 'N',
           tb ? 'T' : 'N', m, n, k, (double)beta);
  check_pair_scaled(what, pc, scale, tol);
  free(scale);
  pair_free(&pa);
  pair_free(&pb);
  pair_free(&pc);
  free(A);
  free(B);
  free(C);
}

static void test_gemm(void **state) {
  (void)state;
  for (int ta = 0; ta <= 1; ta++)
    for (int tb = 0; tb <= 1; tb++) {
      gemm_case(g_gpu, TOL_FP32, ta, tb, 37, 53, 129, 3, 0.7f, 0.3f);
      gemm_case(g_gpu, TOL_FP32, ta, tb, 64, 33, 17, 0, 1.0f, 0.0f);
      gemm_case(g_tf32, TOL_TF32, ta, tb, 37, 53, 512, 3, 0.7f, 0.3f);
    }
  /* The model's shapes: a GRU step's hidden product, content.fc2's input
   * gradient, a weight gradient (transposed A). */
  gemm_case(g_gpu, TOL_FP32, 0, 1, 2048, 384, 128, 0, 1.0f, 0.0f);
  gemm_case(g_gpu, TOL_FP32, 0, 0, 4096, 512, 256, 0, 1.0f, 0.0f);
  gemm_case(g_gpu, TOL_FP32, 1, 0, 256, 512, 4096, 0, 1.0f, 1.0f);
  gemm_case(g_tf32, TOL_TF32, 0, 1, 2048, 384, 128, 0, 1.0f, 0.0f);
  /* k = 0: C = beta C. */
  gemm_case(g_gpu, TOL_FP32, 0, 0, 5, 7, 0, 1, 1.0f, 0.5f);
}

static void test_bias(void **state) {
  (void)state;
  const int64_t rows[] = {300, 1500, 1};
  const int cols[] = {67, 70, 1};
  for (int t = 0; t < 3; t++) {
    const size_t ny = (size_t)rows[t] * (size_t)cols[t];
    float *y = fnew(ny), *bias = fnew((size_t)cols[t]);
    fill_uniform(y, ny, -1.0f, 1.0f);
    fill_uniform(bias, (size_t)cols[t], -1.0f, 1.0f);
    pair py = pair_new(y, ny * 4), pbias = pair_new(bias, (size_t)cols[t] * 4);
    OK(g_cpu->add_bias(g_cpu, py.a, pbias.a, rows[t], cols[t]));
    OK(g_gpu->add_bias(g_gpu, py.b, pbias.b, rows[t], cols[t]));
    check_pair("add_bias", py, TOL_FP32);
    /* bias_grad accumulates into a non-zero dbias; its rounding error scales
     * with |dbias| + sum_r |dy[r,c]|. */
    fill_uniform(y, ny, -1.0f, 1.0f);
    pair pdy = pair_new(y, ny * 4);
    double *scale = calloc((size_t)cols[t], sizeof *scale);
    for (int c = 0; c < cols[t]; c++) {
      scale[c] = fabs((double)bias[c]);
      for (int64_t r = 0; r < rows[t]; r++) scale[c] += fabs((double)y[r * cols[t] + c]);
    }
    OK(g_cpu->bias_grad(g_cpu, pbias.a, pdy.a, rows[t], cols[t]));
    OK(g_gpu->bias_grad(g_gpu, pbias.b, pdy.b, rows[t], cols[t]));
    check_pair_scaled("bias_grad", pbias, scale, TOL_FP32);
    free(scale);
    pair_free(&py);
    pair_free(&pbias);
    pair_free(&pdy);
    free(y);
    free(bias);
  }
}

static void test_axpy_scale_sumsq(void **state) {
  (void)state;
  const int64_t n = 100003;
  float *x = fnew((size_t)n), *y = fnew((size_t)n);
  fill_uniform(x, (size_t)n, -2.0f, 2.0f);
  fill_uniform(y, (size_t)n, -2.0f, 2.0f);
  pair px = pair_new(x, (size_t)n * 4), py = pair_new(y, (size_t)n * 4);
  OK(g_cpu->axpy(g_cpu, py.a, px.a, n, -0.37f));
  OK(g_gpu->axpy(g_gpu, py.b, px.b, n, -0.37f));
  check_pair("axpy", py, TOL_FP32);
  OK(g_cpu->scale(g_cpu, px.a, n, 1.7f));
  OK(g_gpu->scale(g_gpu, px.b, n, 1.7f));
  check_pair("scale", px, TOL_FP32);
  double sa = -1.0, sb = -1.0, sb2 = -2.0;
  OK(g_cpu->sumsq(g_cpu, px.a, n, &sa));
  OK(g_gpu->sumsq(g_gpu, px.b, n, &sb));
  OK(g_gpu->sumsq(g_gpu, px.b, n, &sb2));
  printf("  sumsq: cpu %.17g gpu %.17g\n", sa, sb);
  assert_true(fabs(sa - sb) <= 1e-9 * fabs(sa));
  assert_true(same_bits("sumsq", &sb, &sb2, sizeof sb));
  OK(g_gpu->sumsq(g_gpu, px.b, 0, &sb));
  assert_true(sb == 0.0);
  pair_free(&px);
  pair_free(&py);
  free(x);
  free(y);
}

/* ---- activations ---- */

static void test_relu_dropout(void **state) {
  (void)state;
  const int64_t rows = 301;
  const int cols = 70; /* not a multiple of 4: the last Philox group is partial */
  const size_t n = (size_t)rows * cols;
  int64_t *keys = malloc((size_t)rows * sizeof *keys);
  for (int64_t r = 0; r < rows; r++) keys[r] = r * 7919 + (r % 3 == 0 ? ((int64_t)5 << 33) : 0);
  pair pkeys = pair_new(keys, (size_t)rows * sizeof *keys);
  float *x = fnew(n), *dy = fnew(n);
  for (int relu = 0; relu <= 1; relu++)
    for (int pi = 0; pi < 2; pi++) {
      const float p = pi ? 0.2f : 0.0f;
      dt_dropout_key ka = {g_seed, 11, DT_SITE_CONTENT, pkeys.a}, kb = {g_seed, 11, DT_SITE_CONTENT, pkeys.b};
      fill_uniform(x, n, -1.0f, 1.0f);
      pair px = pair_new(x, n * 4);
      OK(g_cpu->relu_dropout_fwd(g_cpu, px.a, rows, cols, relu, p, ka));
      OK(g_gpu->relu_dropout_fwd(g_gpu, px.b, rows, cols, relu, p, kb));
      char what[64];
      snprintf(what, sizeof what, "relu_dropout_fwd relu=%d p=%.1f", relu, (double)p);
      check_pair(what, px, 1e-6);
      fill_uniform(dy, n, -1.0f, 1.0f);
      pair pdy = pair_new(dy, n * 4);
      OK(g_cpu->relu_dropout_bwd(g_cpu, pdy.a, px.a, rows, cols, relu, p, ka));
      OK(g_gpu->relu_dropout_bwd(g_gpu, pdy.b, px.b, rows, cols, relu, p, kb));
      snprintf(what, sizeof what, "relu_dropout_bwd relu=%d p=%.1f", relu, (double)p);
      check_pair(what, pdy, 1e-6);
      pair_free(&px);
      pair_free(&pdy);
    }
  pair_free(&pkeys);
  free(keys);
  free(x);
  free(dy);
}

/* ---- embedding rows ---- */

static void test_gather_rows(void **state) {
  (void)state;
  const int dims[] = {64, 61, 1};
  for (int t = 0; t < 3; t++) {
    const int dim = dims[t];
    const int64_t rows = 1000, n = 777;
    float *table = fnew((size_t)(rows * dim)), *out = fnew((size_t)(n * dim));
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    fill_uniform(table, (size_t)(rows * dim), -1.0f, 1.0f);
    fill_ids(ids, (size_t)n, rows);
    fill_nan(out, (size_t)(n * dim));
    pair pt = pair_new(table, (size_t)(rows * dim) * 4), pi = pair_new(ids, (size_t)n * 4),
         po = pair_new(out, (size_t)(n * dim) * 4);
    OK(g_cpu->gather_rows(g_cpu, po.a, pt.a, pi.a, n, dim));
    OK(g_gpu->gather_rows(g_gpu, po.b, pt.b, pi.b, n, dim));
    check_pair("gather_rows", po, 0.0);
    pair_free(&pt);
    pair_free(&pi);
    pair_free(&po);
    free(table);
    free(out);
    free(ids);
  }
}

/* scatter_add_rows: a permutation of distinct rows plus out-of-range ids
 * (skipped), added into a NaN-free destination. */
static void test_scatter_add_rows(void **state) {
  (void)state;
  const int dims[] = {128, 61};
  for (int t = 0; t < 2; t++) {
    const int dim = dims[t];
    const int64_t rows = 900, n = 700;
    float *dst = fnew((size_t)(rows * dim)), *src = fnew((size_t)(n * dim));
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    fill_uniform(dst, (size_t)(rows * dim), -1.0f, 1.0f);
    fill_uniform(src, (size_t)(n * dim), -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919) % (rows + 50)); /* distinct; some >= rows */
    ids[3] = -1;
    pair pd = pair_new(dst, (size_t)(rows * dim) * 4), ps = pair_new(src, (size_t)(n * dim) * 4),
         pi = pair_new(ids, (size_t)n * 4);
    OK(g_cpu->scatter_add_rows(g_cpu, pd.a, rows, pi.a, ps.a, n, dim));
    OK(g_gpu->scatter_add_rows(g_gpu, pd.b, rows, pi.b, ps.b, n, dim));
    check_pair("scatter_add_rows", pd, 0.0);
    pair_free(&pd);
    pair_free(&ps);
    pair_free(&pi);
    free(dst);
    free(src);
    free(ids);
  }
}

static void coalesce_case(int64_t n, int64_t id_range, int dim) {
  float *grads = fnew((size_t)(n * dim)), *sums = fnew((size_t)(n * dim));
  int32_t *ids = malloc((size_t)n * sizeof *ids), *uniq = malloc((size_t)n * sizeof *uniq);
  fill_uniform(grads, (size_t)(n * dim), -1.0f, 1.0f);
  fill_ids(ids, (size_t)n, id_range);
  fill_nan(sums, (size_t)(n * dim));
  for (int64_t i = 0; i < n; i++) uniq[i] = -12345;
  pair pg = pair_new(grads, (size_t)(n * dim) * 4), pi = pair_new(ids, (size_t)n * 4),
       pu = pair_new(uniq, (size_t)n * 4), ps = pair_new(sums, (size_t)(n * dim) * 4);
  int64_t ma = -1, mb = -1, mb2 = -1;
  OK(g_cpu->coalesce_rows(g_cpu, pi.a, pg.a, n, dim, pu.a, ps.a, &ma));
  OK(g_gpu->coalesce_rows(g_gpu, pi.b, pg.b, n, dim, pu.b, ps.b, &mb));
  printf("  coalesce_rows n=%lld ids<%lld dim=%d: m cpu %lld gpu %lld\n", (long long)n, (long long)id_range, dim,
         (long long)ma, (long long)mb);
  assert_int_equal(ma, mb);
  int32_t *ua = malloc((size_t)n * 4), *ub = malloc((size_t)n * 4);
  float *sa = fnew((size_t)(n * dim)), *sb = fnew((size_t)(n * dim)), *sb2 = fnew((size_t)(n * dim));
  pair_read(pu, ua, ub);
  pair_read(ps, sa, sb);
  assert_true(same_i32("coalesce_rows uniq", ua, ub, (size_t)ma));
  for (int64_t i = 1; i < ma; i++) assert_true(ub[i - 1] < ub[i]);
  assert_true(close_enough("coalesce_rows sums", sa, sb, (size_t)(ma * dim), TOL_FP32));
  /* Determinism: a second run gives the same bits. */
  OK(g_gpu->coalesce_rows(g_gpu, pi.b, pg.b, n, dim, pu.b, ps.b, &mb2));
  assert_int_equal(mb, mb2);
  OK(g_gpu->download(g_gpu, sb2, ps.b, (size_t)(mb * dim) * 4));
  assert_true(same_bits("coalesce_rows sums", sb, sb2, (size_t)(mb * dim) * 4));
  pair_free(&pg);
  pair_free(&pi);
  pair_free(&pu);
  pair_free(&ps);
  free(grads);
  free(sums);
  free(ids);
  free(uniq);
  free(ua);
  free(ub);
  free(sa);
  free(sb);
  free(sb2);
}

static void test_coalesce_rows(void **state) {
  (void)state;
  coalesce_case(5000, 700, 64);    /* ~7 rows per id */
  coalesce_case(1, 10, 64);        /* one row */
  coalesce_case(300, 1, 3);        /* one id throughout */
  coalesce_case(2000, 1000000, 1); /* mostly unique ids, one-column table (item_bias) */
  coalesce_case(4096, 159729, 64); /* a batch's item ids at Electronics scale */
}

/* ---- TF-IDF CSR ---- */

typedef struct {
  int64_t n_rows, vocab, nnz;
  int64_t *indptr;
  int32_t *indices;
  float *values;
} csr;

/* Rows of 0..max_nnz distinct sorted columns, some empty. */
static csr csr_random(int64_t n_rows, int64_t vocab, int max_nnz) {
  csr x = {n_rows, vocab, 0, NULL, NULL, NULL};
  x.indptr = malloc((size_t)(n_rows + 1) * sizeof *x.indptr);
  x.indices = malloc((size_t)(n_rows * max_nnz + 1) * sizeof *x.indices);
  x.values = fnew((size_t)(n_rows * max_nnz + 1));
  char *used = calloc((size_t)vocab, 1);
  x.indptr[0] = 0;
  for (int64_t r = 0; r < n_rows; r++) {
    int64_t k = r % 10 == 0 ? 0 : rand_below(max_nnz + 1);
    int64_t got = 0;
    memset(used, 0, (size_t)vocab);
    while (got < k) {
      int64_t j = rand_below(vocab);
      if (!used[j]) {
        used[j] = 1;
        got++;
      }
    }
    for (int64_t j = 0; j < vocab; j++)
      if (used[j]) x.indices[x.nnz++] = (int32_t)j;
    x.indptr[r + 1] = x.nnz;
  }
  fill_uniform(x.values, (size_t)x.nnz, 0.01f, 1.0f);
  free(used);
  return x;
}

static void test_csr_matmul(void **state) {
  (void)state;
  csr x = csr_random(400, 300, 30);
  const int64_t n = 257;
  const int o = 70;
  int32_t *rows = malloc((size_t)n * sizeof *rows);
  fill_ids(rows, (size_t)n, x.n_rows);
  float *wt = fnew((size_t)(x.vocab * o)), *out = fnew((size_t)(n * o)), *dout = fnew((size_t)(n * o));
  fill_uniform(wt, (size_t)(x.vocab * o), -1.0f, 1.0f);
  fill_nan(out, (size_t)(n * o));
  fill_uniform(dout, (size_t)(n * o), -1.0f, 1.0f);
  pair pip = pair_new(x.indptr, (size_t)(x.n_rows + 1) * 8), pin = pair_new(x.indices, (size_t)x.nnz * 4),
       pv = pair_new(x.values, (size_t)x.nnz * 4), pr = pair_new(rows, (size_t)n * 4),
       pw = pair_new(wt, (size_t)(x.vocab * o) * 4), po = pair_new(out, (size_t)(n * o) * 4),
       pd = pair_new(dout, (size_t)(n * o) * 4);
  OK(g_cpu->csr_matmul(g_cpu, po.a, pip.a, pin.a, pv.a, pr.a, n, pw.a, o));
  OK(g_gpu->csr_matmul(g_gpu, po.b, pip.b, pin.b, pv.b, pr.b, n, pw.b, o));
  check_pair("csr_matmul", po, TOL_FP32);
  /* The gradient accumulates into the (non-zero) weights. */
  OK(g_cpu->csr_matmul_grad(g_cpu, pw.a, pip.a, pin.a, pv.a, pr.a, n, pd.a, o, x.vocab));
  OK(g_gpu->csr_matmul_grad(g_gpu, pw.b, pip.b, pin.b, pv.b, pr.b, n, pd.b, o, x.vocab));
  check_pair("csr_matmul_grad", pw, TOL_FP32);
  /* Determinism: the same accumulation from the same start, twice. */
  float *w1 = fnew((size_t)(x.vocab * o)), *w2 = fnew((size_t)(x.vocab * o));
  OK(g_gpu->upload(g_gpu, pw.b, wt, (size_t)(x.vocab * o) * 4));
  OK(g_gpu->csr_matmul_grad(g_gpu, pw.b, pip.b, pin.b, pv.b, pr.b, n, pd.b, o, x.vocab));
  OK(g_gpu->download(g_gpu, w1, pw.b, (size_t)(x.vocab * o) * 4));
  OK(g_gpu->upload(g_gpu, pw.b, wt, (size_t)(x.vocab * o) * 4));
  OK(g_gpu->csr_matmul_grad(g_gpu, pw.b, pip.b, pin.b, pv.b, pr.b, n, pd.b, o, x.vocab));
  OK(g_gpu->download(g_gpu, w2, pw.b, (size_t)(x.vocab * o) * 4));
  assert_true(same_bits("csr_matmul_grad", w1, w2, (size_t)(x.vocab * o) * 4));
  pair ps[] = {pip, pin, pv, pr, pw, po, pd};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  free(x.indptr);
  free(x.indices);
  free(x.values);
  free(rows);
  free(wt);
  free(out);
  free(dout);
  free(w1);
  free(w2);
}

/* ---- GRU ---- */

static void test_gru_step(void **state) {
  (void)state;
  const int64_t a = 300;
  const int h = 70;
  const size_t n3 = (size_t)(a * 3 * h), n1 = (size_t)(a * h), n4 = (size_t)(a * 4 * h);
  float *xg = fnew(n3), *hg = fnew(n3), *hp = fnew(n1), *buf = fnew(n4), *dh = fnew(n1);
  for (int with_prev = 0; with_prev <= 1; with_prev++) {
    fill_uniform(xg, n3, -2.0f, 2.0f);
    fill_uniform(hg, n3, -2.0f, 2.0f);
    fill_uniform(hp, n1, -1.0f, 1.0f);
    pair pxg = pair_new(xg, n3 * 4), phg = pair_new(hg, n3 * 4), php = pair_new(hp, n1 * 4);
    fill_nan(buf, n4);
    pair pho = pair_new(buf, n1 * 4), pcache = pair_new(buf, n4 * 4);
    const float *hpa = with_prev ? php.a : NULL, *hpb = with_prev ? php.b : NULL;
    OK(g_cpu->gru_step_fwd(g_cpu, pxg.a, phg.a, hpa, pho.a, pcache.a, a, h));
    OK(g_gpu->gru_step_fwd(g_gpu, pxg.b, phg.b, hpb, pho.b, pcache.b, a, h));
    check_pair(with_prev ? "gru_step_fwd h_out" : "gru_step_fwd h_out (h0 = 0)", pho, TOL_FP32);
    check_pair("gru_step_fwd cache", pcache, TOL_FP32);

    fill_uniform(dh, n1, -1.0f, 1.0f);
    pair pdh = pair_new(dh, n1 * 4);
    fill_nan(buf, n4);
    pair pdxg = pair_new(buf, n3 * 4), pdhg = pair_new(buf, n3 * 4);
    fill_uniform(buf, n1, -1.0f, 1.0f);
    pair pdhp = pair_new(buf, n1 * 4); /* accumulated into */
    OK(g_cpu->gru_step_bwd(g_cpu, pdh.a, hpa, pcache.a, pdxg.a, pdhg.a, with_prev ? pdhp.a : NULL, a, h));
    OK(g_gpu->gru_step_bwd(g_gpu, pdh.b, hpb, pcache.b, pdxg.b, pdhg.b, with_prev ? pdhp.b : NULL, a, h));
    check_pair("gru_step_bwd dxg", pdxg, TOL_FP32);
    check_pair("gru_step_bwd dhg", pdhg, TOL_FP32);
    if (with_prev) check_pair("gru_step_bwd dh_prev", pdhp, TOL_FP32);
    pair ps[] = {pxg, phg, php, pho, pcache, pdh, pdxg, pdhg, pdhp};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  }
  free(xg);
  free(hg);
  free(hp);
  free(buf);
  free(dh);
}

/* ---- gate ---- */

static void test_gate(void **state) {
  (void)state;
  const int64_t n = 1000;
  float *l = fnew((size_t)(3 * n)), *alpha = fnew((size_t)(3 * n)), *da = fnew((size_t)(3 * n));
  fill_uniform(l, (size_t)(3 * n), -5.0f, 5.0f);
  fill_nan(alpha, (size_t)(3 * n));
  pair pl = pair_new(l, (size_t)(3 * n) * 4), pa = pair_new(alpha, (size_t)(3 * n) * 4);
  OK(g_cpu->softmax3_fwd(g_cpu, pl.a, pa.a, n));
  OK(g_gpu->softmax3_fwd(g_gpu, pl.b, pa.b, n));
  check_pair("softmax3_fwd", pa, TOL_FP32);

  fill_uniform(da, (size_t)(3 * n), -1.0f, 1.0f);
  pair pda = pair_new(da, (size_t)(3 * n) * 4);
  fill_nan(l, (size_t)(3 * n));
  pair pdl = pair_new(l, (size_t)(3 * n) * 4);
  /* Both backends read alpha from the CPU's result, so that the backward
   * pass is compared on identical inputs. */
  OK(g_cpu->download(g_cpu, alpha, pa.a, (size_t)(3 * n) * 4));
  OK(g_gpu->upload(g_gpu, pa.b, alpha, (size_t)(3 * n) * 4));
  OK(g_cpu->softmax3_bwd(g_cpu, pa.a, pda.a, pdl.a, n));
  OK(g_gpu->softmax3_bwd(g_gpu, pa.b, pda.b, pdl.b, n));
  check_pair("softmax3_bwd", pdl, TOL_FP32);

  /* gate_reg on the local 700 rows of a global batch of 1000. */
  const int64_t local = 700, n_global = 1000;
  const float mean[3] = {0.45f, 0.30f, 0.25f};
  double ea = 0.0, eb = 0.0, eb2 = 0.0;
  OK(g_cpu->gate_reg(g_cpu, pa.a, local, 0.05f, 0.01f, mean, n_global, pda.a, &ea));
  OK(g_gpu->gate_reg(g_gpu, pa.b, local, 0.05f, 0.01f, mean, n_global, pda.b, &eb));
  check_pair("gate_reg dalpha (accumulated)", pda, TOL_FP32);
  printf("  gate_reg neg entropy sum: cpu %.17g gpu %.17g\n", ea, eb);
  assert_true(fabs(ea - eb) <= TOL_FP32 * fabs(ea));
  OK(g_gpu->gate_reg(g_gpu, pa.b, local, 0.05f, 0.01f, mean, n_global, pda.b, &eb2));
  assert_true(same_bits("gate_reg neg entropy sum", &eb, &eb2, sizeof eb));
  pair ps[] = {pl, pa, pda, pdl};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  free(l);
  free(alpha);
  free(da);
}

/* ---- scores and loss ---- */

static void test_bpr(void **state) {
  (void)state;
  const int cs[] = {2, 5, 1};
  for (int t = 0; t < 3; t++) {
    const int64_t n = 1000;
    const int c = cs[t];
    const size_t ns = (size_t)(n * c);
    float *s = fnew(ns), *ds = fnew(ns);
    fill_uniform(s, ns, -8.0f, 8.0f);
    fill_nan(ds, ns);
    pair ps = pair_new(s, ns * 4), pds = pair_new(ds, ns * 4);
    const float inv_pairs = c > 1 ? 1.0f / (float)(n * (c - 1)) : 1.0f;
    double la = -1.0, lb = -1.0, lb2 = -2.0;
    OK(g_cpu->bpr(g_cpu, ps.a, n, c, inv_pairs, pds.a, &la));
    OK(g_gpu->bpr(g_gpu, ps.b, n, c, inv_pairs, pds.b, &lb));
    char what[64];
    snprintf(what, sizeof what, "bpr dscores c=%d", c);
    check_pair(what, pds, TOL_FP32);
    printf("  bpr loss sum c=%d: cpu %.17g gpu %.17g\n", c, la, lb);
    assert_true(fabs(la - lb) <= TOL_FP32 * fabs(la));
    OK(g_gpu->bpr(g_gpu, ps.b, n, c, inv_pairs, pds.b, &lb2));
    assert_true(same_bits("bpr loss sum", &lb, &lb2, sizeof lb));
    pair_free(&ps);
    pair_free(&pds);
    free(s);
    free(ds);
  }
}

static void test_rowdot(void **state) {
  (void)state;
  const int ds[] = {64, 70};
  for (int t = 0; t < 2; t++) {
    const int64_t n = 300;
    const int c = 3, d = ds[t];
    const size_t nu = (size_t)(n * d), nv = (size_t)(n * c * d), no = (size_t)(n * c);
    float *u = fnew(nu), *v = fnew(nv), *out = fnew(no), *dout = fnew(no), *du = fnew(nu), *dv = fnew(nv);
    fill_uniform(u, nu, -1.0f, 1.0f);
    fill_uniform(v, nv, -1.0f, 1.0f);
    fill_nan(out, no);
    fill_uniform(dout, no, -1.0f, 1.0f);
    fill_uniform(du, nu, -1.0f, 1.0f);
    fill_uniform(dv, nv, -1.0f, 1.0f);
    pair pu = pair_new(u, nu * 4), pv = pair_new(v, nv * 4), po = pair_new(out, no * 4), pdo = pair_new(dout, no * 4),
         pdu = pair_new(du, nu * 4), pdv = pair_new(dv, nv * 4);
    OK(g_cpu->rowdot_fwd(g_cpu, pu.a, pv.a, po.a, n, c, d));
    OK(g_gpu->rowdot_fwd(g_gpu, pu.b, pv.b, po.b, n, c, d));
    check_pair("rowdot_fwd", po, TOL_FP32);
    OK(g_cpu->rowdot_bwd(g_cpu, pu.a, pv.a, pdo.a, pdu.a, pdv.a, n, c, d));
    OK(g_gpu->rowdot_bwd(g_gpu, pu.b, pv.b, pdo.b, pdu.b, pdv.b, n, c, d));
    check_pair("rowdot_bwd du", pdu, TOL_FP32);
    check_pair("rowdot_bwd dv", pdv, TOL_FP32);
    /* One output at a time (the other NULL). */
    OK(g_cpu->rowdot_bwd(g_cpu, pu.a, pv.a, pdo.a, NULL, pdv.a, n, c, d));
    OK(g_gpu->rowdot_bwd(g_gpu, pu.b, pv.b, pdo.b, NULL, pdv.b, n, c, d));
    OK(g_cpu->rowdot_bwd(g_cpu, pu.a, pv.a, pdo.a, pdu.a, NULL, n, c, d));
    OK(g_gpu->rowdot_bwd(g_gpu, pu.b, pv.b, pdo.b, pdu.b, NULL, n, c, d));
    check_pair("rowdot_bwd du (dv NULL)", pdu, TOL_FP32);
    check_pair("rowdot_bwd dv (du NULL)", pdv, TOL_FP32);
    pair ps[] = {pu, pv, po, pdo, pdu, pdv};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
    free(u);
    free(v);
    free(out);
    free(dout);
    free(du);
    free(dv);
  }
}

static void test_mix3(void **state) {
  (void)state;
  const int64_t n = 200;
  const int c = 3, d = 64;
  const size_t nq = (size_t)(n * c * d), nu = (size_t)(n * d), na = (size_t)(n * 3);
  float *alpha = fnew(na), *hs = fnew(nq), *hd = fnew(nu), *hc = fnew(nq), *z = fnew(nq), *dz = fnew(nq);
  float *dhs = fnew(nq), *dhd = fnew(nu), *dhc = fnew(nq), *dal = fnew(na);
  /* which towers exist: all, no dynamic, no content, static only */
  const int present[4][3] = {{1, 1, 1}, {1, 0, 1}, {1, 1, 0}, {1, 0, 0}};
  for (int t = 0; t < 4; t++) {
    fill_uniform(alpha, na, 0.0f, 1.0f);
    fill_uniform(hs, nq, -1.0f, 1.0f);
    fill_uniform(hd, nu, -1.0f, 1.0f);
    fill_uniform(hc, nq, -1.0f, 1.0f);
    fill_uniform(dz, nq, -1.0f, 1.0f);
    fill_uniform(dhs, nq, -1.0f, 1.0f);
    fill_uniform(dhd, nu, -1.0f, 1.0f);
    fill_uniform(dhc, nq, -1.0f, 1.0f);
    fill_nan(z, nq);
    fill_nan(dal, na);
    pair pal = pair_new(alpha, na * 4), phs = pair_new(hs, nq * 4), phd = pair_new(hd, nu * 4),
         phc = pair_new(hc, nq * 4), pz = pair_new(z, nq * 4), pdz = pair_new(dz, nq * 4), pdhs = pair_new(dhs, nq * 4),
         pdhd = pair_new(dhd, nu * 4), pdhc = pair_new(dhc, nq * 4), pdal = pair_new(dal, na * 4);
    const float *sa = present[t][0] ? phs.a : NULL, *sb = present[t][0] ? phs.b : NULL;
    const float *da_ = present[t][1] ? phd.a : NULL, *db = present[t][1] ? phd.b : NULL;
    const float *ca = present[t][2] ? phc.a : NULL, *cb = present[t][2] ? phc.b : NULL;
    OK(g_cpu->mix3_fwd(g_cpu, pal.a, sa, da_, ca, pz.a, n, c, d));
    OK(g_gpu->mix3_fwd(g_gpu, pal.b, sb, db, cb, pz.b, n, c, d));
    char what[64];
    snprintf(what, sizeof what, "mix3_fwd towers %d%d%d", present[t][0], present[t][1], present[t][2]);
    check_pair(what, pz, TOL_FP32);
    OK(g_cpu->mix3_bwd(g_cpu, pal.a, sa, da_, ca, pdz.a, pdal.a, present[t][0] ? pdhs.a : NULL,
                       present[t][1] ? pdhd.a : NULL, present[t][2] ? pdhc.a : NULL, n, c, d));
    OK(g_gpu->mix3_bwd(g_gpu, pal.b, sb, db, cb, pdz.b, pdal.b, present[t][0] ? pdhs.b : NULL,
                       present[t][1] ? pdhd.b : NULL, present[t][2] ? pdhc.b : NULL, n, c, d));
    check_pair("mix3_bwd dalpha", pdal, TOL_FP32);
    check_pair("mix3_bwd dhs", pdhs, TOL_FP32);
    check_pair("mix3_bwd dhd", pdhd, TOL_FP32);
    check_pair("mix3_bwd dhc", pdhc, TOL_FP32);
    pair ps[] = {pal, phs, phd, phc, pz, pdz, pdhs, pdhd, pdhc, pdal};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  }
  free(alpha);
  free(hs);
  free(hd);
  free(hc);
  free(z);
  free(dz);
  free(dhs);
  free(dhd);
  free(dhc);
  free(dal);
}

static void test_score_mix(void **state) {
  (void)state;
  const int64_t n = 500;
  const int c = 3;
  const size_t ns = (size_t)(n * c), na = (size_t)(n * 3);
  float *alpha = fnew(na), *sk[3], *bias = fnew(ns), *s = fnew(ns), *ds = fnew(ns), *dal = fnew(na), *dsk = fnew(ns);
  for (int k = 0; k < 3; k++) sk[k] = fnew(ns);
  const int present[3][4] = {{1, 1, 1, 1}, {1, 0, 1, 0}, {1, 0, 0, 1}}; /* ss sd sc bias */
  for (int t = 0; t < 3; t++) {
    fill_uniform(alpha, na, 0.0f, 1.0f);
    for (int k = 0; k < 3; k++) fill_uniform(sk[k], ns, -3.0f, 3.0f);
    fill_uniform(bias, ns, -1.0f, 1.0f);
    fill_uniform(ds, ns, -1.0f, 1.0f);
    fill_nan(s, ns);
    fill_nan(dal, na);
    fill_nan(dsk, ns);
    pair pal = pair_new(alpha, na * 4), pb = pair_new(bias, ns * 4), ps_ = pair_new(s, ns * 4),
         pds = pair_new(ds, ns * 4), pdal = pair_new(dal, na * 4);
    pair psk[3], pdsk[3];
    const float *ska[3], *skb[3];
    float *dska[3], *dskb[3];
    for (int k = 0; k < 3; k++) {
      psk[k] = pair_new(sk[k], ns * 4);
      pdsk[k] = pair_new(dsk, ns * 4);
      ska[k] = present[t][k] ? psk[k].a : NULL;
      skb[k] = present[t][k] ? psk[k].b : NULL;
      dska[k] = present[t][k] ? pdsk[k].a : NULL;
      dskb[k] = present[t][k] ? pdsk[k].b : NULL;
    }
    const float *ba = present[t][3] ? pb.a : NULL, *bb = present[t][3] ? pb.b : NULL;
    OK(g_cpu->score_mix_fwd(g_cpu, pal.a, ska[0], ska[1], ska[2], ba, ps_.a, n, c));
    OK(g_gpu->score_mix_fwd(g_gpu, pal.b, skb[0], skb[1], skb[2], bb, ps_.b, n, c));
    check_pair("score_mix_fwd", ps_, TOL_FP32);
    OK(g_cpu->score_mix_bwd(g_cpu, pal.a, ska[0], ska[1], ska[2], pds.a, pdal.a, dska[0], dska[1], dska[2], n, c));
    OK(g_gpu->score_mix_bwd(g_gpu, pal.b, skb[0], skb[1], skb[2], pds.b, pdal.b, dskb[0], dskb[1], dskb[2], n, c));
    check_pair("score_mix_bwd dalpha", pdal, TOL_FP32);
    for (int k = 0; k < 3; k++)
      if (present[t][k]) check_pair("score_mix_bwd dsk", pdsk[k], TOL_FP32);
    for (int k = 0; k < 3; k++) {
      pair_free(&psk[k]);
      pair_free(&pdsk[k]);
    }
    pair ps[] = {pal, pb, ps_, pds, pdal};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  }
  for (int k = 0; k < 3; k++) free(sk[k]);
  free(alpha);
  free(bias);
  free(s);
  free(ds);
  free(dal);
  free(dsk);
}

/* ---- optimizers ---- */

static dt_adam_hyper hyper_for_test(int64_t step) {
  dt_adam_hyper h = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0.8f, step};
  return h;
}

static void test_adam(void **state) {
  (void)state;
  const int64_t n = 100003;
  float *p = fnew((size_t)n), *g = fnew((size_t)n), *m = fnew((size_t)n), *v = fnew((size_t)n);
  const int64_t steps[] = {1, 7, 1000};
  for (int t = 0; t < 3; t++) {
    fill_uniform(p, (size_t)n, -1.0f, 1.0f);
    fill_uniform(g, (size_t)n, -1.0f, 1.0f);
    fill_uniform(m, (size_t)n, -0.1f, 0.1f);
    fill_uniform(v, (size_t)n, 0.0f, 0.01f);
    pair pp = pair_new(p, (size_t)n * 4), pg = pair_new(g, (size_t)n * 4), pm = pair_new(m, (size_t)n * 4),
         pv = pair_new(v, (size_t)n * 4);
    OK(g_cpu->adam(g_cpu, pp.a, pg.a, pm.a, pv.a, n, hyper_for_test(steps[t])));
    OK(g_gpu->adam(g_gpu, pp.b, pg.b, pm.b, pv.b, n, hyper_for_test(steps[t])));
    check_pair("adam param", pp, TOL_FP32);
    check_pair("adam m", pm, TOL_FP32);
    check_pair("adam v", pv, TOL_FP32);
    pair_free(&pp);
    pair_free(&pg);
    pair_free(&pm);
    pair_free(&pv);
  }
  free(p);
  free(g);
  free(m);
  free(v);
}

static void test_row_optimizers(void **state) {
  (void)state;
  const int64_t rows = 500, m = 200;
  const int dims[] = {64, 1};
  for (int t = 0; t < 2; t++) {
    const int dim = dims[t];
    const size_t nt = (size_t)(rows * dim), ng = (size_t)(m * dim);
    float *table = fnew(nt), *mt = fnew(nt), *vt = fnew(nt), *grads = fnew(ng), *acc = fnew((size_t)rows);
    int64_t *steps = malloc((size_t)rows * sizeof *steps);
    int32_t *ids = malloc((size_t)m * sizeof *ids);
    fill_uniform(table, nt, -1.0f, 1.0f);
    fill_uniform(mt, nt, -0.1f, 0.1f);
    fill_uniform(vt, nt, 0.0f, 0.01f);
    fill_uniform(grads, ng, -1.0f, 1.0f);
    fill_uniform(acc, (size_t)rows, 0.0f, 0.5f);
    for (int64_t r = 0; r < rows; r++) steps[r] = rand_below(20);
    fill_unique_ids(ids, (size_t)m, rows);
    pair pt = pair_new(table, nt * 4), pm = pair_new(mt, nt * 4), pv = pair_new(vt, nt * 4),
         pg = pair_new(grads, ng * 4), ps = pair_new(steps, (size_t)rows * 8), pi = pair_new(ids, (size_t)m * 4),
         pacc = pair_new(acc, (size_t)rows * 4);
    dt_adam_hyper h = hyper_for_test(0); /* step unused by adam_rows */
    OK(g_cpu->adam_rows(g_cpu, pt.a, pm.a, pv.a, ps.a, pi.a, pg.a, m, dim, h));
    OK(g_gpu->adam_rows(g_gpu, pt.b, pm.b, pv.b, ps.b, pi.b, pg.b, m, dim, h));
    check_pair("adam_rows table", pt, TOL_FP32);
    check_pair("adam_rows m", pm, TOL_FP32);
    check_pair("adam_rows v", pv, TOL_FP32);
    int64_t *sa = malloc((size_t)rows * 8), *sb = malloc((size_t)rows * 8);
    pair_read(ps, sa, sb);
    assert_true(same_i64("adam_rows row_step", sa, sb, (size_t)rows));
    h.lr = 0.05f;
    h.eps = 1e-6f;
    OK(g_cpu->adagrad_rows(g_cpu, pt.a, pacc.a, pi.a, pg.a, m, dim, h));
    OK(g_gpu->adagrad_rows(g_gpu, pt.b, pacc.b, pi.b, pg.b, m, dim, h));
    check_pair("adagrad_rows table", pt, TOL_FP32);
    check_pair("adagrad_rows acc", pacc, TOL_FP32);
    pair pl[] = {pt, pm, pv, pg, ps, pi, pacc};
    for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++) pair_free(&pl[i]);
    free(table);
    free(mt);
    free(vt);
    free(grads);
    free(acc);
    free(steps);
    free(ids);
    free(sa);
    free(sb);
  }
}

/* ---- top-k ---- */

/* The spec, written out: value descending, ties to the lower column,
 * -INFINITY never returned, padding (-1, -INFINITY). */
static void topk_reference(const float *s, int64_t n, int64_t cols, int k, int32_t *idx, float *val) {
  char *taken = calloc((size_t)cols, 1);
  for (int64_t i = 0; i < n; i++) {
    memset(taken, 0, (size_t)cols);
    for (int r = 0; r < k; r++) {
      int64_t best = -1;
      for (int64_t j = 0; j < cols; j++) {
        const float v = s[i * cols + j];
        if (taken[j] || v == -INFINITY) continue;
        if (best < 0 || v > s[i * cols + best]) best = j;
      }
      idx[i * k + r] = (int32_t)best;
      val[i * k + r] = best >= 0 ? s[i * cols + best] : -INFINITY;
      if (best >= 0) taken[best] = 1;
    }
  }
  free(taken);
}

static void topk_case(int64_t n, int64_t cols, int k) {
  const size_t ns = (size_t)(n * cols), nk = (size_t)(n * k);
  float *s = fnew(ns);
  fill_uniform(s, ns, -1.0f, 1.0f);
  /* Many ties (values on a coarse grid), -0.0 against +0.0, -INFINITY
   * entries, one row with nothing valid and one with fewer than k valid. */
  for (size_t i = 0; i < ns; i++) {
    s[i] = roundf(s[i] * 8.0f) / 8.0f;
    if (s[i] == 0.0f && (i & 1)) s[i] = -0.0f;
    if (i % 7 == 3) s[i] = -INFINITY;
  }
  for (int64_t j = 0; j < cols; j++) s[j] = -INFINITY;
  if (n > 1)
    for (int64_t j = 2; j < cols; j++) s[cols + j] = -INFINITY;
  int32_t *ir = malloc(nk * 4), *ia = malloc(nk * 4), *ib = malloc(nk * 4);
  float *vr = fnew(nk), *va = fnew(nk), *vb = fnew(nk);
  for (size_t i = 0; i < nk; i++) {
    ia[i] = ib[i] = 777;
    va[i] = vb[i] = NAN;
  }
  topk_reference(s, n, cols, k, ir, vr);
  pair ps = pair_new(s, ns * 4);
  OK(g_cpu->topk(g_cpu, ps.a, n, cols, k, ia, va));
  OK(g_gpu->topk(g_gpu, ps.b, n, cols, k, ib, vb));
  char what[64];
  snprintf(what, sizeof what, "topk %lldx%lld k=%d vs spec", (long long)n, (long long)cols, k);
  assert_true(same_i32(what, ir, ib, nk));
  assert_memory_equal(vr, vb, nk * 4); /* the same entries, so the same bits */
  snprintf(what, sizeof what, "topk %lldx%lld k=%d vs cpu", (long long)n, (long long)cols, k);
  assert_true(same_i32(what, ia, ib, nk));
  assert_memory_equal(va, vb, nk * 4);
  pair_free(&ps);
  free(s);
  free(ir);
  free(ia);
  free(ib);
  free(vr);
  free(va);
  free(vb);
}

static void test_topk(void **state) {
  (void)state;
  topk_case(50, 1000, 10); /* the eval K's path */
  topk_case(50, 1000, 20);
  topk_case(33, 5000, 100); /* the widest per-thread lists */
  topk_case(20, 1000, 200); /* whole-row sort */
  topk_case(10, 30, 40);    /* fewer columns than k */
  topk_case(7, 300000, 10); /* a full-catalogue row */
}

int main(void) {
  char why[512] = "";
  if (dt_backend_cuda_device_count(why, sizeof why) == 0) {
    printf("SKIP: no usable CUDA device (%s)\n", why);
    return 77;
  }
  const char *env = getenv("DTRAIN_TEST_SEED");
  g_seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("random inputs from DTRAIN_TEST_SEED=%llu\n", (unsigned long long)g_seed);
  if (dt_backend_cpu_create(0, &g_cpu) || dt_backend_cuda_create(0, 0, &g_gpu) ||
      dt_backend_cuda_create(0, 1, &g_tf32)) {
    printf("creating the backends failed: %s\n", dt_error_message());
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_bias),
      cmocka_unit_test(test_axpy_scale_sumsq),
      cmocka_unit_test(test_relu_dropout),
      cmocka_unit_test(test_gather_rows),
      cmocka_unit_test(test_coalesce_rows),
      cmocka_unit_test(test_scatter_add_rows),
      cmocka_unit_test(test_csr_matmul),
      cmocka_unit_test(test_gru_step),
      cmocka_unit_test(test_gate),
      cmocka_unit_test(test_bpr),
      cmocka_unit_test(test_rowdot),
      cmocka_unit_test(test_mix3),
      cmocka_unit_test(test_score_mix),
      cmocka_unit_test(test_adam),
      cmocka_unit_test(test_row_optimizers),
      cmocka_unit_test(test_topk),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  g_tf32->destroy(g_tf32);
  g_gpu->destroy(g_gpu);
  g_cpu->destroy(g_cpu);
  return failed;
}
