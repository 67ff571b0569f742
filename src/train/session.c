/* session.c: what every rank sets up for train, eval and recommend, and the
 * per-batch placement work of sharded tables. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"

static const char *placement_key(int t) {
  static const char *keys[DT_MAX_TABLES] = {"user_emb", "item_emb", "item_bias", "dyn_item_emb"};
  return keys[t];
}

static const char *placement_value(const dt_config *cfg, int t) {
  switch (t) {
    case DT_TABLE_USER: return cfg->comm_placement_user_emb;
    case DT_TABLE_ITEM: return cfg->comm_placement_item_emb;
    case DT_TABLE_ITEM_BIAS: return cfg->comm_placement_item_bias;
    default: return cfg->comm_placement_dyn_item_emb;
  }
}

/* Registers every present table with the communicator (and, for sharded
 * ones, twins for the 1-float and int64 per-row state used by checkpoint
 * gathers) and shards the model's storage. Same order on every rank. */
static int place_tables(dt_session *s) {
  dt_model *m = s->model;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table_sync *ts = &s->tables[t];
    dt_table *tb = &m->tables[t];
    memset(ts, 0, sizeof *ts);
    ts->present = tb->present;
    if (!tb->present) continue;
    int rc = dt_placement_parse(placement_value(&s->cfg, t), &ts->placement);
    if (rc) return dt_fail_context(rc, "config key 'comm.placement.%s'", placement_key(t));
    /* one rank holds every row either way: skip the owner machinery */
    if (dt_comm_size(s->comm) == 1) ts->placement = DT_PLACEMENT_REPLICATED;
    char name[96];
    DT_TRY(dt_comm_table_add(s->comm, tb->name, tb->rows, tb->dim, ts->placement, &ts->comm_ids.rows_id));
    snprintf(name, sizeof name, "%s/acc", tb->name);
    DT_TRY(dt_comm_table_add(s->comm, name, tb->rows, 1, ts->placement, &ts->comm_ids.scalar_id));
    snprintf(name, sizeof name, "%s/row_step", tb->name);
    DT_TRY(dt_comm_table_add(s->comm, name, tb->rows, 2, ts->placement, &ts->comm_ids.step_id));
    if (ts->placement == DT_PLACEMENT_SHARDED) {
      int64_t lo, hi;
      dt_comm_table_range(s->comm, ts->comm_ids.rows_id, &lo, &hi);
      DT_TRY(dt_model_shard_table(m, t, lo, hi));
      /* one machine: the blocks in shared memory, lookups read the owners' rows */
      float *mine, *whole;
      DT_TRY(dt_comm_table_shared(s->comm, ts->comm_ids.rows_id, tb->dim, &mine, &whole));
      if (mine) DT_TRY(dt_model_adopt_shared_rows(m, t, mine, whole));
      dt_log_info("table %s: sharded, this rank holds rows [%lld, %lld) of %lld%s", tb->name, (long long)lo,
                  (long long)hi, (long long)tb->rows, mine ? " in shared memory (lookups read the owners' rows)" : "");
    }
  }
  return DT_OK;
}

int dt_session_open(dt_session *s, dt_config *cfg, dt_comm *comm, int prepare) {
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  memset(cfg, 0, sizeof *cfg); /* the session owns it now */
  s->comm = comm;
  s->run_dir = dt_config_run_dir(&s->cfg);
  int rc = DT_OK;
  /* the data set: rank 0 prepares it when needed, the others wait */
  if (prepare) {
    if (dt_comm_rank(comm) == 0) rc = dt_dataset_ensure_prepared(&s->cfg);
    int64_t failed = rc != DT_OK;
    int crc = dt_comm_allreduce_max_i64(comm, &failed, 1);
    if (crc) return crc;
    if (failed) return rc ? rc : dt_fail(DT_EXIT_DATA, "preparing the data set failed on rank 0 (see its message)");
  }
  DT_TRY(dt_dataset_load(s->cfg.data_output, &s->ds));
  /* backend.threads = 0: this node's cores shared among its ranks, so two
   * ranks on one machine do not oversubscribe it */
  int threads = (int)s->cfg.backend_threads;
  if (threads == 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    threads = (int)(cores > 0 ? cores : 1) / dt_comm_local_size(comm);
    if (threads < 1) threads = 1;
  }
  DT_TRY(dt_backend_create(s->cfg.backend_name, threads, dt_comm_local_rank(comm), s->cfg.backend_tf32, &s->be));
  DT_TRY(dt_comm_dense_setup(comm, s->be, s->cfg.comm_dense));
  DT_TRY(dt_comm_set_timeout(comm, s->cfg.comm_timeout_s));
  DT_TRY(dt_model_create(&s->cfg, s->be, s->ds.n_users, s->ds.n_items, s->ds.vocab_size, s->ds.tfidf_indptr,
                         s->ds.tfidf_indices, s->ds.tfidf_values, &s->model));
  dt_dense_storage shared;
  DT_TRY(dt_comm_dense_update_setup(comm, s->cfg.comm_dense_update, s->model->n_dense, &shared));
  if (shared.w) DT_TRY(dt_model_adopt_dense(s->model, shared.w, shared.m, shared.v, shared.g));
  DT_TRY(place_tables(s));
  DT_TRY(dt_batch_builder_create(s->model, &s->ds, s->be, &s->bb));
  return DT_OK;
}

static void free_sync(dt_backend *be, dt_table_sync *ts) {
  void *dev[] = {ts->d_cache, ts->d_uniq, ts->d_sums, ts->d_upd_ids, ts->d_upd_rows};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    if (dev[i] && be) be->free(be, dev[i]);
  free(ts->uniq);
  free(ts->rows_host);
  free(ts->h_ids);
  free(ts->h_rows);
  dt_sparse_rows_free(&ts->global);
  memset(ts, 0, sizeof *ts);
}

void dt_session_close(dt_session *s) {
  for (int t = 0; t < DT_MAX_TABLES; t++) free_sync(s->be, &s->tables[t]);
  if (s->be) {
    if (s->d_dscores) s->be->free(s->be, s->d_dscores);
    if (s->d_dalpha) s->be->free(s->be, s->d_dalpha);
  }
  free(s->h_alpha);
  dt_batch_builder_free(s->bb);
  dt_model_free(s->model);
  if (s->be) s->be->destroy(s->be);
  dt_dataset_free(&s->ds);
  dt_config_free(&s->cfg);
  free(s->run_dir);
  memset(s, 0, sizeof *s);
}

int dt_session_load(dt_session *s, const char *path, dt_ckpt_state *st) {
  int rc = dt_ckpt_load(path, s->model, st);
  /* node-shared parameters: nobody reads another rank's rows (or updates the
   * shared weights) before every rank has loaded its part */
  if (dt_comm_dense_update(s->comm) == DT_DENSE_SHARED) {
    int64_t failed = rc != DT_OK;
    DT_TRY(dt_comm_allreduce_max_i64(s->comm, &failed, 1));
    if (failed && !rc) return dt_fail(DT_EXIT_DATA, "loading %s failed on another rank (see its message)", path);
  }
  return rc;
}

void dt_session_eval_ctx(dt_session *s, dt_eval_ctx *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->cfg = &s->cfg;
  ctx->comm = s->comm;
  ctx->model = s->model;
  ctx->ds = &s->ds;
  ctx->bb = s->bb;
  int any_sharded = 0; /* whose lookups go through the owners */
  for (int t = 0; t < DT_MAX_TABLES; t++)
    any_sharded |= s->tables[t].present && s->tables[t].placement == DT_PLACEMENT_SHARDED &&
                   !s->model->tables[t].shared_rows;
  ctx->prepare_batch = any_sharded ? dt_session_prepare_batch : NULL;
  ctx->prepare_ctx = s;
  for (int t = 0; t < DT_MAX_TABLES; t++)
    ctx->table_comm_id[t] =
        s->tables[t].present && s->tables[t].placement == DT_PLACEMENT_SHARDED ? s->tables[t].comm_ids.rows_id : -1;
}

/* ---- Sharded lookups ------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

int dt_session_prepare_batch(void *session) {
  dt_session *s = session;
  dt_model *m = s->model;
  dt_backend *be = s->be;
  int changed = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table_sync *ts = &s->tables[t];
    dt_table *tb = &m->tables[t];
    if (!ts->present || ts->placement != DT_PLACEMENT_SHARDED || tb->shared_rows) continue;
    /* the batch's ids for this table, all parts */
    int64_t total = 0, cnt;
    for (int part = 0; part < 2; part++)
      if (dt_batch_table_ids(s->bb, t, part, &cnt)) total += cnt;
    if (total > ts->uniq_cap) {
      ts->uniq_cap = total + total / 4 + 16;
      ts->uniq = dt_xrealloc(ts->uniq, (size_t)ts->uniq_cap * sizeof(int32_t));
    }
    int64_t k = 0;
    for (int part = 0; part < 2; part++) {
      int32_t *ids = dt_batch_table_ids(s->bb, t, part, &cnt);
      if (ids) {
        memcpy(ts->uniq + k, ids, (size_t)cnt * sizeof(int32_t));
        k += cnt;
      }
    }
    qsort(ts->uniq, (size_t)k, sizeof(int32_t), cmp_i32);
    int64_t u = 0;
    for (int64_t i = 0; i < k; i++)
      if (u == 0 || ts->uniq[u - 1] != ts->uniq[i]) ts->uniq[u++] = ts->uniq[i];
    ts->n_uniq = u;
    /* fetch the rows from their owners, into the table's view */
    ts->rows_host = dt_xrealloc(ts->rows_host, (size_t)((u > 0 ? u : 1) * tb->dim) * sizeof(float));
    dt_table_ref ref = {m, t};
    DT_TRY(dt_comm_sharded_lookup(s->comm, ts->comm_ids.rows_id, ts->uniq, u, dt_model_fetch_rows, &ref,
                                  ts->rows_host));
    if (u > ts->cache_cap) {
      ts->cache_cap = u + u / 4 + 16;
      DT_TRY(dt_backend_replace(be, (void **)&ts->d_cache, (size_t)(ts->cache_cap * tb->dim) * sizeof(float)));
    }
    if (u > 0) DT_TRY(be->upload(be, ts->d_cache, ts->rows_host, (size_t)(u * tb->dim) * sizeof(float)));
    tb->view = ts->d_cache;
    /* global ids -> positions in the view */
    for (int part = 0; part < 2; part++) {
      int32_t *ids = dt_batch_table_ids(s->bb, t, part, &cnt);
      for (int64_t i = 0; ids && i < cnt; i++) {
        const int32_t *hit = bsearch(&ids[i], ts->uniq, (size_t)u, sizeof(int32_t), cmp_i32);
        ids[i] = (int32_t)(hit - ts->uniq);
      }
    }
    changed = 1;
  }
  return changed ? dt_batch_upload_ids(s->bb) : DT_OK;
}
