/* loss.c: train.loss and its checks, the global batch's statistics, bpr and
 * bce, the gate regularisers, the global means (loss.h). The softmax
 * losses' ranking term is loss_softmax.c. */
#include "dtrain/loss.h"

#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/timer.h"
#include "loss/loss_internal.h"

/* bpr and bce: each example's negatives are candidate rows of the batch */
enum { MAX_NEG_PER_EXAMPLE = 1000 };
/* The derived block sizes: scores per block (v3), and what the model
 * allows for its (example, item) pairs (v1/v2). */
#define SCORES_PER_BLOCK (1 << 23)
/* v1/v2 list positions must fit the pairs' dropout keys (model_items.c) */
#define MAX_PAIR_LIST (1 << 23)

int dt_loss_grow(dt_backend *be, float **p, int64_t *cap, int64_t need) {
  if (need <= *cap && *p) return DT_OK;
  *cap = need + need / 4 + 16;
  return dt_backend_replace(be, (void **)p, (size_t)*cap * sizeof(float));
}

static const char *const loss_names[] = {"bpr", "bce", "sampled_softmax", "softmax"};

const char *dt_loss_name(dt_loss_kind kind) { return loss_names[kind]; }

/* Combinations that cannot run are errors naming the keys; those that run
 * but cost or ignore something are notes. */
static int check_keys(const dt_loss *L, const dt_config *cfg, const dt_model *m, int notes) {
  const char *name = dt_loss_name(L->kind);
  const long long n_neg = (long long)cfg->train_n_neg;
  const int v3 = m->version == DT_V3;
  if (L->n_neg > MAX_NEG_PER_EXAMPLE)
    return dt_fail(DT_EXIT_USAGE,
                   "config key 'train.n_neg' = %lld: train.loss = \"%s\" scores each positive's own negatives as "
                   "candidate rows of the batch, at most %d per positive; train.loss = \"sampled_softmax\" shares "
                   "train.n_neg negatives over the whole global batch and takes more",
                   n_neg, name, MAX_NEG_PER_EXAMPLE);
  if (L->kind == DT_LOSS_SOFTMAX && !v3 && m->n_items >= MAX_PAIR_LIST)
    return dt_fail(DT_EXIT_USAGE,
                   "config key 'train.loss' = \"softmax\" with 'model.version' = \"%s\" runs the head on every "
                   "(example, item) pair, for catalogues below %d items (this data set has %lld): use model.version "
                   "= \"v3\" (one GEMM per block of items) or train.loss = \"sampled_softmax\"",
                   cfg->model_version, MAX_PAIR_LIST, (long long)m->n_items);
  if (!notes) return DT_OK;
  if (L->kind == DT_LOSS_SOFTMAX && !v3)
    dt_log_warn(
        "train.loss = softmax with model.version = %s runs the head on every (example, item) pair: up to "
        "%lld x %lld pairs per step, forward twice and backward once (v3 scores the catalogue with one GEMM)",
        cfg->model_version, (long long)cfg->train_batch_size, (long long)m->n_items);
  if (L->kind == DT_LOSS_SOFTMAX && n_neg != 1)
    dt_log_warn("train.n_neg = %lld is not used by train.loss = softmax, which scores the whole catalogue", n_neg);
  if (L->list_items == 0 && cfg->train_softmax_chunk > 0)
    dt_log_warn("train.softmax_chunk = %lld is only used by train.loss = sampled_softmax or softmax (this run: %s)",
                (long long)cfg->train_softmax_chunk, name);
  return DT_OK;
}

int dt_loss_setup(dt_loss *L, const dt_config *cfg, const dt_model *m, int notes) {
  const char *s = cfg->train_loss ? cfg->train_loss : "bpr";
  int kind = -1;
  for (int k = 0; k < 4; k++)
    if (!strcmp(s, loss_names[k])) kind = k;
  if (kind < 0)
    return dt_fail(DT_EXIT_USAGE, "config key 'train.loss' = \"%s\": expected bpr, bce, sampled_softmax or softmax", s);
  L->kind = (dt_loss_kind)kind;
  const int per_example = L->kind == DT_LOSS_BPR || L->kind == DT_LOSS_BCE;
  L->n_neg = per_example ? (int)cfg->train_n_neg : 0;
  L->list_items = L->kind == DT_LOSS_SAMPLED_SOFTMAX ? (int64_t)cfg->train_n_neg : L->kind == DT_LOSS_SOFTMAX ? -1 : 0;
  /* blocks of the list: the key, or derived from the global batch size (not
   * this rank's part, so the blocks do not depend on the rank count) */
  const int64_t B = cfg->train_batch_size > 0 ? (int64_t)cfg->train_batch_size : 1;
  int64_t block = (int64_t)cfg->train_softmax_chunk;
  if (block <= 0) block = m->version == DT_V3 ? SCORES_PER_BLOCK / B : dt_model_list_block_hint(m, B);
  L->block = block > 0 ? block : 1;
  DT_TRY(check_keys(L, cfg, m, notes));
  L->ready = 1;
  return DT_OK;
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
  v->rank_count = L->kind == DT_LOSS_BPR ? v->pairs_global : v->n_global;
  if (v->n_global > 0)
    for (int k = 0; k < 3; k++) v->alpha_mean[k] = stats[k] / v->n_global;
  return DT_OK;
}

int dt_loss_grad(dt_loss *L, dt_backend *be, const dt_config *cfg, dt_model *m, const dt_batch *b, const float *scores,
                 const float *alpha, dt_loss_value *v) {
  const int64_t n = b->n;
  if (!L->ready) return dt_fail(DT_EXIT_RUNTIME, "dt_loss_grad before dt_loss_setup (internal error)");
  float mean[3];
  for (int k = 0; k < 3; k++) mean[k] = (float)v->alpha_mean[k];
  DT_TRY(dt_loss_grow(be, &L->d_dscores, &L->dscore_cap, b->nc > 0 ? b->nc : 1));
  DT_TRY(dt_loss_grow(be, &L->d_dalpha, &L->dalpha_cap, n > 0 ? n * 3 : 3));
  v->sums[0] = v->sums[1] = 0;
  if (n == 0) return DT_OK;
  switch (L->kind) {
    case DT_LOSS_BPR:
      DT_TRY(be->bpr(be, scores, n, b->c, (float)(1.0 / v->rank_count), L->d_dscores, &v->sums[0]));
      break;
    case DT_LOSS_BCE:
      DT_TRY(be->bce(be, scores, n, b->c, (float)(1.0 / v->rank_count), L->d_dscores, &v->sums[0]));
      break;
    default: DT_TRY(dt_loss_softmax_grad(L, be, m, b, scores, v));
  }
  DT_TRY(be->zero(be, L->d_dalpha, (size_t)(n * 3) * sizeof(float)));
  return be->gate_reg(be, alpha, n, (float)cfg->model_lambda_ent, (float)cfg->model_lambda_bal, mean,
                      (int64_t)v->n_global, L->d_dalpha, &v->sums[1]);
}

int dt_loss_reduce(dt_comm *comm, const dt_config *cfg, dt_loss_value *v) {
  double t0 = dt_now_s();
  DT_TRY(dt_comm_allreduce_sum_f64(comm, v->sums, 2));
  v->t_wait += dt_now_s() - t0;
  v->ranking = v->sums[0] / v->rank_count;
  v->entropy = v->sums[1] / v->n_global;
  v->balance = 0;
  for (int k = 0; k < 3; k++) v->balance += (v->alpha_mean[k] - 1.0 / 3.0) * (v->alpha_mean[k] - 1.0 / 3.0);
  v->loss = v->ranking + cfg->model_lambda_ent * v->entropy + cfg->model_lambda_bal * v->balance;
  return DT_OK;
}

void dt_loss_free(dt_loss *L, dt_backend *be) {
  if (be) {
    float *ps[] = {L->d_dscores, L->d_dalpha, L->d_block, L->d_xent};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
      if (ps[i]) be->free(be, ps[i]);
  }
  free(L->h_alpha);
  memset(L, 0, sizeof *L);
}
