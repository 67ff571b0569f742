/* trainer.h: a training/evaluation session and the training loop.
 *
 * A session ties together what train, eval and recommend need on every
 * rank: the configuration, the communicator, the backend, the prepared data
 * set, the model with its tables placed (replicated or sharded) and the
 * batch builder. The training loop walks epochs of the rank's shard
 * (shard.h), takes one optimizer step per global batch (dt_train_step),
 * evaluates on valid each epoch with early stopping, writes checkpoints
 * (ckpt.h) and metrics.jsonl into the run directory, and finally evaluates
 * the best model on test.
 *
 * Ownership: dt_session_open takes ownership of the config (it is freed by
 * dt_session_close) and borrows the communicator.
 */
#ifndef DTRAIN_TRAINER_H
#define DTRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "dtrain/batch.h"
#include "dtrain/ckpt.h"
#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/eval.h"
#include "dtrain/loss.h"
#include "dtrain/model.h"

typedef struct {
  dt_config cfg;
  dt_comm *comm;
  dt_backend *be;
  dt_dataset ds;
  dt_model *model;
  dt_batch_builder *bb;
  dt_sparse_optim sparse_optim; /* optim.sparse */
  char *run_dir;
  dt_loss loss; /* the loss's scratch (its gradients live there) */
  /* bytes this rank must send at the least for its sparse gradients (its
   * unique touched rows x dim x 4), summed over steps: the benchmark's
   * lower bound next to the module's counters */
  uint64_t sparse_lower_bound_bytes;
} dt_session;

/* Opens a session: picks the backend (by local rank), prepares the data set
 * when `prepare` (train) or requires it to exist (eval), creates the model
 * and places its tables. Does not initialise parameters. COLLECTIVE. */
int dt_session_open(dt_session *s, dt_config *cfg, dt_comm *comm, int prepare);
/* The same with a data set the caller built (e.g. from a checkpoint's
 * inference data, dt_inference_to_dataset): the session takes it over (*ds
 * is emptied). */
int dt_session_open_with_data(dt_session *s, dt_config *cfg, dt_comm *comm, dt_dataset *ds);
void dt_session_close(dt_session *s);

/* Sharded tables: fetches the rows the batch just built needs and rewrites
 * its ids (dt_eval_ctx.prepare_batch uses this). COLLECTIVE. */
int dt_session_prepare_batch(void *session);

/* The evaluation context of a session. */
void dt_session_eval_ctx(dt_session *s, dt_eval_ctx *ctx);
/* dt_ckpt_load into the session's model; with node-shared parameters
 * (comm.dense_update=shared_memory) it returns once every rank has loaded,
 * and fails on all of them if one failed. COLLECTIVE. */
int dt_session_load(dt_session *s, const char *path, dt_ckpt_state *st);
/* The same for the parameters only (dt_ckpt_load_weights: eval, recommend;
 * a checkpoint or an export). COLLECTIVE. */
int dt_session_load_weights(dt_session *s, const char *path, dt_ckpt_state *st);

/* ---- Inference data (inference.c) ---- */

/* Train interactions per item. */
void dt_popularity_counts(const dt_dataset *ds, int64_t *count);
/* A checkpoint's inference data for a data set (its ids loaded:
 * dt_dataset_load_ids) and history mode, with the TF-IDF rows when
 * `with_tfidf` (the model has the content tower). Borrows the data set's
 * arrays; release with dt_inference_release, never dt_ckpt_inference_free. */
int dt_inference_from_dataset(const dt_dataset *ds, dt_history_mode mode, int with_tfidf, dt_ckpt_inference *out);
void dt_inference_release(dt_ckpt_inference *inf);
/* A data set to serve from (dt_session_open_with_data), built from inference
 * data read from a checkpoint: moves its arrays into *ds and the
 * popularity counts to *popularity (the caller frees it), and empties *inf.
 * It has the lists, ids and TF-IDF rows, no splits: recommend, not eval.
 * `path` and `crc` name the checkpoint and its data-set checksum. */
void dt_inference_to_dataset(dt_ckpt_inference *inf, const char *path, uint32_t crc, dt_dataset *ds,
                             int64_t **popularity);

/* Where this rank's time in a step went (seconds), by phase. metrics.jsonl's
 * "time_ms" has one key per field, named as the field. */
typedef struct {
  double batch;   /* batch building and sharded lookups */
  double forward; /* forward + loss */
  double backward;
  double wait;        /* in the two small all-reduces after forward and backward: waiting for the slowest rank */
  double dense_comm;  /* the dense gradient's reduction */
  double sparse_comm; /* the tables' exchanges, with the norm */
  double update;      /* parameter updates */
} dt_step_times;

typedef struct {
  double loss, bpr, entropy, balance; /* global means; bpr: the ranking term, whichever train.loss (entropy: mean
                                       * of -H(alpha)) */
  double alpha[3];                    /* global batch mean of alpha */
  double grad_norm, clip;             /* before clipping, and the factor used */
  int64_t examples, pairs;            /* global */
  dt_step_times t;
} dt_step_stats;

/* The work of a training unit, in examples plus (chunk history) the GRU
 * tokens of its chunk: the measure comm.balance_steps evens out. */
int64_t dt_unit_weight(const dt_unit *u, int chunk_history, int L);
/* Rank `rank` of `size`'s part of one global step's units all[n] (every
 * rank passes the same list): a longest-processing-time split by weight[],
 * the same on every rank, each part in the order of all[]. Writes the part
 * to out (room for n) and returns its length. */
int64_t dt_balance_units(const dt_unit *all, const int64_t *weight, int64_t n, int rank, int size, dt_unit *out);

/* One optimizer step on the global batch whose local part is `units`.
 * COLLECTIVE. Returns DT_EXIT_RUNTIME (parameters untouched) when the loss
 * or the gradient is not finite. */
int dt_train_step(dt_session *s, const dt_unit *units, int64_t n_units, int64_t epoch, int64_t global_step,
                  double lr_dense, double lr_sparse, dt_step_stats *out);

/* ---- The run directory (run_dir.c) ---- */

/* The lock file of a run directory (its text names the holder). */
#define DT_RUN_LOCK_FILE "dtrain.lock"

typedef enum {
  DT_RUN_DIR_FRESH,    /* a new run: refused (exit 2) when an earlier run's files are there */
  DT_RUN_DIR_RESUME,   /* continuing: the files stay */
  DT_RUN_DIR_OVERWRITE /* a new run replacing an earlier one: its files are removed first */
} dt_run_dir_mode;

typedef struct dt_run_dir_lock dt_run_dir_lock;

/* Claims run directory `dir` for one training (rank 0 does the work):
 * creates it, takes its exclusive lock (DT_RUN_LOCK_FILE, an fcntl lock
 * held until dt_run_dir_release; a directory locked by another training is
 * DT_EXIT_USAGE naming the holder's host and pid), removes temporary files
 * of dtrain's names whose process is gone, and then by mode: FRESH refuses
 * (DT_EXIT_USAGE, naming --resume, --overwrite and another run.name) when
 * an earlier run's files are there (config.json, metrics.jsonl,
 * eval_test.json, a dtrain report.html, checkpoints/{epoch-N,best,last}.h5);
 * OVERWRITE removes exactly those and logs what it removed and what else it
 * kept. Nothing else in the directory is ever touched. COLLECTIVE: every
 * rank gets rank 0's result. */
int dt_run_dir_claim(dt_comm *comm, const char *dir, dt_run_dir_mode mode, dt_run_dir_lock **out);
/* Releases the lock (NULL: no-op); the lock file stays. */
void dt_run_dir_release(dt_run_dir_lock *lock);

typedef struct {
  int64_t max_steps;      /* 0 = train.max_steps */
  const char *resume;     /* checkpoint to continue from, or NULL */
  int64_t check_replicas; /* compare replicated tables every K steps (0 = comm.check_replicas) */
  int skip_final_eval;    /* do not evaluate on test at the end */
  const char *dump_step;  /* dt_train_dump_step's file, or NULL */
  int overwrite;          /* --overwrite (the command line; dt_run_dir_claim does it) */
  int allow_other_data;   /* --allow-other-data (the command line) */
} dt_train_options;

/* The whole training run, in a run directory claimed with dt_run_dir_claim.
 * SIGINT/SIGTERM/SIGUSR1 (comm.h's stop signals) stop it at a step
 * boundary: last.h5 is written (resumable exactly), rank 0 logs where it
 * stopped, and it returns DT_EXIT_SIGNAL + the signal. COLLECTIVE. */
int dt_train_run(dt_session *s, const dt_train_options *opt);

/* `train --dump-step FILE` (dump_step.c): one step's global batch, loss
 * parts and gradients (every dropout off, before clipping, decay or
 * update) written to opt->dump_step in the format of
 * tools/torch_grad_check.py --format, with the checkpoint of the parameters
 * the step started from beside it (FILE's name with .params.h5); the
 * run's first step, or with opt->resume the checkpoint's next one. Updates
 * nothing; one process only. */
int dt_train_dump_step(dt_session *s, const dt_train_options *opt);

#endif
