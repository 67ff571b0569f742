/* eval.c: dt_evaluate: the users of a split, the popularity ranking, and
 * the batch driver both protocols run on (eval.h). */
#include "dtrain/eval.h"

#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/progress.h"
#include "eval_internal.h"

const char *const dt_eval_bucket_names[DT_EVAL_BUCKETS] = {"<=3", "4-10", "11-30", ">30"};

void dt_eval_metrics_to_sums(const dt_metrics *m, double *s) {
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

void dt_eval_sums_to_means(const double *s, dt_metrics *m) {
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

int64_t dt_eval_split_users(const dt_dataset *ds, dt_split_kind split, int32_t **users, int32_t **pos) {
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

int dt_eval_forward(dt_eval_ctx *ctx, const float **scores, const float **alpha) {
  if (ctx->prepare_batch) DT_TRY(ctx->prepare_batch(ctx->prepare_ctx));
  return dt_model_forward(ctx->model, dt_batch_get(ctx->bb), scores, alpha);
}

int dt_eval_over_batches(dt_eval_ctx *ctx, const char *label, const int32_t *users, const int32_t *pos, int64_t n,
                         int width, dt_eval_batch_fn fn, void *arg, double *total) {
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

int dt_evaluate(dt_eval_ctx *ctx, dt_split_kind split, int sampled, int full, int64_t max_users, dt_eval_result *out) {
  const dt_dataset *ds = ctx->ds;
  memset(out, 0, sizeof *out);
  out->split = split;
  out->towers = dt_model_towers(ctx->model);
  int32_t *users, *pos;
  int64_t n_all = dt_eval_split_users(ds, split, &users, &pos);
  int64_t *pop_count;
  int32_t *pop_order;
  popularity(ds, &pop_count, &pop_order);
  int rc = dt_model_build_item_cache(ctx->model);
  if (!rc && sampled) {
    int32_t *u2 = dt_xmalloc((size_t)(n_all > 0 ? n_all : 1) * sizeof(int32_t));
    int32_t *p2 = dt_xmalloc((size_t)(n_all > 0 ? n_all : 1) * sizeof(int32_t));
    memcpy(u2, users, (size_t)n_all * sizeof(int32_t));
    memcpy(p2, pos, (size_t)n_all * sizeof(int32_t));
    int64_t n = subsample(u2, p2, n_all, max_users);
    rc = dt_eval_sampled(ctx, split == DT_SPLIT_VALID ? "valid" : "test", u2, p2, n, pop_count, out);
    free(u2);
    free(p2);
  }
  if (!rc && full) {
    int64_t n = subsample(users, pos, n_all, ctx->cfg->eval_full_max_users);
    rc = dt_eval_full(ctx, split, users, pos, n, pop_order, out);
  }
  free(users);
  free(pos);
  free(pop_count);
  free(pop_order);
  return rc;
}
