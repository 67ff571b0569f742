/* ckpt.c: HDF5 checkpoints: atomic writes by rank 0, validated reads. */
#include "dtrain/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/build_info.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/h5io.h"
#include "dtrain/log.h"
#include "ckpt_internal.h"

/* Rows per chunk when a table is written, read or gathered. */
enum { CHUNK_ROWS = 65536 };

static int h5_fail(const char *path, const char *what) {
  return dt_fail(DT_EXIT_RUNTIME, "checkpoint %s: %s failed (HDF5)", path, what);
}

static hid_t make_group(hid_t parent, const char *name) { return dt_h5_create_group(parent, name); }

/* ---- Writing -------------------------------------------------------------------- */

/* A dense parameter (or one of its moments) in PyTorch layout. */
static int write_dense(const char *path, dt_model *m, hid_t group, const dt_param *p, const float *base) {
  float *host = dt_xmalloc((size_t)p->numel * sizeof(float));
  int rc = m->be->download(m->be, host, base + p->offset, (size_t)p->numel * sizeof(float));
  if (rc) {
    free(host);
    return rc;
  }
  if (p->transposed) { /* stored [in, out]: back to PyTorch's [out, in] */
    float *t = dt_xmalloc((size_t)p->numel * sizeof(float));
    for (int64_t r = 0; r < p->shape[0]; r++)
      for (int64_t c = 0; c < p->shape[1]; c++) t[r * p->shape[1] + c] = host[c * p->shape[0] + r];
    free(host);
    host = t;
  }
  hid_t ds = -1;
  const int64_t cols = p->ndim > 1 ? p->shape[1] : 0;
  rc = dt_h5_create_rows(group, p->name, H5T_IEEE_F32LE, p->shape[0], cols, &ds, path);
  if (!rc) rc = dt_h5_write_rows(ds, H5T_NATIVE_FLOAT, 0, p->shape[0], cols > 0 ? cols : 1, host, path, p->name);
  int crc = dt_h5_close_dataset(ds, path, p->name);
  free(host);
  return rc ? rc : crc;
}

/* dt_table_sink_fn on rank 0: writes a chunk into the open dataset. */
typedef struct {
  const char *path, *name;
  const dt_table_part_info *pi;
  hid_t ds;
} table_sink_ctx;

static int table_sink(void *ctx, int64_t row0, int64_t n, const void *rows) {
  table_sink_ctx *io = ctx;
  hid_t mt = io->pi->is_int64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  return dt_h5_write_rows(io->ds, mt, row0, n, io->pi->cols, rows, io->path, io->name);
}

/* Writes one part of a table (rank 0 creates the dataset; sharded tables are
 * gathered to it in chunks). COLLECTIVE for sharded tables. */
static int write_table_part(const char *path, dt_comm *comm, hid_t group, const dt_table *tb, dt_table_part part,
                            const char *name) {
  dt_table_part_info pi;
  dt_table_part_describe(tb, part, &pi);
  table_sink_ctx io = {path, name, &pi, -1};
  int rc = DT_OK;
  if (dt_comm_rank(comm) == 0)
    rc = dt_h5_create_rows(group, name, pi.is_int64 ? H5T_STD_I64LE : H5T_IEEE_F32LE, tb->rows,
                           pi.cols > 1 ? pi.cols : 0, &io.ds, path);
  /* every rank of a sharded table's gather runs, whatever rank 0's state */
  if (!rc || tb->sharded) {
    int grc = dt_table_part_gather(tb, part, CHUNK_ROWS, table_sink, &io);
    if (!rc) rc = grc;
  }
  int crc = dt_h5_close_dataset(io.ds, path, name);
  return rc ? rc : crc;
}

/* The root, /optim and /state attributes (rank 0). */
static int write_attributes(const char *tmp, hid_t f, hid_t g_optim, hid_t g_state, const dt_model *m,
                            const dt_ckpt_state *st, const char *config_json, uint32_t crc, const char *dataset_path) {
  char created[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *p = tmp;
  int bad =
      dt_h5_write_attr_int(f, "format_version", DT_CKPT_FORMAT_VERSION, p) |
      dt_h5_write_attr_str(f, "dtrain_version", DTRAIN_VERSION, p) |
      dt_h5_write_attr_str(f, "git_hash", DTRAIN_GIT_HASH, p) | dt_h5_write_attr_str(f, "created", created, p) |
      dt_h5_write_attr_str(f, "config", config_json, p) | dt_h5_write_attr_int(f, "dataset_crc32", (int64_t)crc, p) |
      dt_h5_write_attr_str(f, "dataset_path", dataset_path ? dataset_path : "", p) |
      dt_h5_write_attr_str(f, "model_version", m->cfg->model_version, p) |
      dt_h5_write_attr_str(f, "model_variant", m->cfg->model_variant, p) |
      dt_h5_write_attr_int(g_optim, "adam_step", m->adam_step, p) |
      dt_h5_write_attr_int(g_state, "epoch", st->epoch, p) |
      dt_h5_write_attr_int(g_state, "global_step", st->global_step, p) |
      dt_h5_write_attr_int(g_state, "step_in_epoch", st->step_in_epoch, p) |
      dt_h5_write_attr_f64(g_state, "best_metric", st->best_metric, p) |
      dt_h5_write_attr_int(g_state, "best_epoch", st->best_epoch, p) |
      dt_h5_write_attr_int(g_state, "bad_epochs", st->bad_epochs, p) |
      dt_h5_write_attr_int(g_state, "seed", (int64_t)st->seed, p) |
      dt_h5_write_attr_str(g_state, "rng", "philox4x32-10; draws keyed by (seed, purpose, epoch/step/example)", p);
  return bad ? h5_fail(tmp, "writing attributes") : DT_OK;
}

/* Every part of every present table: collective for sharded ones, so every
 * rank walks the same list, and the ranks agree after each table. */
static int write_tables(const char *tmp, dt_model *m, dt_comm *comm, hid_t g_params, hid_t g_tables, int rc) {
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    const dt_table *tb = &m->tables[t];
    if (!tb->present) continue;
    hid_t g_t = -1;
    if (dt_comm_rank(comm) == 0) {
      g_t = make_group(g_tables, tb->name);
      if (g_t < 0) rc = h5_fail(tmp, "creating a table group");
    }
    for (int part = 0; part < DT_TABLE_N_PARTS; part++) {
      /* the rows under their parameter name in /params, the rest in the table's group */
      dt_table_part_info pi;
      dt_table_part_describe(tb, (dt_table_part)part, &pi);
      int prc = part == DT_TABLE_PART_ROWS ? write_table_part(tmp, comm, g_params, tb, DT_TABLE_PART_ROWS, tb->name)
                                           : write_table_part(tmp, comm, g_t, tb, (dt_table_part)part, pi.name);
      if (!rc) rc = prc;
    }
    if (g_t >= 0) H5Gclose(g_t);
    int64_t failed = rc != DT_OK;
    DT_TRY(dt_comm_allreduce_max_i64(comm, &failed, 1));
    if (failed && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "writing the checkpoint failed on another rank");
    if (failed) break;
  }
  return rc;
}

static int write_file(const char *tmp, dt_model *m, const dt_ckpt_state *st, const char *config_json, uint32_t crc,
                      const char *dataset_path, const dt_ckpt_inference *inf, dt_comm *comm) {
  hid_t f = -1, g_params = -1, g_optim = -1, g_m = -1, g_v = -1, g_tables = -1, g_state = -1;
  int rc = DT_OK;
  if (dt_comm_rank(comm) == 0) {
    dt_h5_quiet();
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot create %s (HDF5: %s): check the directory and disk space", tmp,
                   dt_h5_last_error());
    if (!rc) {
      g_params = make_group(f, "params");
      g_optim = make_group(f, "optim");
      g_m = g_optim >= 0 ? make_group(g_optim, "adam_m") : -1;
      g_v = g_optim >= 0 ? make_group(g_optim, "adam_v") : -1;
      g_tables = g_optim >= 0 ? make_group(g_optim, "tables") : -1;
      g_state = make_group(f, "state");
      if (g_params < 0 || g_m < 0 || g_v < 0 || g_tables < 0 || g_state < 0) rc = h5_fail(tmp, "creating groups");
    }
    if (!rc) rc = write_attributes(tmp, f, g_optim, g_state, m, st, config_json, crc, dataset_path);
    for (int i = 0; i < m->n_params && !rc; i++) {
      rc = write_dense(tmp, m, g_params, &m->params[i], m->w);
      if (!rc) rc = write_dense(tmp, m, g_m, &m->params[i], m->m);
      if (!rc) rc = write_dense(tmp, m, g_v, &m->params[i], m->v);
    }
    if (!rc && inf) rc = dt_ckpt_write_inference(f, inf, tmp);
  }
  /* a failure so far on rank 0 is shared first so nobody waits */
  int64_t failed = rc != DT_OK;
  int crc_rc = dt_comm_allreduce_max_i64(comm, &failed, 1);
  if (crc_rc) return crc_rc;
  if (failed && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "writing the checkpoint failed on rank 0");
  if (!failed) rc = write_tables(tmp, m, comm, g_params, g_tables, rc);
  hid_t groups[] = {g_params, g_m, g_v, g_tables, g_optim, g_state};
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (groups[i] >= 0) H5Gclose(groups[i]);
  return dt_h5_close_file(f, tmp, rc);
}

int dt_ckpt_save(const char *path, dt_model *m, const dt_ckpt_state *st, const char *config_json, uint32_t crc,
                 const char *dataset_path, const dt_ckpt_inference *inf, dt_comm *comm) {
  int rank = dt_comm_rank(comm);
  char *tmp = dt_tmp_name(path);
  if (rank == 0) dt_tmp_register(tmp); /* a signal that ends the process removes it */
  int rc = write_file(tmp, m, st, config_json, crc, dataset_path, inf, comm);
  if (rank == 0) {
    /* durability: the file's bytes, then the rename, then the directory */
    if (!rc) rc = dt_fsync_path(tmp);
    if (!rc && rename(tmp, path) != 0)
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (!rc) rc = dt_fsync_parent_dir(path);
    if (rc) {
      unlink(tmp);
      rc = dt_fail_context(rc,
                           "writing checkpoint %s failed (its temporary file is removed; the checkpoints written "
                           "before are unchanged)",
                           path);
    }
    dt_tmp_unregister(tmp);
  }
  free(tmp);
  int64_t failed = rc != DT_OK;
  int crc_rc = dt_comm_allreduce_max_i64(comm, &failed, 1);
  if (crc_rc) return crc_rc;
  if (failed && rc == DT_OK) return dt_fail(DT_EXIT_RUNTIME, "writing checkpoint %s failed on rank 0", path);
  return rc;
}

/* ---- Reading -------------------------------------------------------------------- */

/* Opens dataset `name` under `group` and checks its shape; never reads a
 * dataset whose shape differs from the model's. */
static int open_checked(const char *path, hid_t group, const char *gname, const char *name, int ndim,
                        const int64_t *dims, hid_t *out) {
  if (H5Lexists(group, name, H5P_DEFAULT) <= 0)
    return dt_fail(DT_EXIT_DATA,
                   "checkpoint %s has no dataset %s/%s: it was written for another model (compare model.version, "
                   "model.variant and the sizes in its config)",
                   path, gname, name);
  hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
  if (ds < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s: cannot open %s/%s", path, gname, name);
  int64_t d[4];
  int nd = dt_h5_shape(ds, d);
  int ok = nd == ndim && d[0] == dims[0] && (ndim < 2 || d[1] == dims[1]);
  if (!ok) {
    H5Dclose(ds);
    char have[64], want[64];
    if (nd == 2)
      snprintf(have, sizeof have, "[%lld, %lld]", (long long)d[0], (long long)d[1]);
    else
      snprintf(have, sizeof have, "%d dims, first %lld", nd, (long long)d[0]);
    if (ndim == 2)
      snprintf(want, sizeof want, "[%lld, %lld]", (long long)dims[0], (long long)dims[1]);
    else
      snprintf(want, sizeof want, "[%lld]", (long long)dims[0]);
    return dt_fail(DT_EXIT_DATA,
                   "checkpoint %s: %s/%s has shape %s but this model needs %s (different data set or "
                   "model sizes?)",
                   path, gname, name, have, want);
  }
  *out = ds;
  return DT_OK;
}

/* A parameter or optimizer value that is NaN or infinite: training never
 * writes one (a non-finite step stops it first), so the file is damaged. */
static int check_finite(const char *path, const char *gname, const char *name, const float *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return dt_fail(DT_EXIT_DATA,
                     "checkpoint %s: %s/%s holds a non-finite value (%g at element %lld): the file is damaged (or was "
                     "not written by dtrain's training); use another checkpoint",
                     path, gname, name, (double)v[i], (long long)i);
  return DT_OK;
}

/* A failed read of a dataset: damaged (checksum), truncated or unreadable. */
static int read_failed(const char *path, const char *gname, const char *name) {
  return dt_fail_context(DT_EXIT_DATA,
                         "checkpoint %s: %s/%s cannot be read; the file is damaged or truncated (use "
                         "another checkpoint)",
                         path, gname, name);
}

static int read_dense(const char *path, dt_model *m, hid_t group, const char *gname, const dt_param *p, float *base) {
  hid_t ds;
  DT_TRY(open_checked(path, group, gname, p->name, p->ndim, p->shape, &ds));
  float *host = dt_xmalloc((size_t)p->numel * sizeof(float));
  int rc =
      dt_h5_read_rows(ds, H5T_NATIVE_FLOAT, 0, p->shape[0], p->ndim > 1 ? p->shape[1] : 1, host, path, p->name) == DT_OK
          ? check_finite(path, gname, p->name, host, p->numel)
          : read_failed(path, gname, p->name);
  H5Dclose(ds);
  if (!rc && p->transposed) {
    float *t = dt_xmalloc((size_t)p->numel * sizeof(float));
    for (int64_t r = 0; r < p->shape[0]; r++)
      for (int64_t c = 0; c < p->shape[1]; c++) t[c * p->shape[0] + r] = host[r * p->shape[1] + c];
    free(host);
    host = t;
  }
  if (!rc) rc = m->be->upload(m->be, base + p->offset, host, (size_t)p->numel * sizeof(float));
  free(host);
  return rc;
}

/* Reads this rank's rows of one table part. */
static int read_table_part(const char *path, hid_t group, const char *gname, dt_table *tb, dt_table_part part,
                           const char *name) {
  dt_table_part_info pi;
  dt_table_part_describe(tb, part, &pi);
  int64_t dims[2] = {tb->rows, pi.cols};
  hid_t ds;
  DT_TRY(open_checked(path, group, gname, name, pi.cols > 1 ? 2 : 1, dims, &ds));
  hid_t mt = pi.is_int64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  char *buf = dt_xmalloc((size_t)CHUNK_ROWS * pi.row_bytes);
  int rc = DT_OK;
  for (int64_t r0 = tb->row_lo; r0 < tb->row_hi && !rc; r0 += CHUNK_ROWS) {
    int64_t n = tb->row_hi - r0 < CHUNK_ROWS ? tb->row_hi - r0 : CHUNK_ROWS;
    if (dt_h5_read_rows(ds, mt, r0, n, pi.cols, buf, path, name) != DT_OK)
      rc = read_failed(path, gname, name);
    else if (!pi.is_int64)
      rc = check_finite(path, gname, name, (const float *)buf, n * pi.cols);
    if (!rc) rc = dt_table_part_upload(tb, part, r0 - tb->row_lo, n, buf);
  }
  free(buf);
  H5Dclose(ds);
  return rc;
}

static hid_t open_file(const char *path) {
  if (!dt_path_exists(path)) return -1;
  /* quiet HDF5's own error stack: dtrain reports the problem itself */
  dt_h5_quiet();
  return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

int dt_ckpt_read_meta(const char *path, char **config_json, uint32_t *dataset_crc32) {
  hid_t f = open_file(path);
  if (f < 0)
    return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s: %s", path,
                   dt_path_exists(path) ? "not an HDF5 file, or truncated" : "no such file");
  int64_t version = -1, crc = 0;
  int rc = DT_OK;
  if (H5Aexists(f, "format_version") <= 0 || dt_h5_read_attr_int(f, "format_version", &version, path) != DT_OK)
    rc = dt_fail(DT_EXIT_DATA, "%s is not a dtrain checkpoint (no format_version attribute)", path);
  else if (version != DT_CKPT_FORMAT_VERSION)
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s has format version %lld; this dtrain reads version %d", path,
                 (long long)version, DT_CKPT_FORMAT_VERSION);
  if (!rc && config_json &&
      (H5Aexists(f, "config") <= 0 || dt_h5_read_attr_str(f, "config", config_json, path) != DT_OK))
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s has no config attribute", path);
  if (!rc && dataset_crc32) {
    if (H5Aexists(f, "dataset_crc32") > 0) dt_h5_read_attr_int(f, "dataset_crc32", &crc, path);
    *dataset_crc32 = (uint32_t)crc;
  }
  H5Fclose(f);
  return rc;
}

/* Every part of a present table: the rows from /params, the optimizer
 * state from /optim/tables/<name>/. */
static int read_table(const char *path, dt_table *tb, hid_t g_params, hid_t g_tables) {
  if (!tb->present) return DT_OK;
  DT_TRY(read_table_part(path, g_params, "/params", tb, DT_TABLE_PART_ROWS, tb->name));
  if (H5Lexists(g_tables, tb->name, H5P_DEFAULT) <= 0)
    return dt_fail(DT_EXIT_DATA, "checkpoint %s has no /optim/tables/%s", path, tb->name);
  hid_t g_t = H5Gopen2(g_tables, tb->name, H5P_DEFAULT);
  char gname[128];
  snprintf(gname, sizeof gname, "/optim/tables/%s", tb->name);
  int rc = DT_OK;
  for (int part = DT_TABLE_PART_ROWS + 1; part < DT_TABLE_N_PARTS && !rc; part++) {
    dt_table_part_info pi;
    dt_table_part_describe(tb, (dt_table_part)part, &pi);
    rc = read_table_part(path, g_t, gname, tb, (dt_table_part)part, pi.name);
  }
  H5Gclose(g_t);
  return rc;
}

/* Reads the checkpoint into the model: everything, or (weights_only) the
 * parameters and /state, which is all an export has. */
static int load(const char *path, dt_model *m, dt_ckpt_state *st, int weights_only) {
  DT_TRY(dt_ckpt_read_meta(path, NULL, NULL));
  hid_t f = open_file(path);
  if (f < 0) return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s", path);
  int rc = DT_OK;
  if (!weights_only && dt_ckpt_is_export_file(f)) {
    H5Fclose(f);
    return dt_fail(DT_EXIT_DATA,
                   "%s is an export (`dtrain export`: parameters and inference data, no optimizer state), so training "
                   "cannot resume from it: resume from a checkpoint of its run (checkpoints/last.h5)",
                   path);
  }
  hid_t g_params = H5Gopen2(f, "params", H5P_DEFAULT);
  hid_t g_optim = weights_only ? -1 : H5Gopen2(f, "optim", H5P_DEFAULT);
  hid_t g_m = g_optim >= 0 ? H5Gopen2(g_optim, "adam_m", H5P_DEFAULT) : -1;
  hid_t g_v = g_optim >= 0 ? H5Gopen2(g_optim, "adam_v", H5P_DEFAULT) : -1;
  hid_t g_tables = g_optim >= 0 ? H5Gopen2(g_optim, "tables", H5P_DEFAULT) : -1;
  hid_t g_state = H5Gopen2(f, "state", H5P_DEFAULT);
  if (g_params < 0 || (!weights_only && (g_m < 0 || g_v < 0 || g_tables < 0)) || g_state < 0)
    rc = dt_fail(DT_EXIT_DATA,
                 "checkpoint %s lacks one of the groups /params, /optim/adam_m, /optim/adam_v, "
                 "/optim/tables, /state (truncated or not a dtrain checkpoint)",
                 path);
  for (int i = 0; i < m->n_params && !rc; i++) {
    rc = read_dense(path, m, g_params, "/params", &m->params[i], m->w);
    if (!rc && !weights_only) rc = read_dense(path, m, g_m, "/optim/adam_m", &m->params[i], m->m);
    if (!rc && !weights_only) rc = read_dense(path, m, g_v, "/optim/adam_v", &m->params[i], m->v);
  }
  for (int t = 0; t < DT_MAX_TABLES && !rc; t++) {
    dt_table *tb = &m->tables[t];
    if (!weights_only)
      rc = read_table(path, tb, g_params, g_tables);
    else if (tb->present)
      rc = read_table_part(path, g_params, "/params", tb, DT_TABLE_PART_ROWS, tb->name);
  }
  int64_t seed = 0;
  if (!rc && ((!weights_only && dt_h5_read_attr_int(g_optim, "adam_step", &m->adam_step, path)) ||
              dt_h5_read_attr_int(g_state, "epoch", &st->epoch, path) ||
              dt_h5_read_attr_int(g_state, "global_step", &st->global_step, path) ||
              dt_h5_read_attr_int(g_state, "step_in_epoch", &st->step_in_epoch, path) ||
              dt_h5_read_attr_f64(g_state, "best_metric", &st->best_metric, path) ||
              dt_h5_read_attr_int(g_state, "best_epoch", &st->best_epoch, path) ||
              dt_h5_read_attr_int(g_state, "bad_epochs", &st->bad_epochs, path) ||
              dt_h5_read_attr_int(g_state, "seed", &seed, path)))
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s: /state or /optim attributes are missing", path);
  st->seed = (uint64_t)seed;
  m->seed = (uint64_t)seed;
  hid_t groups[] = {g_params, g_m, g_v, g_tables, g_optim, g_state};
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (groups[i] >= 0) H5Gclose(groups[i]);
  H5Fclose(f);
  return rc;
}

int dt_ckpt_load(const char *path, dt_model *m, dt_ckpt_state *st) { return load(path, m, st, 0); }

int dt_ckpt_load_weights(const char *path, dt_model *m, dt_ckpt_state *st) { return load(path, m, st, 1); }
