/* test_backend_cuda_util.h: helpers of the CUDA backend's op tests (the
 * same as test_backend_cuda_ops.c's own): Philox-filled random inputs, one
 * buffer on two backends (the CPU reference and the tested one), and the
 * comparisons with their error measure:
 *   |gpu - cpu| <= tol * max(|cpu|, rms(cpu)) per element,
 * NaN in the reference (a poisoned element the op must not touch) must stay
 * NaN, a NaN elsewhere (never written) fails. The including test defines
 * g_cpu, g_gpu and g_seed's value (DTRAIN_TEST_SEED or the clock). */
#ifndef DTRAIN_TEST_BACKEND_CUDA_UTIL_H
#define DTRAIN_TEST_BACKEND_CUDA_UTIL_H

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

static inline dt_rand4 draw4(uint64_t i) {
  return dt_philox(g_seed, DT_RNG_TEST, g_draw, (uint32_t)i, (uint32_t)(i >> 32), 0);
}

static inline void fill_uniform(float *x, size_t n, float lo, float hi) {
  g_draw++;
  for (size_t i = 0; i < n; i += 4) {
    dt_rand4 r = draw4(i / 4);
    for (size_t j = 0; j < 4 && i + j < n; j++) x[i + j] = lo + (hi - lo) * dt_u01(r.v[j]);
  }
}

/* Integers in [0, n). */
static inline void fill_ids(int32_t *x, size_t count, int64_t n) {
  g_draw++;
  for (size_t i = 0; i < count; i++) {
    dt_rand4 r = draw4(i);
    x[i] = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)n);
  }
}

static inline int64_t rand_below(int64_t n) {
  g_draw++;
  dt_rand4 r = draw4(0);
  return (int64_t)dt_below64(r.v[0], r.v[1], (uint64_t)n);
}

/* `count` distinct integers from [0, n), in random order. */
static inline void fill_unique_ids(int32_t *x, size_t count, int64_t n) {
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

static inline void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static inline float *fnew(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

/* ---- one buffer on two backends ---- */

typedef struct {
  void *a, *b; /* on the reference (CPU) and the tested backend */
  dt_backend *ba, *bb;
  size_t bytes;
} pair;

static inline pair pair_on(dt_backend *ba, dt_backend *bb, const void *host, size_t bytes) {
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

static inline pair pair_new(const void *host, size_t bytes) { return pair_on(g_cpu, g_gpu, host, bytes); }

static inline void pair_read(pair p, void *host_a, void *host_b) {
  OK(p.ba->download(p.ba, host_a, p.a, p.bytes));
  OK(p.bb->download(p.bb, host_b, p.b, p.bytes));
}

static inline void pair_free(pair *p) {
  p->ba->free(p->ba, p->a);
  p->bb->free(p->bb, p->b);
  p->a = p->b = NULL;
}

/* ---- comparisons ---- */

/* |got - ref| <= tol * scale[i] for every element, where scale[i] is the
 * magnitude the error of element i is measured against. NaN in the
 * reference (a poisoned element the op must not touch) must be NaN in
 * `got` too; a NaN in `got` elsewhere (never written) fails. */
static inline int within(const char *what, const float *ref, const float *got, const double *scale, size_t n,
                         double tol) {
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
static inline int close_enough(const char *what, const float *ref, const float *got, size_t n, double tol) {
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

static inline int same_i32(const char *what, const int32_t *ref, const int32_t *got, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ref[i] != got[i]) {
      printf("  %-34s differs at %zu: cpu %d gpu %d  FAILED\n", what, i, ref[i], got[i]);
      return 0;
    }
  printf("  %-34s n=%-8zu identical\n", what, n);
  return 1;
}

static inline int same_i64(const char *what, const int64_t *ref, const int64_t *got, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ref[i] != got[i]) {
      printf("  %-34s differs at %zu: cpu %lld gpu %lld  FAILED\n", what, i, (long long)ref[i], (long long)got[i]);
      return 0;
    }
  printf("  %-34s n=%-8zu identical\n", what, n);
  return 1;
}

static inline int same_bits(const char *what, const void *a, const void *b, size_t bytes) {
  int same = memcmp(a, b, bytes) == 0;
  printf("  %-34s %s\n", what, same ? "same bits on a second run" : "DIFFERENT bits on a second run  FAILED");
  return same;
}

/* Reads a float pair and compares it. */
static inline void check_pair(const char *what, pair p, double tol) {
  size_t n = p.bytes / sizeof(float);
  float *ha = fnew(n), *hb = fnew(n);
  pair_read(p, ha, hb);
  int ok = close_enough(what, ha, hb, n, tol);
  free(ha);
  free(hb);
  assert_true(ok);
}

/* Reads a float pair and compares it against per-element scales. */
static inline void check_pair_scaled(const char *what, pair p, const double *scale, double tol) {
  size_t n = p.bytes / sizeof(float);
  float *ha = fnew(n), *hb = fnew(n);
  pair_read(p, ha, hb);
  int ok = within(what, ha, hb, scale, n, tol);
  free(ha);
  free(hb);
  assert_true(ok);
}

#endif
