/* eval_full.c: the full-ranking protocol: every item scored for each
 * user (v3 by one GEMM of the model's user and item vectors, v1/v2 by
 * blocks of forward passes), the user's earlier items excluded, top K
 * against all the user's held-out items of the split, next to the
 * popularity ranking; item coverage (eval.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "eval_internal.h"

typedef struct {
  int64_t cap_rows, cap_cols;
  float *d_scores; /* [n, n_items] backend */
  float *h_scores; /* host staging for the generic path */
  float *d_user;   /* [n, 3D] v3 user-side vectors (backend) */
  float *d_items;  /* [n_items, 3D] v3 item-side matrix (backend) */
  float *d_bias;   /* [n_items] v3 item biases (backend) */
  int32_t *top_idx;
  float *top_val;
  int64_t top_cap;
} full_state;

static void full_state_free(dt_backend *be, full_state *st) {
  if (st->d_scores) be->free(be, st->d_scores);
  if (st->d_user) be->free(be, st->d_user);
  if (st->d_items) be->free(be, st->d_items);
  if (st->d_bias) be->free(be, st->d_bias);
  free(st->h_scores);
  free(st->top_idx);
  free(st->top_val);
  memset(st, 0, sizeof *st);
}

/* v3's item side as one matrix [e_i ; d_{i+1} ; h_c(i)] and the biases,
 * on the backend. COLLECTIVE when a table is sharded. */
static int v3_item_side(dt_eval_ctx *ctx, full_state *st) {
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  const int64_t I = m->n_items, width = 3 * (int64_t)m->dim;
  float *items = dt_xmalloc((size_t)(I * width) * sizeof(float));
  float *bias = dt_xmalloc((size_t)I * sizeof(float));
  int rc = dt_model_item_vectors(m, items, bias);
  if (!rc) rc = dt_backend_alloc(be, (size_t)(I * width) * sizeof(float), (void **)&st->d_items);
  if (!rc) rc = be->upload(be, st->d_items, items, (size_t)(I * width) * sizeof(float));
  if (!rc) rc = dt_backend_alloc(be, (size_t)I * sizeof(float), (void **)&st->d_bias);
  if (!rc) rc = be->upload(be, st->d_bias, bias, (size_t)I * sizeof(float));
  free(items);
  free(bias);
  return rc;
}

static int ensure_scores(dt_backend *be, full_state *st, int64_t rows, int64_t cols) {
  if (rows * cols <= st->cap_rows * st->cap_cols && st->d_scores) return DT_OK;
  if (st->d_scores) be->free(be, st->d_scores);
  st->d_scores = NULL;
  free(st->h_scores);
  st->cap_rows = rows;
  st->cap_cols = cols;
  st->h_scores = dt_xmalloc((size_t)(rows * cols) * sizeof(float));
  return dt_backend_alloc(be, (size_t)(rows * cols) * sizeof(float), (void **)&st->d_scores);
}

/* v3: one forward with the positive as the only candidate gives e_u, h_d,
 * P e_u and alpha; the catalogue is then three GEMMs in one:
 * s = [a_s e_u, a_d h_d, a_c P e_u] [e_i; d_i; h_c(i)]^T + b */
static int v3_scores(dt_eval_ctx *ctx, full_state *st, const int32_t *users, const int32_t *pos, int64_t n) {
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  const int64_t I = m->n_items;
  const int D = m->dim;
  int32_t *cand = dt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
  for (int64_t e = 0; e < n; e++) cand[e] = ctx->ds->user_items[ctx->ds->user_ptr[users[e]] + pos[e]];
  int rc = dt_batch_build_candidates(ctx->bb, users, pos, NULL, n, cand, 1);
  free(cand);
  DT_TRY(rc);
  const float *sc, *al;
  DT_TRY(dt_eval_forward(ctx, &sc, &al));
  float *u = dt_xmalloc((size_t)(n > 0 ? n * 3 * D : 1) * sizeof(float));
  rc = dt_model_user_vectors(m, n, u);
  if (!rc && !st->d_user)
    rc = dt_backend_alloc(be, (size_t)(st->cap_rows * 3 * D) * sizeof(float), (void **)&st->d_user);
  if (!rc) rc = be->upload(be, st->d_user, u, (size_t)(n * 3 * D) * sizeof(float));
  free(u);
  DT_TRY(rc);
  if (n == 0) return DT_OK;
  DT_TRY(be->gemm(be, 0, 1, (int)n, (int)I, 3 * D, 1.0f, st->d_user, 3 * D, st->d_items, 3 * D, 0.0f, st->d_scores,
                  (int)I));
  return be->add_bias(be, st->d_scores, st->d_bias, n, (int)I);
}

int dt_score_catalogue(dt_eval_ctx *ctx, const int32_t *users, const int32_t *pos, const int64_t *ts, int64_t n,
                       int64_t block, float *scores) {
  dt_backend *be = ctx->model->be;
  const int64_t I = ctx->model->n_items;
  if (block > I) block = I;
  int32_t *cand = dt_xmalloc((size_t)(n * block > 0 ? n * block : 1) * sizeof(int32_t));
  int rc = DT_OK;
  for (int64_t lo = 0; lo < I && !rc; lo += block) {
    int64_t cb = I - lo < block ? I - lo : block;
    for (int64_t e = 0; e < n; e++)
      for (int64_t j = 0; j < cb; j++) cand[e * cb + j] = (int32_t)(lo + j);
    rc = dt_batch_build_candidates(ctx->bb, users, pos, ts, n, cand, (int)cb);
    const float *sc, *al;
    if (!rc) rc = dt_eval_forward(ctx, &sc, &al);
    float *tmp = NULL;
    if (!rc) {
      tmp = dt_xmalloc((size_t)(n * cb > 0 ? n * cb : 1) * sizeof(float));
      rc = be->download(be, tmp, sc, (size_t)(n * cb) * sizeof(float));
    }
    for (int64_t e = 0; e < n && !rc; e++) memcpy(scores + e * I + lo, tmp + e * cb, (size_t)cb * sizeof(float));
    free(tmp);
  }
  free(cand);
  return rc;
}

/* Scores [n, n_items] of users at held-out positions into st->d_scores. */
static int full_scores(dt_eval_ctx *ctx, full_state *st, const int32_t *users, const int32_t *pos, int64_t n) {
  dt_backend *be = ctx->model->be;
  const int64_t I = ctx->model->n_items;
  DT_TRY(ensure_scores(be, st, ctx->cfg->eval_batch_users, I));
  if (ctx->model->version == DT_V3) return v3_scores(ctx, st, users, pos, n);
  /* v1/v2: the head needs every (user, item) pair: blocks of items (the
   * block size must not depend on n: every rank runs as many blocks) */
  int64_t block = 65536 / ctx->cfg->eval_batch_users;
  if (block < 16) block = 16;
  DT_TRY(dt_score_catalogue(ctx, users, pos, NULL, n, block, st->h_scores));
  if (n == 0) return DT_OK;
  return be->upload(be, st->d_scores, st->h_scores, (size_t)(n * I) * sizeof(float));
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int full_batch(dt_eval_ctx *ctx, full_state *st, dt_split_kind split, const int32_t *users, const int32_t *pos,
                      int64_t n, const int32_t *pop_order, double *s, int64_t *covered) {
  const dt_dataset *ds = ctx->ds;
  dt_backend *be = ctx->model->be;
  const int K = dt_eval_ks[DT_EVAL_NK - 1];
  DT_TRY(full_scores(ctx, st, users, pos, n));
  if (n == 0) return DT_OK;
  /* ask for K + the most earlier items any user of the batch has, then drop
   * the user's earlier items on the host */
  int64_t max_excl = 0;
  for (int64_t e = 0; e < n; e++) max_excl = pos[e] > max_excl ? pos[e] : max_excl;
  int64_t k_ask = K + max_excl;
  if (k_ask > ctx->model->n_items) k_ask = ctx->model->n_items;
  if (n * k_ask > st->top_cap) {
    st->top_cap = n * k_ask;
    st->top_idx = dt_xrealloc(st->top_idx, (size_t)st->top_cap * sizeof(int32_t));
    st->top_val = dt_xrealloc(st->top_val, (size_t)st->top_cap * sizeof(float));
  }
  DT_TRY(be->topk(be, st->d_scores, n, ctx->model->n_items, (int)k_ask, st->top_idx, st->top_val));
  for (int64_t j = 0; j < n * k_ask; j++)
    if (st->top_idx[j] >= 0 && !isfinite(st->top_val[j]))
      return dt_fail(DT_EXIT_DATA,
                     "evaluation: the model scored user %d's item %d as %g: its parameters are damaged (no metric is "
                     "computed from a non-finite score)",
                     users[j / k_ask], st->top_idx[j], (double)st->top_val[j]);
  int32_t top[64]; /* K = 20 at most */
  for (int64_t e = 0; e < n; e++) {
    int32_t u = users[e];
    const int32_t *list = ds->user_items + ds->user_ptr[u];
    int32_t earlier = pos[e];
    int32_t end = split == DT_SPLIT_VALID ? ds->user_n_train[u] + ds->user_n_valid[u]
                                          : (int32_t)(ds->user_ptr[u + 1] - ds->user_ptr[u]);
    int64_t n_held = end - earlier;
    int32_t *held = dt_xmalloc((size_t)n_held * sizeof(int32_t));
    memcpy(held, list + earlier, (size_t)n_held * sizeof(int32_t));
    qsort(held, (size_t)n_held, sizeof(int32_t), cmp_i32);
    int32_t *excl = dt_xmalloc((size_t)(earlier > 0 ? earlier : 1) * sizeof(int32_t));
    memcpy(excl, list, (size_t)earlier * sizeof(int32_t));
    qsort(excl, (size_t)earlier, sizeof(int32_t), cmp_i32);
    /* model */
    int got = 0;
    for (int64_t j = 0; j < k_ask && got < K; j++) {
      int32_t item = st->top_idx[e * k_ask + j];
      if (item < 0) break;
      if (bsearch(&item, excl, (size_t)earlier, sizeof(int32_t), cmp_i32)) continue;
      top[got++] = item;
    }
    for (int j = got; j < K; j++) top[j] = -1;
    for (int ki = 0; ki < DT_EVAL_NK; ki++)
      for (int j = 0; j < dt_eval_ks[ki]; j++)
        if (top[j] >= 0) covered[(int64_t)top[j] * DT_EVAL_NK + ki] = 1;
    dt_metrics msum;
    memset(&msum, 0, sizeof msum);
    dt_full_metrics_add(top, K, held, n_held, &msum);
    double tmp[M_SIZE];
    dt_eval_metrics_to_sums(&msum, tmp);
    for (int k = 0; k < M_SIZE; k++) s[F_MODEL + k] += tmp[k];
    /* popularity */
    got = 0;
    for (int64_t j = 0; j < ctx->model->n_items && got < K; j++) {
      int32_t item = pop_order[j];
      if (bsearch(&item, excl, (size_t)earlier, sizeof(int32_t), cmp_i32)) continue;
      top[got++] = item;
    }
    for (int j = got; j < K; j++) top[j] = -1;
    memset(&msum, 0, sizeof msum);
    dt_full_metrics_add(top, K, held, n_held, &msum);
    dt_eval_metrics_to_sums(&msum, tmp);
    for (int k = 0; k < M_SIZE; k++) s[F_POP + k] += tmp[k];
    free(held);
    free(excl);
  }
  return DT_OK;
}

typedef struct {
  full_state st;
  dt_split_kind split;
  const int32_t *pop_order;
  int64_t *covered;
} full_arg;

static int full_fn(dt_eval_ctx *ctx, void *arg, const int32_t *users, const int32_t *pos, int64_t n, double *s) {
  full_arg *a = arg;
  return full_batch(ctx, &a->st, a->split, users, pos, n, a->pop_order, s, a->covered);
}

int dt_eval_full(dt_eval_ctx *ctx, dt_split_kind split, const int32_t *users, const int32_t *pos, int64_t n,
                 const int32_t *pop_order, dt_eval_result *out) {
  dt_model *m = ctx->model;
  full_arg arg;
  memset(&arg, 0, sizeof arg);
  arg.split = split;
  arg.pop_order = pop_order;
  arg.covered = dt_xcalloc((size_t)(m->n_items * DT_EVAL_NK), sizeof(int64_t));
  int rc = m->version == DT_V3 ? v3_item_side(ctx, &arg.st) : DT_OK;
  /* every rank must agree before the collective loop */
  int64_t failed = rc != DT_OK;
  int crc = dt_comm_allreduce_max_i64(ctx->comm, &failed, 1);
  if (!rc && (crc || failed)) rc = crc ? crc : dt_fail(DT_EXIT_RUNTIME, "evaluation failed on another rank");
  double total[F_SIZE];
  char label[64];
  snprintf(label, sizeof label, "eval %s full", split == DT_SPLIT_VALID ? "valid" : "test");
  if (!rc) rc = dt_eval_over_batches(ctx, label, users, pos, n, F_SIZE, full_fn, &arg, total);
  if (!rc) rc = dt_comm_allreduce_max_i64(ctx->comm, arg.covered, m->n_items * DT_EVAL_NK);
  if (!rc) {
    out->has_full = 1;
    dt_eval_sums_to_means(total + F_MODEL, &out->full);
    dt_eval_sums_to_means(total + F_POP, &out->pop_full);
    for (int ki = 0; ki < DT_EVAL_NK; ki++) {
      int64_t c = 0;
      for (int64_t i = 0; i < m->n_items; i++) c += arg.covered[i * DT_EVAL_NK + ki] != 0;
      out->full.coverage[ki] = (double)c / (double)m->n_items;
    }
    /* popularity recommends the same top items to everyone */
    for (int ki = 0; ki < DT_EVAL_NK; ki++) out->pop_full.coverage[ki] = NAN;
  }
  full_state_free(m->be, &arg.st);
  free(arg.covered);
  return rc;
}
