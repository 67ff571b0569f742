/* dump_step.c: `dtrain train --dump-step FILE` (trainer.h): one training
 * step's global batch, loss parts and gradients, computed with every
 * dropout off and before clipping, weight decay or any update, in the
 * format tools/torch_grad_check.py checks (python/dtrain_torch/graddump.py,
 * "DUMP FORMAT", version 1), next to a checkpoint of the parameters the
 * step started from (FILE's name with .params.h5). Nothing is updated. The
 * step is the run's first (fresh parameters) or, with --resume, the step
 * the checkpoint would take next. One process: the dump is the global
 * batch. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/h5io.h"
#include "dtrain/log.h"
#include "dtrain/shard.h"
#include "dtrain/trainer.h"
#include "train_internal.h"

#define DUMP_FORMAT "dtrain-grad-dump"
#define DUMP_VERSION 1

/* A dataset [rows] (cols == 0) or [rows, cols] of host memory. */
static int put(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *data, int64_t rows,
               int64_t cols, const char *path) {
  hid_t ds = -1;
  int rc = dt_h5_create_rows(loc, name, file_type, rows, cols, &ds, path);
  if (!rc) rc = dt_h5_write_rows(ds, mem_type, 0, rows, cols > 0 ? cols : 1, data, path, name);
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

static int group(hid_t loc, const char *name, hid_t *out, const char *path) {
  *out = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  return *out >= 0
             ? DT_OK
             : dt_fail(DT_EXIT_RUNTIME, "%s: creating group %s failed (HDF5: %s)", path, name, dt_h5_last_error());
}

/* The step's units: the shard's plan of the epoch the run is in. */
static int64_t step_units(const dt_shard *sh, const dt_epoch_plan *plan, int64_t step, dt_unit **out) {
  int64_t lo = plan->step_ptr[step], hi = plan->step_ptr[step + 1];
  *out = dt_xmalloc((size_t)(hi - lo + 1) * sizeof(dt_unit));
  for (int64_t k = lo; k < hi; k++) {
    int64_t u = plan->order[k];
    (*out)[k - lo] = (dt_unit){sh->unit_user[u], sh->unit_start[u], sh->unit_count[u]};
  }
  return hi - lo;
}

/* /batch: users, positions, candidates, shared negatives, context, and the
 * history windows by MODEL.md's rule (chunk: one window per unit, items
 * [w, end - 1), position p reading p - w; otherwise each example's own). */
static int write_batch(dt_session *s, hid_t f, const dt_unit *units, int64_t n_units, const char *path) {
  const dt_batch *b = dt_batch_get(s->bb);
  const dt_model *m = s->model;
  const dt_dataset *ds = &s->ds;
  const int64_t n = b->n;
  const int L = ds->history_len > 0 ? ds->history_len : (int)s->cfg.data_history_len;
  hid_t g;
  DT_TRY(group(f, "batch", &g, path));
  int32_t *users = dt_xmalloc((size_t)(n + 1) * sizeof(int32_t)), *pos = dt_xmalloc((size_t)(n + 1) * sizeof(int32_t));
  int32_t *ex_win = dt_xmalloc((size_t)(n + 1) * sizeof(int32_t)),
          *ex_read = dt_xmalloc((size_t)(n + 1) * sizeof(int32_t));
  int64_t *ptr = dt_xmalloc((size_t)(n + n_units + 1) * sizeof(int64_t));
  int32_t *items = NULL;
  int64_t n_win = 0, n_items = 0, cap = 0, e = 0;
  ptr[0] = 0;
  for (int64_t k = 0; k < n_units; k++) {
    const int32_t u = units[k].user, s0 = units[k].start, end = s0 + units[k].count;
    const int chunk = m->history == DT_HISTORY_CHUNK;
    int32_t w = 0, unused;
    if (chunk) dt_history_window(DT_HISTORY_CHUNK, L, s0, 0, &w, &unused);
    for (int32_t p = s0; p < end; p++, e++) {
      users[e] = u;
      pos[e] = p;
      int32_t lo = w, hi = end - 1;
      if (!chunk) dt_history_window(m->history, L, p, ds->user_n_train[u], &lo, &hi);
      if (!chunk || p == s0) { /* a new window: chunk mode's first position opens the unit's */
        if (n_items + (hi - lo) > cap) {
          cap = (n_items + (hi - lo)) * 2 + 64;
          items = dt_xrealloc(items, (size_t)cap * sizeof(int32_t));
        }
        for (int32_t q = lo; q < hi; q++) items[n_items++] = ds->user_items[ds->user_ptr[u] + q];
        ptr[++n_win] = n_items;
      }
      ex_win[e] = (int32_t)(n_win - 1);
      ex_read[e] = chunk ? p - w : hi - lo;
    }
  }
  float *ctx = dt_xmalloc((size_t)(n * m->gate_in + 1) * sizeof(float));
  int rc = e == n ? DT_OK
                  : dt_fail(DT_EXIT_RUNTIME,
                            "--dump-step: %lld examples in the units, %lld in the batch "
                            "(internal error)",
                            (long long)e, (long long)n);
  if (!rc && n > 0) rc = s->be->download(s->be, ctx, b->ctx, (size_t)(n * m->gate_in) * sizeof(float));
  if (!rc) rc = put(g, "users", H5T_STD_I32LE, H5T_NATIVE_INT32, users, n, 0, path);
  if (!rc) rc = put(g, "pos", H5T_STD_I32LE, H5T_NATIVE_INT32, pos, n, 0, path);
  if (!rc) rc = put(g, "cands", H5T_STD_I32LE, H5T_NATIVE_INT32, dt_batch_host_candidates(s->bb), n, b->c, path);
  if (!rc) rc = put(g, "context", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ctx, n, m->gate_in, path);
  if (!rc && s->loss.kind == DT_LOSS_SAMPLED_SOFTMAX) {
    int32_t *shared = dt_xmalloc((size_t)(b->n_list + 1) * sizeof(int32_t));
    rc = s->be->download(s->be, shared, b->list_item, (size_t)b->n_list * sizeof(int32_t));
    if (!rc) rc = put(g, "shared", H5T_STD_I32LE, H5T_NATIVE_INT32, shared, b->n_list, 0, path);
    free(shared);
  }
  if (!rc && m->use_dynamic) {
    hid_t wg;
    rc = group(g, "windows", &wg, path);
    if (!rc) rc = put(wg, "items", H5T_STD_I32LE, H5T_NATIVE_INT32, items ? items : ex_win, n_items, 0, path);
    if (!rc) rc = put(wg, "ptr", H5T_STD_I64LE, H5T_NATIVE_INT64, ptr, n_win + 1, 0, path);
    if (wg >= 0) H5Gclose(wg);
    if (!rc) rc = put(g, "ex_window", H5T_STD_I32LE, H5T_NATIVE_INT32, ex_win, n, 0, path);
    if (!rc) rc = put(g, "ex_readout", H5T_STD_I32LE, H5T_NATIVE_INT32, ex_read, n, 0, path);
  }
  H5Gclose(g);
  free(users);
  free(pos);
  free(ex_win);
  free(ex_read);
  free(ptr);
  free(items);
  free(ctx);
  return rc;
}

/* A table's gradient rows coalesced (sorted ids, rows summed in double). */
static int ids_cmp_key(const void *a, const void *b) {
  const int64_t *x = a, *y = b; /* (id, original index) */
  return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

static int write_table_grad(dt_session *s, hid_t tg, const dt_table *tb, const char *path) {
  const int64_t n = tb->grad_n, dim = tb->dim;
  if (n == 0) return DT_OK;
  int32_t *ids = dt_xmalloc((size_t)n * sizeof(int32_t));
  float *rows = dt_xmalloc((size_t)(n * dim) * sizeof(float));
  int rc = s->be->download(s->be, ids, tb->grad_ids, (size_t)n * sizeof(int32_t));
  if (!rc) rc = s->be->download(s->be, rows, tb->grad_rows, (size_t)(n * dim) * sizeof(float));
  int64_t *order = dt_xmalloc((size_t)n * 2 * sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) {
    order[2 * i] = ids[i];
    order[2 * i + 1] = i;
  }
  qsort(order, (size_t)n, 2 * sizeof(int64_t), ids_cmp_key);
  int64_t *uniq = dt_xmalloc((size_t)n * sizeof(int64_t)), m = 0;
  double *acc = dt_xcalloc((size_t)(n * dim), sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    if (m == 0 || uniq[m - 1] != order[2 * i]) uniq[m++] = order[2 * i];
    for (int64_t c = 0; c < dim; c++) acc[(m - 1) * dim + c] += rows[order[2 * i + 1] * dim + c];
  }
  float *vals = dt_xmalloc((size_t)(m * dim) * sizeof(float));
  for (int64_t i = 0; i < m * dim; i++) vals[i] = (float)acc[i];
  hid_t g = -1;
  if (!rc) rc = group(tg, tb->name, &g, path);
  if (!rc) rc = put(g, "rows", H5T_STD_I64LE, H5T_NATIVE_INT64, uniq, m, 0, path);
  if (!rc) rc = put(g, "values", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, vals, m, dim > 1 ? dim : 0, path);
  if (g >= 0) H5Gclose(g);
  free(ids);
  free(rows);
  free(order);
  free(uniq);
  free(acc);
  free(vals);
  return rc;
}

/* /grad: every dense parameter in PyTorch's layout, every table's rows. */
static int write_grads(dt_session *s, hid_t f, const char *path) {
  dt_model *m = s->model;
  hid_t g, dg, tg;
  DT_TRY(group(f, "grad", &g, path));
  int rc = group(g, "dense", &dg, path);
  for (int i = 0; i < m->n_params && !rc; i++) {
    const dt_param *p = &m->params[i];
    float *host = dt_xmalloc((size_t)p->numel * sizeof(float)), *out = host;
    rc = s->be->download(s->be, host, m->g + p->offset, (size_t)p->numel * sizeof(float));
    if (p->transposed) { /* stored [in, out]: back to PyTorch's [out, in] */
      out = dt_xmalloc((size_t)p->numel * sizeof(float));
      for (int64_t r = 0; r < p->shape[0]; r++)
        for (int64_t c = 0; c < p->shape[1]; c++) out[r * p->shape[1] + c] = host[c * p->shape[0] + r];
    }
    if (!rc)
      rc = put(dg, p->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, out, p->shape[0], p->ndim > 1 ? p->shape[1] : 0, path);
    if (out != host) free(out);
    free(host);
  }
  if (dg >= 0) H5Gclose(dg);
  if (!rc) rc = group(g, "tables", &tg, path);
  for (int t = 0; t < DT_MAX_TABLES && !rc; t++)
    if (m->tables[t].present) rc = write_table_grad(s, tg, &m->tables[t], path);
  if (!rc) H5Gclose(tg);
  H5Gclose(g);
  return rc;
}

/* /out: the candidates' scores and alpha (the forward pass again: the same
 * batch and parameters, no dropout). */
static int write_out(dt_session *s, hid_t f, const char *path) {
  const dt_batch *b = dt_batch_get(s->bb);
  const float *scores, *alpha;
  DT_TRY(dt_model_forward(s->model, b, &scores, &alpha));
  float *hs = dt_xmalloc((size_t)(b->nc + 1) * sizeof(float)), *ha = dt_xmalloc((size_t)(b->n * 3 + 1) * sizeof(float));
  hid_t g;
  int rc = s->be->download(s->be, hs, scores, (size_t)b->nc * sizeof(float));
  if (!rc) rc = s->be->download(s->be, ha, alpha, (size_t)(b->n * 3) * sizeof(float));
  if (!rc) rc = group(f, "out", &g, path);
  if (!rc) {
    rc = put(g, "scores", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, hs, b->n, b->c, path);
    if (!rc) rc = put(g, "alpha", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ha, b->n, 3, path);
    H5Gclose(g);
  }
  free(hs);
  free(ha);
  return rc;
}

static int write_dump(dt_session *s, const char *path, const char *ckpt_name, const dt_unit *units, int64_t n_units,
                      const dt_loss_value *lv) {
  dt_h5_quiet();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return dt_fail(DT_EXIT_RUNTIME, "--dump-step: cannot create %s (HDF5: %s)", path, dt_h5_last_error());
  const dt_config *cfg = &s->cfg;
  int rc = dt_h5_write_attr_str(f, "format", DUMP_FORMAT, path);
  if (!rc) rc = dt_h5_write_attr_int(f, "format_version", DUMP_VERSION, path);
  if (!rc) rc = dt_h5_write_attr_str(f, "checkpoint", ckpt_name, path);
  if (!rc) rc = dt_h5_write_attr_str(f, "loss", dt_loss_name(s->loss.kind), path);
  if (!rc) rc = dt_h5_write_attr_f64(f, "lambda_ent", cfg->model_lambda_ent, path);
  if (!rc) rc = dt_h5_write_attr_f64(f, "lambda_bal", cfg->model_lambda_bal, path);
  if (!rc) rc = dt_h5_write_attr_int(f, "dropout_off", 1, path);
  if (!rc) rc = dt_h5_write_attr_int(f, "ranks", 1, path);
  if (!rc) rc = write_batch(s, f, units, n_units, path);
  hid_t lg = -1;
  if (!rc) rc = group(f, "loss", &lg, path);
  const struct {
    const char *name;
    double v;
  } parts[] = {{"total", lv->loss}, {"ranking", lv->ranking}, {"entropy", lv->entropy}, {"balance", lv->balance}};
  for (size_t k = 0; k < 4 && !rc; k++) rc = dt_h5_write_attr_f64(lg, parts[k].name, parts[k].v, path);
  if (lg >= 0) H5Gclose(lg);
  if (!rc) rc = write_grads(s, f, path);
  if (!rc) rc = write_out(s, f, path);
  if (H5Fclose(f) < 0 && !rc) rc = dt_fail(DT_EXIT_RUNTIME, "--dump-step: closing %s failed", path);
  return rc;
}

/* "dir/name.h5" -> "dir/name.params.h5" (the checkpoint beside the dump) */
static char *params_path(const char *dump) {
  size_t n = strlen(dump);
  const char *slash = strrchr(dump, '/');
  size_t base = n >= 3 && !strcmp(dump + n - 3, ".h5") && (!slash || dump + n - 3 > slash + 1) ? n - 3 : n;
  char *p = dt_xmalloc(base + 16);
  memcpy(p, dump, base);
  strcpy(p + base, ".params.h5");
  return p;
}

int dt_train_dump_step(dt_session *s, const dt_train_options *opt) {
  const dt_config *cfg = &s->cfg;
  dt_model *m = s->model;
  if (dt_comm_size(s->comm) != 1)
    return dt_fail(DT_EXIT_USAGE,
                   "train --dump-step runs on one process (it writes the whole global batch); this "
                   "run has %d ranks",
                   dt_comm_size(s->comm));
  dt_ckpt_state st = {.best_metric = -1, .seed = (uint64_t)cfg->run_seed};
  int rc = opt->resume ? dt_session_load(s, opt->resume, &st) : dt_model_init(m, (uint64_t)cfg->run_seed);
  rc = dt_comm_dense_sync(s->comm)->after_write(s->comm, rc, DT_EXIT_RUNTIME, "setting up the parameters");
  DT_TRY(rc);
  m->p_static = m->p_gru = m->p_content = m->p_head = 0.0f; /* every dropout off, as the dump format requires */
  const int chunk = m->history == DT_HISTORY_CHUNK;
  dt_shard shard;
  DT_TRY(dt_shard_load(cfg->data_output, 0, 1, chunk, cfg->train_batch_size, s->ds.history_len, &shard));
  dt_epoch_plan plan;
  memset(&plan, 0, sizeof plan);
  rc = dt_shard_plan_epoch(&shard, (uint64_t)cfg->run_seed, st.epoch, &plan);
  dt_unit *units = NULL;
  int64_t n_units = 0, step = st.step_in_epoch;
  if (!rc && step >= plan.n_steps)
    rc = dt_fail(DT_EXIT_USAGE, "train --dump-step: epoch %lld has %lld steps, the checkpoint is at step %lld of it",
                 (long long)st.epoch, (long long)plan.n_steps, (long long)step);
  if (!rc) n_units = step_units(&shard, &plan, step, &units);
  char *ckpt = params_path(opt->dump_step);
  char *config_json = dt_config_to_json(cfg);
  if (!rc) rc = dt_ckpt_save(ckpt, m, &st, config_json, s->ds.file_crc32, cfg->data_output, NULL, s->comm);
  dt_step_stats stats;
  dt_loss_value lv;
  memset(&lv, 0, sizeof lv);
  if (!rc) rc = dt_train_step_grads(s, units, n_units, st.epoch, st.global_step, &stats, &lv);
  if (!rc && lv.n_global <= 0) rc = dt_fail(DT_EXIT_DATA, "train --dump-step: the step has no examples");
  const char *slash = strrchr(ckpt, '/');
  if (!rc) rc = write_dump(s, opt->dump_step, slash ? slash + 1 : ckpt, units, n_units, &lv);
  if (!rc)
    printf(
        "wrote %s (epoch %lld, step %lld: %lld examples, train.loss = %s, loss %.6f = ranking %.6f + entropy "
        "%.6f x %g + balance %.6f x %g) and the parameters it started from, %s\n"
        "  check: PYTHONPATH=python python3 tools/torch_grad_check.py %s\n",
        opt->dump_step, (long long)st.epoch, (long long)st.global_step, (long long)lv.n_global,
        dt_loss_name(s->loss.kind), lv.loss, lv.ranking, lv.entropy, cfg->model_lambda_ent, lv.balance,
        cfg->model_lambda_bal, ckpt, opt->dump_step);
  free(ckpt);
  free(config_json);
  free(units);
  dt_epoch_plan_free(&plan);
  dt_shard_free(&shard);
  return rc;
}
