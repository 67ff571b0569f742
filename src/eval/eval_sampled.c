/* eval_sampled.c: the sampled protocol (each user's held-out item against
 * eval.negatives sampled items), the popularity ranking on the same
 * candidates, mean alpha and the cold-start buckets (eval.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dtrain/error.h"
#include "eval_internal.h"

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

static int sampled_batch(dt_eval_ctx *ctx, const int32_t *users, const int32_t *pos, int64_t n, const int64_t *pop,
                         double *s) {
  const dt_dataset *ds = ctx->ds;
  dt_backend *be = ctx->model->be;
  const int n_neg = (int)ctx->cfg->eval_negatives;
  const int c = 1 + n_neg;
  DT_TRY(dt_batch_build_eval(ctx->bb, users, pos, n, n_neg, (uint64_t)ctx->cfg->eval_seed));
  const float *d_scores, *d_alpha;
  DT_TRY(dt_eval_forward(ctx, &d_scores, &d_alpha));
  float *scores = dt_xmalloc((size_t)(n * c) * sizeof(float));
  float *alpha = dt_xmalloc((size_t)(n * 3) * sizeof(float));
  int rc = be->download(be, scores, d_scores, (size_t)(n * c) * sizeof(float));
  if (!rc) rc = be->download(be, alpha, d_alpha, (size_t)(n * 3) * sizeof(float));
  const int32_t *cand = dt_batch_host_candidates(ctx->bb);
  const int32_t *n_negs = dt_batch_host_negative_counts(ctx->bb);
  for (int64_t e = 0; e < n && !rc; e++) {
    const float *row = scores + e * c;
    for (int j = 0; j <= n_negs[e] && !rc; j++)
      if (!isfinite(row[j]))
        rc = dt_fail(DT_EXIT_DATA,
                     "evaluation: the model scored user %d's candidate %d as %g: its parameters are damaged (no "
                     "metric is computed from a non-finite score)",
                     users[e], j, (double)row[j]);
    if (rc) break;
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

static int sampled_fn(dt_eval_ctx *ctx, void *arg, const int32_t *users, const int32_t *pos, int64_t n, double *s) {
  return sampled_batch(ctx, users, pos, n, arg, s);
}

int dt_eval_sampled(dt_eval_ctx *ctx, const char *split_name, const int32_t *users, const int32_t *pos, int64_t n,
                    const int64_t *pop_count, dt_eval_result *out) {
  double total[S_SIZE];
  char label[64];
  snprintf(label, sizeof label, "eval %s sampled", split_name);
  DT_TRY(dt_eval_over_batches(ctx, label, users, pos, n, S_SIZE, sampled_fn, (void *)pop_count, total));
  out->has_sampled = 1;
  out->sampled_negatives = (int)ctx->cfg->eval_negatives;
  out->sampled_fewer_negatives = (int64_t)total[S_FEWER];
  dt_eval_sums_to_means(total + S_MODEL, &out->sampled);
  dt_eval_sums_to_means(total + S_POP, &out->pop_sampled);
  double un = total[S_MODEL + M_USERS] > 0 ? total[S_MODEL + M_USERS] : 1;
  for (int k = 0; k < 3; k++) out->alpha_mean[k] = total[S_ALPHA + k] / un;
  for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
    const double *bs = total + S_BUCKETS + b * B_SIZE;
    dt_bucket *bk = &out->buckets[b];
    bk->name = dt_eval_bucket_names[b];
    bk->users = (int64_t)bs[0];
    double d = bs[0] > 0 ? bs[0] : 1;
    bk->ndcg10 = bs[1] / d;
    bk->hr10 = bs[2] / d;
    for (int k = 0; k < 3; k++) bk->alpha[k] = bs[3 + k] / d;
  }
  return DT_OK;
}
