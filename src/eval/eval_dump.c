/* eval_dump.c: what the model saw and produced for a few users in the
 * sampled protocol, as JSON lines for tools/torch_check.py (eval.h). */
#include <stdio.h>
#include <stdlib.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "eval_internal.h"

int dt_eval_dump(dt_eval_ctx *ctx, dt_split_kind split, int64_t n_users, const char *path) {
  const dt_dataset *ds = ctx->ds;
  dt_model *m = ctx->model;
  dt_backend *be = m->be;
  int32_t *users, *pos;
  int64_t n = dt_eval_split_users(ds, split, &users, &pos);
  if (n > n_users) n = n_users;
  const int n_neg = (int)ctx->cfg->eval_negatives, c = 1 + n_neg;
  int rc = dt_model_build_item_cache(m);
  if (!rc) rc = dt_batch_build_eval(ctx->bb, users, pos, n, n_neg, (uint64_t)ctx->cfg->eval_seed);
  const float *d_scores = NULL, *d_alpha = NULL;
  if (!rc) rc = dt_eval_forward(ctx, &d_scores, &d_alpha);
  float *scores = dt_xmalloc((size_t)(n * c + 1) * sizeof(float)),
        *alpha = dt_xmalloc((size_t)(n * 3 + 1) * sizeof(float));
  float *ctxv = dt_xmalloc((size_t)(n * m->gate_in + 1) * sizeof(float));
  if (!rc) rc = be->download(be, scores, d_scores, (size_t)(n * c) * sizeof(float));
  if (!rc) rc = be->download(be, alpha, d_alpha, (size_t)(n * 3) * sizeof(float));
  if (!rc) rc = be->download(be, ctxv, dt_batch_get(ctx->bb)->ctx, (size_t)(n * m->gate_in) * sizeof(float));
  /* built in memory, then written atomically (fsutil.h): a failed write
   * leaves no partial file and names the OS error */
  char *text = NULL;
  size_t text_len = 0;
  FILE *f = rc ? NULL : open_memstream(&text, &text_len);
  if (!rc && !f) rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: out of memory", path);
  const int32_t *cand = dt_batch_host_candidates(ctx->bb);
  for (int64_t e = 0; e < n && !rc; e++) {
    int32_t u = users[e], lo, hi;
    dt_history_window(m->history, ds->history_len, pos[e], ds->user_n_train[u], &lo, &hi);
    const int32_t *list = ds->user_items + ds->user_ptr[u];
    fprintf(f, "{\"user\": %d, \"pos\": %d, \"ts\": %lld, \"history\": [", u, pos[e],
            (long long)ds->user_ts[ds->user_ptr[u] + pos[e]]);
    for (int32_t k = lo; k < hi; k++) fprintf(f, "%s%d", k > lo ? ", " : "", list[k]);
    /* SASRec numbers positions from the window's start: the checker verifies it */
    fprintf(f, "], \"window_start\": %d, \"n_train\": %d, \"candidates\": [", lo, ds->user_n_train[u]);
    for (int j = 0; j < c; j++) fprintf(f, "%s%d", j ? ", " : "", cand[e * c + j]);
    fprintf(f, "], \"context\": [");
    for (int k = 0; k < m->gate_in; k++) fprintf(f, "%s%.9g", k ? ", " : "", (double)ctxv[e * m->gate_in + k]);
    fprintf(f, "], \"scores\": [");
    for (int j = 0; j < c; j++) fprintf(f, "%s%.9g", j ? ", " : "", (double)scores[e * c + j]);
    fprintf(f, "], \"alpha\": [%.9g, %.9g, %.9g]}\n", (double)alpha[e * 3], (double)alpha[e * 3 + 1],
            (double)alpha[e * 3 + 2]);
  }
  if (f && fclose(f) != 0 && !rc) rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: out of memory", path);
  if (!rc && text) rc = dt_write_file_atomic(path, text, text_len);
  free(text);
  dt_model_drop_item_cache(m);
  free(scores);
  free(alpha);
  free(ctxv);
  free(users);
  free(pos);
  return rc;
}
