/* comm_mpi_test: the communication module under a real mpirun.
 *
 *   comm_mpi_test [collectives]      every collective and exchange against a
 *                                    locally computed expectation
 *   comm_mpi_test loop STEPS MS [RANK STEP exit|exit0|crash]
 *                                    a training-like loop (progress, one
 *                                    all-reduce per step, MS ms per step);
 *                                    each rank prints "rank R pid P" first;
 *                                    optionally RANK leaves at STEP
 *   comm_mpi_test hang TIMEOUT_S     watchdog: the last rank sleeps at step 5
 *                                    far past TIMEOUT_S; the others must be
 *                                    aborted with exit code 4
 *
 * Every rank can regenerate every other rank's contribution (they are
 * functions of rank and index), so each rank checks its own results
 * against the exact expected values without trusting the module. Results
 * summed in rank order are compared bit for bit (the module promises that
 * order). Exits 77 when the build has no MPI.
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/comm.h"
#include "dtrain/error.h"

static int g_rank, g_size, g_checks, g_failed;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    g_checks++;                                                            \
    if (!(cond)) {                                                         \
      g_failed++;                                                          \
      fprintf(stderr, "FAIL rank %d %s:%d: ", g_rank, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
    }                                                                      \
  } while (0)

#define OK(expr)                                                                 \
  do {                                                                           \
    int ok_rc_ = (expr);                                                         \
    CHECK(ok_rc_ == 0, "%s returned %d: %s", #expr, ok_rc_, dt_error_message()); \
  } while (0)

static uint64_t mix(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}
static uint64_t h3(uint64_t a, uint64_t b, uint64_t c) { return mix(mix(mix(a) ^ b) ^ c); }
/* A float in (-1, 1) that is not exactly representable in few bits, so sum
 * order matters at the last bit. */
static float noisy(uint64_t a, uint64_t b, uint64_t c) {
  return (float)((double)(h3(a, b, c) >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 0.7f;
}

/* ---- host collectives ---- */

static void test_ranks(dt_comm *c) {
  CHECK(dt_comm_rank(c) == g_rank && dt_comm_size(c) == g_size, "rank/size");
  /* mpirun on one machine: every rank is local, in rank order. */
  CHECK(dt_comm_local_size(c) == g_size, "local size %d, expected %d", dt_comm_local_size(c), g_size);
  CHECK(dt_comm_local_rank(c) == g_rank, "local rank %d, expected %d", dt_comm_local_rank(c), g_rank);
  OK(dt_comm_barrier(c));
}

static void test_allreduce(dt_comm *c) {
  enum { N = 1000 };
  float f[N];
  double d[N];
  int64_t s[N], m[N];
  for (int i = 0; i < N; i++) {
    f[i] = (float)g_rank + 0.5f * (float)i;
    d[i] = g_rank * 1e-3 + i;
    s[i] = ((int64_t)1 << 40) + g_rank * 3 - i;
    m[i] = (int64_t)(h3(1, (uint64_t)g_rank, (uint64_t)i) % 1000) - 500;
  }
  OK(dt_comm_allreduce_sum_f32(c, f, N));
  OK(dt_comm_allreduce_sum_f64(c, d, N));
  OK(dt_comm_allreduce_sum_i64(c, s, N));
  OK(dt_comm_allreduce_max_i64(c, m, N));
  int bad_f = 0, bad_d = 0, bad_s = 0, bad_m = 0;
  for (int i = 0; i < N; i++) {
    float ef = 0;
    double ed = 0;
    int64_t es = 0, em = INT64_MIN;
    for (int r = 0; r < g_size; r++) {
      ef += (float)r + 0.5f * (float)i; /* small integers and halves: exact */
      ed += r * 1e-3 + i;
      es += ((int64_t)1 << 40) + r * 3 - i;
      int64_t v = (int64_t)(h3(1, (uint64_t)r, (uint64_t)i) % 1000) - 500;
      if (v > em) em = v;
    }
    bad_f += f[i] != ef;
    bad_d += fabs(d[i] - ed) > 1e-9 * fabs(ed) + 1e-12;
    bad_s += s[i] != es;
    bad_m += m[i] != em;
  }
  CHECK(!bad_f && !bad_d && !bad_s && !bad_m, "allreduce mismatches: f32 %d f64 %d i64 %d max %d", bad_f, bad_d, bad_s,
        bad_m);
  /* Zero elements is a valid call. */
  OK(dt_comm_allreduce_sum_f32(c, NULL, 0));
}

static void test_bcast_allgather(dt_comm *c) {
  for (int root = 0; root < g_size; root++) {
    unsigned char buf[333];
    for (int k = 0; k < 333; k++) buf[k] = g_rank == root ? (unsigned char)(k * 7 + root) : 0xEE;
    OK(dt_comm_bcast(c, buf, sizeof buf, root));
    int bad = 0;
    for (int k = 0; k < 333; k++) bad += buf[k] != (unsigned char)(k * 7 + root);
    CHECK(!bad, "bcast from root %d: %d wrong bytes", root, bad);
  }
  int32_t item[3] = {g_rank, g_rank * g_rank, -g_rank};
  int32_t *all = calloc((size_t)g_size * 3, sizeof(int32_t));
  OK(dt_comm_allgather(c, item, sizeof item, all));
  for (int r = 0; r < g_size; r++)
    CHECK(all[3 * r] == r && all[3 * r + 1] == r * r && all[3 * r + 2] == -r, "allgather item of rank %d", r);
  free(all);
}

/* Rank r's blob for the v-collectives: r*5 bytes (rank 0 sends nothing). */
static size_t blob_len(int r) { return (size_t)r * 5; }
static unsigned char blob_byte(int r, size_t k) { return (unsigned char)(r * 31 + (int)k * 3 + 1); }

static void test_allgatherv_gatherv(dt_comm *c) {
  unsigned char mine[64];
  for (size_t k = 0; k < blob_len(g_rank); k++) mine[k] = blob_byte(g_rank, k);
  dt_comm_buffer out = {0};
  size_t *counts = calloc((size_t)g_size, sizeof(size_t));
  OK(dt_comm_allgatherv(c, mine, blob_len(g_rank), &out, counts));
  size_t off = 0;
  int bad = 0;
  for (int r = 0; r < g_size; r++) {
    CHECK(counts[r] == blob_len(r), "allgatherv count of rank %d: %zu", r, counts[r]);
    for (size_t k = 0; k < blob_len(r) && off + k < out.size; k++)
      bad += ((unsigned char *)out.data)[off + k] != blob_byte(r, k);
    off += blob_len(r);
  }
  CHECK(out.size == off && !bad, "allgatherv: size %zu (expected %zu), %d wrong bytes", out.size, off, bad);
  /* A second call reuses the buffer. */
  OK(dt_comm_allgatherv(c, mine, blob_len(g_rank), &out, counts));
  CHECK(out.size == off, "allgatherv reuse: size %zu", out.size);

  for (int root = 0; root<g_size; root += g_size> 1 ? g_size - 1 : 1) {
    dt_comm_buffer g = {0};
    memset(counts, 0xff, sizeof(size_t) * (size_t)g_size);
    OK(dt_comm_gatherv(c, mine, blob_len(g_rank), root, &g, counts));
    if (g_rank == root) {
      off = 0;
      bad = 0;
      for (int r = 0; r < g_size; r++) {
        CHECK(counts[r] == blob_len(r), "gatherv count of rank %d at root %d", r, root);
        for (size_t k = 0; k < blob_len(r); k++) bad += ((unsigned char *)g.data)[off + k] != blob_byte(r, k);
        off += blob_len(r);
      }
      CHECK(g.size == off && !bad, "gatherv at root %d: size %zu, %d wrong bytes", root, g.size, bad);
    } else {
      CHECK(g.size == 0 && g.data == NULL, "gatherv: non-root %d got data", g_rank);
    }
    dt_comm_buffer_free(&g);
  }
  free(counts);
  dt_comm_buffer_free(&out);
}

/* Bytes rank s sends to rank d in the all-to-all test (zeros included). */
static size_t a2a_len(int s, int d) { return (size_t)((s * 3 + d * 5) % 4) * 3; }
static unsigned char a2a_byte(int s, int d, size_t k) { return (unsigned char)(s * 17 + d * 5 + (int)k); }

static void test_alltoallv(dt_comm *c) {
  size_t *sc = calloc((size_t)g_size, sizeof(size_t)), *rcounts = calloc((size_t)g_size, sizeof(size_t));
  size_t total = 0;
  for (int d = 0; d < g_size; d++) total += sc[d] = a2a_len(g_rank, d);
  unsigned char *send = malloc(total + 1);
  size_t off = 0;
  for (int d = 0; d < g_size; d++)
    for (size_t k = 0; k < sc[d]; k++) send[off++] = a2a_byte(g_rank, d, k);
  dt_comm_buffer recv = {0};
  OK(dt_comm_alltoallv(c, send, sc, &recv, rcounts));
  off = 0;
  int bad = 0;
  for (int s = 0; s < g_size; s++) {
    CHECK(rcounts[s] == a2a_len(s, g_rank), "alltoallv: %zu bytes from rank %d, expected %zu", rcounts[s], s,
          a2a_len(s, g_rank));
    for (size_t k = 0; k < a2a_len(s, g_rank) && off + k < recv.size; k++)
      bad += ((unsigned char *)recv.data)[off + k] != a2a_byte(s, g_rank, k);
    off += a2a_len(s, g_rank);
  }
  CHECK(recv.size == off && !bad, "alltoallv: size %zu (expected %zu), %d wrong bytes", recv.size, off, bad);
  free(send);
  free(sc);
  free(rcounts);
  dt_comm_buffer_free(&recv);
}

/* ---- dense all-reduce through a host-memory stand-in backend ---- */

static int fake_download(dt_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  memcpy(dst, src, bytes);
  return 0;
}
static int fake_upload(dt_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  memcpy(dst, src, bytes);
  return 0;
}

static void test_dense(dt_comm *c) {
  /* "staged" exercises download/MPI/upload, "cpu" the in-place path. */
  const char *names[2] = {"staged-test", "cpu"};
  for (int b = 0; b < 2; b++) {
    dt_backend be;
    memset(&be, 0, sizeof be);
    be.name = names[b];
    be.download = fake_download;
    be.upload = fake_upload;
    OK(dt_comm_dense_setup(c, &be, "auto"));
    const char *tr = dt_comm_dense_transport(c);
    CHECK(!strcmp(tr, g_size > 1 ? "mpi" : "local"), "dense transport '%s'", tr);
    enum { N = 4099 };
    float *g = malloc(sizeof(float) * N);
    for (int average = 0; average < 2; average++) {
      for (int i = 0; i < N; i++) g[i] = noisy(2, (uint64_t)g_rank, (uint64_t)i);
      dt_comm_stats before, after;
      dt_comm_get_stats(c, &before);
      OK(dt_comm_dense_allreduce(c, g, N, average));
      dt_comm_get_stats(c, &after);
      int bad = 0;
      double worst = 0;
      for (int i = 0; i < N; i++) {
        double e = 0;
        for (int r = 0; r < g_size; r++) e += noisy(2, (uint64_t)r, (uint64_t)i);
        if (average) e /= g_size;
        double err = fabs(g[i] - e);
        if (err > worst) worst = err;
        bad += err > 1e-6;
      }
      CHECK(!bad, "dense %s (%s): %d elements off, worst %g", average ? "average" : "sum", names[b], bad, worst);
      uint64_t expect_bytes = g_size > 1 ? (uint64_t)(2.0 * (g_size - 1) / g_size * 4.0 * N) : 0;
      CHECK(after.dense_bytes - before.dense_bytes == expect_bytes && after.dense_calls == before.dense_calls + 1,
            "dense counters: %" PRIu64 " bytes, expected %" PRIu64, after.dense_bytes - before.dense_bytes,
            expect_bytes);
    }
    /* Every rank must have the identical result (replicas of dense params). */
    uint64_t h = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, g, sizeof(float) * N);
    uint64_t *all = calloc((size_t)g_size, sizeof(uint64_t));
    OK(dt_comm_allgather(c, &h, sizeof h, all));
    for (int r = 0; r < g_size; r++) CHECK(all[r] == h, "dense result differs between rank %d and %d", r, g_rank);
    free(all);
    free(g);
  }
  /* NCCL asked for in a build or backend without it: every rank refuses
   * alike (usage error), no rank hangs. Only meaningful with several ranks. */
  if (g_size > 1) {
    dt_backend be;
    memset(&be, 0, sizeof be);
    be.name = "cpu";
    be.download = fake_download;
    be.upload = fake_upload;
    int rc = dt_comm_dense_setup(c, &be, "nccl");
    CHECK(rc == DT_EXIT_USAGE, "comm.dense=nccl with the cpu backend gave %d", rc);
    CHECK(dt_comm_dense_setup(c, &be, "bogus") == DT_EXIT_USAGE, "comm.dense=bogus accepted");
    OK(dt_comm_dense_setup(c, &be, "mpi"));
  }
}

/* ---- who updates the dense parameters (comm.dense_update) ---- */

static void test_dense_update(dt_comm *c) {
  dt_backend be;
  memset(&be, 0, sizeof be);
  be.name = "cpu";
  be.download = fake_download;
  be.upload = fake_upload;
  OK(dt_comm_dense_setup(c, &be, "auto"));
  dt_dense_storage st;
  CHECK(dt_comm_dense_update_setup(c, "bogus", 10, &st) == DT_EXIT_USAGE, "comm.dense_update=bogus accepted");
  /* ranks started by one mpirun on this machine: auto is shared_memory */
  enum { N = 4099 * 3 };
  OK(dt_comm_dense_update_setup(c, "auto", N, &st));
  dt_dense_update u = dt_comm_dense_update(c);
  CHECK(u == (g_size > 1 ? DT_DENSE_SHARED : DT_DENSE_ALLREDUCE), "auto chose %s", dt_comm_dense_update_name(u));
  if (u != DT_DENSE_SHARED) return;
  CHECK(st.w && st.m && st.v && st.g && ((uintptr_t)st.w | (uintptr_t)st.g) % 64 == 0, "shared storage not set up");
  int bad = 0;
  for (int i = 0; i < N; i++) bad += st.g[i] != 0 || st.w[i] != 0 || st.m[i] != 0 || st.v[i] != 0;
  CHECK(!bad, "shared storage: %d elements not zeroed", bad);
  int64_t lo, hi;
  dt_comm_dense_shard(c, N, &lo, &hi);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) st.g[i] = noisy(7 + (uint64_t)round, (uint64_t)g_rank, (uint64_t)i);
    double ss = -1;
    OK(dt_comm_dense_shared_reduce(c, &ss));
    double ss_want = 0;
    for (int64_t i = lo; i < hi; i++) ss_want += (double)st.g[i] * (double)st.g[i];
    CHECK(fabs(ss - ss_want) <= 1e-9 * ss_want, "shared reduce round %d: sum of squares %g, expected %g", round, ss,
          ss_want);
    /* this rank's block: the sum in rank order, bit for bit */
    bad = 0;
    for (int64_t i = lo; i < hi; i++) {
      float e = noisy(7 + (uint64_t)round, 0, (uint64_t)i);
      for (int r = 1; r < g_size; r++) e += noisy(7 + (uint64_t)round, (uint64_t)r, (uint64_t)i);
      bad += st.g[i] != e;
    }
    CHECK(!bad, "shared reduce round %d: %d elements of [%lld, %lld) off", round, bad, (long long)lo, (long long)hi);
    /* the "update": this rank writes its block of the one shared copy */
    for (int64_t i = lo; i < hi; i++) st.w[i] = st.g[i] * 2.0f + (float)round;
    memset(st.g + lo, 0, (size_t)(hi - lo) * sizeof(float));
    OK(dt_comm_dense_shared_wait(c));
    /* every rank sees every block of the weights, and a zero gradient */
    bad = 0;
    for (int i = 0; i < N; i++) {
      float e = noisy(7 + (uint64_t)round, 0, (uint64_t)i);
      for (int r = 1; r < g_size; r++) e += noisy(7 + (uint64_t)round, (uint64_t)r, (uint64_t)i);
      bad += st.w[i] != e * 2.0f + (float)round || st.g[i] != 0;
    }
    CHECK(!bad, "after the shared update, round %d: %d elements wrong", round, bad);
  }
  /* the other modes; shared_memory again replaces the windows */
  OK(dt_comm_dense_update_setup(c, "sharded", N, &st));
  CHECK(dt_comm_dense_update(c) == DT_DENSE_SHARDED && !st.w, "sharded not chosen");
  OK(dt_comm_dense_update_setup(c, "allreduce", N, &st));
  CHECK(dt_comm_dense_update(c) == DT_DENSE_ALLREDUCE && !st.w, "allreduce not chosen");
  OK(dt_comm_dense_update_setup(c, "shared_memory", 64, &st));
  CHECK(dt_comm_dense_update(c) == DT_DENSE_SHARED && st.w, "shared_memory not chosen");
  /* a backend on device memory cannot share its parameters */
  be.name = "staged-test";
  OK(dt_comm_dense_setup(c, &be, "mpi"));
  CHECK(dt_comm_dense_update_setup(c, "shared_memory", 64, &st) == DT_EXIT_USAGE, "shared_memory on a device backend");
  CHECK(dt_comm_dense_update_setup(c, "sharded", 64, &st) == DT_EXIT_USAGE, "sharded on a device backend");
  OK(dt_comm_dense_update_setup(c, "auto", 64, &st));
  CHECK(dt_comm_dense_update(c) == DT_DENSE_ALLREDUCE, "auto on a device backend is not allreduce");
}

/* ---- sparse exchanges ---- */

/* Rank r's touched rows of a table with R rows: a deterministic subset;
 * for even salts rank 1 touches nothing (an empty contribution), for odd
 * ones three or more ranks share rows (so summation order shows in the
 * last bits); the last rank touches many. */
static int64_t touched(int r, int64_t n_rows, uint64_t salt, int32_t *ids) {
  if (r == 1 && salt % 2 == 0) return 0;
  int64_t m = 0;
  int64_t keep = r == g_size - 1 ? 2 : 3;
  for (int64_t k = 0; k < n_rows; k++)
    if (h3(salt, (uint64_t)r, (uint64_t)k) % (uint64_t)keep == 0) ids[m++] = (int32_t)k;
  return m;
}

static void fill_grads(int r, const int32_t *ids, int64_t m, int dim, uint64_t salt, float *rows) {
  for (int64_t k = 0; k < m; k++)
    for (int j = 0; j < dim; j++) rows[k * dim + j] = noisy(salt, (uint64_t)r, (uint64_t)ids[k] * 1000 + (uint64_t)j);
}

/* The global coalesced gradient restricted to rows [lo, hi), computed the
 * way the module promises: equal ids summed in rank order. */
static int64_t expected_sum(int64_t n_rows, int dim, uint64_t salt, int64_t lo, int64_t hi, int32_t *eids,
                            float *erows) {
  float *acc = calloc((size_t)n_rows * (size_t)dim, sizeof(float));
  char *seen = calloc((size_t)n_rows, 1);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_rows);
  float *rows = malloc(sizeof(float) * (size_t)n_rows * (size_t)dim);
  for (int r = 0; r < g_size; r++) {
    int64_t m = touched(r, n_rows, salt, ids);
    fill_grads(r, ids, m, dim, salt, rows);
    for (int64_t k = 0; k < m; k++) {
      float *a = acc + (size_t)ids[k] * (size_t)dim;
      if (!seen[ids[k]])
        memcpy(a, rows + k * dim, sizeof(float) * (size_t)dim);
      else
        for (int j = 0; j < dim; j++) a[j] += rows[k * dim + j];
      seen[ids[k]] = 1;
    }
  }
  int64_t n = 0;
  for (int64_t i = lo; i < hi; i++)
    if (seen[i]) {
      eids[n] = (int32_t)i;
      memcpy(erows + n * dim, acc + i * dim, sizeof(float) * (size_t)dim);
      n++;
    }
  free(acc);
  free(seen);
  free(ids);
  free(rows);
  return n;
}

static void test_replicated(dt_comm *c) {
  const int64_t R = 200;
  const int dim = 64;
  int t;
  OK(dt_comm_table_add(c, "static.item_emb", R, dim, DT_PLACEMENT_REPLICATED, &t));
  int32_t *ids = malloc(sizeof(int32_t) * R), *eids = malloc(sizeof(int32_t) * R);
  float *rows = malloc(sizeof(float) * R * dim), *erows = malloc(sizeof(float) * R * dim);
  for (uint64_t salt = 10; salt < 13; salt++) {
    int64_t m = touched(g_rank, R, salt, ids);
    fill_grads(g_rank, ids, m, dim, salt, rows);
    dt_sparse_rows out = {0};
    dt_comm_table_stats st0, st1;
    dt_comm_get_table_stats(c, t, &st0);
    OK(dt_comm_replicated_exchange(c, t, ids, rows, m, &out));
    dt_comm_get_table_stats(c, t, &st1);
    int64_t en = expected_sum(R, dim, salt, 0, R, eids, erows);
    CHECK(out.n == en, "replicated: %lld rows, expected %lld", (long long)out.n, (long long)en);
    if (out.n == en) {
      CHECK(!memcmp(out.ids, eids, sizeof(int32_t) * (size_t)en), "replicated: ids differ");
      CHECK(!memcmp(out.rows, erows, sizeof(float) * (size_t)(en * dim)), "replicated: rows differ (bitwise)");
    }
    uint64_t payload = (uint64_t)m * (4 + 4 * (uint64_t)dim);
    uint64_t expect = g_size > 1 ? (payload + 8) * (uint64_t)(g_size - 1) : 0;
    CHECK(st1.grad_bytes - st0.grad_bytes == expect, "replicated bytes %" PRIu64 ", expected %" PRIu64,
          st1.grad_bytes - st0.grad_bytes, expect);
    /* The replicas agree bit for bit. */
    uint64_t h = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, out.rows, sizeof(float) * (size_t)(out.n * dim));
    OK(dt_comm_check_replicas(c, 1, &t, &h));
    dt_sparse_rows_free(&out);
  }
  /* Unsorted input is refused (locally: no collective happens). */
  int32_t bad_ids[2] = {5, 3};
  dt_sparse_rows out = {0};
  CHECK(dt_comm_replicated_exchange(c, t, bad_ids, rows, 2, &out) == DT_EXIT_RUNTIME &&
            strstr(dt_error_message(), "ascending"),
        "unsorted ids accepted: %s", dt_error_message());
  dt_sparse_rows_free(&out);
  free(ids);
  free(eids);
  free(rows);
  free(erows);
}

static void test_replica_check(dt_comm *c) {
  int ta, tb;
  OK(dt_comm_table_add(c, "static.user_emb", 10, 2, DT_PLACEMENT_REPLICATED, &ta));
  OK(dt_comm_table_add(c, "dynamic.item_emb", 10, 2, DT_PLACEMENT_REPLICATED, &tb));
  int ids[2] = {ta, tb};
  uint64_t sums[2] = {111, 222};
  OK(dt_comm_check_replicas(c, 2, ids, sums));
  if (g_size > 1) {
    if (g_rank == g_size - 1) sums[1] = 999; /* the second table drifts on the last rank */
    int rc = dt_comm_check_replicas(c, 2, ids, sums);
    CHECK(rc == DT_EXIT_RUNTIME, "drifted replica not detected (rc %d)", rc);
    CHECK(strstr(dt_error_message(), "'dynamic.item_emb'") != NULL, "replica message: %s", dt_error_message());
  }
}

/* Owner-side value of a sharded row. */
static float shard_value(int64_t id, int j) { return (float)(id * 10 + j) * 0.5f; }

static void test_sharded(dt_comm *c, int64_t R, int dim) {
  int t;
  char name[64];
  snprintf(name, sizeof name, "sharded-%lld", (long long)R);
  OK(dt_comm_table_add(c, name, R, dim, DT_PLACEMENT_SHARDED, &t));
  int64_t lo, hi;
  dt_comm_table_range(c, t, &lo, &hi);
  CHECK(lo == R * g_rank / g_size && hi == R * (g_rank + 1) / g_size, "block [%lld, %lld)", (long long)lo,
        (long long)hi);
  float *shard = malloc(sizeof(float) * (size_t)((hi - lo) * dim + 1));
  for (int64_t i = lo; i < hi; i++)
    for (int j = 0; j < dim; j++) shard[(i - lo) * dim + j] = shard_value(i, j);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)R), *eids = malloc(sizeof(int32_t) * (size_t)R);
  float *rows = malloc(sizeof(float) * (size_t)(R * dim)), *erows = malloc(sizeof(float) * (size_t)(R * dim));

  /* Lookup: uneven and empty requests. */
  int64_t m = touched(g_rank, R, 20, ids);
  OK(dt_comm_sharded_lookup(c, t, ids, m, dt_comm_fetch_host_rows, shard, rows));
  int bad = 0;
  for (int64_t k = 0; k < m; k++)
    for (int j = 0; j < dim; j++) bad += rows[k * dim + j] != shard_value(ids[k], j);
  CHECK(!bad, "sharded lookup (R=%lld): %d wrong values", (long long)R, bad);

  /* Gradients to owners, coalesced in rank order. */
  for (uint64_t salt = 30; salt < 33; salt++) {
    m = touched(g_rank, R, salt, ids);
    fill_grads(g_rank, ids, m, dim, salt, rows);
    dt_sparse_rows out = {0};
    OK(dt_comm_sharded_exchange(c, t, ids, rows, m, &out));
    int64_t en = expected_sum(R, dim, salt, lo, hi, eids, erows);
    CHECK(out.n == en, "sharded exchange (R=%lld): %lld rows, expected %lld", (long long)R, (long long)out.n,
          (long long)en);
    if (out.n == en) {
      CHECK(!memcmp(out.ids, eids, sizeof(int32_t) * (size_t)en), "sharded exchange: ids differ");
      CHECK(!memcmp(out.rows, erows, sizeof(float) * (size_t)(en * dim)), "sharded exchange: rows differ");
    }
    dt_sparse_rows_free(&out);
  }
  free(ids);
  free(eids);
  free(rows);
  free(erows);
  free(shard);
}

/* ---- chunked gather/scatter ---- */

typedef struct {
  int64_t lo;
  int dim;
  float *full;      /* rank 0's assembled table */
  int64_t next_row; /* rows must arrive in order */
  int64_t max_seen; /* largest chunk */
  int fail_at;      /* fail on this local row0 (-1: never) */
  float *block;     /* owner's rows for scatter */
} chunk_ctx;

static int read_block(void *ctx, int64_t row0, int64_t n, int dim, float *rows) {
  chunk_ctx *x = ctx;
  if (x->fail_at >= 0 && row0 <= x->fail_at && x->fail_at < row0 + n)
    return dt_fail(DT_EXIT_DATA, "test: planned read failure at local row %d", x->fail_at);
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < dim; j++) rows[i * dim + j] = shard_value(x->lo + row0 + i, j);
  return 0;
}

static int sink_full(void *ctx, int64_t row0, int64_t n, int dim, const float *rows) {
  chunk_ctx *x = ctx;
  if (row0 != x->next_row)
    return dt_fail(DT_EXIT_RUNTIME, "chunk at row %lld, expected %lld", (long long)row0, (long long)x->next_row);
  memcpy(x->full + row0 * dim, rows, sizeof(float) * (size_t)(n * dim));
  x->next_row += n;
  if (n > x->max_seen) x->max_seen = n;
  return 0;
}

static int source_full(void *ctx, int64_t row0, int64_t n, int dim, float *rows) {
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < dim; j++) rows[i * dim + j] = -shard_value(row0 + i, j);
  (void)ctx;
  return 0;
}

static int store_block(void *ctx, int64_t row0, int64_t n, int dim, const float *rows) {
  chunk_ctx *x = ctx;
  memcpy(x->block + row0 * dim, rows, sizeof(float) * (size_t)(n * dim));
  if (n > x->max_seen) x->max_seen = n;
  return 0;
}

static void test_chunked(dt_comm *c) {
  const int64_t R = 37;
  const int dim = 5;
  int t;
  OK(dt_comm_table_add(c, "chunked", R, dim, DT_PLACEMENT_SHARDED, &t));
  int64_t lo, hi;
  dt_comm_table_range(c, t, &lo, &hi);
  chunk_ctx x = {.lo = lo, .dim = dim, .fail_at = -1};
  x.full = calloc((size_t)(R * dim), sizeof(float));
  x.block = calloc((size_t)((hi - lo) * dim + 1), sizeof(float));
  OK(dt_comm_sharded_gather(c, t, 4, read_block, &x, sink_full, &x));
  if (g_rank == 0) {
    int bad = 0;
    for (int64_t i = 0; i < R; i++)
      for (int j = 0; j < dim; j++) bad += x.full[i * dim + j] != shard_value(i, j);
    CHECK(!bad && x.next_row == R, "gather: %d wrong values, %lld rows", bad, (long long)x.next_row);
    CHECK(x.max_seen <= 4, "gather chunk of %lld rows > 4", (long long)x.max_seen);
  }
  x.max_seen = 0;
  OK(dt_comm_sharded_scatter(c, t, 3, source_full, NULL, store_block, &x));
  int bad = 0;
  for (int64_t i = lo; i < hi; i++)
    for (int j = 0; j < dim; j++) bad += x.block[(i - lo) * dim + j] != -shard_value(i, j);
  CHECK(!bad && x.max_seen <= 3, "scatter: %d wrong values, chunk %lld", bad, (long long)x.max_seen);

  /* A read failure on the last rank fails the call everywhere. */
  x.next_row = 0;
  x.fail_at = g_rank == g_size - 1 ? (int)((hi - lo) / 2) : -1;
  int rc = dt_comm_sharded_gather(c, t, 4, read_block, &x, sink_full, &x);
  /* The failing rank's code reaches every rank. */
  CHECK(rc == DT_EXIT_DATA, "gather with a failing owner returned %d on rank %d (%s)", rc, g_rank, dt_error_message());
  free(x.full);
  free(x.block);
}

static void test_random_rounds(dt_comm *c) {
  /* Many rounds of random sizes (often empty) through both placements: no
   * hang, replicas identical. */
  int tr, ts;
  OK(dt_comm_table_add(c, "rounds-rep", 1000, 8, DT_PLACEMENT_REPLICATED, &tr));
  OK(dt_comm_table_add(c, "rounds-shd", 1000, 8, DT_PLACEMENT_SHARDED, &ts));
  int32_t ids[1000];
  float rows[1000 * 8], looked[1000 * 8];
  int64_t lo, hi;
  dt_comm_table_range(c, ts, &lo, &hi);
  float *shard = malloc(sizeof(float) * (size_t)((hi - lo) * 8 + 1));
  for (int64_t i = lo; i < hi; i++)
    for (int j = 0; j < 8; j++) shard[(i - lo) * 8 + j] = shard_value(i, j);
  dt_sparse_rows out = {0};
  int bad = 0;
  for (int round = 0; round < 60; round++) {
    int64_t m = 0;
    uint64_t density = h3(99, (uint64_t)g_rank, (uint64_t)round) % 5; /* 0: empty */
    for (int32_t k = 0; k < 1000 && density; k++)
      if (h3(98, (uint64_t)(g_rank * 1000 + round), (uint64_t)k) % 97 < density) ids[m++] = k;
    for (int64_t k = 0; k < m * 8; k++) rows[k] = noisy(97, (uint64_t)g_rank, (uint64_t)(round * 8000 + k));
    OK(dt_comm_replicated_exchange(c, tr, ids, rows, m, &out));
    uint64_t h = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, out.ids, sizeof(int32_t) * (size_t)out.n);
    h = dt_comm_checksum(h, out.rows, sizeof(float) * (size_t)(out.n * 8));
    OK(dt_comm_check_replicas(c, 1, &tr, &h));
    OK(dt_comm_sharded_exchange(c, ts, ids, rows, m, &out));
    OK(dt_comm_sharded_lookup(c, ts, ids, m, dt_comm_fetch_host_rows, shard, looked));
    for (int64_t k = 0; k < m; k++)
      for (int j = 0; j < 8; j++) bad += looked[k * 8 + j] != shard_value(ids[k], j);
  }
  CHECK(!bad, "random rounds: %d wrong looked-up values", bad);
  free(shard);
  dt_sparse_rows_free(&out);
}

static int run_collectives(dt_comm *c) {
  test_ranks(c);
  test_allreduce(c);
  test_bcast_allgather(c);
  test_allgatherv_gatherv(c);
  test_alltoallv(c);
  test_dense(c);
  test_dense_update(c);
  test_replicated(c);
  test_replica_check(c);
  test_sharded(c, 37, 3); /* uneven blocks */
  test_sharded(c, 2, 4);  /* fewer rows than ranks: empty blocks */
  test_sharded(c, 300, 64);
  test_chunked(c);
  test_random_rounds(c);
  int64_t tot[2] = {g_checks, g_failed};
  if (dt_comm_allreduce_sum_i64(c, tot, 2)) {
    fprintf(stderr, "rank %d: final reduction failed: %s\n", g_rank, dt_error_message());
    return 1;
  }
  if (g_rank == 0)
    printf("comm_mpi_test np %d: %lld passed, %lld failed\n", g_size, (long long)(tot[0] - tot[1]), (long long)tot[1]);
  return tot[1] ? 1 : 0;
}

/* ---- fault modes ---- */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* die_how: NULL (run to the end), "exit" / "exit0" (leave without
 * MPI_Finalize, exit code 3 / 0) or "crash" (SIGSEGV) on rank die_rank at step die_step. */
static int run_loop(dt_comm *c, long steps, long ms, int die_rank, long die_step, const char *die_how) {
  printf("rank %d pid %ld\n", g_rank, (long)getpid());
  fflush(stdout);
  OK(dt_comm_set_timeout(c, 300));
  float g[256];
  for (long s = 0; s < steps; s++) {
    dt_comm_set_progress(c, 0, s);
    if (die_how && g_rank == die_rank && s == die_step) {
      printf("rank %d dies (%s) at step %ld\n", g_rank, die_how, s);
      fflush(stdout);
      if (!strcmp(die_how, "crash")) raise(SIGSEGV);
      _exit(!strcmp(die_how, "exit0") ? 0 : 3);
    }
    for (int i = 0; i < 256; i++) g[i] = (float)s;
    int rc = dt_comm_allreduce_sum_f32(c, g, 256);
    if (rc) dt_comm_abort(c, rc, dt_error_message());
    if (g_rank == 0 && s % 10 == 0 && s <= 20) {
      printf("step %ld\n", s);
      fflush(stdout);
    }
    sleep_ms(ms);
  }
  return 0;
}

static int run_hang(dt_comm *c, double timeout_s) {
  OK(dt_comm_set_timeout(c, timeout_s));
  float g[16] = {0};
  for (long s = 0; s < 20; s++) {
    dt_comm_set_progress(c, 1, s);
    if (s == 5 && g_rank == g_size - 1) {
      printf("rank %d sleeps at step 5\n", g_rank);
      fflush(stdout);
      sleep_ms((long)(timeout_s * 1000) * 10);
    }
    int rc = dt_comm_allreduce_sum_f32(c, g, 16);
    if (rc) dt_comm_abort(c, rc, dt_error_message());
  }
  printf("rank %d: the watchdog did not fire\n", g_rank);
  return 1;
}

int main(int argc, char **argv) {
  if (!dt_comm_have_mpi()) {
    printf(
        "skipped: this build has no MPI (DTRAIN_MPI=OFF or MPI not found), so there is nothing to run under "
        "mpirun\n");
    return 77;
  }
  dt_comm *c = NULL;
  if (dt_comm_init(&argc, &argv, &c)) {
    fprintf(stderr, "dt_comm_init: %s\n", dt_error_message());
    return 1;
  }
  g_rank = dt_comm_rank(c);
  g_size = dt_comm_size(c);
  const char *mode = argc > 1 ? argv[1] : "collectives";
  int rc;
  if (!strcmp(mode, "collectives")) {
    rc = run_collectives(c);
  } else if (!strcmp(mode, "loop") && argc > 3) {
    rc = run_loop(c, atol(argv[2]), atol(argv[3]), argc > 6 ? atoi(argv[4]) : -1, argc > 6 ? atol(argv[5]) : -1,
                  argc > 6 ? argv[6] : NULL);
  } else if (!strcmp(mode, "hang") && argc > 2) {
    rc = run_hang(c, atof(argv[2]));
  } else {
    fprintf(stderr,
            "usage: comm_mpi_test [collectives | loop STEPS MS [RANK STEP exit|exit0|crash] | hang TIMEOUT_S]\n");
    rc = 2;
  }
  if (dt_comm_finalize(c)) {
    fprintf(stderr, "dt_comm_finalize: %s\n", dt_error_message());
    return 1;
  }
  return rc;
}
