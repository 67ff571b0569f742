/* bench_cuda: the CUDA backend's ops at the model's shapes at Amazon
 * Electronics scale, and the floor of one training step.
 *
 * Prints one JSON object on stdout:
 *  - "floor": the FLOPs and the fewest device-memory bytes of one training
 *    step at the global batch (2048 by default) for v2 with `prefix`
 *    histories and v3 with `chunk` histories, counted from MODEL.md's
 *    shapes, term by term, with the assumptions that go into them, and for
 *    the SASRec encoder's chunk step (bench/sasrec_cost.h); and the
 *    time each takes at the device's measured rates (or, without a device,
 *    at an H100 SXM's datasheet rates).
 *  - "device", "peaks": the GPU, and its measured fp32/TF32 GEMM rate and
 *    copy bandwidth (cuBLAS SGEMM 8192^3, a 1 GiB device-to-device copy).
 *  - "ops": per op, the median time of one call over repeated calls on
 *    random inputs (each rep timed from launch to stream completion, launch
 *    overhead included: that is what a training step pays).
 *
 * Without a usable device it prints the floor with "skipped" and the reason
 * and exits 0. Options: --batch N --neg N --hist-v2 S --hist-v3 S --nnz K
 * --users N --items N --reps N --peak-n N --quick, and for SASRec
 * --sasrec-len T (tokens per window, default 2L-1 = 99) --sasrec-examples E
 * (examples per window, default L = 50) --sasrec-heads H --xent-block C
 * (softmax cross-entropy's columns per block, default 16384).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/backend.h"
#include "dtrain/backend_cuda.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"
#include "dtrain/timer.h"
#include "sasrec_cost.h"

/* ---- the model's shapes (MODEL.md) ---- */

typedef struct {
  int64_t batch, neg;   /* global batch, negatives per positive */
  int64_t hist_v2;      /* GRU steps per example, v2 prefix (<= 50) */
  double hist_v3;       /* GRU steps per example, v3 chunk (~2) */
  int64_t nnz;          /* TF-IDF nonzeros per item row */
  int64_t users, items; /* Electronics 2018 5-core, approximately */
  int64_t train_interactions;
  int reps;
  int quick;
  int peak_n; /* SGEMM size (and copy size) for the measured peaks */
  /* SASRec chunk step (issue 13): d = EMB, 2 blocks */
  int sasrec_len, sasrec_examples, sasrec_heads, xent_block;
} shapes;

enum { EMB = 64, HID = 128, GATES = 3 * HID, HIST = 50, VOCAB = 5000, C1 = 512, C2 = 256, GATE_H = 64, HEAD_H = 32 };
enum { GRU_FLOATS_PER_STEP = 2 * 768 + 2 * 512 + 4 * 128 + 2 * 768 + 3 * 128 };

/* Dense parameters (weights + biases) of each design. */
static int64_t dense_params_v2(void) {
  int64_t p = 0;
  p += 2 * EMB * 128 + 128 + 128 * EMB + EMB;                    /* static.fc1, fc2 */
  p += (int64_t)GATES * EMB + GATES * HID + 2 * GATES;           /* gru layer 0 */
  p += (int64_t)GATES * HID + GATES * HID + 2 * GATES;           /* gru layer 1 */
  p += HID * EMB + EMB;                                          /* dynamic.proj */
  p += (int64_t)VOCAB * C1 + C1 + C1 * C2 + C2 + C2 * EMB + EMB; /* content.fc1..3 */
  p += 5 * GATE_H + GATE_H + GATE_H * 3 + 3;                     /* gate */
  p += EMB * HEAD_H + HEAD_H + HEAD_H + 1;                       /* head */
  return p;
}

static int64_t dense_params_v3(void) {
  int64_t p = 0;
  p += (int64_t)GATES * EMB + GATES * HID + 2 * GATES;
  p += (int64_t)GATES * HID + GATES * HID + 2 * GATES;
  p += HID * EMB + EMB;
  p += (int64_t)VOCAB * C1 + C1 + C1 * C2 + C2 + C2 * EMB + EMB;
  p += EMB * EMB;                            /* content.user_proj */
  p += 7 * GATE_H + GATE_H + GATE_H * 3 + 3; /* gate on [c ; g] */
  return p;
}

typedef struct {
  double flops_fwd, flops_train, bytes;
  double gru_flops_train, content_flops_train, dense_bytes, table_bytes, activation_bytes, input_bytes;
  int64_t dense_params;
} step_cost;

/* FLOPs: 2 per multiply-add of every matrix product; training = forward +
 * input gradient + weight gradient (3x) for each layer, except content.fc1,
 * whose input is data (2x). Element-wise work is left out (it is bytes).
 * Bytes, the fewest an ideal step moves through device memory:
 *  - dense parameters: read once forward, gradient written once, Adam reads
 *    param, grad, m, v and writes param, m, v: 9 x 4 bytes each;
 *  - embedding rows: every gathered row read once; its gradient written,
 *    read by the coalescing, its sum written and read by lazy Adam, which
 *    reads and writes the row and its m and v: 11 x 256 bytes per row;
 *  - activations outside the GRU (each layer's output): written forward,
 *    read by the next layer, read again backward, their gradient written
 *    and read: 5 x 4 bytes per element;
 *  - the GRU, per sequence, step and layer (GRU_FLOATS_PER_STEP floats):
 *    xg and hg (3h each) written by their GEMMs and read by the gate kernel
 *    (2 x 768), the cache (4h) written forward and read backward (2 x 512),
 *    h written and read by the next step, the layer above and backward
 *    (4 x 128), dxg and dhg written and read by the GEMMs (2 x 768), dh
 *    read, added to and read again (3 x 128);
 *  - the batch's inputs (ids, histories, CSR rows of the candidates) once. */
static step_cost cost_v2_prefix(const shapes *s) {
  step_cost c = {0};
  const double B = (double)s->batch, R = B * (double)(1 + s->neg), S = (double)s->hist_v2, K = (double)s->nnz;
  const double stat = R * 2.0 * (2 * EMB * 128 + 128 * EMB);
  const double gru_step = 2.0 * ((double)EMB * GATES + (double)HID * GATES + (double)HID * GATES + (double)HID * GATES);
  const double gru = B * S * gru_step;
  const double proj = B * 2.0 * HID * EMB;
  const double cfc1 = R * 2.0 * K * C1, crest = R * 2.0 * ((double)C1 * C2 + (double)C2 * EMB);
  const double gate = B * 2.0 * (5 * GATE_H + GATE_H * 3);
  const double head = R * 2.0 * (EMB * HEAD_H + HEAD_H);
  c.flops_fwd = stat + gru + proj + cfc1 + crest + gate + head;
  c.flops_train = 3.0 * (stat + gru + proj + crest + gate + head) + 2.0 * cfc1;
  c.gru_flops_train = 3.0 * gru;
  c.content_flops_train = 3.0 * crest + 2.0 * cfc1;
  c.dense_params = dense_params_v2();
  c.dense_bytes = 9.0 * 4.0 * (double)c.dense_params;
  const double rows = B /* users */ + R /* items */ + B * S /* history items */;
  c.table_bytes = rows * 11.0 * EMB * 4.0;
  const double act = R * (2 * EMB + 128 + EMB) /* static: concat, fc1, fc2 */
                     + B * EMB                 /* proj */
                     + R * (C1 + C2 + EMB)     /* content */
                     + B * (5 + GATE_H + 3)    /* gate */
                     + R * (EMB + HEAD_H + 1); /* mix, head */
  c.activation_bytes = 5.0 * 4.0 * act + 4.0 * B * S * 2.0 * GRU_FLOATS_PER_STEP;
  c.input_bytes = 4.0 * (B + R + B * S) + R * K * 8.0 + B * 5 * 4.0;
  c.bytes = c.dense_bytes + c.table_bytes + c.activation_bytes + c.input_bytes;
  return c;
}

static step_cost cost_v3_chunk(const shapes *s) {
  step_cost c = {0};
  const double B = (double)s->batch, R = B * (double)(1 + s->neg), S = s->hist_v3, K = (double)s->nnz;
  const double dots = 3.0 * R * 2.0 * EMB; /* s_s, s_d, s_c */
  const double gru_step = 2.0 * ((double)EMB * GATES + (double)HID * GATES + (double)HID * GATES + (double)HID * GATES);
  const double gru = B * S * gru_step;
  const double proj = B * 2.0 * HID * EMB;
  const double cfc1 = R * 2.0 * K * C1, crest = R * 2.0 * ((double)C1 * C2 + (double)C2 * EMB);
  const double uproj = B * 2.0 * EMB * EMB;
  const double gate = B * 2.0 * (7 * GATE_H + GATE_H * 3);
  c.flops_fwd = dots + gru + proj + cfc1 + crest + uproj + gate;
  c.flops_train = 3.0 * (dots + gru + proj + crest + uproj + gate) + 2.0 * cfc1;
  c.gru_flops_train = 3.0 * gru;
  c.content_flops_train = 3.0 * crest + 2.0 * cfc1;
  c.dense_params = dense_params_v3();
  c.dense_bytes = 9.0 * 4.0 * (double)c.dense_params;
  /* users (static), candidate items (static + dynamic tables, + item_bias),
   * history items of the GRU pass */
  const double rows = B + 2.0 * R + B * S;
  c.table_bytes = rows * 11.0 * EMB * 4.0 + R * 11.0 * 4.0;
  const double act = B * (EMB + EMB) + R * (C1 + C2 + EMB) + B * (7 + GATE_H + 3) + R * 4.0;
  c.activation_bytes = 5.0 * 4.0 * act + 4.0 * B * S * 2.0 * GRU_FLOATS_PER_STEP;
  c.input_bytes = 4.0 * (B + R + B * S) + R * K * 8.0 + B * 7 * 4.0;
  c.bytes = c.dense_bytes + c.table_bytes + c.activation_bytes + c.input_bytes;
  return c;
}

/* ---- JSON output ---- */

static void print_cost(const char *name, const step_cost *c, const shapes *s, double flops_rate, double tf32_rate,
                       double bw, int last) {
  const double steps = ceil((double)s->train_interactions / (double)s->batch);
  const double t_fp32 = c->flops_train / flops_rate, t_tf32 = c->flops_train / tf32_rate, t_bytes = c->bytes / bw;
  const double floor_fp32 = t_fp32 > t_bytes ? t_fp32 : t_bytes, floor_tf32 = t_tf32 > t_bytes ? t_tf32 : t_bytes;
  printf(
      "    \"%s\": {\"dense_params\": %lld, \"flops_forward\": %.4g, \"flops_train_step\": %.4g, "
      "\"flops_gru\": %.4g, \"flops_content\": %.4g, \"bytes_step\": %.4g, \"bytes_dense_params_adam\": %.4g, "
      "\"bytes_embedding_rows\": %.4g, \"bytes_activations\": %.4g, \"bytes_inputs\": %.4g, "
      "\"arithmetic_intensity\": %.3g, \"floor_ms_fp32\": %.4g, \"floor_ms_tf32\": %.4g, "
      "\"floor_s_per_epoch_fp32\": %.4g, \"floor_s_per_epoch_tf32\": %.4g, \"bound_by\": \"%s\"}%s\n",
      name, (long long)c->dense_params, c->flops_fwd, c->flops_train, c->gru_flops_train, c->content_flops_train,
      c->bytes, c->dense_bytes, c->table_bytes, c->activation_bytes, c->input_bytes, c->flops_train / c->bytes,
      floor_fp32 * 1e3, floor_tf32 * 1e3, floor_fp32 * steps, floor_tf32 * steps,
      t_fp32 > t_bytes ? "fp32 arithmetic" : "memory", last ? "" : ",");
}

static sasrec_shape sasrec_of(const shapes *s) {
  sasrec_shape q = {EMB,
                    2,
                    s->sasrec_heads,
                    HIST,
                    (int)s->neg,
                    (double)s->batch,
                    (double)s->sasrec_len,
                    (double)s->sasrec_examples,
                    s->train_interactions};
  return q;
}

static void print_floor(const shapes *s, double fp32, double tf32, double bw, const char *rates_from) {
  step_cost v2 = cost_v2_prefix(s), v3 = cost_v3_chunk(s);
  printf("  \"floor\": {\n");
  printf("    \"rates\": {\"from\": \"%s\", \"fp32_flops\": %.4g, \"tf32_flops\": %.4g, \"bytes_per_s\": %.4g},\n",
         rates_from, fp32, tf32, bw);
  printf(
      "    \"assumptions\": {\"batch\": %lld, \"negatives\": %lld, \"candidates\": %lld, "
      "\"gru_steps_per_example_v2_prefix\": %lld, \"gru_steps_per_example_v3_chunk\": %.3g, "
      "\"tfidf_nnz_per_item\": %lld, \"train_interactions\": %lld, \"steps_per_epoch\": %.0f, "
      "\"note\": \"2 FLOPs per multiply-add, training = 3x forward (2x for content.fc1); bytes = each "
      "parameter, gathered row, activation and input moved the fewest times (see bench_cuda.c); v2 prefix "
      "counts every history as full (an upper bound), v3 chunk about 2 GRU steps per example (MODEL.md)\"},\n",
      (long long)s->batch, (long long)s->neg, (long long)(s->batch * (1 + s->neg)), (long long)s->hist_v2, s->hist_v3,
      (long long)s->nnz, (long long)s->train_interactions, ceil((double)s->train_interactions / (double)s->batch));
  print_cost("v2_prefix", &v2, s, fp32, tf32, bw, 0);
  print_cost("v3_chunk", &v3, s, fp32, tf32, bw, 0);
  const sasrec_shape q = sasrec_of(s);
  sasrec_cost_print("sasrec_chunk", &q, fp32, tf32, bw);
  printf("\n  }");
}

/* ---- timing ---- */

static dt_backend *g_be, *g_tf32;
static uint32_t g_draw;

static void fail_now(const char *what) {
  printf("  \"error\": \"%s: %s\"\n}\n", what, dt_error_message());
  exit(DT_EXIT_RUNTIME);
}

#define CHECK(expr)                   \
  do {                                \
    if ((expr) != 0) fail_now(#expr); \
  } while (0)

static void *dev_alloc(size_t bytes) {
  void *d = g_be->alloc(g_be, bytes ? bytes : 1);
  if (!d) fail_now("device allocation");
  return d;
}

/* Random device buffers: never time on zeros. */
static float *dev_uniform(size_t n, float lo, float hi) {
  float *h = malloc((n ? n : 1) * sizeof *h);
  g_draw++;
  for (size_t i = 0; i < n; i += 4) {
    dt_rand4 r = dt_philox(12345, DT_RNG_TEST, g_draw, (uint32_t)(i / 4), (uint32_t)((uint64_t)i >> 34), 0);
    for (size_t j = 0; j < 4 && i + j < n; j++) h[i + j] = lo + (hi - lo) * dt_u01(r.v[j]);
  }
  void *d = dev_alloc(n * sizeof *h);
  CHECK(g_be->upload(g_be, d, h, n * sizeof *h));
  free(h);
  return d;
}

static int32_t *dev_ids(size_t n, int64_t range, int unique) {
  int32_t *h = malloc((n ? n : 1) * sizeof *h);
  g_draw++;
  if (unique) {
    /* n distinct ids spread over [0, range) */
    for (size_t i = 0; i < n; i++) h[i] = (int32_t)((int64_t)i * (range / (int64_t)n));
  } else {
    for (size_t i = 0; i < n; i++) {
      dt_rand4 r = dt_philox(12345, DT_RNG_TEST, g_draw, (uint32_t)i, 0, 0);
      h[i] = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)range);
    }
  }
  void *d = dev_alloc(n * sizeof *h);
  CHECK(g_be->upload(g_be, d, h, n * sizeof *h));
  free(h);
  return d;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef int (*op_fn)(void *ctx);
static int g_first_op = 1;

/* Median seconds of one call (launch to completion), after warm-up. */
static double time_op(op_fn fn, void *ctx, int reps) {
  for (int i = 0; i < 3; i++) CHECK(fn(ctx));
  CHECK(g_be->sync(g_be));
  double *t = malloc((size_t)reps * sizeof *t);
  for (int i = 0; i < reps; i++) {
    double t0 = dt_now_s();
    CHECK(fn(ctx));
    CHECK(g_be->sync(g_be));
    t[i] = dt_now_s() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  double med = t[reps / 2];
  free(t);
  return med;
}

static void report(const char *op, const char *shape, double sec, double flops, double bytes) {
  printf("%s    {\"op\": \"%s\", \"shape\": \"%s\", \"us\": %.2f, \"gflops\": %.4g, \"gbytes_per_s\": %.4g}",
         g_first_op ? "" : ",\n", op, shape, sec * 1e6, flops / sec * 1e-9, bytes / sec * 1e-9);
  g_first_op = 0;
  fflush(stdout);
}

/* One op call with its arguments, as a closure for time_op. */
typedef struct {
  dt_backend *be;
  int ta, tb, m, n, k;
  const float *a, *b;
  float *c;
  float beta;
} gemm_ctx;
static int run_gemm(void *p) {
  gemm_ctx *g = p;
  return g->be->gemm(g->be, g->ta, g->tb, g->m, g->n, g->k, 1.0f, g->a, g->ta ? g->m : g->k, g->b, g->tb ? g->k : g->n,
                     g->beta, g->c, g->n);
}

static void bench_gemm(dt_backend *be, const char *name, int ta, int tb, int m, int n, int k, float beta, int reps) {
  gemm_ctx g = {be,
                ta,
                tb,
                m,
                n,
                k,
                dev_uniform((size_t)m * k, -1, 1),
                dev_uniform((size_t)k * n, -1, 1),
                dev_uniform((size_t)m * n, -1, 1),
                beta};
  double sec = time_op(run_gemm, &g, reps);
  char shape[96];
  snprintf(shape, sizeof shape, "%c%c m=%d n=%d k=%d%s", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
           be == g_tf32 ? " tf32" : "");
  report(name, shape, sec, 2.0 * m * n * (double)k, 4.0 * ((double)m * k + (double)k * n + 2.0 * m * n));
  g_be->free(g_be, (void *)g.a);
  g_be->free(g_be, (void *)g.b);
  g_be->free(g_be, g.c);
}

typedef struct {
  float *f[10];
  int32_t *i[4];
  int64_t *l[2];
  int64_t n, m;
  int d, c, k;
  double out;
  int32_t *idx_host; /* topk's results */
  float *val_host;
} op_ctx;

static void ctx_free(op_ctx *x) {
  for (int i = 0; i < 10; i++) g_be->free(g_be, x->f[i]);
  for (int i = 0; i < 4; i++) g_be->free(g_be, x->i[i]);
  for (int i = 0; i < 2; i++) g_be->free(g_be, x->l[i]);
}

static int run_add_bias(void *p) {
  op_ctx *x = p;
  return g_be->add_bias(g_be, x->f[0], x->f[1], x->n, x->d);
}
static int run_bias_grad(void *p) {
  op_ctx *x = p;
  return g_be->bias_grad(g_be, x->f[1], x->f[0], x->n, x->d);
}
static int run_relu_drop_fwd(void *p) {
  op_ctx *x = p;
  dt_dropout_key key = {7, 3, DT_SITE_CONTENT, x->l[0]};
  return g_be->relu_dropout_fwd(g_be, x->f[0], x->n, x->d, 1, 0.2f, key);
}
static int run_relu_drop_bwd(void *p) {
  op_ctx *x = p;
  dt_dropout_key key = {7, 3, DT_SITE_CONTENT, x->l[0]};
  return g_be->relu_dropout_bwd(g_be, x->f[1], x->f[0], x->n, x->d, 1, 0.2f, key);
}
static int run_gather(void *p) {
  op_ctx *x = p;
  return g_be->gather_rows(g_be, x->f[1], x->f[0], x->i[0], x->n, x->d);
}
static int run_coalesce(void *p) {
  op_ctx *x = p;
  return g_be->coalesce_rows(g_be, x->i[0], x->f[0], x->n, x->d, x->i[1], x->f[1], &x->m);
}
static int run_gru_fwd(void *p) {
  op_ctx *x = p;
  return g_be->gru_step_fwd(g_be, x->f[0], x->f[1], x->f[2], x->f[3], x->f[4], x->n, x->d);
}
static int run_gru_bwd(void *p) {
  op_ctx *x = p;
  return g_be->gru_step_bwd(g_be, x->f[3], x->f[2], x->f[4], x->f[0], x->f[1], x->f[5], x->n, x->d);
}
static int run_csr(void *p) {
  op_ctx *x = p;
  return g_be->csr_matmul(g_be, x->f[1], x->l[0], x->i[0], x->f[0], x->i[1], x->n, x->f[2], x->d);
}
static int run_csr_grad(void *p) {
  op_ctx *x = p;
  return g_be->csr_matmul_grad(g_be, x->f[2], x->l[0], x->i[0], x->f[0], x->i[1], x->n, x->f[1], x->d, VOCAB);
}
static int run_softmax3(void *p) {
  op_ctx *x = p;
  return g_be->softmax3_fwd(g_be, x->f[0], x->f[1], x->n);
}
static int run_gate_reg(void *p) {
  op_ctx *x = p;
  const float mean[3] = {0.4f, 0.3f, 0.3f};
  return g_be->gate_reg(g_be, x->f[1], x->n, 0.05f, 0.01f, mean, x->n, x->f[2], &x->out);
}
static int run_bpr(void *p) {
  op_ctx *x = p;
  return g_be->bpr(g_be, x->f[0], x->n, x->c, 1.0f / (float)x->n, x->f[1], &x->out);
}
static int run_rowdot_fwd(void *p) {
  op_ctx *x = p;
  return g_be->rowdot_fwd(g_be, x->f[0], x->f[1], x->f[2], x->n, x->c, x->d);
}
static int run_rowdot_bwd(void *p) {
  op_ctx *x = p;
  return g_be->rowdot_bwd(g_be, x->f[0], x->f[1], x->f[2], x->f[3], x->f[4], x->n, x->c, x->d);
}
/* mix3: f[0] alpha [n,3], f[1] hs, f[2] hd [n,d], f[3] hc, f[4] z (the
 * forward's output, the backward's dz), f[5] dalpha, f[6] dhs, f[7] dhd,
 * f[8] dhc. */
static int run_mix3_fwd(void *p) {
  op_ctx *x = p;
  return g_be->mix3_fwd(g_be, x->f[0], x->f[1], x->f[2], x->f[3], x->f[4], x->n, x->c, x->d);
}
static int run_mix3_bwd(void *p) {
  op_ctx *x = p;
  return g_be->mix3_bwd(g_be, x->f[0], x->f[1], x->f[2], x->f[3], x->f[4], x->f[5], x->f[6], x->f[7], x->f[8], x->n,
                        x->c, x->d);
}
static int run_adam(void *p) {
  op_ctx *x = p;
  dt_adam_hyper h = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 1.0f, 10};
  return g_be->adam(g_be, x->f[0], x->f[1], x->f[2], x->f[3], x->n, h);
}
static int run_adam_rows(void *p) {
  op_ctx *x = p;
  dt_adam_hyper h = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 0};
  return g_be->adam_rows(g_be, x->f[0], x->f[1], x->f[2], x->l[0], x->i[0], x->f[3], x->m, x->d, h);
}
static int run_sumsq(void *p) {
  op_ctx *x = p;
  return g_be->sumsq(g_be, x->f[0], x->n, &x->out);
}
static int run_topk(void *p) {
  op_ctx *x = p;
  return g_be->topk(g_be, x->f[0], x->n, x->m, x->k, x->idx_host, x->val_host);
}

static void bench_sasrec_ops(const shapes *s);

static void bench_ops(const shapes *s) {
  const int reps = s->reps;
  const int64_t B = s->batch, R = s->batch * (1 + s->neg);
  char shape[128];

  /* GEMMs at the model's shapes: forward, input gradient, weight gradient. */
  bench_gemm(g_be, "gemm static.fc1 fwd", 0, 1, (int)R, 128, 128, 0.0f, reps);
  bench_gemm(g_be, "gemm content.fc2 fwd", 0, 1, (int)R, C2, C1, 0.0f, reps);
  bench_gemm(g_be, "gemm content.fc2 dX", 0, 0, (int)R, C1, C2, 0.0f, reps);
  bench_gemm(g_be, "gemm content.fc2 dW", 1, 0, C2, C1, (int)R, 1.0f, reps);
  bench_gemm(g_be, "gemm gru hh step", 0, 1, (int)B, GATES, HID, 0.0f, reps);
  bench_gemm(g_tf32, "gemm gru hh step", 0, 1, (int)B, GATES, HID, 0.0f, reps);
  bench_gemm(g_be, "gemm gru ih all steps", 0, 1, (int)(B * s->hist_v2), GATES, EMB, 0.0f, reps);
  bench_gemm(g_tf32, "gemm gru ih all steps", 0, 1, (int)(B * s->hist_v2), GATES, EMB, 0.0f, reps);
  bench_gemm(g_be, "gemm gru W_hh dW", 1, 0, GATES, HID, (int)B, 1.0f, reps);

  {
    op_ctx x = {.n = R, .d = C1};
    x.f[0] = dev_uniform((size_t)(R * C1), -1, 1);
    x.f[1] = dev_uniform(C1, -1, 1);
    double sec = time_op(run_add_bias, &x, reps);
    snprintf(shape, sizeof shape, "[%lld, %d]", (long long)R, C1);
    report("add_bias", shape, sec, 0, 8.0 * (double)(R * C1));
    sec = time_op(run_bias_grad, &x, reps);
    report("bias_grad", shape, sec, (double)(R * C1), 4.0 * (double)(R * C1));
    ctx_free(&x);
  }
  {
    op_ctx x = {.n = B * s->hist_v2, .d = GATES};
    x.f[0] = dev_uniform((size_t)(x.n * GATES), -1, 1);
    x.f[1] = dev_uniform(GATES, -1, 1);
    double sec = time_op(run_bias_grad, &x, reps);
    snprintf(shape, sizeof shape, "[%lld, %d] (GRU bias over all steps)", (long long)x.n, GATES);
    report("bias_grad", shape, sec, (double)(x.n * GATES), 4.0 * (double)(x.n * GATES));
    ctx_free(&x);
  }
  {
    op_ctx x = {.n = R, .d = C1};
    x.f[0] = dev_uniform((size_t)(R * C1), -1, 1);
    x.f[1] = dev_uniform((size_t)(R * C1), -1, 1);
    int64_t *keys = malloc((size_t)R * sizeof *keys);
    for (int64_t r = 0; r < R; r++) keys[r] = r * 31 + 5;
    x.l[0] = dev_alloc((size_t)R * 8);
    CHECK(g_be->upload(g_be, x.l[0], keys, (size_t)R * 8));
    free(keys);
    snprintf(shape, sizeof shape, "[%lld, %d] relu p=0.2", (long long)R, C1);
    report("relu_dropout_fwd", shape, time_op(run_relu_drop_fwd, &x, reps), 0, 8.0 * (double)(R * C1));
    report("relu_dropout_bwd", shape, time_op(run_relu_drop_bwd, &x, reps), 0, 12.0 * (double)(R * C1));
    ctx_free(&x);
  }
  {
    op_ctx x = {.n = R, .d = EMB};
    x.f[0] = dev_uniform((size_t)(s->items * EMB), -0.01f, 0.01f);
    x.f[1] = dev_uniform((size_t)(B * s->hist_v2 * EMB), -1, 1);
    x.i[0] = dev_ids((size_t)(B * s->hist_v2), s->items, 0);
    x.i[1] = dev_ids((size_t)(B * s->hist_v2), 1, 0);
    snprintf(shape, sizeof shape, "%lld rows of %d from %lld", (long long)R, EMB, (long long)s->items);
    report("gather_rows", shape, time_op(run_gather, &x, reps), 0, 8.0 * (double)(R * EMB));
    snprintf(shape, sizeof shape, "%lld rows of %d, ids < %lld", (long long)R, EMB, (long long)s->items);
    report("coalesce_rows", shape, time_op(run_coalesce, &x, reps), (double)(R * EMB), 12.0 * (double)(R * EMB));
    x.n = B * s->hist_v2;
    snprintf(shape, sizeof shape, "%lld rows of %d (history items)", (long long)x.n, EMB);
    report("coalesce_rows", shape, time_op(run_coalesce, &x, reps), (double)(x.n * EMB), 12.0 * (double)(x.n * EMB));
    ctx_free(&x);
  }
  {
    op_ctx x = {.n = B, .d = HID};
    x.f[0] = dev_uniform((size_t)(B * GATES), -1, 1);
    x.f[1] = dev_uniform((size_t)(B * GATES), -1, 1);
    x.f[2] = dev_uniform((size_t)(B * HID), -1, 1);
    x.f[3] = dev_uniform((size_t)(B * HID), -1, 1);
    x.f[4] = dev_uniform((size_t)(B * 4 * HID), 0, 1);
    x.f[5] = dev_uniform((size_t)(B * HID), -1, 1);
    snprintf(shape, sizeof shape, "a=%lld h=%d", (long long)B, HID);
    report("gru_step_fwd", shape, time_op(run_gru_fwd, &x, reps), 0, 4.0 * (double)(B * (6 * HID + 2 * HID + 4 * HID)));
    report("gru_step_bwd", shape, time_op(run_gru_bwd, &x, reps), 0,
           4.0 * (double)(B * (HID + HID + 4 * HID + 6 * HID + 2 * HID)));
    ctx_free(&x);
  }
  {
    /* CSR rows of `nnz` spread columns for every item; the batch's candidates. */
    const int64_t n_rows = s->items, K = s->nnz;
    int64_t *indptr = malloc((size_t)(n_rows + 1) * sizeof *indptr);
    int32_t *indices = malloc((size_t)(n_rows * K) * sizeof *indices);
    for (int64_t r = 0; r <= n_rows; r++) indptr[r] = r * K;
    for (int64_t r = 0; r < n_rows; r++)
      for (int64_t j = 0; j < K; j++) indices[r * K + j] = (int32_t)((j * (VOCAB / K) + r % 17) % VOCAB);
    op_ctx x = {.n = R, .d = C1};
    x.l[0] = dev_alloc((size_t)(n_rows + 1) * 8);
    CHECK(g_be->upload(g_be, x.l[0], indptr, (size_t)(n_rows + 1) * 8));
    x.i[0] = dev_alloc((size_t)(n_rows * K) * 4);
    CHECK(g_be->upload(g_be, x.i[0], indices, (size_t)(n_rows * K) * 4));
    free(indptr);
    free(indices);
    x.f[0] = dev_uniform((size_t)(n_rows * K), 0.01f, 0.3f);
    x.i[1] = dev_ids((size_t)R, n_rows, 0);
    x.f[1] = dev_uniform((size_t)(R * C1), -1, 1);
    x.f[2] = dev_uniform((size_t)VOCAB * C1, -0.05f, 0.05f);
    snprintf(shape, sizeof shape, "%lld rows x %lld nnz, o=%d", (long long)R, (long long)K, C1);
    report("csr_matmul", shape, time_op(run_csr, &x, reps), 2.0 * (double)(R * K * C1),
           4.0 * (double)(VOCAB * C1 + R * C1) + 8.0 * (double)(R * K));
    report("csr_matmul_grad", shape, time_op(run_csr_grad, &x, reps), 2.0 * (double)(R * K * C1),
           8.0 * (double)(VOCAB * C1) + 4.0 * (double)(R * C1) + 8.0 * (double)(R * K));
    ctx_free(&x);
  }
  {
    op_ctx x = {.n = B, .c = (int)(1 + s->neg), .d = EMB};
    x.f[0] = dev_uniform((size_t)(B * 3), -3, 3);
    x.f[1] = dev_uniform((size_t)(B * 3), 0, 1);
    x.f[2] = dev_uniform((size_t)(B * 3), -1, 1);
    snprintf(shape, sizeof shape, "n=%lld", (long long)B);
    report("softmax3_fwd", shape, time_op(run_softmax3, &x, reps), 0, 24.0 * (double)B);
    report("gate_reg", shape, time_op(run_gate_reg, &x, reps), 0, 36.0 * (double)B);
    ctx_free(&x);
  }
  {
    const int c = (int)(1 + s->neg);
    const size_t nq = (size_t)(B * c * EMB), nu = (size_t)(B * EMB);
    op_ctx x = {.n = B, .c = c, .d = EMB};
    /* bpr and rowdot: f[0] scores / u, f[1] dscores / v, f[2] out, f[3] du, f[4] dv */
    x.f[0] = dev_uniform(nu, -1, 1);
    x.f[1] = dev_uniform(nq, -1, 1);
    x.f[2] = dev_uniform((size_t)(B * c), -1, 1);
    x.f[3] = dev_uniform(nu, -1, 1);
    x.f[4] = dev_uniform(nq, -1, 1);
    snprintf(shape, sizeof shape, "n=%lld c=%d", (long long)B, c);
    report("bpr", shape, time_op(run_bpr, &x, reps), 0, 8.0 * (double)(B * c));
    snprintf(shape, sizeof shape, "n=%lld c=%d d=%d", (long long)B, c, EMB);
    report("rowdot_fwd", shape, time_op(run_rowdot_fwd, &x, reps), 2.0 * (double)nq, 4.0 * (double)(nu + nq));
    report("rowdot_bwd", shape, time_op(run_rowdot_bwd, &x, reps), 4.0 * (double)nq, 4.0 * (double)(3 * nu + 3 * nq));
    ctx_free(&x);

    op_ctx y = {.n = B, .c = c, .d = EMB};
    y.f[0] = dev_uniform((size_t)(B * 3), 0, 1);
    y.f[1] = dev_uniform(nq, -1, 1);
    y.f[2] = dev_uniform(nu, -1, 1);
    y.f[3] = dev_uniform(nq, -1, 1);
    y.f[4] = dev_uniform(nq, -1, 1);
    y.f[5] = dev_uniform((size_t)(B * 3), -1, 1);
    y.f[6] = dev_uniform(nq, -1, 1);
    y.f[7] = dev_uniform(nu, -1, 1);
    y.f[8] = dev_uniform(nq, -1, 1);
    report("mix3_fwd", shape, time_op(run_mix3_fwd, &y, reps), 0, 4.0 * (double)(3 * nq + nu));
    report("mix3_bwd", shape, time_op(run_mix3_bwd, &y, reps), 0, 4.0 * (double)(8 * nq + 3 * nu));
    ctx_free(&y);
  }
  {
    op_ctx x = {.n = dense_params_v2()};
    x.f[0] = dev_uniform((size_t)x.n, -1, 1);
    x.f[1] = dev_uniform((size_t)x.n, -1, 1);
    x.f[2] = dev_uniform((size_t)x.n, -0.1f, 0.1f);
    x.f[3] = dev_uniform((size_t)x.n, 0, 0.01f);
    snprintf(shape, sizeof shape, "%lld dense parameters (v2)", (long long)x.n);
    report("adam", shape, time_op(run_adam, &x, reps), 0, 28.0 * (double)x.n);
    report("sumsq", shape, time_op(run_sumsq, &x, reps), 0, 4.0 * (double)x.n);
    ctx_free(&x);
  }
  {
    op_ctx x = {.m = R, .d = EMB};
    x.f[0] = dev_uniform((size_t)(s->items * EMB), -0.01f, 0.01f);
    x.f[1] = dev_uniform((size_t)(s->items * EMB), -0.01f, 0.01f);
    x.f[2] = dev_uniform((size_t)(s->items * EMB), 0, 0.001f);
    x.f[3] = dev_uniform((size_t)(R * EMB), -1, 1);
    x.i[0] = dev_ids((size_t)R, s->items, 1);
    x.l[0] = dev_alloc((size_t)s->items * 8);
    CHECK(g_be->zero(g_be, x.l[0], (size_t)s->items * 8));
    snprintf(shape, sizeof shape, "%lld rows of %d in a table of %lld", (long long)R, EMB, (long long)s->items);
    report("adam_rows", shape, time_op(run_adam_rows, &x, reps), 0, 4.0 * 7.0 * (double)(R * EMB));
    ctx_free(&x);
  }
  {
    const int64_t rows = s->quick ? 64 : 1024, cols = s->items;
    op_ctx x = {.n = rows, .m = cols, .k = 10};
    x.f[0] = dev_uniform((size_t)(rows * cols), -1, 1);
    x.idx_host = malloc((size_t)(rows * 200) * sizeof *x.idx_host);
    x.val_host = malloc((size_t)(rows * 200) * sizeof *x.val_host);
    snprintf(shape, sizeof shape, "%lld rows x %lld items, k=10", (long long)rows, (long long)cols);
    report("topk", shape, time_op(run_topk, &x, reps), 0, 4.0 * (double)(rows * cols));
    x.k = 200;
    x.n = s->quick ? 8 : 64;
    snprintf(shape, sizeof shape, "%lld rows x %lld items, k=200 (sort path)", (long long)x.n, (long long)cols);
    report("topk", shape, time_op(run_topk, &x, reps < 10 ? reps : 10), 0, 4.0 * (double)(x.n * cols));
    free(x.idx_host);
    free(x.val_host);
    ctx_free(&x);
  }
  bench_sasrec_ops(s);
}

/* ---- the SASRec chunk step's ops (issue 13) ---- */

/* f: 0 x / qkv, 1 y / out, 2 weight, 3 bias, 4 mean, 5 rstd, 6 dy / dout,
 * 7 dx / dqkv, 8 probs, 9 pos; i: 0 offsets, 1 ids */
typedef struct {
  op_ctx x;
  dt_seq_windows w;
  int heads;
} seq_ctx;

static int run_ln_fwd(void *p) {
  seq_ctx *q = p;
  op_ctx *x = &q->x;
  return g_be->layer_norm_fwd(g_be, x->f[0], x->f[2], x->f[3], 1e-8f, x->n, x->d, x->f[1], x->f[4], x->f[5]);
}
static int run_ln_bwd(void *p) {
  seq_ctx *q = p;
  op_ctx *x = &q->x;
  return g_be->layer_norm_bwd(g_be, x->f[6], x->f[0], x->f[2], x->f[4], x->f[5], x->n, x->d, x->f[7], 1, x->f[2],
                              x->f[3]);
}
static int run_attn_fwd(void *p) {
  seq_ctx *q = p;
  return g_be->attn_fwd(g_be, q->x.f[0], q->w, q->x.d, q->heads, q->x.f[1], q->x.f[8]);
}
static int run_attn_bwd(void *p) {
  seq_ctx *q = p;
  return g_be->attn_bwd(g_be, q->x.f[0], q->x.f[8], q->x.f[6], q->w, q->x.d, q->heads, q->x.f[7]);
}
static int run_seq_embed(void *p) {
  seq_ctx *q = p;
  return g_be->seq_embed_fwd(g_be, q->x.f[2], q->x.i[1], 8.0f, q->x.f[9], 2 * HIST, q->w, q->x.d, q->x.f[1]);
}
static int run_pos_grad(void *p) {
  seq_ctx *q = p;
  return g_be->seq_pos_grad(g_be, q->x.f[6], q->w, q->x.d, 2 * HIST, q->x.f[9]);
}
/* losses: f[0] scores, f[1] dscores, f[2] run_max, f[3] run_sum, f[4] tgt_score, i[0] target */
static int run_bce(void *p) {
  op_ctx *x = p;
  return g_be->bce(g_be, x->f[0], x->n, x->c, 1.0f / (float)x->n, x->f[1], &x->out);
}
static int run_xent_stats(void *p) {
  op_ctx *x = p;
  return g_be->xent_stats(g_be, x->f[0], x->n, x->c, x->c, 0, x->i[0], 1, x->f[2], x->f[3], x->f[4]);
}
static int run_xent_grad(void *p) {
  op_ctx *x = p;
  return g_be->xent_grad(g_be, x->f[0], x->n, x->c, x->c, 0, x->i[0], x->f[2], 1.0f / (float)x->n, x->f[1], x->c);
}

static void bench_sasrec_ops(const shapes *s) {
  const int reps = s->reps, d = EMB, len = s->sasrec_len, h = s->sasrec_heads;
  const int64_t W = (s->batch + s->sasrec_examples - 1) / s->sasrec_examples, N = W * len;
  char shape[160];
  int32_t *off = malloc((size_t)(W + 1) * sizeof *off);
  for (int64_t k = 0; k <= W; k++) off[k] = (int32_t)(k * len);
  seq_ctx q = {.x = {.n = N, .d = d}, .heads = h};
  q.x.i[0] = dev_alloc((size_t)(W + 1) * sizeof *off);
  CHECK(g_be->upload(g_be, q.x.i[0], off, (size_t)(W + 1) * sizeof *off));
  q.w = (dt_seq_windows){q.x.i[0], W, N, len};
  const int64_t np = dt_attn_probs_floats(off, W, h);
  free(off);
  q.x.f[0] = dev_uniform((size_t)(N * 3 * d), -1, 1);
  q.x.f[1] = dev_uniform((size_t)(N * d), -1, 1);
  q.x.f[2] = dev_uniform((size_t)(s->items * d), 0.5f, 1.5f); /* LN weight; the item table for seq_embed */
  q.x.f[3] = dev_uniform((size_t)d, -1, 1);
  q.x.f[4] = dev_uniform((size_t)N, -1, 1);
  q.x.f[5] = dev_uniform((size_t)N, 0.5f, 2);
  q.x.f[6] = dev_uniform((size_t)(N * d), -1, 1);
  q.x.f[7] = dev_uniform((size_t)(N * 3 * d), -1, 1);
  q.x.f[8] = dev_uniform((size_t)np, 0, 1);
  q.x.f[9] = dev_uniform((size_t)(2 * HIST * d), -0.01f, 0.01f);
  q.x.i[1] = dev_ids((size_t)N, s->items, 0);
  const double nd = (double)(N * d);
  snprintf(shape, sizeof shape, "[%lld, %d]", (long long)N, d);
  report("layer_norm_fwd", shape, time_op(run_ln_fwd, &q, reps), 0, 4.0 * (2.0 * nd + 2.0 * N));
  report("layer_norm_bwd", shape, time_op(run_ln_bwd, &q, reps), 0, 4.0 * (4.0 * nd + 2.0 * N));
  const double attn_flops = 2.0 * 2.0 * (double)W * len * (double)len * d;
  snprintf(shape, sizeof shape, "%lld windows x %d tokens, d=%d, heads=%d", (long long)W, len, d, h);
  report("attn_fwd", shape, time_op(run_attn_fwd, &q, reps), attn_flops, 4.0 * (4.0 * nd + (double)np));
  report("attn_bwd", shape, time_op(run_attn_bwd, &q, reps), 2.0 * attn_flops, 4.0 * (8.0 * nd + (double)np));
  snprintf(shape, sizeof shape, "%lld tokens of %d", (long long)N, d);
  report("seq_embed_fwd", shape, time_op(run_seq_embed, &q, reps), 2.0 * nd, 4.0 * 3.0 * nd);
  report("seq_pos_grad", shape, time_op(run_pos_grad, &q, reps), nd, 4.0 * (nd + 2.0 * len * d));
  ctx_free(&q.x);

  const int c = (int)(1 + s->neg);
  op_ctx x = {.n = s->batch, .c = c};
  x.f[0] = dev_uniform((size_t)(s->batch * c), -3, 3);
  x.f[1] = dev_uniform((size_t)(s->batch * c), -1, 1);
  snprintf(shape, sizeof shape, "n=%lld c=%d", (long long)s->batch, c);
  report("bce", shape, time_op(run_bce, &x, reps), 0, 8.0 * (double)(s->batch * c));
  ctx_free(&x);
  /* the full-catalogue softmax's block: [batch, xent_block] */
  op_ctx y = {.n = s->batch, .c = s->xent_block};
  const size_t ns = (size_t)(s->batch * s->xent_block);
  y.f[0] = dev_uniform(ns, -3, 3);
  y.f[1] = dev_uniform(ns, -1, 1);
  y.f[2] = dev_uniform((size_t)s->batch, 2, 3);
  y.f[3] = dev_uniform((size_t)s->batch, 1, 2);
  y.f[4] = dev_uniform((size_t)s->batch, -1, 1);
  y.i[0] = dev_ids((size_t)s->batch, s->xent_block, 0);
  snprintf(shape, sizeof shape, "[%lld, %d] block of %lld items", (long long)s->batch, s->xent_block,
           (long long)s->items);
  report("xent_stats", shape, time_op(run_xent_stats, &y, reps), 0, 4.0 * (double)ns);
  report("xent_grad", shape, time_op(run_xent_grad, &y, reps), 0, 8.0 * (double)ns);
  ctx_free(&y);
}

/* Peak rates measured once: SGEMM 8192^3 (fp32 and TF32) and a 1 GiB copy. */
static void measure_peaks(int n, double *fp32, double *tf32, double *bw) {
  gemm_ctx g = {g_be,
                0,
                0,
                n,
                n,
                n,
                dev_uniform((size_t)n * n, -1, 1),
                dev_uniform((size_t)n * n, -1, 1),
                dev_uniform((size_t)n * n, -1, 1),
                0.0f};
  *fp32 = 2.0 * n * (double)n * n / time_op(run_gemm, &g, 5);
  g.be = g_tf32;
  *tf32 = 2.0 * n * (double)n * n / time_op(run_gemm, &g, 5);
  g_be->free(g_be, (void *)g.a);
  g_be->free(g_be, (void *)g.b);
  g_be->free(g_be, g.c);
  const size_t bytes = (size_t)n * n * 16; /* 1 GiB at n = 8192 */
  void *a = dev_alloc(bytes), *b = dev_alloc(bytes);
  CHECK(g_be->zero(g_be, a, bytes));
  double best = 1e30;
  for (int i = 0; i < 6; i++) {
    CHECK(g_be->sync(g_be));
    double t0 = dt_now_s();
    CHECK(g_be->copy(g_be, b, a, bytes));
    CHECK(g_be->sync(g_be));
    double t = dt_now_s() - t0;
    if (i > 0 && t < best) best = t;
  }
  *bw = 2.0 * (double)bytes / best; /* read + write */
  g_be->free(g_be, a);
  g_be->free(g_be, b);
}

int main(int argc, char **argv) {
  shapes s = {2048, 1, HIST, 2.0, 60, 728719, 159729, 4717000, 50, 0, 8192, 2 * HIST - 1, HIST, 1, 16384};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) {
      s.quick = 1;
      s.reps = 5;
    } else if (v && !strcmp(a, "--batch")) {
      s.batch = atoll(v), i++;
    } else if (v && !strcmp(a, "--neg")) {
      s.neg = atoll(v), i++;
    } else if (v && !strcmp(a, "--hist-v2")) {
      s.hist_v2 = atoll(v), i++;
    } else if (v && !strcmp(a, "--hist-v3")) {
      s.hist_v3 = atof(v), i++;
    } else if (v && !strcmp(a, "--nnz")) {
      s.nnz = atoll(v), i++;
    } else if (v && !strcmp(a, "--users")) {
      s.users = atoll(v), i++;
    } else if (v && !strcmp(a, "--items")) {
      s.items = atoll(v), i++;
    } else if (v && !strcmp(a, "--peak-n")) {
      s.peak_n = atoi(v), i++;
    } else if (v && !strcmp(a, "--reps")) {
      s.reps = atoi(v), i++;
    } else if (v && !strcmp(a, "--sasrec-len")) {
      s.sasrec_len = atoi(v), i++;
    } else if (v && !strcmp(a, "--sasrec-examples")) {
      s.sasrec_examples = atoi(v), i++;
    } else if (v && !strcmp(a, "--sasrec-heads")) {
      s.sasrec_heads = atoi(v), i++;
    } else if (v && !strcmp(a, "--xent-block")) {
      s.xent_block = atoi(v), i++;
    } else {
      fprintf(stderr, "bench_cuda: unknown option %s (see the comment at the top of bench/bench_cuda.c)\n", a);
      return DT_EXIT_USAGE;
    }
  }
  if (s.batch < 1 || s.neg < 1 || s.hist_v2 < 1 || s.hist_v2 > HIST || s.nnz < 1 || s.nnz > VOCAB || s.reps < 1 ||
      s.peak_n < 64 || s.items < s.batch * (1 + s.neg) || s.sasrec_len < 1 || s.sasrec_len > 2 * HIST ||
      s.sasrec_examples < 1 || s.sasrec_examples > s.sasrec_len + 1 || s.sasrec_heads < 1 || EMB % s.sasrec_heads ||
      s.xent_block < 1) {
    fprintf(stderr, "bench_cuda: options out of range\n");
    return DT_EXIT_USAGE;
  }

  printf("{\n  \"bench\": \"cuda\",\n");
  char why[512] = "";
  if (dt_backend_cuda_device_count(why, sizeof why) == 0) {
    /* H100 SXM datasheet: 67 TFLOP/s fp32, 495 TFLOP/s dense TF32, 3.35 TB/s. */
    printf("  \"skipped\": \"no usable CUDA device: ");
    for (const char *p = why; *p; p++) putchar(*p == '"' ? '\'' : *p);
    printf("\",\n");
    print_floor(&s, 67e12, 495e12, 3.35e12, "datasheet H100 SXM (no device here)");
    printf("\n}\n");
    return 0;
  }
  if (dt_backend_cuda_create(0, 0, &g_be) || dt_backend_cuda_create(0, 1, &g_tf32)) fail_now("creating the backend");
  size_t used0 = 0, total = 0;
  CHECK(dt_backend_cuda_mem_info(g_be, &used0, &total));
  printf("  \"device\": {\"memory_total_bytes\": %zu},\n", total);
  double fp32 = 0, tf32 = 0, bw = 0;
  measure_peaks(s.peak_n, &fp32, &tf32, &bw);
  printf("  \"peaks\": {\"sgemm_fp32_flops\": %.4g, \"sgemm_tf32_flops\": %.4g, \"copy_bytes_per_s\": %.4g},\n", fp32,
         tf32, bw);
  print_floor(&s, fp32, tf32, bw, "measured on this device");
  printf(",\n  \"ops\": [\n");
  bench_ops(&s);
  size_t used1 = 0;
  CHECK(dt_backend_cuda_mem_info(g_be, &used1, &total));
  printf("\n  ],\n  \"memory_used_bytes_at_end\": %zu\n}\n", used1);
  g_tf32->destroy(g_tf32);
  g_be->destroy(g_be);
  return 0;
}
