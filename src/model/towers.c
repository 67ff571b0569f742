/* towers.c: the model's towers (MODEL.md section 1a), forward and backward,
 * over the backend op set. Shapes: n examples, nc = n*c candidate rows,
 * t GRU tokens, D = model.dim, H = model.gru_hidden. */
#include "dtrain/error.h"
#include "model_internal.h"

int dt_model_grad_slot(dt_model *m, int t, const int32_t *ids, int64_t rows, float **slot) {
  dt_table *tb = &m->tables[t];
  DT_TRY(m->be->copy(m->be, tb->grad_ids + tb->grad_n, ids, (size_t)rows * sizeof(int32_t)));
  *slot = tb->grad_rows + tb->grad_n * tb->dim;
  tb->grad_n += rows;
  return DT_OK;
}

/* ---- Dynamic: history -> sequence encoder (-> proj) -> hd [n, D] ------------------- */

int dt_dynamic_fwd(dt_model *m, const dt_batch *b) {
  DT_TRY(m->encoder->forward(m, b));
  if (!m->encoder->projected) return DT_OK; /* SASRec: the state is h_d */
  dt_model_work *w = m->work;
  return dt_linear_fwd(m->be, w->hd, w->hdin, dt_linear_of(m, m->pv.dynamic_proj), b->n, m->gru_hidden, m->dim);
}

int dt_dynamic_bwd(dt_model *m, const dt_batch *b) {
  dt_model_work *w = m->work;
  if (!m->encoder->projected) return m->encoder->backward(m, b);
  DT_TRY(dt_linear_bwd(m->be, w->d_hd, w->hdin, dt_linear_of(m, m->pv.dynamic_proj), w->d_hdin, 0, b->n, m->gru_hidden,
                       m->dim));
  return m->encoder->backward(m, b);
}

/* ---- Content: TF-IDF rows -> fc1 -> ReLU -> dropout -> fc2 -> ReLU -> fc3 ----------- */

int dt_content_fwd(dt_model *m, const int32_t *items, int64_t rows, const dt_batch *b, const int64_t *keys, float *c1,
                   float *c2, float *out) {
  dt_backend *be = m->be;
  const dt_param_views *pv = &m->pv;
  if (rows == 0) return DT_OK;
  dt_linear fc1 = dt_linear_of(m, pv->content_fc1);
  DT_TRY(be->csr_matmul(be, c1, m->tfidf_indptr, m->tfidf_indices, m->tfidf_values, items, rows, fc1.w, m->content_h1));
  DT_TRY(be->add_bias(be, c1, fc1.b, rows, m->content_h1));
  int drop = b && b->train && m->p_content > 0;
  DT_TRY(be->relu_dropout_fwd(
      be, c1, rows, m->content_h1, 1, drop ? m->p_content : 0.0f,
      drop ? dt_model_key(m, b, DT_SITE_CONTENT, keys ? keys : b->cand_key) : dt_model_no_dropout(m)));
  DT_TRY(dt_linear_fwd(be, c2, c1, dt_linear_of(m, pv->content_fc2), rows, m->content_h1, m->content_h2));
  DT_TRY(be->relu_dropout_fwd(be, c2, rows, m->content_h2, 1, 0.0f, dt_model_no_dropout(m)));
  return dt_linear_fwd(be, out, c2, dt_linear_of(m, pv->content_fc3), rows, m->content_h2, m->dim);
}

int dt_content_bwd_rows(dt_model *m, const dt_batch *b, const int32_t *items, int64_t rows, const int64_t *keys,
                        const float *c1, const float *c2, const float *d_hc, float *d_c1, float *d_c2) {
  dt_backend *be = m->be;
  const dt_param_views *pv = &m->pv;
  const int D = m->dim, H1 = m->content_h1, H2 = m->content_h2;
  if (rows == 0) return DT_OK;
  DT_TRY(dt_linear_bwd(be, d_hc, c2, dt_linear_of(m, pv->content_fc3), d_c2, 0, rows, H2, D));
  DT_TRY(be->relu_dropout_bwd(be, d_c2, c2, rows, H2, 1, 0.0f, dt_model_no_dropout(m)));
  DT_TRY(dt_linear_bwd(be, d_c2, c1, dt_linear_of(m, pv->content_fc2), d_c1, 0, rows, H1, H2));
  int drop = b->train && m->p_content > 0;
  DT_TRY(be->relu_dropout_bwd(be, d_c1, c1, rows, H1, 1, drop ? m->p_content : 0.0f,
                              dt_model_key(m, b, DT_SITE_CONTENT, keys)));
  dt_linear fc1 = dt_linear_of(m, pv->content_fc1);
  DT_TRY(be->bias_grad(be, fc1.db, d_c1, rows, H1));
  return be->csr_matmul_grad(be, fc1.dw, m->tfidf_indptr, m->tfidf_indices, m->tfidf_values, items, rows, d_c1, H1,
                             m->vocab);
}

int dt_content_bwd(dt_model *m, const dt_batch *b) {
  dt_model_work *w = m->work;
  return dt_content_bwd_rows(m, b, b->cand, b->nc, b->cand_key, w->c1, w->c2, w->d_hc, w->d_c1, w->d_c2);
}

/* ---- Gate: context -> fc1 -> ReLU -> fc2 -> softmax -> alpha [n, 3] ----------------- */

int dt_gate_fwd(dt_model *m, const dt_batch *b, const float **alpha) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  if (!m->use_gate) {
    *alpha = w->alpha_const;
    return DT_OK;
  }
  DT_TRY(dt_linear_fwd(be, w->g1, b->ctx, dt_linear_of(m, m->pv.gate_fc1), b->n, m->gate_in, m->gate_hidden));
  DT_TRY(be->relu_dropout_fwd(be, w->g1, b->n, m->gate_hidden, 1, 0.0f, dt_model_no_dropout(m)));
  DT_TRY(dt_linear_fwd(be, w->logits, w->g1, dt_linear_of(m, m->pv.gate_fc2), b->n, m->gate_hidden, 3));
  DT_TRY(be->softmax3_fwd(be, w->logits, w->alpha, b->n));
  *alpha = w->alpha;
  return DT_OK;
}

int dt_gate_bwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  DT_TRY(be->softmax3_bwd(be, w->alpha, w->d_alpha, w->d_logits, b->n));
  DT_TRY(dt_linear_bwd(be, w->d_logits, w->g1, dt_linear_of(m, m->pv.gate_fc2), w->d_g1, 0, b->n, m->gate_hidden, 3));
  DT_TRY(be->relu_dropout_bwd(be, w->d_g1, w->g1, b->n, m->gate_hidden, 1, 0.0f, dt_model_no_dropout(m)));
  return dt_linear_bwd(be, w->d_g1, b->ctx, dt_linear_of(m, m->pv.gate_fc1), NULL, 0, b->n, m->gate_in, m->gate_hidden);
}

/* ---- v1/v2 static tower: [e_u ; e_i] -> fc1 -> ReLU -> dropout -> fc2 -> hs [nc, D] --
 * fc1 of the concatenation is split into its user and item halves, so the
 * concatenation is never built: s1 = e_u W1[:, :D]^T + e_i W1[:, D:]^T + b1. */

int dt_static_fwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, SH = m->static_hidden;
  const int64_t nc = b->nc;
  dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1); /* W1 [SH, 2D] */
  DT_TRY(be->gather_rows(be, w->eu_rep, m->tables[DT_TABLE_USER].view, b->ids_user_rep, nc, D));
  DT_TRY(be->gather_rows(be, w->ei, m->tables[DT_TABLE_ITEM].view, b->ids_item, nc, D));
  DT_TRY(be->gemm(be, 0, 1, (int)nc, SH, D, 1.0f, w->eu_rep, D, fc1.w, 2 * D, 0.0f, w->s1, SH));
  DT_TRY(be->gemm(be, 0, 1, (int)nc, SH, D, 1.0f, w->ei, D, fc1.w + D, 2 * D, 1.0f, w->s1, SH));
  DT_TRY(be->add_bias(be, w->s1, fc1.b, nc, SH));
  int drop = b->train && m->p_static > 0;
  DT_TRY(be->relu_dropout_fwd(be, w->s1, nc, SH, 1, drop ? m->p_static : 0.0f,
                              dt_model_key(m, b, DT_SITE_STATIC, b->cand_key)));
  return dt_linear_fwd(be, w->hs, w->s1, dt_linear_of(m, m->pv.static_fc2), nc, SH, D);
}

int dt_static_bwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, SH = m->static_hidden;
  const int64_t nc = b->nc;
  DT_TRY(dt_linear_bwd(be, w->d_hs, w->s1, dt_linear_of(m, m->pv.static_fc2), w->d_s1, 0, nc, SH, D));
  int drop = b->train && m->p_static > 0;
  DT_TRY(be->relu_dropout_bwd(be, w->d_s1, w->s1, nc, SH, 1, drop ? m->p_static : 0.0f,
                              dt_model_key(m, b, DT_SITE_STATIC, b->cand_key)));
  dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1);
  DT_TRY(be->bias_grad(be, fc1.db, w->d_s1, nc, SH));
  DT_TRY(be->gemm(be, 1, 0, SH, D, (int)nc, 1.0f, w->d_s1, SH, w->eu_rep, D, 1.0f, fc1.dw, 2 * D));
  DT_TRY(be->gemm(be, 1, 0, SH, D, (int)nc, 1.0f, w->d_s1, SH, w->ei, D, 1.0f, fc1.dw + D, 2 * D));
  float *slot;
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_USER, b->ids_user_rep, nc, &slot));
  DT_TRY(be->gemm(be, 0, 0, (int)nc, D, SH, 1.0f, w->d_s1, SH, fc1.w, 2 * D, 0.0f, slot, D));
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_ITEM, b->ids_item, nc, &slot));
  return be->gemm(be, 0, 0, (int)nc, D, SH, 1.0f, w->d_s1, SH, fc1.w + D, 2 * D, 0.0f, slot, D);
}
