/* op_math.h: per-element math shared by the CPU backend and the CUDA kernels.
 *
 * Everything here is DT_HD static inline: the CPU backend's loops and the
 * kernels call the same functions, so the CPU tests check the arithmetic the
 * GPU runs. Keep these free of memory layout: they take scalars (or a few
 * pointers to one row) and return results.
 */
#ifndef DTRAIN_OP_MATH_H
#define DTRAIN_OP_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dtrain/hostdev.h"
#include "dtrain/rng.h"

/* e^x within 2 ulp of expf, saturating outside [-87, 88] (so e^x stays a
 * normal float). Branch-free, so a CPU loop calling it vectorises (libm's
 * expf does not), and identical source on the GPU: GRU gates and sigmoid
 * agree between backends to rounding. Cody-Waite reduction x = n ln2 + r,
 * |r| <= ln2/2, then a degree-7 polynomial for e^r (Cephes coefficients). */
DT_HD static inline float dt_exp(float x) {
  /* clamp (NaN goes to -87 here, so the int conversion below is defined,
   * and comes back as NaN at the end) */
  float xc = x > -87.0f ? x : -87.0f;
  xc = xc < 88.0f ? xc : 88.0f;
  /* n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer */
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f; /* ln2 split in two for an exact product */
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  /* 2^n from its exponent bits (n in [-126, 127]) */
  uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return x == x ? p * scale : x;
}

DT_HD static inline float dt_sigmoid(float x) {
  /* dt_exp saturates, so 1 + e^-x never overflows */
  return 1.0f / (1.0f + dt_exp(-x));
}

/* tanh within 3 ulp, branch-free (both halves computed, one selected): an
 * odd polynomial below |x| = 0.625 keeps the relative accuracy near 0,
 * 1 - 2/(e^2|x| + 1) above (Cephes tanhf's split and coefficients). */
DT_HD static inline float dt_tanh(float x) {
  float ax = fabsf(x);
  float z = x * x;
  float small = -5.70498872745e-3f;
  small = small * z + 2.06390887954e-2f;
  small = small * z - 5.37397155531e-2f;
  small = small * z + 1.33314422036e-1f;
  small = small * z - 3.33332819422e-1f;
  small = small * z * x + x;
  float big = 1.0f - 2.0f / (dt_exp(2.0f * ax) + 1.0f);
  big = x < 0.0f ? -big : big;
  return ax < 0.625f ? small : big;
}

/* softplus(x) = log(1 + e^x), stable for large |x| */
DT_HD static inline float dt_softplus(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/* ---- GRU gates (torch.nn.GRU order r, z, n) ---- */

/* Forward of one hidden unit. xr,xz,xn: input pre-activations (with b_ih);
 * hr,hz,hn: hidden pre-activations (with b_hh); hp: previous state.
 * Returns h'; writes r, z, n to the cache. */
DT_HD static inline float dt_gru_unit_fwd(float xr, float xz, float xn, float hr, float hz, float hn, float hp,
                                          float *r_out, float *z_out, float *n_out) {
  float r = dt_sigmoid(xr + hr);
  float z = dt_sigmoid(xz + hz);
  float n = dt_tanh(xn + r * hn);
  *r_out = r;
  *z_out = z;
  *n_out = n;
  return (1.0f - z) * n + z * hp;
}

/* Backward of one hidden unit, given dh' and the cached r, z, n, hn and the
 * previous state hp. Writes the gradients of the six pre-activations and
 * returns the direct gradient into hp (z * dh'). */
DT_HD static inline float dt_gru_unit_bwd(float dh, float r, float z, float n, float hn, float hp, float *dxr,
                                          float *dxz, float *dxn, float *dhr, float *dhz, float *dhn) {
  float dn = dh * (1.0f - z);
  float dz = dh * (hp - n);
  float dn_pre = dn * (1.0f - n * n);
  float dr = dn_pre * hn;
  float dr_pre = dr * r * (1.0f - r);
  float dz_pre = dz * z * (1.0f - z);
  *dxr = dr_pre;
  *dxz = dz_pre;
  *dxn = dn_pre;
  *dhr = dr_pre;
  *dhz = dz_pre;
  *dhn = dn_pre * r;
  return dh * z;
}

/* ---- Dropout ---- */

/* The four draws behind columns 4*group .. 4*group+3 of the row keyed by
 * row_key; column col uses .v[col & 3] of group col >> 2. Loops over a row
 * call this once per four columns (one Philox call instead of four). */
DT_HD static inline dt_rand4 dt_dropout_draws(uint64_t seed, uint32_t step, uint32_t site, int64_t row_key, int group) {
  return dt_philox(seed, DT_RNG_DROPOUT, step, site * 0x10000u + (uint32_t)group, (uint32_t)row_key,
                   (uint32_t)((uint64_t)row_key >> 32));
}

/* Whether the element with draw `draw` survives dropout with probability p. */
DT_HD static inline int dt_dropout_keep_draw(uint32_t draw, float p) { return dt_u01(draw) >= p; }

/* Whether element (row_key, col) survives dropout with probability p at
 * (seed, step, site). Four columns share one Philox call. */
DT_HD static inline int dt_dropout_keep(uint64_t seed, uint32_t step, uint32_t site, int64_t row_key, int col,
                                        float p) {
  dt_rand4 r = dt_dropout_draws(seed, step, site, row_key, col >> 2);
  return dt_dropout_keep_draw(r.v[col & 3], p);
}

/* ---- Optimizers ---- */

/* The gradient an optimizer applies: the clipping factor times the
 * gradient, plus L2 weight decay of the parameter. */
DT_HD static inline float dt_optim_grad(float g, float p, float grad_scale, float weight_decay) {
  return grad_scale * g + weight_decay * p;
}

/* Bias correction 1 - beta^t, computed in double as torch.optim.Adam does
 * (its step count is a Python number) and then rounded to float. Dense
 * Adam and the lazy Adam rows, on the host and in the kernels. */
DT_HD static inline float dt_adam_bias_correction(float beta, int64_t t) {
  return (float)(1.0 - pow((double)beta, (double)t));
}

/* One Adam update of one parameter. bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
 * g already includes grad scaling and weight decay. */
DT_HD static inline float dt_adam_update(float p, float g, float *m, float *v, float lr, float beta1, float beta2,
                                         float eps, float bc1, float bc2) {
  float mm = beta1 * *m + (1.0f - beta1) * g;
  float vv = beta2 * *v + (1.0f - beta2) * g * g;
  *m = mm;
  *v = vv;
  /* torch.optim.Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
  float denom = sqrtf(vv) / sqrtf(bc2) + eps;
  return p - (lr / bc1) * mm / denom;
}

/* Row-wise Adagrad (v3's recipe): one accumulator per row grows by the
 * row's mean squared gradient (sumsq over dim elements, summed by the
 * caller); every element then moves by the same step lr / (sqrt(acc) +
 * eps) times its gradient: the step is computed once per row. */
DT_HD static inline float dt_adagrad_acc(float acc, float sumsq, int dim) { return acc + sumsq / (float)dim; }
DT_HD static inline float dt_adagrad_step(float lr, float acc, float eps) { return lr / (sqrtf(acc) + eps); }
DT_HD static inline float dt_adagrad_update(float p, float g, float step) { return p - step * g; }

/* ---- Gate ---- */

/* softmax of three logits */
DT_HD static inline void dt_softmax3(const float *l, float *a) {
  float mx = l[0] > l[1] ? l[0] : l[1];
  mx = mx > l[2] ? mx : l[2];
  float e0 = expf(l[0] - mx), e1 = expf(l[1] - mx), e2 = expf(l[2] - mx);
  float s = e0 + e1 + e2;
  a[0] = e0 / s;
  a[1] = e1 / s;
  a[2] = e2 / s;
}

/* Backward of dt_softmax3: dl = a * (da - <a, da>) */
DT_HD static inline void dt_softmax3_bwd(const float *a, const float *da, float *dl) {
  float dot = a[0] * da[0] + a[1] * da[1] + a[2] * da[2];
  for (int k = 0; k < 3; k++) dl[k] = a[k] * (da[k] - dot);
}

/* alpha*log(alpha + 1e-8): one term of the negated entropy (its sum is
 * added in double) */
DT_HD static inline float dt_neg_entropy(float a) { return a * logf(a + 1e-8f); }

/* d/dalpha of alpha*log(alpha + 1e-8) */
DT_HD static inline float dt_neg_entropy_grad(float a) { return logf(a + 1e-8f) + a / (a + 1e-8f); }

/* The gate regularisers' gradient coefficients over a global batch of
 * n_global rows (MODEL.md "Loss"), in float: the entropy term's
 * lambda_ent / N, and the balance term's d/dalpha_ik of
 * lambda_bal sum_k (mean_k - 1/3)^2 = 2 lambda_bal (mean_k - 1/3) / N, the
 * same for every row. */
DT_HD static inline float dt_gate_ent_scale(float lambda_ent, int64_t n_global) { return lambda_ent / (float)n_global; }
DT_HD static inline float dt_gate_bal_grad(float lambda_bal, float mean_k, int64_t n_global) {
  return 2.0f * lambda_bal * (mean_k - 1.0f / 3.0f) / (float)n_global;
}
/* What the regularisers add to d alpha_ik. */
DT_HD static inline float dt_gate_reg_grad(float a, float ent_scale, float bal_k) {
  return ent_scale * dt_neg_entropy_grad(a) + bal_k;
}

/* ---- BPR ---- */

/* One pair: returns softplus(-(sp - sn)) and writes d/dsp (d/dsn is its negation). */
DT_HD static inline float dt_bpr_pair(float sp, float sn, float *dsp) {
  float x = sp - sn;
  *dsp = -dt_sigmoid(-x);
  return dt_softplus(-x);
}

/* ==== Sequence encoder (SASRec) and softmax losses (issue 13) ==== */

/* ---- layer norm ---- */

/* 1 / sqrt(var + eps) of a row's biased variance */
DT_HD static inline float dt_layer_norm_rstd(float var, float eps) { return 1.0f / sqrtf(var + eps); }

/* y = (x - mean) rstd w + b */
DT_HD static inline float dt_layer_norm_fwd(float x, float mean, float rstd, float w, float b) {
  return (x - mean) * rstd * w + b;
}

/* dx of one element: g = dy w, xhat = (x - mean) rstd, and over the row
 * mean_g = mean(g), mean_gx = mean(g xhat):  dx = rstd (g - mean_g - xhat mean_gx). */
DT_HD static inline float dt_layer_norm_bwd(float g, float xhat, float rstd, float mean_g, float mean_gx) {
  return rstd * (g - mean_g - xhat * mean_gx);
}

/* ---- softmax (attention rows, cross-entropy) ---- */

/* e^(s - max), the unnormalised term of a softmax whose row maximum is max
 * (s <= max, so no overflow; far below max it is ~1e-38, not 0, which
 * next to the row's largest term 1 is below float resolution) */
DT_HD static inline float dt_softmax_term(float s, float max) { return dt_exp(s - max); }

/* Backward of a softmax row p = softmax(s): ds_j = p_j (dp_j - dot), with
 * dot = sum_j p_j dp_j over the row. */
DT_HD static inline float dt_softmax_bwd(float p, float dp, float dot) { return p * (dp - dot); }

/* Online log-sum-exp: merges a part (m2, sum2) = (max, sum e^(s - max)) of a
 * row into the running (*m, *sum). An empty part (sum2 = 0, m2 = -inf)
 * changes nothing; an empty running state takes the part as it is. */
DT_HD static inline void dt_lse_merge(float *m, float *sum, float m2, float sum2) {
  if (!(sum2 > 0.0f)) return;
  if (!(*sum > 0.0f)) {
    *m = m2;
    *sum = sum2;
  } else if (m2 > *m) {
    *sum = *sum * dt_exp(*m - m2) + sum2;
    *m = m2;
  } else {
    *sum = *sum + sum2 * dt_exp(m2 - *m);
  }
}

/* log sum_j e^(s_j) from the running (max, sum) */
DT_HD static inline float dt_lse(float m, float sum) { return m + logf(sum); }

/* d/ds of scale * (lse - s_target) for one score: scale (e^(s - lse) - [target]) */
DT_HD static inline float dt_xent_grad(float s, float lse, int is_target, float scale) {
  return scale * (dt_exp(s - lse) - (is_target ? 1.0f : 0.0f));
}

/* ---- binary cross-entropy ---- */

/* One score's term: -log sig(s) = softplus(-s) for the positive, -log
 * sig(-s) = softplus(s) for a negative. Writes d(term)/ds. */
DT_HD static inline float dt_bce_term(float s, int positive, float *ds) {
  if (positive) {
    *ds = -dt_sigmoid(-s);
    return dt_softplus(-s);
  }
  *ds = dt_sigmoid(s);
  return dt_softplus(s);
}

/* ---- the encoder's input ---- */

/* scale * item embedding + positional embedding (SASRec: scale = sqrt(d)) */
DT_HD static inline float dt_seq_embed(float item, float scale, float pos) { return scale * item + pos; }

/* ==== end of issue 13 ==== */

#endif
