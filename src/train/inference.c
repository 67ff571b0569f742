/* inference.c: a checkpoint's inference data (ckpt.h's dt_ckpt_inference)
 * from a prepared data set, and back into a data set a session can serve
 * from (trainer.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/trainer.h"

static const char *mode_name(dt_history_mode mode) {
  switch (mode) {
    case DT_HISTORY_PREFIX: return "prefix";
    case DT_HISTORY_USER_TRAIN: return "user_train";
    default: return "chunk";
  }
}

void dt_popularity_counts(const dt_dataset *ds, int64_t *count) {
  memset(count, 0, (size_t)ds->n_items * sizeof(int64_t));
  for (int64_t u = 0; u < ds->n_users; u++)
    for (int32_t p = 0; p < ds->user_n_train[u]; p++) count[ds->user_items[ds->user_ptr[u] + p]]++;
}

int dt_inference_from_dataset(const dt_dataset *ds, dt_history_mode mode, int with_tfidf, dt_ckpt_inference *out) {
  memset(out, 0, sizeof *out);
  if (!ds->user_ids || !ds->item_ids)
    return dt_fail(DT_EXIT_RUNTIME, "the inference data needs the data set's ids (internal error: load them first)");
  out->n_users = ds->n_users;
  out->n_items = ds->n_items;
  out->n_lists = ds->user_ptr[ds->n_users];
  out->user_ids = ds->user_ids;
  out->item_ids = ds->item_ids;
  out->user_ptr = ds->user_ptr;
  out->user_items = ds->user_items;
  out->user_n_train = ds->user_n_train;
  out->history_len = ds->history_len;
  snprintf(out->history_mode, sizeof out->history_mode, "%s", mode_name(mode));
  out->has_tfidf = with_tfidf && ds->vocab_size > 0;
  out->vocab_size = out->has_tfidf ? ds->vocab_size : 0;
  if (out->has_tfidf) {
    out->tfidf_indptr = ds->tfidf_indptr;
    out->tfidf_indices = ds->tfidf_indices;
    out->tfidf_values = ds->tfidf_values;
  }
  /* the two arrays computed here are the struct's own (dt_inference_release) */
  out->user_last_ts = dt_xcalloc((size_t)(ds->n_users ? ds->n_users : 1), sizeof(int64_t));
  for (int64_t u = 0; u < ds->n_users; u++)
    if (ds->user_ptr[u + 1] > ds->user_ptr[u]) out->user_last_ts[u] = ds->user_ts[ds->user_ptr[u + 1] - 1];
  out->item_popularity = dt_xcalloc((size_t)(ds->n_items ? ds->n_items : 1), sizeof(int64_t));
  dt_popularity_counts(ds, out->item_popularity);
  return DT_OK;
}

void dt_inference_release(dt_ckpt_inference *inf) {
  free(inf->user_last_ts);
  free(inf->item_popularity);
  memset(inf, 0, sizeof *inf);
}

void dt_inference_to_dataset(dt_ckpt_inference *inf, const char *path, uint32_t crc, dt_dataset *ds,
                             int64_t **popularity) {
  memset(ds, 0, sizeof *ds);
  ds->n_users = inf->n_users;
  ds->n_items = inf->n_items;
  ds->n_interactions = inf->n_lists;
  ds->history_len = inf->history_len;
  snprintf(ds->split, sizeof ds->split, "%s", "none");
  ds->user_ptr = inf->user_ptr;
  ds->user_items = inf->user_items;
  ds->user_n_train = inf->user_n_train;
  ds->user_ids = inf->user_ids;
  ds->item_ids = inf->item_ids;
  /* a recommend-time batch reads one timestamp of a list, its last (the
   * gate's days since the previous interaction): every position of the
   * list carries it */
  ds->user_ts = dt_xmalloc((size_t)(inf->n_lists ? inf->n_lists : 1) * sizeof(int64_t));
  ds->user_n_valid = dt_xcalloc((size_t)(inf->n_users ? inf->n_users : 1), sizeof(int32_t));
  for (int64_t u = 0; u < inf->n_users; u++) {
    for (int64_t k = inf->user_ptr[u]; k < inf->user_ptr[u + 1]; k++) ds->user_ts[k] = inf->user_last_ts[u];
    ds->user_n_valid[u] = (int32_t)(inf->user_ptr[u + 1] - inf->user_ptr[u]) - inf->user_n_train[u];
  }
  ds->vocab_size = inf->has_tfidf ? inf->vocab_size : 0;
  if (inf->has_tfidf) {
    ds->tfidf_indptr = inf->tfidf_indptr;
    ds->tfidf_indices = inf->tfidf_indices;
    ds->tfidf_values = inf->tfidf_values;
  } else {
    ds->tfidf_indptr = dt_xcalloc((size_t)inf->n_items + 1, sizeof(int64_t));
    free(inf->tfidf_indices);
    free(inf->tfidf_values);
  }
  ds->path = dt_xstrdup(path);
  ds->file_crc32 = crc;
  *popularity = inf->item_popularity;
  /* what moved into ds (or to the caller) is no longer the struct's; the rest is freed */
  free(inf->user_last_ts);
  memset(inf, 0, sizeof *inf);
}
