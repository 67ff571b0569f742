// csr.cu: the TF-IDF layer, CSR x dense, forward and weight gradient.
//
// Forward: one block per batch row sums its nonzeros in CSR order.
// Gradient: the batch's nonzeros are listed, sorted by vocabulary column
// with a stable CUB radix sort (so one column's entries stay in batch
// order), and one block per vocabulary row adds its entries in that order:
// the transpose of the batch's rows, reduced without atomics.
#include "common.cuh"

#if defined(DTK_EMU)
#include "emu/cub_emu.h"
#else
#include <cub/device/device_scan.cuh>
#endif

namespace {

// Threads per block for a row of o outputs: whole warps, at most 256.
inline int threads_for_width(int o) {
  int t = ((o + 31) / 32) * 32;
  return t < 32 ? 32 : t > 256 ? 256 : t;
}

__global__ void csr_matmul_kernel(float *out, const int64_t *indptr, const int32_t *indices, const float *values,
                                  const int32_t *rows, int64_t n, const float *wt, int o) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t row = rows[i];
    const int64_t b = indptr[row], e = indptr[row + 1];
    for (int c = threadIdx.x; c < o; c += blockDim.x) {
      float acc = 0.0f;
      for (int64_t p = b; p < e; p++) acc += values[p] * wt[(int64_t)indices[p] * o + c];
      out[i * o + c] = acc;
    }
  }
}

__global__ void csr_row_counts_kernel(const int64_t *indptr, const int32_t *rows, int64_t n, int64_t *counts) {
  for (int64_t i = dtk::global_thread(); i <= n; i += dtk::grid_threads())
    counts[i] = i < n ? indptr[rows[i] + 1] - indptr[rows[i]] : 0;
}

__global__ void csr_expand_kernel(const int64_t *indptr, const int32_t *indices, const float *values,
                                  const int32_t *rows, const int64_t *offsets, int64_t n, int32_t *keys,
                                  int32_t *ent_idx, int32_t *ent_row, float *ent_val) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t b = indptr[rows[i]], e = indptr[rows[i] + 1];
    const int64_t base = offsets[i];
    for (int64_t t = threadIdx.x; t < e - b; t += blockDim.x) {
      keys[base + t] = indices[b + t];
      ent_idx[base + t] = (int32_t)(base + t);
      ent_row[base + t] = (int32_t)i;
      ent_val[base + t] = values[b + t];
    }
  }
}

// First position q in sorted[0, n) with sorted[q] >= key.
__device__ __forceinline__ int64_t lower_bound(const int32_t *sorted, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if ((int64_t)sorted[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

__global__ void csr_grad_reduce_kernel(const int32_t *keys_sorted, const int32_t *perm, const int32_t *ent_row,
                                       const float *ent_val, int64_t nnz, const float *dout, int o, int64_t vocab,
                                       float *dwt) {
  for (int64_t j = blockIdx.x; j < vocab; j += gridDim.x) {
    const int64_t q0 = lower_bound(keys_sorted, nnz, j);
    const int64_t q1 = lower_bound(keys_sorted, nnz, j + 1);
    if (q0 == q1) continue;  // vocabulary row not in this batch
    for (int c = threadIdx.x; c < o; c += blockDim.x) {
      float acc = 0.0f;
      for (int64_t q = q0; q < q1; q++) {
        const int32_t e = perm[q];
        acc += ent_val[e] * dout[(int64_t)ent_row[e] * o + c];
      }
      dwt[j * o + c] += acc;
    }
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_csr_matmul(cudaStream_t s, float *out, const int64_t *indptr, const int32_t *indices,
                           const float *values, const int32_t *rows, int64_t n, const float *wt, int o) {
  DTK_LAUNCH(dtk::grid_rows(n), threads_for_width(o), s, csr_matmul_kernel)
  (out, indptr, indices, values, rows, n, wt, o);
  return dtk::after_launch(s);
}

cudaError_t dtk_csr_row_counts(cudaStream_t s, const int64_t *indptr, const int32_t *rows, int64_t n, int64_t *counts) {
  DTK_LAUNCH(dtk::grid_for(n + 1), dtk::kThreads, s, csr_row_counts_kernel)(indptr, rows, n, counts);
  return dtk::after_launch(s);
}

cudaError_t dtk_exclusive_sum_i64(cudaStream_t s, void *temp, size_t *temp_bytes, const int64_t *in, int64_t *out,
                                  int64_t n) {
  cudaError_t e = cub::DeviceScan::ExclusiveSum(temp, *temp_bytes, in, out, n, s);
  if (e != cudaSuccess || temp == nullptr) return e;
  return dtk::after_launch(s);
}

cudaError_t dtk_csr_expand(cudaStream_t s, const int64_t *indptr, const int32_t *indices, const float *values,
                           const int32_t *rows, const int64_t *offsets, int64_t n, int32_t *keys, int32_t *ent_idx,
                           int32_t *ent_row, float *ent_val) {
  DTK_LAUNCH(dtk::grid_rows(n), 128, s, csr_expand_kernel)
  (indptr, indices, values, rows, offsets, n, keys, ent_idx, ent_row, ent_val);
  return dtk::after_launch(s);
}

cudaError_t dtk_csr_grad_reduce(cudaStream_t s, const int32_t *keys_sorted, const int32_t *perm, const int32_t *ent_row,
                                const float *ent_val, int64_t nnz, const float *dout, int o, int64_t vocab,
                                float *dwt) {
  DTK_LAUNCH(dtk::grid_rows(vocab), threads_for_width(o), s, csr_grad_reduce_kernel)
  (keys_sorted, perm, ent_row, ent_val, nnz, dout, o, vocab, dwt);
  return dtk::after_launch(s);
}

}  // extern "C"
