/* The prepared HDF5 data set: write + load round trip, refusal of truncated
 * files and other format versions, is_current / ensure_prepared. */
#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/shard.h"

static char g_dir[64];

static char *tmp_path(const char *name) { return dt_path_join(g_dir, name); }

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/dtrain_test_dsXXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  dt_log_set_level(DT_LOG_ERROR);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A small synthetic configuration writing to `out`. */
static void synth_config(dt_config *cfg, const char *out, const char *extra) {
  char o[512];
  snprintf(o, sizeof o, "data.output=%s", out);
  const char *sets[] = {"data.format=synthetic",
                        "data.synthetic.users=300",
                        "data.synthetic.items=120",
                        "data.synthetic.interactions=6000",
                        "data.synthetic.categories=4",
                        "data.synthetic.subcategories=3",
                        o,
                        extra ? extra : "data.kcore=5"};
  assert_int_equal(dt_config_build(NULL, sets, 8, cfg), DT_OK);
}

static void assert_split_equal(const dt_split *a, const dt_split *b) {
  assert_int_equal(a->n, b->n);
  assert_memory_equal(a->user, b->user, (size_t)a->n * sizeof(int32_t));
  assert_memory_equal(a->pos, b->pos, (size_t)a->n * sizeof(int32_t));
  assert_memory_equal(a->item, b->item, (size_t)a->n * sizeof(int32_t));
  assert_memory_equal(a->ts, b->ts, (size_t)a->n * sizeof(int64_t));
}

static void write_then_load_round_trip(void **state) {
  (void)state;
  char *path = tmp_path("rt.h5");
  dt_config cfg;
  synth_config(&cfg, path, NULL);
  dt_dataset ds, ld;
  char *sources = NULL;
  assert_int_equal(dt_prep_build(&cfg, &ds, &sources), DT_OK);
  assert_string_equal(sources, "[]");
  char *cj = dt_prep_config_json(&cfg);
  assert_int_equal(dt_dataset_write(path, &ds, cj, sources), DT_OK);
  assert_int_equal(dt_dataset_load(path, &ld), DT_OK);
  assert_int_equal(ld.n_users, ds.n_users);
  assert_int_equal(ld.n_items, ds.n_items);
  assert_int_equal(ld.n_interactions, ds.n_interactions);
  assert_int_equal(ld.history_len, 50);
  assert_string_equal(ld.split, "temporal");
  assert_memory_equal(ld.user_ptr, ds.user_ptr, (size_t)(ds.n_users + 1) * sizeof(int64_t));
  assert_memory_equal(ld.user_items, ds.user_items, (size_t)ds.n_interactions * sizeof(int32_t));
  assert_memory_equal(ld.user_ts, ds.user_ts, (size_t)ds.n_interactions * sizeof(int64_t));
  assert_memory_equal(ld.user_n_train, ds.user_n_train, (size_t)ds.n_users * sizeof(int32_t));
  assert_memory_equal(ld.user_n_valid, ds.user_n_valid, (size_t)ds.n_users * sizeof(int32_t));
  assert_split_equal(&ld.train, &ds.train);
  assert_split_equal(&ld.valid, &ds.valid);
  assert_split_equal(&ld.test, &ds.test);
  int64_t nnz = ds.tfidf_indptr[ds.n_items];
  assert_int_equal(ld.vocab_size, ds.vocab_size);
  assert_memory_equal(ld.tfidf_indptr, ds.tfidf_indptr, (size_t)(ds.n_items + 1) * sizeof(int64_t));
  assert_memory_equal(ld.tfidf_indices, ds.tfidf_indices, (size_t)nnz * sizeof(int32_t));
  assert_memory_equal(ld.tfidf_values, ds.tfidf_values, (size_t)nnz * sizeof(float));
  assert_memory_equal(&ld.summary, &ds.summary, sizeof ds.summary - sizeof(int64_t)); /* all but n_chunks */
  assert_true(ld.summary.n_chunks > 0);
  assert_string_equal(ld.prep_config_json, cj);
  uint32_t crc;
  assert_int_equal(dt_file_crc32(path, &crc, NULL), DT_OK);
  assert_int_equal(ld.file_crc32, crc);
  /* ids and vocabulary */
  assert_null(ld.user_ids);
  assert_int_equal(dt_dataset_load_ids(&ld), DT_OK);
  for (int64_t u = 0; u < ds.n_users; u++) assert_string_equal(ld.user_ids[u], ds.user_ids[u]);
  for (int64_t i = 0; i < ds.n_items; i++) assert_string_equal(ld.item_ids[i], ds.item_ids[i]);
  for (int64_t v = 0; v < ds.vocab_size; v++) assert_string_equal(ld.vocab[v], ds.vocab[v]);
  assert_int_equal(dt_dataset_find_user(&ld, ds.user_ids[17]), 17);
  assert_int_equal(dt_dataset_find_item(&ld, ds.item_ids[ds.n_items - 1]), ds.n_items - 1);
  assert_int_equal(dt_dataset_find_item(&ld, "no such item"), -1);
  /* train membership agrees with the lists */
  for (int64_t u = 0; u < ld.n_users; u += 7) {
    for (int32_t i = 0; i < ld.n_items; i++) {
      int want = 0;
      for (int64_t p = 0; p < ld.user_n_train[u]; p++) want |= ld.user_items[ld.user_ptr[u] + p] == i;
      assert_int_equal(dt_dataset_user_has_train_item(&ld, (int32_t)u, i), want);
    }
  }
  dt_prep_summary s;
  assert_int_equal(dt_dataset_read_summary(path, &s), DT_OK);
  assert_int_equal(s.tfidf_nnz, ds.summary.tfidf_nnz);
  free(cj);
  free(sources);
  dt_dataset_free(&ds);
  dt_dataset_free(&ld);
  dt_config_free(&cfg);
  free(path);
}

static void copy_prefix(const char *from, const char *to, double frac) {
  char *data;
  size_t len;
  assert_int_equal(dt_read_file(from, &data, &len, DT_EXIT_DATA), DT_OK);
  FILE *f = fopen(to, "wb");
  assert_non_null(f);
  size_t n = (size_t)((double)len * frac);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
  free(data);
}

static void truncated_file_is_refused(void **state) {
  (void)state;
  char *path = tmp_path("full.h5"), *cut = tmp_path("cut.h5");
  dt_config cfg;
  synth_config(&cfg, path, NULL);
  assert_int_equal(dt_prep_run(&cfg, NULL), DT_OK);
  double fracs[] = {0.999, 0.5, 0.01};
  for (int k = 0; k < 3; k++) {
    copy_prefix(path, cut, fracs[k]);
    dt_dataset ds;
    assert_int_equal(dt_dataset_load(cut, &ds), DT_EXIT_DATA);
    assert_non_null(strstr(dt_error_message(), cut));
    /* "move it away and run `dtrain prep`" when it cannot be opened (it
     * cannot then be told for dtrain's, so prep --force would refuse it),
     * "re-run `dtrain prep --force`" when a dataset inside is damaged */
    assert_non_null(strstr(dt_error_message(), "dtrain prep"));
    char why[1024];
    assert_int_equal(dt_dataset_is_current(cut, &cfg, why, sizeof why), 0);
    dt_shard sh;
    assert_int_equal(dt_shard_load(cut, 0, 1, 0, 64, 50, &sh), DT_EXIT_DATA);
  }
  dt_config_free(&cfg);
  free(path);
  free(cut);
}

/* Rewrites the format_version attribute of a prepared file. */
static void set_version(const char *path, int64_t v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  assert_true(H5Adelete(f, "format_version") >= 0);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0);
  assert_true(H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  assert_true(H5Fclose(f) >= 0);
}

static void other_format_version_is_refused(void **state) {
  (void)state;
  char *path = tmp_path("v2.h5");
  dt_config cfg;
  synth_config(&cfg, path, NULL);
  assert_int_equal(dt_prep_run(&cfg, NULL), DT_OK);
  set_version(path, DT_DATASET_FORMAT_VERSION + 1);
  dt_dataset ds;
  assert_int_equal(dt_dataset_load(path, &ds), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "format version 2"));
  assert_non_null(strstr(dt_error_message(), "reads version 1"));
  char why[1024];
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "format version"));
  /* ensure_prepared rebuilds it */
  assert_int_equal(dt_dataset_ensure_prepared(&cfg), DT_OK);
  assert_int_equal(dt_dataset_load(path, &ds), DT_OK);
  dt_dataset_free(&ds);
  /* not an HDF5 file at all */
  FILE *f = fopen(path, "w");
  fputs("hello\n", f);
  fclose(f);
  assert_int_equal(dt_dataset_load(path, &ds), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "not an HDF5 file"));
  /* and not dtrain's to replace: ensure_prepared (train) refuses it */
  assert_int_equal(dt_dataset_ensure_prepared(&cfg), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "is not a dtrain prepared data set"));
  char *text = NULL;
  assert_int_equal(dt_read_file(path, &text, NULL, DT_EXIT_DATA), DT_OK);
  assert_string_equal(text, "hello\n");
  free(text);
  dt_config_free(&cfg);
  free(path);
}

static void is_current_follows_config_and_sources(void **state) {
  (void)state;
  char *path = tmp_path("cur.h5");
  char why[1024];
  dt_config cfg;
  synth_config(&cfg, path, NULL);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "does not exist"));
  assert_int_equal(dt_dataset_ensure_prepared(&cfg), DT_OK);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 1);
  /* keys outside data.* and data.output do not matter */
  const char *other[] = {"train.lr=0.5", "model.version=v3"};
  assert_int_equal(dt_config_apply_sets(&cfg, other, 2), DT_OK);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 1);
  /* a data key does */
  const char *seed[] = {"data.synthetic.seed=8"};
  assert_int_equal(dt_config_apply_sets(&cfg, seed, 1), DT_OK);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "data.synthetic.seed was 7"));
  dt_config_free(&cfg);

  /* Amazon input: the source checksum */
  char *reviews = tmp_path("reviews.json");
  FILE *f = fopen(reviews, "w");
  for (int u = 0; u < 6; u++)
    for (int i = 0; i < 6; i++)
      fprintf(f,
              "{\"reviewerID\": \"U%d\", \"asin\": \"I%d\", \"overall\": 5.0, \"unixReviewTime\": %d, "
              "\"summary\": \"item %d\"}\n",
              u, i, 1000 + 37 * u + 11 * i, i);
  fclose(f);
  char o[512], r[512];
  snprintf(o, sizeof o, "data.output=%s", path);
  snprintf(r, sizeof r, "data.reviews=%s", reviews);
  const char *sets[] = {"data.format=amazon", o, r};
  assert_int_equal(dt_config_build(NULL, sets, 3, &cfg), DT_OK);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "data.format was \"synthetic\""));
  assert_int_equal(dt_dataset_ensure_prepared(&cfg), DT_OK);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 1);
  dt_dataset ds;
  assert_int_equal(dt_dataset_load(path, &ds), DT_OK);
  assert_int_equal(ds.n_users, 6);
  assert_int_equal(ds.n_items, 6);
  assert_int_equal(ds.vocab_size, 1); /* summaries "item N": only "item" is long enough and frequent */
  dt_dataset_free(&ds);
  f = fopen(reviews, "a");
  fputs("{\"reviewerID\": \"U9\", \"asin\": \"I1\", \"overall\": 1.0, \"unixReviewTime\": 5}\n", f);
  fclose(f);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "changed since it was prepared"));
  unlink(reviews);
  assert_int_equal(dt_dataset_is_current(path, &cfg, why, sizeof why), 0);
  assert_non_null(strstr(why, "cannot open"));
  dt_config_free(&cfg);
  free(reviews);
  free(path);
}

static void prep_config_json_is_format_specific(void **state) {
  (void)state;
  dt_config cfg;
  const char *sets[] = {"data.format=delimited", "data.reviews=x.csv"};
  assert_int_equal(dt_config_build(NULL, sets, 2, &cfg), DT_OK);
  char *j = dt_prep_config_json(&cfg);
  assert_non_null(strstr(j, "\"data.columns\":\"user,item,timestamp\""));
  assert_non_null(strstr(j, "\"data.reviews\":\"x.csv\""));
  assert_null(strstr(j, "data.output"));
  assert_null(strstr(j, "data.synthetic"));
  assert_null(strstr(j, "data.meta"));
  free(j);
  dt_config_free(&cfg);
}

static void empty_kcore_result_is_a_data_error(void **state) {
  (void)state;
  char *path = tmp_path("empty.h5");
  dt_config cfg;
  synth_config(&cfg, path, "data.kcore=100000");
  dt_dataset ds;
  assert_int_equal(dt_prep_build(&cfg, &ds, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "lower data.kcore"));
  assert_false(dt_path_exists(path));
  dt_config_free(&cfg);
  free(path);
}

static void delimited_without_text_and_empty_valid_round_trip(void **state) {
  (void)state;
  char *csv = tmp_path("d.csv"), *path = tmp_path("d.h5");
  FILE *f = fopen(csv, "w");
  for (int u = 0; u < 8; u++)
    for (int i = 0; i < 8; i++) fprintf(f, "u%d,i%d,%d\n", u, i, 100 * u + 13 * i);
  fclose(f);
  char r[512], o[512];
  snprintf(r, sizeof r, "data.reviews=%s", csv);
  snprintf(o, sizeof o, "data.output=%s", path);
  const char *sets[] = {"data.format=delimited", r, o, "data.valid_frac=0", "data.train_frac=0.9"};
  dt_config cfg;
  assert_int_equal(dt_config_build(NULL, sets, 5, &cfg), DT_OK);
  assert_int_equal(dt_prep_run(&cfg, NULL), DT_OK);
  dt_dataset ds;
  assert_int_equal(dt_dataset_load(path, &ds), DT_OK);
  assert_int_equal(ds.vocab_size, 0);
  assert_int_equal(ds.tfidf_indptr[ds.n_items], 0);
  assert_int_equal(ds.valid.n, 0);
  assert_int_equal(ds.train.n, 57);
  assert_int_equal(dt_dataset_load_ids(&ds), DT_OK);
  assert_string_equal(ds.user_ids[7], "u7");
  dt_dataset_free(&ds);
  dt_config_free(&cfg);
  free(csv);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(write_then_load_round_trip),
      cmocka_unit_test(truncated_file_is_refused),
      cmocka_unit_test(other_format_version_is_refused),
      cmocka_unit_test(is_current_follows_config_and_sources),
      cmocka_unit_test(prep_config_json_is_format_specific),
      cmocka_unit_test(empty_kcore_result_is_a_data_error),
      cmocka_unit_test(delimited_without_text_and_empty_valid_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
