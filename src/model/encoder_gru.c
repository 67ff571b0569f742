/* encoder_gru.c: the dynamic tower's sequence encoder as in the thesis: a
 * 2-layer GRU (torch.nn.GRU, gates r, z, n) over packed sequences, dropout
 * between the layers, read out at each example's last history token. */
#include <stdlib.h>

#include "dtrain/error.h"
#include "model_internal.h"

/* One GRU layer over packed sequences: x [t, in] -> h [t, H] (and caches). */
static int gru_layer_fwd(dt_model *m, const dt_batch *b, const dt_gru_view *v, const float *x, int in, float *xg,
                         float *cache, float *h) {
  dt_backend *be = m->be;
  const int H = m->gru_hidden;
  const dt_linear ih = {m->w + v->weight_ih, m->w + v->bias_ih, NULL, NULL};
  const dt_linear hh = {m->w + v->weight_hh, m->w + v->bias_hh, NULL, NULL};
  float *hg = m->work->hg_step;

  /* The input products of every step at once: xg [t, 3H] = x W_ih^T + b_ih */
  DT_TRY(dt_linear_fwd(be, xg, x, ih, b->n_tokens, in, 3 * H));
  int64_t off = 0, prev = -1;
  for (int s = 0; s < b->max_len; s++) {
    int64_t a = b->batch_sizes_host[s];
    if (s == 0) { /* zero state: hg = b_hh */
      DT_TRY(be->zero(be, hg, (size_t)(a * 3 * H) * sizeof(float)));
      DT_TRY(be->add_bias(be, hg, hh.b, a, 3 * H));
    } else {
      DT_TRY(dt_linear_fwd(be, hg, h + prev * H, hh, a, H, 3 * H));
    }
    DT_TRY(be->gru_step_fwd(be, xg + off * 3 * H, hg, s ? h + prev * H : NULL, h + off * H, cache + off * 4 * H, a, H));
    prev = off;
    off += a;
  }
  return DT_OK;
}

static int gru_forward(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, H = m->gru_hidden;
  const int64_t t = b->n_tokens;
  if (t > 0) {
    DT_TRY(be->gather_rows(be, w->x0, m->tables[DT_TABLE_DYN_ITEM].view, b->ids_dyn_tok, t, D));
    DT_TRY(gru_layer_fwd(m, b, &m->pv.gru[0], w->x0, D, w->xg0, w->cache0, w->h0));
    /* dropout between the layers (PyTorch applies it to every layer's output but the last) */
    DT_TRY(be->copy(be, w->x1, w->h0, (size_t)(t * H) * sizeof(float)));
    if (b->train && m->p_gru > 0)
      DT_TRY(be->relu_dropout_fwd(be, w->x1, t, H, 0, m->p_gru, dt_model_key(m, b, DT_SITE_GRU, b->tok_key)));
    DT_TRY(gru_layer_fwd(m, b, &m->pv.gru[1], w->x1, H, w->xg1, w->cache1, w->h1));
  }
  /* row t of h1 is the zero state read by examples with an empty history */
  DT_TRY(be->zero(be, w->h1 + t * H, (size_t)H * sizeof(float)));
  DT_TRY(be->gather_rows(be, w->hdin, w->h1, b->readout, b->n, H));
  w->readout_rows = t;
  return DT_OK;
}

static int gru_layer_bwd(dt_model *m, const dt_batch *b, const dt_gru_view *v, const float *x, int in,
                         const float *cache, const float *h, float *dh, float *dx) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int H = m->gru_hidden;
  const dt_linear ih = {m->w + v->weight_ih, NULL, m->g + v->weight_ih, m->g + v->bias_ih};
  const float *w_hh = m->w + v->weight_hh;
  float *dw_hh = m->g + v->weight_hh, *db_hh = m->g + v->bias_hh;
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
  /* dW_ih, db_ih and the layer's input gradient from the input products' */
  return dt_linear_bwd(be, w->d_xg, x, ih, dx, 0, b->n_tokens, in, 3 * H);
}

static int gru_backward(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  const int D = m->dim, H = m->gru_hidden;
  const int64_t t = b->n_tokens;
  dt_table *tb = &m->tables[DT_TABLE_DYN_ITEM];
  if (t == 0) return DT_OK;
  DT_TRY(be->zero(be, w->d_h1, (size_t)(t * H) * sizeof(float)));
  /* read-outs are distinct tokens; the zero state (id t) is skipped */
  DT_TRY(be->scatter_add_rows(be, w->d_h1, t, b->readout, w->d_hdin, b->n, H));
  DT_TRY(gru_layer_bwd(m, b, &m->pv.gru[1], w->x1, H, w->cache1, w->h1, w->d_h1, w->d_x1));
  if (b->train && m->p_gru > 0)
    DT_TRY(be->relu_dropout_bwd(be, w->d_x1, w->x1, t, H, 0, m->p_gru, dt_model_key(m, b, DT_SITE_GRU, b->tok_key)));
  /* layer 1's input gradient is layer 0's output gradient */
  DT_TRY(gru_layer_bwd(m, b, &m->pv.gru[0], w->x0, D, w->cache0, w->h0, w->d_x1, tb->grad_rows + tb->grad_n * D));
  DT_TRY(be->copy(be, tb->grad_ids + tb->grad_n, b->ids_dyn_tok, (size_t)t * sizeof(int32_t)));
  tb->grad_n += t;
  return DT_OK;
}

const dt_seq_encoder dt_encoder_gru = {"gru", 1, gru_forward, gru_backward, NULL};
