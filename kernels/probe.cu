// probe.cu: the smallest real kernel, launched once when the CUDA backend is
// created: a build without code for the device's architecture, or a broken
// driver, fails here with a clear message before any training state exists.
#include "common.cuh"

namespace {

__global__ void probe_kernel(int *out) { *out = 42; }

}  // namespace

extern "C" {

cudaError_t dt_cuda_probe_launch(int *dev_out, cudaStream_t stream) {
  DTK_LAUNCH(1, 1, stream, probe_kernel)(dev_out);
  return dtk::after_launch(stream);
}

}  // extern "C"
