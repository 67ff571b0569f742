/* GRU time step (gate math of dt_gru_unit_fwd/bwd), one sequence per row.
 * The matrix products around it are gemm calls made by the model. The row
 * functions take their optional-pointer choices as constants, so each call
 * site compiles to a branch-free loop that vectorises (op_math's dt_exp and
 * dt_tanh are branch-free for this reason). */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

/* transcendental work per unit is about that of 20 adds */
enum { GRU_UNIT_WORK = 20 };

static inline void gru_fwd_row(const float *restrict x, const float *restrict hh, const float *restrict hp,
                               float *restrict ho, float *restrict c, int h, const int has_hp) {
  for (int j = 0; j < h; j++) {
    float r, z, n;
    float hpj = has_hp ? hp[j] : 0.0f;
    ho[j] = dt_gru_unit_fwd(x[j], x[h + j], x[2 * h + j], hh[j], hh[h + j], hh[2 * h + j], hpj, &r, &z, &n);
    c[j] = r;
    c[h + j] = z;
    c[2 * h + j] = n;
    c[3 * h + j] = hh[2 * h + j];
  }
}

int dt_cpu_gru_step_fwd(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_fwd", "negative shape a=%lld h=%d", (long long)a, h);
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t s = 0; s < a; s++) {
    if (h_prev)
      gru_fwd_row(xg + s * 3 * h, hg + s * 3 * h, h_prev + s * h, h_out + s * h, cache + s * 4 * h, h, 1);
    else
      gru_fwd_row(xg + s * 3 * h, hg + s * 3 * h, NULL, h_out + s * h, cache + s * 4 * h, h, 0);
  }
  return 0;
}

static inline void gru_bwd_row(const float *restrict dh, const float *restrict hp, const float *restrict c,
                               float *restrict dx, float *restrict dhh, float *restrict dprev, int h,
                               const int has_hp, const int has_dprev) {
  for (int j = 0; j < h; j++) {
    float hpj = has_hp ? hp[j] : 0.0f;
    float direct = dt_gru_unit_bwd(dh[j], c[j], c[h + j], c[2 * h + j], c[3 * h + j], hpj, &dx[j], &dx[h + j],
                                   &dx[2 * h + j], &dhh[j], &dhh[h + j], &dhh[2 * h + j]);
    if (has_dprev) dprev[j] += direct;
  }
}

int dt_cpu_gru_step_bwd(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h) {
  DT_CPU_REQUIRE(a >= 0 && h >= 0, "gru_step_bwd", "negative shape a=%lld h=%d", (long long)a, h);
  int nt = dt_cpu_threads_for(be, a * h * GRU_UNIT_WORK);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t s = 0; s < a; s++) {
    const float *dh = dh_out + s * h, *c = cache + s * 4 * h;
    float *dx = dxg + s * 3 * h, *dhh = dhg + s * 3 * h;
    if (h_prev && dh_prev)
      gru_bwd_row(dh, h_prev + s * h, c, dx, dhh, dh_prev + s * h, h, 1, 1);
    else if (h_prev)
      gru_bwd_row(dh, h_prev + s * h, c, dx, dhh, NULL, h, 1, 0);
    else if (dh_prev)
      gru_bwd_row(dh, NULL, c, dx, dhh, dh_prev + s * h, h, 0, 1);
    else
      gru_bwd_row(dh, NULL, c, dx, dhh, NULL, h, 0, 0);
  }
  return 0;
}
