// gate.cu: the gate's softmax over three logits and its anti-collapse
// regularisers (MODEL.md "Loss"), one thread per row, with the per-row math
// from op_math.h. gate_reg's negated-entropy sum is a deterministic double
// reduction (reduce.cu's partials).
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

__global__ void softmax3_fwd_kernel(const float *logits, float *alpha, int64_t n) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    float l[3] = {logits[3 * i], logits[3 * i + 1], logits[3 * i + 2]};
    float a[3];
    dt_softmax3(l, a);
    alpha[3 * i] = a[0];
    alpha[3 * i + 1] = a[1];
    alpha[3 * i + 2] = a[2];
  }
}

__global__ void softmax3_bwd_kernel(const float *alpha, const float *dalpha, float *dlogits, int64_t n) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float a[3] = {alpha[3 * i], alpha[3 * i + 1], alpha[3 * i + 2]};
    const float da[3] = {dalpha[3 * i], dalpha[3 * i + 1], dalpha[3 * i + 2]};
    float dl[3];
    dt_softmax3_bwd(a, da, dl);
    dlogits[3 * i] = dl[0];
    dlogits[3 * i + 1] = dl[1];
    dlogits[3 * i + 2] = dl[2];
  }
}

// Launched with dtk_partial_count(n) blocks of kReduceThreads threads.
__global__ void gate_reg_kernel(const float *alpha, int64_t n, float ent_scale, float bal0, float bal1, float bal2,
                                float *dalpha, double *partials) {
  __shared__ double smem[dtk::kReduceThreads / 32];
  double acc = 0.0;
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float bal[3] = {bal0, bal1, bal2};
#pragma unroll
    for (int k = 0; k < 3; k++) {
      const float a = alpha[3 * i + k];
      acc += (double)dt_neg_entropy(a);
      dalpha[3 * i + k] += dt_gate_reg_grad(a, ent_scale, bal[k]);
    }
  }
  acc = dtk::block_sum<double, dtk::kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

}  // namespace

extern "C" {

cudaError_t dtk_softmax3_fwd(cudaStream_t s, const float *logits, float *alpha, int64_t n) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, softmax3_fwd_kernel)(logits, alpha, n);
  return dtk::after_launch(s);
}

cudaError_t dtk_softmax3_bwd(cudaStream_t s, const float *alpha, const float *dalpha, float *dlogits, int64_t n) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, softmax3_bwd_kernel)(alpha, dalpha, dlogits, n);
  return dtk::after_launch(s);
}

cudaError_t dtk_gate_reg(cudaStream_t s, const float *alpha, int64_t n, float ent_scale, float bal0, float bal1,
                         float bal2, float *dalpha, double *partials) {
  DTK_LAUNCH(dtk_partial_count(n), dtk::kReduceThreads, s, gate_reg_kernel)
  (alpha, n, ent_scale, bal0, bal1, bal2, dalpha, partials);
  return dtk::after_launch(s);
}

}  // extern "C"
