/* eval.h: the evaluation protocols of MODEL.md section 3.
 *
 * Sampled (NCF/SASRec): each evaluation user's first held-out interaction
 * of the split ranked against eval.negatives distinct items the user never
 * interacted with (all of them when fewer remain; such users are counted),
 * drawn by (eval.seed, user). rank = 1 + #{negatives with score >= the
 * positive's}.
 * Full ranking: every item scored, the user's items before the first
 * held-out position excluded, top K (5, 10, 20) against all the user's
 * held-out items of the split.
 * Cold-start buckets by train history length (<=3, 4-10, 11-30, >30).
 * The popularity ranking (train counts) is scored on the same candidates.
 *
 * Sharded by users across ranks with a fixed batch composition (batch k is
 * users [k B, (k+1) B) of the evaluation list, dealt round-robin to ranks),
 * and the per-batch sums are added in batch order on every rank: N ranks
 * return exactly the 1-rank numbers.
 */
#ifndef DTRAIN_EVAL_H
#define DTRAIN_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "dtrain/batch.h"
#include "dtrain/comm.h"
#include "dtrain/dataset.h"
#include "dtrain/model.h"

#define DT_EVAL_NK 3 /* K = 5, 10, 20 */
extern const int dt_eval_ks[DT_EVAL_NK];

typedef enum { DT_SPLIT_VALID = 1, DT_SPLIT_TEST = 2 } dt_split_kind;

/* Means over users of one protocol. */
typedef struct {
  int64_t users;
  double ndcg[DT_EVAL_NK], hr[DT_EVAL_NK], recall[DT_EVAL_NK], precision[DT_EVAL_NK], map[DT_EVAL_NK];
  double mrr;
  double coverage[DT_EVAL_NK]; /* full ranking only */
} dt_metrics;

typedef struct {
  const char *name;
  int64_t users;
  double ndcg10, hr10;
  double alpha[3];
} dt_bucket;

#define DT_EVAL_BUCKETS 4

typedef struct {
  dt_split_kind split;
  int has_sampled, has_full;
  dt_metrics sampled, full;
  int sampled_negatives;           /* eval.negatives */
  int64_t sampled_fewer_negatives; /* users with fewer unseen items, ranked against all of them */
  dt_metrics pop_sampled, pop_full;
  unsigned towers; /* the model's towers (dt_model_towers): alpha is reported for these only */
  double alpha_mean[3];
  dt_bucket buckets[DT_EVAL_BUCKETS];
} dt_eval_result;

typedef struct {
  const dt_config *cfg;
  dt_comm *comm;
  dt_model *model;
  const dt_dataset *ds;
  dt_batch_builder *bb;
  /* Called before each forward so the caller can fill sharded tables' views
   * for the batch just built (NULL when every table is replicated). */
  int (*prepare_batch)(void *ctx);
  void *prepare_ctx;
} dt_eval_ctx;

/* Evaluates one split. sampled/full select the protocols; max_users caps the
 * sampled protocol's users (0 = all; evenly spaced subset); the full
 * protocol uses eval.full_max_users. COLLECTIVE. */
int dt_evaluate(dt_eval_ctx *ctx, dt_split_kind split, int sampled, int full, int64_t max_users, dt_eval_result *out);

/* Prints the metric table (rank 0's job) and writes the result as JSON:
 * {"split", "sampled": {"ndcg@10", "hr@10", "mrr", ..., "negatives",
 *  "users_fewer_negatives"}, "full": {...},
 *  "popularity": {"sampled": {...}, "full": {...}}, "alpha_mean": [3],
 *  "buckets": [{"name", "users", "ndcg@10", "hr@10", "alpha": [3]}]}.
 * An alpha array is [static, dynamic, content] with null for a tower the
 * model does not have (dt_alpha_json; metrics.jsonl uses the same). */
void dt_eval_print(FILE *out, const dt_eval_result *r);
/* The JSON text (caller frees). */
char *dt_eval_to_json(const dt_eval_result *r);

/* Gate weights as reported everywhere: a JSON array [static, dynamic,
 * content] with null for a tower not in `towers` (DT_TOWER_* bits), and
 * text naming only the present ones ("static 0.720, dynamic 0.280"; "none";
 * with a NULL: the names alone, "static, dynamic"). */
struct cJSON *dt_alpha_json(const double a[3], unsigned towers);
void dt_alpha_text(char *buf, size_t size, const double a[3], unsigned towers);

/* Writes, for the first n_users evaluation users of `split`, one JSON line
 * each with what the model saw and produced in the sampled protocol: user,
 * pos, ts, history (item indices, oldest first), candidates, context,
 * scores and alpha (tools/torch_check.py recomputes the scores with an
 * equivalent PyTorch module). One process. */
int dt_eval_dump(dt_eval_ctx *ctx, dt_split_kind split, int64_t n_users, const char *path);

/* Scores every item of the catalogue for n users by the model's forward
 * pass, in blocks of `block` items: user users[e] at position pos[e] (the
 * temporal context of ts[e], or, with ts NULL, of the interaction at pos),
 * into scores [n, n_items] (host). Evaluation (v1/v2 full ranking) and
 * `dtrain recommend` both rank with it. COLLECTIVE when a table is sharded
 * (every rank runs every block, with n = 0 when it has no users). */
int dt_score_catalogue(dt_eval_ctx *ctx, const int32_t *users, const int32_t *pos, const int64_t *ts, int64_t n,
                       int64_t block, float *scores);

/* Pure metric helpers (tested on their own). ranks are 1-based. */
double dt_ndcg_at(int64_t rank, int k);
/* Full-ranking metrics of one user: top [k] item ids (-1 = empty), the
 * held-out items (sorted ascending). Adds into m's sums (not means). */
void dt_full_metrics_add(const int32_t *top, int k_max, const int32_t *held, int64_t n_held, dt_metrics *sums);

#endif
