/* bench_backend_cpu: speed of the CPU backend's ops at the model's shapes.
 *
 * Usage: bench_backend_cpu [threads (0 = all cores)] [seconds per op (0.2)]
 * Prints one JSON document: gemm GFLOP/s for the Linear and GRU shapes of
 * MODEL.md (forward NT, input-gradient NN, weight-gradient TN) at a
 * 2048-example batch (4096 item rows with one negative), and ns per element
 * for the other ops, from the fastest call (the mean is printed beside it).
 * Every op's return code is checked; a failure exits 4.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h" /* the kernel set's name and thread count */
#include "dtrain/backend.h"
#include "dtrain/error.h"
#include "dtrain/timer.h"

static double g_min_s = 0.2;
static int g_first = 1;

static void check(int rc, const char *what) {
  if (rc) {
    fprintf(stderr, "bench_backend_cpu: %s failed: %s\n", what, dt_error_message());
    exit(rc);
  }
}

static void emit_begin(void) {
  printf("%s\n    ", g_first ? "" : ",");
  g_first = 0;
}

/* Runs `call` once to warm up, then repeatedly for at least g_min_s; sets
 * `per_call` to the fastest single call: on a shared machine the minimum is
 * the op's own cost, the mean mostly other processes' (both are printed). */
#define TIME_CALL(per_call, mean_call, what, call) \
  do {                                             \
    check((call), what);                           \
    int reps_ = 0;                                 \
    double t0_ = dt_now_s(), el_, best_ = 1e30;    \
    do {                                           \
      double c0_ = dt_now_s();                     \
      check((call), what);                         \
      double c1_ = dt_now_s() - c0_;               \
      if (c1_ < best_) best_ = c1_;                \
      reps_++;                                     \
    } while ((el_ = dt_now_s() - t0_) < g_min_s);  \
    (per_call) = best_;                            \
    (mean_call) = el_ / reps_;                     \
  } while (0)

#define BENCH_ELEMS(name, detail, elems, call)                                                    \
  do {                                                                                            \
    double per_, mean_;                                                                           \
    TIME_CALL(per_, mean_, name, call);                                                           \
    emit_begin();                                                                                 \
    printf(                                                                                       \
        "{\"op\": \"%s\", \"shape\": \"%s\", \"elements\": %lld, \"us_per_call\": %.2f, "         \
        "\"us_mean\": %.2f, \"ns_per_element\": %.3f}",                                           \
        name, detail, (long long)(elems), per_ * 1e6, mean_ * 1e6, per_ * 1e9 / (double)(elems)); \
  } while (0)

static float *falloc(dt_backend *be, int64_t n, unsigned seed) {
  float *p = NULL;
  check(dt_backend_alloc(be, (size_t)n * sizeof(float), (void **)&p), "alloc");
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    p[i] = (float)((s * 0x2545F4914F6CDD1DULL) >> 40) * (1.0f / 16777216.0f) - 0.5f;
  }
  return p;
}

static void bench_gemm(dt_backend *be, const char *layer, int rows, int in, int out) {
  /* y[rows,out] = x W^T; dx[rows,in] = dy W; dW[out,in] += dy^T x */
  float *x = falloc(be, (int64_t)rows * in, 1), *w = falloc(be, (int64_t)out * in, 2);
  float *y = falloc(be, (int64_t)rows * out, 3), *dx = falloc(be, (int64_t)rows * in, 4);
  float *dw = falloc(be, (int64_t)out * in, 5);
  struct {
    const char *kind;
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float beta, *c;
  } cases[3] = {
      {"fwd NT", 0, 1, rows, out, in, in, in, out, x, w, 0.0f, y},
      {"dx NN", 0, 0, rows, in, out, out, in, in, y, w, 0.0f, dx},
      {"dW TN", 1, 0, out, in, rows, out, in, in, y, x, 1.0f, dw},
  };
  for (int q = 0; q < 3; q++) {
    double per, mean;
    TIME_CALL(per, mean, "gemm",
              be->gemm(be, cases[q].ta, cases[q].tb, cases[q].m, cases[q].n, cases[q].k, 1.0f, cases[q].a, cases[q].lda,
                       cases[q].b, cases[q].ldb, cases[q].beta, cases[q].c, cases[q].ldc));
    double flops = 2.0 * cases[q].m * cases[q].n * cases[q].k;
    emit_begin();
    printf(
        "{\"op\": \"gemm\", \"layer\": \"%s\", \"kind\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, "
        "\"us_per_call\": %.2f, \"us_mean\": %.2f, \"gflops\": %.2f}",
        layer, cases[q].kind, cases[q].m, cases[q].n, cases[q].k, per * 1e6, mean * 1e6, flops / per * 1e-9);
  }
  be->free(be, x);
  be->free(be, w);
  be->free(be, y);
  be->free(be, dx);
  be->free(be, dw);
}

int main(int argc, char **argv) {
  dt_cpu_restart_check(argv); /* the same OpenBLAS kernels and OpenMP wait policy as dtrain itself */
  int threads = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2) g_min_s = atof(argv[2]);
  dt_backend *be = NULL;
  check(dt_backend_cpu_create(threads, &be), "dt_backend_cpu_create");
  printf("{\n  \"bench\": \"backend_cpu\",\n  \"threads\": %d,\n  \"kernels\": \"%s\",\n  \"results\": [",
         dt_cpu(be)->threads, dt_cpu(be)->kern->name);

  const int B = 2048, I = 2 * B; /* users per batch; item rows with one negative */
  bench_gemm(be, "static.fc1 128->128", B, 128, 128);
  bench_gemm(be, "static.fc2 128->64", B, 128, 64);
  bench_gemm(be, "gru ih_l0 64->384", B, 64, 384);
  bench_gemm(be, "gru hh 128->384", B, 128, 384);
  bench_gemm(be, "content.fc2 512->256", I, 512, 256);
  bench_gemm(be, "content.fc3 256->64", I, 256, 64);
  bench_gemm(be, "gate.fc1 7->64", B, 7, 64);

  /* elementwise and row ops */
  const int C = 512, D = 64, H = 128;
  const int64_t E = (int64_t)I * C;
  float *x = falloc(be, E, 10), *y = falloc(be, E, 11), *bias = falloc(be, C, 12), *db = falloc(be, C, 13);
  int64_t *keys = NULL;
  check(dt_backend_alloc(be, (size_t)I * sizeof(int64_t), (void **)&keys), "alloc");
  for (int i = 0; i < I; i++) keys[i] = i;
  dt_dropout_key key = {7, 1, DT_SITE_CONTENT, keys};
  char shape[64];
  snprintf(shape, sizeof shape, "[%d, %d]", I, C);
  BENCH_ELEMS("add_bias", shape, E, be->add_bias(be, y, bias, I, C));
  BENCH_ELEMS("bias_grad", shape, E, be->bias_grad(be, db, y, I, C));
  BENCH_ELEMS("relu_dropout_fwd p=0.2", shape, E, be->relu_dropout_fwd(be, y, I, C, 1, 0.2f, key));
  BENCH_ELEMS("relu_dropout_fwd relu only", shape, E, be->relu_dropout_fwd(be, y, I, C, 1, 0.0f, key));
  BENCH_ELEMS("relu_dropout_bwd relu p=0.2", shape, E, be->relu_dropout_bwd(be, x, y, I, C, 1, 0.2f, key));
  BENCH_ELEMS("relu_dropout_bwd p=0.2 (redraw)", shape, E, be->relu_dropout_bwd(be, x, y, I, C, 0, 0.2f, key));
  double ss;
  BENCH_ELEMS("sumsq", shape, E, be->sumsq(be, x, E, &ss));
  BENCH_ELEMS("axpy", shape, E, be->axpy(be, y, x, E, 0.5f));

  /* embeddings: a batch of L=50 histories gathers B*50 rows of 64 */
  const int64_t NH = (int64_t)B * 50, V = 20000;
  float *table = falloc(be, V * D, 14), *rows = falloc(be, NH * D, 15), *sums = falloc(be, NH * D, 16);
  int32_t *ids = NULL, *uniq = NULL;
  check(dt_backend_alloc(be, (size_t)NH * sizeof(int32_t), (void **)&ids), "alloc");
  check(dt_backend_alloc(be, (size_t)NH * sizeof(int32_t), (void **)&uniq), "alloc");
  uint64_t s = 99;
  for (int64_t i = 0; i < NH; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    ids[i] = (int32_t)((s >> 33) % (uint64_t)V);
  }
  snprintf(shape, sizeof shape, "[%lld, %d] of %lld", (long long)NH, D, (long long)V);
  BENCH_ELEMS("gather_rows", shape, NH * D, be->gather_rows(be, rows, table, ids, NH, D));
  int64_t m = 0;
  BENCH_ELEMS("coalesce_rows", shape, NH * D, be->coalesce_rows(be, ids, rows, NH, D, uniq, sums, &m));

  /* GRU step over a batch of sequences, hidden 128 */
  float *xg = falloc(be, (int64_t)B * 3 * H, 17), *hg = falloc(be, (int64_t)B * 3 * H, 18);
  float *hp = falloc(be, (int64_t)B * H, 19), *ho = falloc(be, (int64_t)B * H, 20);
  float *cache = falloc(be, (int64_t)B * 4 * H, 21), *dxg = falloc(be, (int64_t)B * 3 * H, 22);
  float *dhg = falloc(be, (int64_t)B * 3 * H, 23), *dhp = falloc(be, (int64_t)B * H, 24);
  snprintf(shape, sizeof shape, "[%d, %d]", B, H);
  BENCH_ELEMS("gru_step_fwd", shape, (int64_t)B * H, be->gru_step_fwd(be, xg, hg, hp, ho, cache, B, H));
  BENCH_ELEMS("gru_step_bwd", shape, (int64_t)B * H, be->gru_step_bwd(be, ho, hp, cache, dxg, dhg, dhp, B, H));

  /* TF-IDF: 5000-term vocabulary, 60 terms per item, 512 outputs */
  const int VOC = 5000, NNZ_ROW = 60, NITEMS = 8000;
  int64_t *indptr = NULL;
  int32_t *indices = NULL, *irows = NULL;
  check(dt_backend_alloc(be, (size_t)(NITEMS + 1) * sizeof(int64_t), (void **)&indptr), "alloc");
  check(dt_backend_alloc(be, (size_t)NITEMS * NNZ_ROW * sizeof(int32_t), (void **)&indices), "alloc");
  check(dt_backend_alloc(be, (size_t)I * sizeof(int32_t), (void **)&irows), "alloc");
  float *values = falloc(be, (int64_t)NITEMS * NNZ_ROW, 25), *wt = falloc(be, (int64_t)VOC * C, 26);
  float *dwt = falloc(be, (int64_t)VOC * C, 27);
  for (int i = 0; i <= NITEMS; i++) indptr[i] = (int64_t)i * NNZ_ROW;
  for (int64_t i = 0; i < (int64_t)NITEMS * NNZ_ROW; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    indices[i] = (int32_t)((s >> 33) % (uint64_t)VOC);
  }
  for (int i = 0; i < I; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    irows[i] = (int32_t)((s >> 33) % (uint64_t)NITEMS);
  }
  snprintf(shape, sizeof shape, "%d rows x %d nnz x %d", I, NNZ_ROW, C);
  BENCH_ELEMS("csr_matmul", shape, (int64_t)I * NNZ_ROW * C,
              be->csr_matmul(be, x, indptr, indices, values, irows, I, wt, C));
  BENCH_ELEMS("csr_matmul_grad", shape, (int64_t)I * NNZ_ROW * C,
              be->csr_matmul_grad(be, dwt, indptr, indices, values, irows, I, x, C, VOC));

  /* dense Adam over a parameter buffer the size of the thesis model (~3.1M) */
  const int64_t NP = 3100000;
  float *p = falloc(be, NP, 28), *g = falloc(be, NP, 29), *mm = falloc(be, NP, 30), *vv = falloc(be, NP, 31);
  check(be->zero(be, mm, NP * sizeof(float)), "zero");
  check(be->zero(be, vv, NP * sizeof(float)), "zero");
  dt_adam_hyper hy = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 1.0f, 1};
  BENCH_ELEMS("adam", "3.1M params", NP, be->adam(be, p, g, mm, vv, NP, hy));
  snprintf(shape, sizeof shape, "%lld rows of %d", (long long)m, D);
  int64_t *row_step = NULL;
  check(dt_backend_alloc(be, (size_t)V * sizeof(int64_t), (void **)&row_step), "alloc");
  check(be->zero(be, row_step, (size_t)V * sizeof(int64_t)), "zero");
  float *mt = falloc(be, V * D, 32), *vt = falloc(be, V * D, 33);
  check(be->zero(be, mt, (size_t)V * D * sizeof(float)), "zero");
  check(be->zero(be, vt, (size_t)V * D * sizeof(float)), "zero");
  BENCH_ELEMS("adam_rows", shape, m * D, be->adam_rows(be, table, mt, vt, row_step, uniq, sums, m, D, hy));

  /* scores: v3 s = <u, v> for 1 + 1 candidates, d = 64; thesis mix3 */
  snprintf(shape, sizeof shape, "n=%d c=2 d=%d", B, D);
  float *u = falloc(be, (int64_t)B * D, 34), *vcand = falloc(be, (int64_t)I * D, 35), *sc = falloc(be, I, 36);
  float *du = falloc(be, (int64_t)B * D, 37), *dv = falloc(be, (int64_t)I * D, 38), *al = falloc(be, 3 * B, 39);
  float *z = falloc(be, (int64_t)I * D, 40), *dal = falloc(be, 3 * B, 41);
  BENCH_ELEMS("rowdot_fwd", shape, (int64_t)I * D, be->rowdot_fwd(be, u, vcand, sc, B, 2, D));
  BENCH_ELEMS("rowdot_bwd", shape, (int64_t)I * D, be->rowdot_bwd(be, u, vcand, sc, du, dv, B, 2, D));
  BENCH_ELEMS("mix3_fwd", shape, (int64_t)I * D, be->mix3_fwd(be, al, vcand, u, dv, z, B, 2, D));
  BENCH_ELEMS("mix3_bwd", shape, (int64_t)I * D, be->mix3_bwd(be, al, vcand, u, dv, z, dal, rows, du, sums, B, 2, D));

  /* evaluation: top-10 of 10000 items for 256 users */
  const int NU = 256, NI = 10000;
  float *scores = falloc(be, (int64_t)NU * NI, 42);
  int32_t *tidx = malloc((size_t)NU * 10 * sizeof *tidx);
  float *tval = malloc((size_t)NU * 10 * sizeof *tval);
  if (!tidx || !tval) check(DT_EXIT_RUNTIME, "malloc");
  snprintf(shape, sizeof shape, "%d x %d, k=10", NU, NI);
  BENCH_ELEMS("topk", shape, (int64_t)NU * NI, be->topk(be, scores, NU, NI, 10, tidx, tval));
  free(tidx);
  free(tval);

  printf("\n  ]\n}\n");
  /* the process ends here: the backend's buffers go with it */
  be->destroy(be);
  return 0;
}
