/* step.c: one optimizer step on a global batch (MODEL.md "Loss" and
 * "Optimisation"), with the data-parallel exchanges:
 *
 *   build batch (+ the softmax losses' item list) -> (sharded lookups) ->
 *   forward -> loss (loss.h: the global batch's statistics, train.loss + gate
 *   regularisers; the softmax losses score the item list and run its
 *   backward here) -> backward -> dense
 *   gradient reduced (comm.h's dense-sync strategy) -> each table's rows
 *   coalesced and exchanged (embed.h) -> global gradient norm -> clip ->
 *   Adam (dense) and each table's row update.
 *
 * Every rank runs the same collectives in the same order, with an empty
 * local batch when its lanes ran out. */
#include <math.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/optim.h"
#include "dtrain/timer.h"
#include "dtrain/trainer.h"
#include "train_internal.h"

/* The dense gradient summed over ranks, every table's rows exchanged, and
 * the global gradient norm (the sharded shares summed over ranks). */
static int reduce_gradients(dt_session *s, dt_dense_block *blk, dt_step_stats *out) {
  dt_model *m = s->model;
  double t0 = dt_now_s(), t1;
  DT_TRY(dt_comm_dense_sync(s->comm)->reduce(s->comm, s->be, m->g, m->n_dense, blk));
  t1 = dt_now_s();
  out->t.dense_comm = t1 - t0;
  t0 = t1;
  double ss_rep = 0, ss_shard = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++)
    if (m->tables[t].present)
      DT_TRY(dt_table_exchange_grads(&m->tables[t], &ss_rep, &ss_shard, &s->sparse_lower_bound_bytes));
  double ss_dense = blk->sumsq;
  if (blk->partial) { /* blocks of the dense gradient sum like the sharded tables' rows */
    ss_shard += ss_dense;
    ss_dense = 0;
  }
  DT_TRY(dt_comm_allreduce_sum_f64(s->comm, &ss_shard, 1));
  out->grad_norm = sqrt(ss_dense + ss_rep + ss_shard);
  out->t.sparse_comm = dt_now_s() - t0;
  return DT_OK;
}

/* Adam on this rank's block of the dense parameters, every table's update,
 * then the dense-sync strategy makes the parameters whole again. */
static int update_parameters(dt_session *s, const dt_dense_block *blk, double lr_dense, double lr_sparse, double clip) {
  dt_model *m = s->model;
  DT_TRY(dt_optim_dense_step(m, lr_dense, clip, blk->lo, blk->hi));
  const dt_adam_hyper sparse_hyper = dt_optim_sparse_hyper(&s->cfg, lr_sparse, clip);
  for (int t = 0; t < DT_MAX_TABLES; t++)
    if (m->tables[t].present) DT_TRY(dt_table_apply(&m->tables[t], s->sparse_optim, &sparse_hyper));
  DT_TRY(dt_comm_dense_sync(s->comm)->after_update(s->comm, s->be, m->w, m->g, m->n_dense, blk));
  return s->be->sync(s->be);
}

int dt_train_step_grads(dt_session *s, const dt_unit *units, int64_t n_units, int64_t epoch, int64_t global_step,
                        dt_step_stats *out, dt_loss_value *lv) {
  const dt_config *cfg = &s->cfg;
  dt_backend *be = s->be;
  dt_model *m = s->model;
  memset(out, 0, sizeof *out);
  if (!s->loss.ready) DT_TRY(dt_loss_setup(&s->loss, cfg, m, 0));
  double t0 = dt_now_s(), t1;

  DT_TRY(dt_batch_build_train(s->bb, units, n_units, epoch, (uint32_t)global_step, (uint64_t)cfg->run_seed,
                              s->loss.n_neg, (int)cfg->train_neg_tries));
  /* the softmax losses' item list: shared negatives keyed by the step, or the catalogue */
  if (s->loss.list_items != 0)
    DT_TRY(dt_batch_build_list(s->bb, s->loss.list_items, (uint64_t)cfg->run_seed, global_step));
  const dt_batch *b = dt_batch_get(s->bb);
  DT_TRY(dt_session_prepare_batch(s));
  t1 = dt_now_s();
  out->t.batch = t1 - t0;
  t0 = t1;
  const float *scores, *alpha;
  DT_TRY(dt_model_forward(m, b, &scores, &alpha));
  DT_TRY(dt_loss_batch_stats(&s->loss, s->comm, be, b, alpha, lv));
  out->examples = (int64_t)lv->n_global;
  out->pairs = (int64_t)lv->pairs_global;
  if (lv->n_global <= 0) { /* an empty global batch: nothing to learn from */
    out->t.wait = lv->t_wait;
    return DT_OK;
  }
  for (int k = 0; k < 3; k++) out->alpha[k] = lv->alpha_mean[k];
  /* the gradient is zeroed first: the softmax losses' item list adds its part in dt_loss_grad */
  DT_TRY(dt_comm_dense_sync(s->comm)->begin_backward(s->comm, be, m->g, m->n_dense));
  DT_TRY(dt_loss_grad(&s->loss, be, cfg, m, b, scores, alpha, lv));
  DT_TRY(be->sync(be));
  t1 = dt_now_s();
  out->t.forward = t1 - t0 - lv->t_wait; /* with the loss (and the item list's backward) */
  t0 = t1;
  DT_TRY(dt_model_backward(m, b, s->loss.d_dscores, m->use_gate ? s->loss.d_dalpha : NULL));
  DT_TRY(be->sync(be));
  t1 = dt_now_s();
  out->t.backward = t1 - t0;
  DT_TRY(dt_loss_reduce(s->comm, cfg, lv));
  out->t.wait = lv->t_wait;
  out->bpr = lv->ranking;
  out->entropy = lv->entropy;
  out->balance = lv->balance;
  out->loss = lv->loss;
  return DT_OK;
}

int dt_train_step(dt_session *s, const dt_unit *units, int64_t n_units, int64_t epoch, int64_t global_step,
                  double lr_dense, double lr_sparse, dt_step_stats *out) {
  const dt_config *cfg = &s->cfg;
  dt_loss_value lv;
  DT_TRY(dt_train_step_grads(s, units, n_units, epoch, global_step, out, &lv));
  if (lv.n_global <= 0) return DT_OK;

  /* gradients of the global batch: every loss term is already divided by
   * the global counts, so the exchanges sum */
  dt_dense_block blk;
  DT_TRY(reduce_gradients(s, &blk, out));
  if (!isfinite(out->loss) || !isfinite(out->grad_norm))
    return dt_fail(DT_EXIT_RUNTIME,
                   "non-finite %s at epoch %lld, step %lld (loss %g, gradient norm %g); parameters were not updated. "
                   "Lower train.lr / optim.sparse_lr or check the data",
                   !isfinite(out->loss) ? "loss" : "gradient", (long long)epoch, (long long)global_step, out->loss,
                   out->grad_norm);
  out->clip = dt_clip_factor(out->grad_norm, cfg->optim_clip_norm);
  double t0 = dt_now_s();
  DT_TRY(update_parameters(s, &blk, lr_dense, lr_sparse, out->clip));
  out->t.update = dt_now_s() - t0;
  return DT_OK;
}
