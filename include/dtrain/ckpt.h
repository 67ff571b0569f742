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
 *   /inference/...               what inference needs besides the parameters,
 *                                so `recommend` runs without the data set
 *                                (dt_ckpt_inference below; absent in files
 *                                written before it existed)
 *     /inference/users/ids       string [n_users]  original user ids (bytewise sorted)
 *     /inference/users/ptr       int64  [n_users+1] user u's list = items[ptr[u], ptr[u+1])
 *     /inference/users/items     int32  [n_lists]  every item of each user's list, in
 *                                list order (train, valid, test): the history
 *                                window is read from it and all of it is
 *                                excluded from recommendations
 *     /inference/users/n_train   int32  [n_users]  train prefix of each list (user_train windows)
 *     /inference/users/last_ts   int64  [n_users]  unix time of each list's last item (the
 *                                v3 gate's days-since-previous statistic; 0 for an empty list)
 *     /inference/items/ids       string [n_items]  original item ids (bytewise sorted)
 *     /inference/items/popularity int64 [n_items]  train interactions per item (the
 *                                fallback ranking of a user without history)
 *     /inference/tfidf/indptr, indices, data   the items' TF-IDF rows, CSR (only when
 *                                the model has the content tower)
 *     attributes of /inference: history_mode (prefix | user_train | chunk: the
 *       window rule, MODEL.md 1a), history_len (L), vocab_size, n_users, n_items
 *   An export (`dtrain export`, dt_ckpt_export) has the root attributes plus
 *   kind = "export" and exported_from, /params, the attributes of /state and
 *   /inference: no /optim, so it serves and evaluates but does not resume.
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
  int64_t epoch;         /* completed epochs */
  int64_t global_step;   /* optimizer steps taken */
  int64_t step_in_epoch; /* steps of the next epoch already taken (0 at an epoch boundary) */
  double best_metric;    /* best validation NDCG@10 so far (-1 when none) */
  int64_t best_epoch;
  int64_t bad_epochs; /* epochs without improvement (early stopping) */
  uint64_t seed;
} dt_ckpt_state;

/* What inference needs besides the parameters: the /inference group.
 * Filled by dt_ckpt_read_inference (which allocates every array: release
 * with dt_ckpt_inference_free), or by the caller for dt_ckpt_save (which
 * only reads it; trainer.h's dt_inference_from_dataset borrows the data
 * set's arrays). */
typedef struct {
  int64_t n_users, n_items, n_lists; /* n_lists: entries of user_items */
  char **user_ids, **item_ids;       /* [n_users], [n_items] */
  int64_t *user_ptr;                 /* [n_users + 1] */
  int32_t *user_items;               /* [n_lists] */
  int32_t *user_n_train;             /* [n_users] */
  int64_t *user_last_ts;             /* [n_users] */
  int64_t *item_popularity;          /* [n_items] */
  int history_len;                   /* L */
  char history_mode[16];             /* "prefix", "user_train" or "chunk" */
  int has_tfidf;                     /* the TF-IDF rows are present */
  int64_t vocab_size;
  int64_t *tfidf_indptr; /* [n_items + 1] */
  int32_t *tfidf_indices;
  float *tfidf_values;
} dt_ckpt_inference;

/* Writes a checkpoint of `model` to `path`, with the inference data when
 * `inference` is not NULL (rank 0's is written; the others may pass NULL).
 * COLLECTIVE (sharded tables are gathered to rank 0 part by part: embed.h's
 * dt_table_part_gather); every rank gets the same return code. */
int dt_ckpt_save(const char *path, dt_model *model, const dt_ckpt_state *state, const char *config_json,
                 uint32_t dataset_crc32, const char *dataset_path, const dt_ckpt_inference *inference, dt_comm *comm);

/* Whether the checkpoint (or export) at `path` carries /inference (*has = 1)
 * and is an export (*is_export = 1; may be NULL). */
int dt_ckpt_probe(const char *path, int *has_inference, int *is_export);
/* Reads and checks /inference (every size and index against the others). */
int dt_ckpt_read_inference(const char *path, dt_ckpt_inference *out);
void dt_ckpt_inference_free(dt_ckpt_inference *inf);

/* Writes the parameters, the /state attributes and the inference data of
 * the checkpoint `src` to `dst` (no optimizer state), atomically. `inf`
 * supplies the inference data when `src` has none (NULL: it must have it).
 * `dst` is replaced only when it is a checkpoint or export dtrain wrote,
 * or with `force`; anything else there is refused with DT_EXIT_DATA. */
int dt_ckpt_export(const char *src, const char *dst, const dt_ckpt_inference *inf, int force);

/* Reads parameters, optimizer state and `state` into `model` (created with
 * the matching config). Not collective: every rank reads what it holds.
 * Refuses an export (no optimizer state: it cannot resume). */
int dt_ckpt_load(const char *path, dt_model *model, dt_ckpt_state *state);
/* Reads the parameters and `state` only (eval, recommend): a checkpoint or
 * an export. The optimizer state in `model` is left as it was. */
int dt_ckpt_load_weights(const char *path, dt_model *model, dt_ckpt_state *state);

/* The merged config stored in a checkpoint (caller frees), and its
 * data-set checksum. */
int dt_ckpt_read_meta(const char *path, char **config_json, uint32_t *dataset_crc32);

#endif
