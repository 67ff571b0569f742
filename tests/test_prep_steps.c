/* Prep steps on small hand-made inputs with known answers (MODEL.md
 * section 2): dedup, k-core, bytewise ids, ordering with timestamp ties,
 * temporal split and its drops, leave_one_out, tokens, TF-IDF to 1e-6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/prep.h"
#include "dtrain/readers.h"

typedef struct {
  const char *user, *item;
  int64_t ts;
} row;

static void fill(dt_interactions *x, const row *rows, int n) {
  memset(x, 0, sizeof *x);
  for (int r = 0; r < n; r++)
    assert_int_equal(dt_interactions_add(x, rows[r].user, strlen(rows[r].user), rows[r].item, strlen(rows[r].item),
                                         rows[r].ts, NULL, 0),
                     DT_OK);
}

static int has_row(const dt_interactions *x, const char *u, const char *i, int64_t ts) {
  for (int64_t r = 0; r < x->n; r++)
    if (!strcmp(dt_strtab_get(&x->users, x->user[r]), u) && !strcmp(dt_strtab_get(&x->items, x->item[r]), i) &&
        x->ts[r] == ts)
      return 1;
  return 0;
}

static void dedup_keeps_the_earliest(void **state) {
  (void)state;
  const row rows[] = {{"u1", "a", 300}, {"u1", "a", 100}, {"u1", "a", 200}, {"u2", "a", 50},
                      {"u1", "b", 10},  {"u2", "a", 50},  {"u1", "a", 100}};
  dt_interactions x;
  fill(&x, rows, 7);
  dt_prep_dedup(&x);
  assert_int_equal(x.n, 3);
  assert_true(has_row(&x, "u1", "a", 100));
  assert_true(has_row(&x, "u2", "a", 50));
  assert_true(has_row(&x, "u1", "b", 10));
  /* kept rows stay in read order: (u1,a,100) was read second, before (u2,a,50) */
  assert_int_equal(x.ts[0], 100);
  assert_int_equal(x.ts[1], 50);
  assert_int_equal(x.ts[2], 10);
  dt_interactions_free(&x);
}

static void dedup_tie_keeps_the_row_read_first(void **state) {
  (void)state;
  dt_interactions x = {0};
  x.has_text = 1;
  assert_int_equal(dt_interactions_add(&x, "u", 1, "i", 1, 5, "first", 5), DT_OK);
  assert_int_equal(dt_interactions_add(&x, "u", 1, "i", 1, 5, "second", 6), DT_OK);
  dt_prep_dedup(&x);
  assert_int_equal(x.n, 1);
  assert_string_equal(x.text + x.text_off[0], "first");
  dt_interactions_free(&x);
}

static void kcore_needs_three_passes(void **state) {
  (void)state;
  /* k = 2. Pass 1 removes u3 (one row); that leaves i3 with one row (u4),
   * removed in pass 2; that leaves u4 with one row, removed in pass 3. */
  const row rows[] = {{"u1", "i1", 1}, {"u1", "i2", 2}, {"u2", "i1", 3}, {"u2", "i2", 4},
                      {"u3", "i3", 5}, {"u4", "i3", 6}, {"u4", "i1", 7}};
  dt_interactions x;
  fill(&x, rows, 7);
  int64_t passes = -1;
  dt_prep_kcore(&x, 2, &passes);
  assert_int_equal(passes, 3);
  assert_int_equal(x.n, 4);
  assert_true(has_row(&x, "u1", "i1", 1));
  assert_true(has_row(&x, "u2", "i2", 4));
  assert_false(has_row(&x, "u4", "i1", 7));
  /* already a 2-core: no pass removes anything */
  dt_prep_kcore(&x, 2, &passes);
  assert_int_equal(passes, 0);
  assert_int_equal(x.n, 4);
  /* k = 3 empties it */
  dt_prep_kcore(&x, 3, &passes);
  assert_int_equal(x.n, 0);
  dt_interactions_free(&x);
}

static void ids_are_sorted_bytewise(void **state) {
  (void)state;
  /* bytewise: "A1" < "B" < "a" < "ab" < "b" < "\xc3\xa9" (UTF-8 e-acute) */
  const row rows[] = {{"b", "z9", 1},  {"\xc3\xa9", "Z", 2}, {"a", "z10", 3},
                      {"ab", "z9", 4}, {"B", "Z", 5},        {"A1", "z10", 6}};
  dt_interactions x;
  fill(&x, rows, 6);
  dt_dataset ds = {0};
  int32_t *raw = NULL;
  dt_prep_index(&x, &ds, &raw);
  const char *users[] = {"A1", "B", "a", "ab", "b", "\xc3\xa9"};
  const char *items[] = {"Z", "z10", "z9"};
  assert_int_equal(ds.n_users, 6);
  assert_int_equal(ds.n_items, 3);
  for (int i = 0; i < 6; i++) assert_string_equal(ds.user_ids[i], users[i]);
  for (int i = 0; i < 3; i++) assert_string_equal(ds.item_ids[i], items[i]);
  /* rows remapped: row 0 was ("b", "z9") */
  assert_int_equal(x.user[0], 4);
  assert_int_equal(x.item[0], 2);
  assert_int_equal(x.user[1], 5);
  assert_int_equal(x.item[1], 0);
  /* raw item index of new item 0 ("Z") is 1 (second item seen) */
  assert_int_equal(raw[0], 1);
  assert_int_equal(raw[1], 2);
  assert_int_equal(raw[2], 0);
  free(raw);
  dt_interactions_free(&x);
  dt_dataset_free(&ds);
}

/* Ten rows with timestamp ties. Users u0 < u1 < u2, items a < b < c < d. */
static const row g_split_rows[] = {
    {"u1", "a", 100}, {"u0", "b", 100}, {"u0", "a", 100}, /* tie at 100: order u0-a, u0-b, u1-a */
    {"u2", "c", 150}, {"u1", "b", 200}, {"u0", "c", 200}, /* tie at 200: u0-c, u1-b */
    {"u1", "c", 300},                                     /* g = 6, the last train row (floor(0.7*10) = 7) */
    {"u2", "a", 400},                                     /* g = 7: valid (floor(0.15*10) = 1) */
    {"u0", "d", 500}, {"u2", "b", 500},                   /* g = 8, 9: test */
};

static void prepare(dt_dataset *ds, int loo, const row *rows, int n) {
  dt_interactions x;
  fill(&x, rows, n);
  memset(ds, 0, sizeof *ds);
  dt_prep_index(&x, ds, NULL);
  assert_int_equal(dt_prep_split(&x, loo, 0.70, 0.15, ds), DT_OK);
  dt_interactions_free(&x);
}

static void temporal_split_orders_ties_by_user_then_item(void **state) {
  (void)state;
  dt_dataset ds;
  prepare(&ds, 0, g_split_rows, 10);
  /* global order: (100,u0,a) (100,u0,b) (100,u1,a) (150,u2,c) (200,u0,c)
   * (200,u1,b) (300,u1,c) | (400,u2,a) | (500,u0,d) (500,u2,b) */
  assert_int_equal(ds.train.n, 7);
  assert_int_equal(ds.valid.n, 1);
  assert_int_equal(ds.test.n, 2);
  int32_t tu[] = {0, 0, 1, 2, 0, 1, 1}, ti[] = {0, 1, 0, 2, 2, 1, 2};
  int32_t tp[] = {0, 1, 0, 0, 2, 1, 2};
  for (int j = 0; j < 7; j++) {
    assert_int_equal(ds.train.user[j], tu[j]);
    assert_int_equal(ds.train.item[j], ti[j]);
    assert_int_equal(ds.train.pos[j], tp[j]);
  }
  assert_int_equal(ds.valid.user[0], 2);
  assert_int_equal(ds.valid.item[0], 0);
  assert_int_equal(ds.valid.pos[0], 1);
  assert_int_equal(ds.test.user[0], 0);
  assert_int_equal(ds.test.item[0], 3);
  assert_int_equal(ds.test.user[1], 2);
  /* per-user lists: u0 = a b c | d, train 3, valid 0 */
  assert_int_equal(ds.user_ptr[1] - ds.user_ptr[0], 4);
  assert_int_equal(ds.user_n_train[0], 3);
  assert_int_equal(ds.user_n_valid[0], 0);
  assert_int_equal(ds.user_items[ds.user_ptr[0] + 3], 3);
  assert_int_equal(ds.user_ts[ds.user_ptr[0] + 3], 500);
  assert_int_equal(ds.user_n_train[2], 1);
  assert_int_equal(ds.user_n_valid[2], 1);
  assert_int_equal(ds.summary.dropped_valid, 0);
  assert_int_equal(ds.summary.dropped_test, 0);
  assert_int_equal(ds.summary.eval_users_valid, 1);
  assert_int_equal(ds.summary.eval_users_test, 2);
  assert_string_equal(ds.split, "temporal");
  dt_dataset_free(&ds);
}

static void temporal_split_drops_heldout_rows_of_users_without_train(void **state) {
  (void)state;
  /* u9 only appears after the boundary: its valid and test rows are dropped */
  row rows[12];
  memcpy(rows, g_split_rows, sizeof g_split_rows);
  rows[10] = (row){"u9", "a", 390};
  rows[11] = (row){"u9", "b", 600};
  /* N = 12: train floor(8.4) = 8 rows, valid floor(1.8) = 1, test 3 */
  dt_dataset ds;
  prepare(&ds, 0, rows, 12);
  assert_int_equal(ds.train.n, 8);
  /* g = 7 is (390, u9, a): train, so u9 has a train row and nothing is dropped */
  assert_int_equal(ds.summary.dropped_valid + ds.summary.dropped_test, 0);
  dt_dataset_free(&ds);
  /* now u9's first row is late: (400,u2,a) is train, (450,u9,a) valid, test: (500..), (600,u9,b) */
  rows[10] = (row){"u9", "a", 450};
  prepare(&ds, 0, rows, 12);
  assert_int_equal(ds.summary.dropped_valid, 1);
  assert_int_equal(ds.summary.dropped_test, 1);
  assert_int_equal(ds.train.n, 8);
  assert_int_equal(ds.valid.n, 0);
  assert_int_equal(ds.test.n, 2);
  assert_int_equal(ds.n_interactions, 10);
  int64_t u9 = 3;
  assert_int_equal(ds.user_ptr[u9 + 1] - ds.user_ptr[u9], 0); /* kept in the id map, empty list */
  assert_int_equal(ds.n_users, 4);
  dt_dataset_free(&ds);
}

static void leave_one_out_split(void **state) {
  (void)state;
  row rows[12];
  memcpy(rows, g_split_rows, sizeof g_split_rows);
  rows[10] = (row){"u9", "a", 1};
  rows[11] = (row){"u9", "b", 2};
  dt_dataset ds;
  prepare(&ds, 1, rows, 12);
  /* u0: a b c d -> train a b, valid c, test d; u1: a b c -> a | b | c;
   * u2: c a b -> c | a | b; u9 (2 rows) keeps both in train */
  assert_int_equal(ds.train.n, 2 + 1 + 1 + 2);
  assert_int_equal(ds.valid.n, 3);
  assert_int_equal(ds.test.n, 3);
  assert_int_equal(ds.user_n_train[0], 2);
  assert_int_equal(ds.user_n_valid[0], 1);
  assert_int_equal(ds.user_items[ds.user_ptr[0] + 3], 3); /* u0's test item: d */
  assert_int_equal(ds.user_n_train[3], 2);
  assert_int_equal(ds.user_n_valid[3], 0);
  assert_int_equal(ds.summary.eval_users_test, 3);
  assert_int_equal(ds.summary.dropped_valid + ds.summary.dropped_test, 0);
  assert_string_equal(ds.split, "leave_one_out");
  dt_dataset_free(&ds);
}

typedef struct {
  char tok[8][16];
  int n;
} tokens;

static void collect(const char *t, size_t len, void *ctx) {
  tokens *k = ctx;
  assert_true(k->n < 8 && len < 16);
  memcpy(k->tok[k->n], t, len);
  k->tok[k->n][len] = '\0';
  k->n++;
}

static void tokens_are_lowercased_ascii_alnum_runs(void **state) {
  (void)state;
  tokens k = {0};
  dt_prep_tokenize("Hi! A x2 \xc3\xa9t\xc3\xa9 USB-C 4K_tv", collect, &k);
  const char *want[] = {"hi", "x2", "usb", "4k", "tv"}; /* "A", "t", "C" too short; bytes >= 0x80 split */
  assert_int_equal(k.n, 5);
  for (int i = 0; i < 5; i++) assert_string_equal(k.tok[i], want[i]);
}

static void tfidf_values(void **state) {
  (void)state;
  char *docs[] = {"Red apple, red!", "apple banana x", "Banana RED 42 a1", "", "red"};
  dt_dataset ds = {0};
  dt_prep_tfidf(docs, 5, 5000, 2, &ds);
  /* df: red 3, apple 2, banana 2, 42 1, a1 1; N = 5; columns bytewise */
  assert_int_equal(ds.vocab_size, 3);
  assert_string_equal(ds.vocab[0], "apple");
  assert_string_equal(ds.vocab[1], "banana");
  assert_string_equal(ds.vocab[2], "red");
  int64_t want_ptr[] = {0, 2, 4, 6, 6, 7};
  for (int i = 0; i < 6; i++) assert_int_equal(ds.tfidf_indptr[i], want_ptr[i]);
  int32_t want_col[] = {0, 2, 0, 1, 1, 2, 2};
  /* reference values computed independently (Python, double precision) */
  double want_val[] = {0.515971430, 0.856605792, 0.707106781, 0.707106781, 0.769447073, 0.638710578, 1.0};
  for (int k = 0; k < 7; k++) {
    assert_int_equal(ds.tfidf_indices[k], want_col[k]);
    assert_float_equal(ds.tfidf_values[k], want_val[k], 1e-6);
  }
  assert_int_equal(ds.summary.vocab_size, 3);
  assert_int_equal(ds.summary.tfidf_nnz, 7);
  dt_dataset_free(&ds);
}

static void tfidf_vocabulary_cut_breaks_ties_bytewise(void **state) {
  (void)state;
  char *docs[] = {"Red apple, red!", "apple banana x", "Banana RED 42 a1", "", "red"};
  dt_dataset ds = {0};
  /* two terms: red (df 3), then apple and banana tie at df 2: apple wins */
  dt_prep_tfidf(docs, 5, 2, 2, &ds);
  assert_int_equal(ds.vocab_size, 2);
  assert_string_equal(ds.vocab[0], "apple");
  assert_string_equal(ds.vocab[1], "red");
  /* doc 1 keeps only apple, doc 2 only red: unit rows */
  assert_int_equal(ds.tfidf_indptr[2] - ds.tfidf_indptr[1], 1);
  assert_float_equal(ds.tfidf_values[ds.tfidf_indptr[1]], 1.0, 1e-6);
  assert_int_equal(ds.tfidf_indices[ds.tfidf_indptr[2]], 1);
  assert_float_equal(ds.tfidf_values[ds.tfidf_indptr[0]], 0.515971430, 1e-6);
  dt_dataset_free(&ds);
  /* min_df 1 lets 42 and a1 in */
  dt_prep_tfidf(docs, 5, 5000, 1, &ds);
  assert_int_equal(ds.vocab_size, 5);
  assert_string_equal(ds.vocab[0], "42");
  assert_string_equal(ds.vocab[1], "a1");
  dt_dataset_free(&ds);
}

static void summary_text_joins_review_summaries(void **state) {
  (void)state;
  dt_interactions x = {0};
  x.has_text = 1;
  assert_int_equal(dt_interactions_add(&x, "u", 1, "b", 1, 1, "nice card", 9), DT_OK);
  assert_int_equal(dt_interactions_add(&x, "u", 1, "a", 1, 2, NULL, 0), DT_OK);
  assert_int_equal(dt_interactions_add(&x, "v", 1, "b", 1, 3, "Five Stars", 10), DT_OK);
  dt_dataset ds = {0};
  dt_prep_index(&x, &ds, NULL);
  char **t = dt_prep_summary_text(&x, ds.n_items);
  assert_string_equal(t[0], ""); /* a */
  assert_string_equal(t[1], "nice card Five Stars");
  free(t[0]);
  free(t[1]);
  free(t);
  dt_interactions_free(&x);
  dt_dataset_free(&ds);
}

static void counts_print_with_thousands_separators(void **state) {
  (void)state;
  char b[32];
  dt_format_count(2972, b, sizeof b);
  assert_string_equal(b, "2,972");
  dt_format_count(1234567, b, sizeof b);
  assert_string_equal(b, "1,234,567");
  dt_format_count(846, b, sizeof b);
  assert_string_equal(b, "846");
  dt_format_count(-1000, b, sizeof b);
  assert_string_equal(b, "-1,000");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dedup_keeps_the_earliest),
      cmocka_unit_test(dedup_tie_keeps_the_row_read_first),
      cmocka_unit_test(kcore_needs_three_passes),
      cmocka_unit_test(ids_are_sorted_bytewise),
      cmocka_unit_test(temporal_split_orders_ties_by_user_then_item),
      cmocka_unit_test(temporal_split_drops_heldout_rows_of_users_without_train),
      cmocka_unit_test(leave_one_out_split),
      cmocka_unit_test(tokens_are_lowercased_ascii_alnum_runs),
      cmocka_unit_test(tfidf_values),
      cmocka_unit_test(tfidf_vocabulary_cut_breaks_ties_bytewise),
      cmocka_unit_test(summary_text_joins_review_summaries),
      cmocka_unit_test(counts_print_with_thousands_separators),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
