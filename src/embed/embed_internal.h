/* embed_internal.h: what the files of src/embed share (not public). */
#ifndef DTRAIN_EMBED_INTERNAL_H
#define DTRAIN_EMBED_INTERNAL_H

#include <stdint.h>

#include "dtrain/comm.h"
#include "dtrain/embed.h"

/* A table's lookup and exchange scratch, reused across steps. */
struct dt_table_xchg {
  /* sharded lookups: the batch's unique global rows and their values */
  int32_t *uniq;
  int64_t n_uniq, uniq_cap;
  float *rows_host;
  float *d_cache; /* backend copy of rows_host: the view */
  int64_t cache_cap;
  /* gradient exchange: the coalesced rows (backend), their host copy */
  int32_t *d_uniq;
  float *d_sums;
  int64_t dsum_cap;
  int32_t *h_ids;
  float *h_rows;
  int64_t h_cap;
  dt_sparse_rows global; /* rows to apply on this rank (global ids) */
  int32_t *d_upd_ids;    /* their backend copy (backends without host memory) */
  float *d_upd_rows;
  int64_t upd_cap;
};

/* A dt_comm_fetch_fn over a table (ctx: the dt_table): rows local_ids[0..n)
 * of the rows this rank stores, into rows_host [n, dim]. */
int dt_table_fetch_rows(void *table, const int32_t *local_ids, int64_t n, int dim, float *rows_host);

/* Grows a pair of backend buffers to `need` ids and `need` rows of dim floats. */
int dt_embed_grow_rows(dt_backend *be, int32_t **ids, float **rows, int64_t *cap, int64_t need, int dim);

#endif
