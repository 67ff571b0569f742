/* Whole-model gradient check: every parameter group (dense and tables) of
 * every version x variant x history mode, with either sequence encoder (GRU;
 * SASRec with 1 and 2 heads, windows of 0, 1 and many items), against
 * central finite differences of L = <R, scores> + <Q, alpha> computed in
 * float64 from the fp32 model, along a random direction per group (dropout
 * on, masks fixed by their keys). Also: GRU read-outs against a float64
 * reference GRU over the unpadded history, batch-composition invariance,
 * and SASRec's chunk pass against each example's own window. */
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
#include "model/model_internal.h"
#include "test_model_util.h"

/* Stated tolerance: |fd - backward| <= 2e-2 * max(|fd|, |backward|, 1e-2)
 * for the directional derivative of each parameter group (fp32 forward
 * passes; a wrong gradient term shows up as errors of order 1). */
#define REL_TOL 2e-2

typedef struct {
  dt_dataset ds;
  dt_config cfg;
  dt_backend *be;
  dt_model *m;
  dt_batch_builder *bb;
  float *R, *Q;   /* host weights of the objective */
  float *dR, *dQ; /* backend copies */
} fixture;

static double objective(fixture *f) {
  const float *scores, *alpha;
  if (dt_model_forward(f->m, dt_batch_get(f->bb), &scores, &alpha)) fail_msg("forward: %s", dt_error_message());
  const dt_batch *b = dt_batch_get(f->bb);
  double L = 0;
  for (int64_t i = 0; i < b->nc; i++) L += (double)f->R[i] * scores[i];
  for (int64_t i = 0; i < b->n * 3; i++) L += (double)f->Q[i] * alpha[i];
  return L;
}

static void setup_case_enc(fixture *f, const char *version, const char *variant, const char *history,
                           const char *encoder, int heads) {
  memset(f, 0, sizeof *f);
  const int L = 4;
  tiny_dataset(&f->ds, 7, 23, 14, 9, L, 5);
  assert_int_equal(small_config_enc(&f->cfg, version, variant, history, L, encoder, heads), 0);
  assert_int_equal(dt_backend_cpu_create(1, &f->be), 0);
  assert_int_equal(dt_model_create(&f->cfg, f->be, f->ds.n_users, f->ds.n_items, f->ds.vocab_size, f->ds.tfidf_indptr,
                                   f->ds.tfidf_indices, f->ds.tfidf_values, &f->m),
                   0);
  assert_int_equal(dt_model_init(f->m, 1234), 0);
  /* larger tables than N(0, 0.01^2) so every path has signal */
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &f->m->tables[t];
    if (!tb->present) continue;
    for (int64_t e = (t == DT_TABLE_DYN_ITEM ? tb->dim : 0); e < tb->rows * tb->dim; e++) {
      dt_rand4 r = dt_philox(9, DT_RNG_TEST, (uint32_t)t, (uint32_t)e, 3, 0);
      tb->data[e] = 0.5f * dt_normal_from(r.v[0], r.v[1]);
    }
  }
  /* random biases too: zero biases put ReLU inputs exactly on the kink
   * (an item with an empty TF-IDF row has content.fc1 pre-activation = bias) */
  for (int64_t e = 0; e < f->m->n_dense; e++) {
    dt_rand4 r = dt_philox(10, DT_RNG_TEST, (uint32_t)e, 4, 0, 0);
    f->m->w[e] += 0.2f * dt_normal_from(r.v[0], r.v[1]);
  }
  assert_int_equal(dt_batch_builder_create(f->m, &f->ds, f->be, &f->bb), 0);
  /* units: chunks of L train positions in chunk mode, single positions otherwise */
  dt_unit units[64];
  int n_units = 0;
  for (int u = 0; u < 4; u++) {
    int32_t ntr = f->ds.user_n_train[u];
    if (f->m->history == DT_HISTORY_CHUNK) {
      for (int32_t s = 0; s < ntr; s += L) units[n_units++] = (dt_unit){u, s, ntr - s < L ? ntr - s : L};
    } else {
      for (int32_t p = 0; p < ntr; p += 2) units[n_units++] = (dt_unit){u, p, 1};
    }
  }
  /* windows of 0 and 1 items: a chunk of the first position alone, one of
   * the first two (chunk mode); position 1 (the others) */
  if (f->m->history == DT_HISTORY_CHUNK) {
    units[n_units++] = (dt_unit){4, 0, 1};
    units[n_units++] = (dt_unit){5, 0, 2};
  } else {
    units[n_units++] = (dt_unit){4, 1, 1};
  }
  assert_int_equal(dt_batch_build_train(f->bb, units, n_units, 3, 17, 42, 2, 10), 0);
  const dt_batch *b = dt_batch_get(f->bb);
  f->R = malloc((size_t)b->nc * sizeof(float));
  f->Q = malloc((size_t)b->n * 3 * sizeof(float));
  for (int64_t i = 0; i < b->nc; i++) {
    dt_rand4 r = dt_philox(77, DT_RNG_TEST, (uint32_t)i, 1, 0, 0);
    f->R[i] = dt_normal_from(r.v[0], r.v[1]);
  }
  for (int64_t i = 0; i < b->n * 3; i++) {
    dt_rand4 r = dt_philox(77, DT_RNG_TEST, (uint32_t)i, 2, 0, 0);
    f->Q[i] = dt_normal_from(r.v[0], r.v[1]);
  }
  assert_int_equal(dt_backend_alloc(f->be, (size_t)b->nc * sizeof(float), (void **)&f->dR), 0);
  assert_int_equal(dt_backend_alloc(f->be, (size_t)b->n * 3 * sizeof(float), (void **)&f->dQ), 0);
  f->be->upload(f->be, f->dR, f->R, (size_t)b->nc * sizeof(float));
  f->be->upload(f->be, f->dQ, f->Q, (size_t)b->n * 3 * sizeof(float));
}

static void setup_case(fixture *f, const char *version, const char *variant, const char *history) {
  setup_case_enc(f, version, variant, history, "gru", 1);
}

static void teardown_case(fixture *f) {
  f->be->free(f->be, f->dR);
  f->be->free(f->be, f->dQ);
  free(f->R);
  free(f->Q);
  dt_batch_builder_free(f->bb);
  dt_model_free(f->m);
  f->be->destroy(f->be);
  dt_config_free(&f->cfg);
  tiny_dataset_free(&f->ds);
}

/* Sign pattern of every ReLU output of the last forward. A central
 * difference is only valid when both evaluations sit on the same linear
 * piece: a pre-activation crossing zero between them makes the difference
 * meaningless, so such directions are redrawn. */
static int relu_pattern(fixture *f, unsigned char **out, int64_t *n_out) {
  dt_model *m = f->m;
  const dt_batch *b = dt_batch_get(f->bb);
  const dt_sasrec_work *sw = m->use_dynamic && m->encoder_kind == DT_ENCODER_SASREC ? m->work->sasrec : NULL;
  struct {
    const float *p;
    int64_t n;
  } parts[] = {{m->use_static_mlp && m->use_static ? m->work->s1 : NULL, b->nc * m->static_hidden},
               {m->use_content ? m->work->c1 : NULL, b->nc * m->content_h1},
               {m->use_content ? m->work->c2 : NULL, b->nc * m->content_h2},
               {m->use_gate ? m->work->g1 : NULL, b->n * m->gate_hidden},
               {m->use_head ? m->work->hh : NULL, b->nc * m->head_hidden},
               {sw ? sw->f1[0] : NULL, b->n_tokens * m->dim}, /* the SASRec blocks' FFN ReLUs */
               {sw && m->sasrec_blocks > 1 ? sw->f1[1] : NULL, b->n_tokens * m->dim}};
  int64_t n = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) n += parts[i].p ? parts[i].n : 0;
  unsigned char *bits = malloc((size_t)n + 1);
  int64_t k = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (parts[i].p)
      for (int64_t e = 0; e < parts[i].n; e++) bits[k++] = parts[i].p[e] > 0;
  *out = bits;
  *n_out = n;
  return 0;
}

/* Central difference of the objective along d at p (n floats) with step
 * eps; returns 0 (and the difference) when both points sit on the same
 * linear piece of every ReLU, 1 when a kink lies between them. */
static int central_difference(fixture *f, float *p, const float *saved, const double *d, int64_t n, double eps,
                              double *fd) {
  unsigned char *pat_p, *pat_m;
  int64_t np_, nm_;
  for (int64_t e = 0; e < n; e++) p[e] = (float)(saved[e] + eps * d[e]);
  double lp = objective(f);
  relu_pattern(f, &pat_p, &np_);
  for (int64_t e = 0; e < n; e++) p[e] = (float)(saved[e] - eps * d[e]);
  double lm = objective(f);
  relu_pattern(f, &pat_m, &nm_);
  memcpy(p, saved, (size_t)n * sizeof(float));
  int crossed = np_ != nm_ || memcmp(pat_p, pat_m, (size_t)np_) != 0;
  free(pat_p);
  free(pat_m);
  *fd = (lp - lm) / (2 * eps);
  return crossed;
}

/* Compares <grad, d> with the central difference along d of `n` floats at
 * p. d is supported on at most 32 random coordinates (a direction moving a
 * whole matrix shifts every ReLU input of a layer and nearly always crosses
 * a kink; later directions touch 8, then 2 coordinates). The step is the
 * largest of 1e-2, 5e-3, ... 5e-5 whose two points lie on the same linear
 * piece of every ReLU (fp32 noise in L is about 1e-6, so a step of 1e-2
 * gives the difference to about 1e-4 absolute and smaller steps
 * proportionally worse): directions are redrawn, up to 16, until one allows
 * a step of at least 2.5e-3, else the one with the largest step is used. */
static void check_direction(fixture *f, const char *what, float *p, int64_t n,
                            double analytic_dot(void *, const double *), void *ctx, int64_t skip_prefix) {
  double *d = calloc((size_t)n, sizeof(double));
  float *saved = malloc((size_t)n * sizeof(float));
  memcpy(saved, p, (size_t)n * sizeof(float));
  double best_eps = 0, best_fd = 0, best_an = 0;
  for (int attempt = 0; attempt < 16 && best_eps < 2.5e-3; attempt++) {
    memset(d, 0, (size_t)n * sizeof(double));
    int64_t span = n - skip_prefix;
    const int coords = attempt < 4 ? 32 : attempt < 10 ? 8 : 2; /* sparser: fewer ReLU inputs move */
    for (int k = 0; k < coords && k < span; k++) {
      dt_rand4 r = dt_philox(31 + (uint64_t)attempt, DT_RNG_TEST, (uint32_t)k, (uint32_t)n, 7, 0);
      int64_t e = span <= coords ? skip_prefix + k : skip_prefix + (int64_t)dt_below64(r.v[2], r.v[3], (uint64_t)span);
      d[e] = dt_normal_from(r.v[0], r.v[1]);
    }
    for (double eps = 1e-2; eps > best_eps && eps >= 5e-5; eps /= 2) {
      double fd;
      if (central_difference(f, p, saved, d, n, eps, &fd)) continue; /* a ReLU kink between the points */
      best_eps = eps;
      best_fd = fd;
      best_an = analytic_dot(ctx, d);
      break;
    }
  }
  if (best_eps == 0) fail_msg("%s: every direction crossed a ReLU kink", what);
  double err = fabs(best_fd - best_an) / fmax(fmax(fabs(best_fd), fabs(best_an)), 1e-2);
  if (err > REL_TOL)
    fail_msg("%s: finite difference %.8g vs backward %.8g (error %.3g > %g, eps %g)", what, best_fd, best_an, err,
             REL_TOL, best_eps);
  free(saved);
  free(d);
}

typedef struct {
  const float *g;
} dense_ctx;
static double dense_dot(void *ctx, const double *d) {
  (void)ctx;
  (void)d;
  return 0;
}

static int64_t g_numel;
static double dense_dot_n(void *ctx, const double *d) {
  const float *g = ((dense_ctx *)ctx)->g;
  double s = 0;
  for (int64_t e = 0; e < g_numel; e++) s += (double)g[e] * d[e];
  return s;
}

typedef struct {
  const dt_table *tb;
} table_ctx;
static double table_dot(void *ctx, const double *d) {
  const dt_table *tb = ((table_ctx *)ctx)->tb;
  double s = 0;
  for (int64_t k = 0; k < tb->grad_n; k++)
    for (int c = 0; c < tb->dim; c++)
      s += (double)tb->grad_rows[k * tb->dim + c] * d[(int64_t)tb->grad_ids[k] * tb->dim + c];
  return s;
}

static void run_case_enc(const char *version, const char *variant, const char *history, const char *encoder,
                         int heads) {
  fixture f;
  setup_case_enc(&f, version, variant, history, encoder, heads);
  (void)dense_dot;
  objective(&f);
  assert_int_equal(dt_model_zero_grad(f.m), 0);
  if (dt_model_backward(f.m, dt_batch_get(f.bb), f.dR, f.dQ)) fail_msg("backward: %s", dt_error_message());
  /* snapshot the gradients: later forwards reuse buffers */
  float *g = malloc((size_t)f.m->n_dense * sizeof(float));
  memcpy(g, f.m->g, (size_t)f.m->n_dense * sizeof(float));
  char what[160];
  for (int i = 0; i < f.m->n_params; i++) {
    const dt_param *p = &f.m->params[i];
    dense_ctx ctx = {g + p->offset};
    g_numel = p->numel;
    snprintf(what, sizeof what, "%s %s %s %s/%d: %s", version, variant, history, encoder, heads, p->name);
    check_direction(&f, what, f.m->w + p->offset, p->numel, dense_dot_n, &ctx, 0);
  }
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &f.m->tables[t];
    if (!tb->present) continue;
    /* copy the sparse gradient: forwards do not touch it, but be explicit */
    dt_table snap = *tb;
    snap.grad_ids = malloc((size_t)tb->grad_n * sizeof(int32_t) + 1);
    snap.grad_rows = malloc((size_t)(tb->grad_n * tb->dim) * sizeof(float) + 1);
    memcpy(snap.grad_ids, tb->grad_ids, (size_t)tb->grad_n * sizeof(int32_t));
    memcpy(snap.grad_rows, tb->grad_rows, (size_t)(tb->grad_n * tb->dim) * sizeof(float));
    assert_true(tb->grad_n > 0);
    table_ctx ctx = {&snap};
    snprintf(what, sizeof what, "%s %s %s %s/%d: %s", version, variant, history, encoder, heads, tb->name);
    /* row 0 of dynamic.item_emb is padding: never read, never perturbed */
    check_direction(&f, what, tb->data, tb->rows * tb->dim, table_dot, &ctx, t == DT_TABLE_DYN_ITEM ? tb->dim : 0);
    free(snap.grad_ids);
    free(snap.grad_rows);
  }
  free(g);
  teardown_case(&f);
}

static void run_case(const char *version, const char *variant, const char *history) {
  run_case_enc(version, variant, history, "gru", 1);
}

static const char *variants[] = {"full", "no_dynamic", "no_content", "no_attention", "static_only"};

static void test_v1_prefix(void **state) {
  for (int i = 0; i < 5; i++) run_case("v1", variants[i], "prefix");
}
static void test_v2_prefix(void **state) {
  for (int i = 0; i < 5; i++) run_case("v2", variants[i], "prefix");
}
static void test_v2_user_train_and_chunk(void **state) {
  run_case("v2", "full", "user_train");
  run_case("v2", "full", "chunk");
}
static void test_v3_chunk(void **state) {
  for (int i = 0; i < 5; i++) run_case("v3", variants[i], "chunk");
}
static void test_v3_prefix(void **state) {
  run_case("v3", "full", "prefix");
  run_case("v3", "no_content", "prefix");
}
static void test_gru_dynamic_only(void **state) {
  run_case("v1", "dynamic_only", "prefix");
  run_case("v2", "dynamic_only", "prefix");
  run_case("v3", "dynamic_only", "chunk");
}

/* SASRec: v1/v2/v3 x full / dynamic_only / no_content, every history
 * mode, 1 and 2 heads (model.dim 6: head widths 6 and 3). */
static const char *sasrec_variants[] = {"full", "dynamic_only", "no_content"};
static void test_sasrec_v1_v2(void **state) {
  for (int i = 0; i < 3; i++) {
    run_case_enc("v1", sasrec_variants[i], "prefix", "sasrec", 1);
    run_case_enc("v2", sasrec_variants[i], "prefix", "sasrec", 2);
  }
  run_case_enc("v2", "full", "user_train", "sasrec", 1);
  run_case_enc("v2", "full", "chunk", "sasrec", 2);
}
static void test_sasrec_v3(void **state) {
  for (int i = 0; i < 3; i++) {
    run_case_enc("v3", sasrec_variants[i], "chunk", "sasrec", 1);
    run_case_enc("v3", sasrec_variants[i], "chunk", "sasrec", 2);
  }
  run_case_enc("v3", "full", "prefix", "sasrec", 2);
  run_case_enc("v3", "dynamic_only", "user_train", "sasrec", 1);
}

/* float64 reference GRU (torch.nn.GRU semantics) over an unpadded sequence. */
static void ref_gru_layer(const double *x, int T, int in, int H, const float *wih, const float *whh, const float *bih,
                          const float *bhh, double *out /* [T, H] */) {
  double *h = calloc((size_t)H, sizeof(double));
  for (int t = 0; t < T; t++) {
    double *hn = out + (int64_t)t * H;
    for (int j = 0; j < H; j++) {
      double g[6] = {bih[j], bih[H + j], bih[2 * H + j], bhh[j], bhh[H + j], bhh[2 * H + j]};
      for (int k = 0; k < in; k++) {
        g[0] += wih[(int64_t)j * in + k] * x[(int64_t)t * in + k];
        g[1] += wih[(int64_t)(H + j) * in + k] * x[(int64_t)t * in + k];
        g[2] += wih[(int64_t)(2 * H + j) * in + k] * x[(int64_t)t * in + k];
      }
      for (int k = 0; k < H; k++) {
        g[3] += whh[(int64_t)j * H + k] * h[k];
        g[4] += whh[(int64_t)(H + j) * H + k] * h[k];
        g[5] += whh[(int64_t)(2 * H + j) * H + k] * h[k];
      }
      double r = 1 / (1 + exp(-(g[0] + g[3]))), z = 1 / (1 + exp(-(g[1] + g[4])));
      double n = tanh(g[2] + r * g[5]);
      hn[j] = (1 - z) * n + z * h[j];
    }
    memcpy(h, hn, (size_t)H * sizeof(double));
  }
  free(h);
}

/* Read-outs equal a float64 GRU over each example's unpadded history, and an
 * example scores the same alone or among others (eval mode: no dropout). */
static void test_gru_readout_and_batch_invariance(void **state) {
  fixture f;
  setup_case(&f, "v2", "full", "prefix");
  dt_model *m = f.m;
  const int H = m->gru_hidden, D = m->dim, L = 4;
  int32_t users[5] = {0, 1, 2, 3, 4}, pos[5] = {0, 3, 9, 12, 5};
  assert_int_equal(dt_batch_build_eval(f.bb, users, pos, 5, 3, 99), 0);
  const float *scores, *alpha;
  assert_int_equal(dt_model_forward(m, dt_batch_get(f.bb), &scores, &alpha), 0);
  float together[5 * 4];
  memcpy(together, scores, sizeof together);
  const float *dyn = m->tables[DT_TABLE_DYN_ITEM].data;
  for (int e = 0; e < 5; e++) {
    int32_t lo = pos[e] > L ? pos[e] - L : 0, T = pos[e] - lo;
    double *x = calloc((size_t)(T > 0 ? T : 1) * D, sizeof(double));
    for (int t = 0; t < T; t++) {
      int32_t item = f.ds.user_items[f.ds.user_ptr[users[e]] + lo + t];
      for (int k = 0; k < D; k++) x[t * D + k] = dyn[(int64_t)(item + 1) * D + k];
    }
    double *h0 = calloc((size_t)(T > 0 ? T : 1) * H, sizeof(double)),
           *h1 = calloc((size_t)(T > 0 ? T : 1) * H, sizeof(double));
    if (T > 0) {
      ref_gru_layer(x, T, D, H,
                    dt_model_param(m, "dynamic.gru.weight_ih_l0")
                        ? m->w + dt_model_param(m, "dynamic.gru.weight_ih_l0")->offset
                        : NULL,
                    m->w + dt_model_param(m, "dynamic.gru.weight_hh_l0")->offset,
                    m->w + dt_model_param(m, "dynamic.gru.bias_ih_l0")->offset,
                    m->w + dt_model_param(m, "dynamic.gru.bias_hh_l0")->offset, h0);
      ref_gru_layer(h0, T, H, H, m->w + dt_model_param(m, "dynamic.gru.weight_ih_l1")->offset,
                    m->w + dt_model_param(m, "dynamic.gru.weight_hh_l1")->offset,
                    m->w + dt_model_param(m, "dynamic.gru.bias_ih_l1")->offset,
                    m->w + dt_model_param(m, "dynamic.gru.bias_hh_l1")->offset, h1);
    }
    for (int j = 0; j < H; j++) {
      double want = T > 0 ? h1[(T - 1) * H + j] : 0.0;
      double got = m->work->hdin[e * H + j];
      if (fabs(got - want) > 1e-5) fail_msg("example %d unit %d: read-out %.8g, reference GRU %.8g", e, j, got, want);
    }
    free(x);
    free(h0);
    free(h1);
  }
  /* alone */
  for (int e = 0; e < 5; e++) {
    assert_int_equal(dt_batch_build_eval(f.bb, users + e, pos + e, 1, 3, 99), 0);
    assert_int_equal(dt_model_forward(m, dt_batch_get(f.bb), &scores, &alpha), 0);
    for (int j = 0; j < 4; j++)
      if (fabs(scores[j] - together[e * 4 + j]) > 1e-6 * (1 + fabs(together[e * 4 + j])))
        fail_msg("example %d candidate %d: %.9g alone vs %.9g in a batch", e, j, scores[j], together[e * 4 + j]);
  }
  teardown_case(&f);
}

/* SASRec with `chunk` history: one causal pass over a chunk's window gives
 * every position the state its own window [w, t) gives (MODEL.md 1c), and
 * an example's state does not depend on the others in its batch. Dropout
 * off, so training and evaluation batches compute the same function. */
static void test_sasrec_chunk_equals_own_windows(void **state) {
  fixture f;
  setup_case_enc(&f, "v3", "full", "chunk", "sasrec", 2);
  dt_model *m = f.m;
  m->p_gru = 0.0f;
  const int D = m->dim;
  /* the examples of setup_case's chunk units, in batch order */
  const dt_batch *b = dt_batch_get(f.bb);
  const int64_t n = b->n;
  const float *scores, *alpha;
  assert_int_equal(dt_model_forward(m, b, &scores, &alpha), 0);
  assert_true(b->n_seq > 0 && b->n_tokens > 0 && b->seq_offsets_host != NULL);
  float *chunk_hd = malloc((size_t)(n * D) * sizeof(float));
  memcpy(chunk_hd, m->work->hd, (size_t)(n * D) * sizeof(float));
  int32_t *users = malloc((size_t)n * sizeof(int32_t)), *pos = malloc((size_t)n * sizeof(int32_t));
  int64_t e = 0;
  for (int u = 0; u < 4; u++)
    for (int32_t p = 0; p < f.ds.user_n_train[u]; p++, e++) users[e] = u, pos[e] = p;
  users[e] = 4, pos[e++] = 0;
  users[e] = 5, pos[e++] = 0;
  users[e] = 5, pos[e++] = 1;
  assert_int_equal(e, n);
  int32_t *cands = calloc((size_t)n, sizeof(int32_t));
  assert_int_equal(dt_batch_build_candidates(f.bb, users, pos, NULL, n, cands, 1), 0);
  assert_int_equal(dt_model_forward(m, dt_batch_get(f.bb), &scores, &alpha), 0);
  int empty = 0;
  for (e = 0; e < n; e++) {
    double norm = 0;
    for (int k = 0; k < D; k++) {
      double a = chunk_hd[e * D + k], o = m->work->hd[e * D + k];
      norm += a * a;
      if (fabs(a - o) > 1e-5 * (1 + fabs(o)))
        fail_msg("user %d position %d unit %d: chunk pass %.8g, own window %.8g", users[e], pos[e], k, a, o);
    }
    empty += pos[e] == 0;
    if ((pos[e] == 0) != (norm == 0)) fail_msg("user %d position %d: |h_d|^2 = %g", users[e], pos[e], norm);
  }
  assert_true(empty >= 3);
  /* alone: the same state as among the others */
  for (e = 0; e < n; e += 5) {
    assert_int_equal(dt_batch_build_candidates(f.bb, users + e, pos + e, NULL, 1, cands, 1), 0);
    assert_int_equal(dt_model_forward(m, dt_batch_get(f.bb), &scores, &alpha), 0);
    for (int k = 0; k < D; k++)
      if (fabs(m->work->hd[k] - chunk_hd[e * D + k]) > 1e-5 * (1 + fabs(chunk_hd[e * D + k])))
        fail_msg("user %d position %d: alone %.8g, in a batch %.8g", users[e], pos[e], m->work->hd[k],
                 chunk_hd[e * D + k]);
  }
  /* every example at its user's first position: no tokens at all */
  int32_t firsts[3] = {0, 1, 2}, zeros[3] = {0, 0, 0};
  assert_int_equal(dt_batch_build_candidates(f.bb, firsts, zeros, NULL, 3, cands, 1), 0);
  assert_int_equal(dt_batch_get(f.bb)->n_tokens, 0);
  assert_int_equal(dt_model_forward(m, dt_batch_get(f.bb), &scores, &alpha), 0);
  for (int k = 0; k < 3 * D; k++) assert_true(m->work->hd[k] == 0.0f);
  free(chunk_hd);
  free(users);
  free(pos);
  free(cands);
  teardown_case(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v1_prefix),
      cmocka_unit_test(test_v2_prefix),
      cmocka_unit_test(test_v2_user_train_and_chunk),
      cmocka_unit_test(test_v3_chunk),
      cmocka_unit_test(test_v3_prefix),
      cmocka_unit_test(test_gru_dynamic_only),
      cmocka_unit_test(test_sasrec_v1_v2),
      cmocka_unit_test(test_sasrec_v3),
      cmocka_unit_test(test_gru_readout_and_batch_invariance),
      cmocka_unit_test(test_sasrec_chunk_equals_own_windows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
