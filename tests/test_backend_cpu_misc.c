/* CPU backend: top-k (ties, -INFINITY, padding), coalescing of duplicate and
 * unsorted ids, bit-for-bit determinism (repeated runs, and 1 vs 2 threads
 * for the reductions), memory ops, backend selection and argument errors. */
#include "dtrain/log.h"
#include "test_backend_cpu_util.h"

/* ----------------------------------------------------- OpenBLAS's core */

static void test_blas_core_choice(void **state) {
  (void)state;
  const char *dyn = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY USE_OPENMP Prescott MAX_THREADS=64";
  /* the user's OPENBLAS_CORETYPE, a recognised core, or a library built for
   * one core: nothing to change */
  assert_null(dt_blas_core_choice("Prescott", dyn, "Prescott"));
  assert_null(dt_blas_core_choice("SkylakeX", dyn, NULL));
  assert_null(dt_blas_core_choice("Haswell", dyn, NULL));
  assert_null(dt_blas_core_choice("Prescott", "OpenBLAS 0.3.21 USE_OPENMP Prescott MAX_THREADS=64", NULL));
  assert_null(dt_blas_core_choice(NULL, dyn, NULL));
#if defined(__x86_64__) && defined(__GNUC__)
  /* the fallback core on a CPU with AVX2 or AVX-512 gets a real one */
  __builtin_cpu_init();
  const char *want = dt_blas_core_choice("Prescott", dyn, NULL);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    assert_string_equal(want, "SkylakeX");
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    assert_string_equal(want, "Haswell");
  if (__builtin_cpu_supports("avx")) assert_non_null(dt_blas_core_choice("Nehalem", dyn, "")); /* "" is unset */
#endif
}

/* --------------------------------------------- OpenMP's wait policy */

static void test_omp_wait_choice(void **state) {
  (void)state;
  const char *var, *value;
  /* nothing set: a bounded spin (libgomp's default 300000 spins through the
   * time slices of a busy machine) */
  assert_int_equal(dt_omp_wait_choice(NULL, NULL, &var, &value), 1);
  assert_string_equal(var, "GOMP_SPINCOUNT");
  assert_string_equal(value, "10000");
  assert_int_equal(dt_omp_wait_choice("", "", &var, &value), 1); /* "" is unset */
  /* either setting of the user's wins, and nothing is set */
  assert_int_equal(dt_omp_wait_choice("active", NULL, &var, &value), 0);
  assert_null(var);
  assert_null(value);
  assert_int_equal(dt_omp_wait_choice(NULL, "300000", &var, &value), 0);
  assert_int_equal(dt_omp_wait_choice("passive", "0", &var, &value), 0);
}

/* ---------------------------------------------------------------- top-k */

static void test_topk_ties_and_infinity(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  const float ninf = -INFINITY;
  /* row 0: ties at 3 go to the lower column; row 1: all excluded */
  const float s[2 * 6] = {1, 3, 3, ninf, 2, 3, ninf, ninf, ninf, ninf, ninf, ninf};
  float *scores = tb_floats(&t, 12);
  memcpy(scores, s, sizeof s);
  int32_t idx[2 * 8];
  float val[2 * 8];

  TB_OK(t.be->topk(t.be, scores, 2, 6, 3, idx, val));
  const int32_t want3[6] = {1, 2, 5, -1, -1, -1};
  assert_memory_equal(idx, want3, sizeof want3);
  assert_true(val[0] == 3 && val[1] == 3 && val[2] == 3 && val[3] == ninf);

  /* k above the finite count pads with column -1 and value -INFINITY */
  TB_OK(t.be->topk(t.be, scores, 1, 6, 8, idx, val));
  const int32_t want8[8] = {1, 2, 5, 4, 0, -1, -1, -1};
  const float want8v[8] = {3, 3, 3, 2, 1, ninf, ninf, ninf};
  assert_memory_equal(idx, want8, sizeof want8);
  assert_memory_equal(val, want8v, sizeof want8v);

  /* no columns at all */
  TB_OK(t.be->topk(t.be, scores, 1, 0, 2, idx, val));
  assert_true(idx[0] == -1 && idx[1] == -1);
  assert_int_equal(t.be->topk(t.be, scores, 1, 6, 0, idx, val), DT_EXIT_RUNTIME);
  tb_close(&t);
}

typedef struct {
  float v;
  int32_t c;
} scored;

static int by_rank(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return (x->c > y->c) - (x->c < y->c);
}

static void test_topk_matches_full_sort(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(51);
  enum { N = 37, COLS = 1000, KMAX = 20 };
  float *scores = tb_floats(&t, N * COLS);
  for (int64_t i = 0; i < N * COLS; i++) {
    /* few distinct values: many ties; about 10% excluded */
    scores[i] = tb_below(&r, 10) == 0 ? -INFINITY : (float)tb_below(&r, 50) * 0.25f;
  }
  int32_t *idx = malloc(N * KMAX * sizeof *idx);
  float *val = malloc(N * KMAX * sizeof *val);
  scored *row = malloc(COLS * sizeof *row);
  assert_true(idx && val && row);
  const int ks[3] = {1, 10, KMAX};
  for (int q = 0; q < 3; q++) {
    int k = ks[q];
    TB_OK(t.be->topk(t.be, scores, N, COLS, k, idx, val));
    for (int i = 0; i < N; i++) {
      int m = 0;
      for (int c = 0; c < COLS; c++)
        if (scores[i * COLS + c] != -INFINITY) row[m++] = (scored){scores[i * COLS + c], c};
      qsort(row, (size_t)m, sizeof *row, by_rank);
      for (int j = 0; j < k; j++) {
        assert_int_equal(idx[i * k + j], j < m ? row[j].c : -1);
        if (j < m) assert_true(val[i * k + j] == row[j].v);
      }
    }
  }
  free(idx);
  free(val);
  free(row);
  tb_close(&t);
}

/* ---------------------------------------------------------------- coalesce */

static void test_coalesce_duplicates_unsorted(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(52);
  enum { N = 20000, DIM = 8, SMALL = 300 };
  int32_t *ids = tb_ints(&t, N), *uniq = tb_ints(&t, N);
  float *grads = tb_floats(&t, N * DIM), *sums = tb_floats(&t, N * DIM);
  for (int i = 0; i < N; i++) {
    /* mostly small ids, some needing the upper radix passes */
    int64_t u = tb_below(&r, 100);
    ids[i] = u < 90 ? (int32_t)tb_below(&r, SMALL) : u < 97 ? (1 << 20) + (int32_t)tb_below(&r, 5) : (1 << 30) + 7;
  }
  tb_fill(&r, grads, N * DIM, -1, 1);
  int64_t m = -1;
  TB_OK(t.be->coalesce_rows(t.be, ids, grads, N, DIM, uniq, sums, &m));

  /* reference: every distinct id ascending, its rows summed in float in
   * input order: the backend must give exactly these bits */
  int64_t k = 0;
  int32_t prev = -1;
  float ref[DIM];
  for (;;) {
    int32_t next = INT32_MAX;
    int any = 0;
    for (int i = 0; i < N; i++)
      if (ids[i] > prev && ids[i] <= next) {
        next = ids[i];
        any = 1;
      }
    if (!any) break;
    int first = 1;
    for (int i = 0; i < N; i++) {
      if (ids[i] != next) continue;
      for (int j = 0; j < DIM; j++) ref[j] = first ? grads[i * DIM + j] : ref[j] + grads[i * DIM + j];
      first = 0;
    }
    assert_true(k < m);
    assert_int_equal(uniq[k], next);
    assert_memory_equal(sums + k * DIM, ref, sizeof ref);
    k++;
    prev = next;
  }
  assert_int_equal(m, k);
  print_message("  %d ids -> %lld distinct, sums bit-identical to input-order float sums\n", N, (long long)m);

  /* empty input */
  TB_OK(t.be->coalesce_rows(t.be, ids, grads, 0, DIM, uniq, sums, &m));
  assert_int_equal(m, 0);
  tb_close(&t);
}

/* ---------------------------------------------------------------- determinism */

/* Runs the reductions and row ops on large enough shapes that the parallel
 * paths are taken, on a backend with `threads` threads, and writes every
 * output into one buffer. */
enum { DROWS = 3000, DCOLS = 64, DVOCAB = 700, DO = 96, DNNZ = 12 };
enum {
  OUT_BIAS = 0,
  OUT_SUMSQ = OUT_BIAS + DCOLS,
  OUT_UNIQ = OUT_SUMSQ + 2,
  OUT_SUMS = OUT_UNIQ + DROWS,
  OUT_CSRG = OUT_SUMS + DROWS * DCOLS,
  OUT_CSR = OUT_CSRG + DVOCAB * DO,
  OUT_ADAM = OUT_CSR + DROWS * DO,
  OUT_DROP = OUT_ADAM + DROWS * DCOLS,
  OUT_GATHER = OUT_DROP + DROWS * DCOLS,
  OUT_RDU = OUT_GATHER + DROWS * DCOLS,
  OUT_MIXA = OUT_RDU + DROWS * DCOLS,
  OUT_GEMM = OUT_MIXA + 3 * (DROWS / 2),
  OUT_TOTAL = OUT_GEMM + DROWS * DO
};

static void run_all(int threads, float *out) {
  tb_ctx t;
  tb_open(&t, threads);
  dt_backend *be = t.be;
  tb_rng r = tb_seed(53);
  float *dy = tb_floats(&t, DROWS * DCOLS), *db = tb_floats(&t, DCOLS);
  tb_fill(&r, dy, DROWS * DCOLS, -1, 1);
  TB_OK(be->zero(be, db, DCOLS * sizeof(float)));
  TB_OK(be->bias_grad(be, db, dy, DROWS, DCOLS));
  memcpy(out + OUT_BIAS, db, DCOLS * sizeof(float));
  double ss;
  TB_OK(be->sumsq(be, dy, DROWS * DCOLS, &ss));
  memcpy(out + OUT_SUMSQ, &ss, sizeof ss);

  int32_t *ids = tb_ints(&t, DROWS), *uniq = tb_ints(&t, DROWS);
  for (int i = 0; i < DROWS; i++) ids[i] = (int32_t)tb_below(&r, DVOCAB);
  int64_t m;
  float *sums = tb_floats(&t, DROWS * DCOLS);
  TB_OK(be->coalesce_rows(be, ids, dy, DROWS, DCOLS, uniq, sums, &m));
  memset(out + OUT_UNIQ, 0, (DROWS + DROWS * DCOLS) * sizeof(float));
  memcpy(out + OUT_UNIQ, uniq, (size_t)m * sizeof(int32_t));
  memcpy(out + OUT_SUMS, sums, (size_t)m * DCOLS * sizeof(float));

  /* CSR: DVOCAB rows of DNNZ entries; DROWS lookups */
  int64_t *indptr = tb_alloc(&t, (DVOCAB + 1) * sizeof(int64_t));
  int32_t *indices = tb_ints(&t, DVOCAB * DNNZ);
  float *values = tb_floats(&t, DVOCAB * DNNZ), *wt = tb_floats(&t, DVOCAB * DO), *dout = tb_floats(&t, DROWS * DO);
  float *dwt = tb_floats(&t, DVOCAB * DO), *csr_out = tb_floats(&t, DROWS * DO);
  for (int i = 0; i <= DVOCAB; i++) indptr[i] = (int64_t)i * DNNZ;
  for (int i = 0; i < DVOCAB * DNNZ; i++) indices[i] = (int32_t)tb_below(&r, DVOCAB);
  tb_fill(&r, values, DVOCAB * DNNZ, 0, 1);
  tb_fill(&r, wt, DVOCAB * DO, -1, 1);
  tb_fill(&r, dout, DROWS * DO, -1, 1);
  TB_OK(be->zero(be, dwt, DVOCAB * DO * sizeof(float)));
  TB_OK(be->csr_matmul_grad(be, dwt, indptr, indices, values, ids, DROWS, dout, DO, DVOCAB));
  memcpy(out + OUT_CSRG, dwt, DVOCAB * DO * sizeof(float));
  TB_OK(be->csr_matmul(be, csr_out, indptr, indices, values, ids, DROWS, wt, DO));
  memcpy(out + OUT_CSR, csr_out, DROWS * DO * sizeof(float));

  float *p = tb_floats(&t, DROWS * DCOLS), *mm = tb_floats(&t, DROWS * DCOLS), *vv = tb_floats(&t, DROWS * DCOLS);
  tb_fill(&r, p, DROWS * DCOLS, -1, 1);
  TB_OK(be->zero(be, mm, DROWS * DCOLS * sizeof(float)));
  TB_OK(be->zero(be, vv, DROWS * DCOLS * sizeof(float)));
  dt_adam_hyper hy = {0.001f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0.7f, 3};
  TB_OK(be->adam(be, p, dy, mm, vv, DROWS * DCOLS, hy));
  memcpy(out + OUT_ADAM, p, DROWS * DCOLS * sizeof(float));

  int64_t *keys = tb_alloc(&t, DROWS * sizeof(int64_t));
  for (int i = 0; i < DROWS; i++) keys[i] = i * 3 + 1;
  dt_dropout_key key = {5, 9, DT_SITE_STATIC, keys};
  float *x = tb_floats(&t, DROWS * DCOLS);
  memcpy(x, dy, DROWS * DCOLS * sizeof(float));
  TB_OK(be->relu_dropout_fwd(be, x, DROWS, DCOLS, 1, 0.1f, key));
  memcpy(out + OUT_DROP, x, DROWS * DCOLS * sizeof(float));

  float *g = tb_floats(&t, DROWS * DCOLS);
  TB_OK(be->gather_rows(be, g, dy, ids, DROWS, DCOLS)); /* ids < DVOCAB < DROWS rows of dy */
  memcpy(out + OUT_GATHER, g, DROWS * DCOLS * sizeof(float));

  /* rowdot_bwd du sums over c candidates; mix3_bwd dalpha sums over c*d */
  float *du = tb_floats(&t, DROWS / 2 * DCOLS);
  TB_OK(be->zero(be, du, DROWS / 2 * DCOLS * sizeof(float)));
  TB_OK(be->rowdot_bwd(be, x, dy, dout, du, NULL, DROWS / 2, 2, DCOLS));
  memset(out + OUT_RDU, 0, DROWS * DCOLS * sizeof(float));
  memcpy(out + OUT_RDU, du, DROWS / 2 * DCOLS * sizeof(float));
  float *alpha = tb_floats(&t, 3 * (DROWS / 2)), *dalpha = tb_floats(&t, 3 * (DROWS / 2));
  tb_fill(&r, alpha, 3 * (DROWS / 2), 0, 1);
  TB_OK(be->mix3_bwd(be, alpha, dy, x, dy, x, dalpha, NULL, NULL, NULL, DROWS / 2, 2, DCOLS));
  memcpy(out + OUT_MIXA, dalpha, 3 * (DROWS / 2) * sizeof(float));

  float *c = tb_floats(&t, DROWS * DO);
  TB_OK(be->gemm(be, 0, 0, DROWS, DO, DCOLS, 1.0f, dy, DCOLS, wt, DO, 0.0f, c, DO));
  memcpy(out + OUT_GEMM, c, DROWS * DO * sizeof(float));
  tb_close(&t);
}

static void test_determinism(void **state) {
  (void)state;
  float *a = calloc(OUT_TOTAL, sizeof(float)), *b = calloc(OUT_TOTAL, sizeof(float));
  float *c = calloc(OUT_TOTAL, sizeof(float));
  assert_true(a && b && c);
  run_all(2, a);
  run_all(2, b);
  assert_memory_equal(a, b, OUT_TOTAL * sizeof(float)); /* same inputs, same thread count: same bits */
  /* the reductions and row ops sum in a fixed order independent of the
   * thread count (gemm is left out: the thread count changes the blocks of
   * C that each OpenBLAS call gets, and OpenBLAS promises nothing there) */
  run_all(1, c);
  assert_memory_equal(a, c, OUT_GEMM * sizeof(float));
  free(a);
  free(b);
  free(c);
}

/* ---------------------------------------------------------------- memory and selection */

static void test_memory_ops(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 1);
  dt_backend *be = t.be;
  assert_string_equal(be->name, "cpu");
  float *a = tb_floats(&t, 33), *b = tb_floats(&t, 33);
  void *empty = tb_alloc(&t, 0);
  assert_non_null(empty);
  assert_true((uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0);
  float host[33], back[33];
  for (int i = 0; i < 33; i++) host[i] = (float)i - 16.5f;
  TB_OK(be->upload(be, a, host, sizeof host));
  TB_OK(be->copy(be, b, a, sizeof host));
  TB_OK(be->download(be, back, b, sizeof back));
  assert_memory_equal(host, back, sizeof host);
  TB_OK(be->zero(be, b, 10 * sizeof(float)));
  TB_OK(be->sync(be));
  for (int i = 0; i < 33; i++) assert_true(b[i] == (i < 10 ? 0.0f : host[i]));
  void *huge = NULL;
  assert_int_equal(dt_backend_alloc(be, SIZE_MAX, &huge), DT_EXIT_RUNTIME);
  assert_null(huge);
  assert_non_null(strstr(dt_error_message(), "alloc"));
  tb_close(&t);
}

static void test_backend_selection(void **state) {
  (void)state;
  dt_log_set_level(DT_LOG_WARN);
  dt_backend *be = NULL;
  TB_OK(dt_backend_create("cpu", 1, 0, 0, &be));
  assert_string_equal(be->name, "cpu");
  be->destroy(be);

  char why[256] = "";
  int devices = dt_backend_cuda_device_count(why, (int)sizeof why);
  if (devices == 0) {
    assert_true(why[0] != '\0'); /* the reason is always given */
    TB_OK(dt_backend_create("auto", 2, 0, 0, &be));
    assert_string_equal(be->name, "cpu");
    be->destroy(be);
    be = NULL;
    assert_int_equal(dt_backend_create("cuda", 0, 0, 0, &be), DT_EXIT_RUNTIME);
    assert_null(be);
    assert_non_null(strstr(dt_error_message(), "no usable CUDA device"));
#ifndef DTRAIN_HAVE_CUDA
    assert_non_null(strstr(dt_error_message(), "built without CUDA"));
    assert_int_equal(dt_backend_cuda_create(0, 0, &be), DT_EXIT_RUNTIME);
#endif
  }
  assert_int_equal(dt_backend_create("gpu", 0, 0, 0, &be), DT_EXIT_USAGE);
  assert_non_null(strstr(dt_error_message(), "backend.name"));
  assert_int_equal(dt_backend_cpu_create(-1, &be), DT_EXIT_USAGE);
}

static void test_bad_arguments_are_errors(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 1);
  dt_backend *be = t.be;
  float x[4] = {0};
  assert_int_equal(be->add_bias(be, x, x, -1, 4), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "add_bias"));
  assert_int_equal(be->gru_step_fwd(be, x, x, NULL, x, x, -2, 1), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "gru_step_fwd"));
  assert_int_equal(be->bpr(be, x, 1, 0, 1.0f, x, NULL), DT_EXIT_RUNTIME);
  dt_adam_hyper bad = {.lr = 0.1f, .beta1 = 1.0f, .beta2 = 0.9f, .step = 1};
  assert_int_equal(be->adam(be, x, x, x, x, 4, bad), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "beta1"));
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topk_ties_and_infinity),
      cmocka_unit_test(test_topk_matches_full_sort),
      cmocka_unit_test(test_blas_core_choice),
      cmocka_unit_test(test_omp_wait_choice),
      cmocka_unit_test(test_coalesce_duplicates_unsorted),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_memory_ops),
      cmocka_unit_test(test_backend_selection),
      cmocka_unit_test(test_bad_arguments_are_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
