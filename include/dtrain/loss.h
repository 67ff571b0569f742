/* loss.h: the training objective of MODEL.md "Loss" over the global batch:
 *
 *   loss = ranking + lambda_ent * mean_i sum_k alpha_ik log alpha_ik
 *                  + lambda_bal * sum_k (mean_i alpha_ik - 1/3)^2
 *
 * with the ranking term of train.loss:
 *   bpr              mean over the (positive, negative) pairs of softplus(-(s+ - s-))
 *   bce              mean over positives of softplus(-s+) + sum_j softplus(s-_j)
 *   sampled_softmax  mean over positives of log(e^{s+} + sum_j e^{s-_j}) - s+, over
 *                    the train.n_neg negatives shared by the whole global batch
 *   softmax          mean over positives of log sum_i e^{s_i} - s+, over the catalogue
 * bpr and bce read each example's own candidates (column 0 the positive);
 * the softmax losses score every example against the batch's item list
 * (dt_batch.list_*: the shared negatives or the catalogue) with the model's
 * dt_model_list_scores, in blocks of items with a running log-sum-exp:
 * pass 1 keeps each row's running max and sum, pass 2 turns each block's
 * scores into their gradient in place and hands it to
 * dt_model_list_backward (a block is scored again unless it is the only
 * one), so the loss holds one block of scores [n, block] at a time.
 *
 * Every term is divided by global counts (examples, pairs), learned with
 * one small all-reduce before the loss, and the balance term uses the
 * global batch's mean alpha, so the gradients the ranks sum are exactly the
 * one-rank gradient. The shared negatives are drawn from (seed, step) only.
 * None of it depends on the number of ranks. The per-element math is the
 * backend's (bpr, bce, xent_*, gate_reg ops; op_math.h).
 *
 * A step: dt_loss_setup once, then per step dt_loss_batch_stats (after the
 * forward pass) -> the dense gradient zeroed -> dt_loss_grad (dscores,
 * dalpha for the backward pass; the softmax losses have already run the
 * item list's backward into the model's gradients) -> dt_model_backward ->
 * dt_loss_reduce (the loss's global value).
 *
 * Ownership: dt_loss holds backend scratch the gradients live in; zero it
 * before first use, release it with dt_loss_free.
 */
#ifndef DTRAIN_LOSS_H
#define DTRAIN_LOSS_H

#include <stdint.h>

#include "dtrain/backend.h"
#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/model.h"

typedef enum { DT_LOSS_BPR = 0, DT_LOSS_BCE, DT_LOSS_SAMPLED_SOFTMAX, DT_LOSS_SOFTMAX } dt_loss_kind;

typedef struct {
  /* what dt_loss_setup read from the config */
  int ready;
  dt_loss_kind kind;
  int n_neg;          /* negatives of each example's own (bpr, bce; 0 for the softmax losses) */
  int64_t list_items; /* the item list a batch needs: n shared negatives, -1 the catalogue
                       * (dt_batch_build_list's DT_BATCH_LIST_CATALOGUE), 0 none */
  int64_t block;      /* list items per block */
  /* backend scratch */
  float *d_dscores, *d_dalpha; /* d loss / d scores [n, c], d alpha [n, 3] */
  int64_t dscore_cap, dalpha_cap;
  float *d_block; /* one block of list scores [n, block], then their gradient */
  int64_t block_cap;
  float *d_xent; /* running max, sum and the positive's score [3 n] */
  int64_t xent_cap;
  float *h_alpha; /* host copy of alpha for the batch statistics */
  int64_t h_alpha_cap;
} dt_loss;

typedef struct {
  double n_global, pairs_global; /* examples and (positive, negative) pairs of the global batch */
  double rank_count;             /* what the ranking term is a mean over: pairs (bpr) or examples */
  double alpha_mean[3];          /* the global batch's mean alpha */
  double sums[2];                /* ranking sum, sum of alpha log alpha: this rank's, then (reduce) the global ones */
  double ranking, entropy, balance, loss; /* global means (entropy: mean of -H(alpha)) */
  double t_wait;                          /* seconds spent in the two all-reduces */
} dt_loss_value;

/* The loss's name as train.loss spells it. */
const char *dt_loss_name(dt_loss_kind kind);
/* Reads train.loss, train.n_neg and train.softmax_chunk for model m and
 * checks them together (DT_EXIT_USAGE naming the keys); `notes` logs what
 * a combination costs or ignores (training runs). */
int dt_loss_setup(dt_loss *L, const dt_config *cfg, const dt_model *m, int notes);

/* The global batch's size, pairs and mean alpha from this rank's part
 * (alpha [b->n, 3], backend memory). COLLECTIVE. An empty global batch
 * leaves v->n_global == 0: there is nothing to learn from. */
int dt_loss_batch_stats(dt_loss *L, dt_comm *comm, dt_backend *be, const dt_batch *b, const float *alpha,
                        dt_loss_value *v);
/* The loss's gradients w.r.t. scores [n, c] and alpha [n, 3] into
 * L->d_dscores, L->d_dalpha (valid until the next call) and this rank's
 * sums. The softmax losses also run the item list's scoring and backward
 * (dt_model_list_*), which accumulates into the model's gradients: zero
 * them first, then call dt_model_backward. Needs v->n_global > 0. */
int dt_loss_grad(dt_loss *L, dt_backend *be, const dt_config *cfg, dt_model *m, const dt_batch *b, const float *scores,
                 const float *alpha, dt_loss_value *v);
/* Sums the ranks' loss sums and computes the global means. COLLECTIVE. */
int dt_loss_reduce(dt_comm *comm, const dt_config *cfg, dt_loss_value *v);
void dt_loss_free(dt_loss *L, dt_backend *be);

#endif
