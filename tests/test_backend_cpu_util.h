/* test_backend_cpu_util.h: helpers shared by the CPU backend's tests.
 *
 * The CPU backend's memory is host memory, so the tests fill and read
 * backend buffers directly. Gradients are checked against central finite
 * differences of a double-precision reference objective written in each
 * test (L = <dout, f(x)>, all parameters packed into one double vector), so
 * the reference itself has ~1e-10 relative error and the tolerance measures
 * only the float32 op under test.
 */
#ifndef DTRAIN_TEST_BACKEND_CPU_UTIL_H
#define DTRAIN_TEST_BACKEND_CPU_UTIL_H

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

/* ---- a backend and its allocations, freed together ---- */

enum { TB_MAX_ALLOCS = 256 };
typedef struct {
  dt_backend *be;
  void *ptrs[TB_MAX_ALLOCS];
  int n;
} tb_ctx;

static inline void tb_open(tb_ctx *t, int threads) {
  memset(t, 0, sizeof *t);
  int rc = dt_backend_cpu_create(threads, &t->be);
  if (rc) fail_msg("dt_backend_cpu_create: %s", dt_error_message());
}

static inline void *tb_alloc(tb_ctx *t, size_t bytes) {
  assert_true(t->n < TB_MAX_ALLOCS);
  void *p = NULL;
  if (dt_backend_alloc(t->be, bytes, &p)) fail_msg("alloc: %s", dt_error_message());
  t->ptrs[t->n++] = p;
  return p;
}
static inline float *tb_floats(tb_ctx *t, int64_t n) { return tb_alloc(t, (size_t)n * sizeof(float)); }
static inline int32_t *tb_ints(tb_ctx *t, int64_t n) { return tb_alloc(t, (size_t)n * sizeof(int32_t)); }
static inline double *tb_doubles(tb_ctx *t, int64_t n) { return tb_alloc(t, (size_t)n * sizeof(double)); }

static inline void tb_close(tb_ctx *t) {
  for (int i = 0; i < t->n; i++) t->be->free(t->be, t->ptrs[i]);
  t->be->destroy(t->be);
  memset(t, 0, sizeof *t);
}

/* Asserts an op returned 0, printing its message otherwise. */
#define TB_OK(call)                                                                     \
  do {                                                                                  \
    int tb_rc_ = (call);                                                                \
    if (tb_rc_ != 0) fail_msg("%s failed (%d): %s", #call, tb_rc_, dt_error_message()); \
  } while (0)

/* ---- deterministic random numbers (xorshift64*) ---- */

typedef struct {
  uint64_t s;
} tb_rng;

static inline uint64_t tb_next(tb_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1DULL;
}
static inline tb_rng tb_seed(uint64_t seed) {
  tb_rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
  return r;
}
/* uniform float in [lo, hi) (exactly representable, so float and double
 * copies agree) */
static inline float tb_uniform(tb_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)(tb_next(r) >> 40) * (1.0f / 16777216.0f);
}
static inline int64_t tb_below(tb_rng *r, int64_t n) { return (int64_t)(tb_next(r) % (uint64_t)n); }

static inline void tb_fill(tb_rng *r, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) x[i] = tb_uniform(r, lo, hi);
}
/* values with |x| in [gap, hi): away from a kink at 0 (ReLU) */
static inline void tb_fill_away0(tb_rng *r, float *x, int64_t n, float gap, float hi) {
  for (int64_t i = 0; i < n; i++) {
    float m = tb_uniform(r, gap, hi);
    x[i] = (tb_next(r) & 1) ? m : -m;
  }
}

static inline void tb_to_double(double *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = (double)src[i];
}
static inline void tb_to_float(float *dst, const double *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* ---- errors ---- */

/* max_i |got - want| / max(max_i |want|, floor): error relative to the
 * scale of the reference, so near-zero entries do not dominate. */
static inline double tb_rel_err(const float *got, const double *want, int64_t n, double floor) {
  double num = 0.0, den = floor;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (d > num || d != d) num = d != d ? INFINITY : d;
    if (fabs(want[i]) > den) den = fabs(want[i]);
  }
  return num / den;
}

/* Prints and asserts one comparison (the printed value is the evidence). */
#define TB_EXPECT_ERR(what, err, tol)                                                                      \
  do {                                                                                                     \
    double tb_e_ = (err);                                                                                  \
    print_message("  %-44s rel err %.2e (tol %.0e)\n", (what), tb_e_, (double)(tol));                      \
    if (!(tb_e_ <= (tol))) fail_msg("%s: relative error %.3e exceeds %.1e", (what), tb_e_, (double)(tol)); \
  } while (0)

/* ---- finite differences ---- */

typedef double (*tb_objective)(const double *p, const void *ctx);

/* g[i] = (f(p + h e_i) - f(p - h e_i)) / 2h for i < n; p is restored. */
static inline void tb_fd_gradient(tb_objective f, const void *ctx, double *p, int64_t n, double h, double *g) {
  for (int64_t i = 0; i < n; i++) {
    double x = p[i];
    p[i] = x + h;
    double fp = f(p, ctx);
    p[i] = x - h;
    double fm = f(p, ctx);
    p[i] = x;
    g[i] = (fp - fm) / (2.0 * h);
  }
}

/* Finite-difference step for the double references: truncation error
 * ~h^2 = 1e-8 relative, rounding ~1e-16/h = 1e-12. */
#define TB_FD_H 1e-4
/* Float32 ops against the double references. */
#define TB_TOL_FWD 2e-6
#define TB_TOL_GRAD 1e-5

static inline int tb_bits_equal(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

#endif
