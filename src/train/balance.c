/* balance.c: one global step's units split over the ranks by work.
 *
 * The shard (shard.h) gives rank r the bins of its own lanes; a global batch
 * is the same set of units whatever the split, but lane bins differ in size
 * (chunks are 1..L interactions), so one rank's part can be 5% larger than
 * another's and the smaller one waits at every collective of the step (on
 * the development machine ~2.4 ms of a 46 ms 2-rank step). Here every rank
 * sees the whole step's units (an all-gather of a few KB) and takes its part
 * of a longest-processing-time split: units by decreasing weight, each to
 * the rank with the least work so far (ties: the lower rank, then the lower
 * position). Every rank computes the same split. The set of units in the
 * step, and every key drawn from them (negatives, dropout), are unchanged,
 * so N ranks still train on exactly one rank's global batches. */
#include <stdlib.h>
#include <string.h>

#include "dtrain/batch.h"
#include "dtrain/trainer.h"
#include "dtrain/error.h"

int64_t dt_unit_weight(const dt_unit *u, int chunk_history, int L) {
  int64_t w = u->count; /* examples: candidates, towers, gate, loss */
  if (chunk_history) {  /* plus the chunk's GRU tokens */
    int32_t lo, unused;
    dt_history_window(DT_HISTORY_CHUNK, L, u->start, 0, &lo, &unused);
    w += (int64_t)u->start + u->count - 1 - lo;
  }
  return w;
}

typedef struct {
  int64_t weight, pos;
} weighted;

static int by_weight_desc(const void *a, const void *b) {
  const weighted *x = a, *y = b;
  if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int64_t dt_balance_units(const dt_unit *all, const int64_t *weight, int64_t n, int rank, int size, dt_unit *out) {
  if (size <= 1) {
    memmove(out, all, (size_t)n * sizeof *all);
    return n;
  }
  weighted *order = dt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  int *owner = dt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *owner);
  int64_t *load = dt_xcalloc((size_t)size, sizeof *load);
  for (int64_t i = 0; i < n; i++) order[i] = (weighted){weight[i], i};
  qsort(order, (size_t)n, sizeof *order, by_weight_desc);
  for (int64_t k = 0; k < n; k++) {
    int best = 0;
    for (int r = 1; r < size; r++)
      if (load[r] < load[best]) best = r;
    owner[order[k].pos] = best;
    load[best] += order[k].weight;
  }
  int64_t m = 0; /* this rank's units, in the step's order */
  for (int64_t i = 0; i < n; i++)
    if (owner[i] == rank) out[m++] = all[i];
  free(order);
  free(owner);
  free(load);
  return m;
}
