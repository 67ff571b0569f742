/* The sampled protocol's negatives (MODEL.md section 3): eval.negatives
 * DISTINCT items the user never interacted with in any split, all of them
 * when fewer remain, drawn by (eval seed, user) only: the same candidates
 * whether a user is evaluated alone or among others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/backend.h"
#include "dtrain/batch.h"
#include "dtrain/model.h"
#include "test_model_util.h"

typedef struct {
  dt_dataset ds;
  dt_config cfg;
  dt_backend *be;
  dt_model *m;
  dt_batch_builder *bb;
} fixture;

static void setup_case(fixture *f, int n_users, int n_items, int per_user) {
  memset(f, 0, sizeof *f);
  tiny_dataset(&f->ds, n_users, n_items, per_user, 9, 4, 5);
  assert_int_equal(small_config(&f->cfg, "v3", "full", "prefix", 4), 0);
  assert_int_equal(dt_backend_cpu_create(1, &f->be), 0);
  assert_int_equal(dt_model_create(&f->cfg, f->be, f->ds.n_users, f->ds.n_items, f->ds.vocab_size, f->ds.tfidf_indptr,
                                   f->ds.tfidf_indices, f->ds.tfidf_values, &f->m),
                   0);
  assert_int_equal(dt_model_init(f->m, 1234), 0);
  assert_int_equal(dt_batch_builder_create(f->m, &f->ds, f->be, &f->bb), 0);
}

static void teardown_case(fixture *f) {
  dt_batch_builder_free(f->bb);
  dt_model_free(f->m);
  f->be->destroy(f->be);
  dt_config_free(&f->cfg);
  tiny_dataset_free(&f->ds);
}

static int user_has(const dt_dataset *ds, int32_t u, int32_t item) {
  for (int64_t k = ds->user_ptr[u]; k < ds->user_ptr[u + 1]; k++)
    if (ds->user_items[k] == item) return 1;
  return 0;
}

/* Checks the candidate row of example e: the positive first, then `want`
 * distinct unseen negatives, then padding (the positive again). */
static void check_row(const fixture *f, const int32_t *cand, int c, int64_t e, int32_t u, int32_t pos, int want) {
  const dt_dataset *ds = &f->ds;
  const int32_t *row = cand + e * c;
  assert_int_equal(row[0], ds->user_items[ds->user_ptr[u] + pos]);
  for (int j = 1; j <= want; j++) {
    if (row[j] < 0 || row[j] >= ds->n_items) fail_msg("user %d negative %d: item %d out of range", u, j, row[j]);
    if (user_has(ds, u, row[j])) fail_msg("user %d negative %d: item %d is one of the user's items", u, j, row[j]);
    for (int k = 1; k < j; k++)
      if (row[k] == row[j])
        fail_msg("user %d: negatives %d and %d are both item %d (drawn with replacement)", u, k, j, row[j]);
  }
  for (int j = want + 1; j < c; j++) assert_int_equal(row[j], row[0]);
}

/* 40 users with 14 of 60 items each: 46 unseen, 20 wanted. With
 * replacement, 20 draws from 46 repeat an item for most users. */
static void test_negatives_are_distinct_and_unseen(void **state) {
  fixture f;
  setup_case(&f, 40, 60, 14);
  const int n_neg = 20, c = 1 + n_neg;
  int32_t users[40], pos[40];
  for (int u = 0; u < 40; u++) {
    users[u] = u;
    pos[u] = f.ds.user_n_train[u];
  }
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 40, n_neg, 2024), 0);
  const int32_t *cand = dt_batch_host_candidates(f.bb);
  for (int e = 0; e < 40; e++) check_row(&f, cand, c, e, users[e], pos[e], n_neg);
  const int32_t *counts = dt_batch_host_negative_counts(f.bb);
  for (int e = 0; e < 40; e++) assert_int_equal(counts[e], n_neg);
  teardown_case(&f);
}

/* 30 items, 20 per user: 10 unseen, 25 wanted -> all 10, then padding. A
 * user who has every item gets none. */
static void test_fewer_unseen_items_than_negatives(void **state) {
  fixture f;
  setup_case(&f, 6, 30, 20);
  const int n_neg = 25, c = 1 + n_neg;
  int32_t users[6], pos[6];
  for (int u = 0; u < 6; u++) {
    users[u] = u;
    pos[u] = f.ds.user_n_train[u];
  }
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 6, n_neg, 7), 0);
  const int32_t *cand = dt_batch_host_candidates(f.bb);
  const int32_t *counts = dt_batch_host_negative_counts(f.bb);
  for (int e = 0; e < 6; e++) {
    assert_int_equal(counts[e], 10);
    check_row(&f, cand, c, e, users[e], pos[e], 10);
  }
  teardown_case(&f);
  setup_case(&f, 3, 12, 12); /* every user has all 12 items */
  for (int u = 0; u < 3; u++) {
    users[u] = u;
    pos[u] = f.ds.user_n_train[u];
  }
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 3, 5, 7), 0);
  counts = dt_batch_host_negative_counts(f.bb);
  cand = dt_batch_host_candidates(f.bb);
  for (int e = 0; e < 3; e++) {
    assert_int_equal(counts[e], 0);
    check_row(&f, cand, 6, e, users[e], pos[e], 0);
  }
  teardown_case(&f);
}

/* Just one more unseen item than wanted (the slow end of rejection
 * sampling), and every count in between: distinct, unseen, terminating. */
static void test_every_unseen_count(void **state) {
  fixture f;
  setup_case(&f, 5, 40, 20);
  int32_t users[5] = {0, 1, 2, 3, 4}, pos[5];
  for (int u = 0; u < 5; u++) pos[u] = f.ds.user_n_train[u];
  for (int n_neg = 1; n_neg <= 22; n_neg++) {
    assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 5, n_neg, 11), 0);
    const int32_t *cand = dt_batch_host_candidates(f.bb);
    const int32_t *counts = dt_batch_host_negative_counts(f.bb);
    for (int e = 0; e < 5; e++) {
      int want = n_neg < 20 ? n_neg : 20;
      assert_int_equal(counts[e], want);
      check_row(&f, cand, 1 + n_neg, e, users[e], pos[e], want);
    }
  }
  teardown_case(&f);
}

/* The draws are a function of (seed, user): a user alone, among others, in
 * another order, or at another held-out position gets the same negatives;
 * another seed gets others. */
static void test_draws_depend_on_seed_and_user_only(void **state) {
  fixture f;
  setup_case(&f, 12, 80, 10);
  const int n_neg = 30, c = 1 + n_neg;
  int32_t users[12], pos[12];
  for (int u = 0; u < 12; u++) {
    users[u] = u;
    pos[u] = f.ds.user_n_train[u];
  }
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 12, n_neg, 99), 0);
  int32_t together[12 * 31];
  memcpy(together, dt_batch_host_candidates(f.bb), sizeof together);
  for (int e = 0; e < 12; e++) {
    int32_t rev_users[2] = {users[11 - e], users[e]}, rev_pos[2] = {pos[11 - e], pos[e] + 1};
    assert_int_equal(dt_batch_build_eval(f.bb, rev_users, rev_pos, 2, n_neg, 99), 0);
    const int32_t *cand = dt_batch_host_candidates(f.bb);
    for (int j = 1; j < c; j++)
      if (cand[c + j] != together[e * c + j])
        fail_msg("user %d negative %d: %d in a batch of 2, %d in a batch of 12", e, j, cand[c + j],
                 together[e * c + j]);
  }
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 12, n_neg, 100), 0);
  const int32_t *other = dt_batch_host_candidates(f.bb);
  int same = 0;
  for (int e = 0; e < 12; e++)
    same += memcmp(other + e * c + 1, together + e * c + 1, (size_t)n_neg * sizeof(int32_t)) == 0;
  assert_true(same < 12);
  teardown_case(&f);
}

/* Uniform over the unseen items: over 2000 users of a 50-item catalogue
 * (40 unseen each), each item is drawn close to its expected count, both
 * by rejection (20 of 40 wanted) and by selection sampling (25 of 40). */
static void test_draws_are_uniform(void **state) {
  fixture f;
  setup_case(&f, 2000, 50, 10);
  int32_t *users = malloc(2000 * sizeof(int32_t)), *pos = malloc(2000 * sizeof(int32_t));
  for (int u = 0; u < 2000; u++) {
    users[u] = u;
    pos[u] = f.ds.user_n_train[u];
  }
  const int wanted[2] = {20, 25};
  for (int w = 0; w < 2; w++) {
    const int n_neg = wanted[w], c = 1 + n_neg;
    assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 2000, n_neg, 5), 0);
    const int32_t *cand = dt_batch_host_candidates(f.bb);
    double got[50] = {0}, want[50] = {0};
    for (int e = 0; e < 2000; e++) {
      for (int j = 1; j < c; j++) got[cand[e * c + j]] += 1;
      for (int i = 0; i < 50; i++)
        if (!user_has(&f.ds, e, i)) want[i] += (double)n_neg / 40.0;
    }
    for (int i = 0; i < 50; i++) /* about binomial: allow 6 standard deviations */
      if (fabs(got[i] - want[i]) > 6 * sqrt(want[i]) + 1)
        fail_msg("%d of 40: item %d drawn %.0f times, expected about %.0f", n_neg, i, got[i], want[i]);
  }
  free(users);
  free(pos);
  teardown_case(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_negatives_are_distinct_and_unseen),
      cmocka_unit_test(test_fewer_unseen_items_than_negatives),
      cmocka_unit_test(test_every_unseen_count),
      cmocka_unit_test(test_draws_depend_on_seed_and_user_only),
      cmocka_unit_test(test_draws_are_uniform),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
