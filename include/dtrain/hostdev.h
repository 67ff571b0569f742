/* hostdev.h: marks per-element math that is shared by the CPU backend and
 * the CUDA kernels. Under nvcc DT_HD is `__host__ __device__`; in plain C it
 * is empty, so the CPU tests exercise exactly the arithmetic the GPU runs. */
#ifndef DTRAIN_HOSTDEV_H
#define DTRAIN_HOSTDEV_H

#if defined(__CUDACC__)
#define DT_HD __host__ __device__
#else
#define DT_HD
#endif

#endif
