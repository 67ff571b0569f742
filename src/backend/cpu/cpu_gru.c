/* GRU time step, one sequence per row: the per-unit math of
 * dt_gru_unit_fwd/bwd in the kernel set's vectorised row loops
 * (cpu_kernels.inc). The matrix products around it are gemm calls made by
 * the model. */
#include "backend/cpu/cpu_ops.h"

/* transcendental work per unit is about that of 20 adds */
enum { GRU_UNIT_WORK = 20 };

int dt_cpu_gru_step_fwd(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_fwd", "negative shape a=%lld h=%d", (long long)a, h);
  const dt_cpu_kernels *k = dt_cpu(be)->kern;
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel num_threads(nt)
  {
    int64_t s0, s1;
    dt_cpu_share(a, &s0, &s1);
    k->gru_fwd_rows(xg, hg, h_prev, h_out, cache, s0, s1, h);
  }
  return 0;
}

int dt_cpu_gru_step_bwd(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_bwd", "negative shape a=%lld h=%d", (long long)a, h);
  const dt_cpu_kernels *k = dt_cpu(be)->kern;
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel num_threads(nt)
  {
    int64_t s0, s1;
    dt_cpu_share(a, &s0, &s1);
    k->gru_bwd_rows(dh_out, h_prev, cache, dxg, dhg, dh_prev, s0, s1, h);
  }
  return 0;
}
