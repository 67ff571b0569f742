/* eval_internal.h: what the files of src/eval share (not public).
 *
 * eval.c          dt_evaluate: the users of a split, popularity, the batch
 *                 driver (batches dealt to ranks, sums added in batch order)
 * eval_sampled.c  the sampled protocol and the cold-start buckets
 * eval_full.c     the full-ranking protocol, dt_score_catalogue
 * eval_dump.c     dt_eval_dump (inputs and scores for tools/torch_check.py)
 * eval_report.c   the metric table and the JSON
 * metrics.c       ranking metrics of one user
 */
#ifndef DTRAIN_EVAL_INTERNAL_H
#define DTRAIN_EVAL_INTERNAL_H

#include <stdint.h>

#include "dtrain/eval.h"

/* One protocol's sums: users, mrr, then ndcg/hr/recall/precision/map per K. */
enum {
  M_USERS = 0,
  M_MRR,
  M_NDCG,
  M_HR = M_NDCG + DT_EVAL_NK,
  M_RECALL = M_HR + DT_EVAL_NK,
  M_PREC = M_RECALL + DT_EVAL_NK,
  M_MAP = M_PREC + DT_EVAL_NK,
  M_SIZE = M_MAP + DT_EVAL_NK
};
/* A sampled batch: model, popularity, alpha sums, buckets (users, ndcg, hr, alpha x3). */
enum {
  S_MODEL = 0,
  S_POP = M_SIZE,
  S_ALPHA = 2 * M_SIZE,
  S_BUCKETS = S_ALPHA + 3,
  B_SIZE = 6,
  S_FEWER = S_BUCKETS + DT_EVAL_BUCKETS * B_SIZE,
  S_SIZE = S_FEWER + 1
};
/* A full-ranking batch: model, popularity. */
enum { F_MODEL = 0, F_POP = M_SIZE, F_SIZE = 2 * M_SIZE };

extern const char *const dt_eval_bucket_names[DT_EVAL_BUCKETS];

void dt_eval_metrics_to_sums(const dt_metrics *m, double *s);
void dt_eval_sums_to_means(const double *s, dt_metrics *m);

/* Evaluation users of a split (those with a held-out row and a train row),
 * ascending, and the position of their first held-out row. */
int64_t dt_eval_split_users(const dt_dataset *ds, dt_split_kind split, int32_t **users, int32_t **pos);
/* The forward pass of the batch just built (sharded lookups first). */
int dt_eval_forward(dt_eval_ctx *ctx, const float **scores, const float **alpha);

/* Runs fn over the batches of users dealt to this rank, sums per batch,
 * all-reduces, and adds the batches in order into total[width]. COLLECTIVE. */
typedef int (*dt_eval_batch_fn)(dt_eval_ctx *ctx, void *arg, const int32_t *users, const int32_t *pos, int64_t n,
                                double *s);
int dt_eval_over_batches(dt_eval_ctx *ctx, const char *label, const int32_t *users, const int32_t *pos, int64_t n,
                         int width, dt_eval_batch_fn fn, void *arg, double *total);

/* The protocols: fill out's sampled (with popularity, alpha and buckets) or
 * full part. COLLECTIVE. */
int dt_eval_sampled(dt_eval_ctx *ctx, const char *split_name, const int32_t *users, const int32_t *pos, int64_t n,
                    const int64_t *pop_count, dt_eval_result *out);
int dt_eval_full(dt_eval_ctx *ctx, dt_split_kind split, const int32_t *users, const int32_t *pos, int64_t n,
                 const int32_t *pop_order, dt_eval_result *out);

#endif
