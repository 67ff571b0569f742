/* The baseline build of cpu_kernels.inc (x86-64: SSE2; elsewhere: the
 * compiler's default), and the choice of the widest set at run time. */
#define KERNEL(name) name##_base
#define KERNEL_SET_NAME "baseline"
#include "backend/cpu/cpu_kernels.inc"

const dt_cpu_kernels *dt_cpu_kernels_best(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (dt_cpu_kernels_avx2.gru_fwd_rows && __builtin_cpu_supports("avx2")) return &dt_cpu_kernels_avx2;
#endif
  return &dt_cpu_kernels_base;
}
