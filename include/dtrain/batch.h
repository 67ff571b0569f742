/* batch.h: turns examples (user, position) into a model batch.
 *
 * The host side builds, for a list of examples: the candidates (the
 * positive and its negatives in training; the held-out item and its sampled
 * negatives in evaluation), the GRU histories packed time-major, the
 * temporal context (+ v3's user statistics), and dropout keys, then uploads
 * them to the backend as a dt_batch (model.h).
 *
 * Every random draw is keyed by what it is for, never by batch layout or
 * rank: training negatives by (run.seed, epoch, interaction, negative, try),
 * evaluation negatives by (eval.seed, user, draw). The dropout key of an
 * example is its global interaction index (user_ptr[u] + pos).
 *
 * Ownership: the builder owns its host and backend buffers; the dt_batch it
 * returns points into them and is valid until the next build.
 */
#ifndef DTRAIN_BATCH_H
#define DTRAIN_BATCH_H

#include <stdint.h>

#include "dtrain/backend.h"
#include "dtrain/dataset.h"
#include "dtrain/model.h"

/* One training unit: `count` consecutive positions of one user's list. */
typedef struct {
  int32_t user, start, count;
} dt_unit;

typedef struct dt_batch_builder dt_batch_builder;

int dt_batch_builder_create(const dt_model *model, const dt_dataset *ds, dt_backend *be, dt_batch_builder **out);
void dt_batch_builder_free(dt_batch_builder *bb);

/* A training batch from units (each position of each unit is one example
 * with 1 + train.n_neg candidates). */
int dt_batch_build_train(dt_batch_builder *bb, const dt_unit *units, int64_t n_units, int64_t epoch, uint32_t step,
                         uint64_t seed, int n_neg, int neg_tries);

/* An evaluation batch: user users[i] at held-out position pos[i], ranked
 * against its positive and `n_neg` distinct negatives drawn uniformly from
 * the items the user never interacted with (any split), keyed by
 * (eval_seed, user) only. A user with fewer unseen items gets all of them;
 * the rest of its candidate row repeats the positive and is not a
 * negative (dt_batch_host_negative_counts says how many are). */
int dt_batch_build_eval(dt_batch_builder *bb, const int32_t *users, const int32_t *pos, int64_t n, int n_neg,
                        uint64_t eval_seed);

/* An evaluation batch scoring each user against an explicit candidate list
 * (n x c item ids, host memory), e.g. a block of the catalogue. ts (may be
 * NULL) gives each example's moment; NULL takes the timestamp of the
 * interaction at pos, so pos may equal the list length only with ts. */
int dt_batch_build_candidates(dt_batch_builder *bb, const int32_t *users, const int32_t *pos, const int64_t *ts,
                              int64_t n, const int32_t *cands, int c);

/* The item list of the softmax losses (model.h, dt_batch.list_*) for the
 * training batch just built, uploaded: n_shared > 0 negatives drawn
 * uniformly from the catalogue without rejection, keyed by (seed, step)
 * only, so every rank of a global step draws the same ones (train.loss =
 * sampled_softmax); DT_BATCH_LIST_CATALOGUE: every item in id order, with
 * each example's positive's position as its target (train.loss = softmax).
 * The next build drops it. */
#define DT_BATCH_LIST_CATALOGUE (-1)
int dt_batch_build_list(dt_batch_builder *bb, int64_t n_shared, uint64_t seed, int64_t step);

/* The batch last built (host ids in `host_cand` for callers that need them). */
const dt_batch *dt_batch_get(const dt_batch_builder *bb);
const int32_t *dt_batch_host_candidates(const dt_batch_builder *bb);
const int32_t *dt_batch_host_users(const dt_batch_builder *bb);
/* Negatives of each example of the last dt_batch_build_eval: candidates
 * 1..count of its row (n_neg unless the user had fewer unseen items). */
const int32_t *dt_batch_host_negative_counts(const dt_batch_builder *bb);

/* Host view of one table's ids in the last batch, for sharded tables: the
 * trainer rewrites them into the table's gathered-rows space, then calls
 * dt_batch_upload_ids. which = DT_TABLE_*; part 0, 1 (the candidates,
 * tokens, ...), 2 (the item list); returns NULL when unused. */
#define DT_BATCH_ID_PARTS 3
int32_t *dt_batch_table_ids(dt_batch_builder *bb, int table, int part, int64_t *count);
int dt_batch_upload_ids(dt_batch_builder *bb);

/* Temporal context of a unix timestamp (MODEL.md section 2 step 6):
 * out = [hour_sin, hour_cos, dow_sin, dow_cos, is_weekend]. */
void dt_context_features(int64_t ts, float out[5]);

/* The history window [*lo, pos) of position `pos` of a user with n_train
 * train interactions, for a history mode and length L (MODEL.md 1a). */
void dt_history_window(dt_history_mode mode, int L, int32_t pos, int32_t n_train, int32_t *lo, int32_t *hi);

#endif
