/* batch_internal.h: what the batch module's files share (not public). */
#ifndef DTRAIN_BATCH_INTERNAL_H
#define DTRAIN_BATCH_INTERNAL_H

#include <stdint.h>

#include "dtrain/backend.h"
#include "dtrain/model.h"

/* ---- The softmax losses' item list (batch_list.c) ---- */
typedef struct dt_batch_list dt_batch_list;

/* Builds the list of dt_batch_build_list into *lst (created on first use)
 * for batch b, whose candidates are cand_host [n, c] (column 0 the
 * positive), uploads it and points b->list_* at it. */
int dt_batch_list_build(dt_batch_list **lst, dt_backend *be, int64_t n_items, const int32_t *cand_host, dt_batch *b,
                        int64_t n_shared, uint64_t seed, int64_t step);
/* Uploads the host ids again (a sharded lookup rewrote them) and points
 * b->list_* at the backend copies. */
int dt_batch_list_upload(dt_batch_list *lst, dt_batch *b);
/* The list's host ids of table `table` (DT_TABLE_*), or NULL when the model
 * does not read that table for the list. */
int32_t *dt_batch_list_ids(dt_batch_list *lst, const dt_model *m, int table, int64_t *count);
void dt_batch_list_free(dt_batch_list *lst);

#endif
