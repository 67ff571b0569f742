/* comm_sparse.c: embedding-gradient and lookup exchanges, the replica check.
 *
 * Wire format of one rank's sparse rows (one part per destination): the
 * ids (int32, ascending) then the rows (float, [k, dim]), back to back. Ids
 * ascending means a rank's rows for one owner of a block-partitioned table
 * are contiguous, so the sharded parts need no sorting, only slicing.
 *
 * Merging: the parts arrive in rank order, each ascending; a k-way merge
 * keyed by (id, rank) sums equal ids in rank order. The result depends only
 * on the contributions, not on timing or on which rank merges, so every
 * rank of the replicated placement computes identical bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"

typedef struct {
  const int32_t *ids;
  const float *rows;
  int64_t n;
} part;

static int check_ids(const dt_comm *c, const dtc_table *t, const int32_t *ids, int64_t m, const char *what) {
  if (m < 0) return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': negative row count %lld", what, t->name, (long long)m);
  for (int64_t k = 0; k < m; k++) {
    if (ids[k] < 0 || ids[k] >= t->n_rows)
      return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s' on rank %d: row id %d at position %lld is outside [0, %lld)",
                     what, t->name, c->rank, ids[k], (long long)k, (long long)t->n_rows);
    if (k > 0 && ids[k] <= ids[k - 1])
      return dt_fail(DT_EXIT_RUNTIME,
                     "%s of table '%s' on rank %d: row ids must be strictly ascending (coalesce first), but id %d "
                     "follows %d at position %lld",
                     what, t->name, c->rank, ids[k], ids[k - 1], (long long)k);
  }
  return DT_OK;
}

static int check_placement(const dtc_table *t, dt_placement want, const char *what) {
  if (t->placement != want)
    return dt_fail(DT_EXIT_RUNTIME, "%s: table '%s' is %s, not %s (internal error)", what, t->name,
                   dt_placement_name(t->placement), dt_placement_name(want));
  return DT_OK;
}

/* ---- k-way merge by (id, rank) ---- */

static int heap_less(const part *p, const int64_t *pos, int a, int b) {
  int32_t ia = p[a].ids[pos[a]], ib = p[b].ids[pos[b]];
  return ia < ib || (ia == ib && a < b);
}

static void heap_down(int *h, int n, int i, const part *p, const int64_t *pos) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && heap_less(p, pos, h[l], h[m])) m = l;
    if (r < n && heap_less(p, pos, h[r], h[m])) m = r;
    if (m == i) return;
    int tmp = h[i];
    h[i] = h[m];
    h[m] = tmp;
    i = m;
  }
}

/* Coalesces n_parts ascending parts into out (equal ids summed in part
 * order). */
static void merge_parts(const part *p, int n_parts, int dim, dt_sparse_rows *out) {
  int64_t total = 0;
  for (int r = 0; r < n_parts; r++) total += p[r].n;
  dtc_sparse_reserve(out, total, dim);
  out->n = 0;
  out->dim = dim;
  int64_t *pos = dt_xcalloc((size_t)n_parts, sizeof(int64_t));
  int *heap = dt_xmalloc(sizeof(int) * (size_t)(n_parts > 0 ? n_parts : 1));
  int hn = 0;
  for (int r = 0; r < n_parts; r++)
    if (p[r].n > 0) heap[hn++] = r;
  for (int i = hn / 2 - 1; i >= 0; i--) heap_down(heap, hn, i, p, pos);
  const size_t row_bytes = (size_t)dim * sizeof(float);
  while (hn > 0) {
    int r = heap[0];
    int32_t id = p[r].ids[pos[r]];
    const float *src = p[r].rows + (size_t)pos[r] * (size_t)dim;
    if (out->n > 0 && out->ids[out->n - 1] == id) {
      float *dst = out->rows + (size_t)(out->n - 1) * (size_t)dim;
      for (int j = 0; j < dim; j++) dst[j] += src[j];
    } else {
      out->ids[out->n] = id;
      memcpy(out->rows + (size_t)out->n * (size_t)dim, src, row_bytes);
      out->n++;
    }
    if (++pos[r] == p[r].n) heap[0] = heap[--hn];
    heap_down(heap, hn, 0, p, pos);
  }
  free(pos);
  free(heap);
}

/* Splits received bytes (parts in rank order, counts[r] bytes each, in the
 * ids-then-rows format) into parts. */
static int split_parts(const dt_comm *c, const dtc_table *t, const dt_comm_buffer *recv, const size_t *counts, part *p,
                       const char *what) {
  const size_t pair = sizeof(int32_t) + (size_t)t->dim * sizeof(float);
  size_t off = 0;
  for (int r = 0; r < c->size; r++) {
    if (counts[r] % pair)
      return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': rank %d sent %zu bytes, not a whole number of rows (internal)",
                     what, t->name, r, counts[r]);
    int64_t k = (int64_t)(counts[r] / pair);
    const char *base = (const char *)recv->data + off;
    p[r].ids = (const int32_t *)base;
    p[r].rows = (const float *)(base + (size_t)k * sizeof(int32_t));
    p[r].n = k;
    off += counts[r];
  }
  return DT_OK;
}

static void pack_rows(char *dst, const int32_t *ids, const float *rows, int64_t k, int dim) {
  memcpy(dst, ids, (size_t)k * sizeof(int32_t));
  memcpy(dst + (size_t)k * sizeof(int32_t), rows, (size_t)k * (size_t)dim * sizeof(float));
}

int dt_comm_replicated_exchange(dt_comm *c, int table, const int32_t *ids, const float *rows, int64_t m,
                                dt_sparse_rows *out) {
  dtc_table *t = dtc_table_get(c, table);
  const char *what = "replicated gradient exchange";
  DT_TRY(check_placement(t, DT_PLACEMENT_REPLICATED, what));
  DT_TRY(check_ids(c, t, ids, m, what));
  t->stats.calls++;
  const int dim = t->dim;
  if (c->size == 1) {
    dtc_sparse_reserve(out, m, dim);
    if (m) {
      memcpy(out->ids, ids, (size_t)m * sizeof(int32_t));
      memcpy(out->rows, rows, (size_t)m * (size_t)dim * sizeof(float));
    }
    out->n = m;
    return DT_OK;
  }
  const size_t bytes = (size_t)m * (sizeof(int32_t) + (size_t)dim * sizeof(float));
  dtc_buffer_reserve(&c->scratch_send, bytes);
  if (m) pack_rows(c->scratch_send.data, ids, rows, m, dim);
  size_t *counts = c->scratch_counts;
  DT_TRY(dtc_allgatherv(c, c->scratch_send.data, bytes, &c->scratch_recv, counts, &t->stats.grad_bytes, what));
  part *p = dt_xmalloc(sizeof(part) * (size_t)c->size);
  int rc = split_parts(c, t, &c->scratch_recv, counts, p, what);
  if (!rc) merge_parts(p, c->size, dim, out);
  free(p);
  return rc;
}

/* For each rank r, the first index k with ids[k] >= lo(r); bounds[size] = m.
 * ids ascending, so each owner's ids are ids[bounds[r] .. bounds[r+1]). */
static void owner_bounds(const dt_comm *c, const dtc_table *t, const int32_t *ids, int64_t m, int64_t *bounds) {
  int64_t k = 0;
  for (int r = 0; r < c->size; r++) {
    int64_t lo = dt_comm_block_lo(t->n_rows, r, c->size);
    while (k < m && ids[k] < lo) k++;
    bounds[r] = k;
  }
  bounds[c->size] = m;
}

int dt_comm_sharded_exchange(dt_comm *c, int table, const int32_t *ids, const float *rows, int64_t m,
                             dt_sparse_rows *out) {
  dtc_table *t = dtc_table_get(c, table);
  const char *what = "sharded gradient exchange";
  DT_TRY(check_placement(t, DT_PLACEMENT_SHARDED, what));
  DT_TRY(check_ids(c, t, ids, m, what));
  t->stats.calls++;
  const int dim = t->dim;
  const size_t pair = sizeof(int32_t) + (size_t)dim * sizeof(float);
  int64_t *bounds = dt_xmalloc(sizeof(int64_t) * (size_t)(c->size + 1));
  owner_bounds(c, t, ids, m, bounds);
  size_t *send_counts = c->scratch_counts, *recv_counts = c->scratch_counts + c->size;
  dtc_buffer_reserve(&c->scratch_send, (size_t)m * pair);
  size_t off = 0;
  for (int r = 0; r < c->size; r++) {
    int64_t k = bounds[r + 1] - bounds[r];
    if (k)
      pack_rows((char *)c->scratch_send.data + off, ids + bounds[r], rows + (size_t)bounds[r] * (size_t)dim, k, dim);
    send_counts[r] = (size_t)k * pair;
    off += send_counts[r];
  }
  free(bounds);
  DT_TRY(
      dtc_alltoallv(c, c->scratch_send.data, send_counts, &c->scratch_recv, recv_counts, &t->stats.grad_bytes, what));
  part *p = dt_xmalloc(sizeof(part) * (size_t)c->size);
  int rc = split_parts(c, t, &c->scratch_recv, recv_counts, p, what);
  for (int r = 0; !rc && r < c->size; r++)
    for (int64_t k = 0; k < p[r].n; k++)
      if (p[r].ids[k] < t->lo || p[r].ids[k] >= t->hi || (k > 0 && p[r].ids[k] <= p[r].ids[k - 1])) {
        rc = dt_fail(DT_EXIT_RUNTIME,
                     "%s of table '%s': rank %d sent row %d, not ascending in this rank's block "
                     "[%lld, %lld) (internal error)",
                     what, t->name, r, p[r].ids[k], (long long)t->lo, (long long)t->hi);
        break;
      }
  if (!rc) merge_parts(p, c->size, dim, out);
  free(p);
  return rc;
}

int dt_comm_fetch_host_rows(void *ctx, const int32_t *local_ids, int64_t n, int dim, float *rows_host) {
  const float *shard = ctx;
  const size_t row_bytes = (size_t)dim * sizeof(float);
  for (int64_t k = 0; k < n; k++)
    memcpy(rows_host + (size_t)k * (size_t)dim, shard + (size_t)local_ids[k] * (size_t)dim, row_bytes);
  return DT_OK;
}

int dt_comm_sharded_lookup(dt_comm *c, int table, const int32_t *ids, int64_t m, dt_comm_fetch_fn fetch, void *ctx,
                           float *rows_out) {
  dtc_table *t = dtc_table_get(c, table);
  const char *what = "sharded lookup";
  DT_TRY(check_placement(t, DT_PLACEMENT_SHARDED, what));
  DT_TRY(check_ids(c, t, ids, m, what));
  t->stats.calls++;
  const int dim = t->dim;
  const size_t row_bytes = (size_t)dim * sizeof(float);
  const int size = c->size;
  int64_t *bounds = dt_xmalloc(sizeof(int64_t) * (size_t)(size + 1));
  owner_bounds(c, t, ids, m, bounds);
  size_t *req_send = c->scratch_counts, *req_recv = c->scratch_counts + size;
  size_t *rep_send = c->scratch_counts + 2 * size, *rep_recv = c->scratch_counts + 3 * size;
  for (int r = 0; r < size; r++) req_send[r] = (size_t)(bounds[r + 1] - bounds[r]) * sizeof(int32_t);
  free(bounds);
  /* 1. requests: ids ascending are already grouped by owner. */
  DT_TRY(dtc_alltoallv(c, ids, req_send, &c->scratch_recv, req_recv, &t->stats.lookup_bytes, what));
  int64_t q = (int64_t)(c->scratch_recv.size / sizeof(int32_t));
  int32_t *local = c->scratch_recv.data;
  int32_t status = DT_OK;
  for (int64_t k = 0; k < q; k++) {
    if (local[k] < t->lo || local[k] >= t->hi) {
      status = dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': request for row %d, outside rank %d's block [%lld, %lld)",
                       what, t->name, local[k], c->rank, (long long)t->lo, (long long)t->hi);
      break;
    }
    local[k] -= (int32_t)t->lo;
  }
  /* 2. replies: per destination a 4-byte status, then the rows asked for.
   * A failed read still answers (with its status) so nobody waits. */
  size_t total_send = 0, total_recv = 0;
  for (int r = 0; r < size; r++) {
    rep_send[r] = sizeof(int32_t) + req_recv[r] / sizeof(int32_t) * row_bytes;
    rep_recv[r] = sizeof(int32_t) + req_send[r] / sizeof(int32_t) * row_bytes;
    total_send += rep_send[r];
    total_recv += rep_recv[r];
  }
  dtc_buffer_reserve(&c->scratch_aux, (size_t)q * row_bytes);
  float *fetched = c->scratch_aux.data;
  if (!status && q > 0) {
    status = fetch(ctx, local, q, dim, fetched);
    if (status)
      dt_fail_context(status, "%s of table '%s' on rank %d: reading %lld owned rows", what, t->name, c->rank,
                      (long long)q);
  }
  dtc_buffer_reserve(&c->scratch_send, total_send);
  char *s = c->scratch_send.data;
  size_t done = 0;
  for (int r = 0; r < size; r++) {
    size_t nb = rep_send[r] - sizeof(int32_t);
    memcpy(s, &status, sizeof status);
    if (nb) {
      if (status)
        memset(s + sizeof(int32_t), 0, nb);
      else
        memcpy(s + sizeof(int32_t), (const char *)fetched + done, nb);
    }
    done += nb;
    s += rep_send[r];
  }
  dtc_buffer_reserve(&c->scratch_recv, total_recv);
  DT_TRY(dtc_alltoallv_known(c, c->scratch_send.data, rep_send, c->scratch_recv.data, rep_recv, &t->stats.lookup_bytes,
                             what));
  const char *in = c->scratch_recv.data;
  char *dst = (char *)rows_out;
  int rc = status;
  for (int r = 0; r < size; r++) {
    int32_t st;
    memcpy(&st, in, sizeof st);
    size_t nb = rep_recv[r] - sizeof(int32_t);
    if (st && !rc)
      rc =
          dt_fail(st, "%s of table '%s': rank %d could not read its rows (its own message says why)", what, t->name, r);
    if (nb) memcpy(dst, in + sizeof(int32_t), nb);
    dst += nb;
    in += rep_recv[r];
  }
  return rc;
}

/* ---- replica check ---- */

uint64_t dt_comm_checksum(uint64_t h, const void *data, size_t bytes) {
  const unsigned char *p = data;
  const uint64_t prime = UINT64_C(0x100000001b3);
  size_t words = bytes / 4;
  for (size_t i = 0; i < words; i++) {
    uint32_t w;
    memcpy(&w, p + 4 * i, 4);
    h = (h ^ w) * prime;
  }
  for (size_t i = 4 * words; i < bytes; i++) h = (h ^ p[i]) * prime;
  return h;
}

int dt_comm_check_replicas(dt_comm *c, int n_tables, const int *table_ids, const uint64_t *checksums) {
  const int size = c->size;
  if (n_tables < 0) return dt_fail(DT_EXIT_RUNTIME, "replica check: negative table count %d", n_tables);
  /* The count travels with the checksums so ranks disagreeing on what to
   * compare are caught too. */
  size_t item = sizeof(uint64_t) * (size_t)(n_tables + 1);
  uint64_t *mine = dt_xmalloc(item);
  mine[0] = (uint64_t)n_tables;
  if (n_tables) memcpy(mine + 1, checksums, sizeof(uint64_t) * (size_t)n_tables);
  uint64_t *all = dt_xmalloc(item * (size_t)size);
  int rc = dt_comm_allgather(c, mine, item, all);
  free(mine);
  if (rc) {
    free(all);
    return rc;
  }
  for (int r = 1; r < size; r++)
    if (all[(size_t)r * (size_t)(n_tables + 1)] != all[0]) {
      free(all);
      return dt_fail(DT_EXIT_RUNTIME,
                     "replica check: rank %d compares a different number of tables than rank 0 "
                     "(internal error)",
                     r);
    }
  for (int i = 0; i < n_tables; i++) {
    uint64_t ref = all[1 + i];
    char ranks[256] = "";
    size_t len = 0;
    int n_diff = 0;
    for (int r = 1; r < size; r++) {
      if (all[(size_t)r * (size_t)(n_tables + 1) + 1 + (size_t)i] == ref) continue;
      if (n_diff < 16 && len < sizeof ranks)
        len += (size_t)snprintf(ranks + len, sizeof ranks - len, "%s%d", n_diff ? ", " : "", r);
      n_diff++;
    }
    if (n_diff) {
      const char *name = dt_comm_table_name(c, table_ids[i]);
      free(all);
      return dt_fail(DT_EXIT_RUNTIME,
                     "replica check: replicated table '%s' differs across ranks: rank(s) %s%s disagree with rank 0 "
                     "(checksum %016llx). The replicas drifted; every rank must apply the same global sparse "
                     "gradient (dt_comm_replicated_exchange) with the same optimizer state",
                     name, ranks, n_diff > 16 ? " and more" : "", (unsigned long long)ref);
    }
  }
  free(all);
  return DT_OK;
}
