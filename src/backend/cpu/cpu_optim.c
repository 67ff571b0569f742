/* Optimizers: dense Adam over one buffer (one fused pass: gradient scaling,
 * weight decay, moments, update), lazy Adam and row-wise Adagrad on the
 * touched rows of an embedding table. */
#include <math.h>

#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

static int check_hyper(const char *op, const dt_adam_hyper *hy) {
  if (!(hy->lr >= 0.0f) || !(hy->eps >= 0.0f) || !(hy->beta1 >= 0.0f && hy->beta1 < 1.0f) ||
      !(hy->beta2 >= 0.0f && hy->beta2 < 1.0f))
    return dt_fail(DT_EXIT_RUNTIME,
                   "cpu backend %s: bad hyper-parameters lr=%g beta1=%g beta2=%g eps=%g (need lr, eps >= 0 and "
                   "betas in [0, 1))",
                   op, (double)hy->lr, (double)hy->beta1, (double)hy->beta2, (double)hy->eps);
  return 0;
}

/* elements per parallel chunk of dense Adam */
enum { ADAM_CHUNK = 16384 };

int dt_cpu_adam(dt_backend *be, float *param, const float *grad, float *m, float *v, int64_t n, dt_adam_hyper hyper) {
  DT_CPU_REQUIRE(n >= 0, "adam", "negative length %lld", (long long)n);
  DT_CPU_REQUIRE(hyper.step >= 1, "adam", "step %lld < 1 (bias correction needs t >= 1)", (long long)hyper.step);
  DT_TRY(check_hyper("adam", &hyper));
  float bc1 = dt_adam_bias_correction(hyper.beta1, hyper.step);
  float bc2 = dt_adam_bias_correction(hyper.beta2, hyper.step);
  const dt_cpu_kernels *k = dt_cpu(be)->kern;
  int64_t chunks = (n + ADAM_CHUNK - 1) / ADAM_CHUNK;
  int nt = dt_cpu_threads_for(be, n * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t ch = 0; ch < chunks; ch++) {
    int64_t i0 = ch * ADAM_CHUNK, len = n - i0 < ADAM_CHUNK ? n - i0 : ADAM_CHUNK;
    k->adam_span(param + i0, grad + i0, m + i0, v + i0, len, &hyper, bc1, bc2);
  }
  return 0;
}

int dt_cpu_adam_rows(dt_backend *be, float *table, float *m_table, float *v_table, int64_t *row_step,
                     const int32_t *ids, const float *grads, int64_t m, int dim, dt_adam_hyper hyper) {
  DT_CPU_REQUIRE(m >= 0 && dim >= 0, "adam_rows", "negative shape m=%lld dim=%d", (long long)m, dim);
  DT_TRY(check_hyper("adam_rows", &hyper));
  /* ids are unique, so rows (and their step counters) never collide */
  dt_cpu_impl *impl = dt_cpu(be);
  const dt_cpu_kernels *kern = impl->kern;
  /* the bias corrections of every step count this call reaches, from a
   * table filled once per t (the same values pow() gives: the same bits) */
  int64_t t_max = 0;
  for (int64_t k = 0; k < m; k++)
    if (row_step[ids[k]] + 1 > t_max) t_max = row_step[ids[k]] + 1;
  if (impl->bc_beta1 != hyper.beta1 || impl->bc_beta2 != hyper.beta2) {
    impl->bc_n = 0;
    impl->bc_beta1 = hyper.beta1;
    impl->bc_beta2 = hyper.beta2;
  }
  enum { BC_TABLE_MAX = 1 << 22 }; /* 32 MB; later steps call pow() */
  const int64_t want = t_max < BC_TABLE_MAX ? t_max : BC_TABLE_MAX;
  if (want > impl->bc_cap) {
    int64_t cap = impl->bc_cap ? impl->bc_cap : 4096;
    while (cap < want) cap *= 2;
    impl->bc1 = dt_xrealloc(impl->bc1, (size_t)cap * sizeof(float));
    impl->bc2 = dt_xrealloc(impl->bc2, (size_t)cap * sizeof(float));
    impl->bc_cap = cap;
  }
  for (int64_t t = impl->bc_n + 1; t <= want; t++) {
    impl->bc1[t - 1] = dt_adam_bias_correction(hyper.beta1, t);
    impl->bc2[t - 1] = dt_adam_bias_correction(hyper.beta2, t);
  }
  if (want > impl->bc_n) impl->bc_n = want;
  const float *bc1_tab = impl->bc1, *bc2_tab = impl->bc2;
  const int64_t bc_n = impl->bc_n;
  int nt = dt_cpu_threads_for(be, m * dim * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t k = 0; k < m; k++) {
    if (k + 4 < m) { /* the rows are scattered over the tables */
      int64_t ahead = (int64_t)ids[k + 4] * dim;
      dt_cpu_prefetch(table + ahead, (size_t)dim * sizeof(float));
      dt_cpu_prefetch(m_table + ahead, (size_t)dim * sizeof(float));
      dt_cpu_prefetch(v_table + ahead, (size_t)dim * sizeof(float));
    }
    int64_t row = ids[k];
    int64_t t = ++row_step[row];
    float bc1 = t <= bc_n ? bc1_tab[t - 1] : dt_adam_bias_correction(hyper.beta1, t);
    float bc2 = t <= bc_n ? bc2_tab[t - 1] : dt_adam_bias_correction(hyper.beta2, t);
    int64_t off = row * dim;
    kern->adam_span(table + off, grads + k * dim, m_table + off, v_table + off, dim, &hyper, bc1, bc2);
  }
  return 0;
}

int dt_cpu_adagrad_rows(dt_backend *be, float *table, float *acc, const int32_t *ids, const float *grads, int64_t m,
                        int dim, dt_adam_hyper hyper) {
  DT_CPU_REQUIRE(m >= 0 && dim > 0, "adagrad_rows", "bad shape m=%lld dim=%d", (long long)m, dim);
  DT_TRY(check_hyper("adagrad_rows", &hyper));
  const float gs = hyper.grad_scale, wd = hyper.weight_decay;
  int nt = dt_cpu_threads_for(be, m * dim * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t k = 0; k < m; k++) {
    float *restrict w = table + (int64_t)ids[k] * dim;
    const float *restrict g = grads + k * dim;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < dim; j++) {
      float gj = dt_optim_grad(g[j], w[j], gs, wd);
      ss += gj * gj;
    }
    float a = dt_adagrad_acc(acc[ids[k]], ss, dim);
    acc[ids[k]] = a;
    const float step = dt_adagrad_step(hyper.lr, a, hyper.eps);
    /* g is recomputed from the row before the row changes */
    for (int j = 0; j < dim; j++) w[j] = dt_adagrad_update(w[j], dt_optim_grad(g[j], w[j], gs, wd), step);
  }
  return 0;
}
