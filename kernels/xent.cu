// xent.cu: the losses of issue 13: binary cross-entropy over [positive,
// negatives] rows, and softmax cross-entropy over column blocks (running
// max/sum per row: one warp per row, a fixed reduction order; the loss: a
// deterministic double reduction, reduce.cu's partials; the gradient: one
// thread per score). Per-element math: op_math.h.
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

constexpr int kWarps = dtk::kThreads / 32;

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Launched with dtk_partial_count(n) blocks of kReduceThreads threads, one
// thread per row. dscores may be scores (each element read, then written).
__global__ void bce_kernel(const float *scores, int64_t n, int c, float inv_count, float *dscores, double *partials) {
  __shared__ double smem[dtk::kReduceThreads / 32];
  double acc = 0.0;
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    for (int j = 0; j < c; j++) {
      float ds;
      acc += (double)dt_bce_term(scores[i * c + j], j == 0, &ds);
      dscores[i * c + j] = inv_count * ds;
    }
  }
  acc = dtk::block_sum<double, dtk::kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One warp per row: the block's (max, sum) (two passes, as the CPU), merged
// into the running pair by lane 0; the target's score when it is here.
__global__ void xent_stats_kernel(const float *scores, int64_t n, int cols, int ld, int64_t col0, const int32_t *target,
                                  int first, float *run_max, float *run_sum, float *tgt_score) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarps;
  for (int64_t i = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); i < n; i += warps) {
    const float *s = scores + i * ld;
    float m = -INFINITY;
    for (int j = lane; j < cols; j += 32) m = fmaxf(m, s[j]);
    m = warp_max(m);
    float sum = 0.0f;
    if (m > -INFINITY)  // uniform across the warp
      for (int j = lane; j < cols; j += 32) sum += dt_softmax_term(s[j], m);
    sum = dtk::warp_sum(sum);
    if (lane == 0) {
      float rm = first ? -INFINITY : run_max[i], rs = first ? 0.0f : run_sum[i];
      dt_lse_merge(&rm, &rs, m, sum);
      run_max[i] = rm;
      run_sum[i] = rs;
      const int64_t t = (target ? (int64_t)target[i] : 0) - col0;
      if (t >= 0 && t < cols) tgt_score[i] = s[t];
    }
  }
}

// One thread per row; launched with dtk_partial_count(n) blocks. lse may be
// run_max or run_sum: each row's inputs are read before its lse is written.
__global__ void xent_loss_kernel(const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                                 float *lse, double *partials) {
  __shared__ double smem[dtk::kReduceThreads / 32];
  double acc = 0.0;
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float l = dt_lse(run_max[i], run_sum[i]);
    acc += (double)l - (double)tgt_score[i];
    lse[i] = l;
  }
  acc = dtk::block_sum<double, dtk::kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One thread per score; dscores may be scores (in place, ldd == ld).
__global__ void xent_grad_kernel(const float *scores, int64_t n, int cols, int ld, int64_t col0, const int32_t *target,
                                 const float *lse, float scale, float *dscores, int ldd) {
  const int64_t total = n * cols;
  for (int64_t q = dtk::global_thread(); q < total; q += dtk::grid_threads()) {
    const int64_t i = q / cols;
    const int j = (int)(q - i * cols);
    const int64_t t = (target ? (int64_t)target[i] : 0) - col0;
    dscores[i * ldd + j] = dt_xent_grad(scores[i * ld + j], lse[i], j == t, scale);
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_bce(cudaStream_t s, const float *scores, int64_t n, int c, float inv_count, float *dscores,
                    double *partials) {
  DTK_LAUNCH(dtk_partial_count(n), dtk::kReduceThreads, s, bce_kernel)(scores, n, c, inv_count, dscores, partials);
  return dtk::after_launch(s);
}

cudaError_t dtk_xent_stats(cudaStream_t s, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                           const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score) {
  DTK_LAUNCH(dtk::grid_for(n, kWarps), dtk::kThreads, s, xent_stats_kernel)
  (scores, n, cols, ld, col0, target, first, run_max, run_sum, tgt_score);
  return dtk::after_launch(s);
}

cudaError_t dtk_xent_loss(cudaStream_t s, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                          float *lse, double *partials) {
  DTK_LAUNCH(dtk_partial_count(n), dtk::kReduceThreads, s, xent_loss_kernel)
  (run_max, run_sum, tgt_score, n, lse, partials);
  return dtk::after_launch(s);
}

cudaError_t dtk_xent_grad(cudaStream_t s, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                          const int32_t *target, const float *lse, float scale, float *dscores, int ldd) {
  DTK_LAUNCH(dtk::grid_for(n * cols), dtk::kThreads, s, xent_grad_kernel)
  (scores, n, cols, ld, col0, target, lse, scale, dscores, ldd);
  return dtk::after_launch(s);
}

}  // extern "C"
