/* cuda_check.c: the messages of cuda_check.h's macros. */
#include "backend/cuda/cuda_check.h"

#include <string.h>

#include "backend/cuda/cuda_kernels.h"
#include "dtrain/error.h"

/* The path from the repository root ("src/backend/cuda/x.c"), not the
 * build machine's absolute path. */
static const char *short_path(const char *file) {
  const char *p = strstr(file, "src/backend/");
  return p ? p : file;
}

/* Errors a running kernel leaves behind: they are reported by whichever
 * CUDA call comes next, not by the kernel that caused them. */
static int is_async_fault(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout: return 1;
    default: return 0;
  }
}

static const char *hint(cudaError_t e) {
  if (e == cudaErrorMemoryAllocation)
    return "; the GPU is out of memory: lower train.batch_size or the evaluation chunk, or use a GPU with more memory";
  if (e == cudaErrorNoKernelImageForDevice)
    return "; this build has no code for the GPU's architecture: rebuild with -DCMAKE_CUDA_ARCHITECTURES=<its "
           "compute capability, e.g. 75>";
  if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice)
    return "; check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or use backend.name = \"cpu\"";
  if (is_async_fault(e))
    return dtk_sync_debug() ? "; a kernel failed while running (sync-debug mode: it is the one named here)"
                            : "; a kernel launched earlier failed while running: run again with "
                              "DTRAIN_CUDA_SYNC_DEBUG=1 in the environment to name it, or under compute-sanitizer";
  return "";
}

int dt_cuda_fail_at(cudaError_t e, const char *call, const char *file, int line) {
  return dt_fail(DT_EXIT_RUNTIME, "CUDA error at %s:%d: %s failed: %s (%s)%s", short_path(file), line, call,
                 cudaGetErrorName(e), cudaGetErrorString(e), hint(e));
}

int dt_cublas_fail_at(cublasStatus_t s, const char *call, const char *file, int line) {
  return dt_fail(DT_EXIT_RUNTIME, "cuBLAS error at %s:%d: %s failed: %s (%s)", short_path(file), line, call,
                 cublasGetStatusName(s), cublasGetStatusString(s));
}

int dt_cuda_kernel_fail_at(cudaError_t e, const char *kernel, const char *file, int line) {
  return dt_fail(DT_EXIT_RUNTIME, "CUDA error at %s:%d: kernel %s failed: %s (%s)%s", short_path(file), line, kernel,
                 cudaGetErrorName(e), cudaGetErrorString(e), hint(e));
}
