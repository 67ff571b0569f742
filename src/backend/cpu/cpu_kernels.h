/* cpu_kernels.h: the CPU backend's compute-bound inner loops, built twice.
 *
 * cpu_kernels.inc is compiled once for the x86-64 baseline (SSE2) and once
 * with AVX2 enabled (cpu_kernels_avx2.c); the backend picks the widest set
 * the processor supports when it is created. The two sets run the same
 * per-element operations (no FMA contraction, no reordered sums), so they
 * give the same bits: test_backend_cpu_simd checks that. Private to
 * src/backend/cpu (and its tests).
 */
#ifndef DTRAIN_BACKEND_CPU_KERNELS_H
#define DTRAIN_BACKEND_CPU_KERNELS_H

#include <stdint.h>

#include "dtrain/backend.h"

typedef struct {
  const char *name; /* "sse2" (baseline) or "avx2" */
  /* GRU step for sequences [s0, s1): see dt_backend.gru_step_fwd/bwd */
  void (*gru_fwd_rows)(const float *xg, const float *hg, const float *h_prev, float *h_out, float *cache, int64_t s0,
                       int64_t s1, int h);
  void (*gru_bwd_rows)(const float *dh_out, const float *h_prev, const float *cache, float *dxg, float *dhg,
                       float *dh_prev, int64_t s0, int64_t s1, int h);
  /* rows [r0, r1) of x [rows, cols] times mask/(1-p) (after a ReLU when
   * relu), the mask drawn as dt_dropout_draws does */
  void (*dropout_rows)(float *x, int64_t r0, int64_t r1, int cols, int relu, float p, const dt_dropout_key *key);
  /* n elements of Adam: g = grad_scale*grad + wd*p, then dt_adam_update */
  void (*adam_span)(float *p, const float *g, float *m, float *v, int64_t n, const dt_adam_hyper *hy, float bc1,
                    float bc2);
} dt_cpu_kernels;

extern const dt_cpu_kernels dt_cpu_kernels_base;
/* NULL fields (name "none") when the build has no AVX2 variant */
extern const dt_cpu_kernels dt_cpu_kernels_avx2;

/* The widest set this processor runs. */
const dt_cpu_kernels *dt_cpu_kernels_best(void);

#endif
