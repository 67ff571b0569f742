// reduce.cu: deterministic sums in double. A reduction over n items runs
// dtk_partial_count(n) blocks (a function of n alone, never of the device),
// each summing a fixed grid-strided slice in a fixed tree; one block then
// adds the partials in a fixed tree.
#include "common.cuh"

namespace {

using dtk::kReduceThreads;
constexpr int kItemsPerThread = 8;

__global__ void sumsq_partials_kernel(const float *x, int64_t n, double *partials) {
  __shared__ double smem[kReduceThreads / 32];
  double acc = 0.0;
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const double v = x[i];
    acc += v * v;
  }
  acc = dtk::block_sum<double, kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void sum_partials_kernel(const double *partials, int count, double *out) {
  __shared__ double smem[kReduceThreads / 32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kReduceThreads) acc += partials[i];
  acc = dtk::block_sum<double, kReduceThreads>(acc, smem);
  if (threadIdx.x == 0) *out = acc;
}

}  // namespace

extern "C" {

int dtk_partial_count(int64_t n) {
  int64_t b = (n + (int64_t)kReduceThreads * kItemsPerThread - 1) / ((int64_t)kReduceThreads * kItemsPerThread);
  if (b < 1) b = 1;
  if (b > DTK_MAX_PARTIALS) b = DTK_MAX_PARTIALS;
  return (int)b;
}

cudaError_t dtk_sumsq_partials(cudaStream_t s, const float *x, int64_t n, double *partials) {
  DTK_LAUNCH(dtk_partial_count(n), kReduceThreads, s, sumsq_partials_kernel)(x, n, partials);
  return dtk::after_launch(s);
}

cudaError_t dtk_sum_partials(cudaStream_t s, const double *partials, int count, double *out) {
  DTK_LAUNCH(1, kReduceThreads, s, sum_partials_kernel)(partials, count, out);
  return dtk::after_launch(s);
}

}  // extern "C"
