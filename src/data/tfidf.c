/* tfidf.c: tokens, vocabulary and L2-normalised TF-IDF rows (prep.h,
 * MODEL.md section 2 step 7). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/prep.h"

static int is_alnum_ascii(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void dt_prep_tokenize(const char *text, void (*fn)(const char *tok, size_t len, void *ctx), void *ctx) {
  size_t n = strlen(text);
  char *low = dt_xmalloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    low[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  low[n] = '\0';
  size_t i = 0;
  while (i < n) {
    if (!is_alnum_ascii((unsigned char)low[i])) {
      i++;
      continue;
    }
    size_t start = i;
    while (i < n && is_alnum_ascii((unsigned char)low[i])) i++;
    if (i - start >= 2) fn(low + start, i - start, ctx);
  }
  free(low);
}

typedef struct {
  dt_strtab *terms;
  int32_t *ids;
  int64_t n, cap;
} doc_tokens;

static void add_token(const char *tok, size_t len, void *ctx) {
  doc_tokens *d = ctx;
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 256;
    d->ids = dt_xrealloc(d->ids, (size_t)d->cap * sizeof(int32_t));
  }
  d->ids[d->n++] = (int32_t)dt_strtab_intern(d->terms, tok, len);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static const dt_strtab *g_terms; /* qsort context */
static const int64_t *g_df;

/* document frequency descending, then bytewise */
static int cmp_by_df(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (g_df[x] != g_df[y]) return g_df[x] > g_df[y] ? -1 : 1;
  return strcmp(dt_strtab_get(g_terms, x), dt_strtab_get(g_terms, y));
}

static int cmp_bytes(const void *a, const void *b) {
  return strcmp(dt_strtab_get(g_terms, *(const int32_t *)a), dt_strtab_get(g_terms, *(const int32_t *)b));
}

typedef struct {
  int32_t col;
  int32_t tf;
} entry;

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  return (x->col > y->col) - (x->col < y->col);
}

void dt_prep_tfidf(char *const *docs, int64_t n_items, int64_t max_terms, int64_t min_df, dt_dataset *ds) {
  dt_strtab terms = {0};
  doc_tokens d = {&terms, NULL, 0, 0};
  /* each document's distinct terms with their counts, as one CSR */
  int64_t *doc_ptr = dt_xcalloc((size_t)n_items + 1, sizeof(int64_t));
  int32_t *pair_term = NULL, *pair_tf = NULL;
  int64_t n_pairs = 0, pair_cap = 0;
  int64_t *df = NULL, df_cap = 0;
  for (int64_t i = 0; i < n_items; i++) {
    d.n = 0;
    dt_prep_tokenize(docs[i], add_token, &d);
    if (terms.n > df_cap) {
      int64_t cap = df_cap ? df_cap : 4096;
      while (cap < terms.n) cap *= 2;
      df = dt_xrealloc(df, (size_t)cap * sizeof(int64_t));
      memset(df + df_cap, 0, (size_t)(cap - df_cap) * sizeof(int64_t));
      df_cap = cap;
    }
    if (d.n > 1) qsort(d.ids, (size_t)d.n, sizeof(int32_t), cmp_i32);
    for (int64_t j = 0; j < d.n;) {
      int64_t k = j;
      while (k < d.n && d.ids[k] == d.ids[j]) k++;
      if (n_pairs == pair_cap) {
        pair_cap = pair_cap ? pair_cap * 2 : 65536;
        pair_term = dt_xrealloc(pair_term, (size_t)pair_cap * sizeof(int32_t));
        pair_tf = dt_xrealloc(pair_tf, (size_t)pair_cap * sizeof(int32_t));
      }
      pair_term[n_pairs] = d.ids[j];
      pair_tf[n_pairs] = (int32_t)(k - j);
      n_pairs++;
      df[d.ids[j]]++;
      j = k;
    }
    doc_ptr[i + 1] = n_pairs;
  }
  free(d.ids);

  /* vocabulary: the max_terms most frequent among df >= min_df, ties bytewise */
  int32_t *cand = dt_xmalloc((size_t)(terms.n ? terms.n : 1) * sizeof(int32_t));
  int64_t n_cand = 0;
  for (int64_t t = 0; t < terms.n; t++)
    if (df[t] >= min_df) cand[n_cand++] = (int32_t)t;
  g_terms = &terms;
  g_df = df;
  qsort(cand, (size_t)n_cand, sizeof(int32_t), cmp_by_df);
  int64_t V = n_cand < max_terms ? n_cand : max_terms;
  /* columns in bytewise term order */
  qsort(cand, (size_t)V, sizeof(int32_t), cmp_bytes);
  g_terms = NULL;
  g_df = NULL;
  int32_t *col_of = dt_xmalloc((size_t)(terms.n ? terms.n : 1) * sizeof(int32_t));
  for (int64_t t = 0; t < terms.n; t++) col_of[t] = -1;
  ds->vocab = dt_xmalloc((size_t)(V ? V : 1) * sizeof(char *));
  double *idf = dt_xmalloc((size_t)(V ? V : 1) * sizeof(double));
  for (int64_t c = 0; c < V; c++) {
    col_of[cand[c]] = (int32_t)c;
    ds->vocab[c] = dt_xstrdup(dt_strtab_get(&terms, cand[c]));
    idf[c] = log((1.0 + (double)n_items) / (1.0 + (double)df[cand[c]])) + 1.0;
  }
  ds->vocab_size = V;

  /* rows */
  int64_t nnz = 0;
  for (int64_t p = 0; p < n_pairs; p++) nnz += col_of[pair_term[p]] >= 0;
  ds->tfidf_indptr = dt_xmalloc(((size_t)n_items + 1) * sizeof(int64_t));
  ds->tfidf_indices = dt_xmalloc((size_t)(nnz ? nnz : 1) * sizeof(int32_t));
  ds->tfidf_values = dt_xmalloc((size_t)(nnz ? nnz : 1) * sizeof(float));
  entry *row = NULL;
  int64_t row_cap = 0, w = 0;
  ds->tfidf_indptr[0] = 0;
  for (int64_t i = 0; i < n_items; i++) {
    int64_t m = 0;
    int64_t len = doc_ptr[i + 1] - doc_ptr[i];
    if (len > row_cap) {
      row_cap = len;
      row = dt_xrealloc(row, (size_t)row_cap * sizeof(entry));
    }
    for (int64_t p = doc_ptr[i]; p < doc_ptr[i + 1]; p++) {
      int32_t c = col_of[pair_term[p]];
      if (c < 0) continue;
      row[m].col = c;
      row[m].tf = pair_tf[p];
      m++;
    }
    if (m > 1) qsort(row, (size_t)m, sizeof(entry), cmp_entry);
    double norm2 = 0;
    for (int64_t j = 0; j < m; j++) {
      double v = (double)row[j].tf * idf[row[j].col];
      norm2 += v * v;
    }
    double inv = norm2 > 0 ? 1.0 / sqrt(norm2) : 0.0;
    for (int64_t j = 0; j < m; j++) {
      ds->tfidf_indices[w] = row[j].col;
      ds->tfidf_values[w] = (float)((double)row[j].tf * idf[row[j].col] * inv);
      w++;
    }
    ds->tfidf_indptr[i + 1] = w;
  }
  ds->summary.vocab_size = V;
  ds->summary.tfidf_nnz = nnz;
  free(row);
  free(idf);
  free(col_of);
  free(cand);
  free(df);
  free(pair_term);
  free(pair_tf);
  free(doc_ptr);
  dt_strtab_free(&terms);
}
