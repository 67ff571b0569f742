/* The gate: softmax over three logits per row and the anti-collapse
 * regularisers of MODEL.md "Loss". Rows number the batch (thousands), so
 * these loops are cheap and run on one thread. */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

int dt_cpu_softmax3_fwd(dt_backend *be, const float *logits, float *alpha, int64_t n) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0, "softmax3_fwd", "negative n=%lld", (long long)n);
  for (int64_t i = 0; i < n; i++) dt_softmax3(logits + 3 * i, alpha + 3 * i);
  return 0;
}

int dt_cpu_softmax3_bwd(dt_backend *be, const float *alpha, const float *dalpha, float *dlogits, int64_t n) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0, "softmax3_bwd", "negative n=%lld", (long long)n);
  for (int64_t i = 0; i < n; i++) dt_softmax3_bwd(alpha + 3 * i, dalpha + 3 * i, dlogits + 3 * i);
  return 0;
}

int dt_cpu_gate_reg(dt_backend *be, const float *alpha, int64_t n, float lambda_ent, float lambda_bal,
                    const float *mean_host, int64_t n_global, float *dalpha, double *neg_entropy_sum_host) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0 && n_global >= n, "gate_reg", "n=%lld rows with n_global=%lld", (long long)n,
                 (long long)n_global);
  double neg_ent = 0.0;
  if (n_global > 0) {
    const float ent_scale = dt_gate_ent_scale(lambda_ent, n_global);
    float bal[3];
    for (int k = 0; k < 3; k++) bal[k] = dt_gate_bal_grad(lambda_bal, mean_host[k], n_global);
    for (int64_t i = 0; i < n; i++) {
      for (int k = 0; k < 3; k++) {
        float a = alpha[3 * i + k];
        neg_ent += (double)dt_neg_entropy(a);
        dalpha[3 * i + k] += dt_gate_reg_grad(a, ent_scale, bal[k]);
      }
    }
  }
  *neg_entropy_sum_host = neg_ent;
  return 0;
}
