// probe.cu: the smallest real kernel, used by the backend's start-up check
// (a launch that fails here names the driver/architecture problem before any
// training state exists).
#include <cuda_runtime.h>

extern "C" {

__global__ static void dt_probe_kernel(int *out) { *out = 42; }

// Launches one thread that writes 42 to *dev_out. Returns the launch's error.
cudaError_t dt_cuda_probe_launch(int *dev_out, cudaStream_t stream) {
  dt_probe_kernel<<<1, 1, 0, stream>>>(dev_out);
  return cudaGetLastError();
}

}  // extern "C"
