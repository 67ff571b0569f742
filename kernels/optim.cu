// optim.cu: Adam fused over the contiguous dense buffer, lazy Adam and
// row-wise Adagrad on the touched rows of an embedding table. The math of
// one element (the gradient with decay, the bias corrections, the Adam and
// Adagrad updates) is op_math.h's, as on the CPU.
#include "common.cuh"
#include "dtrain/op_math.h"

namespace {

__global__ void adam_kernel(float *param, const float *grad, float *m, float *v, int64_t n, dt_adam_hyper hp, float bc1,
                            float bc2) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    const float p = param[i];
    const float g = dt_optim_grad(grad[i], p, hp.grad_scale, hp.weight_decay);
    float mi = m[i], vi = v[i];
    param[i] = dt_adam_update(p, g, &mi, &vi, hp.lr, hp.beta1, hp.beta2, hp.eps, bc1, bc2);
    m[i] = mi;
    v[i] = vi;
  }
}

// Threads per block for one table row of `dim` floats: whole warps, <= 256.
inline int row_threads(int dim) {
  int t = ((dim + 31) / 32) * 32;
  return t < 32 ? 32 : t > 256 ? 256 : t;
}

// One block per touched row (ids are unique, so no two blocks share a row).
__global__ void adam_rows_kernel(float *table, float *m_table, float *v_table, int64_t *row_step, const int32_t *ids,
                                 const float *grads, int64_t m, int dim, dt_adam_hyper hp) {
  __shared__ float bc[2];
  for (int64_t k = blockIdx.x; k < m; k += gridDim.x) {
    const int64_t row = ids[k];
    if (threadIdx.x == 0) {
      const int64_t t = row_step[row] + 1;
      row_step[row] = t;
      bc[0] = dt_adam_bias_correction(hp.beta1, t);
      bc[1] = dt_adam_bias_correction(hp.beta2, t);
    }
    __syncthreads();
    const float bc1 = bc[0], bc2 = bc[1];
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
      const int64_t e = row * dim + c;
      const float p = table[e];
      const float g = dt_optim_grad(grads[k * dim + c], p, hp.grad_scale, hp.weight_decay);
      float mi = m_table[e], vi = v_table[e];
      table[e] = dt_adam_update(p, g, &mi, &vi, hp.lr, hp.beta1, hp.beta2, hp.eps, bc1, bc2);
      m_table[e] = mi;
      v_table[e] = vi;
    }
    __syncthreads();  // bc is rewritten for the next row
  }
}

// Row-wise Adagrad: one accumulator per row, acc += mean(g^2) summed in a
// fixed block tree. Launched with kAdagradThreads threads.
constexpr int kAdagradThreads = 128;
__global__ void adagrad_rows_kernel(float *table, float *acc, const int32_t *ids, const float *grads, int64_t m,
                                    int dim, dt_adam_hyper hp) {
  __shared__ float smem[kAdagradThreads / 32];
  __shared__ float row_step;
  for (int64_t k = blockIdx.x; k < m; k += gridDim.x) {
    const int64_t row = ids[k];
    float sq = 0.0f;
    for (int c = threadIdx.x; c < dim; c += kAdagradThreads) {
      const float g = dt_optim_grad(grads[k * dim + c], table[row * dim + c], hp.grad_scale, hp.weight_decay);
      sq += g * g;
    }
    sq = dtk::block_sum<float, kAdagradThreads>(sq, smem);
    if (threadIdx.x == 0) {
      const float a = dt_adagrad_acc(acc[row], sq, dim);
      acc[row] = a;
      row_step = dt_adagrad_step(hp.lr, a, hp.eps);
    }
    __syncthreads();
    const float step = row_step;
    for (int c = threadIdx.x; c < dim; c += kAdagradThreads) {
      const int64_t e = row * dim + c;
      table[e] = dt_adagrad_update(table[e],
                                   dt_optim_grad(grads[k * dim + c], table[e], hp.grad_scale, hp.weight_decay), step);
    }
    __syncthreads();  // smem and row_step are rewritten for the next row
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_adam(cudaStream_t s, float *param, const float *grad, float *m, float *v, int64_t n,
                     dt_adam_hyper hyper, float bc1, float bc2) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, adam_kernel)(param, grad, m, v, n, hyper, bc1, bc2);
  return dtk::after_launch(s);
}

cudaError_t dtk_adam_rows(cudaStream_t s, float *table, float *m_table, float *v_table, int64_t *row_step,
                          const int32_t *ids, const float *grads, int64_t m, int dim, dt_adam_hyper hyper) {
  DTK_LAUNCH(dtk::grid_rows(m), row_threads(dim), s, adam_rows_kernel)
  (table, m_table, v_table, row_step, ids, grads, m, dim, hyper);
  return dtk::after_launch(s);
}

cudaError_t dtk_adagrad_rows(cudaStream_t s, float *table, float *acc, const int32_t *ids, const float *grads,
                             int64_t m, int dim, dt_adam_hyper hyper) {
  DTK_LAUNCH(dtk::grid_rows(m), kAdagradThreads, s, adagrad_rows_kernel)(table, acc, ids, grads, m, dim, hyper);
  return dtk::after_launch(s);
}

}  // extern "C"
