/* The exact numbers on the real Amazon Gift Cards data (reviews +
 * metadata), and invariants of the prepared set. Skipped (exit 77) when the
 * shared data folder is absent. */
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

static char g_reviews[1024], g_meta[1024];

static void build(dt_dataset *ds, const char *meta, const char *split) {
  char r[1100], m[1100], s[64];
  snprintf(r, sizeof r, "data.reviews=%s", g_reviews);
  snprintf(m, sizeof m, "data.meta=%s", meta);
  snprintf(s, sizeof s, "data.split=%s", split);
  const char *sets[] = {"data.format=amazon", r, m, s};
  dt_config cfg;
  assert_int_equal(dt_config_build(NULL, sets, 4, &cfg), DT_OK);
  char *sources = NULL;
  assert_int_equal(dt_prep_build(&cfg, ds, &sources), DT_OK);
  assert_non_null(strstr(sources, "\"role\":\"reviews\""));
  free(sources);
  dt_config_free(&cfg);
}

static void gift_cards_numbers(void **state) {
  (void)state;
  dt_dataset ds;
  build(&ds, g_meta, "temporal");
  const dt_prep_summary *s = &ds.summary;
  assert_int_equal(s->read, 2972);
  assert_int_equal(s->after_dedup, 2965);
  assert_int_equal(s->n_users, 453);
  assert_int_equal(s->n_items, 147);
  assert_int_equal(s->n_interactions, 2941);
  assert_int_equal(s->train, 2058);
  assert_int_equal(s->valid, 232);
  assert_int_equal(s->test, 161);
  assert_int_equal(s->dropped_valid, 209);
  assert_int_equal(s->dropped_test, 281);
  assert_int_equal(s->vocab_size, 846);
  assert_int_equal(s->tfidf_nnz, 5723);
  assert_int_equal(s->skipped, 0);
  /* the printed form */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  dt_prep_summary_print(f, s, 5, "temporal");
  fclose(f);
  const char *want[] = {"2,972 read, 2,965 after dedup", "453 users, 147 items, 2,941 interactions",
                        "train 2,058, valid 232, test 161 (209 and 281 dropped)", "vocabulary 846 terms",
                        "TF-IDF nnz 5,723"};
  for (int k = 0; k < 5; k++)
    if (!strstr(buf, want[k])) {
      print_error("summary lacks '%s':\n%s", want[k], buf);
      fail();
    }
  free(buf);
  /* invariants: ids sorted bytewise, rows L2-normalised, lists in time order */
  for (int64_t u = 1; u < ds.n_users; u++) assert_true(strcmp(ds.user_ids[u - 1], ds.user_ids[u]) < 0);
  for (int64_t i = 1; i < ds.n_items; i++) assert_true(strcmp(ds.item_ids[i - 1], ds.item_ids[i]) < 0);
  for (int64_t i = 0; i < ds.n_items; i++) {
    double n2 = 0;
    for (int64_t k = ds.tfidf_indptr[i]; k < ds.tfidf_indptr[i + 1]; k++)
      n2 += (double)ds.tfidf_values[k] * ds.tfidf_values[k];
    if (ds.tfidf_indptr[i + 1] > ds.tfidf_indptr[i]) assert_float_equal(n2, 1.0, 1e-5);
  }
  for (int64_t u = 0; u < ds.n_users; u++)
    for (int64_t p = ds.user_ptr[u] + 1; p < ds.user_ptr[u + 1]; p++) assert_true(ds.user_ts[p - 1] <= ds.user_ts[p]);
  /* Amazon timestamps are whole days */
  for (int64_t j = 0; j < ds.train.n; j++) assert_int_equal(ds.train.ts[j] % 86400, 0);
  dt_dataset_free(&ds);
}

static void gift_cards_without_metadata_and_leave_one_out(void **state) {
  (void)state;
  dt_dataset ds;
  build(&ds, "", "leave_one_out");
  /* the same interactions; text from review summaries instead */
  assert_int_equal(ds.summary.n_interactions, 2941);
  assert_int_equal(ds.summary.dropped_valid + ds.summary.dropped_test, 0);
  assert_int_equal(ds.summary.train + ds.summary.valid + ds.summary.test, 2941);
  /* every user has >= 5 rows after the 5-core, so one valid and one test each */
  assert_int_equal(ds.summary.valid, 453);
  assert_int_equal(ds.summary.test, 453);
  assert_int_equal(ds.summary.eval_users_test, 453);
  assert_true(ds.summary.vocab_size > 10);
  int found = 0;
  for (int64_t v = 0; v < ds.vocab_size; v++) found |= !strcmp(ds.vocab[v], "stars"); /* "Five Stars" */
  assert_true(found);
  dt_dataset_free(&ds);
}

int main(void) {
  snprintf(g_reviews, sizeof g_reviews, "%s/amazon/Gift_Cards_5.json.gz", DTRAIN_SHARED_DATA);
  snprintf(g_meta, sizeof g_meta, "%s/amazon/meta_Gift_Cards.json.gz", DTRAIN_SHARED_DATA);
  if (!dt_path_exists(g_reviews) || !dt_path_exists(g_meta)) {
    printf("SKIP: %s or %s is absent (the shared real data folder); nothing to check here\n", g_reviews, g_meta);
    return 77;
  }
  dt_log_set_level(DT_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(gift_cards_numbers),
      cmocka_unit_test(gift_cards_without_metadata_and_leave_one_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
