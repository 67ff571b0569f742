/* ckpt.h: HDF5 checkpoints.
 *
 * Layout (format version DT_CKPT_FORMAT_VERSION; README "Checkpoints"):
 *   /params/<name>               every parameter under its MODEL.md name with
 *                                PyTorch's shape (float32): dense ones and the
 *                                embedding tables
 *   /optim/adam_m/<name>, /optim/adam_v/<name>   dense Adam moments
 *   /optim/tables/<table>/m, /v                  lazy-Adam moments [rows, dim]
 *   /optim/tables/<table>/row_step               lazy-Adam per-row steps (int64)
 *   /optim/tables/<table>/acc                    row-wise Adagrad sums [rows]
 *   attributes of /: format_version, dtrain_version, git_hash, created,
 *     config (the merged config, JSON), dataset_crc32, dataset_path,
 *     model_version, model_variant
 *   attributes of /optim: adam_step
 *   attributes of /state: epoch (completed epochs), global_step,
 *     step_in_epoch, best_metric, best_epoch, bad_epochs, seed, rng (every
 *     draw is Philox keyed by seed and counters, so seed + epoch + step are
 *     the whole random state)
 *
 * Writing is atomic (temporary file, H5Fflush, fsync, rename, fsync of the
 * directory) and done by rank 0; sharded tables reach it in bounded chunks.
 * A failed write (a full disk) is DT_EXIT_RUNTIME naming the file and the
 * OS error; the temporary file is removed, earlier checkpoints stay as
 * they were. Every dataset carries h5io's Fletcher-32 checksum. Reading
 * validates the format version and every dataset's shape against the model
 * before reading it, naming the dataset on a mismatch; a checksum mismatch
 * or a non-finite value is DT_EXIT_DATA naming the dataset. Every rank
 * reads (read-only opens may be shared); a sharded table is read by each
 * rank for its own rows only, so a checkpoint written with N ranks loads
 * with M.
 */
#ifndef DTRAIN_CKPT_H
#define DTRAIN_CKPT_H

#include <stdint.h>

#include "dtrain/comm.h"
#include "dtrain/model.h"

#define DT_CKPT_FORMAT_VERSION 1

typedef struct {
  int64_t epoch;          /* completed epochs */
  int64_t global_step;    /* optimizer steps taken */
  int64_t step_in_epoch;  /* steps of the next epoch already taken (0 at an epoch boundary) */
  double best_metric;     /* best validation NDCG@10 so far (-1 when none) */
  int64_t best_epoch;
  int64_t bad_epochs;     /* epochs without improvement (early stopping) */
  uint64_t seed;
} dt_ckpt_state;

/* Writes a checkpoint of `model` to `path`. COLLECTIVE (sharded tables are
 * gathered to rank 0 part by part: embed.h's dt_table_part_gather); every
 * rank gets the same return code. */
int dt_ckpt_save(const char *path, dt_model *model, const dt_ckpt_state *state, const char *config_json,
                 uint32_t dataset_crc32, const char *dataset_path, dt_comm *comm);

/* Reads parameters, optimizer state and `state` into `model` (created with
 * the matching config). Not collective: every rank reads what it holds. */
int dt_ckpt_load(const char *path, dt_model *model, dt_ckpt_state *state);

/* The merged config stored in a checkpoint (caller frees), and its
 * data-set checksum. */
int dt_ckpt_read_meta(const char *path, char **config_json, uint32_t *dataset_crc32);

#endif
