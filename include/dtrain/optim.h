/* optim.h: the learning-rate schedule, global-norm clipping and the
 * parameter updates (dense Adam over the one contiguous buffer; lazy Adam or
 * row-wise Adagrad on the touched rows of each table). MODEL.md
 * "Optimisation" and "v3's recipe". */
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

/* One update of table t's rows: local_ids [m] (backend memory, indices into
 * the rows this rank stores, unique), grads [m, dim] (backend memory). */
int dt_optim_table_step(dt_model *model, int t, const int32_t *local_ids, const float *grads, int64_t m, double lr,
                        double grad_scale);

#endif
