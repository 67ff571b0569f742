/* step.c: one optimizer step on a global batch (MODEL.md "Loss" and
 * "Optimisation"), with the data-parallel exchanges:
 *
 *   build batch -> (sharded lookups) -> forward -> alpha statistics of the
 *   global batch (all-reduce) -> BPR + gate regularisers -> backward ->
 *   dense all-reduce -> sparse rows coalesced, exchanged (replicated:
 *   all-gather; sharded: to owners) -> global gradient norm -> clip ->
 *   Adam (dense) and lazy Adam / row-wise Adagrad (tables).
 *
 * Every rank runs the same collectives in the same order, with an empty
 * local batch when its lanes ran out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/optim.h"
#include "dtrain/timer.h"
#include "dtrain/trainer.h"

static int grow_dev(dt_backend *be, void **p, int64_t *cap, int64_t need, size_t elem) {
  if (need <= *cap && *p) return DT_OK;
  *cap = need + need / 4 + 16;
  return dt_backend_replace(be, p, (size_t)*cap * elem);
}

int dt_train_step(dt_session *s, const dt_unit *units, int64_t n_units, int64_t epoch, int64_t global_step,
                  double lr_dense, double lr_sparse, dt_step_stats *out) {
  const dt_config *cfg = &s->cfg;
  dt_backend *be = s->be;
  dt_model *m = s->model;
  memset(out, 0, sizeof *out);
  double t0 = dt_now_s(), t1;

  DT_TRY(dt_batch_build_train(s->bb, units, n_units, epoch, (uint32_t)global_step, (uint64_t)cfg->run_seed,
                              (int)cfg->train_n_neg, (int)cfg->train_neg_tries));
  const dt_batch *b = dt_batch_get(s->bb);
  DT_TRY(dt_session_prepare_batch(s));
  t1 = dt_now_s();
  out->t_batch = t1 - t0;
  t0 = t1;
  const float *scores, *alpha;
  DT_TRY(dt_model_forward(m, b, &scores, &alpha));

  /* statistics of the global batch: alpha column sums, examples, pairs */
  const int64_t n = b->n;
  if (n * 3 > s->h_alpha_cap) {
    s->h_alpha_cap = n * 3 + 64;
    s->h_alpha = dt_xrealloc(s->h_alpha, (size_t)s->h_alpha_cap * sizeof(float));
  }
  if (n > 0) DT_TRY(be->download(be, s->h_alpha, alpha, (size_t)(n * 3) * sizeof(float)));
  double stats[5] = {0, 0, 0, (double)n, (double)(n * (b->c - 1))};
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) stats[k] += s->h_alpha[i * 3 + k];
  double tw = dt_now_s();
  DT_TRY(dt_comm_allreduce_sum_f64(s->comm, stats, 5));
  out->t_wait = dt_now_s() - tw;
  const double n_global = stats[3], pairs_global = stats[4];
  out->examples = (int64_t)n_global;
  out->pairs = (int64_t)pairs_global;
  if (n_global <= 0) return DT_OK; /* an empty global batch: nothing to learn from */
  float mean[3];
  for (int k = 0; k < 3; k++) {
    out->alpha[k] = stats[k] / n_global;
    mean[k] = (float)out->alpha[k];
  }

  /* loss and its gradients w.r.t. scores and alpha */
  DT_TRY(grow_dev(be, (void **)&s->d_dscores, &s->dscore_cap, b->nc > 0 ? b->nc : 1, sizeof(float)));
  DT_TRY(grow_dev(be, (void **)&s->d_dalpha, &s->dalpha_cap, n > 0 ? n * 3 : 3, sizeof(float)));
  double parts[2] = {0, 0}; /* BPR sum, sum of alpha log alpha */
  if (n > 0) {
    DT_TRY(be->bpr(be, scores, n, b->c, (float)(1.0 / pairs_global), s->d_dscores, &parts[0]));
    DT_TRY(be->zero(be, s->d_dalpha, (size_t)(n * 3) * sizeof(float)));
    DT_TRY(be->gate_reg(be, alpha, n, (float)cfg->model_lambda_ent, (float)cfg->model_lambda_bal, mean,
                        (int64_t)n_global, s->d_dalpha, &parts[1]));
  }
  DT_TRY(be->sync(be));
  t1 = dt_now_s();
  out->t_forward = t1 - t0 - out->t_wait;
  t0 = t1;
  /* shared_memory: the last update left every gradient buffer zero */
  const dt_dense_update upd = dt_comm_dense_update(s->comm);
  if (upd != DT_DENSE_SHARED) DT_TRY(dt_model_zero_grad(m));
  DT_TRY(dt_model_backward(m, b, s->d_dscores, m->use_gate ? s->d_dalpha : NULL));
  DT_TRY(be->sync(be));
  t1 = dt_now_s();
  out->t_backward = t1 - t0;
  t0 = t1;
  DT_TRY(dt_comm_allreduce_sum_f64(s->comm, parts, 2));
  t1 = dt_now_s();
  out->t_wait += t1 - t0;
  t0 = t1;
  out->bpr = parts[0] / pairs_global;
  out->entropy = parts[1] / n_global;
  out->balance = 0;
  for (int k = 0; k < 3; k++) out->balance += (out->alpha[k] - 1.0 / 3.0) * (out->alpha[k] - 1.0 / 3.0);
  out->loss = out->bpr + cfg->model_lambda_ent * out->entropy + cfg->model_lambda_bal * out->balance;

  /* gradients of the global batch: every loss term is already divided by
   * the global counts, so the exchange sums. sharded / shared_memory: each
   * rank ends with the sum of its own block [lo, hi) only and updates it */
  int64_t lo = 0, hi = m->n_dense;
  if (upd != DT_DENSE_ALLREDUCE) dt_comm_dense_shard(s->comm, m->n_dense, &lo, &hi);
  double ss_dense = 0;
  if (upd == DT_DENSE_SHARDED)
    DT_TRY(dt_comm_dense_reduce_scatter(s->comm, m->g, m->n_dense));
  else if (upd == DT_DENSE_SHARED) /* the block's sum of squares comes with it */
    DT_TRY(dt_comm_dense_shared_reduce(s->comm, &ss_dense));
  else
    DT_TRY(dt_comm_dense_allreduce(s->comm, m->g, m->n_dense, 0));
  t1 = dt_now_s();
  out->t_dense = t1 - t0;
  t0 = t1;
  double ss_rep = 0, ss_shard = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++)
    if (m->tables[t].present)
      DT_TRY(dt_table_exchange_grads(&m->tables[t], &ss_rep, &ss_shard, &s->sparse_lower_bound_bytes));
  if (upd != DT_DENSE_SHARED) DT_TRY(be->sumsq(be, m->g + lo, hi - lo, &ss_dense));
  if (upd != DT_DENSE_ALLREDUCE) { /* blocks of the dense gradient sum like the sharded tables' rows */
    ss_shard += ss_dense;
    ss_dense = 0;
  }
  DT_TRY(dt_comm_allreduce_sum_f64(s->comm, &ss_shard, 1));
  out->grad_norm = sqrt(ss_dense + ss_rep + ss_shard);
  if (!isfinite(out->loss) || !isfinite(out->grad_norm))
    return dt_fail(DT_EXIT_RUNTIME,
                   "non-finite %s at epoch %lld, step %lld (loss %g, gradient norm %g); parameters were not updated. "
                   "Lower train.lr / optim.sparse_lr or check the data",
                   !isfinite(out->loss) ? "loss" : "gradient", (long long)epoch, (long long)global_step, out->loss,
                   out->grad_norm);
  out->clip = dt_clip_factor(out->grad_norm, cfg->optim_clip_norm);
  t1 = dt_now_s();
  out->t_sparse = t1 - t0;
  t0 = t1;

  DT_TRY(dt_optim_dense_step(m, lr_dense, out->clip, lo, hi));
  if (upd == DT_DENSE_SHARDED) DT_TRY(dt_comm_dense_allgather(s->comm, m->w, m->n_dense));
  const dt_adam_hyper sparse_hyper = dt_optim_sparse_hyper(cfg, lr_sparse, out->clip);
  for (int t = 0; t < DT_MAX_TABLES; t++)
    if (m->tables[t].present) DT_TRY(dt_table_apply(&m->tables[t], s->sparse_optim, &sparse_hyper));
  if (upd == DT_DENSE_SHARED) { /* the other blocks of this buffer were zeroed by their owners */
    DT_TRY(be->zero(be, m->g + lo, (size_t)(hi - lo) * sizeof(float)));
    DT_TRY(dt_comm_dense_shared_wait(s->comm));
  }
  DT_TRY(be->sync(be));
  out->t_update = dt_now_s() - t0;
  return DT_OK;
}
