// topk.cu: the k best columns of each score row, best first, ties to the
// lower column, -INFINITY (and NaN) never returned, short rows padded with
// column -1 and value -INFINITY.
//
// k <= DTK_TOPK_SMALL_MAX: one block per row. Each thread keeps the k best
// of the columns it scans, sorted; any of the row's k best is among its
// thread's k best, so k rounds of a block-wide arg-max over the threads'
// list heads give the row's k best in order. The order (value descending,
// then column ascending) is a strict total order on a row's entries, so the
// result does not depend on which thread saw which column.
//
// Larger k: each row is sorted whole with CUB's stable segmented sort
// (descending; equal keys keep column order), with -0.0 keyed as +0.0 and
// NaN as -INFINITY, and the first k valid entries are picked.
#include <climits>

#include "common.cuh"

#if defined(DTK_EMU)
#include "emu/cub_emu.h"
#else
#include <cub/device/device_segmented_sort.cuh>
#endif

namespace {

__device__ __forceinline__ bool better(float va, int32_t ca, float vb, int32_t cb) {
  return va > vb || (va == vb && ca < cb);
}

// Arg-max of (v, c) over a warp; every lane ends with the winner.
__device__ __forceinline__ void warp_best(float &v, int32_t &c) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int32_t oc = __shfl_xor_sync(0xffffffffu, c, off);
    if (better(ov, oc, v, c)) {
      v = ov;
      c = oc;
    }
  }
}

template <int KMAX, int THREADS>
__global__ void __launch_bounds__(THREADS)
    topk_small_kernel(const float *scores, int64_t n, int64_t cols, int k, int32_t *idx, float *val) {
  constexpr int kWarps = THREADS / 32;
  constexpr int32_t kNone = INT_MAX;  // sentinel column: worse than any entry
  __shared__ float warp_v[kWarps];
  __shared__ int32_t warp_c[kWarps];
  __shared__ float win_v;
  __shared__ int32_t win_c;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float *s = scores + row * cols;
    float lv[KMAX];
    int32_t lc[KMAX];
    int count = 0;
    for (int64_t c64 = threadIdx.x; c64 < cols; c64 += THREADS) {
      const float v = s[c64];
      const int32_t c = (int32_t)c64;
      if (!(v > -INFINITY)) continue;  // -INFINITY and NaN are never returned
      if (count == k && !better(v, c, lv[k - 1], lc[k - 1])) continue;
      int pos = count < k ? count : k - 1;
      while (pos > 0 && better(v, c, lv[pos - 1], lc[pos - 1])) {
        lv[pos] = lv[pos - 1];
        lc[pos] = lc[pos - 1];
        pos--;
      }
      lv[pos] = v;
      lc[pos] = c;
      if (count < k) count++;
    }

    int head = 0;
    for (int r = 0; r < k; r++) {
      float v = head < count ? lv[head] : -INFINITY;
      int32_t c = head < count ? lc[head] : kNone;
      warp_best(v, c);
      if (lane == 0) {
        warp_v[warp] = v;
        warp_c[warp] = c;
      }
      __syncthreads();
      if (warp == 0) {
        v = lane < kWarps ? warp_v[lane] : -INFINITY;
        c = lane < kWarps ? warp_c[lane] : kNone;
        warp_best(v, c);
        if (lane == 0) {
          win_v = v;
          win_c = c;
        }
      }
      __syncthreads();
      const int32_t wc = win_c;
      if (head < count && lc[head] == wc) head++;  // columns are unique: one thread advances
      if (threadIdx.x == 0) {
        idx[row * k + r] = wc == kNone ? -1 : wc;
        val[row * k + r] = wc == kNone ? -INFINITY : win_v;
      }
      __syncthreads();  // warp_v, win_* are rewritten next round
    }
  }
}

template <int KMAX, int THREADS>
cudaError_t launch_small(cudaStream_t s, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx,
                         float *val) {
  DTK_LAUNCH(dtk::grid_rows(n), THREADS, s, topk_small_kernel<KMAX, THREADS>)(scores, n, cols, k, idx, val);
  return dtk::after_launch(s);
}

__global__ void topk_sort_prepare_kernel(const float *scores, int64_t rows, int64_t cols, float *keys, int32_t *vals,
                                         int64_t *offsets) {
  const int64_t total = rows * cols;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const float v = scores[t];
    keys[t] = v > -INFINITY ? (v == 0.0f ? 0.0f : v) : -INFINITY;
    vals[t] = (int32_t)(t % cols);
  }
  for (int64_t r = dtk::global_thread(); r <= rows; r += dtk::grid_threads()) offsets[r] = r * cols;
}

__global__ void topk_sort_pick_kernel(const float *scores, const float *keys_sorted, const int32_t *vals_sorted,
                                      int64_t rows, int64_t cols, int k, int32_t *idx, float *val) {
  const int64_t total = rows * k;
  for (int64_t t = dtk::global_thread(); t < total; t += dtk::grid_threads()) {
    const int64_t row = t / k;
    const int64_t r = t - row * k;
    int32_t c = -1;
    float v = -INFINITY;
    if (r < cols && keys_sorted[row * cols + r] > -INFINITY) {
      c = vals_sorted[row * cols + r];
      v = scores[row * cols + c];
    }
    idx[t] = c;
    val[t] = v;
  }
}

}  // namespace

extern "C" {

cudaError_t dtk_topk_small(cudaStream_t s, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx,
                           float *val) {
  if (k <= 16) return launch_small<16, 256>(s, scores, n, cols, k, idx, val);
  if (k <= 32) return launch_small<32, 256>(s, scores, n, cols, k, idx, val);
  if (k <= DTK_TOPK_SMALL_MAX) return launch_small<DTK_TOPK_SMALL_MAX, 128>(s, scores, n, cols, k, idx, val);
  return cudaErrorInvalidValue;
}

cudaError_t dtk_topk_sort_prepare(cudaStream_t s, const float *scores, int64_t rows, int64_t cols, float *keys,
                                  int32_t *vals, int64_t *offsets) {
  DTK_LAUNCH(dtk::grid_for(rows * cols), dtk::kThreads, s, topk_sort_prepare_kernel)
  (scores, rows, cols, keys, vals, offsets);
  return dtk::after_launch(s);
}

cudaError_t dtk_segmented_sort_desc(cudaStream_t s, void *temp, size_t *temp_bytes, const float *keys_in,
                                    float *keys_out, const int32_t *vals_in, int32_t *vals_out, int64_t items,
                                    int64_t segments, const int64_t *offsets) {
  cudaError_t e = cub::DeviceSegmentedSort::StableSortPairsDescending(
      temp, *temp_bytes, keys_in, keys_out, vals_in, vals_out, items, segments, offsets, offsets + 1, s);
  if (e != cudaSuccess || temp == nullptr) return e;
  return dtk::after_launch(s);
}

cudaError_t dtk_topk_sort_pick(cudaStream_t s, const float *scores, const float *keys_sorted,
                               const int32_t *vals_sorted, int64_t rows, int64_t cols, int k, int32_t *idx,
                               float *val) {
  DTK_LAUNCH(dtk::grid_for(rows * k), dtk::kThreads, s, topk_sort_pick_kernel)
  (scores, keys_sorted, vals_sorted, rows, cols, k, idx, val);
  return dtk::after_launch(s);
}

}  // extern "C"
