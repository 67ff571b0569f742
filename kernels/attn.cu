// attn.cu: the kernels around causal multi-head attention's batched GEMMs.
// The host side (cuda_ops_seq.c) pads every (window, head) pair b = s *
// heads + k to the longest window T, so that S = Q K^T, O = P V and the
// backward's products are each one cuBLAS strided-batched GEMM:
//   padded operands [n_seq * heads, T, dh] (rows past the window's length
//   are 0), scores and probabilities [n_seq * heads, T, T].
// The saved probabilities are compact (backend.h: window s at heads *
// sum_{s'<s} len^2, head k's [len, len] matrix at k * len^2); their offsets
// come from a scan of heads * len^2. Softmax rows run one warp per row with
// warp reductions in a fixed order (op_math.h's per-element math).
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

constexpr int kWarps = dtk::kThreads / 32;

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// sizes[s] = heads * len_s^2 for s < n_seq, sizes[n_seq] = 0: an exclusive
// scan turns them into the compact offsets.
__global__ void attn_prob_sizes_kernel(const int32_t *offsets, int64_t n_seq, int heads, int64_t *sizes) {
  for (int64_t s = dtk::global_thread(); s <= n_seq; s += dtk::grid_threads()) {
    const int64_t len = s < n_seq ? (int64_t)offsets[s + 1] - offsets[s] : 0;
    sizes[s] = heads * len * len;
  }
}

// dst[b, p, c] = src[offsets[s] + p, col0 + k * dh + c] for p < len_s, else 0.
__global__ void attn_pad_kernel(const float *src, int ld, int col0, const int32_t *offsets, int64_t n_seq, int heads,
                                int T, int dh, float *dst) {
  const int64_t total = n_seq * heads * (int64_t)T * dh;
  for (int64_t e = dtk::global_thread(); e < total; e += dtk::grid_threads()) {
    const int64_t row = e / dh;  // b * T + p
    const int c = (int)(e - row * dh);
    const int64_t b = row / T;
    const int p = (int)(row - b * T);
    const int64_t s = b / heads;
    const int k = (int)(b - s * heads);
    const int64_t t0 = offsets[s];
    dst[e] = p < offsets[s + 1] - t0 ? src[(t0 + p) * ld + col0 + k * dh + c] : 0.0f;
  }
}

// The inverse: dst[offsets[s] + p, col0 + k * dh + c] = src[b, p, c] for p < len_s.
__global__ void attn_unpad_kernel(const float *src, const int32_t *offsets, int64_t n_seq, int heads, int T, int dh,
                                  int ld, int col0, float *dst) {
  const int64_t total = n_seq * heads * (int64_t)T * dh;
  for (int64_t e = dtk::global_thread(); e < total; e += dtk::grid_threads()) {
    const int64_t row = e / dh;
    const int c = (int)(e - row * dh);
    const int64_t b = row / T;
    const int p = (int)(row - b * T);
    const int64_t s = b / heads;
    const int k = (int)(b - s * heads);
    const int64_t t0 = offsets[s];
    if (p < offsets[s + 1] - t0) dst[(t0 + p) * ld + col0 + k * dh + c] = src[e];
  }
}

// One warp per padded row (b, i): the causal softmax of S's row in place
// (entries j > i and rows i >= len become 0), and the window's entries
// copied to the compact probabilities.
__global__ void attn_softmax_fwd_kernel(float *S, const int32_t *offsets, const int64_t *poff, int64_t n_seq, int heads,
                                        int T, float *probs) {
  const int lane = threadIdx.x & 31;
  const int64_t rows = n_seq * heads * (int64_t)T, warps = (int64_t)gridDim.x * kWarps;
  for (int64_t row = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); row < rows; row += warps) {
    const int64_t b = row / T;
    const int i = (int)(row - b * T);
    const int64_t s = b / heads;
    const int k = (int)(b - s * heads);
    const int len = (int)(offsets[s + 1] - offsets[s]);
    float *r = S + row * T;
    if (i >= len) {  // uniform across the warp
      for (int j = lane; j < T; j += 32) r[j] = 0.0f;
      continue;
    }
    float m = -INFINITY;
    for (int j = lane; j <= i; j += 32) m = fmaxf(m, r[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) sum += dt_softmax_term(r[j], m);
    sum = dtk::warp_sum(sum);
    float *pc = probs + poff[s] + ((int64_t)k * len + i) * len;
    for (int j = lane; j < T; j += 32) {
      const float p = j <= i ? dt_softmax_term(r[j], m) / sum : 0.0f;
      r[j] = p;
      if (j < len) pc[j] = p;
    }
  }
}

// P[b, i, j] from the compact probabilities, 0 outside the window.
__global__ void attn_expand_probs_kernel(const float *probs, const int32_t *offsets, const int64_t *poff, int64_t n_seq,
                                         int heads, int T, float *P) {
  const int64_t total = n_seq * heads * (int64_t)T * T;
  for (int64_t e = dtk::global_thread(); e < total; e += dtk::grid_threads()) {
    const int64_t row = e / T;
    const int j = (int)(e - row * T);
    const int64_t b = row / T;
    const int i = (int)(row - b * T);
    const int64_t s = b / heads;
    const int k = (int)(b - s * heads);
    const int len = (int)(offsets[s + 1] - offsets[s]);
    P[e] = i < len && j < len ? probs[poff[s] + ((int64_t)k * len + i) * len + j] : 0.0f;
  }
}

// One warp per padded row: dS = P (dP - <P, dP>) in place of dP, 0 outside
// the causal window.
__global__ void attn_softmax_bwd_kernel(const float *P, float *dS, const int32_t *offsets, int64_t n_seq, int heads,
                                        int T) {
  const int lane = threadIdx.x & 31;
  const int64_t rows = n_seq * heads * (int64_t)T, warps = (int64_t)gridDim.x * kWarps;
  for (int64_t row = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); row < rows; row += warps) {
    const int64_t b = row / T;
    const int i = (int)(row - b * T);
    const int64_t s = b / heads;
    const int len = (int)(offsets[s + 1] - offsets[s]);
    const float *p = P + row * T;
    float *g = dS + row * T;
    if (i >= len) {
      for (int j = lane; j < T; j += 32) g[j] = 0.0f;
      continue;
    }
    float dot = 0.0f;
    for (int j = lane; j <= i; j += 32) dot += p[j] * g[j];
    dot = dtk::warp_sum(dot);
    for (int j = lane; j < T; j += 32) g[j] = j <= i ? dt_softmax_bwd(p[j], g[j], dot) : 0.0f;
  }
}

inline unsigned grid_warps(int64_t rows) { return dtk::grid_for(rows, kWarps); }

}  // namespace

extern "C" {

cudaError_t dtk_attn_prob_sizes(cudaStream_t s, const int32_t *offsets, int64_t n_seq, int heads, int64_t *sizes) {
  DTK_LAUNCH(dtk::grid_for(n_seq + 1), dtk::kThreads, s, attn_prob_sizes_kernel)(offsets, n_seq, heads, sizes);
  return dtk::after_launch(s);
}

cudaError_t dtk_attn_pad(cudaStream_t s, const float *src, int ld, int col0, const int32_t *offsets, int64_t n_seq,
                         int heads, int T, int dh, float *dst) {
  DTK_LAUNCH(dtk::grid_for(n_seq * heads * (int64_t)T * dh), dtk::kThreads, s, attn_pad_kernel)
  (src, ld, col0, offsets, n_seq, heads, T, dh, dst);
  return dtk::after_launch(s);
}

cudaError_t dtk_attn_unpad(cudaStream_t s, const float *src, const int32_t *offsets, int64_t n_seq, int heads, int T,
                           int dh, int ld, int col0, float *dst) {
  DTK_LAUNCH(dtk::grid_for(n_seq * heads * (int64_t)T * dh), dtk::kThreads, s, attn_unpad_kernel)
  (src, offsets, n_seq, heads, T, dh, ld, col0, dst);
  return dtk::after_launch(s);
}

cudaError_t dtk_attn_softmax_fwd(cudaStream_t s, float *S, const int32_t *offsets, const int64_t *poff, int64_t n_seq,
                                 int heads, int T, float *probs) {
  DTK_LAUNCH(grid_warps(n_seq * heads * (int64_t)T), dtk::kThreads, s, attn_softmax_fwd_kernel)
  (S, offsets, poff, n_seq, heads, T, probs);
  return dtk::after_launch(s);
}

cudaError_t dtk_attn_expand_probs(cudaStream_t s, const float *probs, const int32_t *offsets, const int64_t *poff,
                                  int64_t n_seq, int heads, int T, float *P) {
  DTK_LAUNCH(dtk::grid_for(n_seq * heads * (int64_t)T * T), dtk::kThreads, s, attn_expand_probs_kernel)
  (probs, offsets, poff, n_seq, heads, T, P);
  return dtk::after_launch(s);
}

cudaError_t dtk_attn_softmax_bwd(cudaStream_t s, const float *P, float *dS, const int32_t *offsets, int64_t n_seq,
                                 int heads, int T) {
  DTK_LAUNCH(grid_warps(n_seq * heads * (int64_t)T), dtk::kThreads, s, attn_softmax_bwd_kernel)
  (P, dS, offsets, n_seq, heads, T);
  return dtk::after_launch(s);
}

}  // extern "C"
