/* cuda_check.h: checking every CUDA runtime, cuBLAS and kernel-wrapper call
 * of the CUDA backend's host side.
 *
 * Each macro evaluates the call once and, when it failed, records a message
 * with dt_fail naming the call (or kernel wrapper), the source file and line
 * and the library's error name and text, then returns DT_EXIT_RUNTIME from
 * the enclosing function. Errors that a kernel raises while running surface
 * at the next CUDA call; their message says how to find the kernel.
 */
#ifndef DTRAIN_CUDA_CHECK_H
#define DTRAIN_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

int dt_cuda_fail_at(cudaError_t e, const char *call, const char *file, int line);
int dt_cublas_fail_at(cublasStatus_t s, const char *call, const char *file, int line);
int dt_cuda_kernel_fail_at(cudaError_t e, const char *kernel, const char *file, int line);

#define DT_CUDA(call)                                                                             \
  do {                                                                                            \
    cudaError_t dt_cuda_e_ = (call);                                                              \
    if (dt_cuda_e_ != cudaSuccess) return dt_cuda_fail_at(dt_cuda_e_, #call, __FILE__, __LINE__); \
  } while (0)

#define DT_CUBLAS(call)                                                                                           \
  do {                                                                                                            \
    cublasStatus_t dt_cublas_s_ = (call);                                                                         \
    if (dt_cublas_s_ != CUBLAS_STATUS_SUCCESS) return dt_cublas_fail_at(dt_cublas_s_, #call, __FILE__, __LINE__); \
  } while (0)

/* DT_KERNEL(dtk_add_bias, (stream, y, bias, rows, cols)): a launch wrapper of
 * cuda_kernels.h, named in the message by its function name. */
#define DT_KERNEL(fn, args)                                                                                \
  do {                                                                                                     \
    cudaError_t dt_kernel_e_ = fn args;                                                                    \
    if (dt_kernel_e_ != cudaSuccess) return dt_cuda_kernel_fail_at(dt_kernel_e_, #fn, __FILE__, __LINE__); \
  } while (0)

#endif
