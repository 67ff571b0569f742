// emu.h: what a kernel file needs from CUDA, for running the kernels on the
// CPU (a -DDTRAIN_CUDA_EMU=ON build compiles kernels/*.cu as C++ with
// -DDTK_EMU; kernels/README.md).
//
// Not a simulator of the GPU's timing or memory model: each launch runs its
// blocks one after another, and a block's threads as fibers on one OS
// thread, switched at __syncthreads and at warp shuffles. That is enough to
// execute the kernels' index arithmetic, loops, barriers and reductions on
// real inputs, to compare their results with the CPU backend, and (built
// with AddressSanitizer) to catch out-of-bounds accesses, since device
// memory is host memory here. A barrier that some threads never reach is
// reported as a deadlock; a full-warp shuffle that not every lane reaches,
// likewise.
#ifndef DTRAIN_KERNELS_EMU_H
#define DTRAIN_KERNELS_EMU_H

#include <cuda_runtime_api.h> /* cudaError_t, cudaStream_t, dim3, uint3, float4 (host headers) */
#include <math.h>
#include <stdint.h>
#include <string.h>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time, so function-scope statics are the block's
// shared memory.
#define __shared__ static
#define __launch_bounds__(...)

namespace dtk_emu {

extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;

void block_barrier();
// Swaps `bytes` bytes between the lanes of the calling thread's warp: lane
// l's `in` is returned to lane l ^ lane_xor.
void warp_exchange(const void *in, void *out, int bytes, unsigned mask, int lane_xor);

typedef void (*grid_body)(void *ctx);
// Runs body(ctx) once per thread of the grid; a bad launch configuration
// sets the error returned by the next cudaGetLastError.
void run_grid(dim3 grid, dim3 block, const char *kernel, grid_body body, void *ctx);

template <typename F>
struct launch {
  dim3 grid, block;
  const char *name;
  F *kernel;
  // The arguments are copied once per launch, as CUDA does, and every
  // thread of the grid calls the kernel with that copy.
  template <typename... Args>
  void operator()(Args... args) {
    F *k = kernel;
    auto body = [&]() { k(args...); };
    using body_t = decltype(body);
    run_grid(
        grid, block, name, [](void *p) { (*static_cast<body_t *>(p))(); }, &body);
  }
};

template <typename F>
launch<F> make_launch(dim3 grid, dim3 block, const char *name, F *kernel) {
  return launch<F>{grid, block, name, kernel};
}

}  // namespace dtk_emu

#define threadIdx dtk_emu::thread_idx
#define blockIdx dtk_emu::block_idx
#define blockDim dtk_emu::block_dim
#define gridDim dtk_emu::grid_dim

inline void __syncthreads() { dtk_emu::block_barrier(); }

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_xor) {
  T out;
  dtk_emu::warp_exchange(&v, &out, (int)sizeof(T), mask, lane_xor);
  return out;
}

#define DTK_LAUNCH(grid, block, stream, ...) dtk_emu::make_launch(dim3(grid), dim3(block), #__VA_ARGS__, __VA_ARGS__)

#endif
