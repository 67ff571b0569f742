/* cuda_ops_model.c: the model's fused ops on the CUDA backend: GRU gates,
 * the gate's softmax and regularisers, BPR, row dots and the two fusion
 * mixtures. Host outputs (loss and entropy sums) come from deterministic
 * double reductions. */
#include "backend/cuda/cuda_internal.h"
#include "dtrain/op_math.h"

static int cu_gru_step_fwd(dt_backend *be, const float *xg, const float *hg, const float *h_prev, float *h_out,
                           float *cache, int64_t a, int h) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (a < 0 || h < 0) return dt_cuda_bad_call("gru_step_fwd", "a=%lld h=%d", (long long)a, h);
  if (a == 0 || h == 0) return 0;
  DT_KERNEL(dtk_gru_fwd, (c->stream, xg, hg, h_prev, h_out, cache, a, h));
  return 0;
}

static int cu_gru_step_bwd(dt_backend *be, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                           float *dhg, float *dh_prev, int64_t a, int h) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (a < 0 || h < 0) return dt_cuda_bad_call("gru_step_bwd", "a=%lld h=%d", (long long)a, h);
  if (a == 0 || h == 0) return 0;
  DT_KERNEL(dtk_gru_bwd, (c->stream, dh_out, h_prev, cache, dxg, dhg, dh_prev, a, h));
  return 0;
}

static int cu_softmax3_fwd(dt_backend *be, const float *logits, float *alpha, int64_t n) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0) return dt_cuda_bad_call("softmax3_fwd", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_softmax3_fwd, (c->stream, logits, alpha, n));
  return 0;
}

static int cu_softmax3_bwd(dt_backend *be, const float *alpha, const float *dalpha, float *dlogits, int64_t n) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0) return dt_cuda_bad_call("softmax3_bwd", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_softmax3_bwd, (c->stream, alpha, dalpha, dlogits, n));
  return 0;
}

/* The regularisers' coefficients (op_math.h: dt_gate_ent_scale,
 * dt_gate_bal_grad) are the same for every row, so they are computed once
 * here, in float as on the CPU. */
static int cu_gate_reg(dt_backend *be, const float *alpha, int64_t n, float lambda_ent, float lambda_bal,
                       const float *mean_host, int64_t n_global, float *dalpha, double *neg_entropy_sum_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *neg_entropy_sum_host = 0.0;
  if (n < 0 || n_global < n)
    return dt_cuda_bad_call("gate_reg", "n=%lld rows with n_global=%lld", (long long)n, (long long)n_global);
  if (n == 0) return 0; /* so n_global >= 1 below */
  const float ent_scale = dt_gate_ent_scale(lambda_ent, n_global);
  float bal[3];
  for (int k = 0; k < 3; k++) bal[k] = dt_gate_bal_grad(lambda_bal, mean_host[k], n_global);
  DT_KERNEL(dtk_gate_reg, (c->stream, alpha, n, ent_scale, bal[0], bal[1], bal[2], dalpha, c->partials));
  return dt_cuda_partials_to_host(c, dtk_partial_count(n), neg_entropy_sum_host);
}

static int cu_bpr(dt_backend *be, const float *scores, int64_t n, int cc, float inv_pairs, float *dscores,
                  double *loss_sum_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *loss_sum_host = 0.0;
  if (n < 0 || cc < 1) return dt_cuda_bad_call("bpr", "n=%lld c=%d", (long long)n, cc);
  if (n == 0) return 0;
  DT_KERNEL(dtk_bpr, (c->stream, scores, n, cc, inv_pairs, dscores, c->partials));
  return dt_cuda_partials_to_host(c, dtk_partial_count(n), loss_sum_host);
}

static int cu_rowdot_fwd(dt_backend *be, const float *u, const float *v, float *out, int64_t n, int cc, int d) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0 || d < 0) return dt_cuda_bad_call("rowdot_fwd", "n=%lld c=%d d=%d", (long long)n, cc, d);
  if (n == 0 || cc == 0) return 0;
  DT_KERNEL(dtk_rowdot_fwd, (c->stream, u, v, out, n, cc, d));
  return 0;
}

static int cu_rowdot_bwd(dt_backend *be, const float *u, const float *v, const float *dout, float *du, float *dv,
                         int64_t n, int cc, int d) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0 || d < 0) return dt_cuda_bad_call("rowdot_bwd", "n=%lld c=%d d=%d", (long long)n, cc, d);
  if (n == 0 || cc == 0 || d == 0) return 0;
  if (du) DT_KERNEL(dtk_rowdot_bwd_u, (c->stream, v, dout, du, n, cc, d));
  if (dv) DT_KERNEL(dtk_rowdot_bwd_v, (c->stream, u, dout, dv, n, cc, d));
  return 0;
}

static int cu_mix3_fwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc, float *z,
                       int64_t n, int cc, int d) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0 || d < 0) return dt_cuda_bad_call("mix3_fwd", "n=%lld c=%d d=%d", (long long)n, cc, d);
  if (n == 0 || cc == 0 || d == 0) return 0;
  DT_KERNEL(dtk_mix3_fwd, (c->stream, alpha, hs, hd, hc, z, n, cc, d));
  return 0;
}

static int cu_mix3_bwd(dt_backend *be, const float *alpha, const float *hs, const float *hd, const float *hc,
                       const float *dz, float *dalpha, float *dhs, float *dhd, float *dhc, int64_t n, int cc, int d) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0 || d < 0) return dt_cuda_bad_call("mix3_bwd", "n=%lld c=%d d=%d", (long long)n, cc, d);
  if (n == 0) return 0;
  /* dalpha is overwritten even when there is nothing to sum (c or d = 0). */
  if (dalpha) DT_KERNEL(dtk_mix3_bwd_alpha, (c->stream, hs, hd, hc, dz, dalpha, n, cc, d));
  if (cc == 0 || d == 0) return 0;
  if (dhs) DT_KERNEL(dtk_mix3_bwd_cand, (c->stream, alpha, 0, dz, dhs, n, cc, d));
  if (dhd) DT_KERNEL(dtk_mix3_bwd_user, (c->stream, alpha, dz, dhd, n, cc, d));
  if (dhc) DT_KERNEL(dtk_mix3_bwd_cand, (c->stream, alpha, 2, dz, dhc, n, cc, d));
  return 0;
}

static int cu_score_mix_fwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                            const float *bias, float *s, int64_t n, int cc) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0) return dt_cuda_bad_call("score_mix_fwd", "n=%lld c=%d", (long long)n, cc);
  if (n == 0 || cc == 0) return 0;
  DT_KERNEL(dtk_score_mix_fwd, (c->stream, alpha, ss, sd, sc, bias, s, n, cc));
  return 0;
}

static int cu_score_mix_bwd(dt_backend *be, const float *alpha, const float *ss, const float *sd, const float *sc,
                            const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int cc) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cc < 0) return dt_cuda_bad_call("score_mix_bwd", "n=%lld c=%d", (long long)n, cc);
  if (n == 0) return 0;
  DT_KERNEL(dtk_score_mix_bwd, (c->stream, alpha, ss, sd, sc, ds, dalpha, dss, dsd, dsc, n, cc));
  return 0;
}

void dt_cuda_fill_model_ops(dt_backend *be) {
  be->gru_step_fwd = cu_gru_step_fwd;
  be->gru_step_bwd = cu_gru_step_bwd;
  be->softmax3_fwd = cu_softmax3_fwd;
  be->softmax3_bwd = cu_softmax3_bwd;
  be->gate_reg = cu_gate_reg;
  be->bpr = cu_bpr;
  be->rowdot_fwd = cu_rowdot_fwd;
  be->rowdot_bwd = cu_rowdot_bwd;
  be->mix3_fwd = cu_mix3_fwd;
  be->mix3_bwd = cu_mix3_bwd;
  be->score_mix_fwd = cu_score_mix_fwd;
  be->score_mix_bwd = cu_score_mix_bwd;
}
