/* encoder_sasrec.c: the dynamic tower's SASRec encoder (MODEL.md 1c): for
 * the windows of a batch, packed sequence-major (dt_seq_windows),
 *
 *   x = Dropout(sqrt(d) item_emb[i + 1] + pos_emb[p])
 *   per block: a = x + Dropout(MHA(LN1(x))),  x = a + Dropout(FFN(LN2(a)))
 *              FFN = fc1 -> ReLU -> Dropout -> fc2, MHA causal within a window
 *   h_d = ln_final(x) at each example's read-out token (0: empty history).
 *
 * With `chunk` history one window per chunk gives every position of the
 * chunk its state in one causal pass. Every dropout mask is keyed by the
 * token's key (b->tok_key: the window's key and the position), so it does
 * not depend on the batch layout or the number of ranks. The item rows'
 * gradient (sqrt(d) times the embedding's) goes to dynamic.item_emb's
 * sparse gradient as the GRU's does; pos_emb is a dense parameter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "model_internal.h"

#define LN_EPS 1e-8f

static int64_t up16(int64_t n) { return (n + 15) / 16 * 16; }

/* Carves the token buffers for cap_t tokens out of `base` (NULL: only
 * counts); returns the floats used. */
static int64_t carve(dt_sasrec_work *s, float *base, int blocks, int D, int64_t t) {
  int64_t off = 0;
#define TAKE(ptr, count)          \
  do {                            \
    if (base) (ptr) = base + off; \
    off += up16(count);           \
  } while (0)
  for (int k = 0; k <= blocks; k++) TAKE(s->x[k], t * D);
  for (int k = 0; k < blocks; k++) {
    TAKE(s->ln1[k], t * D);
    TAKE(s->qkv[k], t * 3 * D);
    TAKE(s->att[k], t * D);
    TAKE(s->a[k], t * D);
    TAKE(s->ln2[k], t * D);
    TAKE(s->f1[k], t * D);
    TAKE(s->mean1[k], t);
    TAKE(s->rstd1[k], t);
    TAKE(s->mean2[k], t);
    TAKE(s->rstd2[k], t);
  }
  TAKE(s->y, (t + 1) * D);
  TAKE(s->meanf, t);
  TAKE(s->rstdf, t);
  TAKE(s->tmp, t * D);
  TAKE(s->dln, t * D);
  TAKE(s->df1, t * D);
  TAKE(s->dqkv, t * 3 * D);
#undef TAKE
  return off;
}

/* Room for t tokens and p probability floats per block. */
static int work_ensure(dt_model *m, int64_t t, int64_t p) {
  dt_model_work *w = m->work;
  if (!w->sasrec) w->sasrec = dt_xcalloc(1, sizeof(dt_sasrec_work));
  dt_sasrec_work *s = w->sasrec;
  const int B = m->sasrec_blocks;
  if (t > s->cap_t || !s->arena) {
    int64_t c = t > s->cap_t ? t + t / 4 + 64 : s->cap_t;
    DT_TRY(dt_backend_replace(m->be, (void **)&s->arena, (size_t)carve(s, NULL, B, m->dim, c) * sizeof(float)));
    s->cap_t = c;
    carve(s, s->arena, B, m->dim, c);
  }
  if (p > s->cap_p || !s->parena) {
    int64_t c = p > s->cap_p ? p + p / 4 + 64 : s->cap_p;
    DT_TRY(dt_backend_replace(m->be, (void **)&s->parena, (size_t)(B * up16(c)) * sizeof(float)));
    s->cap_p = c;
  }
  for (int k = 0; k < B; k++) s->probs[k] = s->parena + k * up16(s->cap_p);
  return DT_OK;
}

static void sasrec_free_work(dt_model *m) {
  dt_sasrec_work *s = m->work ? m->work->sasrec : NULL;
  if (!s) return;
  if (s->arena) m->be->free(m->be, s->arena);
  if (s->parena) m->be->free(m->be, s->parena);
  free(s);
  m->work->sasrec = NULL;
}

static dt_seq_windows windows_of(const dt_batch *b) {
  dt_seq_windows win = {b->seq_offsets, b->n_seq, b->n_tokens, b->max_len};
  return win;
}

/* A LayerNorm's parameters (a Linear view holds its weight and bias). */
static const float *ln_w(const dt_model *m, dt_linear_view v) { return m->w + v.weight; }
static const float *ln_b(const dt_model *m, dt_linear_view v) { return m->w + v.bias; }

/* Whether dropout runs, and the key of a site (block k's sites are spaced by DT_SITE_BLOCK). */
static int dropping(const dt_model *m, const dt_batch *b) { return b->train && m->p_gru > 0; }
static dt_dropout_key site_key(const dt_model *m, const dt_batch *b, uint32_t site, int k) {
  return dt_model_key(m, b, site + DT_SITE_BLOCK * (uint32_t)k, b->tok_key);
}

/* out = res + Dropout(x W^T + b): a residual branch's Linear, its dropout
 * and the residual add (out may not alias x or res). */
static int residual_linear(dt_model *m, const dt_batch *b, float *out, const float *res, const float *x,
                           dt_linear_view v, uint32_t site, int k) {
  dt_backend *be = m->be;
  const int64_t T = b->n_tokens;
  const int D = m->dim;
  DT_TRY(dt_linear_fwd(be, out, x, dt_linear_of(m, v), T, D, D));
  if (dropping(m, b)) DT_TRY(be->relu_dropout_fwd(be, out, T, D, 0, m->p_gru, site_key(m, b, site, k)));
  return be->axpy(be, out, res, T * D, 1.0f);
}

static int block_fwd(dt_model *m, const dt_batch *b, int k) {
  dt_backend *be = m->be;
  dt_sasrec_work *s = m->work->sasrec;
  const dt_sasrec_block_view *v = &m->pv.blocks[k];
  const int64_t T = b->n_tokens;
  const int D = m->dim, drop = dropping(m, b);
  DT_TRY(be->layer_norm_fwd(be, s->x[k], ln_w(m, v->ln1), ln_b(m, v->ln1), LN_EPS, T, D, s->ln1[k], s->mean1[k],
                            s->rstd1[k]));
  DT_TRY(dt_linear_fwd(be, s->qkv[k], s->ln1[k], dt_linear_of(m, v->in_proj), T, D, 3 * D));
  DT_TRY(be->attn_fwd(be, s->qkv[k], windows_of(b), D, m->sasrec_heads, s->att[k], s->probs[k]));
  DT_TRY(residual_linear(m, b, s->a[k], s->x[k], s->att[k], v->out_proj, DT_SITE_SASREC_ATTN, k));
  DT_TRY(be->layer_norm_fwd(be, s->a[k], ln_w(m, v->ln2), ln_b(m, v->ln2), LN_EPS, T, D, s->ln2[k], s->mean2[k],
                            s->rstd2[k]));
  DT_TRY(dt_linear_fwd(be, s->f1[k], s->ln2[k], dt_linear_of(m, v->fc1), T, D, D));
  DT_TRY(be->relu_dropout_fwd(be, s->f1[k], T, D, 1, drop ? m->p_gru : 0.0f,
                              drop ? site_key(m, b, DT_SITE_SASREC_FFN_HIDDEN, k) : dt_model_no_dropout(m)));
  return residual_linear(m, b, s->x[k + 1], s->a[k], s->f1[k], v->fc2, DT_SITE_SASREC_FFN_OUT, k);
}

static int sasrec_forward(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  const int64_t T = b->n_tokens;
  const int D = m->dim, B = m->sasrec_blocks;
  if (T > 0 && b->max_len > m->pos_rows)
    return dt_fail(DT_EXIT_RUNTIME,
                   "a history window of %d items is longer than dynamic.pos_emb's %lld positions "
                   "(2 * data.history_len)",
                   b->max_len, (long long)m->pos_rows);
  const int64_t probs = T > 0 ? dt_attn_probs_floats(b->seq_offsets_host, b->n_seq, m->sasrec_heads) : 0;
  DT_TRY(work_ensure(m, T, probs));
  dt_sasrec_work *s = m->work->sasrec;
  if (T > 0) {
    DT_TRY(be->seq_embed_fwd(be, m->tables[DT_TABLE_DYN_ITEM].view, b->ids_dyn_tok, sqrtf((float)D),
                             m->w + m->pv.pos_emb, m->pos_rows, windows_of(b), D, s->x[0]));
    if (dropping(m, b))
      DT_TRY(be->relu_dropout_fwd(be, s->x[0], T, D, 0, m->p_gru, site_key(m, b, DT_SITE_SASREC_EMB, 0)));
    for (int k = 0; k < B; k++) DT_TRY(block_fwd(m, b, k));
    DT_TRY(be->layer_norm_fwd(be, s->x[B], ln_w(m, m->pv.ln_final), ln_b(m, m->pv.ln_final), LN_EPS, T, D, s->y,
                              s->meanf, s->rstdf));
  }
  /* row T of y is the zero state read by examples with an empty history */
  DT_TRY(be->zero(be, s->y + T * D, (size_t)D * sizeof(float)));
  DT_TRY(be->gather_rows(be, m->work->hd, s->y, b->readout, b->n, D));
  m->work->readout_rows = T;
  return DT_OK;
}

/* From d(res + Dropout(x W^T + b)) in dout: the Linear's weight gradients
 * and dx (overwritten); the residual's share stays in dout. */
static int residual_linear_bwd(dt_model *m, const dt_batch *b, const float *dout, const float *x, float *dx,
                               dt_linear_view v, uint32_t site, int k) {
  dt_backend *be = m->be;
  dt_sasrec_work *s = m->work->sasrec;
  const int64_t T = b->n_tokens;
  const int D = m->dim;
  const float *dy = dout;
  if (dropping(m, b)) {
    DT_TRY(be->copy(be, s->tmp, dout, (size_t)(T * D) * sizeof(float)));
    DT_TRY(be->relu_dropout_bwd(be, s->tmp, NULL, T, D, 0, m->p_gru, site_key(m, b, site, k)));
    dy = s->tmp;
  }
  return dt_linear_bwd(be, dy, x, dt_linear_of(m, v), dx, 0, T, D, D);
}

/* dx holds d(block k's output) on entry and d(block k's input) on return. */
static int block_bwd(dt_model *m, const dt_batch *b, int k, float *dx) {
  dt_backend *be = m->be;
  dt_sasrec_work *s = m->work->sasrec;
  const dt_sasrec_block_view *v = &m->pv.blocks[k];
  const int64_t T = b->n_tokens;
  const int D = m->dim, drop = dropping(m, b);
  /* x' = a + Dropout(fc2(Dropout(ReLU(fc1(LN2(a)))))) */
  DT_TRY(residual_linear_bwd(m, b, dx, s->f1[k], s->df1, v->fc2, DT_SITE_SASREC_FFN_OUT, k));
  DT_TRY(be->relu_dropout_bwd(be, s->df1, s->f1[k], T, D, 1, drop ? m->p_gru : 0.0f,
                              drop ? site_key(m, b, DT_SITE_SASREC_FFN_HIDDEN, k) : dt_model_no_dropout(m)));
  DT_TRY(dt_linear_bwd(be, s->df1, s->ln2[k], dt_linear_of(m, v->fc1), s->dln, 0, T, D, D));
  DT_TRY(be->layer_norm_bwd(be, s->dln, s->a[k], ln_w(m, v->ln2), s->mean2[k], s->rstd2[k], T, D, dx, 1,
                            m->g + v->ln2.weight, m->g + v->ln2.bias));
  /* a = x + Dropout(out_proj(attn(in_proj(LN1(x))))); df1 holds d(attn output) */
  DT_TRY(residual_linear_bwd(m, b, dx, s->att[k], s->df1, v->out_proj, DT_SITE_SASREC_ATTN, k));
  DT_TRY(be->attn_bwd(be, s->qkv[k], s->probs[k], s->df1, windows_of(b), D, m->sasrec_heads, s->dqkv));
  DT_TRY(dt_linear_bwd(be, s->dqkv, s->ln1[k], dt_linear_of(m, v->in_proj), s->dln, 0, T, D, 3 * D));
  return be->layer_norm_bwd(be, s->dln, s->x[k], ln_w(m, v->ln1), s->mean1[k], s->rstd1[k], T, D, dx, 1,
                            m->g + v->ln1.weight, m->g + v->ln1.bias);
}

static int sasrec_backward(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_sasrec_work *s = m->work->sasrec;
  const int64_t T = b->n_tokens;
  const int D = m->dim, B = m->sasrec_blocks;
  dt_table *tb = &m->tables[DT_TABLE_DYN_ITEM];
  if (T == 0) return DT_OK;
  /* the tokens' gradient rows of dynamic.item_emb are the running
   * gradient's buffer: d(x) ends there and is scaled by sqrt(d) */
  float *dx = tb->grad_rows + tb->grad_n * D;
  /* read-outs are distinct tokens; the zero state (id T) is skipped */
  DT_TRY(be->zero(be, s->tmp, (size_t)(T * D) * sizeof(float)));
  DT_TRY(be->scatter_add_rows(be, s->tmp, T, b->readout, m->work->d_hd, b->n, D));
  DT_TRY(be->layer_norm_bwd(be, s->tmp, s->x[B], ln_w(m, m->pv.ln_final), s->meanf, s->rstdf, T, D, dx, 0,
                            m->g + m->pv.ln_final.weight, m->g + m->pv.ln_final.bias));
  for (int k = B - 1; k >= 0; k--) DT_TRY(block_bwd(m, b, k, dx));
  if (dropping(m, b))
    DT_TRY(be->relu_dropout_bwd(be, dx, NULL, T, D, 0, m->p_gru, site_key(m, b, DT_SITE_SASREC_EMB, 0)));
  DT_TRY(be->seq_pos_grad(be, dx, windows_of(b), D, m->pos_rows, m->g + m->pv.pos_emb));
  DT_TRY(be->scale(be, dx, T * D, sqrtf((float)D)));
  DT_TRY(be->copy(be, tb->grad_ids + tb->grad_n, b->ids_dyn_tok, (size_t)T * sizeof(int32_t)));
  tb->grad_n += T;
  return DT_OK;
}

const dt_seq_encoder dt_encoder_sasrec = {"sasrec", 0, sasrec_forward, sasrec_backward, sasrec_free_work};
