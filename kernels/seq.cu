// seq.cu: the SASRec encoder's row kernels: layer norm (one warp per row;
// the backward's weight and bias gradients as bias_grad's fixed chunks of
// rows), the input embedding (one block per window) and the positional
// gradient (one thread per (position, column), windows added in order,
// exactly the CPU backend's order). Per-element math: op_math.h.
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

constexpr int kWarps = dtk::kThreads / 32;

__global__ void layer_norm_fwd_kernel(const float *x, const float *w, const float *b, float eps, int64_t n, int d,
                                      float *y, float *mean, float *rstd) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarps;
  const float inv_d = 1.0f / (float)d;
  // the row is uniform across the warp: every lane reaches the shuffles
  for (int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); r < n; r += warps) {
    const float *xr = x + r * d;
    float s = 0.0f;
    for (int c = lane; c < d; c += 32) s += xr[c];
    const float m = dtk::warp_sum(s) * inv_d;
    float v = 0.0f;
    for (int c = lane; c < d; c += 32) v += (xr[c] - m) * (xr[c] - m);
    const float rs = dt_layer_norm_rstd(dtk::warp_sum(v) * inv_d, eps);
    for (int c = lane; c < d; c += 32) y[r * d + c] = dt_layer_norm_fwd(xr[c], m, rs, w[c], b[c]);
    if (lane == 0) {
      mean[r] = m;
      rstd[r] = rs;
    }
  }
}

__global__ void layer_norm_bwd_dx_kernel(const float *dy, const float *x, const float *w, const float *mean,
                                         const float *rstd, int64_t n, int d, float *dx, int accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarps;
  const float inv_d = 1.0f / (float)d;
  for (int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); r < n; r += warps) {
    const float *xr = x + r * d, *g = dy + r * d;
    const float m = mean[r], rs = rstd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < d; c += 32) {
      const float gw = g[c] * w[c];
      sg += gw;
      sgx += gw * ((xr[c] - m) * rs);
    }
    const float mg = dtk::warp_sum(sg) * inv_d, mgx = dtk::warp_sum(sgx) * inv_d;
    for (int c = lane; c < d; c += 32) {
      const float v = dt_layer_norm_bwd(g[c] * w[c], (xr[c] - m) * rs, rs, mg, mgx);
      dx[r * d + c] = accumulate ? dx[r * d + c] + v : v;
    }
  }
}

// Pass 1 of the weight and bias gradients, as bias_grad_partials_kernel:
// block (x: 32 columns, y: 8 row lanes) sums chunk blockIdx.y's
// DTK_BIAS_CHUNK rows of dy xhat and dy; each lane in ascending rows, then
// lane 0 adds the 8 lanes in order. dtk_bias_grad_finish adds the chunks.
constexpr int kLanes = 8;
__global__ void layer_norm_bwd_partials_kernel(const float *dy, const float *x, const float *mean, const float *rstd,
                                               int64_t n, int d, float *part_w, float *part_b) {
  __shared__ float lanes_w[kLanes][32], lanes_b[kLanes][32];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = (int64_t)blockIdx.y * DTK_BIAS_CHUNK;
  const int64_t r1 = r0 + DTK_BIAS_CHUNK < n ? r0 + DTK_BIAS_CHUNK : n;
  float aw = 0.0f, ab = 0.0f;
  if (c < d)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kLanes) {
      const float g = dy[r * d + c];
      aw += g * ((x[r * d + c] - mean[r]) * rstd[r]);
      ab += g;
    }
  lanes_w[threadIdx.y][threadIdx.x] = aw;
  lanes_b[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < d) {
    float sw = 0.0f, sb = 0.0f;
    for (int l = 0; l < kLanes; l++) {
      sw += lanes_w[l][threadIdx.x];
      sb += lanes_b[l][threadIdx.x];
    }
    part_w[(int64_t)blockIdx.y * d + c] = sw;
    part_b[(int64_t)blockIdx.y * d + c] = sb;
  }
}

// One block per window (grid-stride over windows), its threads over the
// window's len x d elements.
__global__ void seq_embed_kernel(const float *table, const int32_t *ids, float scale, const float *pos,
                                 const int32_t *offsets, int64_t n_seq, int d, float *out) {
  for (int64_t s = blockIdx.x; s < n_seq; s += gridDim.x) {
    const int64_t t0 = offsets[s], count = ((int64_t)offsets[s + 1] - t0) * d;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t p = e / d;
      const int c = (int)(e - p * d);
      out[t0 * d + e] = dt_seq_embed(table[(int64_t)ids[t0 + p] * d + c], scale, pos[p * d + c]);
    }
  }
}

// dpos[p, c] += sum over windows s (in order) with len_s > p of
// dx[offsets[s] + p, c]: one thread per (p, c), p < max_len.
__global__ void seq_pos_grad_kernel(const float *dx, const int32_t *offsets, int64_t n_seq, int max_len, int d,
                                    float *dpos) {
  const int64_t total = (int64_t)max_len * d;
  for (int64_t q = dtk::global_thread(); q < total; q += dtk::grid_threads()) {
    const int64_t p = q / d;
    const int c = (int)(q - p * d);
    float acc = 0.0f;
    for (int64_t s = 0; s < n_seq; s++) {
      const int64_t t0 = offsets[s];
      if (offsets[s + 1] - t0 > p) acc += dx[(t0 + p) * d + c];
    }
    dpos[q] += acc;
  }
}

inline unsigned grid_warps(int64_t rows) { return dtk::grid_for(rows, kWarps); }

}  // namespace

extern "C" {

cudaError_t dtk_layer_norm_fwd(cudaStream_t s, const float *x, const float *w, const float *b, float eps, int64_t n,
                               int d, float *y, float *mean, float *rstd) {
  DTK_LAUNCH(grid_warps(n), dtk::kThreads, s, layer_norm_fwd_kernel)(x, w, b, eps, n, d, y, mean, rstd);
  return dtk::after_launch(s);
}

cudaError_t dtk_layer_norm_bwd_dx(cudaStream_t s, const float *dy, const float *x, const float *w, const float *mean,
                                  const float *rstd, int64_t n, int d, float *dx, int accumulate) {
  DTK_LAUNCH(grid_warps(n), dtk::kThreads, s, layer_norm_bwd_dx_kernel)(dy, x, w, mean, rstd, n, d, dx, accumulate);
  return dtk::after_launch(s);
}

cudaError_t dtk_layer_norm_bwd_partials(cudaStream_t s, const float *dy, const float *x, const float *mean,
                                        const float *rstd, int64_t n, int d, float *part_w, float *part_b) {
  const int64_t chunks = (n + DTK_BIAS_CHUNK - 1) / DTK_BIAS_CHUNK;
  if (chunks > 65535) return cudaErrorInvalidValue;  // grid.y limit: n <= 33.5 M rows
  dim3 grid((unsigned)((d + 31) / 32), (unsigned)chunks);
  dim3 block(32, kLanes);
  DTK_LAUNCH(grid, block, s, layer_norm_bwd_partials_kernel)(dy, x, mean, rstd, n, d, part_w, part_b);
  return dtk::after_launch(s);
}

cudaError_t dtk_seq_embed(cudaStream_t s, const float *table, const int32_t *ids, float scale, const float *pos,
                          const int32_t *offsets, int64_t n_seq, int d, float *out) {
  DTK_LAUNCH(dtk::grid_rows(n_seq), dtk::kThreads, s, seq_embed_kernel)(table, ids, scale, pos, offsets, n_seq, d, out);
  return dtk::after_launch(s);
}

cudaError_t dtk_seq_pos_grad(cudaStream_t s, const float *dx, const int32_t *offsets, int64_t n_seq, int max_len, int d,
                             float *dpos) {
  DTK_LAUNCH(dtk::grid_for((int64_t)max_len * d), dtk::kThreads, s, seq_pos_grad_kernel)
  (dx, offsets, n_seq, max_len, d, dpos);
  return dtk::after_launch(s);
}

}  // extern "C"
