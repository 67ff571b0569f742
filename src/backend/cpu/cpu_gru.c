/* GRU time step (gate math of dt_gru_unit_fwd/bwd), one sequence per row.
 * The matrix products around it are gemm calls made by the model. */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

/* transcendental work per unit is about that of 20 adds */
enum { GRU_UNIT_WORK = 20 };

int dt_cpu_gru_step_fwd(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_fwd", "negative shape a=%lld h=%d", (long long)a, h);
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t s = 0; s < a; s++) {
    const float *restrict x = xg + s * 3 * h;
    const float *restrict hh = hg + s * 3 * h;
    const float *restrict hp = h_prev ? h_prev + s * h : NULL;
    float *restrict ho = h_out + s * h;
    float *restrict c = cache + s * 4 * h;
    for (int j = 0; j < h; j++) {
      float r, z, n;
      ho[j] = dt_gru_unit_fwd(x[j], x[h + j], x[2 * h + j], hh[j], hh[h + j], hh[2 * h + j], hp ? hp[j] : 0.0f, &r,
                              &z, &n);
      c[j] = r;
      c[h + j] = z;
      c[2 * h + j] = n;
      c[3 * h + j] = hh[2 * h + j];
    }
  }
  return 0;
}

int dt_cpu_gru_step_bwd(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_bwd", "negative shape a=%lld h=%d", (long long)a, h);
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t s = 0; s < a; s++) {
    const float *restrict dh = dh_out + s * h;
    const float *restrict hp = h_prev ? h_prev + s * h : NULL;
    const float *restrict c = cache + s * 4 * h;
    float *restrict dx = dxg + s * 3 * h;
    float *restrict dhh = dhg + s * 3 * h;
    float *restrict dprev = dh_prev ? dh_prev + s * h : NULL;
    for (int j = 0; j < h; j++) {
      float direct = dt_gru_unit_bwd(dh[j], c[j], c[h + j], c[2 * h + j], c[3 * h + j], hp ? hp[j] : 0.0f, &dx[j],
                                     &dx[h + j], &dx[2 * h + j], &dhh[j], &dhh[h + j], &dhh[2 * h + j]);
      if (dprev) dprev[j] += direct;
    }
  }
  return 0;
}
