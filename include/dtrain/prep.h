/* prep.h: raw interactions to the prepared data set (MODEL.md section 2).
 *
 * The pipeline is a chain of steps over one interaction table
 * (readers.h): rating filter (in the readers), dedup, k-core, sorted id
 * maps, ordering + split + per-user lists, item text, TF-IDF. Each step is
 * a function here so it can be tested on hand-made input; dt_prep_build
 * runs them all from a configuration, dt_prep_run also writes the file.
 *
 * Ownership: the steps modify the table in place or fill fields of a
 * dt_dataset (released with dt_dataset_free); strings returned here are the
 * caller's to free().
 */
#ifndef DTRAIN_PREP_H
#define DTRAIN_PREP_H

#include <stdint.h>
#include <stdio.h>

#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/readers.h"

/* ---- Steps ----------------------------------------------------------------------- */

/* Step 1: keeps the earliest row of each (user, item) pair; of rows with the
 * same timestamp, the one read first. Rows stay in read order. */
void dt_prep_dedup(dt_interactions *x);

/* Step 2: removes users and items with fewer than k rows, repeating until
 * nothing changes. *passes (may be NULL) = passes that removed something. */
void dt_prep_kcore(dt_interactions *x, int64_t k, int64_t *passes);

/* Step 3: ids sorted bytewise. Sets ds->n_users, n_items, user_ids,
 * item_ids for the users and items present in x, and rewrites x->user and
 * x->item to those indices. *item_raw (may be NULL) receives, for each new
 * item index, its index in the old x->items (caller frees). After this call
 * x->users / x->items no longer match x->user / x->item and are freed. */
void dt_prep_index(dt_interactions *x, dt_dataset *ds, int32_t **item_raw);

/* Steps 4-5: orders all rows by (timestamp, user, item), splits them
 * (temporal: the first floor(train_frac N) rows are train, the next
 * floor(valid_frac N) valid, the rest test, and held-out rows of users with
 * no train row are dropped; leave_one_out: per user the last row is test and
 * the one before valid, for users with at least 3 rows) and fills the
 * per-user lists and split tables of ds (and the split counts of
 * ds->summary). x must be indexed (dt_prep_index) and free of duplicate
 * pairs. */
int dt_prep_split(const dt_interactions *x, int leave_one_out, double train_frac, double valid_frac, dt_dataset *ds);

/* Item text without metadata: each item's review summaries (x->text of its
 * rows), joined by spaces. x must be indexed; returns [n_items] strings. */
char **dt_prep_summary_text(const dt_interactions *x, int64_t n_items);

/* Tokens of MODEL.md step 7: maximal runs of ASCII letters and digits,
 * lower-cased, of length >= 2. Calls fn(token, len, ctx) for each. */
void dt_prep_tokenize(const char *text, void (*fn)(const char *tok, size_t len, void *ctx), void *ctx);

/* Step 7: TF-IDF of the item texts docs[0..n_items): vocabulary = the
 * max_terms terms of highest document frequency among those with
 * df >= min_df (ties bytewise), columns in bytewise term order, weight
 * tf * (ln((1 + N) / (1 + df)) + 1) with N = n_items, rows L2-normalised.
 * Fills ds->vocab_size, vocab, tfidf_indptr/indices/values and the summary's
 * vocab_size / tfidf_nnz. */
void dt_prep_tfidf(char *const *docs, int64_t n_items, int64_t max_terms, int64_t min_df, dt_dataset *ds);

/* ---- The whole pipeline ----------------------------------------------------------- */

/* Runs every step for cfg's data.* keys into ds (no file written).
 * *sources_json (may be NULL) receives the input checksums as JSON. */
int dt_prep_build(const dt_config *cfg, dt_dataset *ds, char **sources_json);

/* dt_prep_build, then writes cfg's data.output. `summary` may be NULL. */
int dt_prep_run(const dt_config *cfg, dt_prep_summary *summary);

/* The data.* keys that shape the prepared data set, as compact JSON in
 * schema order: format-specific keys only for their format (reviews/meta
 * for amazon, reviews/columns/delimiter/header for delimited, synthetic.*
 * for synthetic), never data.output (where the result goes is not what it
 * is). This is what dt_dataset_is_current compares. */
char *dt_prep_config_json(const dt_config *cfg);

/* The input files of cfg (role and path), for checksums: returns how many
 * (at most 2) and fills roles/paths (pointers into cfg). */
int dt_prep_sources(const dt_config *cfg, const char **roles, const char **paths);

/* The summary as JSON (keys of the issue: read, after_dedup, n_users, ...). */
char *dt_prep_summary_json(const dt_prep_summary *s);
/* Parses it back (keys missing from the text stay 0). */
int dt_prep_summary_from_json(const char *json, dt_prep_summary *s);
/* Human-readable lines, counts with thousands separators. */
void dt_prep_summary_print(FILE *f, const dt_prep_summary *s, int64_t kcore, const char *split);
/* 1234567 -> "1,234,567" into out. */
void dt_format_count(int64_t v, char *out, size_t n);

#endif
