/* train_internal.h: what the files of the training loop share (not public).
 *
 * loop.c      dt_train_run: epochs, the step loop, validation and early
 *             stopping, checkpoint cadence, the final test evaluation
 * run_log.c   metrics.jsonl: the step, epoch and test lines
 * run_dir.c   the run directory: lock, an earlier run's files, stale temporary files
 * balance.c   comm.balance_steps' split of a step's units by work
 * step.c      one optimizer step
 * dump_step.c --dump-step: one step's batch, loss and gradients for the
 *             PyTorch parity check
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
  int metrics_fd; /* metrics.jsonl, rank 0 only (-1: none) */
  char *metrics_path;
  char *ckpt_dir;
  char *config_json;
  dt_ckpt_state st;
  double t0;                   /* when the run started */
  int stop_sig;                /* the stop signal the ranks agreed on (0: none) */
  dt_ckpt_inference inference; /* written into every checkpoint (rank 0; n_users 0 elsewhere) */
} dt_run;

/* ---- One step (step.c) ---- */

/* The first half of dt_train_step: the batch (and item list), forward,
 * loss and backward, leaving every gradient of this rank's part unreduced
 * (the dense one in model->g, the tables' rows in each table) and the
 * loss's global value in *lv (lv->n_global == 0: an empty global batch,
 * nothing was computed). COLLECTIVE. */
int dt_train_step_grads(dt_session *s, const dt_unit *units, int64_t n_units, int64_t epoch, int64_t global_step,
                        dt_step_stats *out, dt_loss_value *lv);

/* ---- metrics.jsonl (run_log.c) ---- */

/* Opens metrics.jsonl (rank 0). A fresh run starts it empty. A resumed run
 * keeps the lines up to the checkpoint's step R->st.global_step and drops
 * the rest (steps a killed run took after that checkpoint, its test line,
 * a half-written last line) by writing the kept lines to a temporary file
 * renamed over it, so the file reads as one run; then appends. */
int dt_run_log_open(dt_run *R, int resumed);
void dt_run_log_close(dt_run *R);

/* What the step lines report per step since the last line. */
typedef struct {
  int64_t steps, examples;
  double since;                     /* time of the last line */
  dt_step_times t;                  /* summed */
  uint64_t dense0, sparse0, floor0; /* byte counters at the last line */
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
