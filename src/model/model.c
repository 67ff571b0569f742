/* model.c: forward and backward of the hybrid model (MODEL.md section 1),
 * written only against the backend op set. Shapes are in the comments:
 * n examples, c candidates each, nc = n*c candidate rows, t GRU tokens,
 * D = model.dim, H = model.gru_hidden. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "model_internal.h"

/* ---- Create / free ---------------------------------------------------------------- */

int dt_model_create(const dt_config *cfg, dt_backend *be, int64_t n_users, int64_t n_items, int64_t vocab,
                    const int64_t *tfidf_indptr, const int32_t *tfidf_indices, const float *tfidf_values,
                    dt_model **out) {
  dt_model *m = dt_xcalloc(1, sizeof *m);
  m->cfg = cfg;
  m->be = be;
  int rc = dt_model_kind(cfg, &m->version, &m->variant, &m->history);
  if (rc) {
    free(m);
    return rc;
  }
  m->dim = (int)cfg->model_dim;
  m->gru_hidden = (int)cfg->model_gru_hidden;
  m->content_h1 = (int)cfg->model_content_hidden1;
  m->content_h2 = (int)cfg->model_content_hidden2;
  m->gate_hidden = (int)cfg->model_gate_hidden;
  m->head_hidden = (int)cfg->model_head_hidden;
  m->static_hidden = (int)cfg->model_static_hidden;
  m->p_static = (float)cfg->model_dropout_static;
  m->p_gru = (float)cfg->model_dropout_gru;
  m->p_content = (float)cfg->model_dropout_content;
  m->p_head = (float)cfg->model_dropout_head;
  m->n_users = n_users;
  m->n_items = n_items;
  m->vocab = vocab;
  int only_static = m->variant == DT_VARIANT_STATIC_ONLY, only_dynamic = m->variant == DT_VARIANT_DYNAMIC_ONLY;
  m->use_static = !only_dynamic;
  m->use_dynamic = !only_static && m->variant != DT_VARIANT_NO_DYNAMIC;
  m->use_content = !only_static && !only_dynamic && m->variant != DT_VARIANT_NO_CONTENT && vocab > 0;
  m->use_gate = !only_static && !only_dynamic && m->variant != DT_VARIANT_NO_ATTENTION;
  m->encoder_kind = !strcmp(cfg->model_encoder, "sasrec") ? DT_ENCODER_SASREC : DT_ENCODER_GRU;
  m->sasrec_blocks = (int)cfg->model_sasrec_blocks;
  m->sasrec_heads = (int)cfg->model_sasrec_heads;
  m->pos_rows = 2 * cfg->data_history_len;
  m->use_static_mlp = m->version != DT_V3;
  m->use_head = m->version != DT_V3;
  m->gate_in = m->version == DT_V3 ? 7 : 5;
  if (!only_static && !only_dynamic && m->variant != DT_VARIANT_NO_CONTENT && vocab <= 0)
    dt_log_warn("the data set has no TF-IDF vocabulary: the content tower is left out");
  if (m->encoder_kind == DT_ENCODER_SASREC &&
      (m->sasrec_blocks < 1 || m->sasrec_blocks > DT_SASREC_MAX_BLOCKS || m->dim % m->sasrec_heads != 0)) {
    free(m);
    return dt_fail(DT_EXIT_USAGE,
                   "config keys 'model.sasrec_blocks' = %d (1 to %d) and 'model.sasrec_heads' = %d "
                   "(a divisor of 'model.dim' = %d) do not describe a SASRec encoder",
                   (int)cfg->model_sasrec_blocks, DT_SASREC_MAX_BLOCKS, (int)cfg->model_sasrec_heads,
                   (int)cfg->model_dim);
  }
  m->encoder = m->encoder_kind == DT_ENCODER_SASREC ? &dt_encoder_sasrec : &dt_encoder_gru;
  dt_model_layout(m);

  size_t dense_bytes = (size_t)m->n_dense * sizeof(float);
  rc = dt_backend_alloc(be, dense_bytes, (void **)&m->w);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->g);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->m);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->v);
  for (int t = 0; t < DT_MAX_TABLES && !rc; t++) rc = dt_table_alloc(&m->tables[t], be);
  if (!rc && m->use_content) {
    int64_t nnz = tfidf_indptr[n_items];
    rc = dt_backend_alloc(be, (size_t)(n_items + 1) * sizeof(int64_t), (void **)&m->tfidf_indptr);
    if (!rc) rc = dt_backend_alloc(be, (size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t), (void **)&m->tfidf_indices);
    if (!rc) rc = dt_backend_alloc(be, (size_t)(nnz > 0 ? nnz : 1) * sizeof(float), (void **)&m->tfidf_values);
    if (!rc) rc = be->upload(be, m->tfidf_indptr, tfidf_indptr, (size_t)(n_items + 1) * sizeof(int64_t));
    if (!rc && nnz > 0) rc = be->upload(be, m->tfidf_indices, tfidf_indices, (size_t)nnz * sizeof(int32_t));
    if (!rc && nnz > 0) rc = be->upload(be, m->tfidf_values, tfidf_values, (size_t)nnz * sizeof(float));
  }
  if (rc) {
    dt_model_free(m);
    return dt_fail_context(rc, "creating the model");
  }
  *out = m;
  return DT_OK;
}

void dt_model_free(dt_model *m) {
  if (!m) return;
  dt_backend *be = m->be;
  dt_model_work_free(m);
  for (int t = 0; t < DT_MAX_TABLES; t++) dt_table_free(&m->tables[t]);
  if (m->dense_adopted) m->w = m->g = m->m = m->v = NULL;
  void *ps[] = {m->w, m->g, m->m, m->v, m->tfidf_indptr, m->tfidf_indices, m->tfidf_values, m->item_hc};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) be->free(be, ps[i]);
  free(m);
}

int dt_model_adopt_dense(dt_model *m, float *w, float *mo, float *v, float *g) {
  if (!dt_backend_host_memory(m->be))
    return dt_fail(DT_EXIT_RUNTIME, "node-shared dense parameters need the CPU backend, not %s (internal error)",
                   m->be->name);
  if (!m->dense_adopted) {
    float *own[] = {m->w, m->g, m->m, m->v};
    for (int i = 0; i < 4; i++)
      if (own[i]) m->be->free(m->be, own[i]);
  }
  m->w = w;
  m->m = mo;
  m->v = v;
  m->g = g;
  m->dense_adopted = 1;
  return DT_OK;
}

unsigned dt_model_towers(const dt_model *m) {
  /* every variant keeps the static tower (a variant without it must clear its bit here) */
  return DT_TOWER_STATIC | (m->use_dynamic ? DT_TOWER_DYNAMIC : 0u) | (m->use_content ? DT_TOWER_CONTENT : 0u);
}

int dt_model_zero_grad(dt_model *m) { return m->be->zero(m->be, m->g, (size_t)m->n_dense * sizeof(float)); }

/* v1/v2: the gate mixes the towers' representations, the head scores them. */
static int fused_head_fwd(dt_model *m, const dt_batch *b, const float *alpha) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int64_t nc = b->nc;
  if (m->use_static) DT_TRY(dt_static_fwd(m, b));
  DT_TRY(be->mix3_fwd(be, alpha, m->use_static ? w->hs : NULL, m->use_dynamic ? w->hd : NULL,
                      m->use_content ? w->hc : NULL, w->z, b->n, b->c, m->dim));
  DT_TRY(dt_linear_fwd(be, w->hh, w->z, dt_linear_of(m, m->pv.head_fc1), nc, m->dim, m->head_hidden));
  int drop = b->train && m->p_head > 0;
  DT_TRY(be->relu_dropout_fwd(be, w->hh, nc, m->head_hidden, 1, drop ? m->p_head : 0.0f,
                              dt_model_key(m, b, DT_SITE_HEAD, b->cand_key)));
  return dt_linear_fwd(be, w->scores, w->hh, dt_linear_of(m, m->pv.head_fc2), nc, m->head_hidden, 1);
}

/* v3: every tower scores the candidate; the gate mixes the scores. */
static int score_mix_fwd(dt_model *m, const dt_batch *b, const float *alpha) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim;
  const int64_t n = b->n, nc = b->nc;
  if (m->use_static) { /* dynamic_only has neither table (nor the content tower) */
    DT_TRY(be->gather_rows(be, w->eu, m->tables[DT_TABLE_USER].view, b->ids_user, n, D));
    DT_TRY(be->gather_rows(be, w->ei, m->tables[DT_TABLE_ITEM].view, b->ids_item, nc, D));
    DT_TRY(be->rowdot_fwd(be, w->eu, w->ei, w->ss, n, b->c, D));
  }
  if (m->use_dynamic) {
    DT_TRY(be->gather_rows(be, w->di, m->tables[DT_TABLE_DYN_ITEM].view, b->ids_dyn_cand, nc, D));
    DT_TRY(be->rowdot_fwd(be, w->hd, w->di, w->sd, n, b->c, D));
  }
  if (m->use_content) {
    DT_TRY(dt_linear_fwd(be, w->up, w->eu, dt_linear_of(m, m->pv.content_user_proj), n, D, D));
    DT_TRY(be->rowdot_fwd(be, w->up, w->hc, w->sc, n, b->c, D));
  }
  /* v3 has no fused representation, so z's first nc floats hold the item biases */
  DT_TRY(be->gather_rows(be, w->z, m->tables[DT_TABLE_ITEM_BIAS].view, b->ids_bias, nc, 1));
  return be->score_mix_fwd(be, alpha, m->use_static ? w->ss : NULL, m->use_dynamic ? w->sd : NULL,
                           m->use_content ? w->sc : NULL, w->z, w->scores, n, b->c);
}

int dt_model_forward(dt_model *m, const dt_batch *b, const float **scores, const float **alpha_out) {
  DT_TRY(dt_model_work_ensure(m, b->n > 0 ? b->n : 1, b->nc > 0 ? b->nc : 1, m->use_dynamic ? b->n_tokens : 0));
  dt_model_work *w = m->work;
  w->fwd_serial++; /* the item list's state of the last forward is stale now */
  *scores = w->scores;
  *alpha_out = m->use_gate ? w->alpha : w->alpha_const;
  if (b->n == 0) return DT_OK;

  const float *alpha = NULL;
  DT_TRY(dt_gate_fwd(m, b, &alpha));
  if (m->use_dynamic) DT_TRY(dt_dynamic_fwd(m, b));
  if (m->use_content) {
    if (!b->train && m->item_hc)
      DT_TRY(m->be->gather_rows(m->be, w->hc, m->item_hc, b->cand, b->nc, m->dim));
    else
      DT_TRY(dt_content_fwd(m, b->cand, b->nc, b, b->cand_key, w->c1, w->c2, w->hc));
  }
  return m->version != DT_V3 ? fused_head_fwd(m, b, alpha) : score_mix_fwd(m, b, alpha);
}

/* v1/v2: head -> fusion -> static tower (whose backward ends in the tables' rows) */
static int fused_head_bwd(dt_model *m, const dt_batch *b, const float *dscores) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim;
  const int64_t n = b->n, nc = b->nc;
  DT_TRY(dt_linear_bwd(be, dscores, w->hh, dt_linear_of(m, m->pv.head_fc2), w->d_hh, 0, nc, m->head_hidden, 1));
  int drop = b->train && m->p_head > 0;
  DT_TRY(be->relu_dropout_bwd(be, w->d_hh, w->hh, nc, m->head_hidden, 1, drop ? m->p_head : 0.0f,
                              dt_model_key(m, b, DT_SITE_HEAD, b->cand_key)));
  DT_TRY(dt_linear_bwd(be, w->d_hh, w->z, dt_linear_of(m, m->pv.head_fc1), w->d_z, 0, nc, D, m->head_hidden));
  if (m->use_static) DT_TRY(be->zero(be, w->d_hs, (size_t)(nc * D) * sizeof(float)));
  if (m->use_dynamic) DT_TRY(be->zero(be, w->d_hd, (size_t)(n * D) * sizeof(float)));
  if (m->use_content) DT_TRY(be->zero(be, w->d_hc, (size_t)(nc * D) * sizeof(float)));
  DT_TRY(be->mix3_bwd(be, m->use_gate ? w->alpha : w->alpha_const, m->use_static ? w->hs : NULL,
                      m->use_dynamic ? w->hd : NULL, m->use_content ? w->hc : NULL, w->d_z, w->d_alpha,
                      m->use_static ? w->d_hs : NULL, m->use_dynamic ? w->d_hd : NULL, m->use_content ? w->d_hc : NULL,
                      n, b->c, D));
  return m->use_static ? dt_static_bwd(m, b) : DT_OK;
}

/* v3: the mixture -> each tower's score (rowdot) -> tables' rows, d_hd, d_hc */
static int score_mix_bwd(dt_model *m, const dt_batch *b, const float *dscores) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim;
  const int64_t n = b->n, nc = b->nc;
  const float *alpha = m->use_gate ? w->alpha : w->alpha_const;
  const int st = m->use_static;
  DT_TRY(be->score_mix_bwd(be, alpha, st ? w->ss : NULL, m->use_dynamic ? w->sd : NULL, m->use_content ? w->sc : NULL,
                           dscores, w->d_alpha, st ? w->d_ss : NULL, m->use_dynamic ? w->d_sd : NULL,
                           m->use_content ? w->d_sc : NULL, n, b->c));
  float *slot;
  /* item bias: ds/db = 1 */
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_ITEM_BIAS, b->ids_bias, nc, &slot));
  DT_TRY(be->copy(be, slot, dscores, (size_t)nc * sizeof(float)));
  /* static: s_s = <e_u, e_i> */
  if (st) {
    DT_TRY(be->zero(be, w->d_eu, (size_t)(n * D) * sizeof(float)));
    DT_TRY(dt_model_grad_slot(m, DT_TABLE_ITEM, b->ids_item, nc, &slot));
    DT_TRY(be->zero(be, slot, (size_t)(nc * D) * sizeof(float)));
    DT_TRY(be->rowdot_bwd(be, w->eu, w->ei, w->d_ss, w->d_eu, slot, n, b->c, D));
  }
  if (m->use_dynamic) {
    DT_TRY(be->zero(be, w->d_hd, (size_t)(n * D) * sizeof(float)));
    DT_TRY(dt_model_grad_slot(m, DT_TABLE_DYN_ITEM, b->ids_dyn_cand, nc, &slot));
    DT_TRY(be->zero(be, slot, (size_t)(nc * D) * sizeof(float)));
    DT_TRY(be->rowdot_bwd(be, w->hd, w->di, w->d_sd, w->d_hd, slot, n, b->c, D));
  }
  if (m->use_content) {
    DT_TRY(be->zero(be, w->d_up, (size_t)(n * D) * sizeof(float)));
    DT_TRY(be->zero(be, w->d_hc, (size_t)(nc * D) * sizeof(float)));
    DT_TRY(be->rowdot_bwd(be, w->up, w->hc, w->d_sc, w->d_up, w->d_hc, n, b->c, D));
    DT_TRY(dt_linear_bwd(be, w->d_up, w->eu, dt_linear_of(m, m->pv.content_user_proj), w->d_eu, 1, n, D, D));
  }
  if (!st) return DT_OK;
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_USER, b->ids_user, n, &slot));
  return be->copy(be, slot, w->d_eu, (size_t)(n * D) * sizeof(float));
}

int dt_model_grad_begin(dt_model *m, const dt_batch *b, int64_t extra_rows) {
  /* room for every table's sparse rows of this batch */
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &m->tables[t];
    tb->grad_n = 0;
    if (!tb->present) continue;
    int64_t rows = b->nc + (t == DT_TABLE_DYN_ITEM ? b->n_tokens : 0) + extra_rows;
    DT_TRY(dt_table_grad_reserve(tb, rows > 0 ? rows : 1));
  }
  return DT_OK;
}

int dt_model_backward(dt_model *m, const dt_batch *b, const float *dscores, const float *dalpha) {
  dt_backend *be = m->be;
  /* the item list's backward (dt_model_list_backward) began the tables' rows already */
  const int listed = dt_list_backward_pending(m);
  if (!listed) DT_TRY(dt_model_grad_begin(m, b, 0));
  if (b->n == 0) return DT_OK;
  DT_TRY(m->version != DT_V3 ? fused_head_bwd(m, b, dscores) : score_mix_bwd(m, b, dscores));
  if (listed) DT_TRY(dt_list_finish(m, b));
  if (m->use_content) DT_TRY(dt_content_bwd(m, b));
  if (m->use_dynamic) DT_TRY(dt_dynamic_bwd(m, b));
  if (m->use_gate) {
    /* the loss's regulariser gradient joins the mixture's */
    if (dalpha) DT_TRY(be->axpy(be, m->work->d_alpha, dalpha, b->n * 3, 1.0f));
    DT_TRY(dt_gate_bwd(m, b));
  }
  return DT_OK;
}
