// gru.cu: the GRU cell's gates, one thread per (sequence, hidden unit),
// calling the same dt_gru_unit_fwd/bwd as the CPU backend. The matrix
// products around them (x W_ih^T, h W_hh^T and their gradients) stay in
// cuBLAS, issued by the caller through the gemm op.
//
// Layouts, row-major: xg, hg, dxg, dhg [a, 3h] in gate order (r, z, n);
// cache [a, 4h] = (r, z, n, hg_n); h_prev, h_out, dh_out, dh_prev [a, h].
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

__global__ void gru_fwd_kernel(const float *xg, const float *hg, const float *h_prev, float *h_out, float *cache,
                               int64_t a, int h) {
  const int64_t total = a * h;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / h;
    const int u = (int)(t - i * h);
    const float *x = xg + i * 3 * h;
    const float *g = hg + i * 3 * h;
    const float hp = h_prev ? h_prev[t] : 0.0f;
    float r, z, n;
    h_out[t] = dt_gru_unit_fwd(x[u], x[h + u], x[2 * h + u], g[u], g[h + u], g[2 * h + u], hp, &r, &z, &n);
    float *c = cache + i * 4 * h;
    c[u] = r;
    c[h + u] = z;
    c[2 * h + u] = n;
    c[3 * h + u] = g[2 * h + u];
  }
}

__global__ void gru_bwd_kernel(const float *dh_out, const float *h_prev, const float *cache, float *dxg, float *dhg,
                               float *dh_prev, int64_t a, int h) {
  const int64_t total = a * h;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t i = t / h;
    const int u = (int)(t - i * h);
    const float *c = cache + i * 4 * h;
    const float hp = h_prev ? h_prev[t] : 0.0f;
    float dxr, dxz, dxn, dhr, dhz, dhn;
    const float direct =
        dt_gru_unit_bwd(dh_out[t], c[u], c[h + u], c[2 * h + u], c[3 * h + u], hp, &dxr, &dxz, &dxn, &dhr, &dhz, &dhn);
    float *dx = dxg + i * 3 * h;
    float *dg = dhg + i * 3 * h;
    dx[u] = dxr;
    dx[h + u] = dxz;
    dx[2 * h + u] = dxn;
    dg[u] = dhr;
    dg[h + u] = dhz;
    dg[2 * h + u] = dhn;
    if (dh_prev) dh_prev[t] += direct;
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_gru_fwd(cudaStream_t s, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h) {
  DTK_LAUNCH(dtk::grid_for(a * h), dtk::kThreads, s, gru_fwd_kernel)(xg, hg, h_prev, h_out, cache, a, h);
  return dtk::after_launch(s);
}

cudaError_t dtk_gru_bwd(cudaStream_t s, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h) {
  DTK_LAUNCH(dtk::grid_for(a * h), dtk::kThreads, s, gru_bwd_kernel)(dh_out, h_prev, cache, dxg, dhg, dh_prev, a, h);
  return dtk::after_launch(s);
}

}  // extern "C"
