/* The AVX2 build of cpu_kernels.inc, chosen at run time on processors that
 * have AVX2 (no FMA: contraction would change the bits). Everything this
 * file includes after the pragma, op_math.h's inline helpers too, is
 * compiled for AVX2. */
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif
#define KERNEL(name) name##_avx2
#define KERNEL_SET_NAME "avx2"
#include "backend/cpu/cpu_kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
#include <stddef.h>

#include "backend/cpu/cpu_kernels.h"
const dt_cpu_kernels dt_cpu_kernels_avx2 = {"none", NULL, NULL, NULL, NULL};
#endif
