// dense.cu: element-wise dense ops (bias, axpy, scale, ReLU + dropout) and
// the deterministic column sums of bias_grad.
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

__global__ void add_bias_kernel(float *y, const float *bias, int64_t rows, int cols) {
  const int64_t total = rows * cols;
  for (int64_t i = dtk::global_thread(); i < total; i += dtk::grid_threads()) y[i] += bias[i % cols];
}

// Pass 1 of bias_grad: block (x: 32 columns, y: 8 row lanes) sums chunk
// blockIdx.y's DTK_BIAS_CHUNK rows for 32 columns. Each lane sums its rows
// in ascending order, then lane 0 adds the 8 lanes in order.
constexpr int kBiasLanes = 8;
__global__ void bias_grad_partials_kernel(const float *dy, int64_t rows, int cols, float *partials) {
  __shared__ float lanes[kBiasLanes][32];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = (int64_t)blockIdx.y * DTK_BIAS_CHUNK;
  int64_t r1 = r0 + DTK_BIAS_CHUNK;
  if (r1 > rows) r1 = rows;
  float acc = 0.0f;
  if (c < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kBiasLanes) acc += dy[r * cols + c];
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float sum = 0.0f;
    for (int l = 0; l < kBiasLanes; l++) sum += lanes[l][threadIdx.x];
    partials[(int64_t)blockIdx.y * cols + c] = sum;
  }
}

// Pass 2: one thread per column adds the chunks in order into dbias.
__global__ void bias_grad_finish_kernel(const float *partials, int64_t chunks, int cols, float *dbias) {
  for (int64_t c = dtk::global_thread(); c < cols; c += dtk::grid_threads()) {
    float sum = 0.0f;
    for (int64_t k = 0; k < chunks; k++) sum += partials[k * cols + c];
    dbias[c] += sum;
  }
}

__global__ void axpy_kernel(float *y, const float *x, int64_t n, float alpha) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) y[i] += alpha * x[i];
}

__global__ void scale_kernel(float *x, int64_t n, float alpha) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) x[i] *= alpha;
}

// ReLU and dropout, one thread per group of 4 columns of a row: the four
// columns share one Philox counter (dt_dropout_keep uses col >> 2), so the
// compiler can compute the draw once for the group. The per-element rule is
// dt_dropout_keep itself, as on the CPU.
__global__ void relu_dropout_fwd_kernel(float *x, int64_t rows, int cols, int relu, float p, float keep_scale,
                                        dt_dropout_key key) {
  const int groups = (cols + 3) / 4;
  const int64_t total = rows * groups;
  for (int64_t g = dtk::global_thread(); g < total; g += dtk::grid_threads()) {
    const int64_t r = g / groups;
    const int c0 = (int)(g % groups) * 4;
    const int64_t row_key = p > 0.0f ? key.row_keys[r] : 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int c = c0 + j;
      if (c < cols) {
        float v = x[r * cols + c];
        if (relu) v = v > 0.0f ? v : 0.0f;
        if (p > 0.0f) v = dt_dropout_keep(key.seed, key.step, key.site, row_key, c, p) ? v * keep_scale : 0.0f;
        x[r * cols + c] = v;
      }
    }
  }
}

__global__ void relu_dropout_bwd_kernel(float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                                        float keep_scale, dt_dropout_key key) {
  const int groups = (cols + 3) / 4;
  const int64_t total = rows * groups;
  for (int64_t g = dtk::global_thread(); g < total; g += dtk::grid_threads()) {
    const int64_t r = g / groups;
    const int c0 = (int)(g % groups) * 4;
    const int64_t row_key = (!relu && p > 0.0f) ? key.row_keys[r] : 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int c = c0 + j;
      if (c < cols) {
        const int64_t i = r * cols + c;
        if (relu)  // y > 0 exactly when the unit was active and kept
          dy[i] = y[i] > 0.0f ? dy[i] * keep_scale : 0.0f;
        else
          dy[i] = dt_dropout_keep(key.seed, key.step, key.site, row_key, c, p) ? dy[i] * keep_scale : 0.0f;
      }
    }
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_add_bias(cudaStream_t s, float *y, const float *bias, int64_t rows, int cols) {
  DTK_LAUNCH(dtk::grid_for(rows * cols), dtk::kThreads, s, add_bias_kernel)(y, bias, rows, cols);
  return dtk::after_launch(s);
}

cudaError_t dtk_bias_grad_partials(cudaStream_t s, const float *dy, int64_t rows, int cols, float *partials) {
  const int64_t chunks = (rows + DTK_BIAS_CHUNK - 1) / DTK_BIAS_CHUNK;
  if (chunks > 65535) return cudaErrorInvalidValue;  // grid.y limit: rows <= 33.5 M
  dim3 grid((unsigned)((cols + 31) / 32), (unsigned)chunks);
  dim3 block(32, kBiasLanes);
  DTK_LAUNCH(grid, block, s, bias_grad_partials_kernel)(dy, rows, cols, partials);
  return dtk::after_launch(s);
}

cudaError_t dtk_bias_grad_finish(cudaStream_t s, const float *partials, int64_t chunks, int cols, float *dbias) {
  DTK_LAUNCH(dtk::grid_for(cols), dtk::kThreads, s, bias_grad_finish_kernel)(partials, chunks, cols, dbias);
  return dtk::after_launch(s);
}

cudaError_t dtk_axpy(cudaStream_t s, float *y, const float *x, int64_t n, float alpha) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, axpy_kernel)(y, x, n, alpha);
  return dtk::after_launch(s);
}

cudaError_t dtk_scale(cudaStream_t s, float *x, int64_t n, float alpha) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, scale_kernel)(x, n, alpha);
  return dtk::after_launch(s);
}

cudaError_t dtk_relu_dropout_fwd(cudaStream_t s, float *x, int64_t rows, int cols, int relu, float p,
                                 dt_dropout_key key) {
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  DTK_LAUNCH(dtk::grid_for(rows * ((cols + 3) / 4)), dtk::kThreads, s, relu_dropout_fwd_kernel)
  (x, rows, cols, relu, p, keep_scale, key);
  return dtk::after_launch(s);
}

cudaError_t dtk_relu_dropout_bwd(cudaStream_t s, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                                 dt_dropout_key key) {
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  DTK_LAUNCH(dtk::grid_for(rows * ((cols + 3) / 4)), dtk::kThreads, s, relu_dropout_bwd_kernel)
  (dy, y, rows, cols, relu, p, keep_scale, key);
  return dtk::after_launch(s);
}

}  // extern "C"
