/* optim.c: schedule, clipping factor and the update calls. */
#include "dtrain/optim.h"

#include <math.h>
#include <string.h>

#include "dtrain/error.h"

double dt_lr_at_epoch(const dt_config *cfg, double base_lr, int64_t epoch) {
  if (strcmp(cfg->optim_schedule, "cosine") != 0) return base_lr;
  double t_max = (double)cfg->train_epochs;
  double e = (double)epoch;
  if (e > t_max) e = t_max;
  return base_lr * 0.5 * (1.0 + cos(3.14159265358979323846 * e / t_max));
}

double dt_clip_factor(double norm, double clip) {
  if (clip <= 0) return 1.0;
  double f = clip / (norm + 1e-6);
  return f < 1.0 ? f : 1.0;
}

int dt_optim_dense_step(dt_model *m, double lr, double grad_scale, int64_t lo, int64_t hi) {
  const dt_config *cfg = m->cfg;
  m->adam_step++;
  dt_adam_hyper h = {(float)lr,
                     (float)cfg->optim_beta1,
                     (float)cfg->optim_beta2,
                     (float)cfg->optim_eps,
                     (float)cfg->optim_weight_decay,
                     (float)grad_scale,
                     m->adam_step};
  if (lo >= hi) return DT_OK; /* an empty block: still counted as a step, like every other rank's */
  return m->be->adam(m->be, m->w + lo, m->g + lo, m->m + lo, m->v + lo, hi - lo, h);
}

dt_sparse_optim dt_optim_sparse_kind(const dt_config *cfg) {
  return !strcmp(cfg->optim_sparse, "rowwise_adagrad") ? DT_SPARSE_ROWWISE_ADAGRAD : DT_SPARSE_LAZY_ADAM;
}

dt_adam_hyper dt_optim_sparse_hyper(const dt_config *cfg, double lr, double grad_scale) {
  dt_adam_hyper h = {(float)lr,
                     (float)cfg->optim_beta1,
                     (float)cfg->optim_beta2,
                     (float)cfg->optim_eps,
                     (float)dt_config_sparse_weight_decay(cfg),
                     (float)grad_scale,
                     0};
  return h;
}
