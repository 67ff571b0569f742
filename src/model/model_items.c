/* model_items.c: every example of the last forward pass scored against one
 * item list (model.h, "Scoring against an item list"): the step's shared
 * negatives of train.loss = sampled_softmax, or softmax's whole catalogue,
 * a block of list positions [lo, lo + k) at a time.
 *
 *   v3:    S [n, k] = sum_t U_t V_t^T + bias, with U = (a_s e_u, a_d h_d,
 *          a_c P e_u) [n, D] each and V = (e_i, d_{i+1}, h_c(i)) [k, D]
 *          each: one GEMM over the inner dimension 3D, run as its three
 *          blocks (no concatenated copies).
 *   v1/v2: the head on every (example, item) pair p = i k + j: static.fc1
 *          of [e_u ; e_i] is e_u W1[:, :D]^T + b1 (once per example) plus
 *          e_i W1[:, D:]^T (once per item), and h_c once per item; ReLU,
 *          dropout, static.fc2, the mixture and the head run per pair.
 *
 * The backward of a block writes the item side at once (tables' rows of the
 * block's items, the content tower's weights) and accumulates the user side
 * (d U, or d of the per-example half of static.fc1, d h_d, d alpha) over
 * blocks; dt_list_finish turns it into the towers' inputs' gradients when
 * dt_model_backward runs. Shapes: n examples, k items, P = n k pairs, D =
 * model.dim, SH = static hidden, HH = head hidden. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "model_internal.h"

/* v1/v2: (example, item) pairs per block of the derived block size */
enum { PAIR_BUDGET = 1 << 14 };
/* v1/v2 pair dropout keys: -1 - (example key << PAIR_ITEM_BITS | list
 * position), negative so they never meet a candidate row's key (>= 0); the
 * loss checks that list positions fit (dt_loss_setup) */
#define PAIR_ITEM_BITS 23

static int has_static(const dt_model *m) {
  return m->tables[DT_TABLE_USER].present && m->tables[DT_TABLE_ITEM].present &&
         (m->version == DT_V3 || m->pv.static_fc1.weight >= 0);
}

static const float *alpha_of(const dt_model *m) { return m->use_gate ? m->work->alpha : m->work->alpha_const; }

static int pair_dropout(const dt_model *m, const dt_batch *b) { return b->train && (m->p_static > 0 || m->p_head > 0); }

int64_t dt_model_list_block_hint(const dt_model *m, int64_t n) {
  if (m->version == DT_V3) return INT64_MAX;
  int64_t k = PAIR_BUDGET / (n > 0 ? n : 1);
  return k > 0 ? k : 1;
}

/* ---- Buffers ------------------------------------------------------------------------- */

static int regrow(dt_backend *be, void *p, int64_t count, size_t elem, int wanted) {
  return dt_backend_replace(be, (void **)p, wanted && count > 0 ? (size_t)count * elem : 0);
}

static int64_t grown(int64_t need) { return need + need / 4 + 16; }

static int ensure_buffers(dt_model *m, int64_t n, int64_t k) {
  dt_backend *be = m->be;
  if (!m->work->list) m->work->list = dt_xcalloc(1, sizeof(dt_list_work));
  dt_list_work *L = m->work->list;
  const int64_t D = m->dim, SH = m->static_hidden, HH = m->head_hidden;
  const int v3 = m->version == DT_V3, st = has_static(m), dyn = m->use_dynamic, con = m->use_content;
  const size_t f = sizeof(float);
  if (n > L->cap_n) {
    int64_t c = grown(n);
    L->cap_n = c;
    L->user_serial = 0;
    for (int t = 0; t < 3; t++) {
      int present = v3 && (t == 0 ? st : t == 1 ? dyn : con);
      DT_TRY(regrow(be, &L->u[t], c * D, f, present));
      DT_TRY(regrow(be, &L->du[t], c * D, f, present));
    }
    DT_TRY(regrow(be, &L->eu, c * D, f, !v3 && st));
    DT_TRY(regrow(be, &L->upart, c * SH, f, !v3 && st));
    DT_TRY(regrow(be, &L->d_upart, c * SH, f, !v3 && st));
    DT_TRY(regrow(be, &L->d_eu, c * D, f, v3 && st));
    DT_TRY(regrow(be, &L->d_up, c * D, f, v3 && con));
    DT_TRY(regrow(be, &L->d_hd, c * D, f, dyn));
    DT_TRY(regrow(be, &L->d_alpha, c * 3, f, 1));
    DT_TRY(regrow(be, &L->dalpha_tmp, c * 3, f, 1));
    L->row_key_host = dt_xrealloc(L->row_key_host, (size_t)c * sizeof(int64_t));
  }
  if (k > L->cap_k) {
    int64_t c = grown(k);
    L->cap_k = c;
    L->blk_lo = -1;
    DT_TRY(regrow(be, &L->vi[0], c * D, f, st));
    DT_TRY(regrow(be, &L->vi[1], c * D, f, v3 && dyn));
    DT_TRY(regrow(be, &L->vi[2], c * D, f, con));
    DT_TRY(regrow(be, &L->bias, c, f, v3));
    DT_TRY(regrow(be, &L->c1, c * m->content_h1, f, con));
    DT_TRY(regrow(be, &L->d_c1, c * m->content_h1, f, con));
    DT_TRY(regrow(be, &L->c2, c * m->content_h2, f, con));
    DT_TRY(regrow(be, &L->d_c2, c * m->content_h2, f, con));
    DT_TRY(regrow(be, &L->d_hc, c * D, f, con));
    DT_TRY(regrow(be, &L->ipart, c * SH, f, !v3 && st));
    DT_TRY(regrow(be, &L->d_ipart, c * SH, f, !v3 && st));
  }
  const int64_t P = v3 ? 0 : n * k;
  if (P > L->cap_p) {
    int64_t c = grown(P);
    L->cap_p = c;
    L->blk_lo = -1;
    L->pairs_n = L->pairs_k = -1;
    float **pf[] = {&L->s1, &L->d_s1, &L->hs, &L->d_hs, &L->hcp, &L->d_hcp, &L->z, &L->d_z, &L->hh, &L->d_hh};
    const int64_t cols[] = {SH, SH, D, D, D, D, D, D, HH, HH};
    const int want[] = {st, st, st, st, con, con, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof pf / sizeof pf[0]; i++) DT_TRY(regrow(be, pf[i], c * cols[i], f, want[i]));
    DT_TRY(regrow(be, &L->ones, c, f, st));
    DT_TRY(regrow(be, &L->pair_i, c, sizeof(int32_t), 1));
    DT_TRY(regrow(be, &L->pair_j, c, sizeof(int32_t), 1));
    DT_TRY(regrow(be, &L->pair_key, c, sizeof(int64_t), 1));
    L->pair_key_host = dt_xrealloc(L->pair_key_host, (size_t)c * sizeof(int64_t));
  }
  return DT_OK;
}

void dt_list_work_free(dt_model *m) {
  dt_list_work *L = m->work ? m->work->list : NULL;
  if (!L) return;
  void *ps[] = {L->u[0],    L->u[1], L->u[2], L->du[0], L->du[1],   L->du[2],      L->eu,      L->upart,
                L->d_upart, L->d_eu, L->d_up, L->d_hd,  L->d_alpha, L->dalpha_tmp, L->vi[0],   L->vi[1],
                L->vi[2],   L->bias, L->c1,   L->c2,    L->d_c1,    L->d_c2,       L->d_hc,    L->ipart,
                L->d_ipart, L->s1,   L->d_s1, L->hs,    L->d_hs,    L->hcp,        L->d_hcp,   L->z,
                L->d_z,     L->hh,   L->d_hh, L->ones,  L->pair_i,  L->pair_j,     L->pair_key};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) m->be->free(m->be, ps[i]);
  free(L->row_key_host);
  free(L->pair_key_host);
  free(L);
  m->work->list = NULL;
}

/* ---- The user side (once per forward pass) and a block's item side ------------------ */

static int user_side(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  dt_list_work *L = w->list;
  if (L->user_serial == w->fwd_serial) return DT_OK;
  const int D = m->dim, SH = m->static_hidden;
  const int64_t n = b->n;
  const float *alpha = alpha_of(m);
  if (m->version == DT_V3) {
    if (has_static(m)) DT_TRY(be->mix3_fwd(be, alpha, w->eu, NULL, NULL, L->u[0], n, 1, D));
    if (m->use_dynamic) DT_TRY(be->mix3_fwd(be, alpha, NULL, w->hd, NULL, L->u[1], n, 1, D));
    if (m->use_content) DT_TRY(be->mix3_fwd(be, alpha, NULL, NULL, w->up, L->u[2], n, 1, D));
  } else {
    if (has_static(m)) {
      dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1); /* W1 [SH, 2D] */
      DT_TRY(be->gather_rows(be, L->eu, m->tables[DT_TABLE_USER].view, b->ids_user, n, D));
      DT_TRY(be->gemm(be, 0, 1, (int)n, SH, D, 1.0f, L->eu, D, fc1.w, 2 * D, 0.0f, L->upart, SH));
      DT_TRY(be->add_bias(be, L->upart, fc1.b, n, SH));
    }
    if (pair_dropout(m, b)) DT_TRY(be->download(be, L->row_key_host, b->row_key, (size_t)n * sizeof(int64_t)));
  }
  L->user_serial = w->fwd_serial;
  L->blk_lo = -1;
  return DT_OK;
}

static int item_side(dt_model *m, const dt_batch *b, int64_t lo, int64_t k) {
  dt_backend *be = m->be;
  dt_list_work *L = m->work->list;
  const int D = m->dim, SH = m->static_hidden;
  if (has_static(m)) DT_TRY(be->gather_rows(be, L->vi[0], m->tables[DT_TABLE_ITEM].view, b->list_ids_item + lo, k, D));
  if (m->version == DT_V3 && m->use_dynamic)
    DT_TRY(be->gather_rows(be, L->vi[1], m->tables[DT_TABLE_DYN_ITEM].view, b->list_ids_dyn + lo, k, D));
  if (m->use_content) DT_TRY(dt_content_fwd(m, b->list_item + lo, k, b, b->list_key + lo, L->c1, L->c2, L->vi[2]));
  if (m->version == DT_V3)
    return be->gather_rows(be, L->bias, m->tables[DT_TABLE_ITEM_BIAS].view, b->list_ids_bias + lo, k, 1);
  if (has_static(m)) {
    dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1);
    DT_TRY(be->gemm(be, 0, 1, (int)k, SH, D, 1.0f, L->vi[0], D, fc1.w + D, 2 * D, 0.0f, L->ipart, SH));
  }
  return DT_OK;
}

/* ---- v1/v2: the head on every pair ------------------------------------------------------ */

/* The pairs' example / item indices for an (n, k) block, and their dropout keys. */
static int pair_layout(dt_model *m, const dt_batch *b, int64_t lo, int64_t k) {
  dt_backend *be = m->be;
  dt_list_work *L = m->work->list;
  const int64_t n = b->n, P = n * k;
  if (L->pairs_n != n || L->pairs_k != k) {
    int32_t *ij = dt_xmalloc((size_t)P * 2 * sizeof(int32_t));
    float *ones = dt_xmalloc((size_t)P * sizeof(float));
    for (int64_t p = 0; p < P; p++) {
      ij[p] = (int32_t)(p / k);
      ij[P + p] = (int32_t)(p % k);
      ones[p] = 1.0f;
    }
    int rc = be->upload(be, L->pair_i, ij, (size_t)P * sizeof(int32_t));
    if (!rc) rc = be->upload(be, L->pair_j, ij + P, (size_t)P * sizeof(int32_t));
    if (!rc && L->ones) rc = be->upload(be, L->ones, ones, (size_t)P * sizeof(float));
    free(ij);
    free(ones);
    DT_TRY(rc);
    L->pairs_n = n;
    L->pairs_k = k;
  }
  if (!pair_dropout(m, b)) return DT_OK;
  for (int64_t p = 0; p < P; p++) {
    uint64_t key = ((uint64_t)L->row_key_host[p / k] << PAIR_ITEM_BITS) | (uint64_t)(lo + p % k);
    L->pair_key_host[p] = -1 - (int64_t)key;
  }
  return be->upload(be, L->pair_key, L->pair_key_host, (size_t)P * sizeof(int64_t));
}

static int pairs_fwd(dt_model *m, const dt_batch *b, int64_t k, float *scores) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  dt_list_work *L = w->list;
  const int D = m->dim, SH = m->static_hidden, HH = m->head_hidden;
  const int64_t n = b->n, P = n * k;
  const int st = has_static(m);
  if (st) {
    /* relu(e_u W1u^T + b1 + e_i W1i^T): the item part, plus the example part (d_s1 as scratch) */
    DT_TRY(be->gather_rows(be, L->s1, L->ipart, L->pair_j, P, SH));
    DT_TRY(be->gather_rows(be, L->d_s1, L->upart, L->pair_i, P, SH));
    DT_TRY(be->axpy(be, L->s1, L->d_s1, P * SH, 1.0f));
    int drop = b->train && m->p_static > 0;
    DT_TRY(be->relu_dropout_fwd(be, L->s1, P, SH, 1, drop ? m->p_static : 0.0f,
                                dt_model_key(m, b, DT_SITE_STATIC, L->pair_key)));
    DT_TRY(dt_linear_fwd(be, L->hs, L->s1, dt_linear_of(m, m->pv.static_fc2), P, SH, D));
  }
  if (m->use_content) DT_TRY(be->gather_rows(be, L->hcp, L->vi[2], L->pair_j, P, D));
  DT_TRY(be->mix3_fwd(be, alpha_of(m), st ? L->hs : NULL, m->use_dynamic ? w->hd : NULL, m->use_content ? L->hcp : NULL,
                      L->z, n, (int)k, D));
  DT_TRY(dt_linear_fwd(be, L->hh, L->z, dt_linear_of(m, m->pv.head_fc1), P, D, HH));
  int drop = b->train && m->p_head > 0;
  DT_TRY(be->relu_dropout_fwd(be, L->hh, P, HH, 1, drop ? m->p_head : 0.0f,
                              dt_model_key(m, b, DT_SITE_HEAD, L->pair_key)));
  return dt_linear_fwd(be, scores, L->hh, dt_linear_of(m, m->pv.head_fc2), P, HH, 1);
}

static int pairs_bwd(dt_model *m, const dt_batch *b, int64_t lo, int64_t k, const float *ds) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  dt_list_work *L = w->list;
  const int D = m->dim, SH = m->static_hidden, HH = m->head_hidden;
  const int64_t n = b->n, P = n * k;
  const int st = has_static(m);
  DT_TRY(dt_linear_bwd(be, ds, L->hh, dt_linear_of(m, m->pv.head_fc2), L->d_hh, 0, P, HH, 1));
  int drop = b->train && m->p_head > 0;
  DT_TRY(be->relu_dropout_bwd(be, L->d_hh, L->hh, P, HH, 1, drop ? m->p_head : 0.0f,
                              dt_model_key(m, b, DT_SITE_HEAD, L->pair_key)));
  DT_TRY(dt_linear_bwd(be, L->d_hh, L->z, dt_linear_of(m, m->pv.head_fc1), L->d_z, 0, P, D, HH));
  if (st) DT_TRY(be->zero(be, L->d_hs, (size_t)(P * D) * sizeof(float)));
  if (m->use_content) DT_TRY(be->zero(be, L->d_hcp, (size_t)(P * D) * sizeof(float)));
  DT_TRY(be->mix3_bwd(be, alpha_of(m), st ? L->hs : NULL, m->use_dynamic ? w->hd : NULL, m->use_content ? L->hcp : NULL,
                      L->d_z, L->dalpha_tmp, st ? L->d_hs : NULL, m->use_dynamic ? L->d_hd : NULL,
                      m->use_content ? L->d_hcp : NULL, n, (int)k, D));
  DT_TRY(be->axpy(be, L->d_alpha, L->dalpha_tmp, n * 3, 1.0f));
  if (m->use_content) { /* h_c of item j: the sum over the examples, rows [n, k D] */
    DT_TRY(be->zero(be, L->d_hc, (size_t)(k * D) * sizeof(float)));
    DT_TRY(be->bias_grad(be, L->d_hc, L->d_hcp, n, (int)(k * D)));
    DT_TRY(dt_content_bwd_rows(m, b, b->list_item + lo, k, b->list_key + lo, L->c1, L->c2, L->d_hc, L->d_c1, L->d_c2));
  }
  if (!st) return DT_OK;
  DT_TRY(dt_linear_bwd(be, L->d_hs, L->s1, dt_linear_of(m, m->pv.static_fc2), L->d_s1, 0, P, SH, D));
  drop = b->train && m->p_static > 0;
  DT_TRY(be->relu_dropout_bwd(be, L->d_s1, L->s1, P, SH, 1, drop ? m->p_static : 0.0f,
                              dt_model_key(m, b, DT_SITE_STATIC, L->pair_key)));
  dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1);
  DT_TRY(be->bias_grad(be, fc1.db, L->d_s1, P, SH));
  /* the example half: sum over the example's k pairs (rowdot's du with unit weights) */
  DT_TRY(be->rowdot_bwd(be, L->upart, L->d_s1, L->ones, L->d_upart, NULL, n, (int)k, SH));
  /* the item half: sum over the n examples, rows [n, k SH] */
  DT_TRY(be->zero(be, L->d_ipart, (size_t)(k * SH) * sizeof(float)));
  DT_TRY(be->bias_grad(be, L->d_ipart, L->d_s1, n, (int)(k * SH)));
  DT_TRY(be->gemm(be, 1, 0, SH, D, (int)k, 1.0f, L->d_ipart, SH, L->vi[0], D, 1.0f, fc1.dw + D, 2 * D));
  float *slot;
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_ITEM, b->list_ids_item + lo, k, &slot));
  return be->gemm(be, 0, 0, (int)k, D, SH, 1.0f, L->d_ipart, SH, fc1.w + D, 2 * D, 0.0f, slot, D);
}

/* ---- v3: one GEMM ------------------------------------------------------------------------ */

static int gemm_fwd(dt_model *m, const dt_batch *b, int64_t k, float *scores) {
  dt_backend *be = m->be;
  dt_list_work *L = m->work->list;
  const int D = m->dim;
  float beta = 0.0f;
  for (int t = 0; t < 3; t++) {
    if (!L->u[t]) continue;
    DT_TRY(be->gemm(be, 0, 1, (int)b->n, (int)k, D, 1.0f, L->u[t], D, L->vi[t], D, beta, scores, (int)k));
    beta = 1.0f;
  }
  if (beta == 0.0f) DT_TRY(be->zero(be, scores, (size_t)(b->n * k) * sizeof(float)));
  return be->add_bias(be, scores, L->bias, b->n, (int)k);
}

static int gemm_bwd(dt_model *m, const dt_batch *b, int64_t lo, int64_t k, const float *ds) {
  dt_backend *be = m->be;
  dt_list_work *L = m->work->list;
  const int D = m->dim, n = (int)b->n;
  static const int table_of[3] = {DT_TABLE_ITEM, DT_TABLE_DYN_ITEM, -1};
  const int32_t *ids_of[3] = {b->list_ids_item + lo, b->list_ids_dyn + lo, NULL};
  for (int t = 0; t < 3; t++) {
    if (!L->u[t]) continue;
    /* dU_t += dS V_t;  dV_t = dS^T U_t (a table's rows, or h_c's gradient) */
    DT_TRY(be->gemm(be, 0, 0, n, D, (int)k, 1.0f, ds, (int)k, L->vi[t], D, 1.0f, L->du[t], D));
    float *dv = L->d_hc;
    if (table_of[t] >= 0) DT_TRY(dt_model_grad_slot(m, table_of[t], ids_of[t], k, &dv));
    DT_TRY(be->gemm(be, 1, 0, (int)k, D, n, 1.0f, ds, (int)k, L->u[t], D, 0.0f, dv, D));
  }
  if (m->use_content)
    DT_TRY(dt_content_bwd_rows(m, b, b->list_item + lo, k, b->list_key + lo, L->c1, L->c2, L->d_hc, L->d_c1, L->d_c2));
  float *slot; /* item bias: ds/db = 1, summed over the examples */
  DT_TRY(dt_model_grad_slot(m, DT_TABLE_ITEM_BIAS, b->list_ids_bias + lo, k, &slot));
  DT_TRY(be->zero(be, slot, (size_t)k * sizeof(float)));
  return be->bias_grad(be, slot, ds, n, (int)k);
}

/* ---- The public calls ------------------------------------------------------------------------ */

static int check_block(const dt_model *m, const dt_batch *b, int64_t lo, int64_t k, const char *what) {
  if (lo < 0 || k < 1 || lo + k > b->n_list || b->n * k > INT32_MAX || !m->work)
    return dt_fail(DT_EXIT_RUNTIME, "%s: block [%lld, %lld) of a list of %lld items for %lld examples (internal error)",
                   what, (long long)lo, (long long)(lo + k), (long long)b->n_list, (long long)b->n);
  return DT_OK;
}

int dt_model_list_scores(dt_model *m, const dt_batch *b, int64_t lo, int64_t k, float *scores) {
  if (b->n == 0) return DT_OK;
  DT_TRY(check_block(m, b, lo, k, "dt_model_list_scores"));
  DT_TRY(ensure_buffers(m, b->n, k));
  DT_TRY(user_side(m, b));
  dt_list_work *L = m->work->list;
  L->blk_lo = -1;
  DT_TRY(item_side(m, b, lo, k));
  if (m->version == DT_V3) {
    DT_TRY(gemm_fwd(m, b, k, scores));
  } else {
    DT_TRY(pair_layout(m, b, lo, k));
    DT_TRY(pairs_fwd(m, b, k, scores));
  }
  L->blk_lo = lo;
  L->blk_k = k;
  return DT_OK;
}

int dt_list_backward_pending(const dt_model *m) {
  const dt_model_work *w = m->work;
  return w && w->list && w->list->bwd_serial != 0 && w->list->bwd_serial == w->fwd_serial;
}

/* The first block's backward of a forward pass: the tables' rows begun with
 * room for the list's, the user-side accumulators zeroed. */
static int begin_backward(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  dt_list_work *L = w->list;
  if (dt_list_backward_pending(m)) return DT_OK;
  const int64_t n = b->n, D = m->dim;
  DT_TRY(dt_model_grad_begin(m, b, b->n_list + n));
  for (int t = 0; t < 3; t++)
    if (L->du[t] && L->u[t]) DT_TRY(be->zero(be, L->du[t], (size_t)(n * D) * sizeof(float)));
  if (m->version != DT_V3 && has_static(m))
    DT_TRY(be->zero(be, L->d_upart, (size_t)(n * m->static_hidden) * sizeof(float)));
  if (m->use_dynamic) DT_TRY(be->zero(be, L->d_hd, (size_t)(n * D) * sizeof(float)));
  DT_TRY(be->zero(be, L->d_alpha, (size_t)(n * 3) * sizeof(float)));
  L->bwd_serial = w->fwd_serial;
  return DT_OK;
}

int dt_model_list_backward(dt_model *m, const dt_batch *b, int64_t lo, int64_t k, const float *dscores) {
  if (b->n == 0) return DT_OK;
  DT_TRY(check_block(m, b, lo, k, "dt_model_list_backward"));
  dt_list_work *L = m->work->list;
  if (!L || L->user_serial != m->work->fwd_serial || L->blk_lo != lo || L->blk_k != k)
    return dt_fail(DT_EXIT_RUNTIME,
                   "dt_model_list_backward: block [%lld, %lld) is not the block last scored for this "
                   "forward pass (internal error)",
                   (long long)lo, (long long)(lo + k));
  DT_TRY(begin_backward(m, b));
  return m->version == DT_V3 ? gemm_bwd(m, b, lo, k, dscores) : pairs_bwd(m, b, lo, k, dscores);
}

int dt_list_finish(dt_model *m, const dt_batch *b) {
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  dt_list_work *L = w->list;
  const int D = m->dim, SH = m->static_hidden;
  const int64_t n = b->n;
  const float *alpha = alpha_of(m);
  L->bwd_serial = 0;
  float *slot = NULL;
  if (m->version == DT_V3) {
    /* U_t = a_t x_t: d a_t = <dU_t, x_t>, d x_t = a_t dU_t */
    const float *x[3] = {w->eu, w->hd, w->up};
    float *dx[3] = {L->d_eu, L->d_hd, L->d_up};
    if (L->d_eu) DT_TRY(be->zero(be, L->d_eu, (size_t)(n * D) * sizeof(float)));
    if (L->d_up) DT_TRY(be->zero(be, L->d_up, (size_t)(n * D) * sizeof(float)));
    for (int t = 0; t < 3; t++) {
      if (!L->u[t]) continue;
      DT_TRY(be->mix3_bwd(be, alpha, t == 0 ? x[0] : NULL, t == 1 ? x[1] : NULL, t == 2 ? x[2] : NULL, L->du[t],
                          L->dalpha_tmp, t == 0 ? dx[0] : NULL, t == 1 ? dx[1] : NULL, t == 2 ? dx[2] : NULL, n, 1, D));
      DT_TRY(be->axpy(be, L->d_alpha, L->dalpha_tmp, n * 3, 1.0f));
    }
    if (m->use_content)
      DT_TRY(dt_linear_bwd(be, L->d_up, w->eu, dt_linear_of(m, m->pv.content_user_proj), L->d_eu, 1, n, D, D));
    if (L->d_eu) {
      DT_TRY(dt_model_grad_slot(m, DT_TABLE_USER, b->ids_user, n, &slot));
      DT_TRY(be->copy(be, slot, L->d_eu, (size_t)(n * D) * sizeof(float)));
    }
  } else if (has_static(m)) {
    /* the example half of static.fc1: dW1[:, :D] += dU^T e_u, d e_u = dU W1[:, :D] */
    dt_linear fc1 = dt_linear_of(m, m->pv.static_fc1);
    DT_TRY(be->gemm(be, 1, 0, SH, D, (int)n, 1.0f, L->d_upart, SH, L->eu, D, 1.0f, fc1.dw, 2 * D));
    DT_TRY(dt_model_grad_slot(m, DT_TABLE_USER, b->ids_user, n, &slot));
    DT_TRY(be->gemm(be, 0, 0, (int)n, D, SH, 1.0f, L->d_upart, SH, fc1.w, 2 * D, 0.0f, slot, D));
  }
  if (m->use_dynamic) DT_TRY(be->axpy(be, w->d_hd, L->d_hd, n * D, 1.0f));
  return be->axpy(be, w->d_alpha, L->d_alpha, n * 3, 1.0f);
}
