/* dataset_write.c: the prepared data set to HDF5, atomically (dataset.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/h5io.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/prep.h"

static int write_split(hid_t f, const char *group, const dt_split *s, const char *path) {
  char name[64];
  snprintf(name, sizeof name, "/%s/user", group);
  DT_TRY(dt_h5_write_i32(f, name, s->user, s->n, path));
  snprintf(name, sizeof name, "/%s/pos", group);
  DT_TRY(dt_h5_write_i32(f, name, s->pos, s->n, path));
  snprintf(name, sizeof name, "/%s/item", group);
  DT_TRY(dt_h5_write_i32(f, name, s->item, s->n, path));
  snprintf(name, sizeof name, "/%s/ts", group);
  DT_TRY(dt_h5_write_i64(f, name, s->ts, s->n, path));
  return DT_OK;
}

/* Train positions cut into chunks of L per user (MODEL.md "chunk"). */
static int write_chunks(hid_t f, const dt_dataset *ds, int64_t *n_chunks, const char *path) {
  int64_t L = ds->history_len > 0 ? ds->history_len : 1, n = 0;
  for (int64_t u = 0; u < ds->n_users; u++) n += (ds->user_n_train[u] + L - 1) / L;
  size_t m = (size_t)(n ? n : 1);
  int32_t *user = dt_xmalloc(m * sizeof(int32_t)), *start = dt_xmalloc(m * sizeof(int32_t)),
          *count = dt_xmalloc(m * sizeof(int32_t));
  int64_t c = 0;
  for (int64_t u = 0; u < ds->n_users; u++)
    for (int64_t s = 0; s < ds->user_n_train[u]; s += L) {
      user[c] = (int32_t)u;
      start[c] = (int32_t)s;
      count[c] = (int32_t)(ds->user_n_train[u] - s < L ? ds->user_n_train[u] - s : L);
      c++;
    }
  int rc = dt_h5_write_i32(f, "/train_chunks/user", user, n, path);
  if (rc == DT_OK) rc = dt_h5_write_i32(f, "/train_chunks/start", start, n, path);
  if (rc == DT_OK) rc = dt_h5_write_i32(f, "/train_chunks/count", count, n, path);
  free(user);
  free(start);
  free(count);
  *n_chunks = n;
  return rc;
}

static int write_all(hid_t f, const dt_dataset *ds, const char *prep_config_json, const char *sources_json,
                     const char *path) {
  DT_TRY(dt_h5_write_i64(f, "/users/ptr", ds->user_ptr, ds->n_users + 1, path));
  DT_TRY(dt_h5_write_i32(f, "/users/items", ds->user_items, ds->n_interactions, path));
  DT_TRY(dt_h5_write_i64(f, "/users/ts", ds->user_ts, ds->n_interactions, path));
  DT_TRY(dt_h5_write_i32(f, "/users/n_train", ds->user_n_train, ds->n_users, path));
  DT_TRY(dt_h5_write_i32(f, "/users/n_valid", ds->user_n_valid, ds->n_users, path));
  DT_TRY(dt_h5_write_strings(f, "/users/ids", ds->user_ids, ds->n_users, path));
  DT_TRY(dt_h5_write_strings(f, "/items/ids", ds->item_ids, ds->n_items, path));
  DT_TRY(write_split(f, "train", &ds->train, path));
  DT_TRY(write_split(f, "valid", &ds->valid, path));
  DT_TRY(write_split(f, "test", &ds->test, path));
  dt_prep_summary summary = ds->summary;
  DT_TRY(write_chunks(f, ds, &summary.n_chunks, path));
  int64_t nnz = ds->tfidf_indptr[ds->n_items];
  DT_TRY(dt_h5_write_i64(f, "/tfidf/indptr", ds->tfidf_indptr, ds->n_items + 1, path));
  DT_TRY(dt_h5_write_i32(f, "/tfidf/indices", ds->tfidf_indices, nnz, path));
  DT_TRY(dt_h5_write_f32(f, "/tfidf/data", ds->tfidf_values, nnz, path));
  DT_TRY(dt_h5_write_strings(f, "/tfidf/vocab", ds->vocab, ds->vocab_size, path));
  char *summary_json = dt_prep_summary_json(&summary);
  int rc = dt_h5_write_attr_str(f, "summary", summary_json, path);
  free(summary_json);
  DT_TRY(rc);
  DT_TRY(dt_h5_write_attr_str(f, "prep_config", prep_config_json ? prep_config_json : "{}", path));
  DT_TRY(dt_h5_write_attr_str(f, "sources", sources_json ? sources_json : "[]", path));
  DT_TRY(dt_h5_write_attr_int(f, "history_len", ds->history_len, path));
  DT_TRY(dt_h5_write_attr_str(f, "split", ds->split[0] ? ds->split : "temporal", path));
  /* last: a file without it is never taken for a complete one */
  DT_TRY(dt_h5_write_attr_int(f, "format_version", DT_DATASET_FORMAT_VERSION, path));
  return DT_OK;
}

/* Why the existing file at `path` is not a data set dtrain wrote, or NULL
 * when it is one (reason in buf). */
static const char *not_ours(const char *path, const struct stat *lst, char *buf, size_t n) {
  struct stat st;
  if (S_ISLNK(lst->st_mode) && stat(path, &st) != 0) return "it is a symbolic link to nothing";
  if (!S_ISLNK(lst->st_mode)) st = *lst;
  if (S_ISDIR(st.st_mode)) return "it is a directory";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  if (access(path, R_OK) != 0) {
    snprintf(buf, n, "it cannot be read: %s", strerror(errno));
    return buf;
  }
  if (H5Fis_hdf5(path) <= 0) return "it is not an HDF5 file";
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    snprintf(buf, n, "an HDF5 file that cannot be opened: %s", dt_h5_last_error());
    return buf;
  }
  int ours = H5Aexists(f, "format_version") > 0 && H5Aexists(f, "prep_config") > 0;
  H5Fclose(f);
  return ours ? NULL : "an HDF5 file without the format_version and prep_config attributes dtrain writes";
}

int dt_dataset_check_replaceable(const char *path) {
  dt_h5_quiet();
  struct stat lst;
  if (lstat(path, &lst) != 0) {
    if (errno == ENOENT) return DT_OK;
    return dt_fail(DT_EXIT_DATA, "cannot inspect data.output %s: %s", path, strerror(errno));
  }
  char buf[512];
  const char *why = not_ours(path, &lst, buf, sizeof buf);
  if (!why) return DT_OK;
  return dt_fail(DT_EXIT_DATA,
                 "data.output %s exists and is not a dtrain prepared data set (%s); dtrain replaces only data sets it "
                 "wrote, even with --force: move it away, or set data.output to another path",
                 path, why);
}

int dt_dataset_write(const char *path, const dt_dataset *ds, const char *prep_config_json, const char *sources_json) {
  dt_h5_quiet();
  DT_TRY(dt_dataset_check_replaceable(path));
  char *dir = dt_path_dirname(path);
  int rc = dt_mkdir_p(dir);
  free(dir);
  DT_TRY(rc);
  dt_tmp_remove_stale(path); /* left by a preparation that was killed */
  char *tmp = dt_tmp_name(path);
  dt_tmp_register(tmp); /* a signal that ends the process removes it */
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0)
    rc = dt_fail(DT_EXIT_RUNTIME,
                 "cannot create %s (HDF5: %s): check that the directory is writable and that no "
                 "other process holds the file open",
                 tmp, dt_h5_last_error());
  else
    rc = dt_h5_close_file(f, tmp, write_all(f, ds, prep_config_json, sources_json, tmp));
  if (rc == DT_OK) rc = dt_fsync_path(tmp);
  /* again at the last moment: something may have appeared meanwhile */
  if (rc == DT_OK) rc = dt_dataset_check_replaceable(path);
  if (rc == DT_OK && rename(tmp, path) != 0)
    rc = dt_fail(DT_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  if (rc != DT_OK) unlink(tmp);
  dt_tmp_unregister(tmp);
  free(tmp);
  if (rc != DT_OK)
    return dt_fail_context(rc,
                           "writing the prepared data set %s failed (its temporary file is removed; %s is "
                           "unchanged)",
                           path, path);
  return dt_fsync_parent_dir(path);
}
