/* The vectorisable transcendental helpers of op_math.h (dt_exp, dt_sigmoid,
 * dt_tanh) against double-precision libm over their whole useful range:
 * errors in float ulps of the true value, saturation, and NaN passing. */
#include "dtrain/op_math.h"
#include "test_backend_cpu_util.h"

/* |got - want| in units of the float spacing at want */
static double ulps(float got, double want) {
  /* below the smallest normal float the spacing is fixed (and ilogb(0) is
   * INT_MIN) */
  double spacing = fabs(want) < 1.1754943508222875e-38 ? ldexp(1.0, -149) : ldexp(1.0, ilogb((float)want) - 23);
  return fabs((double)got - want) / spacing;
}

typedef float (*unary_f)(float);
typedef double (*unary_d)(double);

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
static float exp_f(float x) { return dt_exp(x); }
static float sigmoid_f(float x) { return dt_sigmoid(x); }
static float tanh_f(float x) { return dt_tanh(x); }

/* max ulp error over n points evenly spread over [lo, hi] */
static double max_ulps(unary_f f, unary_d ref, double lo, double hi, int n, double *worst_x) {
  double worst = 0.0;
  for (int i = 0; i <= n; i++) {
    float x = (float)(lo + (hi - lo) * i / n);
    double e = ulps(f(x), ref((double)x));
    if (e > worst) {
      worst = e;
      *worst_x = x;
    }
  }
  return worst;
}

static void expect_ulps(const char *what, unary_f f, unary_d ref, double lo, double hi, double tol) {
  double wx = 0.0, e = max_ulps(f, ref, lo, hi, 2000000, &wx);
  print_message("  %-34s max %.2f ulp at x=%.6g (tol %.0f)\n", what, e, wx, tol);
  if (!(e <= tol)) fail_msg("%s: %.2f ulp at x=%g", what, e, wx);
}

static void test_exp_accuracy(void **state) {
  (void)state;
  expect_ulps("dt_exp on [-87, 88]", exp_f, exp, -87.0, 88.0, 2.0);
  expect_ulps("dt_exp on [-1, 1]", exp_f, exp, -1.0, 1.0, 2.0);
  /* saturation keeps results finite and normal; NaN passes through */
  assert_true(dt_exp(-1000.0f) > 0.0f && dt_exp(-1000.0f) == dt_exp(-87.0f));
  assert_true(isfinite(dt_exp(1000.0f)) && dt_exp(INFINITY) == dt_exp(88.0f));
  assert_true(isnan(dt_exp(NAN)));
}

static void test_sigmoid_and_tanh_accuracy(void **state) {
  (void)state;
  expect_ulps("dt_sigmoid on [-30, 30]", sigmoid_f, sigmoid_d, -30.0, 30.0, 3.0);
  expect_ulps("dt_tanh on [-12, 12]", tanh_f, tanh, -12.0, 12.0, 3.0);
  expect_ulps("dt_tanh near 0 [-1e-3, 1e-3]", tanh_f, tanh, -1e-3, 1e-3, 3.0);
  expect_ulps("dt_tanh around the split 0.625", tanh_f, tanh, 0.6, 0.65, 3.0);
  assert_true(dt_sigmoid(INFINITY) == 1.0f && dt_sigmoid(-INFINITY) < 1e-37f);
  assert_true(dt_tanh(INFINITY) == 1.0f && dt_tanh(-INFINITY) == -1.0f && dt_tanh(0.0f) == 0.0f);
  assert_true(dt_tanh(60.0f) == 1.0f && dt_tanh(-60.0f) == -1.0f);
  assert_true(isnan(dt_sigmoid(NAN)) && isnan(dt_tanh(NAN)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exp_accuracy),
      cmocka_unit_test(test_sigmoid_and_tanh_accuracy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
