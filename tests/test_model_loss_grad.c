/* Whole-model gradient check of every training loss (train.loss = bpr, bce,
 * sampled_softmax, softmax) x fusion (v1, v2, v3, with ablation variants)
 * x sequence encoder, dropout off: the loss the loss module computes
 * (ranking term + gate regularisers, in float64 from the fp32 model),
 * differentiated along a random direction per parameter group (every dense
 * parameter, every table) by central differences, against the step's own
 * backward (dt_loss_grad, whose softmax losses run the item list's
 * backward, then dt_model_backward). Also: the item list's scores equal the
 * ordinary forward pass on the same (example, item) pairs, and the list in
 * several blocks gives the one-block loss and gradients. */
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
#include "dtrain/comm.h"
#include "dtrain/loss.h"
#include "dtrain/model.h"
#include "model/model_internal.h"
#include "test_model_util.h"

/* The grid. The sequence encoders: each with the --set that picks it (NULL:
 * the default). Adding an encoder is one line here. */
static const struct {
  const char *name, *set;
} encoders[] = {
    {"gru", NULL},
    {"sasrec", "model.encoder=sasrec"},
};
static const char *const losses[] = {"bpr", "bce", "sampled_softmax", "softmax"};
/* version, variant, history */
static const char *const cases[][3] = {
    {"v1", "full", "prefix"},         {"v1", "no_dynamic", "prefix"},  {"v1", "no_content", "prefix"},
    {"v1", "static_only", "prefix"},  {"v2", "full", "prefix"},        {"v2", "no_attention", "prefix"},
    {"v2", "full", "chunk"},          {"v3", "full", "chunk"},         {"v3", "no_dynamic", "chunk"},
    {"v3", "no_content", "chunk"},    {"v3", "no_attention", "chunk"}, {"v3", "static_only", "chunk"},
    {"v3", "full", "prefix"},         {"v3", "dynamic_only", "chunk"}, {"v2", "dynamic_only", "prefix"},
    {"v1", "dynamic_only", "prefix"},
};

/* Stated tolerance, for the directional derivative of each group:
 *   |fd - backward| <= 2e-2 * max(|fd|, |backward|, 1e-4) + noise,
 * noise = 1e-7 * |loss| / eps: the float32 forward pass's rounding of the
 * loss (measured: about 1e-8 relative), over the step (eps 1e-2, halved
 * towards 1e-4 when the points straddle a ReLU kink). The losses are means
 * over the batch, so a group's directional derivative can be ~1e-4; a wrong
 * or missing gradient term shows up as an error of order 1. */
#define REL_TOL 2e-2
#define LOSS_NOISE 1e-7

static dt_comm *g_comm;

typedef struct {
  dt_dataset ds;
  dt_config cfg;
  dt_backend *be;
  dt_model *m;
  dt_batch_builder *bb;
  dt_loss loss;
} fixture;

/* The loss of the batch with the current parameters. */
static double objective(fixture *f) {
  const dt_batch *b = dt_batch_get(f->bb);
  const float *scores, *alpha;
  dt_loss_value v;
  if (dt_model_forward(f->m, b, &scores, &alpha) || dt_loss_batch_stats(&f->loss, g_comm, f->be, b, alpha, &v) ||
      dt_loss_grad(&f->loss, f->be, &f->cfg, f->m, b, scores, alpha, &v) || dt_loss_reduce(g_comm, &f->cfg, &v))
    fail_msg("loss: %s", dt_error_message());
  return v.loss;
}

/* One step's gradients (as dt_train_step computes them); returns the loss. */
static double gradients(fixture *f) {
  const dt_batch *b = dt_batch_get(f->bb);
  const float *scores, *alpha;
  dt_loss_value v;
  assert_int_equal(dt_model_forward(f->m, b, &scores, &alpha), 0);
  assert_int_equal(dt_loss_batch_stats(&f->loss, g_comm, f->be, b, alpha, &v), 0);
  assert_int_equal(dt_model_zero_grad(f->m), 0);
  if (dt_loss_grad(&f->loss, f->be, &f->cfg, f->m, b, scores, alpha, &v)) fail_msg("loss: %s", dt_error_message());
  if (dt_model_backward(f->m, b, f->loss.d_dscores, f->m->use_gate ? f->loss.d_dalpha : NULL))
    fail_msg("backward: %s", dt_error_message());
  assert_int_equal(dt_loss_reduce(g_comm, &f->cfg, &v), 0);
  return v.loss;
}

static void setup_case(fixture *f, const char *version, const char *variant, const char *history, const char *loss,
                       const char *encoder_set, int block) {
  memset(f, 0, sizeof *f);
  const int L = 4;
  tiny_dataset(&f->ds, 7, 23, 14, 9, L, 5);
  assert_int_equal(small_config(&f->cfg, version, variant, history, L), 0);
  char lset[64], cset[64];
  snprintf(lset, sizeof lset, "train.loss=%s", loss);
  snprintf(cset, sizeof cset, "train.softmax_chunk=%d", block);
  const char *sets[] = {lset,
                        cset,
                        "train.n_neg=3",
                        "model.dropout_static=0",
                        "model.dropout_gru=0",
                        "model.dropout_content=0",
                        "model.dropout_head=0",
                        encoder_set};
  if (dt_config_apply_sets(&f->cfg, sets, encoder_set ? 8 : 7)) fail_msg("config: %s", dt_error_message());
  assert_int_equal(dt_backend_cpu_create(1, &f->be), 0);
  assert_int_equal(dt_model_create(&f->cfg, f->be, f->ds.n_users, f->ds.n_items, f->ds.vocab_size, f->ds.tfidf_indptr,
                                   f->ds.tfidf_indices, f->ds.tfidf_values, &f->m),
                   0);
  assert_int_equal(dt_model_init(f->m, 1234), 0);
  /* larger tables than N(0, 0.01^2) so every path has signal, random biases
   * so no ReLU input sits on its kink */
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &f->m->tables[t];
    if (!tb->present) continue;
    for (int64_t e = (t == DT_TABLE_DYN_ITEM ? tb->dim : 0); e < tb->rows * tb->dim; e++) {
      dt_rand4 r = dt_philox(9, DT_RNG_TEST, (uint32_t)t, (uint32_t)e, 3, 0);
      tb->data[e] = 0.5f * dt_normal_from(r.v[0], r.v[1]);
    }
  }
  for (int64_t e = 0; e < f->m->n_dense; e++) {
    dt_rand4 r = dt_philox(10, DT_RNG_TEST, (uint32_t)e, 4, 0, 0);
    f->m->w[e] += 0.2f * dt_normal_from(r.v[0], r.v[1]);
  }
  if (dt_loss_setup(&f->loss, &f->cfg, f->m, 0)) fail_msg("loss setup: %s", dt_error_message());
  assert_int_equal(dt_batch_builder_create(f->m, &f->ds, f->be, &f->bb), 0);
  dt_unit units[64];
  int n_units = 0;
  for (int u = 0; u < 5; u++) {
    int32_t ntr = f->ds.user_n_train[u];
    if (f->m->history == DT_HISTORY_CHUNK) {
      for (int32_t s = 0; s < ntr; s += L) units[n_units++] = (dt_unit){u, s, ntr - s < L ? ntr - s : L};
    } else {
      for (int32_t p = 0; p < ntr; p += 2) units[n_units++] = (dt_unit){u, p, 1};
    }
  }
  assert_int_equal(dt_batch_build_train(f->bb, units, n_units, 3, 17, 42, f->loss.n_neg, 10), 0);
  if (f->loss.list_items) assert_int_equal(dt_batch_build_list(f->bb, f->loss.list_items, 42, 17), 0);
}

static void teardown_case(fixture *f) {
  dt_loss_free(&f->loss, f->be);
  dt_batch_builder_free(f->bb);
  dt_model_free(f->m);
  f->be->destroy(f->be);
  dt_config_free(&f->cfg);
  tiny_dataset_free(&f->ds);
}

/* Sign pattern of every ReLU input of the last objective: the candidates'
 * towers, the item list's (its last block: the whole list here) and the
 * SASRec blocks' FFNs. A
 * central difference is only valid when both points sit on the same linear
 * piece, so directions that cross a kink are redrawn. */
static unsigned char *relu_pattern(fixture *f, int64_t *n_out) {
  dt_model *m = f->m;
  const dt_batch *b = dt_batch_get(f->bb);
  const dt_list_work *L = m->work->list;
  const int64_t k = L && L->blk_lo >= 0 ? L->blk_k : 0, P = b->n * k;
  const dt_sasrec_work *sw = m->use_dynamic && m->encoder_kind == DT_ENCODER_SASREC ? m->work->sasrec : NULL;
  struct {
    const float *p;
    int64_t n;
  } parts[] = {{m->use_static_mlp ? m->work->s1 : NULL, b->nc * m->static_hidden},
               {m->use_content ? m->work->c1 : NULL, b->nc * m->content_h1},
               {m->use_content ? m->work->c2 : NULL, b->nc * m->content_h2},
               {m->use_gate ? m->work->g1 : NULL, b->n * m->gate_hidden},
               {m->use_head ? m->work->hh : NULL, b->nc * m->head_hidden},
               {k ? L->s1 : NULL, P * m->static_hidden},
               {k ? L->hh : NULL, P * m->head_hidden},
               {k ? L->c1 : NULL, k * m->content_h1},
               {k ? L->c2 : NULL, k * m->content_h2},
               {sw ? sw->f1[0] : NULL, b->n_tokens * m->dim}, /* the SASRec blocks' FFN ReLUs */
               {sw && m->sasrec_blocks > 1 ? sw->f1[1] : NULL, b->n_tokens * m->dim}};
  int64_t n = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) n += parts[i].p ? parts[i].n : 0;
  unsigned char *bits = malloc((size_t)n + 1);
  int64_t at = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    for (int64_t e = 0; parts[i].p && e < parts[i].n; e++) bits[at++] = parts[i].p[e] > 0;
  *n_out = n;
  return bits;
}

/* <grad, d> against the central difference along d (at most 32 random
 * coordinates of the n floats at p, from skip on), eps 1e-2, halved when a
 * kink lies between the two points. grad: dense [n], or sparse rows. */
typedef struct {
  const float *dense;
  int64_t rows, dim;
  const int32_t *ids;
  const float *vals;
} grad_view;

static double dot_grad(const grad_view *g, const double *d, int64_t n) {
  double s = 0;
  if (g->dense)
    for (int64_t e = 0; e < n; e++) s += (double)g->dense[e] * d[e];
  else
    for (int64_t r = 0; r < g->rows; r++)
      for (int64_t c = 0; c < g->dim; c++) s += (double)g->vals[r * g->dim + c] * d[(int64_t)g->ids[r] * g->dim + c];
  return s;
}

/* Central difference along d with step eps; returns 1 when a ReLU kink
 * lies between the two points (the difference is then meaningless). */
static int central(fixture *f, float *p, const float *saved, const double *d, int64_t n, double eps, double *fd,
                   double *noise) {
  int64_t np_, nm_;
  for (int64_t e = 0; e < n; e++) p[e] = (float)(saved[e] + eps * d[e]);
  double lp = objective(f);
  unsigned char *pat_p = relu_pattern(f, &np_);
  for (int64_t e = 0; e < n; e++) p[e] = (float)(saved[e] - eps * d[e]);
  double lm = objective(f);
  unsigned char *pat_m = relu_pattern(f, &nm_);
  memcpy(p, saved, (size_t)n * sizeof(float));
  int crossed = np_ != nm_ || memcmp(pat_p, pat_m, (size_t)np_) != 0;
  free(pat_p);
  free(pat_m);
  *fd = (lp - lm) / (2 * eps);
  /* the float32 loss's own rounding, divided by the step */
  *noise = LOSS_NOISE * fmax(fabs(lp), fabs(lm)) / eps;
  return crossed;
}

/* A direction that fails at eps is retried at eps/4 and eps/16: the central
 * difference's truncation error shrinks as eps^2 (curvature: the layer
 * norms and softmaxes of SASRec at the perturbed weights), a wrong gradient
 * does not converge. */
static double check_direction(fixture *f, const char *what, float *p, int64_t n, int64_t skip, const grad_view *g) {
  double *d = calloc((size_t)n, sizeof(double));
  float *saved = malloc((size_t)n * sizeof(float));
  memcpy(saved, p, (size_t)n * sizeof(float));
  double eps = 1e-2, err = 0;
  int attempt;
  for (attempt = 0; attempt < 40; attempt++) {
    memset(d, 0, (size_t)n * sizeof(double));
    int64_t span = n - skip;
    for (int k = 0; k < 32 && k < span; k++) {
      dt_rand4 r = dt_philox(31 + (uint64_t)attempt, DT_RNG_TEST, (uint32_t)k, (uint32_t)n, 7, 0);
      int64_t e = span <= 32 ? skip + k : skip + (int64_t)dt_below64(r.v[2], r.v[3], (uint64_t)span);
      d[e] = dt_normal_from(r.v[0], r.v[1]);
    }
    double an = dot_grad(g, d, n), fd, noise;
    if (central(f, p, saved, d, n, eps, &fd, &noise)) { /* a new direction; a smaller step every fourth time */
      if (attempt % 4 == 3 && eps > 1e-4) eps /= 2;
      continue;
    }
    err = fmax(fabs(fd - an) - noise, 0.0) / fmax(fmax(fabs(fd), fabs(an)), 1e-4);
    double step = eps, fd2, noise2;
    for (int r = 0; r < 2 && err > REL_TOL; r++) {
      step /= 4;
      if (central(f, p, saved, d, n, step, &fd2, &noise2)) break;
      double err2 = fmax(fabs(fd2 - an) - noise2, 0.0) / fmax(fmax(fabs(fd2), fabs(an)), 1e-4);
      if (err2 < err) err = err2, fd = fd2, noise = noise2;
    }
    if (err > REL_TOL)
      fail_msg("%s: finite difference %.8g vs backward %.8g (error %.3g > %g, eps %g..%g, noise %.2g)", what, fd, an,
               err, REL_TOL, eps, step, noise);
    break;
  }
  if (attempt == 40) fail_msg("%s: every direction crossed a ReLU kink", what);
  free(saved);
  free(d);
  return err;
}

static double g_worst;

static void run_case(const char *version, const char *variant, const char *history, const char *loss, int enc) {
  fixture f;
  setup_case(&f, version, variant, history, loss, encoders[enc].set, 1000);
  gradients(&f);
  /* snapshots: the objective's own loss passes reuse the buffers */
  float *g = malloc((size_t)f.m->n_dense * sizeof(float));
  memcpy(g, f.m->g, (size_t)f.m->n_dense * sizeof(float));
  grad_view tg[DT_MAX_TABLES];
  memset(tg, 0, sizeof tg);
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    const dt_table *tb = &f.m->tables[t];
    if (!tb->present) continue;
    if (tb->grad_n <= 0) fail_msg("%s %s %s %s: no gradient rows for %s", version, variant, history, loss, tb->name);
    int32_t *ids = malloc((size_t)tb->grad_n * sizeof(int32_t));
    float *vals = malloc((size_t)(tb->grad_n * tb->dim) * sizeof(float));
    memcpy(ids, tb->grad_ids, (size_t)tb->grad_n * sizeof(int32_t));
    memcpy(vals, tb->grad_rows, (size_t)(tb->grad_n * tb->dim) * sizeof(float));
    tg[t] = (grad_view){NULL, tb->grad_n, tb->dim, ids, vals};
  }
  char what[200];
  for (int i = 0; i < f.m->n_params; i++) {
    const dt_param *p = &f.m->params[i];
    grad_view gv = {g + p->offset, 0, 0, NULL, NULL};
    snprintf(what, sizeof what, "%s %s %s %s %s: %s", version, variant, history, encoders[enc].name, loss, p->name);
    g_worst = fmax(g_worst, check_direction(&f, what, f.m->w + p->offset, p->numel, 0, &gv));
  }
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &f.m->tables[t];
    if (!tb->present) continue;
    snprintf(what, sizeof what, "%s %s %s %s %s: %s", version, variant, history, encoders[enc].name, loss, tb->name);
    /* row 0 of dynamic.item_emb is padding: never read, never perturbed */
    g_worst = fmax(
        g_worst, check_direction(&f, what, tb->data, tb->rows * tb->dim, t == DT_TABLE_DYN_ITEM ? tb->dim : 0, &tg[t]));
    free((void *)tg[t].ids);
    free((void *)tg[t].vals);
  }
  free(g);
  teardown_case(&f);
}

static void run_version(const char *version) {
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    if (strcmp(cases[c][0], version) != 0) continue;
    for (size_t e = 0; e < sizeof encoders / sizeof encoders[0]; e++)
      for (size_t l = 0; l < sizeof losses / sizeof losses[0]; l++)
        run_case(cases[c][0], cases[c][1], cases[c][2], losses[l], (int)e);
  }
  printf("%s: worst relative error of a directional derivative %.3g (tolerance %g)\n", version, g_worst, REL_TOL);
  g_worst = 0;
}

static void test_v1_every_loss(void **state) { run_version("v1"); }
static void test_v2_every_loss(void **state) { run_version("v2"); }
static void test_v3_every_loss(void **state) { run_version("v3"); }

/* The item list's scores are the forward pass's scores of the same
 * (example, item) pairs: the catalogue as every example's candidates. */
static void list_matches_forward(const char *version, const char *history) {
  fixture f;
  setup_case(&f, version, "full", history, "softmax", NULL, 1000);
  const dt_batch *b = dt_batch_get(f.bb);
  const int64_t n = b->n, N = b->n_list;
  const float *scores, *alpha;
  assert_int_equal(dt_model_forward(f.m, b, &scores, &alpha), 0);
  float *S = malloc((size_t)(n * N) * sizeof(float));
  assert_int_equal(dt_model_list_scores(f.m, b, 0, N, S), 0);
  int32_t *users = malloc((size_t)n * sizeof(int32_t)), *pos = malloc((size_t)n * sizeof(int32_t));
  int32_t *cands = malloc((size_t)(n * N) * sizeof(int32_t));
  /* the examples' users and positions, as setup_case built them */
  int64_t e = 0;
  for (int u = 0; u < 5; u++)
    for (int32_t p = 0; p < f.ds.user_n_train[u]; p += f.m->history == DT_HISTORY_CHUNK ? 1 : 2, e++) {
      users[e] = u;
      pos[e] = p;
    }
  assert_int_equal(e, n);
  for (int64_t i = 0; i < n * N; i++) cands[i] = (int32_t)(i % N);
  assert_int_equal(dt_batch_build_candidates(f.bb, users, pos, NULL, n, cands, (int)N), 0);
  assert_int_equal(dt_model_forward(f.m, dt_batch_get(f.bb), &scores, &alpha), 0);
  double worst = 0;
  for (int64_t i = 0; i < n * N; i++) worst = fmax(worst, fabs((double)S[i] - scores[i]) / (1 + fabs(scores[i])));
  if (worst > 1e-5) fail_msg("%s %s: list scores differ from the forward pass's by %.3g", version, history, worst);
  free(S);
  free(users);
  free(pos);
  free(cands);
  teardown_case(&f);
}

static void test_list_scores_match_forward(void **state) {
  list_matches_forward("v3", "chunk");
  list_matches_forward("v3", "prefix");
  list_matches_forward("v2", "prefix");
  list_matches_forward("v1", "prefix");
}

/* Sums a table's sparse rows into a dense host table. */
static double *densify(const dt_table *tb) {
  double *d = calloc((size_t)(tb->rows * tb->dim), sizeof(double));
  for (int64_t r = 0; r < tb->grad_n; r++)
    for (int c = 0; c < tb->dim; c++) d[(int64_t)tb->grad_ids[r] * tb->dim + c] += tb->grad_rows[r * tb->dim + c];
  return d;
}

/* max |a - b| over max |a|, the scale floored at `floor` (a gradient that
 * is ~0 by cancellation, e.g. content.fc3.bias under softmax, has only
 * rounding left) */
static double rel_diff(const double *a, const double *b, int64_t n, double floor) {
  double scale = floor, worst = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]));
  return worst / scale;
}

/* The list in blocks of `block` items gives the one-block loss and gradients
 * to float rounding: 1e-4 of each group's largest value, floored at 10% of
 * the largest dense gradient (summed in another order; a wrong block's
 * contribution is an error of order 1). */
static void blocks_match(const char *version, const char *history, const char *loss, int block) {
  fixture one, many;
  setup_case(&one, version, "full", history, loss, NULL, 1000);
  setup_case(&many, version, "full", history, loss, NULL, block);
  double l1 = gradients(&one), l2 = gradients(&many), floor = 1e-12;
  for (int64_t e = 0; e < one.m->n_dense; e++) floor = fmax(floor, 0.1 * fabs(one.m->g[e]));
  if (fabs(l1 - l2) > 1e-6 * fabs(l1))
    fail_msg("%s %s: loss %.9g in one block, %.9g in blocks of %d", version, loss, l1, l2, block);
  for (int i = 0; i < one.m->n_params; i++) {
    const dt_param *p = &one.m->params[i];
    double *a = malloc((size_t)p->numel * sizeof(double)), *c = malloc((size_t)p->numel * sizeof(double));
    for (int64_t e = 0; e < p->numel; e++) {
      a[e] = one.m->g[p->offset + e];
      c[e] = many.m->g[p->offset + e];
    }
    double d = rel_diff(a, c, p->numel, floor);
    if (d > 1e-4) fail_msg("%s %s blocks of %d: gradient of %s differs by %.3g", version, loss, block, p->name, d);
    free(a);
    free(c);
  }
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    if (!one.m->tables[t].present) continue;
    double *a = densify(&one.m->tables[t]), *c = densify(&many.m->tables[t]);
    double d = rel_diff(a, c, one.m->tables[t].rows * one.m->tables[t].dim, 1e-12);
    if (d > 1e-4)
      fail_msg("%s %s blocks of %d: gradient of %s differs by %.3g", version, loss, block, one.m->tables[t].name, d);
    free(a);
    free(c);
  }
  teardown_case(&one);
  teardown_case(&many);
}

static void test_blocks_match_one_block(void **state) {
  blocks_match("v3", "chunk", "softmax", 5);
  blocks_match("v3", "chunk", "sampled_softmax", 2);
  blocks_match("v2", "prefix", "softmax", 4);
  blocks_match("v2", "prefix", "sampled_softmax", 1);
  blocks_match("v1", "prefix", "softmax", 7);
}

static int group_setup(void **state) { return dt_comm_init(NULL, NULL, &g_comm); }
static int group_teardown(void **state) { return dt_comm_finalize(g_comm); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_scores_match_forward),
      cmocka_unit_test(test_blocks_match_one_block),
      cmocka_unit_test(test_v3_every_loss),
      cmocka_unit_test(test_v2_every_loss),
      cmocka_unit_test(test_v1_every_loss),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
