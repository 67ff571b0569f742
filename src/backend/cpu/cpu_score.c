/* Scores and the BPR loss: dot products of user and candidate vectors
 * (rowdot), the thesis model's representation mixture (mix3), v3's score
 * mixture (score_mix) and BPR over [positive, negatives] score rows. */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

int dt_cpu_bpr(dt_backend *be, const float *scores, int64_t n, int c, float inv_pairs, float *dscores,
               double *loss_sum_host) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0 && c >= 1, "bpr", "bad shape [%lld, %d] (column 0 is the positive)", (long long)n, c);
  double loss = 0.0; /* one thread, row order: deterministic */
  for (int64_t i = 0; i < n; i++) {
    const float *s = scores + i * c;
    float *ds = dscores + i * c;
    float dpos = 0.0f;
    for (int j = 1; j < c; j++) {
      float dsp;
      loss += (double)dt_bpr_pair(s[0], s[j], &dsp);
      ds[j] = -inv_pairs * dsp;
      dpos += dsp;
    }
    ds[0] = inv_pairs * dpos;
  }
  *loss_sum_host = loss;
  return 0;
}

static inline float dot(const float *restrict x, const float *restrict y, int d) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int k = 0; k < d; k++) s += x[k] * y[k];
  return s;
}

int dt_cpu_rowdot_fwd(dt_backend *be, const float *u, const float *v, float *out, int64_t n, int c, int d) {
  DT_CPU_REQUIRE(n >= 0 && c >= 0 && d >= 0, "rowdot_fwd", "negative shape n=%lld c=%d d=%d", (long long)n, c, d);
  int nt = dt_cpu_threads_for(be, n * c * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < c; j++) out[i * c + j] = dot(u + i * d, v + (i * c + j) * d, d);
  return 0;
}

int dt_cpu_rowdot_bwd(dt_backend *be, const float *u, const float *v, const float *dout, float *du, float *dv,
                      int64_t n, int c, int d) {
  DT_CPU_REQUIRE(n >= 0 && c >= 0 && d >= 0, "rowdot_bwd", "negative shape n=%lld c=%d d=%d", (long long)n, c, d);
  int nt = dt_cpu_threads_for(be, n * c * d * (du && dv ? 2 : 1));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *restrict ui = u + i * d;
    float *restrict dui = du ? du + i * d : NULL;
    for (int j = 0; j < c; j++) {
      float g = dout[i * c + j];
      const float *restrict vij = v + (i * c + j) * d;
      if (dui)
        for (int k = 0; k < d; k++) dui[k] += g * vij[k];
      if (dv) {
        float *restrict dvij = dv + (i * c + j) * d;
        for (int k = 0; k < d; k++) dvij[k] += g * ui[k];
      }
    }
  }
  return 0;
}

int dt_cpu_mix3_fwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc, float *z,
                    int64_t n, int c, int d) {
  DT_CPU_REQUIRE(n >= 0 && c >= 0 && d >= 0, "mix3_fwd", "negative shape n=%lld c=%d d=%d", (long long)n, c, d);
  int nt = dt_cpu_threads_for(be, n * c * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float as = alpha[3 * i], ad = alpha[3 * i + 1], ac = alpha[3 * i + 2];
    const float *restrict hdi = hd ? hd + i * d : NULL;
    for (int j = 0; j < c; j++) {
      int64_t row = (i * c + j) * d;
      float *restrict zr = z + row;
      const float *restrict hsr = hs ? hs + row : NULL;
      const float *restrict hcr = hc ? hc + row : NULL;
      /* the same sum order as with all towers present; an absent one adds 0 */
      for (int k = 0; k < d; k++) {
        float acc = hsr ? as * hsr[k] : 0.0f;
        if (hdi) acc += ad * hdi[k];
        if (hcr) acc += ac * hcr[k];
        zr[k] = acc;
      }
    }
  }
  return 0;
}

int dt_cpu_mix3_bwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc,
                    const float *dz, float *dalpha, float *dhs, float *dhd, float *dhc, int64_t n, int c, int d) {
  DT_CPU_REQUIRE(n >= 0 && c >= 0 && d >= 0, "mix3_bwd", "negative shape n=%lld c=%d d=%d", (long long)n, c, d);
  int nt = dt_cpu_threads_for(be, n * c * d * 3);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float as = alpha[3 * i], ad = alpha[3 * i + 1], ac = alpha[3 * i + 2];
    const float *restrict hdi = hd ? hd + i * d : NULL;
    float *restrict dhdi = dhd ? dhd + i * d : NULL;
    float da_s = 0.0f, da_d = 0.0f, da_c = 0.0f;
    for (int j = 0; j < c; j++) {
      int64_t row = (i * c + j) * d;
      const float *restrict g = dz + row;
      if (hs) da_s += dot(g, hs + row, d);
      if (hdi) da_d += dot(g, hdi, d);
      if (hc) da_c += dot(g, hc + row, d);
      if (dhs) {
        float *restrict w = dhs + row;
        for (int k = 0; k < d; k++) w[k] += as * g[k];
      }
      if (dhc) {
        float *restrict w = dhc + row;
        for (int k = 0; k < d; k++) w[k] += ac * g[k];
      }
      if (dhdi)
        for (int k = 0; k < d; k++) dhdi[k] += ad * g[k];
    }
    if (dalpha) {
      dalpha[3 * i] = da_s;
      dalpha[3 * i + 1] = da_d;
      dalpha[3 * i + 2] = da_c;
    }
  }
  return 0;
}

int dt_cpu_score_mix_fwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                         const float *bias, float *s, int64_t n, int c) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0 && c >= 0, "score_mix_fwd", "negative shape [%lld, %d]", (long long)n, c);
  for (int64_t i = 0; i < n; i++) {
    const float as = alpha[3 * i], ad = alpha[3 * i + 1], ac = alpha[3 * i + 2];
    for (int j = 0; j < c; j++) {
      int64_t e = i * c + j;
      float acc = ss ? as * ss[e] : 0.0f;
      if (sd) acc += ad * sd[e];
      if (sc) acc += ac * sc[e];
      if (bias) acc += bias[e];
      s[e] = acc;
    }
  }
  return 0;
}

int dt_cpu_score_mix_bwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                         const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int c) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0 && c >= 0, "score_mix_bwd", "negative shape [%lld, %d]", (long long)n, c);
  const float *sk[3] = {ss, sd, sc};
  float *dsk[3] = {dss, dsd, dsc};
  for (int64_t i = 0; i < n; i++) {
    for (int k = 0; k < 3; k++) {
      float a = alpha[3 * i + k], acc = 0.0f;
      for (int j = 0; j < c; j++) {
        int64_t e = i * c + j;
        if (sk[k]) acc += ds[e] * sk[k][e];
        if (dsk[k]) dsk[k][e] = a * ds[e];
      }
      if (dalpha) dalpha[3 * i + k] = acc;
    }
  }
  return 0;
}
