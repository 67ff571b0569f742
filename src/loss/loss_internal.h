/* loss_internal.h: what the loss module's files share (not public). */
#ifndef DTRAIN_LOSS_INTERNAL_H
#define DTRAIN_LOSS_INTERNAL_H

#include "dtrain/loss.h"

/* Grows a backend scratch buffer to hold `need` floats (contents not kept). */
int dt_loss_grow(dt_backend *be, float **p, int64_t *cap, int64_t need);
/* The softmax losses' ranking term (loss_softmax.c): d_dscores for the
 * candidates, the item list's scoring and backward, v->sums[0]. */
int dt_loss_softmax_grad(dt_loss *L, dt_backend *be, dt_model *m, const dt_batch *b, const float *scores,
                         dt_loss_value *v);

#endif
