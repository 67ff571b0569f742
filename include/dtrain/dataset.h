/* dataset.h: the prepared data set (MODEL.md section 2), in memory and in HDF5.
 *
 * `dtrain prep` writes one HDF5 file; train/eval/recommend open it. Every
 * interaction belongs to one user's ordered list (the order of MODEL.md
 * section 2 step 4: timestamp, then user index, then item index). Because the
 * split is one global boundary in that same order (or per-user last/second
 * last for leave_one_out), each user's train interactions are a prefix of
 * the user's list, followed by the valid ones, then the test ones. So an
 * interaction is fully named by (user, pos) = its position in that list, and
 * its history is items [pos-L, pos) of the same list.
 *
 * HDF5 layout (format version DT_DATASET_FORMAT_VERSION):
 *   /users/ptr        int64  [n_users+1]  list of user u = [ptr[u], ptr[u+1])
 *   /users/items      int32  [n_interactions] item index, in list order
 *   /users/ts         int64  [n_interactions] unix seconds, in list order
 *   /users/n_train    int32  [n_users]     train prefix length of each list
 *   /users/n_valid    int32  [n_users]     valid interactions following it
 *   /users/ids        string [n_users]     original user ids (bytewise sorted)
 *   /items/ids        string [n_items]     original item ids (bytewise sorted)
 *   /train/user, /train/pos        int32 [n_train]  train interactions in global order
 *   /train/item       int32, /train/ts int64         (same rows, for readers of the file)
 *   /valid/..., /test/...          the same columns for the other splits
 *   /train_chunks/user, /start, /count  int32 [n_chunks]  train positions cut into
 *                                  chunks of L per user (MODEL.md "chunk" history)
 *   /tfidf/indptr int64 [n_items+1], /tfidf/indices int32, /tfidf/data float32,
 *   /tfidf/vocab string [vocab_size]
 *   root attributes: format_version (int), prep_config (JSON string: the
 *   data.* keys that shape the result, see prep.h), sources (JSON string: a
 *   list of {role, path, size, crc32} for each input file), summary (JSON
 *   string: the prep summary), history_len (int), split (string).
 *
 * Details fixed by format version 1:
 *   - Strings are fixed-length HDF5 strings (NUL-terminated, padded to the
 *     longest); ids are byte strings as read (UTF-8 in Amazon data).
 *   - Held-out rows dropped by the temporal split (users with no train row)
 *     are not stored: such a user keeps its id and index but has an empty
 *     list. So n_interactions (the lists, = train + valid + test) can be
 *     smaller than summary.n_interactions (after k-core, before the drop).
 *   - /train_chunks rows are ordered by user, then start; chunk c of user u
 *     covers positions [cL, min(cL + L, n_train[u])).
 *   - TF-IDF columns are the selected vocabulary terms in bytewise order
 *     (the selection itself is by document frequency, MODEL.md step 7);
 *     column indices within a row are ascending.
 *   - All datasets are contiguous (no compression), so a rank's strided
 *     hyperslab reads only its rows.
 *
 * Ownership: dt_dataset_load() allocates everything in the struct; release
 * with dt_dataset_free(). A struct filled by prep (prep.h) is released the
 * same way.
 */
#ifndef DTRAIN_DATASET_H
#define DTRAIN_DATASET_H

#include <stdint.h>

#include "dtrain/config.h"

#define DT_DATASET_FORMAT_VERSION 1

/* Counts reported by prep (printed and written as JSON, see prep.h). */
typedef struct {
  int64_t read;                             /* valid rows read from the input (malformed ones: skipped) */
  int64_t skipped;                          /* malformed rows skipped (data.on_error = skip) */
  int64_t after_rating;                     /* rows kept by the rating filter */
  int64_t after_dedup;                      /* after removing duplicate (user, item) pairs */
  int64_t n_users, n_items, n_interactions; /* after k-core */
  int64_t kcore_passes;                     /* k-core passes that removed rows (0: already a k-core) */
  int64_t train, valid, test;
  int64_t dropped_valid, dropped_test; /* held-out rows of users without train rows */
  int64_t eval_users_valid, eval_users_test;
  int64_t vocab_size, tfidf_nnz;
  int64_t n_chunks; /* rows of /train_chunks */
} dt_prep_summary;

/* One split's interactions, in global order. */
typedef struct {
  int64_t n;
  int32_t *user;
  int32_t *pos; /* position in the user's list */
  int32_t *item;
  int64_t *ts;
} dt_split;

typedef struct dt_dataset {
  int64_t n_users, n_items, n_interactions; /* n_interactions: rows in the lists (see above) */
  int history_len;                          /* L */
  char split[32];                           /* "temporal" or "leave_one_out" */
  /* per-user ordered lists (all splits) */
  int64_t *user_ptr;     /* [n_users+1] */
  int32_t *user_items;   /* [n_interactions] */
  int64_t *user_ts;      /* [n_interactions] */
  int32_t *user_n_train; /* [n_users] */
  int32_t *user_n_valid; /* [n_users] */
  /* each user's train items sorted ascending, for membership tests
   * (negative rejection): [user_ptr-like offsets into train_sorted] */
  int64_t *train_sorted_ptr; /* [n_users+1] */
  int32_t *train_sorted;     /* [n_train] */
  dt_split train, valid, test;
  /* TF-IDF rows of the items, CSR, L2-normalised */
  int64_t vocab_size;
  int64_t *tfidf_indptr;  /* [n_items+1] */
  int32_t *tfidf_indices; /* [nnz] */
  float *tfidf_values;    /* [nnz] */
  /* original ids and TF-IDF terms (loaded by dt_dataset_load_ids, NULL until then) */
  char **user_ids;
  char **item_ids;
  char **vocab; /* [vocab_size], column order */
  dt_prep_summary summary;
  char *path;             /* file it was loaded from */
  char *prep_config_json; /* the preparation config recorded in the file */
  uint32_t file_crc32;    /* CRC-32 of the whole prepared file */
} dt_dataset;

/* Loads the whole prepared file (all splits, lists, TF-IDF; not the string
 * ids). Refuses a truncated file or another format version with a message
 * (DT_EXIT_DATA). */
int dt_dataset_load(const char *path, dt_dataset *ds);
/* Loads the original string ids into ds->user_ids / ds->item_ids, and the
 * TF-IDF terms into ds->vocab. */
int dt_dataset_load_ids(dt_dataset *ds);
/* Writes a prepared data set (all of the struct, ids and vocab included)
 * to `path` atomically (a temporary file beside it, then rename), with the
 * given preparation config and source checksums (JSON texts). Creates the
 * directory. Refuses (DT_EXIT_DATA) to replace anything at `path` that
 * dt_dataset_check_replaceable() refuses; other failures DT_EXIT_RUNTIME. */
int dt_dataset_write(const char *path, const dt_dataset *ds, const char *prep_config_json, const char *sources_json);
void dt_dataset_free(dt_dataset *ds);

/* Whether a prepared data set may be written to `path`: nothing is there,
 * or a data set dtrain wrote (an HDF5 file whose root carries the
 * format_version and prep_config attributes, of any format version).
 * Anything else (another file, a directory, a dangling symbolic link, a
 * file that cannot be read, an HDF5 file that cannot be opened or lacks
 * those attributes) fails with DT_EXIT_DATA naming it and is left alone:
 * dtrain replaces only what it wrote. Whether a data set of dtrain's is
 * stale is the caller's question (dt_dataset_is_current, --force). */
int dt_dataset_check_replaceable(const char *path);

/* Reads only the prep summary recorded in a prepared file (no data). */
int dt_dataset_read_summary(const char *path, dt_prep_summary *summary);

/* Index of the user / item with this original id, or -1 (needs the ids). */
int64_t dt_dataset_find_user(const dt_dataset *ds, const char *id);
int64_t dt_dataset_find_item(const dt_dataset *ds, const char *id);

/* Whether item i is among user u's train items (binary search). */
int dt_dataset_user_has_train_item(const dt_dataset *ds, int32_t u, int32_t i);

/* Whether the prepared file at `path` exists and was made by this config
 * from inputs with the same checksums: 1 yes, 0 no (reason in `why`). */
int dt_dataset_is_current(const char *path, const dt_config *cfg, char *why, int why_size);

/* Makes sure cfg's prepared file is current, running prep when it is
 * missing or stale (what `train` calls first). Only one process may call it
 * for a given file (HDF5 locks a file being written): with MPI, rank 0
 * calls it and the others wait at a barrier before opening the file. */
int dt_dataset_ensure_prepared(const dt_config *cfg);

#endif
