/* optim.h: the learning-rate schedule, global-norm clipping, dense Adam
 * over the one contiguous buffer, and the tables' optimizer settings (their
 * row updates are the table's own: embed.h). MODEL.md "Optimisation" and
 * "v3's recipe". */
#ifndef DTRAIN_OPTIM_H
#define DTRAIN_OPTIM_H

#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/model.h"

/* The learning rate of epoch `epoch` (0-based) for a base rate: cosine
 * annealing over train.epochs (torch's CosineAnnealingLR stepped once per
 * epoch, eta_min 0) or constant. */
double dt_lr_at_epoch(const dt_config *cfg, double base_lr, int64_t epoch);

/* The factor clipping a gradient of global norm `norm` to clip_norm:
 * min(1, clip / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_; 1 when
 * clipping is off (clip <= 0). */
double dt_clip_factor(double norm, double clip);

/* One Adam step of elements [lo, hi) of the dense buffer: all of them is
 * [0, n_dense), a rank's block in the sharded / shared-memory dense update
 * less. Increments model->adam_step even for an empty block. */
int dt_optim_dense_step(dt_model *model, double lr, double grad_scale, int64_t lo, int64_t hi);

/* The embedding tables' optimizer (optim.sparse) and its hyper-parameters
 * at learning rate lr with the clipping factor grad_scale (the tables'
 * rows are updated by embed.h's dt_table_apply). */
dt_sparse_optim dt_optim_sparse_kind(const dt_config *cfg);
dt_adam_hyper dt_optim_sparse_hyper(const dt_config *cfg, double lr, double grad_scale);

#endif
