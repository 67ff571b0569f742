// score.cu: scores and loss: BPR over [n, c] score rows, row-wise dot
// products, the thesis model's representation mixture (mix3) and v3's score
// mixture. Sums over a row run in a fixed order (one thread, or one warp's
// butterfly), never with atomics; bpr's loss total is a deterministic double
// reduction (reduce.cu's partials).
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

constexpr int kWarpsPerBlock = dtk::kThreads / 32;

// Launched with dtk_partial_count(n) blocks of kReduceThreads threads.
__global__ void bpr_kernel(const float *scores, int64_t n, int c, float inv_pairs, float *dscores, double *partials) {
  __shared__ double smem[dtk::kReduceThreads / 32];
  double acc = 0.0;
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float *s = scores + i * c;
    float *ds = dscores + i * c;
    const float sp = s[0];
    float dpos = 0.0f;
    for (int j = 1; j < c; j++) {
      float dsp;
      acc += (double)dt_bpr_pair(sp, s[j], &dsp);
      dpos += dsp;
      ds[j] = -dsp * inv_pairs;
    }
    ds[0] = dpos * inv_pairs;
  }
  acc = dtk::block_sum<double, dtk::kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One warp per (i, j) pair.
__global__ void rowdot_fwd_kernel(const float *u, const float *v, float *out, int64_t n, int c, int d) {
  const int lane = threadIdx.x & 31;
  const int64_t pairs = n * c;
  const int64_t warps = (int64_t)gridDim.x * kWarpsPerBlock;
  for (int64_t q = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); q < pairs; q += warps) {
    const float *ur = u + (q / c) * d;
    const float *vr = v + q * d;
    float acc = 0.0f;
    for (int k = lane; k < d; k += 32) acc += ur[k] * vr[k];
    acc = dtk::warp_sum(acc);
    if (lane == 0) out[q] = acc;
  }
}

// du[i,k] += sum_j dout[i,j] v[i*c+j,k], one thread per (i, k), j ascending.
__global__ void rowdot_bwd_u_kernel(const float *v, const float *dout, float *du, int64_t n, int c, int d) {
  const int64_t total = n * d;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / d;
    const int k = (int)(t - i * d);
    float acc = 0.0f;
    for (int j = 0; j < c; j++) acc += dout[i * c + j] * v[(i * c + j) * d + k];
    du[t] += acc;
  }
}

// dv[i*c+j,k] += dout[i,j] u[i,k], one thread per element.
__global__ void rowdot_bwd_v_kernel(const float *u, const float *dout, float *dv, int64_t n, int c, int d) {
  const int64_t total = n * c * d;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t q = t / d;
    const int k = (int)(t - q * d);
    dv[t] += dout[q] * u[(q / c) * d + k];
  }
}

__global__ void mix3_fwd_kernel(const float *alpha, const float *hs, const float *hd, const float *hc, float *z,
                                int64_t n, int c, int d) {
  const int64_t total = n * c * d;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t q = t / d;
    const int64_t i = q / c;
    const int k = (int)(t - q * d);
    float acc = 0.0f;
    if (hs) acc += alpha[3 * i] * hs[t];
    if (hd) acc += alpha[3 * i + 1] * hd[i * d + k];
    if (hc) acc += alpha[3 * i + 2] * hc[t];
    z[t] = acc;
  }
}

// dalpha[i,:] = (<dz, hs>, <dz, hd>, <dz, hc>) over row i's c candidates:
// one warp per row.
__global__ void mix3_bwd_alpha_kernel(const float *hs, const float *hd, const float *hc, const float *dz, float *dalpha,
                                      int64_t n, int c, int d) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarpsPerBlock;
  for (int64_t i = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); i < n; i += warps) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
    for (int j = 0; j < c; j++) {
      const int64_t q = i * c + j;
      for (int k = lane; k < d; k += 32) {
        const float g = dz[q * d + k];
        if (hs) s0 += g * hs[q * d + k];
        if (hd) s1 += g * hd[i * d + k];
        if (hc) s2 += g * hc[q * d + k];
      }
    }
    s0 = dtk::warp_sum(s0);
    s1 = dtk::warp_sum(s1);
    s2 = dtk::warp_sum(s2);
    if (lane == 0) {
      dalpha[3 * i] = s0;
      dalpha[3 * i + 1] = s1;
      dalpha[3 * i + 2] = s2;
    }
  }
}

__global__ void mix3_bwd_cand_kernel(const float *alpha, int k, const float *dz, float *dh, int64_t n, int c, int d) {
  const int64_t total = n * c * d;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / ((int64_t)c * d);
    dh[t] += alpha[3 * i + k] * dz[t];
  }
}

__global__ void mix3_bwd_user_kernel(const float *alpha, const float *dz, float *dhd, int64_t n, int c, int d) {
  const int64_t total = n * d;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / d;
    const int k = (int)(t - i * d);
    float acc = 0.0f;
    for (int j = 0; j < c; j++) acc += dz[(i * c + j) * d + k];
    dhd[t] += alpha[3 * i + 1] * acc;
  }
}

__global__ void score_mix_fwd_kernel(const float *alpha, const float *ss, const float *sd, const float *sc,
                                     const float *bias, float *out, int64_t n, int c) {
  const int64_t total = n * c;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / c;
    float acc = 0.0f;
    if (ss) acc += alpha[3 * i] * ss[t];
    if (sd) acc += alpha[3 * i + 1] * sd[t];
    if (sc) acc += alpha[3 * i + 2] * sc[t];
    if (bias) acc += bias[t];
    out[t] = acc;
  }
}

__global__ void score_mix_bwd_kernel(const float *alpha, const float *ss, const float *sd, const float *sc,
                                     const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n,
                                     int c) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float a0 = alpha[3 * i], a1 = alpha[3 * i + 1], a2 = alpha[3 * i + 2];
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
    for (int j = 0; j < c; j++) {
      const int64_t t = i * c + j;
      const float g = ds[t];
      if (ss) s0 += g * ss[t];
      if (sd) s1 += g * sd[t];
      if (sc) s2 += g * sc[t];
      if (dss) dss[t] = a0 * g;
      if (dsd) dsd[t] = a1 * g;
      if (dsc) dsc[t] = a2 * g;
    }
    if (dalpha) {
      dalpha[3 * i] = s0;
      dalpha[3 * i + 1] = s1;
      dalpha[3 * i + 2] = s2;
    }
  }
}

inline unsigned grid_warps(int64_t items) { return dtk::grid_for(items, kWarpsPerBlock); }

}  // namespace

extern "C" {

cudaError_t dtk_bpr(cudaStream_t s, const float *scores, int64_t n, int c, float inv_pairs, float *dscores,
                    double *partials) {
  DTK_LAUNCH(dtk_partial_count(n), dtk::kReduceThreads, s, bpr_kernel)(scores, n, c, inv_pairs, dscores, partials);
  return dtk::after_launch(s);
}

cudaError_t dtk_rowdot_fwd(cudaStream_t s, const float *u, const float *v, float *out, int64_t n, int c, int d) {
  DTK_LAUNCH(grid_warps(n * c), dtk::kThreads, s, rowdot_fwd_kernel)(u, v, out, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_rowdot_bwd_u(cudaStream_t s, const float *v, const float *dout, float *du, int64_t n, int c, int d) {
  DTK_LAUNCH(dtk::grid_for(n * d), dtk::kThreads, s, rowdot_bwd_u_kernel)(v, dout, du, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_rowdot_bwd_v(cudaStream_t s, const float *u, const float *dout, float *dv, int64_t n, int c, int d) {
  DTK_LAUNCH(dtk::grid_for(n * c * d), dtk::kThreads, s, rowdot_bwd_v_kernel)(u, dout, dv, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_mix3_fwd(cudaStream_t s, const float *alpha, const float *hs, const float *hd, const float *hc,
                         float *z, int64_t n, int c, int d) {
  DTK_LAUNCH(dtk::grid_for(n * c * d), dtk::kThreads, s, mix3_fwd_kernel)(alpha, hs, hd, hc, z, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_mix3_bwd_alpha(cudaStream_t s, const float *hs, const float *hd, const float *hc, const float *dz,
                               float *dalpha, int64_t n, int c, int d) {
  DTK_LAUNCH(grid_warps(n), dtk::kThreads, s, mix3_bwd_alpha_kernel)(hs, hd, hc, dz, dalpha, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_mix3_bwd_cand(cudaStream_t s, const float *alpha, int k, const float *dz, float *dh, int64_t n, int c,
                              int d) {
  DTK_LAUNCH(dtk::grid_for(n * c * d), dtk::kThreads, s, mix3_bwd_cand_kernel)(alpha, k, dz, dh, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_mix3_bwd_user(cudaStream_t s, const float *alpha, const float *dz, float *dhd, int64_t n, int c,
                              int d) {
  DTK_LAUNCH(dtk::grid_for(n * d), dtk::kThreads, s, mix3_bwd_user_kernel)(alpha, dz, dhd, n, c, d);
  return dtk::after_launch(s);
}

cudaError_t dtk_score_mix_fwd(cudaStream_t s, const float *alpha, const float *ss, const float *sd, const float *sc,
                              const float *bias, float *out, int64_t n, int c) {
  DTK_LAUNCH(dtk::grid_for(n * c), dtk::kThreads, s, score_mix_fwd_kernel)(alpha, ss, sd, sc, bias, out, n, c);
  return dtk::after_launch(s);
}

cudaError_t dtk_score_mix_bwd(cudaStream_t s, const float *alpha, const float *ss, const float *sd, const float *sc,
                              const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int c) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, score_mix_bwd_kernel)
  (alpha, ss, sd, sc, ds, dalpha, dss, dsd, dsc, n, c);
  return dtk::after_launch(s);
}

}  // extern "C"
