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

/* ---- Linear layers (PyTorch layout: W [out, in], y = x W^T + b) ------------------ */

/* y [rows, out] = x [rows, in] W^T + b (b may be NULL) */
static int linear_fwd(dt_backend *be, float *y, const float *x, const float *w, const float *b, int64_t rows, int in,
                      int out) {
  if (rows == 0) return DT_OK;
  DT_TRY(be->gemm(be, 0, 1, (int)rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out));
  if (b) DT_TRY(be->add_bias(be, y, b, rows, out));
  return DT_OK;
}

/* dW += dy^T x; db += colsum(dy); dx = dy W (+= when accumulate_dx). dx may be NULL. */
static int linear_bwd(dt_backend *be, const float *dy, const float *x, const float *w, float *dw, float *db, float *dx,
                      int accumulate_dx, int64_t rows, int in, int out) {
  if (rows == 0) return DT_OK;
  DT_TRY(be->gemm(be, 1, 0, out, in, (int)rows, 1.0f, dy, out, x, in, 1.0f, dw, in));
  if (db) DT_TRY(be->bias_grad(be, db, dy, rows, out));
  if (dx) DT_TRY(be->gemm(be, 0, 0, (int)rows, in, out, 1.0f, dy, out, w, in, accumulate_dx ? 1.0f : 0.0f, dx, in));
  return DT_OK;
}

static dt_dropout_key key(const dt_model *m, const dt_batch *b, uint32_t site, const int64_t *row_keys) {
  dt_dropout_key k = {m->seed, b->step, site, row_keys};
  return k;
}

/* The key of a ReLU without dropout (p = 0: never consulted). */
static dt_dropout_key no_dropout(const dt_model *m) {
  dt_dropout_key k = {m->seed, 0, 0, NULL};
  return k;
}

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
  int only_static = m->variant == DT_VARIANT_STATIC_ONLY;
  m->use_dynamic = !only_static && m->variant != DT_VARIANT_NO_DYNAMIC;
  m->use_content = !only_static && m->variant != DT_VARIANT_NO_CONTENT && vocab > 0;
  m->use_gate = !only_static && m->variant != DT_VARIANT_NO_ATTENTION;
  m->use_static_mlp = m->version != DT_V3;
  m->use_head = m->version != DT_V3;
  m->gate_in = m->version == DT_V3 ? 7 : 5;
  if (!only_static && m->variant != DT_VARIANT_NO_CONTENT && vocab <= 0)
    dt_log_warn("the data set has no TF-IDF vocabulary: the content tower is left out");
  dt_model_layout(m);

  size_t dense_bytes = (size_t)m->n_dense * sizeof(float);
  rc = dt_backend_alloc(be, dense_bytes, (void **)&m->w);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->g);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->m);
  if (!rc) rc = dt_backend_alloc(be, dense_bytes, (void **)&m->v);
  for (int t = 0; t < DT_MAX_TABLES && !rc; t++) {
    dt_table *tb = &m->tables[t];
    if (!tb->present) continue;
    size_t bytes = (size_t)(tb->rows * tb->dim) * sizeof(float);
    rc = dt_backend_alloc(be, bytes, (void **)&tb->data);
    if (!rc) rc = dt_backend_alloc(be, bytes, (void **)&tb->m);
    if (!rc) rc = dt_backend_alloc(be, bytes, (void **)&tb->v);
    if (!rc) rc = dt_backend_alloc(be, (size_t)tb->rows * sizeof(float), (void **)&tb->acc);
    if (!rc) rc = dt_backend_alloc(be, (size_t)tb->rows * sizeof(int64_t), (void **)&tb->row_step);
    tb->view = tb->data;
  }
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

static void free_table(dt_backend *be, dt_table *tb) {
  if (tb->shared_rows) tb->data = NULL;
  void *ps[] = {tb->data, tb->m, tb->v, tb->acc, tb->row_step, tb->grad_ids, tb->grad_rows};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) be->free(be, ps[i]);
  tb->data = tb->m = tb->v = tb->acc = tb->grad_rows = NULL;
  tb->row_step = NULL;
  tb->grad_ids = NULL;
  tb->grad_cap = tb->grad_n = 0;
}

void dt_model_free(dt_model *m) {
  if (!m) return;
  dt_backend *be = m->be;
  dt_model_work_free(m);
  for (int t = 0; t < DT_MAX_TABLES; t++) free_table(be, &m->tables[t]);
  if (m->dense_adopted) m->w = m->g = m->m = m->v = NULL;
  void *ps[] = {m->w, m->g, m->m, m->v, m->tfidf_indptr, m->tfidf_indices, m->tfidf_values, m->item_hc};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) be->free(be, ps[i]);
  free(m);
}

int dt_model_adopt_shared_rows(dt_model *m, int t, float *mine, const float *whole) {
  dt_table *tb = &m->tables[t];
  if (!dt_backend_host_memory(m->be) || !tb->sharded)
    return dt_fail(DT_EXIT_RUNTIME, "node-shared rows need a sharded table on the CPU backend (internal error)");
  memcpy(mine, tb->data, (size_t)((tb->row_hi - tb->row_lo) * tb->dim) * sizeof(float));
  if (!tb->shared_rows) m->be->free(m->be, tb->data);
  tb->data = mine;
  tb->view = whole;
  tb->shared_rows = 1;
  return DT_OK;
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

int dt_model_shard_table(dt_model *m, int t, int64_t lo, int64_t hi) {
  dt_table *tb = &m->tables[t];
  if (!tb->present) return DT_OK;
  if (lo < 0 || hi > tb->rows || lo > hi) dt_panic("bad shard [%lld, %lld) of %s", (long long)lo, (long long)hi, tb->name);
  dt_backend *be = m->be;
  be->free(be, tb->data);
  be->free(be, tb->m);
  be->free(be, tb->v);
  be->free(be, tb->acc);
  be->free(be, tb->row_step);
  tb->data = tb->m = tb->v = tb->acc = NULL;
  tb->row_step = NULL;
  tb->sharded = 1;
  tb->row_lo = lo;
  tb->row_hi = hi;
  int64_t local = hi - lo > 0 ? hi - lo : 1;
  size_t bytes = (size_t)(local * tb->dim) * sizeof(float);
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->data));
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->m));
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->v));
  DT_TRY(dt_backend_alloc(be, (size_t)local * sizeof(float), (void **)&tb->acc));
  DT_TRY(dt_backend_alloc(be, (size_t)local * sizeof(int64_t), (void **)&tb->row_step));
  tb->view = NULL; /* the trainer points it at the gathered rows of each batch */
  return DT_OK;
}

int dt_model_zero_grad(dt_model *m) { return m->be->zero(m->be, m->g, (size_t)m->n_dense * sizeof(float)); }

/* ---- Towers: forward ------------------------------------------------------------------ */

/* One GRU layer over packed sequences: x [t, in] -> h [t, H] (and caches). */
static int gru_layer_fwd(dt_model *m, const dt_batch *b, int layer, const float *x, int in, float *xg, float *cache,
                         float *h) {
  dt_backend *be = m->be;
  const int H = m->gru_hidden;
  char name[DT_NAME_LEN];
  snprintf(name, sizeof name, "dynamic.gru.weight_ih_l%d", layer);
  const float *w_ih = dt_model_w(m, name);
  snprintf(name, sizeof name, "dynamic.gru.weight_hh_l%d", layer);
  const float *w_hh = dt_model_w(m, name);
  snprintf(name, sizeof name, "dynamic.gru.bias_ih_l%d", layer);
  const float *b_ih = dt_model_w(m, name);
  snprintf(name, sizeof name, "dynamic.gru.bias_hh_l%d", layer);
  const float *b_hh = dt_model_w(m, name);
  float *hg = m->work->hg_step;

  /* The input products of every step at once: xg [t, 3H] = x W_ih^T + b_ih */
  DT_TRY(linear_fwd(be, xg, x, w_ih, b_ih, b->n_tokens, in, 3 * H));
  int64_t off = 0, prev = -1;
  for (int s = 0; s < b->max_len; s++) {
    int64_t a = b->batch_sizes_host[s];
    if (s == 0) { /* zero state: hg = b_hh */
      DT_TRY(be->zero(be, hg, (size_t)(a * 3 * H) * sizeof(float)));
      DT_TRY(be->add_bias(be, hg, b_hh, a, 3 * H));
    } else {
      DT_TRY(linear_fwd(be, hg, h + prev * H, w_hh, b_hh, a, H, 3 * H));
    }
    DT_TRY(be->gru_step_fwd(be, xg + off * 3 * H, hg, s ? h + prev * H : NULL, h + off * H, cache + off * 4 * H, a, H));
    prev = off;
    off += a;
  }
  return DT_OK;
}

/* The dynamic tower: history tokens -> 2-layer GRU -> read-outs -> proj -> hd [n, D]. */
static int dynamic_fwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, H = m->gru_hidden;
  const int64_t t = b->n_tokens;
  if (t > 0) {
    DT_TRY(be->gather_rows(be, w->x0, m->tables[DT_TABLE_DYN_ITEM].view, b->ids_dyn_tok, t, D));
    DT_TRY(gru_layer_fwd(m, b, 0, w->x0, D, w->xg0, w->cache0, w->h0));
    /* dropout between the layers (PyTorch applies it to every layer's output but the last) */
    DT_TRY(be->copy(be, w->x1, w->h0, (size_t)(t * H) * sizeof(float)));
    if (b->train && m->p_gru > 0)
      DT_TRY(be->relu_dropout_fwd(be, w->x1, t, H, 0, m->p_gru, key(m, b, DT_SITE_GRU, b->tok_key)));
    DT_TRY(gru_layer_fwd(m, b, 1, w->x1, H, w->xg1, w->cache1, w->h1));
  }
  /* row t of h1 is the zero state read by examples with an empty history */
  DT_TRY(be->zero(be, w->h1 + t * H, (size_t)H * sizeof(float)));
  DT_TRY(be->gather_rows(be, w->hdin, w->h1, b->readout, b->n, H));
  w->readout_rows = t;
  return linear_fwd(be, w->hd, w->hdin, dt_model_w(m, "dynamic.proj.weight"), dt_model_w(m, "dynamic.proj.bias"),
                    b->n, H, D);
}

/* The content tower for `rows` items: TF-IDF rows -> fc1 -> ReLU -> dropout ->
 * fc2 -> ReLU -> fc3 -> out [rows, D]. keys NULL = no dropout. */
static int content_fwd(dt_model *m, const int32_t *items, int64_t rows, const dt_batch *b, float *c1, float *c2,
                       float *out) {
  dt_backend *be = m->be;
  if (rows == 0) return DT_OK;
  DT_TRY(be->csr_matmul(be, c1, m->tfidf_indptr, m->tfidf_indices, m->tfidf_values, items, rows,
                        dt_model_w(m, "content.fc1.weight"), m->content_h1));
  DT_TRY(be->add_bias(be, c1, dt_model_w(m, "content.fc1.bias"), rows, m->content_h1));
  int drop = b && b->train && m->p_content > 0;
  DT_TRY(be->relu_dropout_fwd(be, c1, rows, m->content_h1, 1, drop ? m->p_content : 0.0f,
                              drop ? key(m, b, DT_SITE_CONTENT, b->cand_key) : no_dropout(m)));
  DT_TRY(linear_fwd(be, c2, c1, dt_model_w(m, "content.fc2.weight"), dt_model_w(m, "content.fc2.bias"), rows,
                    m->content_h1, m->content_h2));
  DT_TRY(be->relu_dropout_fwd(be, c2, rows, m->content_h2, 1, 0.0f, no_dropout(m)));
  return linear_fwd(be, out, c2, dt_model_w(m, "content.fc3.weight"), dt_model_w(m, "content.fc3.bias"), rows,
                    m->content_h2, m->dim);
}

static int gate_fwd(dt_model *m, const dt_batch *b, const float **alpha) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  if (!m->use_gate) {
    *alpha = w->alpha_const;
    return DT_OK;
  }
  DT_TRY(linear_fwd(be, w->g1, b->ctx, dt_model_w(m, "gate.fc1.weight"), dt_model_w(m, "gate.fc1.bias"), b->n,
                    m->gate_in, m->gate_hidden));
  DT_TRY(be->relu_dropout_fwd(be, w->g1, b->n, m->gate_hidden, 1, 0.0f, no_dropout(m)));
  DT_TRY(linear_fwd(be, w->logits, w->g1, dt_model_w(m, "gate.fc2.weight"), dt_model_w(m, "gate.fc2.bias"), b->n,
                    m->gate_hidden, 3));
  DT_TRY(be->softmax3_fwd(be, w->logits, w->alpha, b->n));
  *alpha = w->alpha;
  return DT_OK;
}

/* v1/v2 static tower: [e_u ; e_i] -> fc1 -> ReLU -> dropout -> fc2 -> hs [nc, D].
 * fc1 of the concatenation is split into its user and item halves, so the
 * concatenation is never built: s1 = e_u W1[:, :D]^T + e_i W1[:, D:]^T + b1. */
static int static_fwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, SH = m->static_hidden;
  const int64_t nc = b->nc;
  const float *w1 = dt_model_w(m, "static.fc1.weight"); /* [SH, 2D] */
  DT_TRY(be->gather_rows(be, w->eu_rep, m->tables[DT_TABLE_USER].view, b->ids_user_rep, nc, D));
  DT_TRY(be->gather_rows(be, w->ei, m->tables[DT_TABLE_ITEM].view, b->ids_item, nc, D));
  DT_TRY(be->gemm(be, 0, 1, (int)nc, SH, D, 1.0f, w->eu_rep, D, w1, 2 * D, 0.0f, w->s1, SH));
  DT_TRY(be->gemm(be, 0, 1, (int)nc, SH, D, 1.0f, w->ei, D, w1 + D, 2 * D, 1.0f, w->s1, SH));
  DT_TRY(be->add_bias(be, w->s1, dt_model_w(m, "static.fc1.bias"), nc, SH));
  int drop = b->train && m->p_static > 0;
  DT_TRY(be->relu_dropout_fwd(be, w->s1, nc, SH, 1, drop ? m->p_static : 0.0f, key(m, b, DT_SITE_STATIC, b->cand_key)));
  return linear_fwd(be, w->hs, w->s1, dt_model_w(m, "static.fc2.weight"), dt_model_w(m, "static.fc2.bias"), nc, SH, D);
}

int dt_model_forward(dt_model *m, const dt_batch *b, const float **scores, const float **alpha_out) {
  dt_backend *be = m->be;
  DT_TRY(dt_model_work_ensure(m, b->n > 0 ? b->n : 1, b->nc > 0 ? b->nc : 1, m->use_dynamic ? b->n_tokens : 0));
  dt_model_work *w = m->work;
  const int D = m->dim;
  const int64_t n = b->n, nc = b->nc;
  *scores = w->scores;
  *alpha_out = m->use_gate ? w->alpha : w->alpha_const;
  if (n == 0) return DT_OK;

  const float *alpha = NULL;
  DT_TRY(gate_fwd(m, b, &alpha));
  if (m->use_dynamic) DT_TRY(dynamic_fwd(m, b));
  if (m->use_content) {
    if (!b->train && m->item_hc)
      DT_TRY(be->gather_rows(be, w->hc, m->item_hc, b->cand, nc, D));
    else
      DT_TRY(content_fwd(m, b->cand, nc, b, w->c1, w->c2, w->hc));
  }

  if (m->version != DT_V3) {
    DT_TRY(static_fwd(m, b));
    DT_TRY(be->mix3_fwd(be, alpha, w->hs, m->use_dynamic ? w->hd : NULL, m->use_content ? w->hc : NULL, w->z, n,
                        b->c, D));
    DT_TRY(linear_fwd(be, w->hh, w->z, dt_model_w(m, "head.fc1.weight"), dt_model_w(m, "head.fc1.bias"), nc, D,
                      m->head_hidden));
    int drop = b->train && m->p_head > 0;
    DT_TRY(be->relu_dropout_fwd(be, w->hh, nc, m->head_hidden, 1, drop ? m->p_head : 0.0f,
                                key(m, b, DT_SITE_HEAD, b->cand_key)));
    DT_TRY(linear_fwd(be, w->scores, w->hh, dt_model_w(m, "head.fc2.weight"), dt_model_w(m, "head.fc2.bias"), nc,
                      m->head_hidden, 1));
    return DT_OK;
  }

  /* v3: every tower scores the candidate; the gate mixes the scores. */
  DT_TRY(be->gather_rows(be, w->eu, m->tables[DT_TABLE_USER].view, b->ids_user, n, D));
  DT_TRY(be->gather_rows(be, w->ei, m->tables[DT_TABLE_ITEM].view, b->ids_item, nc, D));
  DT_TRY(be->rowdot_fwd(be, w->eu, w->ei, w->ss, n, b->c, D));
  if (m->use_dynamic) {
    DT_TRY(be->gather_rows(be, w->di, m->tables[DT_TABLE_DYN_ITEM].view, b->ids_dyn_cand, nc, D));
    DT_TRY(be->rowdot_fwd(be, w->hd, w->di, w->sd, n, b->c, D));
  }
  if (m->use_content) {
    DT_TRY(linear_fwd(be, w->up, w->eu, dt_model_w(m, "content.user_proj.weight"), NULL, n, D, D));
    DT_TRY(be->rowdot_fwd(be, w->up, w->hc, w->sc, n, b->c, D));
  }
  /* v3 has no fused representation, so z's first nc floats hold the item biases */
  DT_TRY(be->gather_rows(be, w->z, m->tables[DT_TABLE_ITEM_BIAS].view, b->ids_bias, nc, 1));
  return be->score_mix_fwd(be, alpha, w->ss, m->use_dynamic ? w->sd : NULL, m->use_content ? w->sc : NULL, w->z,
                           w->scores, n, b->c);
}

/* ---- Towers: backward ---------------------------------------------------------------- */

static int gru_layer_bwd(dt_model *m, const dt_batch *b, int layer, const float *x, int in, const float *cache,
                         const float *h, float *dh, float *dx) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int H = m->gru_hidden;
  char name[DT_NAME_LEN];
  snprintf(name, sizeof name, "dynamic.gru.weight_ih_l%d", layer);
  const float *w_ih = dt_model_w(m, name);
  float *dw_ih = dt_model_g(m, name);
  snprintf(name, sizeof name, "dynamic.gru.weight_hh_l%d", layer);
  const float *w_hh = dt_model_w(m, name);
  float *dw_hh = dt_model_g(m, name);
  snprintf(name, sizeof name, "dynamic.gru.bias_ih_l%d", layer);
  float *db_ih = dt_model_g(m, name);
  snprintf(name, sizeof name, "dynamic.gru.bias_hh_l%d", layer);
  float *db_hh = dt_model_g(m, name);
  float *dhg = w->d_hg_step;

  /* token offsets of the steps */
  int64_t *off = dt_xmalloc((size_t)(b->max_len + 1) * sizeof(int64_t));
  off[0] = 0;
  for (int s = 0; s < b->max_len; s++) off[s + 1] = off[s] + b->batch_sizes_host[s];
  int rc = DT_OK;
  for (int s = b->max_len - 1; s >= 0 && !rc; s--) {
    int64_t a = b->batch_sizes_host[s];
    const float *h_prev = s ? h + off[s - 1] * H : NULL;
    float *dh_prev = s ? dh + off[s - 1] * H : NULL;
    rc = be->gru_step_bwd(be, dh + off[s] * H, h_prev, cache + off[s] * 4 * H, w->d_xg + off[s] * 3 * H, dhg, dh_prev,
                          a, H);
    if (!rc) rc = be->bias_grad(be, db_hh, dhg, a, 3 * H);
    if (!rc && s > 0) {
      /* dh_prev += dhg W_hh;  dW_hh += dhg^T h_prev */
      rc = be->gemm(be, 0, 0, (int)a, H, 3 * H, 1.0f, dhg, 3 * H, w_hh, H, 1.0f, dh_prev, H);
      if (!rc) rc = be->gemm(be, 1, 0, 3 * H, H, (int)a, 1.0f, dhg, 3 * H, h_prev, H, 1.0f, dw_hh, H);
    }
  }
  free(off);
  DT_TRY(rc);
  return linear_bwd(be, w->d_xg, x, w_ih, dw_ih, db_ih, dx, 0, b->n_tokens, in, 3 * H);
}

static int dynamic_bwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, H = m->gru_hidden;
  const int64_t t = b->n_tokens;
  DT_TRY(linear_bwd(be, w->d_hd, w->hdin, dt_model_w(m, "dynamic.proj.weight"), dt_model_g(m, "dynamic.proj.weight"),
                    dt_model_g(m, "dynamic.proj.bias"), w->d_hdin, 0, b->n, H, D));
  dt_table *tb = &m->tables[DT_TABLE_DYN_ITEM];
  if (t == 0) return DT_OK;
  DT_TRY(be->zero(be, w->d_h1, (size_t)(t * H) * sizeof(float)));
  /* read-outs are distinct tokens; the zero state (id t) is skipped */
  DT_TRY(be->scatter_add_rows(be, w->d_h1, t, b->readout, w->d_hdin, b->n, H));
  DT_TRY(gru_layer_bwd(m, b, 1, w->x1, H, w->cache1, w->h1, w->d_h1, w->d_x1));
  if (b->train && m->p_gru > 0)
    DT_TRY(be->relu_dropout_bwd(be, w->d_x1, w->x1, t, H, 0, m->p_gru, key(m, b, DT_SITE_GRU, b->tok_key)));
  /* layer 1's input gradient is layer 0's output gradient */
  DT_TRY(gru_layer_bwd(m, b, 0, w->x0, D, w->cache0, w->h0, w->d_x1, tb->grad_rows + tb->grad_n * D));
  DT_TRY(be->copy(be, tb->grad_ids + tb->grad_n, b->ids_dyn_tok, (size_t)t * sizeof(int32_t)));
  tb->grad_n += t;
  return DT_OK;
}

static int content_bwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int64_t nc = b->nc;
  const int D = m->dim, H1 = m->content_h1, H2 = m->content_h2;
  DT_TRY(linear_bwd(be, w->d_hc, w->c2, dt_model_w(m, "content.fc3.weight"), dt_model_g(m, "content.fc3.weight"),
                    dt_model_g(m, "content.fc3.bias"), w->d_c2, 0, nc, H2, D));
  DT_TRY(be->relu_dropout_bwd(be, w->d_c2, w->c2, nc, H2, 1, 0.0f, no_dropout(m)));
  DT_TRY(linear_bwd(be, w->d_c2, w->c1, dt_model_w(m, "content.fc2.weight"), dt_model_g(m, "content.fc2.weight"),
                    dt_model_g(m, "content.fc2.bias"), w->d_c1, 0, nc, H1, H2));
  int drop = b->train && m->p_content > 0;
  DT_TRY(be->relu_dropout_bwd(be, w->d_c1, w->c1, nc, H1, 1, drop ? m->p_content : 0.0f,
                              key(m, b, DT_SITE_CONTENT, b->cand_key)));
  DT_TRY(be->bias_grad(be, dt_model_g(m, "content.fc1.bias"), w->d_c1, nc, H1));
  return be->csr_matmul_grad(be, dt_model_g(m, "content.fc1.weight"), m->tfidf_indptr, m->tfidf_indices,
                             m->tfidf_values, b->cand, nc, w->d_c1, H1, m->vocab);
}

static int gate_bwd(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  DT_TRY(be->softmax3_bwd(be, w->alpha, w->d_alpha, w->d_logits, b->n));
  DT_TRY(linear_bwd(be, w->d_logits, w->g1, dt_model_w(m, "gate.fc2.weight"), dt_model_g(m, "gate.fc2.weight"),
                    dt_model_g(m, "gate.fc2.bias"), w->d_g1, 0, b->n, m->gate_hidden, 3));
  DT_TRY(be->relu_dropout_bwd(be, w->d_g1, w->g1, b->n, m->gate_hidden, 1, 0.0f, no_dropout(m)));
  return linear_bwd(be, w->d_g1, b->ctx, dt_model_w(m, "gate.fc1.weight"), dt_model_g(m, "gate.fc1.weight"),
                    dt_model_g(m, "gate.fc1.bias"), NULL, 0, b->n, m->gate_in, m->gate_hidden);
}

/* Appends `rows` gradient rows for table t (ids from `ids`): returns where
 * the caller writes them. */
static int table_grad_slot(dt_model *m, int t, const int32_t *ids, int64_t rows, float **slot) {
  dt_table *tb = &m->tables[t];
  DT_TRY(m->be->copy(m->be, tb->grad_ids + tb->grad_n, ids, (size_t)rows * sizeof(int32_t)));
  *slot = tb->grad_rows + tb->grad_n * tb->dim;
  tb->grad_n += rows;
  return DT_OK;
}

int dt_model_backward(dt_model *m, const dt_batch *b, const float *dscores, const float *dalpha) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim;
  const int64_t n = b->n, nc = b->nc;
  /* room for every table's sparse rows of this batch */
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    dt_table *tb = &m->tables[t];
    tb->grad_n = 0;
    if (!tb->present) continue;
    int64_t rows = nc + (t == DT_TABLE_DYN_ITEM ? b->n_tokens : 0);
    DT_TRY(dt_table_grad_reserve(m, tb, rows > 0 ? rows : 1));
  }
  if (n == 0) return DT_OK;

  if (m->version != DT_V3) {
    const int SH = m->static_hidden;
    /* head */
    DT_TRY(linear_bwd(be, dscores, w->hh, dt_model_w(m, "head.fc2.weight"), dt_model_g(m, "head.fc2.weight"),
                      dt_model_g(m, "head.fc2.bias"), w->d_hh, 0, nc, m->head_hidden, 1));
    int drop = b->train && m->p_head > 0;
    DT_TRY(be->relu_dropout_bwd(be, w->d_hh, w->hh, nc, m->head_hidden, 1, drop ? m->p_head : 0.0f,
                                key(m, b, DT_SITE_HEAD, b->cand_key)));
    DT_TRY(linear_bwd(be, w->d_hh, w->z, dt_model_w(m, "head.fc1.weight"), dt_model_g(m, "head.fc1.weight"),
                      dt_model_g(m, "head.fc1.bias"), w->d_z, 0, nc, D, m->head_hidden));
    /* fusion */
    DT_TRY(be->zero(be, w->d_hs, (size_t)(nc * D) * sizeof(float)));
    if (m->use_dynamic) DT_TRY(be->zero(be, w->d_hd, (size_t)(n * D) * sizeof(float)));
    if (m->use_content) DT_TRY(be->zero(be, w->d_hc, (size_t)(nc * D) * sizeof(float)));
    DT_TRY(be->mix3_bwd(be, m->use_gate ? w->alpha : w->alpha_const, w->hs, m->use_dynamic ? w->hd : NULL,
                        m->use_content ? w->hc : NULL, w->d_z, w->d_alpha, w->d_hs, m->use_dynamic ? w->d_hd : NULL,
                        m->use_content ? w->d_hc : NULL, n, b->c, D));
    /* static tower */
    DT_TRY(linear_bwd(be, w->d_hs, w->s1, dt_model_w(m, "static.fc2.weight"), dt_model_g(m, "static.fc2.weight"),
                      dt_model_g(m, "static.fc2.bias"), w->d_s1, 0, nc, SH, D));
    drop = b->train && m->p_static > 0;
    DT_TRY(be->relu_dropout_bwd(be, w->d_s1, w->s1, nc, SH, 1, drop ? m->p_static : 0.0f,
                                key(m, b, DT_SITE_STATIC, b->cand_key)));
    const float *w1 = dt_model_w(m, "static.fc1.weight");
    float *dw1 = dt_model_g(m, "static.fc1.weight");
    DT_TRY(be->bias_grad(be, dt_model_g(m, "static.fc1.bias"), w->d_s1, nc, SH));
    DT_TRY(be->gemm(be, 1, 0, SH, D, (int)nc, 1.0f, w->d_s1, SH, w->eu_rep, D, 1.0f, dw1, 2 * D));
    DT_TRY(be->gemm(be, 1, 0, SH, D, (int)nc, 1.0f, w->d_s1, SH, w->ei, D, 1.0f, dw1 + D, 2 * D));
    float *slot;
    DT_TRY(table_grad_slot(m, DT_TABLE_USER, b->ids_user_rep, nc, &slot));
    DT_TRY(be->gemm(be, 0, 0, (int)nc, D, SH, 1.0f, w->d_s1, SH, w1, 2 * D, 0.0f, slot, D));
    DT_TRY(table_grad_slot(m, DT_TABLE_ITEM, b->ids_item, nc, &slot));
    DT_TRY(be->gemm(be, 0, 0, (int)nc, D, SH, 1.0f, w->d_s1, SH, w1 + D, 2 * D, 0.0f, slot, D));
  } else {
    const float *alpha = m->use_gate ? w->alpha : w->alpha_const;
    DT_TRY(be->score_mix_bwd(be, alpha, w->ss, m->use_dynamic ? w->sd : NULL, m->use_content ? w->sc : NULL, dscores,
                             w->d_alpha, w->d_ss, m->use_dynamic ? w->d_sd : NULL, m->use_content ? w->d_sc : NULL, n,
                             b->c));
    float *slot;
    /* item bias: ds/db = 1 */
    DT_TRY(table_grad_slot(m, DT_TABLE_ITEM_BIAS, b->ids_bias, nc, &slot));
    DT_TRY(be->copy(be, slot, dscores, (size_t)nc * sizeof(float)));
    /* static: s_s = <e_u, e_i> */
    DT_TRY(be->zero(be, w->d_eu, (size_t)(n * D) * sizeof(float)));
    DT_TRY(table_grad_slot(m, DT_TABLE_ITEM, b->ids_item, nc, &slot));
    DT_TRY(be->zero(be, slot, (size_t)(nc * D) * sizeof(float)));
    DT_TRY(be->rowdot_bwd(be, w->eu, w->ei, w->d_ss, w->d_eu, slot, n, b->c, D));
    if (m->use_dynamic) {
      DT_TRY(be->zero(be, w->d_hd, (size_t)(n * D) * sizeof(float)));
      DT_TRY(table_grad_slot(m, DT_TABLE_DYN_ITEM, b->ids_dyn_cand, nc, &slot));
      DT_TRY(be->zero(be, slot, (size_t)(nc * D) * sizeof(float)));
      DT_TRY(be->rowdot_bwd(be, w->hd, w->di, w->d_sd, w->d_hd, slot, n, b->c, D));
    }
    if (m->use_content) {
      DT_TRY(be->zero(be, w->d_up, (size_t)(n * D) * sizeof(float)));
      DT_TRY(be->zero(be, w->d_hc, (size_t)(nc * D) * sizeof(float)));
      DT_TRY(be->rowdot_bwd(be, w->up, w->hc, w->d_sc, w->d_up, w->d_hc, n, b->c, D));
      DT_TRY(linear_bwd(be, w->d_up, w->eu, dt_model_w(m, "content.user_proj.weight"),
                        dt_model_g(m, "content.user_proj.weight"), NULL, w->d_eu, 1, n, D, D));
    }
    DT_TRY(table_grad_slot(m, DT_TABLE_USER, b->ids_user, n, &slot));
    DT_TRY(be->copy(be, slot, w->d_eu, (size_t)(n * D) * sizeof(float)));
  }

  if (m->use_content) DT_TRY(content_bwd(m, b));
  if (m->use_dynamic) DT_TRY(dynamic_bwd(m, b));
  if (m->use_gate) {
    /* the loss's regulariser gradient joins the mixture's */
    if (dalpha) DT_TRY(be->axpy(be, w->d_alpha, dalpha, n * 3, 1.0f));
    DT_TRY(gate_bwd(m, b));
  }
  return DT_OK;
}

int dt_model_fetch_rows(void *ref, const int32_t *local_ids, int64_t n, int dim, float *rows_host) {
  dt_table_ref *r = ref;
  dt_backend *be = r->model->be;
  const dt_table *tb = &r->model->tables[r->table];
  if (n == 0) return DT_OK;
  if (dt_backend_host_memory(be)) {
    for (int64_t k = 0; k < n; k++)
      memcpy(rows_host + k * dim, tb->data + (int64_t)local_ids[k] * dim, (size_t)dim * sizeof(float));
    return DT_OK;
  }
  int32_t *d_ids = NULL;
  float *d_rows = NULL;
  int rc = dt_backend_alloc(be, (size_t)n * sizeof(int32_t), (void **)&d_ids);
  if (!rc) rc = dt_backend_alloc(be, (size_t)(n * dim) * sizeof(float), (void **)&d_rows);
  if (!rc) rc = be->upload(be, d_ids, local_ids, (size_t)n * sizeof(int32_t));
  if (!rc) rc = be->gather_rows(be, d_rows, tb->data, d_ids, n, dim);
  if (!rc) rc = be->download(be, rows_host, d_rows, (size_t)(n * dim) * sizeof(float));
  if (d_ids) be->free(be, d_ids);
  if (d_rows) be->free(be, d_rows);
  return rc;
}

/* ---- Evaluation cache ------------------------------------------------------------------ */

int dt_model_build_item_cache(dt_model *m) {
  if (!m->use_content) return DT_OK;
  dt_backend *be = m->be;
  if (!m->item_hc) DT_TRY(dt_backend_alloc(be, (size_t)(m->n_items * m->dim) * sizeof(float), (void **)&m->item_hc));
  const int64_t block = 4096;
  DT_TRY(dt_model_work_ensure(m, 1, block, 0));
  int32_t *ids_host = dt_xmalloc((size_t)block * sizeof(int32_t));
  int32_t *ids = NULL;
  int rc = dt_backend_alloc(be, (size_t)block * sizeof(int32_t), (void **)&ids);
  for (int64_t lo = 0; lo < m->n_items && !rc; lo += block) {
    int64_t rows = m->n_items - lo < block ? m->n_items - lo : block;
    for (int64_t i = 0; i < rows; i++) ids_host[i] = (int32_t)(lo + i);
    rc = be->upload(be, ids, ids_host, (size_t)rows * sizeof(int32_t));
    if (!rc) rc = content_fwd(m, ids, rows, NULL, m->work->c1, m->work->c2, m->item_hc + lo * m->dim);
  }
  free(ids_host);
  if (ids) be->free(be, ids);
  return rc;
}

void dt_model_drop_item_cache(dt_model *m) {
  if (m->item_hc) m->be->free(m->be, m->item_hc);
  m->item_hc = NULL;
}
