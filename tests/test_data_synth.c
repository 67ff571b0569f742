/* The synthetic generator: seed-reproducible, exact size, the JSON path
 * prepares the same data set as the direct path, and the log carries the
 * signals the model is meant to learn (user preferences + text, sequences,
 * time of day), measured with simple baselines against popularity on the
 * sampled 1+99 protocol of MODEL.md section 3. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/synth_world.h"
#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/rng.h"
#include "dtrain/synth.h"

static dt_synth_params small(uint64_t seed) {
  dt_synth_params p = {2000, 500, 40000, 6, 4, 5, 365, seed};
  return p;
}

static void reproducible_and_exact_size(void **state) {
  (void)state;
  dt_synth_params p = small(7);
  dt_interactions a = {0}, b = {0}, c = {0};
  char **ta = NULL, **tb = NULL;
  assert_int_equal(dt_synth_generate(&p, 0.0, &a, &ta), DT_OK);
  assert_int_equal(dt_synth_generate(&p, 0.0, &b, &tb), DT_OK);
  assert_int_equal(a.read, 40000);
  assert_int_equal(a.n, 40000);
  assert_int_equal(a.users.n, 2000);
  assert_int_equal(a.items.n, 500);
  assert_memory_equal(a.user, b.user, 40000 * sizeof(int32_t));
  assert_memory_equal(a.item, b.item, 40000 * sizeof(int32_t));
  assert_memory_equal(a.ts, b.ts, 40000 * sizeof(int64_t));
  for (int i = 0; i < 500; i++) assert_string_equal(ta[i], tb[i]);
  /* ids look like Amazon's and are unique (the tables would have merged them) */
  assert_int_equal(strlen(dt_strtab_get(&a.users, 0)), 14);
  assert_int_equal(dt_strtab_get(&a.users, 0)[0], 'A');
  assert_int_equal(strlen(dt_strtab_get(&a.items, 0)), 10);
  assert_memory_equal(dt_strtab_get(&a.items, 0), "B0", 2);
  /* another seed, another log */
  p.seed = 8;
  assert_int_equal(dt_synth_generate(&p, 0.0, &c, NULL), DT_OK);
  assert_true(memcmp(a.item, c.item, 40000 * sizeof(int32_t)) != 0);
  /* the rating filter keeps the rows rated >= 4 (about 77%) */
  dt_interactions d = {0};
  p.seed = 7;
  assert_int_equal(dt_synth_generate(&p, 4.0, &d, NULL), DT_OK);
  assert_int_equal(d.read, 40000);
  assert_true(d.n > 28000 && d.n < 33000);
  for (int i = 0; i < 500; i++) {
    free(ta[i]);
    free(tb[i]);
  }
  free(ta);
  free(tb);
  dt_interactions_free(&a);
  dt_interactions_free(&b);
  dt_interactions_free(&c);
  dt_interactions_free(&d);
}

static void json_path_prepares_the_same_data_set(void **state) {
  (void)state;
  char dir[] = "/tmp/dtrain_test_synthXXXXXX";
  assert_non_null(mkdtemp(dir));
  char *reviews = dt_path_join(dir, "reviews.json.gz"), *meta = dt_path_join(dir, "meta.json");
  const char *common[] = {"data.synthetic.users=1500",         "data.synthetic.items=400",
                          "data.synthetic.interactions=30000", "data.synthetic.categories=5",
                          "data.synthetic.subcategories=4",    "data.synthetic.seed=3"};
  dt_config cs, ca;
  const char *s1[8], *s2[9];
  for (int k = 0; k < 6; k++) s1[k] = s2[k] = common[k];
  s1[6] = "data.format=synthetic";
  assert_int_equal(dt_config_build(NULL, s1, 7, &cs), DT_OK);
  dt_synth_params p;
  dt_synth_params_from_config(&cs, &p);
  assert_int_equal(dt_synth_write_amazon(&p, reviews, meta), DT_OK);
  char r[600], m[600];
  snprintf(r, sizeof r, "data.reviews=%s", reviews);
  snprintf(m, sizeof m, "data.meta=%s", meta);
  s2[6] = "data.format=amazon";
  s2[7] = r;
  s2[8] = m;
  assert_int_equal(dt_config_build(NULL, s2, 9, &ca), DT_OK);
  dt_dataset a, b;
  assert_int_equal(dt_prep_build(&cs, &a, NULL), DT_OK);
  assert_int_equal(dt_prep_build(&ca, &b, NULL), DT_OK);
  assert_int_equal(a.summary.read, 30000);
  assert_memory_equal(&a.summary, &b.summary, sizeof a.summary);
  assert_int_equal(a.n_users, b.n_users);
  assert_int_equal(a.n_items, b.n_items);
  for (int64_t u = 0; u < a.n_users; u++) assert_string_equal(a.user_ids[u], b.user_ids[u]);
  for (int64_t i = 0; i < a.n_items; i++) assert_string_equal(a.item_ids[i], b.item_ids[i]);
  assert_memory_equal(a.user_items, b.user_items, (size_t)a.n_interactions * sizeof(int32_t));
  assert_memory_equal(a.user_ts, b.user_ts, (size_t)a.n_interactions * sizeof(int64_t));
  int64_t nnz = a.tfidf_indptr[a.n_items];
  assert_int_equal(nnz, b.tfidf_indptr[b.n_items]);
  assert_memory_equal(a.tfidf_indices, b.tfidf_indices, (size_t)nnz * sizeof(int32_t));
  assert_memory_equal(a.tfidf_values, b.tfidf_values, (size_t)nnz * sizeof(float));
  dt_dataset_free(&a);
  dt_dataset_free(&b);
  dt_config_free(&cs);
  dt_config_free(&ca);
  unlink(reviews);
  unlink(meta);
  rmdir(dir);
  free(reviews);
  free(meta);
}

/* ---- signal: baselines on the sampled 1+99 protocol ---------------------------------- */

typedef struct {
  const dt_dataset *ds;
  double *pop;        /* train counts */
  float *profile;     /* [vocab] the user's summed TF-IDF rows */
  int64_t *trans_ptr; /* item -> next-item counts (train sequences), dense [n_items^2] */
  int32_t *trans;
} baselines;

static double content_score(const baselines *b, int32_t i) {
  const dt_dataset *ds = b->ds;
  double s = 0;
  for (int64_t k = ds->tfidf_indptr[i]; k < ds->tfidf_indptr[i + 1]; k++)
    s += (double)ds->tfidf_values[k] * b->profile[ds->tfidf_indices[k]];
  return s;
}

/* HR@10 of three scorers over test users: popularity, content profile, last-item transitions */
static void hit_rates(const dt_dataset *ds, double hr[3], int64_t *n_users) {
  baselines b = {ds, NULL, NULL, NULL, NULL};
  int64_t I = ds->n_items;
  b.pop = calloc((size_t)I, sizeof(double));
  b.profile = calloc((size_t)ds->vocab_size, sizeof(float));
  b.trans = calloc((size_t)(I * I), sizeof(int32_t));
  for (int64_t j = 0; j < ds->train.n; j++) b.pop[ds->train.item[j]] += 1;
  for (int64_t u = 0; u < ds->n_users; u++)
    for (int64_t p = 1; p < ds->user_n_train[u]; p++)
      b.trans[(int64_t)ds->user_items[ds->user_ptr[u] + p - 1] * I + ds->user_items[ds->user_ptr[u] + p]]++;
  unsigned char *seen = calloc((size_t)I, 1);
  int64_t hits[3] = {0, 0, 0}, users = 0;
  for (int64_t u = 0; u < ds->n_users; u++) {
    int64_t len = ds->user_ptr[u + 1] - ds->user_ptr[u], first_test = ds->user_n_train[u] + ds->user_n_valid[u];
    if (first_test >= len || ds->user_n_train[u] == 0) continue;
    const int32_t *items = ds->user_items + ds->user_ptr[u];
    memset(seen, 0, (size_t)I);
    for (int64_t p = 0; p < len; p++) seen[items[p]] = 1;
    if (len >= I - 100) continue;
    int32_t cand[100];
    cand[0] = items[first_test];
    for (uint32_t k = 1, draw = 0; k < 100; draw++) { /* 99 negatives the user never interacted with */
      dt_rand4 r = dt_philox(2024, DT_RNG_TEST, (uint32_t)u, draw, 0, 0);
      int32_t i = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)I);
      if (seen[i]) continue;
      seen[i] = 2;
      cand[k++] = i;
    }
    memset(b.profile, 0, (size_t)ds->vocab_size * sizeof(float));
    for (int64_t p = 0; p < ds->user_n_train[u]; p++)
      for (int64_t k = ds->tfidf_indptr[items[p]]; k < ds->tfidf_indptr[items[p] + 1]; k++)
        b.profile[ds->tfidf_indices[k]] += ds->tfidf_values[k];
    int32_t last = items[first_test - 1]; /* the item just before the test one */
    for (int m = 0; m < 3; m++) {
      double sc[100];
      for (int k = 0; k < 100; k++) {
        double pop = b.pop[cand[k]] / (double)ds->train.n; /* a small tie-breaker for the others */
        sc[k] = m == 0   ? pop
                : m == 1 ? content_score(&b, cand[k]) + 1e-3 * pop
                         : (double)b.trans[(int64_t)last * I + cand[k]] + pop;
      }
      int rank = 1;
      for (int k = 1; k < 100; k++) rank += sc[k] >= sc[0];
      hits[m] += rank <= 10;
    }
    users++;
  }
  for (int m = 0; m < 3; m++) hr[m] = users ? (double)hits[m] / (double)users : 0;
  *n_users = users;
  free(seen);
  free(b.pop);
  free(b.profile);
  free(b.trans);
}

static void log_carries_preference_text_and_sequence_signal(void **state) {
  (void)state;
  /* the quickstart's shape at a fifth of its size */
  const char *sets[] = {"data.format=synthetic", "data.synthetic.users=4000", "data.synthetic.items=1000",
                        "data.synthetic.interactions=80000"};
  dt_config cfg;
  assert_int_equal(dt_config_build(NULL, sets, 4, &cfg), DT_OK);
  dt_dataset ds;
  assert_int_equal(dt_prep_build(&cfg, &ds, NULL), DT_OK);
  double hr[3];
  int64_t users;
  hit_rates(&ds, hr, &users);
  printf("test users %lld: HR@10 popularity %.3f, content profile %.3f, last-item transitions %.3f\n", (long long)users,
         hr[0], hr[1], hr[2]);
  assert_true(users > 1000);
  assert_true(hr[1] > hr[0] + 0.10); /* preferences + text */
  assert_true(hr[2] > hr[0] + 0.05); /* sequences */
  dt_dataset_free(&ds);
  dt_config_free(&cfg);
}

/* ---- time of day ------------------------------------------------------------------------ */

typedef struct {
  const synth_world *w;
  int64_t work[2], leisure[2]; /* [in weekday working hours, other] per daypart kind */
  int64_t whole_days, n;
} hour_ctx;

static int count_hours(void *ctx, int64_t user, int64_t k, int64_t item, int64_t ts, int rating) {
  (void)user;
  (void)k;
  (void)rating;
  hour_ctx *h = ctx;
  int64_t cat = h->w->item_group[item] / h->w->S;
  double hour = (double)(ts % 86400) / 3600.0;
  int dow = (int)((ts / 86400 + 3) % 7);
  int office = dow < 5 && hour >= 9 && hour < 17;
  if (cat % 3 == 0) h->work[office ? 0 : 1]++;
  if (cat % 3 == 1) h->leisure[office ? 0 : 1]++;
  h->whole_days += ts % 86400 == 0;
  h->n++;
  return DT_OK;
}

static void time_of_day_carries_signal(void **state) {
  (void)state;
  dt_synth_params p = small(11);
  synth_world w;
  assert_int_equal(synth_world_build(&p, &w), DT_OK);
  int64_t *n = synth_activity(&w);
  hour_ctx h = {&w, {0, 0}, {0, 0}, 0, 0};
  for (int64_t u = 0; u < p.users; u++) assert_int_equal(synth_user_events(&w, u, n[u], count_hours, &h), DT_OK);
  double work = (double)h.work[0] / (double)(h.work[0] + h.work[1]);
  double leisure = (double)h.leisure[0] / (double)(h.leisure[0] + h.leisure[1]);
  printf("share of events in weekday office hours: work-hour categories %.3f, evening/weekend categories %.3f\n", work,
         leisure);
  assert_int_equal(h.n, p.interactions);
  assert_true(work > leisure + 0.10);
  assert_true(h.whole_days < h.n / 1000); /* seconds, not whole days */
  free(n);
  synth_world_free(&w);
}

int main(void) {
  dt_log_set_level(DT_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reproducible_and_exact_size),
      cmocka_unit_test(json_path_prepares_the_same_data_set),
      cmocka_unit_test(log_carries_preference_text_and_sequence_signal),
      cmocka_unit_test(time_of_day_carries_signal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
