/* model_eval.c: what evaluation and recommendation need beyond a forward
 * pass: the content tower's outputs for every item, and v3's score in
 * factorised form for ranking a whole catalogue with one GEMM. */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "model_internal.h"

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
    if (!rc) rc = dt_content_fwd(m, ids, rows, NULL, NULL, m->work->c1, m->work->c2, m->item_hc + lo * m->dim);
  }
  free(ids_host);
  if (ids) be->free(be, ids);
  return rc;
}

void dt_model_drop_item_cache(dt_model *m) {
  if (m->item_hc) m->be->free(m->be, m->item_hc);
  m->item_hc = NULL;
}

int dt_model_item_vectors(dt_model *m, float *items, float *bias) {
  const int D = m->dim;
  const int64_t I = m->n_items;
  if (m->version != DT_V3)
    return dt_fail(DT_EXIT_RUNTIME, "item vectors of a %s model (v3 only; internal error)", m->cfg->model_version);
  memset(items, 0, (size_t)(I * 3 * D) * sizeof(float));
  float *tmp = dt_xmalloc((size_t)(I * D) * sizeof(float));
  /* e_i, then d_{i+1} (row 0 of dynamic.item_emb is padding), then h_c(i);
   * an absent tower's part stays 0 */
  int rc = m->use_static ? dt_table_read_rows(&m->tables[DT_TABLE_ITEM], 0, I, tmp) : DT_OK;
  for (int64_t i = 0; i < I && !rc && m->use_static; i++)
    memcpy(items + i * 3 * D, tmp + i * D, (size_t)D * sizeof(float));
  if (!rc && m->use_dynamic) {
    rc = dt_table_read_rows(&m->tables[DT_TABLE_DYN_ITEM], 1, I, tmp);
    for (int64_t i = 0; i < I && !rc; i++) memcpy(items + i * 3 * D + D, tmp + i * D, (size_t)D * sizeof(float));
  }
  if (!rc && m->use_content) {
    rc = m->be->download(m->be, tmp, m->item_hc, (size_t)(I * D) * sizeof(float));
    for (int64_t i = 0; i < I && !rc; i++) memcpy(items + i * 3 * D + 2 * D, tmp + i * D, (size_t)D * sizeof(float));
  }
  if (!rc) rc = dt_table_read_rows(&m->tables[DT_TABLE_ITEM_BIAS], 0, I, bias);
  free(tmp);
  return rc;
}

int dt_model_user_vectors(dt_model *m, int64_t n, float *users) {
  const int D = m->dim;
  dt_backend *be = m->be;
  dt_model_work *w = m->work;
  if (m->version != DT_V3)
    return dt_fail(DT_EXIT_RUNTIME, "user vectors of a %s model (v3 only; internal error)", m->cfg->model_version);
  memset(users, 0, (size_t)(n * 3 * D) * sizeof(float));
  if (n == 0) return DT_OK;
  float *alpha = dt_xmalloc((size_t)(n * 3) * sizeof(float));
  float *part = dt_xmalloc((size_t)(n * D) * sizeof(float));
  int rc = be->download(be, alpha, m->use_gate ? w->alpha : w->alpha_const, (size_t)(n * 3) * sizeof(float));
  /* [a_s e_u, a_d h_d, a_c P e_u] */
  const float *srcs[3] = {m->use_static ? w->eu : NULL, m->use_dynamic ? w->hd : NULL, m->use_content ? w->up : NULL};
  for (int k = 0; k < 3 && !rc; k++) {
    if (!srcs[k]) continue;
    rc = be->download(be, part, srcs[k], (size_t)(n * D) * sizeof(float));
    for (int64_t e = 0; e < n && !rc; e++)
      for (int d = 0; d < D; d++) users[e * 3 * D + k * D + d] = alpha[e * 3 + k] * part[e * D + d];
  }
  free(alpha);
  free(part);
  return rc;
}
