/* loss.c: BPR and the gate regularisers over the global batch (loss.h). */
#include "dtrain/loss.h"

#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/timer.h"

static int grow_dev(dt_backend *be, float **p, int64_t *cap, int64_t need) {
  if (need <= *cap && *p) return DT_OK;
  *cap = need + need / 4 + 16;
  return dt_backend_replace(be, (void **)p, (size_t)*cap * sizeof(float));
}

int dt_loss_batch_stats(dt_loss *L, dt_comm *comm, dt_backend *be, const dt_batch *b, const float *alpha,
                        dt_loss_value *v) {
  memset(v, 0, sizeof *v);
  /* alpha column sums, examples, pairs */
  const int64_t n = b->n;
  if (n * 3 > L->h_alpha_cap) {
    L->h_alpha_cap = n * 3 + 64;
    L->h_alpha = dt_xrealloc(L->h_alpha, (size_t)L->h_alpha_cap * sizeof(float));
  }
  if (n > 0) DT_TRY(be->download(be, L->h_alpha, alpha, (size_t)(n * 3) * sizeof(float)));
  double stats[5] = {0, 0, 0, (double)n, (double)(n * (b->c - 1))};
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) stats[k] += L->h_alpha[i * 3 + k];
  double tw = dt_now_s();
  DT_TRY(dt_comm_allreduce_sum_f64(comm, stats, 5));
  v->t_wait = dt_now_s() - tw;
  v->n_global = stats[3];
  v->pairs_global = stats[4];
  if (v->n_global > 0)
    for (int k = 0; k < 3; k++) v->alpha_mean[k] = stats[k] / v->n_global;
  return DT_OK;
}

int dt_loss_grad(dt_loss *L, dt_backend *be, const dt_config *cfg, const dt_batch *b, const float *scores,
                 const float *alpha, dt_loss_value *v) {
  const int64_t n = b->n;
  float mean[3];
  for (int k = 0; k < 3; k++) mean[k] = (float)v->alpha_mean[k];
  DT_TRY(grow_dev(be, &L->d_dscores, &L->dscore_cap, b->nc > 0 ? b->nc : 1));
  DT_TRY(grow_dev(be, &L->d_dalpha, &L->dalpha_cap, n > 0 ? n * 3 : 3));
  v->sums[0] = v->sums[1] = 0;
  if (n == 0) return DT_OK;
  DT_TRY(be->bpr(be, scores, n, b->c, (float)(1.0 / v->pairs_global), L->d_dscores, &v->sums[0]));
  DT_TRY(be->zero(be, L->d_dalpha, (size_t)(n * 3) * sizeof(float)));
  return be->gate_reg(be, alpha, n, (float)cfg->model_lambda_ent, (float)cfg->model_lambda_bal, mean,
                      (int64_t)v->n_global, L->d_dalpha, &v->sums[1]);
}

int dt_loss_reduce(dt_comm *comm, const dt_config *cfg, dt_loss_value *v) {
  double t0 = dt_now_s();
  DT_TRY(dt_comm_allreduce_sum_f64(comm, v->sums, 2));
  v->t_wait += dt_now_s() - t0;
  v->bpr = v->sums[0] / v->pairs_global;
  v->entropy = v->sums[1] / v->n_global;
  v->balance = 0;
  for (int k = 0; k < 3; k++) v->balance += (v->alpha_mean[k] - 1.0 / 3.0) * (v->alpha_mean[k] - 1.0 / 3.0);
  v->loss = v->bpr + cfg->model_lambda_ent * v->entropy + cfg->model_lambda_bal * v->balance;
  return DT_OK;
}

void dt_loss_free(dt_loss *L, dt_backend *be) {
  if (be) {
    if (L->d_dscores) be->free(be, L->d_dscores);
    if (L->d_dalpha) be->free(be, L->d_dalpha);
  }
  free(L->h_alpha);
  memset(L, 0, sizeof *L);
}
