// common.cuh: what every kernel file shares: launch shapes, the after-launch
// check, and deterministic warp/block reductions.
//
// Determinism: every reduction here combines values in an order fixed by
// the thread layout alone (butterfly shuffles, then warps in index order),
// never by scheduling, and no result is accumulated with atomics.
#ifndef DTRAIN_KERNELS_COMMON_CUH
#define DTRAIN_KERNELS_COMMON_CUH

#include <stdint.h>

#if defined(DTK_EMU)
// Built by g++ for the CPU emulator (-DDTRAIN_CUDA_EMU=ON): threads run
// as fibers, launches go through DTK_LAUNCH (kernels/emu/emu.h).
#include "emu/emu.h"
#else
#include <cuda_runtime.h>
// kernel<<<grid, block, 0, stream>>>(args), written so that the emulator
// can run the same source.
#define DTK_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<(grid), (block), 0, (stream)>>>
#endif

#include "backend/cuda/cuda_kernels.h"

namespace dtk {

constexpr int kThreads = 256;
// Kernels that write the partial sums of a reduction (dtk_partial_count)
// run dtk_partial_count(n) blocks of this many threads.
constexpr int kReduceThreads = 256;
// Grid-stride loops cover any size; more blocks than this only add
// scheduling overhead (a 132-SM H100 runs 8 x 256-thread blocks per SM).
constexpr int64_t kMaxBlocks = 1 << 16;

inline unsigned grid_for(int64_t items, int threads_per_block = kThreads) {
  int64_t b = (items + threads_per_block - 1) / threads_per_block;
  if (b > kMaxBlocks) b = kMaxBlocks;
  if (b < 1) b = 1;
  return (unsigned)b;
}

// Blocks for "one block (or warp group) per row" kernels with a grid-stride
// loop over rows.
inline unsigned grid_rows(int64_t rows) {
  int64_t b = rows < 1 ? 1 : rows;
  return (unsigned)(b > kMaxBlocks ? kMaxBlocks : b);
}

// Called right after each launch: the launch's own error, and in sync-debug
// mode (launch.cu) the kernel's execution error too, so that the failing
// kernel is the one the host side names.
inline cudaError_t after_launch(cudaStream_t s) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && dtk_sync_debug()) e = cudaStreamSynchronize(s);
  return e;
}

__device__ __forceinline__ int64_t global_thread() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_threads() { return (int64_t)gridDim.x * blockDim.x; }

// Butterfly sum: every lane ends with the same total, combined in the same
// order on every run.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Sum over a block of THREADS threads (a multiple of 32); `smem` holds
// THREADS/32 values. The result is valid in every thread. Callers that use
// smem again must __syncthreads() first.
template <typename T, int THREADS>
__device__ __forceinline__ T block_sum(T v, T *smem) {
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "block size");
  constexpr int kWarps = THREADS / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  T total = lane < kWarps ? smem[lane] : T(0);
  total = warp_sum(total);
  return total;
}

}  // namespace dtk

#endif
