/* prep_steps.c: dedup, k-core, sorted ids, ordering and split (prep.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/prep.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Rows grouped by user: perm lists row indices user by user, in read order
 * within a user (a stable counting sort). ptr has n_users + 1 entries. */
static void group_by_user(const dt_interactions *x, int64_t n_users, int64_t **ptr_out, int64_t **perm_out) {
  int64_t *ptr = dt_xcalloc((size_t)n_users + 1, sizeof(int64_t));
  for (int64_t r = 0; r < x->n; r++) ptr[x->user[r] + 1]++;
  for (int64_t u = 0; u < n_users; u++) ptr[u + 1] += ptr[u];
  int64_t *fill = dt_xmalloc(((size_t)n_users + 1) * sizeof(int64_t));
  memcpy(fill, ptr, ((size_t)n_users + 1) * sizeof(int64_t));
  int64_t *perm = dt_xmalloc((size_t)(x->n ? x->n : 1) * sizeof(int64_t));
  for (int64_t r = 0; r < x->n; r++) perm[fill[x->user[r]]++] = r;
  free(fill);
  *ptr_out = ptr;
  *perm_out = perm;
}

/* Keeps rows with keep[r] != 0, in order. */
static void compact(dt_interactions *x, const unsigned char *keep) {
  int64_t w = 0;
  for (int64_t r = 0; r < x->n; r++) {
    if (!keep[r]) continue;
    x->user[w] = x->user[r];
    x->item[w] = x->item[r];
    x->ts[w] = x->ts[r];
    if (x->has_text) x->text_off[w] = x->text_off[r];
    w++;
  }
  x->n = w;
}

/* ---- Step 1: duplicates --------------------------------------------------------------- */

typedef struct {
  int64_t ts;
  int32_t item;
  int32_t local; /* read order within the user's rows */
} dedup_key;

static int cmp_dedup(const void *a, const void *b) {
  const dedup_key *x = a, *y = b;
  if (x->item != y->item) return x->item < y->item ? -1 : 1;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return (x->local > y->local) - (x->local < y->local);
}

void dt_prep_dedup(dt_interactions *x) {
  if (x->n == 0) return;
  int64_t *ptr, *perm;
  group_by_user(x, x->users.n, &ptr, &perm);
  unsigned char *keep = dt_xcalloc((size_t)x->n, 1);
  int64_t max_deg = 0;
  for (int64_t u = 0; u < x->users.n; u++)
    if (ptr[u + 1] - ptr[u] > max_deg) max_deg = ptr[u + 1] - ptr[u];
  dedup_key *k = dt_xmalloc((size_t)max_deg * sizeof(dedup_key));
  for (int64_t u = 0; u < x->users.n; u++) {
    int64_t n = ptr[u + 1] - ptr[u];
    for (int64_t j = 0; j < n; j++) {
      int64_t r = perm[ptr[u] + j];
      k[j].ts = x->ts[r];
      k[j].item = x->item[r];
      k[j].local = (int32_t)j;
    }
    qsort(k, (size_t)n, sizeof *k, cmp_dedup);
    for (int64_t j = 0; j < n; j++)
      if (j == 0 || k[j].item != k[j - 1].item) keep[perm[ptr[u] + k[j].local]] = 1;
  }
  free(k);
  compact(x, keep);
  free(keep);
  free(ptr);
  free(perm);
}

/* ---- Step 2: k-core --------------------------------------------------------------------- */

void dt_prep_kcore(dt_interactions *x, int64_t k, int64_t *passes) {
  int64_t n_passes = 0;
  int64_t *du = dt_xmalloc((size_t)(x->users.n ? x->users.n : 1) * sizeof(int64_t));
  int64_t *di = dt_xmalloc((size_t)(x->items.n ? x->items.n : 1) * sizeof(int64_t));
  unsigned char *keep = dt_xmalloc((size_t)(x->n ? x->n : 1));
  for (;;) {
    memset(du, 0, (size_t)x->users.n * sizeof(int64_t));
    memset(di, 0, (size_t)x->items.n * sizeof(int64_t));
    for (int64_t r = 0; r < x->n; r++) {
      du[x->user[r]]++;
      di[x->item[r]]++;
    }
    int64_t removed = 0;
    for (int64_t r = 0; r < x->n; r++) {
      keep[r] = du[x->user[r]] >= k && di[x->item[r]] >= k;
      removed += !keep[r];
    }
    if (removed == 0) break;
    n_passes++;
    compact(x, keep);
  }
  free(du);
  free(di);
  free(keep);
  if (passes) *passes = n_passes;
}

/* ---- Step 3: sorted ids ------------------------------------------------------------------ */

static const dt_strtab *g_sort_tab; /* qsort has no context argument in C11 */

static int cmp_ids(const void *a, const void *b) {
  /* strcmp compares as unsigned char: bytewise order */
  return strcmp(dt_strtab_get(g_sort_tab, *(const int32_t *)a), dt_strtab_get(g_sort_tab, *(const int32_t *)b));
}

/* The present ids of `tab` sorted; remaps col[] in place. */
static char **sorted_ids(const dt_strtab *tab, int32_t *col, int64_t n_rows, int64_t *n_out, int32_t **raw_out) {
  int32_t *newidx = dt_xmalloc((size_t)(tab->n ? tab->n : 1) * sizeof(int32_t));
  for (int64_t i = 0; i < tab->n; i++) newidx[i] = -1;
  int64_t n = 0;
  for (int64_t r = 0; r < n_rows; r++)
    if (newidx[col[r]] < 0) newidx[col[r]] = 0, n++;
  int32_t *raw = dt_xmalloc((size_t)(n ? n : 1) * sizeof(int32_t));
  int64_t j = 0;
  for (int64_t i = 0; i < tab->n; i++)
    if (newidx[i] == 0) raw[j++] = (int32_t)i;
  g_sort_tab = tab;
  qsort(raw, (size_t)n, sizeof(int32_t), cmp_ids);
  g_sort_tab = NULL;
  char **ids = dt_xmalloc((size_t)(n ? n : 1) * sizeof(char *));
  for (int64_t i = 0; i < n; i++) {
    newidx[raw[i]] = (int32_t)i;
    ids[i] = dt_xstrdup(dt_strtab_get(tab, raw[i]));
  }
  for (int64_t r = 0; r < n_rows; r++) col[r] = newidx[col[r]];
  free(newidx);
  *n_out = n;
  if (raw_out)
    *raw_out = raw;
  else
    free(raw);
  return ids;
}

void dt_prep_index(dt_interactions *x, dt_dataset *ds, int32_t **item_raw) {
  ds->user_ids = sorted_ids(&x->users, x->user, x->n, &ds->n_users, NULL);
  ds->item_ids = sorted_ids(&x->items, x->item, x->n, &ds->n_items, item_raw);
  dt_strtab_free(&x->users);
  dt_strtab_free(&x->items);
}

/* ---- Steps 4-5: order, split, lists ------------------------------------------------------ */

/* A row as one sortable record: (timestamp, user, item). */
typedef struct {
  uint64_t hi; /* timestamp with the sign bit flipped: unsigned order = signed order */
  uint64_t lo; /* user << 32 | item */
} order_rec;

/* Stable LSD radix sort of records by (hi, lo), a byte per pass; passes
 * where every record has the same byte are skipped. */
static void radix_sort(order_rec *a, int64_t n) {
  order_rec *buf = dt_xmalloc((size_t)(n ? n : 1) * sizeof(order_rec));
  order_rec *src = a, *dst = buf;
  int64_t count[256];
  for (int pass = 0; pass < 16; pass++) {
    int word = pass < 8 ? 0 : 1; /* lo first (least significant) */
    int shift = (pass % 8) * 8;
    memset(count, 0, sizeof count);
    for (int64_t j = 0; j < n; j++) count[((word ? src[j].hi : src[j].lo) >> shift) & 0xff]++;
    int trivial = 0;
    for (int b = 0; b < 256; b++)
      if (count[b] == n) trivial = 1;
    if (trivial) continue;
    int64_t sum = 0;
    for (int b = 0; b < 256; b++) {
      int64_t c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (int64_t j = 0; j < n; j++) dst[count[((word ? src[j].hi : src[j].lo) >> shift) & 0xff]++] = src[j];
    order_rec *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
  free(buf);
}

static void split_alloc(dt_split *s, int64_t n) {
  s->n = 0;
  size_t m = (size_t)(n ? n : 1);
  s->user = dt_xmalloc(m * sizeof(int32_t));
  s->pos = dt_xmalloc(m * sizeof(int32_t));
  s->item = dt_xmalloc(m * sizeof(int32_t));
  s->ts = dt_xmalloc(m * sizeof(int64_t));
}

int dt_prep_split(const dt_interactions *x, int leave_one_out, double train_frac, double valid_frac, dt_dataset *ds) {
  int64_t N = x->n, U = ds->n_users;
  if (N > INT32_MAX)
    return dt_fail(DT_EXIT_DATA, "%lld interactions: positions are 32-bit, at most %d are supported", (long long)N,
                   INT32_MAX);
  order_rec *rec = dt_xmalloc((size_t)(N ? N : 1) * sizeof(order_rec));
  for (int64_t r = 0; r < N; r++) {
    rec[r].hi = (uint64_t)x->ts[r] ^ (1ull << 63);
    rec[r].lo = ((uint64_t)(uint32_t)x->user[r] << 32) | (uint32_t)x->item[r];
  }
  radix_sort(rec, N);

  /* which split each row (in global order) goes to: 0 train, 1 valid, 2 test, 3 dropped */
  unsigned char *where = dt_xmalloc((size_t)(N ? N : 1));
  int64_t *cnt = dt_xcalloc((size_t)U + 1, sizeof(int64_t));
  int64_t *seen = dt_xcalloc((size_t)U + 1, sizeof(int64_t));
  int64_t *ntrain = dt_xcalloc((size_t)U + 1, sizeof(int64_t));
  for (int64_t g = 0; g < N; g++) cnt[(int64_t)(rec[g].lo >> 32)]++;
  ds->summary.dropped_valid = ds->summary.dropped_test = 0;
  if (leave_one_out) {
    for (int64_t g = 0; g < N; g++) {
      int64_t u = (int64_t)(rec[g].lo >> 32);
      int64_t k = seen[u]++; /* position in the user's list */
      where[g] = cnt[u] < 3 ? 0 : k == cnt[u] - 1 ? 2 : k == cnt[u] - 2 ? 1 : 0;
    }
  } else {
    /* floor as in the spec; the product is exact enough that 0.7 * N
     * rounds the way Python's int(0.7 * N) does */
    int64_t n_train = (int64_t)(train_frac * (double)N);
    int64_t n_valid = (int64_t)(valid_frac * (double)N);
    if (n_train + n_valid > N) n_valid = N - n_train;
    for (int64_t g = 0; g < N; g++) {
      where[g] = g < n_train ? 0 : g < n_train + n_valid ? 1 : 2;
      if (where[g] == 0) ntrain[(int64_t)(rec[g].lo >> 32)]++;
    }
    for (int64_t g = 0; g < N; g++) {
      if (where[g] == 0 || ntrain[(int64_t)(rec[g].lo >> 32)] > 0) continue;
      if (where[g] == 1) ds->summary.dropped_valid++;
      if (where[g] == 2) ds->summary.dropped_test++;
      where[g] = 3;
    }
  }

  /* per-user lists of the kept rows, in global order */
  ds->user_ptr = dt_xcalloc((size_t)U + 1, sizeof(int64_t));
  ds->user_n_train = dt_xcalloc((size_t)(U ? U : 1), sizeof(int32_t));
  ds->user_n_valid = dt_xcalloc((size_t)(U ? U : 1), sizeof(int32_t));
  int64_t n_split[3] = {0, 0, 0};
  for (int64_t g = 0; g < N; g++) {
    if (where[g] == 3) continue;
    int64_t u = (int64_t)(rec[g].lo >> 32);
    ds->user_ptr[u + 1]++;
    n_split[where[g]]++;
    if (where[g] == 0) ds->user_n_train[u]++;
    if (where[g] == 1) ds->user_n_valid[u]++;
  }
  for (int64_t u = 0; u < U; u++) ds->user_ptr[u + 1] += ds->user_ptr[u];
  int64_t kept = ds->user_ptr[U];
  ds->n_interactions = kept;
  ds->user_items = dt_xmalloc((size_t)(kept ? kept : 1) * sizeof(int32_t));
  ds->user_ts = dt_xmalloc((size_t)(kept ? kept : 1) * sizeof(int64_t));
  dt_split *sp[3] = {&ds->train, &ds->valid, &ds->test};
  for (int s = 0; s < 3; s++) split_alloc(sp[s], n_split[s]);
  memset(seen, 0, ((size_t)U + 1) * sizeof(int64_t));
  for (int64_t g = 0; g < N; g++) {
    if (where[g] == 3) continue;
    int32_t u = (int32_t)(rec[g].lo >> 32), it = (int32_t)(uint32_t)rec[g].lo;
    int64_t ts = (int64_t)(rec[g].hi ^ (1ull << 63));
    int64_t pos = seen[u]++;
    ds->user_items[ds->user_ptr[u] + pos] = it;
    ds->user_ts[ds->user_ptr[u] + pos] = ts;
    dt_split *s = sp[where[g]];
    s->user[s->n] = u;
    s->pos[s->n] = (int32_t)pos;
    s->item[s->n] = it;
    s->ts[s->n] = ts;
    s->n++;
  }
  ds->summary.train = n_split[0];
  ds->summary.valid = n_split[1];
  ds->summary.test = n_split[2];
  ds->summary.eval_users_valid = ds->summary.eval_users_test = 0;
  for (int64_t u = 0; u < U; u++) {
    int64_t len = ds->user_ptr[u + 1] - ds->user_ptr[u];
    ds->summary.eval_users_valid += ds->user_n_valid[u] > 0;
    ds->summary.eval_users_test += len - ds->user_n_train[u] - ds->user_n_valid[u] > 0;
  }
  snprintf(ds->split, sizeof ds->split, "%s", leave_one_out ? "leave_one_out" : "temporal");
  free(rec);
  free(where);
  free(cnt);
  free(seen);
  free(ntrain);
  return DT_OK;
}

/* ---- Item text from review summaries ----------------------------------------------------- */

char **dt_prep_summary_text(const dt_interactions *x, int64_t n_items) {
  int64_t *len = dt_xcalloc((size_t)(n_items ? n_items : 1), sizeof(int64_t));
  for (int64_t r = 0; r < x->n; r++)
    if (x->has_text && x->text_off[r] >= 0) len[x->item[r]] += (int64_t)strlen(x->text + x->text_off[r]) + 1;
  char **text = dt_xmalloc((size_t)(n_items ? n_items : 1) * sizeof(char *));
  for (int64_t i = 0; i < n_items; i++) {
    text[i] = dt_xmalloc((size_t)len[i] + 1);
    text[i][0] = '\0';
    len[i] = 0; /* reused as the fill position */
  }
  for (int64_t r = 0; r < x->n; r++) {
    if (!x->has_text || x->text_off[r] < 0) continue;
    const char *s = x->text + x->text_off[r];
    size_t n = strlen(s);
    char *t = text[x->item[r]];
    if (len[x->item[r]] > 0) t[len[x->item[r]]++] = ' ';
    memcpy(t + len[x->item[r]], s, n + 1);
    len[x->item[r]] += (int64_t)n;
  }
  free(len);
  return text;
}
