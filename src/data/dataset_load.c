/* dataset_load.c: reads and validates a prepared data set (dataset.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/h5io.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/prep.h"

static int inconsistent(const char *path, const char *what) {
  return dt_fail(DT_EXIT_DATA, "prepared data set %s is inconsistent (%s): re-run `dtrain prep --force`", path, what);
}

static int read_split(hid_t f, const char *group, dt_split *s, const char *path) {
  char name[64];
  snprintf(name, sizeof name, "/%s/user", group);
  DT_TRY(dt_h5_read_array(f, name, H5T_NATIVE_INT32, sizeof(int32_t), -1, (void **)&s->user, &s->n, path));
  snprintf(name, sizeof name, "/%s/pos", group);
  DT_TRY(dt_h5_read_array(f, name, H5T_NATIVE_INT32, sizeof(int32_t), s->n, (void **)&s->pos, NULL, path));
  snprintf(name, sizeof name, "/%s/item", group);
  DT_TRY(dt_h5_read_array(f, name, H5T_NATIVE_INT32, sizeof(int32_t), s->n, (void **)&s->item, NULL, path));
  snprintf(name, sizeof name, "/%s/ts", group);
  DT_TRY(dt_h5_read_array(f, name, H5T_NATIVE_INT64, sizeof(int64_t), s->n, (void **)&s->ts, NULL, path));
  return DT_OK;
}

/* Every split row must be the list entry it names, in the right part of
 * the list (train prefix, then valid, then test). */
static int check_split(const dt_dataset *ds, const dt_split *s, int which, const char *path) {
  int64_t prev_ts = INT64_MIN;
  for (int64_t j = 0; j < s->n; j++) {
    int32_t u = s->user[j], p = s->pos[j];
    if (u < 0 || u >= ds->n_users) return inconsistent(path, "a split row names a user out of range");
    int64_t len = ds->user_ptr[u + 1] - ds->user_ptr[u];
    int64_t lo = which == 0 ? 0 : which == 1 ? ds->user_n_train[u] : ds->user_n_train[u] + ds->user_n_valid[u];
    int64_t hi = which == 0 ? ds->user_n_train[u] : which == 1 ? lo + ds->user_n_valid[u] : len;
    if (p < lo || p >= hi) return inconsistent(path, "a split row's position is outside its part of the list");
    if (ds->user_items[ds->user_ptr[u] + p] != s->item[j] || ds->user_ts[ds->user_ptr[u] + p] != s->ts[j])
      return inconsistent(path, "a split row differs from the user's list");
    if (s->ts[j] < prev_ts) return inconsistent(path, "a split is not in time order");
    prev_ts = s->ts[j];
  }
  return DT_OK;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int validate(dt_dataset *ds, const char *path) {
  if (ds->user_ptr[0] != 0 || ds->user_ptr[ds->n_users] != ds->n_interactions)
    return inconsistent(path, "/users/ptr does not span /users/items");
  int64_t n_train = 0, n_valid = 0;
  for (int64_t u = 0; u < ds->n_users; u++) {
    int64_t len = ds->user_ptr[u + 1] - ds->user_ptr[u];
    if (len < 0) return inconsistent(path, "/users/ptr decreases");
    if (ds->user_n_train[u] < 0 || ds->user_n_valid[u] < 0 || ds->user_n_train[u] + ds->user_n_valid[u] > len)
      return inconsistent(path, "a user's n_train + n_valid exceeds the list");
    n_train += ds->user_n_train[u];
    n_valid += ds->user_n_valid[u];
  }
  for (int64_t j = 0; j < ds->n_interactions; j++)
    if (ds->user_items[j] < 0 || ds->user_items[j] >= ds->n_items) return inconsistent(path, "an item out of range");
  if (n_train != ds->train.n || n_valid != ds->valid.n || ds->train.n + ds->valid.n + ds->test.n != ds->n_interactions)
    return inconsistent(path, "split sizes differ from the per-user counts");
  DT_TRY(check_split(ds, &ds->train, 0, path));
  DT_TRY(check_split(ds, &ds->valid, 1, path));
  DT_TRY(check_split(ds, &ds->test, 2, path));
  int64_t nnz = ds->tfidf_indptr[ds->n_items];
  if (ds->tfidf_indptr[0] != 0) return inconsistent(path, "/tfidf/indptr does not start at 0");
  for (int64_t i = 0; i < ds->n_items; i++)
    if (ds->tfidf_indptr[i + 1] < ds->tfidf_indptr[i]) return inconsistent(path, "/tfidf/indptr decreases");
  for (int64_t k = 0; k < nnz; k++)
    if (ds->tfidf_indices[k] < 0 || ds->tfidf_indices[k] >= ds->vocab_size)
      return inconsistent(path, "a TF-IDF column out of range");
  if (ds->history_len < 1) return inconsistent(path, "history_len < 1");
  return DT_OK;
}

/* Each user's train items, sorted, for membership tests. */
static void build_train_sorted(dt_dataset *ds) {
  ds->train_sorted_ptr = dt_xmalloc(((size_t)ds->n_users + 1) * sizeof(int64_t));
  ds->train_sorted = dt_xmalloc((size_t)(ds->train.n ? ds->train.n : 1) * sizeof(int32_t));
  int64_t w = 0;
  for (int64_t u = 0; u < ds->n_users; u++) {
    ds->train_sorted_ptr[u] = w;
    memcpy(ds->train_sorted + w, ds->user_items + ds->user_ptr[u], (size_t)ds->user_n_train[u] * sizeof(int32_t));
    qsort(ds->train_sorted + w, (size_t)ds->user_n_train[u], sizeof(int32_t), cmp_i32);
    w += ds->user_n_train[u];
  }
  ds->train_sorted_ptr[ds->n_users] = w;
}

static int load_open(hid_t f, const char *path, dt_dataset *ds) {
  int64_t v;
  char *s = NULL;
  DT_TRY(dt_h5_read_attr_int(f, "history_len", &v, path));
  ds->history_len = (int)v;
  DT_TRY(dt_h5_read_attr_str(f, "split", &s, path));
  snprintf(ds->split, sizeof ds->split, "%s", s);
  free(s);
  DT_TRY(dt_h5_read_attr_str(f, "prep_config", &ds->prep_config_json, path));
  DT_TRY(dt_h5_read_attr_str(f, "summary", &s, path));
  int rc = dt_prep_summary_from_json(s, &ds->summary);
  free(s);
  if (rc != DT_OK) return inconsistent(path, "the summary attribute is not valid JSON");

  DT_TRY(dt_h5_length(f, "/users/n_train", &ds->n_users, path));
  DT_TRY(dt_h5_length(f, "/items/ids", &ds->n_items, path));
  DT_TRY(dt_h5_length(f, "/tfidf/vocab", &ds->vocab_size, path));
  DT_TRY(dt_h5_read_array(f, "/users/ptr", H5T_NATIVE_INT64, sizeof(int64_t), ds->n_users + 1, (void **)&ds->user_ptr,
                          NULL, path));
  DT_TRY(dt_h5_read_array(f, "/users/items", H5T_NATIVE_INT32, sizeof(int32_t), -1, (void **)&ds->user_items,
                          &ds->n_interactions, path));
  DT_TRY(dt_h5_read_array(f, "/users/ts", H5T_NATIVE_INT64, sizeof(int64_t), ds->n_interactions, (void **)&ds->user_ts,
                          NULL, path));
  DT_TRY(dt_h5_read_array(f, "/users/n_train", H5T_NATIVE_INT32, sizeof(int32_t), ds->n_users,
                          (void **)&ds->user_n_train, NULL, path));
  DT_TRY(dt_h5_read_array(f, "/users/n_valid", H5T_NATIVE_INT32, sizeof(int32_t), ds->n_users,
                          (void **)&ds->user_n_valid, NULL, path));
  DT_TRY(read_split(f, "train", &ds->train, path));
  DT_TRY(read_split(f, "valid", &ds->valid, path));
  DT_TRY(read_split(f, "test", &ds->test, path));
  DT_TRY(dt_h5_read_array(f, "/tfidf/indptr", H5T_NATIVE_INT64, sizeof(int64_t), ds->n_items + 1,
                          (void **)&ds->tfidf_indptr, NULL, path));
  int64_t nnz = ds->tfidf_indptr[ds->n_items];
  if (nnz < 0) return inconsistent(path, "negative TF-IDF nnz");
  DT_TRY(dt_h5_read_array(f, "/tfidf/indices", H5T_NATIVE_INT32, sizeof(int32_t), nnz, (void **)&ds->tfidf_indices,
                          NULL, path));
  DT_TRY(
      dt_h5_read_array(f, "/tfidf/data", H5T_NATIVE_FLOAT, sizeof(float), nnz, (void **)&ds->tfidf_values, NULL, path));
  return validate(ds, path);
}

int dt_dataset_load(const char *path, dt_dataset *ds) {
  memset(ds, 0, sizeof *ds);
  hid_t f;
  DT_TRY(dt_h5_open_prepared(path, DT_DATASET_FORMAT_VERSION, &f));
  ds->path = dt_xstrdup(path);
  int rc = load_open(f, path, ds);
  if (H5Fclose(f) < 0 && rc == DT_OK) rc = dt_fail(DT_EXIT_DATA, "cannot close %s", path);
  if (rc == DT_OK) rc = dt_file_crc32(path, &ds->file_crc32, NULL);
  if (rc != DT_OK) {
    dt_dataset_free(ds);
    return rc;
  }
  build_train_sorted(ds);
  return DT_OK;
}

int dt_dataset_load_ids(dt_dataset *ds) {
  if (!ds->path) return dt_fail(DT_EXIT_RUNTIME, "dt_dataset_load_ids: the data set was not loaded from a file");
  if (ds->user_ids) return DT_OK;
  hid_t f;
  DT_TRY(dt_h5_open_prepared(ds->path, DT_DATASET_FORMAT_VERSION, &f));
  char **u = NULL, **i = NULL, **v = NULL;
  int rc = dt_h5_read_strings(f, "/users/ids", ds->n_users, &u, ds->path);
  if (rc == DT_OK) rc = dt_h5_read_strings(f, "/items/ids", ds->n_items, &i, ds->path);
  if (rc == DT_OK) rc = dt_h5_read_strings(f, "/tfidf/vocab", ds->vocab_size, &v, ds->path);
  H5Fclose(f);
  if (rc != DT_OK) {
    for (int64_t k = 0; u && k < ds->n_users; k++) free(u[k]);
    for (int64_t k = 0; i && k < ds->n_items; k++) free(i[k]);
    free(u);
    free(i);
    return rc;
  }
  ds->user_ids = u;
  ds->item_ids = i;
  ds->vocab = v;
  return DT_OK;
}

static void free_split(dt_split *s) {
  free(s->user);
  free(s->pos);
  free(s->item);
  free(s->ts);
}

static void free_strings(char **s, int64_t n) {
  if (!s) return;
  for (int64_t i = 0; i < n; i++) free(s[i]);
  free(s);
}

void dt_dataset_free(dt_dataset *ds) {
  free(ds->user_ptr);
  free(ds->user_items);
  free(ds->user_ts);
  free(ds->user_n_train);
  free(ds->user_n_valid);
  free(ds->train_sorted_ptr);
  free(ds->train_sorted);
  free_split(&ds->train);
  free_split(&ds->valid);
  free_split(&ds->test);
  free(ds->tfidf_indptr);
  free(ds->tfidf_indices);
  free(ds->tfidf_values);
  free_strings(ds->user_ids, ds->n_users);
  free_strings(ds->item_ids, ds->n_items);
  free_strings(ds->vocab, ds->vocab_size);
  free(ds->path);
  free(ds->prep_config_json);
  memset(ds, 0, sizeof *ds);
}

static int64_t find_id(char *const *ids, int64_t n, const char *id) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    int c = strcmp(ids[mid], id);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

int64_t dt_dataset_find_user(const dt_dataset *ds, const char *id) {
  return ds->user_ids ? find_id(ds->user_ids, ds->n_users, id) : -1;
}

int64_t dt_dataset_find_item(const dt_dataset *ds, const char *id) {
  return ds->item_ids ? find_id(ds->item_ids, ds->n_items, id) : -1;
}

int dt_dataset_user_has_train_item(const dt_dataset *ds, int32_t u, int32_t i) {
  if (!ds->train_sorted || u < 0 || u >= ds->n_users) return 0;
  const int32_t *a = ds->train_sorted + ds->train_sorted_ptr[u];
  int64_t lo = 0, hi = ds->train_sorted_ptr[u + 1] - ds->train_sorted_ptr[u];
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] == i) return 1;
    if (a[mid] < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

int dt_dataset_read_summary(const char *path, dt_prep_summary *summary) {
  hid_t f;
  DT_TRY(dt_h5_open_prepared(path, DT_DATASET_FORMAT_VERSION, &f));
  char *s = NULL;
  int rc = dt_h5_read_attr_str(f, "summary", &s, path);
  H5Fclose(f);
  if (rc == DT_OK) rc = dt_prep_summary_from_json(s, summary);
  free(s);
  return rc;
}
