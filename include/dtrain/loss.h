/* loss.h: the training objective of MODEL.md "Loss" over the global batch:
 *
 *   loss = BPR + lambda_ent * mean_i sum_k alpha_ik log alpha_ik
 *              + lambda_bal * sum_k (mean_i alpha_ik - 1/3)^2
 *
 * BPR averages softplus(-(s_pos - s_neg)) over the global batch's
 * (positive, negative) pairs. Every term is divided by global counts
 * (examples, pairs), learned with one small all-reduce before the loss, and
 * the balance term uses the global batch's mean alpha, so the gradients the
 * ranks sum are exactly the one-rank gradient. The per-element math is the
 * backend's (bpr, gate_reg ops; op_math.h).
 *
 * A step: dt_loss_batch_stats (after the forward pass) -> dt_loss_grad
 * (dscores, dalpha for the backward pass) -> dt_loss_reduce (the loss's
 * global value). Another objective (a sampled softmax, BCE) is another
 * dt_loss_grad behind the same three calls.
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

typedef struct {
  float *d_dscores, *d_dalpha; /* backend: d loss / d scores [n, c], d alpha [n, 3] */
  int64_t dscore_cap, dalpha_cap;
  float *h_alpha; /* host copy of alpha for the batch statistics */
  int64_t h_alpha_cap;
} dt_loss;

typedef struct {
  double n_global, pairs_global; /* examples and (positive, negative) pairs of the global batch */
  double alpha_mean[3];          /* the global batch's mean alpha */
  double sums[2];                /* BPR sum, sum of alpha log alpha: this rank's, then (reduce) the global ones */
  double bpr, entropy, balance, loss; /* global means (entropy: mean of -H(alpha)) */
  double t_wait;                 /* seconds spent in the two all-reduces */
} dt_loss_value;

/* The global batch's size, pairs and mean alpha from this rank's part
 * (alpha [b->n, 3], backend memory). COLLECTIVE. An empty global batch
 * leaves v->n_global == 0: there is nothing to learn from. */
int dt_loss_batch_stats(dt_loss *L, dt_comm *comm, dt_backend *be, const dt_batch *b, const float *alpha,
                        dt_loss_value *v);
/* The loss's gradients w.r.t. scores [n, c] and alpha [n, 3] into
 * L->d_dscores, L->d_dalpha (valid until the next call) and this rank's
 * sums. Needs v->n_global > 0. */
int dt_loss_grad(dt_loss *L, dt_backend *be, const dt_config *cfg, const dt_batch *b, const float *scores,
                 const float *alpha, dt_loss_value *v);
/* Sums the ranks' loss sums and computes the global means. COLLECTIVE. */
int dt_loss_reduce(dt_comm *comm, const dt_config *cfg, dt_loss_value *v);
void dt_loss_free(dt_loss *L, dt_backend *be);

#endif
