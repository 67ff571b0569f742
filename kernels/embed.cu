// embed.cu: embedding-row gather and the pieces of sparse-gradient
// coalescing: a stable CUB radix sort of (id, input index), run heads and a
// CUB scan for the runs of equal ids, and a segmented sum that adds each
// run's rows in input order (one warp per run, no atomics).
#include "common.cuh"

#if defined(DTK_EMU)
#include "emu/cub_emu.h"
#else
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#endif

namespace {

__global__ void gather_rows_kernel(float *out, const float *table, const int32_t *ids, int64_t n, int dim) {
  const int64_t total = n * dim;
  for (int64_t i = dtk::global_thread(); i < total; i += dtk::grid_threads()) {
    const int64_t r = i / dim;
    out[i] = table[(int64_t)ids[r] * dim + (i - r * dim)];
  }
}

// 16-byte copies when rows are a whole number of float4 and both buffers are
// 16-byte aligned (checked by the wrapper).
__global__ void gather_rows4_kernel(float4 *out, const float4 *table, const int32_t *ids, int64_t n, int dim4) {
  const int64_t total = n * dim4;
  for (int64_t i = dtk::global_thread(); i < total; i += dtk::grid_threads()) {
    const int64_t r = i / dim4;
    out[i] = table[(int64_t)ids[r] * dim4 + (i - r * dim4)];
  }
}

// dst[ids[r]] += src[r] for in-range ids; in-range ids are unique (backend.h),
// so no two threads add into one element and no atomics are needed.
__global__ void scatter_add_rows_kernel(float *dst, int64_t dst_rows, const int32_t *ids, const float *src, int64_t n,
                                        int dim) {
  const int64_t total = n * dim;
  for (int64_t i = dtk::global_thread(); i < total; i += dtk::grid_threads()) {
    const int64_t r = i / dim;
    const int64_t row = ids[r];
    if (row < 0 || row >= dst_rows) continue;
    dst[row * dim + (i - r * dim)] += src[i];
  }
}

__global__ void iota_kernel(int32_t *out, int64_t n) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) out[i] = (int32_t)i;
}

__global__ void run_heads_kernel(const int32_t *sorted, int64_t n, int32_t *heads) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads())
    heads[i] = (i == 0 || sorted[i] != sorted[i - 1]) ? 1 : 0;
}

__global__ void run_starts_kernel(const int32_t *sorted, const int32_t *heads, const int32_t *run_idx, int64_t n,
                                  int32_t *uniq, int32_t *starts, int32_t *num_runs) {
  for (int64_t i = dtk::global_thread(); i < n; i += dtk::grid_threads()) {
    if (heads[i]) {
      uniq[run_idx[i]] = sorted[i];
      starts[run_idx[i]] = (int32_t)i;
    }
    if (i == n - 1) *num_runs = run_idx[i] + heads[i];
  }
}

constexpr int kSegWarps = 4;  // warps per block in segment_sum_rows_kernel

__global__ void segment_sum_rows_kernel(const int32_t *perm, const int32_t *starts, int64_t m, int64_t n,
                                        const float *grads, int dim, float *sums) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kSegWarps;
  for (int64_t r = (int64_t)blockIdx.x * kSegWarps + (threadIdx.x >> 5); r < m; r += warps) {
    const int64_t q0 = starts[r], q1 = r + 1 < m ? starts[r + 1] : n;
    for (int c = lane; c < dim; c += 32) {
      float acc = 0.0f;
      for (int64_t q = q0; q < q1; q++) acc += grads[(int64_t)perm[q] * dim + c];
      sums[r * dim + c] = acc;
    }
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_gather_rows(cudaStream_t s, float *out, const float *table, const int32_t *ids, int64_t n, int dim) {
  if (dim % 4 == 0 && ((uintptr_t)out % 16) == 0 && ((uintptr_t)table % 16) == 0) {
    const int dim4 = dim / 4;
    DTK_LAUNCH(dtk::grid_for(n * dim4), dtk::kThreads, s, gather_rows4_kernel)
    (reinterpret_cast<float4 *>(out), reinterpret_cast<const float4 *>(table), ids, n, dim4);
  } else {
    DTK_LAUNCH(dtk::grid_for(n * dim), dtk::kThreads, s, gather_rows_kernel)(out, table, ids, n, dim);
  }
  return dtk::after_launch(s);
}

cudaError_t dtk_scatter_add_rows(cudaStream_t s, float *dst, int64_t dst_rows, const int32_t *ids, const float *src,
                                 int64_t n, int dim) {
  DTK_LAUNCH(dtk::grid_for(n * dim), dtk::kThreads, s, scatter_add_rows_kernel)(dst, dst_rows, ids, src, n, dim);
  return dtk::after_launch(s);
}

cudaError_t dtk_iota_i32(cudaStream_t s, int32_t *out, int64_t n) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, iota_kernel)(out, n);
  return dtk::after_launch(s);
}

cudaError_t dtk_sort_pairs_i32(cudaStream_t s, void *temp, size_t *temp_bytes, const int32_t *keys_in,
                               int32_t *keys_out, const int32_t *vals_in, int32_t *vals_out, int64_t n) {
  cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0, 32, s);
  if (e != cudaSuccess || temp == nullptr) return e;
  return dtk::after_launch(s);
}

cudaError_t dtk_run_heads(cudaStream_t s, const int32_t *sorted, int64_t n, int32_t *heads) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, run_heads_kernel)(sorted, n, heads);
  return dtk::after_launch(s);
}

cudaError_t dtk_run_starts(cudaStream_t s, const int32_t *sorted, const int32_t *heads, const int32_t *run_idx,
                           int64_t n, int32_t *uniq, int32_t *starts, int32_t *num_runs) {
  DTK_LAUNCH(dtk::grid_for(n), dtk::kThreads, s, run_starts_kernel)(sorted, heads, run_idx, n, uniq, starts, num_runs);
  return dtk::after_launch(s);
}

cudaError_t dtk_exclusive_sum_i32(cudaStream_t s, void *temp, size_t *temp_bytes, const int32_t *in, int32_t *out,
                                  int64_t n) {
  cudaError_t e = cub::DeviceScan::ExclusiveSum(temp, *temp_bytes, in, out, n, s);
  if (e != cudaSuccess || temp == nullptr) return e;
  return dtk::after_launch(s);
}

cudaError_t dtk_segment_sum_rows(cudaStream_t s, const int32_t *perm, const int32_t *starts, int64_t m, int64_t n,
                                 const float *grads, int dim, float *sums) {
  const int64_t blocks = (m + kSegWarps - 1) / kSegWarps;
  DTK_LAUNCH(dtk::grid_rows(blocks), 32 * kSegWarps, s, segment_sum_rows_kernel)(perm, starts, m, n, grads, dim, sums);
  return dtk::after_launch(s);
}

}  // extern "C"
