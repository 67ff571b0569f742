/* test_comm: the communication module in one process (no mpirun): the
 * block partition, checksums, argument checks, and every collective and
 * exchange with one rank, where they must be exact copies. The multi-rank
 * behaviour is tested under mpirun by tests/mpi/comm_mpi_test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/comm.h"

static dt_comm *g_comm;

static int group_setup(void **state) {
  (void)state;
  return dt_comm_init(NULL, NULL, &g_comm);
}

static int group_teardown(void **state) {
  (void)state;
  return dt_comm_finalize(g_comm);
}

static void test_block_partition(void **state) {
  (void)state;
  for (int64_t R = 1; R <= 64; R++)
    for (int N = 1; N <= 9; N++) {
      assert_int_equal(dt_comm_block_lo(R, 0, N), 0);
      assert_int_equal(dt_comm_block_lo(R, N, N), R);
      int64_t min = INT64_MAX, max = 0;
      for (int r = 0; r < N; r++) {
        int64_t lo = dt_comm_block_lo(R, r, N), hi = dt_comm_block_lo(R, r + 1, N);
        assert_true(lo <= hi);
        if (hi - lo < min) min = hi - lo;
        if (hi - lo > max) max = hi - lo;
        for (int64_t row = lo; row < hi; row++) assert_int_equal(dt_comm_block_owner(row, R, N), r);
      }
      assert_true(max - min <= 1); /* balanced to one row */
    }
  /* Large tables: no overflow in R * r. */
  int64_t R = INT32_MAX;
  assert_int_equal(dt_comm_block_owner(R - 1, R, 1000), 999);
  assert_int_equal(dt_comm_block_owner(dt_comm_block_lo(R, 500, 1000), R, 1000), 500);
}

static void test_placement_names(void **state) {
  (void)state;
  dt_placement p;
  assert_int_equal(dt_placement_parse("sharded", &p), 0);
  assert_int_equal(p, DT_PLACEMENT_SHARDED);
  assert_int_equal(dt_placement_parse("replicated", &p), 0);
  assert_int_equal(p, DT_PLACEMENT_REPLICATED);
  assert_int_equal(dt_placement_parse("mirrored", &p), DT_EXIT_USAGE);
  assert_non_null(strstr(dt_error_message(), "replicated, sharded"));
  assert_string_equal(dt_placement_name(DT_PLACEMENT_SHARDED), "sharded");
}

static void test_checksum(void **state) {
  (void)state;
  unsigned char data[103];
  for (int i = 0; i < 103; i++) data[i] = (unsigned char)(i * 37 + 11);
  uint64_t whole = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, data, sizeof data);
  for (size_t cut = 0; cut <= 100; cut += 4) {
    uint64_t h = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, data, cut);
    assert_true(dt_comm_checksum(h, data + cut, sizeof data - cut) == whole);
  }
  assert_true(dt_comm_checksum(DT_COMM_CHECKSUM_INIT, data, 0) == DT_COMM_CHECKSUM_INIT);
  data[50] ^= 1; /* one bit */
  assert_true(dt_comm_checksum(DT_COMM_CHECKSUM_INIT, data, sizeof data) != whole);
}

static void test_one_rank_facts(void **state) {
  (void)state;
  assert_int_equal(dt_comm_rank(g_comm), 0);
  assert_int_equal(dt_comm_size(g_comm), 1);
  assert_int_equal(dt_comm_local_rank(g_comm), 0);
  assert_int_equal(dt_comm_local_size(g_comm), 1);
  assert_int_equal(dt_comm_barrier(g_comm), 0);
  assert_int_equal(dt_comm_set_timeout(g_comm, -1), DT_EXIT_USAGE);
  assert_int_equal(dt_comm_set_timeout(g_comm, 5), 0);
  dt_comm_set_progress(g_comm, 2, 17);
}

static void test_one_rank_collectives(void **state) {
  (void)state;
  float f[3] = {1.5f, -2, 3};
  int64_t i[2] = {7, -9};
  assert_int_equal(dt_comm_allreduce_sum_f32(g_comm, f, 3), 0);
  assert_true(f[0] == 1.5f && f[1] == -2 && f[2] == 3);
  assert_int_equal(dt_comm_allreduce_max_i64(g_comm, i, 2), 0);
  assert_true(i[0] == 7 && i[1] == -9);
  assert_int_equal(dt_comm_bcast(g_comm, f, sizeof f, 0), 0);
  assert_int_equal(dt_comm_bcast(g_comm, f, sizeof f, 1), DT_EXIT_RUNTIME); /* no rank 1 */

  const char msg[] = "hello";
  char item[6];
  assert_int_equal(dt_comm_allgather(g_comm, msg, sizeof msg, item), 0);
  assert_string_equal(item, "hello");
  dt_comm_buffer out = {0};
  size_t counts[1] = {99};
  assert_int_equal(dt_comm_allgatherv(g_comm, msg, sizeof msg, &out, counts), 0);
  assert_int_equal(out.size, sizeof msg);
  assert_int_equal(counts[0], sizeof msg);
  assert_memory_equal(out.data, msg, sizeof msg);
  size_t send_counts[1] = {3};
  assert_int_equal(dt_comm_alltoallv(g_comm, msg, send_counts, &out, counts), 0);
  assert_int_equal(out.size, 3);
  assert_memory_equal(out.data, "hel", 3);
  assert_int_equal(dt_comm_gatherv(g_comm, msg, 0, 0, &out, counts), 0);
  assert_int_equal(out.size, 0);
  assert_int_equal(counts[0], 0);
  dt_comm_buffer_free(&out);
  assert_null(out.data);
}

static int dl(dt_backend *be, void *dst, const void *src, size_t n) {
  (void)be;
  memcpy(dst, src, n);
  return 0;
}

static void test_one_rank_dense(void **state) {
  (void)state;
  dt_backend be;
  memset(&be, 0, sizeof be);
  be.name = "cpu";
  be.download = dl;
  be.upload = dl;
  float g[4] = {1, 2, 3, 4};
  assert_int_equal(dt_comm_dense_allreduce(g_comm, g, 4, 1), DT_EXIT_RUNTIME); /* before setup */
  assert_int_equal(dt_comm_dense_setup(g_comm, &be, "sometimes"), DT_EXIT_USAGE);
  assert_int_equal(dt_comm_dense_setup(g_comm, &be, "auto"), 0);
  assert_string_equal(dt_comm_dense_transport(g_comm), "local");
  assert_int_equal(dt_comm_dense_allreduce(g_comm, g, 4, 1), 0);
  assert_true(g[0] == 1 && g[3] == 4);
  dt_comm_stats st;
  dt_comm_get_stats(g_comm, &st);
  assert_true(st.dense_bytes == 0); /* one rank sends nothing */
}

static void test_table_checks(void **state) {
  (void)state;
  int t;
  assert_int_equal(dt_comm_table_add(g_comm, "empty", 0, 4, DT_PLACEMENT_REPLICATED, &t), DT_EXIT_RUNTIME);
  assert_int_equal(dt_comm_table_add(g_comm, "flat", 5, 0, DT_PLACEMENT_REPLICATED, &t), DT_EXIT_RUNTIME);
  assert_int_equal(dt_comm_table_add(g_comm, "ok", 5, 2, DT_PLACEMENT_REPLICATED, &t), 0);
  assert_string_equal(dt_comm_table_name(g_comm, t), "ok");
  float rows[6] = {0};
  dt_sparse_rows out = {0};
  int32_t dup[2] = {1, 1}, big[1] = {5}, neg[1] = {-1};
  assert_int_equal(dt_comm_replicated_exchange(g_comm, t, dup, rows, 2, &out), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "strictly ascending"));
  assert_int_equal(dt_comm_replicated_exchange(g_comm, t, big, rows, 1, &out), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "outside [0, 5)"));
  assert_int_equal(dt_comm_replicated_exchange(g_comm, t, neg, rows, 1, &out), DT_EXIT_RUNTIME);
  /* A replicated table refuses the sharded calls. */
  assert_int_equal(dt_comm_sharded_exchange(g_comm, t, NULL, NULL, 0, &out), DT_EXIT_RUNTIME);
  dt_sparse_rows_free(&out);
}

static void test_one_rank_sparse(void **state) {
  (void)state;
  int tr, ts;
  assert_int_equal(dt_comm_table_add(g_comm, "rep", 10, 3, DT_PLACEMENT_REPLICATED, &tr), 0);
  assert_int_equal(dt_comm_table_add(g_comm, "shd", 10, 3, DT_PLACEMENT_SHARDED, &ts), 0);
  int64_t lo, hi;
  dt_comm_table_range(g_comm, ts, &lo, &hi);
  assert_true(lo == 0 && hi == 10);
  int32_t ids[3] = {1, 4, 9};
  float rows[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  dt_sparse_rows out = {0};
  assert_int_equal(dt_comm_replicated_exchange(g_comm, tr, ids, rows, 3, &out), 0);
  assert_int_equal(out.n, 3);
  assert_memory_equal(out.ids, ids, sizeof ids);
  assert_memory_equal(out.rows, rows, sizeof rows);
  assert_int_equal(dt_comm_sharded_exchange(g_comm, ts, ids, rows, 3, &out), 0);
  assert_int_equal(out.n, 3);
  assert_memory_equal(out.rows, rows, sizeof rows);
  /* Empty contributions. */
  assert_int_equal(dt_comm_replicated_exchange(g_comm, tr, NULL, NULL, 0, &out), 0);
  assert_int_equal(out.n, 0);
  assert_int_equal(dt_comm_sharded_exchange(g_comm, ts, NULL, NULL, 0, &out), 0);
  assert_int_equal(out.n, 0);
  float shard[30], got[9];
  for (int k = 0; k < 30; k++) shard[k] = (float)k;
  assert_int_equal(dt_comm_sharded_lookup(g_comm, ts, ids, 3, dt_comm_fetch_host_rows, shard, got), 0);
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 3; j++) assert_true(got[k * 3 + j] == (float)(ids[k] * 3 + j));
  dt_sparse_rows_free(&out);
}

typedef struct {
  float table[30];
  int64_t next, chunks;
} sink_state;

static int fill_rows(void *ctx, int64_t row0, int64_t n, int dim, float *rows) {
  (void)ctx;
  for (int64_t k = 0; k < n * dim; k++) rows[k] = (float)(row0 * dim + k);
  return 0;
}

static int collect_rows(void *ctx, int64_t row0, int64_t n, int dim, const float *rows) {
  sink_state *s = ctx;
  if (row0 != s->next || n > 3) return dt_fail(DT_EXIT_RUNTIME, "chunk [%lld,+%lld)", (long long)row0, (long long)n);
  memcpy(s->table + row0 * dim, rows, sizeof(float) * (size_t)(n * dim));
  s->next += n;
  s->chunks++;
  return 0;
}

static int refuse_rows(void *ctx, int64_t row0, int64_t n, int dim, const float *rows) {
  (void)ctx, (void)n, (void)dim, (void)rows;
  return row0 >= 3 ? dt_fail(DT_EXIT_DATA, "disk full (test)") : 0;
}

static void test_one_rank_chunked(void **state) {
  (void)state;
  int ts;
  assert_int_equal(dt_comm_table_add(g_comm, "ckpt", 10, 3, DT_PLACEMENT_SHARDED, &ts), 0);
  sink_state s = {.next = 0};
  assert_int_equal(dt_comm_sharded_gather(g_comm, ts, 3, fill_rows, NULL, collect_rows, &s), 0);
  assert_int_equal(s.next, 10);
  assert_int_equal(s.chunks, 4); /* 3 + 3 + 3 + 1 */
  for (int k = 0; k < 30; k++) assert_true(s.table[k] == (float)k);
  s.next = 0;
  s.chunks = 0;
  memset(s.table, 0, sizeof s.table);
  assert_int_equal(dt_comm_sharded_scatter(g_comm, ts, 3, fill_rows, NULL, collect_rows, &s), 0);
  for (int k = 0; k < 30; k++) assert_true(s.table[k] == (float)k);
  /* A failing sink fails the call with its own code and message. */
  assert_int_equal(dt_comm_sharded_gather(g_comm, ts, 3, fill_rows, NULL, refuse_rows, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "disk full"));
  assert_non_null(strstr(dt_error_message(), "ckpt"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_partition),
      cmocka_unit_test(test_placement_names),
      cmocka_unit_test(test_checksum),
      cmocka_unit_test(test_one_rank_facts),
      cmocka_unit_test(test_one_rank_collectives),
      cmocka_unit_test(test_one_rank_dense),
      cmocka_unit_test(test_table_checks),
      cmocka_unit_test(test_one_rank_sparse),
      cmocka_unit_test(test_one_rank_chunked),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
