/* session.c: what every rank sets up for train, eval and recommend, and the
 * per-batch placement work of sharded tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/optim.h"
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

/* Places every present table (replicated or sharded, comm.placement.*):
 * the same order on every rank. */
static int place_tables(dt_session *s) {
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &s->model->tables[t];
    if (!tb->present) continue;
    dt_placement placement;
    int rc = dt_placement_parse(placement_value(&s->cfg, t), &placement);
    if (rc) return dt_fail_context(rc, "config key 'comm.placement.%s'", placement_key(t));
    DT_TRY(dt_table_place(tb, s->comm, placement == DT_PLACEMENT_SHARDED));
  }
  return DT_OK;
}

/* announce: log the loss's cost warning (rank 0 of a training session) */
static int setup(dt_session *s, int announce);

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
  return setup(s, prepare);
}

int dt_session_open_with_data(dt_session *s, dt_config *cfg, dt_comm *comm, dt_dataset *ds) {
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  memset(cfg, 0, sizeof *cfg); /* the session owns it now */
  s->comm = comm;
  s->run_dir = dt_config_run_dir(&s->cfg);
  s->ds = *ds;
  memset(ds, 0, sizeof *ds);
  return setup(s, 0);
}

/* What every session sets up once its data set is in memory: the backend,
 * the model with its tables placed, the batch builder. COLLECTIVE. */
static int setup(dt_session *s, int announce) {
  dt_comm *comm = s->comm;
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
  s->sparse_optim = dt_optim_sparse_kind(&s->cfg);
  DT_TRY(dt_loss_setup(&s->loss, &s->cfg, s->model, announce && dt_comm_rank(comm) == 0));
  DT_TRY(dt_batch_builder_create(s->model, &s->ds, s->be, &s->bb));
  return DT_OK;
}

void dt_session_close(dt_session *s) {
  dt_loss_free(&s->loss, s->be);
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
  char what[4096];
  snprintf(what, sizeof what, "loading %s", path);
  return dt_comm_dense_sync(s->comm)->after_write(s->comm, rc, DT_EXIT_DATA, what);
}

int dt_session_load_weights(dt_session *s, const char *path, dt_ckpt_state *st) {
  int rc = dt_ckpt_load_weights(path, s->model, st);
  char what[4096];
  snprintf(what, sizeof what, "loading %s", path);
  return dt_comm_dense_sync(s->comm)->after_write(s->comm, rc, DT_EXIT_DATA, what);
}

void dt_session_eval_ctx(dt_session *s, dt_eval_ctx *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->cfg = &s->cfg;
  ctx->comm = s->comm;
  ctx->model = s->model;
  ctx->ds = &s->ds;
  ctx->bb = s->bb;
  int any_lookup = 0; /* tables whose rows come from their owners */
  for (int t = 0; t < DT_MAX_TABLES; t++) any_lookup |= dt_table_needs_lookup(&s->model->tables[t]);
  ctx->prepare_batch = any_lookup ? dt_session_prepare_batch : NULL;
  ctx->prepare_ctx = s;
}

/* ---- Sharded lookups ------------------------------------------------------------- */

int dt_session_prepare_batch(void *session) {
  dt_session *s = session;
  int changed = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &s->model->tables[t];
    if (!dt_table_needs_lookup(tb)) continue;
    /* the batch's ids for this table, all parts: rewritten to view positions */
    int32_t *ids[DT_BATCH_ID_PARTS];
    int64_t counts[DT_BATCH_ID_PARTS];
    for (int part = 0; part < DT_BATCH_ID_PARTS; part++) ids[part] = dt_batch_table_ids(s->bb, t, part, &counts[part]);
    DT_TRY(dt_table_lookup(tb, ids, counts, DT_BATCH_ID_PARTS));
    changed = 1;
  }
  return changed ? dt_batch_upload_ids(s->bb) : DT_OK;
}
