/* ckpt_inference.c: the checkpoint's /inference group (ckpt.h): what
 * `recommend` and the PyTorch serving module need besides the parameters. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_internal.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/h5io.h"

#define GROUP "/inference"

/* ---- Writing -------------------------------------------------------------------- */

static int write_attributes(hid_t file, const dt_ckpt_inference *inf, const char *path) {
  hid_t g = H5Gopen2(file, GROUP, H5P_DEFAULT);
  if (g < 0) return dt_fail(DT_EXIT_RUNTIME, "checkpoint %s: cannot open %s (HDF5)", path, GROUP);
  int bad = dt_h5_write_attr_str(g, "history_mode", inf->history_mode, path) |
            dt_h5_write_attr_int(g, "history_len", inf->history_len, path) |
            dt_h5_write_attr_int(g, "vocab_size", inf->has_tfidf ? inf->vocab_size : 0, path) |
            dt_h5_write_attr_int(g, "n_users", inf->n_users, path) |
            dt_h5_write_attr_int(g, "n_items", inf->n_items, path);
  H5Gclose(g);
  return bad ? dt_fail(DT_EXIT_RUNTIME, "checkpoint %s: writing the attributes of %s failed", path, GROUP) : DT_OK;
}

int dt_ckpt_write_inference(hid_t f, const dt_ckpt_inference *inf, const char *path) {
  const int64_t U = inf->n_users, I = inf->n_items;
  DT_TRY(dt_h5_write_strings(f, GROUP "/users/ids", inf->user_ids, U, path));
  DT_TRY(dt_h5_write_i64(f, GROUP "/users/ptr", inf->user_ptr, U + 1, path));
  DT_TRY(dt_h5_write_i32(f, GROUP "/users/items", inf->user_items, inf->n_lists, path));
  DT_TRY(dt_h5_write_i32(f, GROUP "/users/n_train", inf->user_n_train, U, path));
  DT_TRY(dt_h5_write_i64(f, GROUP "/users/last_ts", inf->user_last_ts, U, path));
  DT_TRY(dt_h5_write_strings(f, GROUP "/items/ids", inf->item_ids, I, path));
  DT_TRY(dt_h5_write_i64(f, GROUP "/items/popularity", inf->item_popularity, I, path));
  if (inf->has_tfidf) {
    const int64_t nnz = inf->tfidf_indptr[I];
    DT_TRY(dt_h5_write_i64(f, GROUP "/tfidf/indptr", inf->tfidf_indptr, I + 1, path));
    DT_TRY(dt_h5_write_i32(f, GROUP "/tfidf/indices", inf->tfidf_indices, nnz, path));
    DT_TRY(dt_h5_write_f32(f, GROUP "/tfidf/data", inf->tfidf_values, nnz, path));
  }
  return write_attributes(f, inf, path);
}

/* ---- Probing -------------------------------------------------------------------- */

int dt_ckpt_is_export_file(hid_t f) {
  if (H5Aexists(f, "kind") <= 0) return 0;
  char *kind = NULL;
  if (dt_h5_read_attr_str(f, "kind", &kind, "checkpoint") != DT_OK) {
    dt_error_clear();
    return 0;
  }
  int is = !strcmp(kind, "export");
  free(kind);
  return is;
}

int dt_ckpt_probe(const char *path, int *has_inference, int *is_export) {
  DT_TRY(dt_ckpt_read_meta(path, NULL, NULL));
  dt_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s", path);
  *has_inference = H5Lexists(f, GROUP, H5P_DEFAULT) > 0;
  if (is_export) *is_export = dt_ckpt_is_export_file(f);
  H5Fclose(f);
  return DT_OK;
}

/* ---- Reading -------------------------------------------------------------------- */

void dt_ckpt_inference_free(dt_ckpt_inference *inf) {
  for (int64_t i = 0; inf->user_ids && i < inf->n_users; i++) free(inf->user_ids[i]);
  for (int64_t i = 0; inf->item_ids && i < inf->n_items; i++) free(inf->item_ids[i]);
  void *ps[] = {inf->user_ids,     inf->item_ids,        inf->user_ptr,     inf->user_items,    inf->user_n_train,
                inf->user_last_ts, inf->item_popularity, inf->tfidf_indptr, inf->tfidf_indices, inf->tfidf_values};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
  memset(inf, 0, sizeof *inf);
}

static int bad(const char *path, const char *what) {
  return dt_fail(DT_EXIT_DATA,
                 "checkpoint %s: %s/%s (a damaged file? export it again, or use the checkpoint of "
                 "the run)",
                 path, GROUP, what);
}

static int sorted_ids(char *const *ids, int64_t n) {
  for (int64_t i = 1; i < n; i++)
    if (strcmp(ids[i - 1], ids[i]) >= 0) return 0;
  return 1;
}

/* Every size and index against the others, so nothing later reads out of
 * bounds: the lists, the train prefixes, the TF-IDF rows, the id order
 * (dt_dataset_find_user searches them). */
static int check(const dt_ckpt_inference *inf, const char *path) {
  const int64_t U = inf->n_users, I = inf->n_items;
  if (strcmp(inf->history_mode, "prefix") && strcmp(inf->history_mode, "user_train") &&
      strcmp(inf->history_mode, "chunk"))
    return bad(path, "history_mode is not prefix, user_train or chunk");
  if (inf->history_len < 1) return bad(path, "history_len is below 1");
  if (inf->user_ptr[0] != 0 || inf->user_ptr[U] != inf->n_lists)
    return bad(path, "users/ptr does not span users/items");
  for (int64_t u = 0; u < U; u++) {
    int64_t len = inf->user_ptr[u + 1] - inf->user_ptr[u];
    if (len < 0) return bad(path, "users/ptr decreases");
    if (inf->user_n_train[u] < 0 || inf->user_n_train[u] > len) return bad(path, "users/n_train exceeds a list");
  }
  for (int64_t k = 0; k < inf->n_lists; k++)
    if (inf->user_items[k] < 0 || inf->user_items[k] >= I) return bad(path, "users/items holds an item out of range");
  for (int64_t i = 0; i < I; i++)
    if (inf->item_popularity[i] < 0) return bad(path, "items/popularity is negative");
  if (!sorted_ids(inf->user_ids, U) || !sorted_ids(inf->item_ids, I))
    return bad(path, "users/ids or items/ids is not in bytewise order");
  if (inf->has_tfidf) {
    if (inf->tfidf_indptr[0] != 0) return bad(path, "tfidf/indptr does not start at 0");
    for (int64_t i = 0; i < I; i++)
      if (inf->tfidf_indptr[i + 1] < inf->tfidf_indptr[i]) return bad(path, "tfidf/indptr decreases");
    for (int64_t k = 0; k < inf->tfidf_indptr[I]; k++)
      if (inf->tfidf_indices[k] < 0 || inf->tfidf_indices[k] >= inf->vocab_size)
        return bad(path, "tfidf/indices holds a column out of range");
  }
  return DT_OK;
}

static int read_attributes(hid_t f, dt_ckpt_inference *inf, const char *path) {
  hid_t g = H5Gopen2(f, GROUP, H5P_DEFAULT);
  if (g < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s has no %s group", path, GROUP);
  int64_t L = 0;
  char *mode = NULL;
  int rc = dt_h5_read_attr_str(g, "history_mode", &mode, path);
  if (!rc) rc = dt_h5_read_attr_int(g, "history_len", &L, path);
  if (!rc) rc = dt_h5_read_attr_int(g, "vocab_size", &inf->vocab_size, path);
  H5Gclose(g);
  if (!rc) {
    snprintf(inf->history_mode, sizeof inf->history_mode, "%s", mode);
    inf->history_len = L > 0 && L < (1 << 30) ? (int)L : 0;
  }
  free(mode);
  return rc;
}

static int read_all(hid_t f, dt_ckpt_inference *inf, const char *path) {
  int64_t U = 0, I = 0, n = 0;
  DT_TRY(read_attributes(f, inf, path));
  DT_TRY(dt_h5_length(f, GROUP "/users/n_train", &U, path));
  DT_TRY(dt_h5_length(f, GROUP "/items/popularity", &I, path));
  inf->n_users = U;
  inf->n_items = I;
  DT_TRY(dt_h5_read_strings(f, GROUP "/users/ids", U, &inf->user_ids, path));
  DT_TRY(dt_h5_read_strings(f, GROUP "/items/ids", I, &inf->item_ids, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/users/ptr", H5T_NATIVE_INT64, sizeof(int64_t), U + 1, (void **)&inf->user_ptr,
                          NULL, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/users/items", H5T_NATIVE_INT32, sizeof(int32_t), -1, (void **)&inf->user_items,
                          &inf->n_lists, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/users/n_train", H5T_NATIVE_INT32, sizeof(int32_t), U, (void **)&inf->user_n_train,
                          NULL, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/users/last_ts", H5T_NATIVE_INT64, sizeof(int64_t), U, (void **)&inf->user_last_ts,
                          NULL, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/items/popularity", H5T_NATIVE_INT64, sizeof(int64_t), I,
                          (void **)&inf->item_popularity, NULL, path));
  inf->has_tfidf = H5Lexists(f, GROUP "/tfidf", H5P_DEFAULT) > 0;
  if (!inf->has_tfidf) {
    inf->vocab_size = 0;
    return DT_OK;
  }
  DT_TRY(dt_h5_read_array(f, GROUP "/tfidf/indptr", H5T_NATIVE_INT64, sizeof(int64_t), I + 1,
                          (void **)&inf->tfidf_indptr, NULL, path));
  DT_TRY(dt_h5_read_array(f, GROUP "/tfidf/indices", H5T_NATIVE_INT32, sizeof(int32_t), -1,
                          (void **)&inf->tfidf_indices, &n, path));
  if (n != inf->tfidf_indptr[I]) return bad(path, "tfidf/indices and tfidf/indptr disagree");
  return dt_h5_read_array(f, GROUP "/tfidf/data", H5T_NATIVE_FLOAT, sizeof(float), n, (void **)&inf->tfidf_values, NULL,
                          path);
}

int dt_ckpt_read_inference(const char *path, dt_ckpt_inference *out) {
  memset(out, 0, sizeof *out);
  DT_TRY(dt_ckpt_read_meta(path, NULL, NULL));
  dt_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s", path);
  int rc = H5Lexists(f, GROUP, H5P_DEFAULT) > 0
               ? read_all(f, out, path)
               : dt_fail(DT_EXIT_DATA, "checkpoint %s has no inference data (%s)", path, GROUP);
  H5Fclose(f);
  if (!rc) rc = check(out, path);
  if (rc) dt_ckpt_inference_free(out);
  return rc;
}
