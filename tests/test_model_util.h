/* Helpers for model tests: a tiny in-memory data set and small configs. */
#ifndef DTRAIN_TEST_MODEL_UTIL_H
#define DTRAIN_TEST_MODEL_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* n_users users, each with `per_user` interactions (train = first 70%,
 * then one valid, rest test), distinct items per user, timestamps
 * increasing with varied hours; a random TF-IDF CSR with `vocab` columns. */
static void tiny_dataset(dt_dataset *ds, int n_users, int n_items, int per_user, int vocab, int L, uint64_t seed) {
  memset(ds, 0, sizeof *ds);
  ds->n_users = n_users;
  ds->n_items = n_items;
  ds->history_len = L;
  ds->n_interactions = (int64_t)n_users * per_user;
  ds->user_ptr = calloc((size_t)n_users + 1, sizeof(int64_t));
  ds->user_items = calloc((size_t)ds->n_interactions, sizeof(int32_t));
  ds->user_ts = calloc((size_t)ds->n_interactions, sizeof(int64_t));
  ds->user_n_train = calloc((size_t)n_users, sizeof(int32_t));
  ds->user_n_valid = calloc((size_t)n_users, sizeof(int32_t));
  ds->train_sorted_ptr = calloc((size_t)n_users + 1, sizeof(int64_t));
  int32_t ntr = per_user * 7 / 10;
  if (ntr < 1) ntr = 1;
  ds->train_sorted = calloc((size_t)n_users * (size_t)ntr, sizeof(int32_t));
  for (int u = 0; u < n_users; u++) {
    ds->user_ptr[u + 1] = ds->user_ptr[u] + per_user;
    int64_t ts = 1500000000 + (int64_t)u * 7919;
    for (int k = 0; k < per_user; k++) {
      dt_rand4 r = dt_philox(seed, DT_RNG_TEST, (uint32_t)u, (uint32_t)k, 11, 0);
      int32_t item;
      for (int tries = 0;; tries++) { /* distinct items per user */
        item = (int32_t)((r.v[0] + (uint32_t)tries * 7u) % (uint32_t)n_items);
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= ds->user_items[ds->user_ptr[u] + j] == item;
        if (!dup) break;
      }
      ds->user_items[ds->user_ptr[u] + k] = item;
      ts += 3600 + (int64_t)(r.v[1] % 200000);
      ds->user_ts[ds->user_ptr[u] + k] = ts;
    }
    ds->user_n_train[u] = ntr;
    ds->user_n_valid[u] = per_user - ntr > 1 ? 1 : 0;
    ds->train_sorted_ptr[u + 1] = ds->train_sorted_ptr[u] + ntr;
    memcpy(ds->train_sorted + ds->train_sorted_ptr[u], ds->user_items + ds->user_ptr[u], (size_t)ntr * sizeof(int32_t));
    qsort(ds->train_sorted + ds->train_sorted_ptr[u], (size_t)ntr, sizeof(int32_t), cmp_i32);
  }
  ds->vocab_size = vocab;
  ds->tfidf_indptr = calloc((size_t)n_items + 1, sizeof(int64_t));
  ds->tfidf_indices = calloc((size_t)n_items * (size_t)vocab, sizeof(int32_t));
  ds->tfidf_values = calloc((size_t)n_items * (size_t)vocab, sizeof(float));
  int64_t nnz = 0;
  for (int i = 0; i < n_items; i++) {
    for (int j = 0; j < vocab; j++) {
      dt_rand4 r = dt_philox(seed, DT_RNG_TEST, (uint32_t)i, (uint32_t)j, 22, 0);
      if (r.v[0] % 3 == 0) {
        ds->tfidf_indices[nnz] = j;
        ds->tfidf_values[nnz] = 0.2f + dt_u01(r.v[1]);
        nnz++;
      }
    }
    ds->tfidf_indptr[i + 1] = nnz;
  }
}

static void tiny_dataset_free(dt_dataset *ds) {
  free(ds->user_ptr);
  free(ds->user_items);
  free(ds->user_ts);
  free(ds->user_n_train);
  free(ds->user_n_valid);
  free(ds->train_sorted_ptr);
  free(ds->train_sorted);
  free(ds->tfidf_indptr);
  free(ds->tfidf_indices);
  free(ds->tfidf_values);
  memset(ds, 0, sizeof *ds);
}

/* A config with small shapes for version/variant/history and the
 * sequence encoder ("gru" or "sasrec" with `heads` heads, 2 blocks). */
static inline int small_config_enc(dt_config *cfg, const char *version, const char *variant, const char *history, int L,
                                   const char *encoder, int heads) {
  char v[64], a[64], h[64], l[64], e[64], hd[64];
  snprintf(v, sizeof v, "model.version=%s", version);
  snprintf(a, sizeof a, "model.variant=%s", variant);
  snprintf(h, sizeof h, "model.history=%s", history);
  snprintf(l, sizeof l, "data.history_len=%d", L);
  snprintf(e, sizeof e, "model.encoder=%s", encoder);
  snprintf(hd, sizeof hd, "model.sasrec_heads=%d", heads);
  const char *sets[] = {v,
                        a,
                        h,
                        l,
                        e,
                        hd,
                        "model.dim=6",
                        "model.gru_hidden=5",
                        "model.content_hidden1=7",
                        "model.content_hidden2=6",
                        "model.gate_hidden=4",
                        "model.head_hidden=3",
                        "model.static_hidden=5",
                        "backend.threads=1"};
  int rc = dt_config_build(NULL, sets, (int)(sizeof sets / sizeof sets[0]), cfg);
  if (rc) fprintf(stderr, "config: %s\n", dt_error_message());
  return rc;
}

/* A config with small shapes for version/variant/history (GRU encoder). */
static inline int small_config(dt_config *cfg, const char *version, const char *variant, const char *history, int L) {
  return small_config_enc(cfg, version, variant, history, L, "gru", 1);
}

#endif
