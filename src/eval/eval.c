/* eval.c: sampled and full-ranking protocols, cold-start buckets, the
 * popularity baseline, sharded over ranks with a fixed batch composition. */
#include "dtrain/eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/progress.h"
#include "model/model_internal.h"

/* ---- Per-batch sums -------------------------------------------------------------- */

/* One protocol's sums: users, mrr, then ndcg/hr/recall/precision/map per K. */
enum { M_USERS = 0, M_MRR, M_NDCG, M_HR = M_NDCG + DT_EVAL_NK, M_RECALL = M_HR + DT_EVAL_NK,
       M_PREC = M_RECALL + DT_EVAL_NK, M_MAP = M_PREC + DT_EVAL_NK, M_SIZE = M_MAP + DT_EVAL_NK };
/* A sampled batch: model, popularity, alpha sums, buckets (users, ndcg, hr, alpha x3),
 * users with fewer unseen items than eval.negatives. */
enum { S_MODEL = 0, S_POP = M_SIZE, S_ALPHA = 2 * M_SIZE, S_BUCKETS = S_ALPHA + 3, B_SIZE = 6,
       S_FEWER = S_BUCKETS + DT_EVAL_BUCKETS * B_SIZE, S_SIZE = S_FEWER + 1 };
/* A full-ranking batch: model, popularity. */
enum { F_MODEL = 0, F_POP = M_SIZE, F_SIZE = 2 * M_SIZE };

static void metrics_to_sums(const dt_metrics *m, double *s) {
  s[M_USERS] = (double)m->users;
  s[M_MRR] = m->mrr;
  for (int k = 0; k < DT_EVAL_NK; k++) {
    s[M_NDCG + k] = m->ndcg[k];
    s[M_HR + k] = m->hr[k];
    s[M_RECALL + k] = m->recall[k];
    s[M_PREC + k] = m->precision[k];
    s[M_MAP + k] = m->map[k];
  }
}

static void sums_to_means(const double *s, dt_metrics *m) {
  memset(m, 0, sizeof *m);
  m->users = (int64_t)s[M_USERS];
  double u = s[M_USERS] > 0 ? s[M_USERS] : 1;
  m->mrr = s[M_MRR] / u;
  for (int k = 0; k < DT_EVAL_NK; k++) {
    m->ndcg[k] = s[M_NDCG + k] / u;
    m->hr[k] = s[M_HR + k] / u;
    m->recall[k] = s[M_RECALL + k] / u;
    m->precision[k] = s[M_PREC + k] / u;
    m->map[k] = s[M_MAP + k] / u;
  }
}

/* Sampled metrics of one user from the positive's rank (one positive). */
static void sampled_add(int64_t rank, double *s) {
  s[M_USERS] += 1;
  s[M_MRR] += 1.0 / (double)rank;
  for (int k = 0; k < DT_EVAL_NK; k++) {
    int K = dt_eval_ks[k];
    double hit = rank <= K ? 1.0 : 0.0;
    s[M_NDCG + k] += dt_ndcg_at(rank, K);
    s[M_HR + k] += hit;
    s[M_RECALL + k] += hit;
    s[M_PREC + k] += hit / K;
    s[M_MAP + k] += hit / (double)rank;
  }
}

static int bucket_of(int32_t n_train) { return n_train <= 3 ? 0 : n_train <= 10 ? 1 : n_train <= 30 ? 2 : 3; }
static const char *g_bucket_names[DT_EVAL_BUCKETS] = {"<=3", "4-10", "11-30", ">30"};

/* ---- Users of a split -------------------------------------------------------------- */

/* Evaluation users of a split (those with a held-out row and a train row),
 * ascending, and the position of their first held-out row. */
static int64_t split_users(const dt_dataset *ds, dt_split_kind split, int32_t **users, int32_t **pos) {
  *users = dt_xmalloc((size_t)(ds->n_users > 0 ? ds->n_users : 1) * sizeof(int32_t));
  *pos = dt_xmalloc((size_t)(ds->n_users > 0 ? ds->n_users : 1) * sizeof(int32_t));
  int64_t n = 0;
  for (int64_t u = 0; u < ds->n_users; u++) {
    int64_t len = ds->user_ptr[u + 1] - ds->user_ptr[u];
    int32_t ntr = ds->user_n_train[u], nva = ds->user_n_valid[u];
    int32_t lo = split == DT_SPLIT_VALID ? ntr : ntr + nva;
    int32_t hi = split == DT_SPLIT_VALID ? ntr + nva : (int32_t)len;
    if (ntr <= 0 || hi <= lo) continue;
    (*users)[n] = (int32_t)u;
    (*pos)[n] = lo;
    n++;
  }
  return n;
}

/* Keeps at most `max` users, evenly spaced (deterministic). */
static int64_t subsample(int32_t *users, int32_t *pos, int64_t n, int64_t max) {
  if (max <= 0 || n <= max) return n;
  for (int64_t i = 0; i < max; i++) {
    int64_t j = (int64_t)((double)i * (double)n / (double)max);
    users[i] = users[j];
    pos[i] = pos[j];
  }
  return max;
}

/* Items ordered by train popularity (count desc, id asc), and the counts. */
static void popularity(const dt_dataset *ds, int64_t **count_out, int32_t **order_out);

static int64_t *g_pop_count;
static int by_popularity(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (g_pop_count[x] != g_pop_count[y]) return g_pop_count[x] > g_pop_count[y] ? -1 : 1;
  return (x > y) - (x < y);
}

static void popularity(const dt_dataset *ds, int64_t **count_out, int32_t **order_out) {
  int64_t *count = dt_xcalloc((size_t)ds->n_items, sizeof(int64_t));
  for (int64_t u = 0; u < ds->n_users; u++)
    for (int32_t p = 0; p < ds->user_n_train[u]; p++) count[ds->user_items[ds->user_ptr[u] + p]]++;
  int32_t *order = dt_xmalloc((size_t)ds->n_items * sizeof(int32_t));
  for (int64_t i = 0; i < ds->n_items; i++) order[i] = (int32_t)i;
  g_pop_count = count;
  qsort(order, (size_t)ds->n_items, sizeof(int32_t), by_popularity);
  *count_out = count;
  *order_out = order;
}

/* ---- Sampled protocol --------------------------------------------------------------- */

static int run_batch_forward(dt_eval_ctx *ctx, const float **scores, const float **alpha) {
  if (ctx->prepare_batch) DT_TRY(ctx->prepare_batch(ctx->prepare_ctx));
  return dt_model_forward(ctx->model, dt_batch_get(ctx->bb), scores, alpha);
}

static int sampled_batch(dt_eval_ctx *ctx, const int32_t *users, const int32_t *pos, int64_t n, const int64_t *pop,
                         double *s) {
  const dt_dataset *ds = ctx->ds;
  dt_backend *be = ctx->model->be;
  const int n_neg = (int)ctx->cfg->eval_negatives;
  const int c = 1 + n_neg;
  DT_TRY(dt_batch_build_eval(ctx->bb, users, pos, n, n_neg, (uint64_t)ctx->cfg->eval_seed));
  const float *d_scores, *d_alpha;
  DT_TRY(run_batch_forward(ctx, &d_scores, &d_alpha));
  float *scores = dt_xmalloc((size_t)(n * c) * sizeof(float));
  float *alpha = dt_xmalloc((size_t)(n * 3) * sizeof(float));
  int rc = be->download(be, scores, d_scores, (size_t)(n * c) * sizeof(float));
  if (!rc) rc = be->download(be, alpha, d_alpha, (size_t)(n * 3) * sizeof(float));
  const int32_t *cand = dt_batch_host_candidates(ctx->bb);
  const int32_t *n_negs = dt_batch_host_negative_counts(ctx->bb);
  for (int64_t e = 0; e < n && !rc; e++) {
    const float *row = scores + e * c;
    if (!isfinite(row[0])) {
      rc = dt_fail(DT_EXIT_RUNTIME, "evaluation: the model scored user %d's positive as %g (NaN/Inf parameters?)",
                   users[e], (double)row[0]);
      break;
    }
    int64_t rank = 1, pop_rank = 1;
    s[S_FEWER] += n_negs[e] < n_neg; /* ranked against all its unseen items */
    for (int j = 1; j <= n_negs[e]; j++) {
      rank += row[j] >= row[0];
      pop_rank += pop[cand[e * c + j]] >= pop[cand[e * c]];
    }
    sampled_add(rank, s + S_MODEL);
    sampled_add(pop_rank, s + S_POP);
    for (int k = 0; k < 3; k++) s[S_ALPHA + k] += alpha[e * 3 + k];
    double *b = s + S_BUCKETS + B_SIZE * bucket_of(ds->user_n_train[users[e]]);
    b[0] += 1;
    b[1] += dt_ndcg_at(rank, 10);
    b[2] += rank <= 10;
    for (int k = 0; k < 3; k++) b[3 + k] += alpha[e * 3 + k];
  }
  free(scores);
  free(alpha);
  return rc;
}

/* ---- Full ranking ------------------------------------------------------------------- */

typedef struct {
  int64_t cap_rows, cap_cols;
  float *d_scores;    /* [n, n_items] backend */
  float *h_scores;    /* host staging for the generic path */
  float *d_user;      /* [n, 3D] v3 user-side vectors (backend) */
  float *d_items;     /* [n_items, 3D] v3 item-side matrix (backend) */
  float *d_bias;      /* [n_items] v3 item biases (backend) */
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

/* Rows [first, first + n) of a table on the host, [n, dim]; a sharded
 * table's rows come from their owners in chunks. COLLECTIVE when sharded. */
static int table_rows_host(dt_eval_ctx *ctx, int t, int64_t first, int64_t n, float *out) {
  dt_model *m = ctx->model;
  dt_table *tb = &m->tables[t];
  if (!tb->sharded) return m->be->download(m->be, out, tb->data + first * tb->dim, (size_t)(n * tb->dim) * sizeof(float));
  const int64_t chunk = 65536;
  int32_t *ids = dt_xmalloc((size_t)chunk * sizeof(int32_t));
  dt_table_ref ref = {m, t};
  int rc = DT_OK;
  for (int64_t lo = 0; lo < n && !rc; lo += chunk) {
    int64_t k = n - lo < chunk ? n - lo : chunk;
    for (int64_t i = 0; i < k; i++) ids[i] = (int32_t)(first + lo + i);
    rc = dt_comm_sharded_lookup(ctx->comm, ctx->table_comm_id[t], ids, k, dt_model_fetch_rows, &ref,
                                out + lo * tb->dim);
  }
  free(ids);
  return rc;
}

/* v3's item side as one matrix [e_i ; d_{i+1} ; h_c(i)] and the biases. */
static int v3_item_side(dt_eval_ctx *ctx, full_state *st) {
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  const int D = m->dim;
  const int64_t I = m->n_items;
  float *host = dt_xcalloc((size_t)(I * 3 * D), sizeof(float));
  float *tmp = dt_xmalloc((size_t)(I * D) * sizeof(float));
  int rc = table_rows_host(ctx, DT_TABLE_ITEM, 0, I, tmp);
  for (int64_t i = 0; i < I && !rc; i++) memcpy(host + i * 3 * D, tmp + i * D, (size_t)D * sizeof(float));
  if (!rc && m->use_dynamic) {
    rc = table_rows_host(ctx, DT_TABLE_DYN_ITEM, 1, I, tmp);
    for (int64_t i = 0; i < I && !rc; i++) memcpy(host + i * 3 * D + D, tmp + i * D, (size_t)D * sizeof(float));
  }
  if (!rc && m->use_content) {
    rc = be->download(be, tmp, m->item_hc, (size_t)(I * D) * sizeof(float));
    for (int64_t i = 0; i < I && !rc; i++) memcpy(host + i * 3 * D + 2 * D, tmp + i * D, (size_t)D * sizeof(float));
  }
  if (!rc) rc = dt_backend_alloc(be, (size_t)(I * 3 * D) * sizeof(float), (void **)&st->d_items);
  if (!rc) rc = be->upload(be, st->d_items, host, (size_t)(I * 3 * D) * sizeof(float));
  if (!rc) rc = dt_backend_alloc(be, (size_t)I * sizeof(float), (void **)&st->d_bias);
  if (!rc) rc = table_rows_host(ctx, DT_TABLE_ITEM_BIAS, 0, I, tmp);
  if (!rc) rc = be->upload(be, st->d_bias, tmp, (size_t)I * sizeof(float));
  free(host);
  free(tmp);
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

/* Scores [n, n_items] of users at held-out positions into st->d_scores. */
static int full_scores(dt_eval_ctx *ctx, full_state *st, const int32_t *users, const int32_t *pos, int64_t n) {
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  const int64_t I = m->n_items;
  const int D = m->dim;
  DT_TRY(ensure_scores(be, st, ctx->cfg->eval_batch_users, I));
  if (m->version == DT_V3) {
    /* one forward with the positive as the only candidate gives e_u, h_d,
     * P e_u and alpha; the catalogue is then three GEMMs in one:
     * s = [a_s e_u, a_d h_d, a_c P e_u] [e_i; d_i; h_c(i)]^T + b */
    int32_t *cand = dt_xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t e = 0; e < n; e++) cand[e] = ctx->ds->user_items[ctx->ds->user_ptr[users[e]] + pos[e]];
    int rc = dt_batch_build_candidates(ctx->bb, users, pos, NULL, n, cand, 1);
    free(cand);
    DT_TRY(rc);
    const float *sc, *al;
    DT_TRY(run_batch_forward(ctx, &sc, &al));
    float *alpha = dt_xmalloc((size_t)(n * 3) * sizeof(float));
    float *u = dt_xcalloc((size_t)(n * 3 * D), sizeof(float));
    float *part = dt_xmalloc((size_t)(n * D) * sizeof(float));
    rc = be->download(be, alpha, al, (size_t)(n * 3) * sizeof(float));
    const float *srcs[3] = {m->work->eu, m->use_dynamic ? m->work->hd : NULL, m->use_content ? m->work->up : NULL};
    for (int k = 0; k < 3 && !rc; k++) {
      if (!srcs[k]) continue;
      rc = be->download(be, part, srcs[k], (size_t)(n * D) * sizeof(float));
      for (int64_t e = 0; e < n && !rc; e++)
        for (int d = 0; d < D; d++) u[e * 3 * D + k * D + d] = alpha[e * 3 + k] * part[e * D + d];
    }
    if (!rc && !st->d_user) rc = dt_backend_alloc(be, (size_t)(st->cap_rows * 3 * D) * sizeof(float), (void **)&st->d_user);
    if (!rc) rc = be->upload(be, st->d_user, u, (size_t)(n * 3 * D) * sizeof(float));
    free(alpha);
    free(u);
    free(part);
    DT_TRY(rc);
    if (n == 0) return DT_OK;
    DT_TRY(be->gemm(be, 0, 1, (int)n, (int)I, 3 * D, 1.0f, st->d_user, 3 * D, st->d_items, 3 * D, 0.0f, st->d_scores,
                    (int)I));
    return be->add_bias(be, st->d_scores, st->d_bias, n, (int)I);
  }
  /* v1/v2: the head needs every (user, item) pair: blocks of items (the
   * block size must not depend on n: every rank runs as many blocks) */
  int64_t block = 65536 / ctx->cfg->eval_batch_users;
  if (block < 16) block = 16;
  if (block > I) block = I;
  int32_t *cand = dt_xmalloc((size_t)(n * block) * sizeof(int32_t));
  int rc = DT_OK;
  for (int64_t lo = 0; lo < I && !rc; lo += block) {
    int64_t cb = I - lo < block ? I - lo : block;
    for (int64_t e = 0; e < n; e++)
      for (int64_t j = 0; j < cb; j++) cand[e * cb + j] = (int32_t)(lo + j);
    rc = dt_batch_build_candidates(ctx->bb, users, pos, NULL, n, cand, (int)cb);
    const float *sc, *al;
    if (!rc) rc = run_batch_forward(ctx, &sc, &al);
    float *tmp = NULL;
    if (!rc) {
      tmp = dt_xmalloc((size_t)(n * cb) * sizeof(float));
      rc = be->download(be, tmp, sc, (size_t)(n * cb) * sizeof(float));
    }
    for (int64_t e = 0; e < n && !rc; e++) memcpy(st->h_scores + e * I + lo, tmp + e * cb, (size_t)cb * sizeof(float));
    free(tmp);
  }
  free(cand);
  DT_TRY(rc);
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
    metrics_to_sums(&msum, tmp);
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
    metrics_to_sums(&msum, tmp);
    for (int k = 0; k < M_SIZE; k++) s[F_POP + k] += tmp[k];
    free(held);
    free(excl);
  }
  return DT_OK;
}

/* ---- Driver ----------------------------------------------------------------------- */

/* Runs `fn` over the batches of users dealt to this rank, sums per batch,
 * all-reduces, and adds the batches in order into total[width]. */
typedef int (*batch_fn)(dt_eval_ctx *ctx, void *arg, const int32_t *users, const int32_t *pos, int64_t n, double *s);

static int over_batches(dt_eval_ctx *ctx, const char *label, const int32_t *users, const int32_t *pos, int64_t n,
                        int width, batch_fn fn, void *arg, double *total) {
  const int64_t bu = ctx->cfg->eval_batch_users;
  const int64_t n_batches = (n + bu - 1) / bu;
  const int rank = dt_comm_rank(ctx->comm), size = dt_comm_size(ctx->comm);
  double *sums = dt_xcalloc((size_t)(n_batches > 0 ? n_batches : 1) * (size_t)width, sizeof(double));
  dt_progress prog;
  dt_progress_begin(&prog, label, n, "users");
  int rc = DT_OK;
  int64_t done = 0;
  /* every rank runs the same number of rounds (an empty batch when it has
   * none left), so collectives inside a batch (sharded lookups) pair up */
  int64_t rounds = (n_batches + size - 1) / size;
  for (int64_t round = 0; round < rounds; round++) {
    int64_t k = round * size + rank;
    int64_t lo = k < n_batches ? k * bu : 0, cnt = k < n_batches ? (n - lo < bu ? n - lo : bu) : 0;
    double scratch[256];
    if (rc == DT_OK) rc = fn(ctx, arg, users + lo, pos + lo, cnt, cnt > 0 ? sums + k * width : scratch);
    done += bu * size;
    dt_progress_update(&prog, done < n ? done : n, NULL);
  }
  /* a failure on one rank must not leave the others waiting: agree first */
  int64_t failed = rc != DT_OK;
  int crc = dt_comm_allreduce_max_i64(ctx->comm, &failed, 1);
  if (!crc && failed && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "evaluation failed on another rank");
  if (!crc && !failed) crc = dt_comm_allreduce_sum_f64(ctx->comm, sums, n_batches * width);
  if (crc && rc == DT_OK) rc = crc;
  memset(total, 0, (size_t)width * sizeof(double));
  for (int64_t k = 0; k < n_batches && rc == DT_OK; k++)
    for (int j = 0; j < width; j++) total[j] += sums[k * width + j];
  dt_progress_end(&prog, n, NULL);
  free(sums);
  return rc;
}

typedef struct {
  const int64_t *pop_count;
} sampled_arg;
static int sampled_fn(dt_eval_ctx *ctx, void *arg, const int32_t *users, const int32_t *pos, int64_t n, double *s) {
  return sampled_batch(ctx, users, pos, n, ((sampled_arg *)arg)->pop_count, s);
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

int dt_evaluate(dt_eval_ctx *ctx, dt_split_kind split, int sampled, int full, int64_t max_users, dt_eval_result *out) {
  const dt_dataset *ds = ctx->ds;
  dt_model *m = ctx->model;
  memset(out, 0, sizeof *out);
  out->split = split;
  int32_t *users, *pos;
  int64_t n_all = split_users(ds, split, &users, &pos);
  int64_t *pop_count;
  int32_t *pop_order;
  popularity(ds, &pop_count, &pop_order);
  int rc = dt_model_build_item_cache(m);
  const char *split_name = split == DT_SPLIT_VALID ? "valid" : "test";
  if (!rc && sampled) {
    int32_t *u2 = dt_xmalloc((size_t)(n_all > 0 ? n_all : 1) * sizeof(int32_t));
    int32_t *p2 = dt_xmalloc((size_t)(n_all > 0 ? n_all : 1) * sizeof(int32_t));
    memcpy(u2, users, (size_t)n_all * sizeof(int32_t));
    memcpy(p2, pos, (size_t)n_all * sizeof(int32_t));
    int64_t n = subsample(u2, p2, n_all, max_users);
    double total[S_SIZE];
    sampled_arg arg = {pop_count};
    char label[64];
    snprintf(label, sizeof label, "eval %s sampled", split_name);
    rc = over_batches(ctx, label, u2, p2, n, S_SIZE, sampled_fn, &arg, total);
    if (!rc) {
      out->has_sampled = 1;
      out->sampled_negatives = (int)ctx->cfg->eval_negatives;
      out->sampled_fewer_negatives = (int64_t)total[S_FEWER];
      sums_to_means(total + S_MODEL, &out->sampled);
      sums_to_means(total + S_POP, &out->pop_sampled);
      double un = total[S_MODEL + M_USERS] > 0 ? total[S_MODEL + M_USERS] : 1;
      for (int k = 0; k < 3; k++) out->alpha_mean[k] = total[S_ALPHA + k] / un;
      for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
        const double *bs = total + S_BUCKETS + b * B_SIZE;
        dt_bucket *bk = &out->buckets[b];
        bk->name = g_bucket_names[b];
        bk->users = (int64_t)bs[0];
        double d = bs[0] > 0 ? bs[0] : 1;
        bk->ndcg10 = bs[1] / d;
        bk->hr10 = bs[2] / d;
        for (int k = 0; k < 3; k++) bk->alpha[k] = bs[3 + k] / d;
      }
    }
    free(u2);
    free(p2);
  }
  if (!rc && full) {
    int64_t n = subsample(users, pos, n_all, ctx->cfg->eval_full_max_users);
    full_arg arg;
    memset(&arg, 0, sizeof arg);
    arg.split = split;
    arg.pop_order = pop_order;
    arg.covered = dt_xcalloc((size_t)(m->n_items * DT_EVAL_NK), sizeof(int64_t));
    if (m->version == DT_V3) rc = v3_item_side(ctx, &arg.st);
    /* every rank must agree before the collective loop */
    int64_t failed = rc != DT_OK;
    int crc = dt_comm_allreduce_max_i64(ctx->comm, &failed, 1);
    if (!rc && (crc || failed)) rc = crc ? crc : dt_fail(DT_EXIT_RUNTIME, "evaluation failed on another rank");
    double total[F_SIZE];
    char label[64];
    snprintf(label, sizeof label, "eval %s full", split_name);
    if (!rc) rc = over_batches(ctx, label, users, pos, n, F_SIZE, full_fn, &arg, total);
    if (!rc) rc = dt_comm_allreduce_max_i64(ctx->comm, arg.covered, m->n_items * DT_EVAL_NK);
    if (!rc) {
      out->has_full = 1;
      sums_to_means(total + F_MODEL, &out->full);
      sums_to_means(total + F_POP, &out->pop_full);
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
  }
  free(users);
  free(pos);
  free(pop_count);
  free(pop_order);
  return rc;
}

/* ---- Dump for the PyTorch check ------------------------------------------------------ */

int dt_eval_dump(dt_eval_ctx *ctx, dt_split_kind split, int64_t n_users, const char *path) {
  const dt_dataset *ds = ctx->ds;
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  int32_t *users, *pos;
  int64_t n = split_users(ds, split, &users, &pos);
  if (n > n_users) n = n_users;
  const int n_neg = (int)ctx->cfg->eval_negatives, c = 1 + n_neg;
  int rc = dt_model_build_item_cache(m);
  if (!rc) rc = dt_batch_build_eval(ctx->bb, users, pos, n, n_neg, (uint64_t)ctx->cfg->eval_seed);
  const float *d_scores = NULL, *d_alpha = NULL;
  if (!rc) rc = run_batch_forward(ctx, &d_scores, &d_alpha);
  float *scores = dt_xmalloc((size_t)(n * c + 1) * sizeof(float)), *alpha = dt_xmalloc((size_t)(n * 3 + 1) * sizeof(float));
  float *ctxv = dt_xmalloc((size_t)(n * m->gate_in + 1) * sizeof(float));
  if (!rc) rc = be->download(be, scores, d_scores, (size_t)(n * c) * sizeof(float));
  if (!rc) rc = be->download(be, alpha, d_alpha, (size_t)(n * 3) * sizeof(float));
  if (!rc) rc = be->download(be, ctxv, dt_batch_get(ctx->bb)->ctx, (size_t)(n * m->gate_in) * sizeof(float));
  FILE *f = rc ? NULL : fopen(path, "w");
  if (!rc && !f) rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s", path);
  const int32_t *cand = dt_batch_host_candidates(ctx->bb);
  for (int64_t e = 0; e < n && !rc; e++) {
    int32_t u = users[e], lo, hi;
    dt_history_window(m->history, ds->history_len, pos[e], ds->user_n_train[u], &lo, &hi);
    const int32_t *list = ds->user_items + ds->user_ptr[u];
    fprintf(f, "{\"user\": %d, \"pos\": %d, \"ts\": %lld, \"history\": [", u, pos[e],
            (long long)ds->user_ts[ds->user_ptr[u] + pos[e]]);
    for (int32_t k = lo; k < hi; k++) fprintf(f, "%s%d", k > lo ? ", " : "", list[k]);
    fprintf(f, "], \"n_train\": %d, \"candidates\": [", ds->user_n_train[u]);
    for (int j = 0; j < c; j++) fprintf(f, "%s%d", j ? ", " : "", cand[e * c + j]);
    fprintf(f, "], \"context\": [");
    for (int k = 0; k < m->gate_in; k++) fprintf(f, "%s%.9g", k ? ", " : "", (double)ctxv[e * m->gate_in + k]);
    fprintf(f, "], \"scores\": [");
    for (int j = 0; j < c; j++) fprintf(f, "%s%.9g", j ? ", " : "", (double)scores[e * c + j]);
    fprintf(f, "], \"alpha\": [%.9g, %.9g, %.9g]}\n", (double)alpha[e * 3], (double)alpha[e * 3 + 1],
            (double)alpha[e * 3 + 2]);
  }
  if (f && fclose(f) != 0 && !rc) rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s", path);
  dt_model_drop_item_cache(m);
  free(scores);
  free(alpha);
  free(ctxv);
  free(users);
  free(pos);
  return rc;
}

/* ---- Reporting -------------------------------------------------------------------- */

static void print_metrics_row(FILE *f, const char *name, const dt_metrics *m, int full) {
  fprintf(f, "  %-22s %8lld", name, (long long)m->users);
  for (int k = 0; k < DT_EVAL_NK; k++) fprintf(f, "  %6.4f %6.4f", m->ndcg[k], full ? m->recall[k] : m->hr[k]);
  fprintf(f, "  %6.4f\n", m->mrr);
}

void dt_eval_print(FILE *f, const dt_eval_result *r) {
  const char *split = r->split == DT_SPLIT_VALID ? "valid" : "test";
  fprintf(f, "\nEvaluation on %s\n", split);
  fprintf(f, "  %-22s %8s  %-13s  %-13s  %-13s  %6s\n", "protocol", "users", "NDCG@5 R@5", "NDCG@10 R@10",
          "NDCG@20 R@20", "MRR");
  if (r->has_sampled) {
    char label[32];
    snprintf(label, sizeof label, "sampled 1+%d", r->sampled_negatives);
    print_metrics_row(f, label, &r->sampled, 0);
    print_metrics_row(f, "  popularity", &r->pop_sampled, 0);
  }
  if (r->has_full) {
    print_metrics_row(f, "full ranking", &r->full, 1);
    print_metrics_row(f, "  popularity", &r->pop_full, 1);
    fprintf(f, "  full ranking: precision@10 %.4f  MAP@10 %.4f  HR@10 %.4f  coverage@5/10/20 %.4f %.4f %.4f\n",
            r->full.precision[1], r->full.map[1], r->full.hr[1], r->full.coverage[0], r->full.coverage[1],
            r->full.coverage[2]);
  }
  if (r->has_sampled) {
    if (r->sampled_fewer_negatives > 0)
      fprintf(f, "  sampled: %lld users have fewer than %d unseen items and were ranked against all of them\n",
              (long long)r->sampled_fewer_negatives, r->sampled_negatives);
    fprintf(f, "  mean alpha (static, dynamic, content): %.3f %.3f %.3f\n", r->alpha_mean[0], r->alpha_mean[1],
            r->alpha_mean[2]);
    fprintf(f, "  cold start (train history length):\n  %-8s %8s %8s %8s   %s\n", "bucket", "users", "NDCG@10",
            "HR@10", "alpha (s, d, c)");
    for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
      const dt_bucket *bk = &r->buckets[b];
      fprintf(f, "  %-8s %8lld %8.4f %8.4f   %.3f %.3f %.3f\n", bk->name, (long long)bk->users, bk->ndcg10, bk->hr10,
              bk->alpha[0], bk->alpha[1], bk->alpha[2]);
    }
  }
  fflush(f);
}

static void add_number(cJSON *o, const char *key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static cJSON *metrics_json(const dt_metrics *m, int full) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "users", (double)m->users);
  char key[32];
  for (int k = 0; k < DT_EVAL_NK; k++) {
    int K = dt_eval_ks[k];
    snprintf(key, sizeof key, "ndcg@%d", K);
    add_number(o, key, m->ndcg[k]);
    snprintf(key, sizeof key, "hr@%d", K);
    add_number(o, key, m->hr[k]);
    snprintf(key, sizeof key, "recall@%d", K);
    add_number(o, key, m->recall[k]);
    snprintf(key, sizeof key, "precision@%d", K);
    add_number(o, key, m->precision[k]);
    snprintf(key, sizeof key, "map@%d", K);
    add_number(o, key, m->map[k]);
    if (full) {
      snprintf(key, sizeof key, "coverage@%d", K);
      add_number(o, key, m->coverage[k]);
    }
  }
  add_number(o, "mrr", m->mrr);
  return o;
}

char *dt_eval_to_json(const dt_eval_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "split", r->split == DT_SPLIT_VALID ? "valid" : "test");
  cJSON *pop = cJSON_CreateObject();
  if (r->has_sampled) {
    cJSON *sampled = metrics_json(&r->sampled, 0);
    cJSON_AddNumberToObject(sampled, "negatives", r->sampled_negatives);
    cJSON_AddNumberToObject(sampled, "users_fewer_negatives", (double)r->sampled_fewer_negatives);
    cJSON_AddItemToObject(root, "sampled", sampled);
    cJSON_AddItemToObject(pop, "sampled", metrics_json(&r->pop_sampled, 0));
  }
  if (r->has_full) {
    cJSON_AddItemToObject(root, "full", metrics_json(&r->full, 1));
    cJSON_AddItemToObject(pop, "full", metrics_json(&r->pop_full, 1));
  }
  cJSON_AddItemToObject(root, "popularity", pop);
  if (r->has_sampled) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < 3; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(r->alpha_mean[k]));
    cJSON_AddItemToObject(root, "alpha_mean", a);
    cJSON *bs = cJSON_CreateArray();
    for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
      const dt_bucket *bk = &r->buckets[b];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", bk->name ? bk->name : g_bucket_names[b]);
      cJSON_AddNumberToObject(o, "users", (double)bk->users);
      add_number(o, "ndcg@10", bk->ndcg10);
      add_number(o, "hr@10", bk->hr10);
      cJSON *al = cJSON_CreateArray();
      for (int k = 0; k < 3; k++) cJSON_AddItemToArray(al, cJSON_CreateNumber(bk->alpha[k]));
      cJSON_AddItemToObject(o, "alpha", al);
      cJSON_AddItemToArray(bs, o);
    }
    cJSON_AddItemToObject(root, "buckets", bs);
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  char *copy = dt_xstrdup(s ? s : "{}");
  cJSON_free(s);
  return copy;
}
