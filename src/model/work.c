/* work.c: the model's activation buffers, grown on demand. */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "model_internal.h"

/* Reallocates *p to hold `count` floats (contents are not kept). */
static int regrow(dt_backend *be, float **p, int64_t count) {
  return dt_backend_replace(be, (void **)p, count > 0 ? (size_t)count * sizeof(float) : 0);
}

static int64_t grown(int64_t need, int64_t cap) {
  if (need <= cap) return cap;
  int64_t c = need + need / 4 + 64;
  return c;
}

static int fill_alpha_const(dt_model *m, int64_t rows) {
  if (m->use_gate) return DT_OK;
  float a[3];
  if (m->variant == DT_VARIANT_STATIC_ONLY) {
    a[0] = 1.0f;
    a[1] = 0.0f;
    a[2] = 0.0f;
  } else if (m->variant == DT_VARIANT_DYNAMIC_ONLY) {
    a[0] = 0.0f;
    a[1] = 1.0f;
    a[2] = 0.0f;
  } else { /* no_attention: fixed 1/3 each */
    a[0] = a[1] = a[2] = 1.0f / 3.0f;
  }
  float *host = dt_xmalloc((size_t)rows * 3 * sizeof(float));
  for (int64_t i = 0; i < rows; i++) memcpy(host + 3 * i, a, sizeof a);
  int rc = m->be->upload(m->be, m->work->alpha_const, host, (size_t)rows * 3 * sizeof(float));
  free(host);
  return rc;
}

int dt_model_work_ensure(dt_model *m, int64_t n, int64_t nc, int64_t t) {
  dt_backend *be = m->be;
  if (!m->work) m->work = dt_xcalloc(1, sizeof(dt_model_work));
  dt_model_work *w = m->work;
  const int64_t D = m->dim, H = m->gru_hidden;
  if (n > w->cap_n) {
    int64_t c = grown(n, w->cap_n);
    w->cap_n = c;
    DT_TRY(regrow(be, &w->eu, c * D));
    DT_TRY(regrow(be, &w->d_eu, c * D));
    DT_TRY(regrow(be, &w->up, c * D));
    DT_TRY(regrow(be, &w->d_up, c * D));
    DT_TRY(regrow(be, &w->hdin, c * H));
    DT_TRY(regrow(be, &w->d_hdin, c * H));
    DT_TRY(regrow(be, &w->hd, c * D));
    DT_TRY(regrow(be, &w->d_hd, c * D));
    DT_TRY(regrow(be, &w->g1, c * m->gate_hidden));
    DT_TRY(regrow(be, &w->d_g1, c * m->gate_hidden));
    DT_TRY(regrow(be, &w->logits, c * 3));
    DT_TRY(regrow(be, &w->d_logits, c * 3));
    DT_TRY(regrow(be, &w->alpha, c * 3));
    DT_TRY(regrow(be, &w->d_alpha, c * 3));
    DT_TRY(regrow(be, &w->alpha_const, c * 3));
    DT_TRY(fill_alpha_const(m, c));
  }
  if (nc > w->cap_nc) {
    int64_t c = grown(nc, w->cap_nc);
    w->cap_nc = c;
    DT_TRY(regrow(be, &w->eu_rep, c * D));
    DT_TRY(regrow(be, &w->ei, c * D));
    DT_TRY(regrow(be, &w->s1, m->use_static_mlp ? c * m->static_hidden : 0));
    DT_TRY(regrow(be, &w->d_s1, m->use_static_mlp ? c * m->static_hidden : 0));
    DT_TRY(regrow(be, &w->hs, c * D));
    DT_TRY(regrow(be, &w->d_hs, c * D));
    DT_TRY(regrow(be, &w->c1, m->use_content ? c * m->content_h1 : 0));
    DT_TRY(regrow(be, &w->d_c1, m->use_content ? c * m->content_h1 : 0));
    DT_TRY(regrow(be, &w->c2, m->use_content ? c * m->content_h2 : 0));
    DT_TRY(regrow(be, &w->d_c2, m->use_content ? c * m->content_h2 : 0));
    DT_TRY(regrow(be, &w->hc, c * D));
    DT_TRY(regrow(be, &w->d_hc, c * D));
    DT_TRY(regrow(be, &w->di, c * D));
    DT_TRY(regrow(be, &w->z, c * D));
    DT_TRY(regrow(be, &w->d_z, c * D));
    DT_TRY(regrow(be, &w->hh, m->use_head ? c * m->head_hidden : 0));
    DT_TRY(regrow(be, &w->d_hh, m->use_head ? c * m->head_hidden : 0));
    DT_TRY(regrow(be, &w->scores, c));
    DT_TRY(regrow(be, &w->d_scores, c));
    DT_TRY(regrow(be, &w->ss, c));
    DT_TRY(regrow(be, &w->sd, c));
    DT_TRY(regrow(be, &w->sc, c));
    DT_TRY(regrow(be, &w->d_ss, c));
    DT_TRY(regrow(be, &w->d_sd, c));
    DT_TRY(regrow(be, &w->d_sc, c));
  }
  /* the GRU's per-token buffers (the SASRec encoder keeps its own) */
  if (m->use_dynamic && m->encoder_kind == DT_ENCODER_GRU && (t + 1 > w->cap_t || w->cap_t == 0)) {
    int64_t c = grown(t + 1, w->cap_t);
    w->cap_t = c;
    DT_TRY(regrow(be, &w->x0, c * D));
    DT_TRY(regrow(be, &w->xg0, c * 3 * H));
    DT_TRY(regrow(be, &w->xg1, c * 3 * H));
    DT_TRY(regrow(be, &w->cache0, c * 4 * H));
    DT_TRY(regrow(be, &w->cache1, c * 4 * H));
    DT_TRY(regrow(be, &w->h0, c * H));
    DT_TRY(regrow(be, &w->h1, c * H));
    DT_TRY(regrow(be, &w->x1, c * H));
    DT_TRY(regrow(be, &w->d_h0, c * H));
    DT_TRY(regrow(be, &w->d_h1, c * H));
    DT_TRY(regrow(be, &w->d_x1, c * H));
    DT_TRY(regrow(be, &w->d_xg, c * 3 * H));
    DT_TRY(regrow(be, &w->hg_step, c * 3 * H));
    DT_TRY(regrow(be, &w->d_hg_step, c * 3 * H));
  }
  return DT_OK;
}

void dt_model_work_free(dt_model *m) {
  dt_model_work *w = m->work;
  if (!w) return;
  if (m->encoder && m->encoder->free_work) m->encoder->free_work(m);
  dt_list_work_free(m);
  float **all[] = {&w->eu,          &w->d_eu,   &w->up,     &w->d_up,    &w->hdin,     &w->d_hdin,   &w->hd,
                   &w->d_hd,        &w->g1,     &w->d_g1,   &w->logits,  &w->d_logits, &w->alpha,    &w->d_alpha,
                   &w->alpha_const, &w->eu_rep, &w->ei,     &w->s1,      &w->d_s1,     &w->hs,       &w->d_hs,
                   &w->c1,          &w->d_c1,   &w->c2,     &w->d_c2,    &w->hc,       &w->d_hc,     &w->di,
                   &w->z,           &w->d_z,    &w->hh,     &w->d_hh,    &w->scores,   &w->d_scores, &w->ss,
                   &w->sd,          &w->sc,     &w->d_ss,   &w->d_sd,    &w->d_sc,     &w->x0,       &w->xg0,
                   &w->xg1,         &w->cache0, &w->cache1, &w->h0,      &w->h1,       &w->x1,       &w->d_h0,
                   &w->d_h1,        &w->d_x1,   &w->d_xg,   &w->hg_step, &w->d_hg_step};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (*all[i]) m->be->free(m->be, *all[i]);
  free(w);
  m->work = NULL;
}
