/* Shards: N ranks see exactly the global batches one rank sees (the union
 * over ranks of each step's parts is the one-rank batch), in row and chunk
 * mode, every epoch; each unit once per epoch; epochs differ; bins respect
 * the cap; units are the file's rows. */
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
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/shard.h"
#include "dtrain/trainer.h"

enum { L = 5 };
static char g_path[128];

static int setup(void **state) {
  (void)state;
  dt_log_set_level(DT_LOG_ERROR);
  snprintf(g_path, sizeof g_path, "/tmp/dtrain_test_shard_%ld.h5", (long)getpid());
  char o[256];
  snprintf(o, sizeof o, "data.output=%s", g_path);
  const char *sets[] = {"data.format=synthetic",       "data.synthetic.users=400",
                        "data.synthetic.items=150",    "data.synthetic.interactions=9000",
                        "data.synthetic.categories=4", "data.synthetic.subcategories=3",
                        "data.history_len=5",          o};
  dt_config cfg;
  if (dt_config_build(NULL, sets, 8, &cfg) != DT_OK) return -1;
  int rc = dt_prep_run(&cfg, NULL);
  dt_config_free(&cfg);
  return rc == DT_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return unlink(g_path);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The global units of step s across all ranks, sorted; returns how many. */
static int64_t step_units(dt_shard *sh, dt_epoch_plan *pl, int n_ranks, int64_t s, int64_t *out) {
  int64_t n = 0;
  for (int r = 0; r < n_ranks; r++) {
    if (s >= pl[r].n_steps) continue; /* an empty part */
    for (int64_t k = pl[r].step_ptr[s]; k < pl[r].step_ptr[s + 1]; k++) out[n++] = sh[r].unit_index[pl[r].order[k]];
  }
  qsort(out, (size_t)n, sizeof(int64_t), cmp_i64);
  return n;
}

static void check_mode(int chunk_mode, int64_t B) {
  const uint64_t seed = 42;
  dt_shard one;
  assert_int_equal(dt_shard_load(g_path, 0, 1, chunk_mode, B, L, &one), DT_OK);
  int64_t total = one.n_units_total;
  assert_int_equal(one.n_units, total);
  int64_t *a = malloc((size_t)total * sizeof(int64_t)), *b = malloc((size_t)total * sizeof(int64_t));
  int64_t *first_epoch = malloc((size_t)total * sizeof(int64_t));
  for (int64_t epoch = 0; epoch < 2; epoch++) {
    dt_epoch_plan ref;
    assert_int_equal(dt_shard_plan_epoch(&one, seed, epoch, &ref), DT_OK);
    /* every unit exactly once per epoch */
    assert_int_equal(ref.step_ptr[ref.n_steps], total);
    memcpy(a, ref.order, (size_t)total * sizeof(int64_t));
    qsort(a, (size_t)total, sizeof(int64_t), cmp_i64);
    for (int64_t j = 0; j < total; j++) assert_int_equal(a[j], j);
    /* each lane's bin holds at most cap interactions, or one bigger unit */
    int64_t *load = calloc((size_t)one.n_lanes, sizeof(int64_t)), *cnt = calloc((size_t)one.n_lanes, sizeof(int64_t));
    for (int64_t s = 0; s < ref.n_steps; s++) {
      memset(load, 0, (size_t)one.n_lanes * sizeof(int64_t));
      memset(cnt, 0, (size_t)one.n_lanes * sizeof(int64_t));
      int64_t sum = 0;
      for (int64_t k = ref.step_ptr[s]; k < ref.step_ptr[s + 1]; k++) {
        int64_t u = ref.order[k], lane = one.unit_index[u] % one.n_lanes;
        load[lane] += one.unit_count[u];
        cnt[lane]++;
        sum += one.unit_count[u];
      }
      assert_int_equal(sum, ref.step_interactions[s]);
      for (int64_t l = 0; l < one.n_lanes; l++) assert_true(load[l] <= one.bin_cap || cnt[l] == 1);
      if (B >= L || !chunk_mode) assert_true(sum <= B);
    }
    free(load);
    free(cnt);
    /* epochs differ */
    if (epoch == 0)
      memcpy(first_epoch, ref.order, (size_t)total * sizeof(int64_t));
    else
      assert_true(memcmp(first_epoch, ref.order, (size_t)total * sizeof(int64_t)) != 0);
    for (int n_ranks = 1; n_ranks <= 3; n_ranks++) {
      dt_shard sh[3];
      dt_epoch_plan pl[3];
      int64_t units = 0, inter = 0, steps = 0;
      for (int r = 0; r < n_ranks; r++) {
        assert_int_equal(dt_shard_load(g_path, r, n_ranks, chunk_mode, B, L, &sh[r]), DT_OK);
        assert_int_equal(dt_shard_plan_epoch(&sh[r], seed, epoch, &pl[r]), DT_OK);
        units += sh[r].n_units;
        inter += sh[r].n_interactions;
        if (pl[r].n_steps > steps) steps = pl[r].n_steps;
      }
      assert_int_equal(units, total);
      assert_int_equal(inter, one.n_interactions);
      assert_int_equal(steps, ref.n_steps);
      dt_shard *ref_sh = &one;
      for (int64_t s = 0; s < steps; s++) {
        int64_t na = step_units(ref_sh, &ref, 1, s, a);
        int64_t nb = step_units(sh, pl, n_ranks, s, b);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, (size_t)na * sizeof(int64_t));
      }
      for (int r = 0; r < n_ranks; r++) {
        dt_epoch_plan_free(&pl[r]);
        dt_shard_free(&sh[r]);
      }
    }
    dt_epoch_plan_free(&ref);
  }
  free(a);
  free(b);
  free(first_epoch);
  dt_shard_free(&one);
}

static void row_mode_ranks_see_the_one_rank_batches(void **state) {
  (void)state;
  check_mode(0, 64);
  check_mode(0, 1000);
}

static void chunk_mode_ranks_see_the_one_rank_batches(void **state) {
  (void)state;
  check_mode(1, 64); /* K = 12 lanes, bins of 5 */
  check_mode(1, 37); /* K = 7, bins of 5 */
  check_mode(1, 3);  /* B < L: one lane, every chunk a bin of its own */
}

static void units_are_the_files_rows(void **state) {
  (void)state;
  dt_dataset ds;
  assert_int_equal(dt_dataset_load(g_path, &ds), DT_OK);
  dt_shard sh;
  assert_int_equal(dt_shard_load(g_path, 1, 3, 0, 64, L, &sh), DT_OK);
  assert_int_equal(sh.n_lanes, 64);
  assert_int_equal(sh.bin_cap, 1);
  assert_int_equal(sh.lane_lo, 21);
  assert_int_equal(sh.lane_hi, 42);
  for (int64_t k = 0; k < sh.n_units; k++) {
    int64_t j = sh.unit_index[k];
    assert_true(j % 64 >= 21 && j % 64 < 42);
    assert_int_equal(sh.unit_user[k], ds.train.user[j]);
    assert_int_equal(sh.unit_start[k], ds.train.pos[j]);
    assert_int_equal(sh.unit_count[k], 1);
  }
  dt_shard_free(&sh);
  /* chunks: consecutive train positions of one user, cut at multiples of L */
  assert_int_equal(dt_shard_load(g_path, 0, 1, 1, 64, L, &sh), DT_OK);
  int64_t covered = 0;
  for (int64_t k = 0; k < sh.n_units; k++) {
    int32_t u = sh.unit_user[k];
    assert_int_equal(sh.unit_start[k] % L, 0);
    assert_true(sh.unit_count[k] >= 1 && sh.unit_count[k] <= L);
    assert_true(sh.unit_start[k] + sh.unit_count[k] <= ds.user_n_train[u]);
    covered += sh.unit_count[k];
  }
  assert_int_equal(covered, ds.train.n);
  assert_int_equal(sh.n_interactions, ds.train.n);
  dt_shard_free(&sh);
  dt_dataset_free(&ds);
}

static void more_ranks_than_lanes_and_bad_arguments(void **state) {
  (void)state;
  dt_shard sh;
  /* chunk mode, B = 10, L = 5: two lanes; rank 0 of 3 owns none ([0, 0)) */
  assert_int_equal(dt_shard_load(g_path, 0, 3, 1, 10, L, &sh), DT_OK);
  assert_int_equal(sh.n_lanes, 2);
  assert_int_equal(sh.n_units, 0);
  dt_epoch_plan pl;
  assert_int_equal(dt_shard_plan_epoch(&sh, 1, 0, &pl), DT_OK);
  assert_int_equal(pl.n_steps, 0);
  dt_epoch_plan_free(&pl);
  dt_shard_free(&sh);
  assert_int_equal(dt_shard_load(g_path, 3, 3, 0, 64, L, &sh), DT_EXIT_USAGE);
  /* the chunks were cut with L = 5 */
  assert_int_equal(dt_shard_load(g_path, 0, 1, 1, 64, 50, &sh), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "data.history_len"));
  assert_int_equal(dt_shard_load("/nonexistent.h5", 0, 1, 0, 64, L, &sh), DT_EXIT_DATA);
}

/* comm.balance_steps: each rank's part of a step (dt_balance_units) */
static void balanced_split_is_a_partition_by_work(void **state) {
  (void)state;
  enum { N = 257 };
  dt_unit all[N], part[N];
  int64_t weight[N];
  uint32_t x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 1664525u + 1013904223u;
    all[i] = (dt_unit){i, (int32_t)(x >> 8) % 40, 1 + (int32_t)(x >> 20) % 50};
    weight[i] = dt_unit_weight(&all[i], 1, 50);
    assert_true(weight[i] >= all[i].count);
  }
  for (int size = 1; size <= 4; size++) {
    int seen[N] = {0};
    int64_t lo = INT64_MAX, hi = 0, heaviest = 0;
    for (int i = 0; i < N; i++) heaviest = weight[i] > heaviest ? weight[i] : heaviest;
    for (int r = 0; r < size; r++) {
      int64_t m = dt_balance_units(all, weight, N, r, size, part);
      int64_t load = 0, prev = -1;
      for (int64_t k = 0; k < m; k++) {
        int i = part[k].user;  /* user = the unit's position in all[] */
        assert_true(i > prev); /* the step's order is kept */
        prev = i;
        seen[i]++;
        load += weight[i];
        assert_int_equal(part[k].count, all[i].count);
      }
      lo = load < lo ? load : lo;
      hi = load > hi ? load : hi;
      /* the same split every time it is asked for */
      dt_unit again[N];
      assert_int_equal(dt_balance_units(all, weight, N, r, size, again), m);
      assert_memory_equal(again, part, (size_t)m * sizeof(dt_unit));
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1); /* every unit on exactly one rank */
    assert_true(hi - lo <= heaviest);                         /* LPT: within one unit's work */
  }
  /* an empty step: every part empty */
  assert_int_equal(dt_balance_units(all, weight, 0, 1, 2, part), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(balanced_split_is_a_partition_by_work),
      cmocka_unit_test(row_mode_ranks_see_the_one_rank_batches),
      cmocka_unit_test(chunk_mode_ranks_see_the_one_rank_batches),
      cmocka_unit_test(units_are_the_files_rows),
      cmocka_unit_test(more_ranks_than_lanes_and_bad_arguments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
