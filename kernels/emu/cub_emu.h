// cub_emu.h: the few CUB device algorithms the kernels call, for the CPU
// emulator (DTK_EMU), with CUB's calling convention (a NULL temp pointer
// asks for the scratch size) and its documented results: radix sorts are
// stable, descending float sorts treat -0.0 and +0.0 as equal.
#ifndef DTRAIN_KERNELS_CUB_EMU_H
#define DTRAIN_KERNELS_CUB_EMU_H

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace cub {

struct DeviceRadixSort {
  template <typename K, typename V, typename N>
  static cudaError_t SortPairs(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out, const V *vals_in,
                               V *vals_out, N n, int begin_bit = 0, int end_bit = sizeof(K) * 8,
                               cudaStream_t stream = 0) {
    (void)stream;
    if (!temp) {
      temp_bytes = 256;  // something, so that callers allocate and pass it
      return cudaSuccess;
    }
    if (begin_bit != 0 || end_bit != (int)sizeof(K) * 8) return cudaErrorNotSupported;
    std::vector<std::pair<K, V>> kv((size_t)n);
    for (size_t i = 0; i < (size_t)n; i++) kv[i] = {keys_in[i], vals_in[i]};
    std::stable_sort(kv.begin(), kv.end(),
                     [](const std::pair<K, V> &a, const std::pair<K, V> &b) { return a.first < b.first; });
    for (size_t i = 0; i < (size_t)n; i++) {
      keys_out[i] = kv[i].first;
      vals_out[i] = kv[i].second;
    }
    return cudaSuccess;
  }
};

struct DeviceScan {
  template <typename In, typename Out, typename N>
  static cudaError_t ExclusiveSum(void *temp, size_t &temp_bytes, In in, Out out, N n, cudaStream_t stream = 0) {
    (void)stream;
    if (!temp) {
      temp_bytes = 256;
      return cudaSuccess;
    }
    // In CUB the sum runs in the input's value type.
    using T = typename std::remove_cv<typename std::remove_reference<decltype(in[0])>::type>::type;
    T acc = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
      T v = in[i];
      out[i] = acc;
      acc = acc + v;
    }
    return cudaSuccess;
  }
};

struct DeviceSegmentedSort {
  template <typename K, typename V, typename B, typename E>
  static cudaError_t StableSortPairsDescending(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out,
                                               const V *vals_in, V *vals_out, int64_t items, int64_t segments, B begin,
                                               E end, cudaStream_t stream = 0) {
    (void)stream;
    (void)items;
    if (!temp) {
      temp_bytes = 256;
      return cudaSuccess;
    }
    for (int64_t s = 0; s < segments; s++) {
      const int64_t b = begin[s], e = end[s];
      std::vector<std::pair<K, V>> kv((size_t)(e - b));
      for (int64_t i = b; i < e; i++) kv[(size_t)(i - b)] = {keys_in[i], vals_in[i]};
      std::stable_sort(kv.begin(), kv.end(), [](const std::pair<K, V> &x, const std::pair<K, V> &y) {
        return x.first > y.first;  // -0.0 == +0.0: equal, so input order kept
      });
      for (int64_t i = b; i < e; i++) {
        keys_out[i] = kv[(size_t)(i - b)].first;
        vals_out[i] = kv[(size_t)(i - b)].second;
      }
    }
    return cudaSuccess;
  }
};

}  // namespace cub

#endif
