/* train_internal.h: what the files of the training loop share (not public).
 *
 * loop.c      dt_train_run: epochs, the step loop, validation and early
 *             stopping, checkpoint cadence, the final test evaluation
 * run_log.c   metrics.jsonl: the step, epoch and test lines
 * balance.c   comm.balance_steps' split of a step's units by work
 * step.c      one optimizer step
 */
#ifndef DTRAIN_TRAIN_INTERNAL_H
#define DTRAIN_TRAIN_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "dtrain/trainer.h"

/* One training run's state. */
typedef struct {
  dt_session *s;
  FILE *metrics; /* metrics.jsonl, rank 0 only */
  char *ckpt_dir;
  char *config_json;
  dt_ckpt_state st;
  double t0; /* when the run started */
  dt_ckpt_inference inference; /* written into every checkpoint (rank 0; n_users 0 elsewhere) */
} dt_run;

/* ---- metrics.jsonl (run_log.c) ---- */

/* What the step lines report per step since the last line. */
typedef struct {
  int64_t steps, examples;
  double since;                       /* time of the last line */
  dt_step_times t;                    /* summed */
  uint64_t dense0, sparse0, floor0;   /* byte counters at the last line */
} dt_step_log;

/* Starts the step lines' window (at an epoch's start). */
void dt_step_log_begin(dt_run *R, dt_step_log *lg);
/* Adds one step; writes a line every run.log_every steps and at the
 * epoch's last step. */
int dt_step_log_add(dt_run *R, dt_step_log *lg, const dt_step_stats *st, int64_t epoch, int last_of_epoch,
                    double lr_dense, double lr_sparse);
/* The "alpha_mean" array of a line: [static, dynamic, content], null for
 * a tower the model does not have (eval.h's dt_alpha_json). */
void dt_log_add_alpha(cJSON *o, const double a[3], unsigned towers);
/* Writes one line (rank 0) and frees o. */
int dt_run_write_line(dt_run *R, cJSON *o);

#endif
