/* batch_list.c: the item list the softmax losses score every example of a
 * training batch against (batch.h dt_batch_build_list): sampled_softmax's
 * negatives shared by the global batch, or softmax's whole catalogue. */
#include <stdlib.h>
#include <string.h>

#include "batch/batch_internal.h"
#include "dtrain/batch.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

struct dt_batch_list {
  dt_backend *be;
  int64_t n, cap, n_ex, cap_ex;
  /* host; the dev struct mirrors them in backend memory */
  int32_t *item, *ids_item, *ids_bias, *ids_dyn, *target;
  int64_t *key;
  struct {
    int32_t *item, *ids_item, *ids_bias, *ids_dyn, *target;
    int64_t *key;
  } dev;
};

static int reserve(dt_batch_list *l, int64_t n, int64_t n_ex) {
  dt_backend *be = l->be;
  if (n > l->cap) {
    int64_t c = n + n / 4 + 16;
    l->cap = c;
    int32_t **h[] = {&l->item, &l->ids_item, &l->ids_bias, &l->ids_dyn};
    int32_t **d[] = {&l->dev.item, &l->dev.ids_item, &l->dev.ids_bias, &l->dev.ids_dyn};
    for (int i = 0; i < 4; i++) {
      *h[i] = dt_xrealloc(*h[i], (size_t)c * sizeof(int32_t));
      DT_TRY(dt_backend_replace(be, (void **)d[i], (size_t)c * sizeof(int32_t)));
    }
    l->key = dt_xrealloc(l->key, (size_t)c * sizeof(int64_t));
    DT_TRY(dt_backend_replace(be, (void **)&l->dev.key, (size_t)c * sizeof(int64_t)));
  }
  if (n_ex > l->cap_ex) {
    int64_t c = n_ex + n_ex / 4 + 16;
    l->cap_ex = c;
    l->target = dt_xrealloc(l->target, (size_t)c * sizeof(int32_t));
    DT_TRY(dt_backend_replace(be, (void **)&l->dev.target, (size_t)c * sizeof(int32_t)));
  }
  return DT_OK;
}

int dt_batch_list_build(dt_batch_list **lst, dt_backend *be, int64_t n_items, const int32_t *cand_host, dt_batch *b,
                        int64_t n_shared, uint64_t seed, int64_t step) {
  if (!*lst) {
    *lst = dt_xcalloc(1, sizeof(dt_batch_list));
    (*lst)->be = be;
  }
  dt_batch_list *l = *lst;
  const int catalogue = n_shared == DT_BATCH_LIST_CATALOGUE;
  if (!catalogue && n_shared < 1)
    return dt_fail(DT_EXIT_RUNTIME, "dt_batch_build_list: %lld shared negatives (internal error)", (long long)n_shared);
  const int64_t n = catalogue ? n_items : n_shared;
  DT_TRY(reserve(l, n, b->n));
  for (int64_t q = 0; q < n; q++) {
    int32_t item = (int32_t)q;
    if (!catalogue) { /* uniform, without rejection: a function of (seed, step, q) only */
      dt_rand4 r =
          dt_philox(seed, DT_RNG_SHARED_NEGATIVE, (uint32_t)step, (uint32_t)((uint64_t)step >> 32), (uint32_t)q, 0);
      item = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)n_items);
    }
    l->item[q] = l->ids_item[q] = l->ids_bias[q] = item;
    l->ids_dyn[q] = item + 1; /* row 0 of dynamic.item_emb is padding */
    l->key[q] = -1 - q;       /* dropout keys of the content rows: negative, unlike every candidate row's */
  }
  for (int64_t e = 0; e < b->n; e++) l->target[e] = catalogue ? cand_host[e * b->c] : -1;
  l->n = n;
  l->n_ex = b->n;
  return dt_batch_list_upload(l, b);
}

int dt_batch_list_upload(dt_batch_list *l, dt_batch *b) {
  dt_backend *be = l->be;
  const size_t n4 = (size_t)l->n * sizeof(int32_t);
  if (l->n > 0) {
    DT_TRY(be->upload(be, l->dev.item, l->item, n4));
    DT_TRY(be->upload(be, l->dev.ids_item, l->ids_item, n4));
    DT_TRY(be->upload(be, l->dev.ids_bias, l->ids_bias, n4));
    DT_TRY(be->upload(be, l->dev.ids_dyn, l->ids_dyn, n4));
    DT_TRY(be->upload(be, l->dev.key, l->key, (size_t)l->n * sizeof(int64_t)));
  }
  if (l->n_ex > 0) DT_TRY(be->upload(be, l->dev.target, l->target, (size_t)l->n_ex * sizeof(int32_t)));
  b->n_list = l->n;
  b->list_item = l->dev.item;
  b->list_ids_item = l->dev.ids_item;
  b->list_ids_bias = l->dev.ids_bias;
  b->list_ids_dyn = l->dev.ids_dyn;
  b->list_key = l->dev.key;
  b->list_target = l->dev.target;
  return DT_OK;
}

int32_t *dt_batch_list_ids(dt_batch_list *l, const dt_model *m, int table, int64_t *count) {
  *count = 0;
  if (!l || l->n == 0) return NULL;
  int32_t *ids = NULL;
  switch (table) {
    case DT_TABLE_ITEM: ids = l->ids_item; break;
    case DT_TABLE_ITEM_BIAS: ids = m->version == DT_V3 ? l->ids_bias : NULL; break;
    case DT_TABLE_DYN_ITEM: ids = m->version == DT_V3 && m->use_dynamic ? l->ids_dyn : NULL; break;
    default: break;
  }
  if (ids) *count = l->n;
  return ids;
}

void dt_batch_list_free(dt_batch_list *l) {
  if (!l) return;
  void *d[] = {l->dev.item, l->dev.ids_item, l->dev.ids_bias, l->dev.ids_dyn, l->dev.target, l->dev.key};
  for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
    if (d[i]) l->be->free(l->be, d[i]);
  void *h[] = {l->item, l->ids_item, l->ids_bias, l->ids_dyn, l->target, l->key};
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
  free(l);
}
