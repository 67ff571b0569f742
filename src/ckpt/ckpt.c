/* ckpt.c: HDF5 checkpoints: atomic writes by rank 0, validated reads. */
#include "dtrain/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/build_info.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"

/* Rows per chunk when a table is written, read or gathered. */
enum { CHUNK_ROWS = 65536 };

/* ---- Small HDF5 helpers (every call checked) --------------------------------------- */

static int h5_fail(const char *path, const char *what) {
  return dt_fail(DT_EXIT_RUNTIME, "checkpoint %s: %s failed (HDF5)", path, what);
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value) {
  hid_t space = H5Screate(H5S_SCALAR);
  if (space < 0) return -1;
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, type, value) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return ok ? 0 : -1;
}

static int attr_i64(hid_t obj, const char *name, int64_t v) { return attr_write(obj, name, H5T_NATIVE_INT64, &v); }
static int attr_f64(hid_t obj, const char *name, double v) { return attr_write(obj, name, H5T_NATIVE_DOUBLE, &v); }

static int attr_str(hid_t obj, const char *name, const char *s) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return -1;
  size_t n = strlen(s);
  int rc = H5Tset_size(t, n > 0 ? n : 1) < 0 ? -1 : attr_write(obj, name, t, n > 0 ? s : "");
  H5Tclose(t);
  return rc;
}

/* Reads a scalar attribute as `memtype` into v; -1 when absent or unreadable. */
static int attr_read(hid_t obj, const char *name, hid_t memtype, void *v) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  int rc = H5Aread(a, memtype, v) < 0 ? -1 : 0;
  H5Aclose(a);
  return rc;
}

static int attr_read_i64(hid_t obj, const char *name, int64_t *v) { return attr_read(obj, name, H5T_NATIVE_INT64, v); }
static int attr_read_f64(hid_t obj, const char *name, double *v) { return attr_read(obj, name, H5T_NATIVE_DOUBLE, v); }

/* A string attribute (fixed or variable length), caller frees. */
static char *attr_read_str(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  hid_t t = H5Aget_type(a);
  char *out = NULL;
  if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
    if (H5Tis_variable_str(t) > 0) {
      char *v = NULL;
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      if (H5Aread(a, mt, &v) >= 0 && v) {
        out = dt_xstrdup(v);
        H5free_memory(v);
      }
      H5Tclose(mt);
    } else {
      size_t n = H5Tget_size(t);
      out = dt_xcalloc(n + 1, 1);
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, n);
      if (H5Aread(a, mt, out) < 0) {
        free(out);
        out = NULL;
      }
      H5Tclose(mt);
    }
  }
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
  return out;
}

static hid_t make_group(hid_t parent, const char *name) {
  return H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* Creates a dataset of `type` with `ndim` dims. */
static hid_t make_dataset(hid_t parent, const char *name, hid_t type, int ndim, const int64_t *dims) {
  hsize_t d[2] = {(hsize_t)dims[0], ndim > 1 ? (hsize_t)dims[1] : 1};
  hid_t space = H5Screate_simple(ndim, d, NULL);
  if (space < 0) return -1;
  hid_t ds = H5Dcreate2(parent, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  return ds;
}

/* Writes (or reads) rows [row0, row0 + n) of a 1-D or 2-D dataset from (into)
 * host memory. */
static int transfer_rows(hid_t ds, hid_t memtype, int64_t row0, int64_t n, int64_t cols, void *buf, int write) {
  if (n == 0) return 0;
  hid_t fs = H5Dget_space(ds);
  int ndim = H5Sget_simple_extent_ndims(fs);
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
  int ok = fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0;
  hid_t ms = H5Screate_simple(ndim, count, NULL);
  ok = ok && ms >= 0 &&
       (write ? H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, buf) : H5Dread(ds, memtype, ms, fs, H5P_DEFAULT, buf)) >= 0;
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return ok ? 0 : -1;
}

static int write_rows(hid_t ds, hid_t memtype, int64_t row0, int64_t n, int64_t cols, const void *buf) {
  return transfer_rows(ds, memtype, row0, n, cols, (void *)buf, 1);
}

static int read_rows(hid_t ds, hid_t memtype, int64_t row0, int64_t n, int64_t cols, void *buf) {
  return transfer_rows(ds, memtype, row0, n, cols, buf, 0);
}

/* ---- Writing -------------------------------------------------------------------- */

/* A dense parameter (or one of its moments) in PyTorch layout. */
static int write_dense(dt_model *m, hid_t group, const dt_param *p, const float *base) {
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
  hid_t ds = make_dataset(group, p->name, H5T_IEEE_F32LE, p->ndim, p->shape);
  int ok = ds >= 0 && write_rows(ds, H5T_NATIVE_FLOAT, 0, p->shape[0], p->ndim > 1 ? p->shape[1] : 1, host) == 0;
  if (ds >= 0) H5Dclose(ds);
  free(host);
  return ok ? 0 : dt_fail(DT_EXIT_RUNTIME, "writing %s", p->name);
}

typedef struct {
  dt_model *m;
  const dt_table *tb;
  int which; /* 0 data, 1 m, 2 v, 3 acc, 4 row_step */
  hid_t ds;
} table_io;

static const char *table_part_name(int which) {
  static const char *names[] = {"data", "m", "v", "acc", "row_step"};
  return names[which];
}

/* Bytes of one row of a table part, and its device base pointer. */
static void table_part(const dt_table *tb, int which, const void **base, size_t *row_bytes, int64_t *cols) {
  switch (which) {
    case 0: *base = tb->data; *row_bytes = (size_t)tb->dim * sizeof(float); *cols = tb->dim; break;
    case 1: *base = tb->m; *row_bytes = (size_t)tb->dim * sizeof(float); *cols = tb->dim; break;
    case 2: *base = tb->v; *row_bytes = (size_t)tb->dim * sizeof(float); *cols = tb->dim; break;
    case 3: *base = tb->acc; *row_bytes = sizeof(float); *cols = 1; break;
    default: *base = tb->row_step; *row_bytes = sizeof(int64_t); *cols = 1; break;
  }
}

/* dt_comm_fill_fn: rows [row0, row0+n) of this rank's block, downloaded. */
static int table_read_local(void *ctx, int64_t row0, int64_t n, int dim, float *rows_host) {
  table_io *io = ctx;
  const void *base;
  size_t rb;
  int64_t cols;
  table_part(io->tb, io->which, &base, &rb, &cols);
  (void)dim;
  return io->m->be->download(io->m->be, rows_host, (const char *)base + (size_t)row0 * rb, (size_t)n * rb);
}

/* dt_comm_consume_fn on rank 0: writes a chunk into the open dataset. */
static int table_sink(void *ctx, int64_t row0, int64_t n, int dim, const float *rows_host) {
  table_io *io = ctx;
  const void *base;
  size_t rb;
  int64_t cols;
  table_part(io->tb, io->which, &base, &rb, &cols);
  (void)dim;
  hid_t mt = io->which == 4 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  return write_rows(io->ds, mt, row0, n, cols, rows_host) == 0 ? 0 : dt_fail(DT_EXIT_RUNTIME, "writing rows of %s", io->tb->name);
}

/* Writes one part of a table (rank 0 creates the dataset; sharded tables are
 * gathered to it in chunks). COLLECTIVE. comm_id: the table's comm handle. */
static int write_table_part(dt_model *m, dt_comm *comm, const dt_ckpt_table_comm *ids, hid_t group,
                            const dt_table *tb, int which, const char *name) {
  int rank = dt_comm_rank(comm);
  const void *base;
  size_t rb;
  int64_t cols;
  table_part(tb, which, &base, &rb, &cols);
  hid_t ftype = which == 4 ? H5T_STD_I64LE : H5T_IEEE_F32LE;
  int64_t dims[2] = {tb->rows, cols};
  table_io io = {m, tb, which, -1};
  int rc = DT_OK;
  if (rank == 0) {
    io.ds = make_dataset(group, name, ftype, cols > 1 ? 2 : 1, dims);
    if (io.ds < 0) rc = dt_fail(DT_EXIT_RUNTIME, "creating %s", name);
  }
  if (!tb->sharded) {
    if (rank == 0 && !rc) {
      char *buf = dt_xmalloc((size_t)CHUNK_ROWS * rb);
      for (int64_t r0 = 0; r0 < tb->rows && !rc; r0 += CHUNK_ROWS) {
        int64_t n = tb->rows - r0 < CHUNK_ROWS ? tb->rows - r0 : CHUNK_ROWS;
        rc = table_read_local(&io, r0, n, (int)cols, (float *)buf);
        if (!rc) rc = table_sink(&io, r0, n, (int)cols, (const float *)buf);
      }
      free(buf);
    }
  } else {
    /* the gather moves rows of the registered width: dim floats, 1 float
     * (acc) or 2 floats' worth of bytes (int64 row steps) */
    int comm_id = which <= 2 ? ids->rows_id : which == 3 ? ids->scalar_id : ids->step_id;
    int grc = dt_comm_sharded_gather(comm, comm_id, CHUNK_ROWS, table_read_local, &io, table_sink, &io);
    if (!rc) rc = grc;
  }
  if (io.ds >= 0) H5Dclose(io.ds);
  return rc;
}

static int write_file(const char *tmp, dt_model *m, const dt_ckpt_state *st, const char *config_json,
                      uint32_t crc, const char *dataset_path, dt_comm *comm, const dt_ckpt_table_comm *comm_ids) {
  int rank = dt_comm_rank(comm);
  hid_t f = -1, g_params = -1, g_optim = -1, g_m = -1, g_v = -1, g_tables = -1, g_state = -1;
  int rc = DT_OK;
  if (rank == 0) {
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) rc = dt_fail(DT_EXIT_RUNTIME, "cannot create checkpoint %s (HDF5): check the directory and disk space", tmp);
    if (!rc) {
      g_params = make_group(f, "params");
      g_optim = make_group(f, "optim");
      g_m = g_optim >= 0 ? make_group(g_optim, "adam_m") : -1;
      g_v = g_optim >= 0 ? make_group(g_optim, "adam_v") : -1;
      g_tables = g_optim >= 0 ? make_group(g_optim, "tables") : -1;
      g_state = make_group(f, "state");
      if (g_params < 0 || g_m < 0 || g_v < 0 || g_tables < 0 || g_state < 0) rc = h5_fail(tmp, "creating groups");
    }
    if (!rc) {
      char created[64];
      time_t now = time(NULL);
      struct tm tm;
      gmtime_r(&now, &tm);
      strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
      int bad = attr_i64(f, "format_version", DT_CKPT_FORMAT_VERSION) | attr_str(f, "dtrain_version", DTRAIN_VERSION) |
                attr_str(f, "git_hash", DTRAIN_GIT_HASH) | attr_str(f, "created", created) |
                attr_str(f, "config", config_json) | attr_i64(f, "dataset_crc32", (int64_t)crc) |
                attr_str(f, "dataset_path", dataset_path ? dataset_path : "") |
                attr_str(f, "model_version", m->cfg->model_version) | attr_str(f, "model_variant", m->cfg->model_variant) |
                attr_i64(g_optim, "adam_step", m->adam_step) | attr_i64(g_state, "epoch", st->epoch) |
                attr_i64(g_state, "global_step", st->global_step) | attr_i64(g_state, "step_in_epoch", st->step_in_epoch) |
                attr_f64(g_state, "best_metric", st->best_metric) | attr_i64(g_state, "best_epoch", st->best_epoch) |
                attr_i64(g_state, "bad_epochs", st->bad_epochs) | attr_i64(g_state, "seed", (int64_t)st->seed) |
                attr_str(g_state, "rng", "philox4x32-10; draws keyed by (seed, purpose, epoch/step/example)");
      if (bad) rc = h5_fail(tmp, "writing attributes");
    }
    for (int i = 0; i < m->n_params && !rc; i++) {
      rc = write_dense(m, g_params, &m->params[i], m->w);
      if (!rc) rc = write_dense(m, g_m, &m->params[i], m->m);
      if (!rc) rc = write_dense(m, g_v, &m->params[i], m->v);
    }
  }
  /* tables: collective for sharded ones, so every rank walks the same list;
   * a failure so far on rank 0 is shared first so nobody waits */
  int64_t failed = rc != DT_OK;
  int crc_rc = dt_comm_allreduce_max_i64(comm, &failed, 1);
  if (crc_rc) return crc_rc;
  if (failed && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "writing the checkpoint failed on rank 0");
  for (int t = 0; t < DT_MAX_TABLES && !failed; t++) {
    const dt_table *tb = &m->tables[t];
    if (!tb->present) continue;
    hid_t g_t = -1;
    if (rank == 0) {
      g_t = make_group(g_tables, tb->name);
      if (g_t < 0) rc = h5_fail(tmp, "creating a table group");
    }
    if (tb->sharded && !comm_ids) dt_panic("sharded table %s without comm handles", tb->name);
    const dt_ckpt_table_comm *ids = comm_ids ? &comm_ids[t] : NULL;
    int prc = write_table_part(m, comm, ids, g_params, tb, 0, tb->name);
    if (!rc) rc = prc;
    for (int which = 1; which <= 4; which++) {
      prc = write_table_part(m, comm, ids, g_t, tb, which, table_part_name(which));
      if (!rc) rc = prc;
    }
    if (g_t >= 0) H5Gclose(g_t);
    failed = rc != DT_OK;
    crc_rc = dt_comm_allreduce_max_i64(comm, &failed, 1);
    if (crc_rc) return crc_rc;
    if (failed && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "writing the checkpoint failed on another rank");
  }
  hid_t groups[] = {g_params, g_m, g_v, g_tables, g_optim, g_state};
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (groups[i] >= 0) H5Gclose(groups[i]);
  if (f >= 0) {
    if (!rc && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) rc = h5_fail(tmp, "H5Fflush");
    if (H5Fclose(f) < 0 && !rc) rc = h5_fail(tmp, "H5Fclose");
  }
  return rc;
}

int dt_ckpt_save(const char *path, dt_model *m, const dt_ckpt_state *st, const char *config_json, uint32_t crc,
                 const char *dataset_path, const dt_ckpt_table_comm *table_comm, dt_comm *comm) {
  int rank = dt_comm_rank(comm);
  size_t n = strlen(path) + 32;
  char *tmp = dt_xmalloc(n);
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  int rc = write_file(tmp, m, st, config_json, crc, dataset_path, comm, table_comm);
  if (rank == 0) {
    if (!rc) {
      /* durability: the file's bytes, then the rename, then the directory */
      int fd = open(tmp, O_RDONLY);
      if (fd < 0 || fsync(fd) != 0) rc = dt_fail(DT_EXIT_RUNTIME, "cannot fsync %s: %s", tmp, strerror(errno));
      if (fd >= 0) close(fd);
    }
    if (!rc && rename(tmp, path) != 0) rc = dt_fail(DT_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (!rc) rc = dt_fsync_parent_dir(path);
    if (rc) unlink(tmp);
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
  hid_t sp = H5Dget_space(ds);
  hsize_t d[4] = {0, 0, 0, 0};
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (nd >= 1 && nd <= 4) H5Sget_simple_extent_dims(sp, d, NULL);
  if (sp >= 0) H5Sclose(sp);
  int ok = nd == ndim && (int64_t)d[0] == dims[0] && (ndim < 2 || (int64_t)d[1] == dims[1]);
  if (!ok) {
    H5Dclose(ds);
    char have[64], want[64];
    if (nd == 2)
      snprintf(have, sizeof have, "[%llu, %llu]", (unsigned long long)d[0], (unsigned long long)d[1]);
    else
      snprintf(have, sizeof have, "%d dims, first %llu", nd, (unsigned long long)d[0]);
    if (ndim == 2)
      snprintf(want, sizeof want, "[%lld, %lld]", (long long)dims[0], (long long)dims[1]);
    else
      snprintf(want, sizeof want, "[%lld]", (long long)dims[0]);
    return dt_fail(DT_EXIT_DATA, "checkpoint %s: %s/%s has shape %s but this model needs %s (different data set or "
                                 "model sizes?)", path, gname, name, have, want);
  }
  *out = ds;
  return DT_OK;
}

static int read_dense(const char *path, dt_model *m, hid_t group, const char *gname, const dt_param *p, float *base) {
  hid_t ds;
  DT_TRY(open_checked(path, group, gname, p->name, p->ndim, p->shape, &ds));
  float *host = dt_xmalloc((size_t)p->numel * sizeof(float));
  int rc = read_rows(ds, H5T_NATIVE_FLOAT, 0, p->shape[0], p->ndim > 1 ? p->shape[1] : 1, host) == 0
               ? DT_OK
               : dt_fail(DT_EXIT_DATA, "checkpoint %s: reading %s/%s failed (truncated file?)", path, gname, p->name);
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
static int read_table_part(const char *path, dt_model *m, hid_t group, const char *gname, const dt_table *tb,
                           int which, const char *name) {
  const void *base;
  size_t rb;
  int64_t cols;
  table_part(tb, which, &base, &rb, &cols);
  int64_t dims[2] = {tb->rows, cols};
  hid_t ds;
  DT_TRY(open_checked(path, group, gname, name, cols > 1 ? 2 : 1, dims, &ds));
  hid_t mt = which == 4 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  char *buf = dt_xmalloc((size_t)CHUNK_ROWS * rb);
  int rc = DT_OK;
  for (int64_t r0 = tb->row_lo; r0 < tb->row_hi && !rc; r0 += CHUNK_ROWS) {
    int64_t n = tb->row_hi - r0 < CHUNK_ROWS ? tb->row_hi - r0 : CHUNK_ROWS;
    if (read_rows(ds, mt, r0, n, cols, buf) != 0)
      rc = dt_fail(DT_EXIT_DATA, "checkpoint %s: reading %s/%s failed (truncated file?)", path, gname, name);
    else
      rc = m->be->upload(m->be, (char *)base + (size_t)(r0 - tb->row_lo) * rb, buf, (size_t)n * rb);
  }
  free(buf);
  H5Dclose(ds);
  return rc;
}

static hid_t open_file(const char *path) {
  if (!dt_path_exists(path)) return -1;
  /* quiet HDF5's own error stack: dtrain reports the problem itself */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

int dt_ckpt_read_meta(const char *path, char **config_json, uint32_t *dataset_crc32) {
  hid_t f = open_file(path);
  if (f < 0)
    return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s: %s", path,
                   dt_path_exists(path) ? "not an HDF5 file, or truncated" : "no such file");
  int64_t version = -1, crc = 0;
  int rc = DT_OK;
  if (attr_read_i64(f, "format_version", &version) != 0)
    rc = dt_fail(DT_EXIT_DATA, "%s is not a dtrain checkpoint (no format_version attribute)", path);
  else if (version != DT_CKPT_FORMAT_VERSION)
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s has format version %lld; this dtrain reads version %d", path,
                 (long long)version, DT_CKPT_FORMAT_VERSION);
  if (!rc && config_json) {
    *config_json = attr_read_str(f, "config");
    if (!*config_json) rc = dt_fail(DT_EXIT_DATA, "checkpoint %s has no config attribute", path);
  }
  if (!rc && dataset_crc32) {
    attr_read_i64(f, "dataset_crc32", &crc);
    *dataset_crc32 = (uint32_t)crc;
  }
  H5Fclose(f);
  return rc;
}

int dt_ckpt_load(const char *path, dt_model *m, dt_ckpt_state *st) {
  DT_TRY(dt_ckpt_read_meta(path, NULL, NULL));
  hid_t f = open_file(path);
  if (f < 0) return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s", path);
  int rc = DT_OK;
  hid_t g_params = H5Gopen2(f, "params", H5P_DEFAULT), g_optim = H5Gopen2(f, "optim", H5P_DEFAULT);
  hid_t g_m = g_optim >= 0 ? H5Gopen2(g_optim, "adam_m", H5P_DEFAULT) : -1;
  hid_t g_v = g_optim >= 0 ? H5Gopen2(g_optim, "adam_v", H5P_DEFAULT) : -1;
  hid_t g_tables = g_optim >= 0 ? H5Gopen2(g_optim, "tables", H5P_DEFAULT) : -1;
  hid_t g_state = H5Gopen2(f, "state", H5P_DEFAULT);
  if (g_params < 0 || g_m < 0 || g_v < 0 || g_tables < 0 || g_state < 0)
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s lacks one of the groups /params, /optim/adam_m, /optim/adam_v, "
                               "/optim/tables, /state (truncated or not a dtrain checkpoint)", path);
  for (int i = 0; i < m->n_params && !rc; i++) {
    rc = read_dense(path, m, g_params, "/params", &m->params[i], m->w);
    if (!rc) rc = read_dense(path, m, g_m, "/optim/adam_m", &m->params[i], m->m);
    if (!rc) rc = read_dense(path, m, g_v, "/optim/adam_v", &m->params[i], m->v);
  }
  for (int t = 0; t < DT_MAX_TABLES && !rc; t++) {
    const dt_table *tb = &m->tables[t];
    if (!tb->present) continue;
    rc = read_table_part(path, m, g_params, "/params", tb, 0, tb->name);
    if (rc) break;
    if (H5Lexists(g_tables, tb->name, H5P_DEFAULT) <= 0) {
      rc = dt_fail(DT_EXIT_DATA, "checkpoint %s has no /optim/tables/%s", path, tb->name);
      break;
    }
    hid_t g_t = H5Gopen2(g_tables, tb->name, H5P_DEFAULT);
    char gname[128];
    snprintf(gname, sizeof gname, "/optim/tables/%s", tb->name);
    for (int which = 1; which <= 4 && !rc; which++) rc = read_table_part(path, m, g_t, gname, tb, which, table_part_name(which));
    H5Gclose(g_t);
  }
  int64_t seed = 0;
  if (!rc && (attr_read_i64(g_optim, "adam_step", &m->adam_step) || attr_read_i64(g_state, "epoch", &st->epoch) ||
              attr_read_i64(g_state, "global_step", &st->global_step) ||
              attr_read_i64(g_state, "step_in_epoch", &st->step_in_epoch) ||
              attr_read_f64(g_state, "best_metric", &st->best_metric) ||
              attr_read_i64(g_state, "best_epoch", &st->best_epoch) ||
              attr_read_i64(g_state, "bad_epochs", &st->bad_epochs) || attr_read_i64(g_state, "seed", &seed)))
    rc = dt_fail(DT_EXIT_DATA, "checkpoint %s: /state or /optim attributes are missing", path);
  st->seed = (uint64_t)seed;
  m->seed = (uint64_t)seed;
  hid_t groups[] = {g_params, g_m, g_v, g_tables, g_optim, g_state};
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (groups[i] >= 0) H5Gclose(groups[i]);
  H5Fclose(f);
  return rc;
}
