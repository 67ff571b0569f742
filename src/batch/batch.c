/* batch.c: examples -> candidates, packed histories, context, dropout keys. */
#include "dtrain/batch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch/batch_internal.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

/* A history sequence before packing. */
typedef struct {
  int32_t user, lo, hi; /* items [lo, hi) of the user's list */
  int64_t key;          /* dropout key base of its tokens */
  int64_t order;        /* rank in the packed layout (longest first) */
} seq_t;

struct dt_batch_builder {
  const dt_model *model;
  const dt_dataset *ds;
  dt_backend *be;
  int L;
  /* host */
  int64_t cap_n, cap_nc, cap_t, cap_seq;
  int32_t *user, *pos, *cand, *ids_user_rep, *ids_item, *ids_bias, *ids_dyn_cand, *ids_dyn_tok, *readout;
  int32_t *ids_user;
  float *ctx;
  int64_t *row_key, *cand_key, *tok_key;
  int32_t *batch_sizes; /* [cap_t] */
  seq_t *seqs;
  int64_t *ex_seq;          /* example -> sequence */
  int32_t *ex_len;          /* example -> tokens of its sequence it reads */
  int64_t *sorted;          /* sequence indices, longest first */
  int32_t *seq_off;         /* [cap_seq + 1] SASRec window offsets (sequence-major packing) */
  int32_t *eval_n_neg;      /* example -> negatives drawn (evaluation batches) */
  unsigned char *eval_mark; /* [n_items] scratch of the negative draw, kept zeroed */
  /* backend copies */
  struct {
    int32_t *ids_user, *ids_user_rep, *ids_item, *ids_bias, *ids_dyn_cand, *ids_dyn_tok, *cand, *readout;
    int32_t *seq_off;
    float *ctx;
    int64_t *row_key, *cand_key, *tok_key;
  } dev;
  int64_t dev_n, dev_nc, dev_t, dev_seq;
  dt_batch batch;
  dt_batch_list *list; /* the softmax losses' item list (batch_list.c) */
};

int dt_batch_builder_create(const dt_model *model, const dt_dataset *ds, dt_backend *be, dt_batch_builder **out) {
  dt_batch_builder *bb = dt_xcalloc(1, sizeof *bb);
  bb->model = model;
  bb->ds = ds;
  bb->be = be;
  bb->L = ds->history_len > 0 ? ds->history_len : (int)model->cfg->data_history_len;
  /* SASRec numbers a window's positions: chunk windows hold up to 2L - 1 items */
  int64_t longest = model->history == DT_HISTORY_CHUNK ? 2 * (int64_t)bb->L - 1 : bb->L;
  if (model->use_dynamic && model->encoder_kind == DT_ENCODER_SASREC && longest > model->pos_rows) {
    int L = bb->L;
    free(bb);
    return dt_fail(DT_EXIT_DATA,
                   "the data set was prepared with data.history_len = %d, whose history windows (up to "
                   "%lld items) do not fit the SASRec encoder's %lld positions (2 x config key 'data.history_len'): "
                   "use the data set's data.history_len",
                   L, (long long)longest, (long long)model->pos_rows);
  }
  *out = bb;
  return DT_OK;
}

static void free_dev(dt_batch_builder *bb) {
  dt_backend *be = bb->be;
  void *ps[] = {bb->dev.ids_user,    bb->dev.ids_user_rep, bb->dev.ids_item, bb->dev.ids_bias, bb->dev.ids_dyn_cand,
                bb->dev.ids_dyn_tok, bb->dev.cand,         bb->dev.readout,  bb->dev.ctx,      bb->dev.row_key,
                bb->dev.cand_key,    bb->dev.tok_key,      bb->dev.seq_off};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) be->free(be, ps[i]);
  memset(&bb->dev, 0, sizeof bb->dev);
  bb->dev_n = bb->dev_nc = bb->dev_t = bb->dev_seq = 0;
}

void dt_batch_builder_free(dt_batch_builder *bb) {
  if (!bb) return;
  free_dev(bb);
  dt_batch_list_free(bb->list);
  void *ps[] = {bb->user,         bb->pos,         bb->cand,        bb->ids_user_rep, bb->ids_item, bb->ids_bias,
                bb->ids_dyn_cand, bb->ids_dyn_tok, bb->readout,     bb->ids_user,     bb->ctx,      bb->row_key,
                bb->cand_key,     bb->tok_key,     bb->batch_sizes, bb->seqs,         bb->ex_seq,   bb->ex_len,
                bb->sorted,       bb->eval_n_neg,  bb->eval_mark,   bb->seq_off};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
  free(bb);
}

static int64_t grow_to(int64_t need) { return need + need / 4 + 16; }

/* Host capacity for n examples, nc candidate rows, t tokens, s sequences. */
static void reserve_host(dt_batch_builder *bb, int64_t n, int64_t nc, int64_t t, int64_t s) {
  if (n > bb->cap_n) {
    int64_t c = grow_to(n);
    bb->cap_n = c;
    bb->user = dt_xrealloc(bb->user, (size_t)c * sizeof(int32_t));
    bb->pos = dt_xrealloc(bb->pos, (size_t)c * sizeof(int32_t));
    bb->ids_user = dt_xrealloc(bb->ids_user, (size_t)c * sizeof(int32_t));
    bb->readout = dt_xrealloc(bb->readout, (size_t)c * sizeof(int32_t));
    bb->ctx = dt_xrealloc(bb->ctx, (size_t)c * 7 * sizeof(float));
    bb->row_key = dt_xrealloc(bb->row_key, (size_t)c * sizeof(int64_t));
    bb->ex_seq = dt_xrealloc(bb->ex_seq, (size_t)c * sizeof(int64_t));
    bb->ex_len = dt_xrealloc(bb->ex_len, (size_t)c * sizeof(int32_t));
    bb->eval_n_neg = dt_xrealloc(bb->eval_n_neg, (size_t)c * sizeof(int32_t));
  }
  if (nc > bb->cap_nc) {
    int64_t c = grow_to(nc);
    bb->cap_nc = c;
    bb->cand = dt_xrealloc(bb->cand, (size_t)c * sizeof(int32_t));
    bb->ids_user_rep = dt_xrealloc(bb->ids_user_rep, (size_t)c * sizeof(int32_t));
    bb->ids_item = dt_xrealloc(bb->ids_item, (size_t)c * sizeof(int32_t));
    bb->ids_bias = dt_xrealloc(bb->ids_bias, (size_t)c * sizeof(int32_t));
    bb->ids_dyn_cand = dt_xrealloc(bb->ids_dyn_cand, (size_t)c * sizeof(int32_t));
    bb->cand_key = dt_xrealloc(bb->cand_key, (size_t)c * sizeof(int64_t));
  }
  if (t > bb->cap_t) {
    int64_t c = grow_to(t);
    bb->cap_t = c;
    bb->ids_dyn_tok = dt_xrealloc(bb->ids_dyn_tok, (size_t)c * sizeof(int32_t));
    bb->tok_key = dt_xrealloc(bb->tok_key, (size_t)c * sizeof(int64_t));
    bb->batch_sizes = dt_xrealloc(bb->batch_sizes, (size_t)c * sizeof(int32_t));
  }
  if (s > bb->cap_seq) {
    int64_t c = grow_to(s);
    bb->cap_seq = c;
    bb->seqs = dt_xrealloc(bb->seqs, (size_t)c * sizeof(seq_t));
    bb->sorted = dt_xrealloc(bb->sorted, (size_t)c * sizeof(int64_t));
    bb->seq_off = dt_xrealloc(bb->seq_off, (size_t)(c + 1) * sizeof(int32_t));
  }
}

/* Backend capacity for n examples, nc candidate rows, t tokens, s windows. */
static int reserve_dev(dt_batch_builder *bb, int64_t n, int64_t nc, int64_t t, int64_t s) {
  dt_backend *be = bb->be;
  if (n > bb->dev_n) {
    int64_t c = grow_to(n);
    bb->dev_n = c;
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_user, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.readout, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ctx, (size_t)c * 7 * sizeof(float)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.row_key, (size_t)c * sizeof(int64_t)));
  }
  if (nc > bb->dev_nc) {
    int64_t c = grow_to(nc);
    bb->dev_nc = c;
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.cand, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_user_rep, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_item, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_bias, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_dyn_cand, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.cand_key, (size_t)c * sizeof(int64_t)));
  }
  if (t > bb->dev_t) {
    int64_t c = grow_to(t);
    bb->dev_t = c;
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.ids_dyn_tok, (size_t)c * sizeof(int32_t)));
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.tok_key, (size_t)c * sizeof(int64_t)));
  }
  if (s > bb->dev_seq) {
    int64_t c = grow_to(s);
    bb->dev_seq = c;
    DT_TRY(dt_backend_replace(be, (void **)&bb->dev.seq_off, (size_t)(c + 1) * sizeof(int32_t)));
  }
  return DT_OK;
}

/* Sequences longest first; equal lengths keep their order (deterministic). */
static const seq_t *g_sort_seqs;
static int by_length_desc(const void *a, const void *b) {
  int64_t ia = *(const int64_t *)a, ib = *(const int64_t *)b;
  int32_t la = g_sort_seqs[ia].hi - g_sort_seqs[ia].lo, lb = g_sort_seqs[ib].hi - g_sort_seqs[ib].lo;
  if (la != lb) return la > lb ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

/* The n_seq sequences' total length; *max_len the longest. */
static int64_t total_length(const dt_batch_builder *bb, int64_t n_seq, int *max_len) {
  int64_t t_total = 0;
  *max_len = 0;
  for (int64_t s = 0; s < n_seq; s++) {
    int32_t len = bb->seqs[s].hi - bb->seqs[s].lo;
    if (len > *max_len) *max_len = len;
    t_total += len;
  }
  return t_total;
}

/* Packs n_seq sequences time-major and sets every example's read-out token. */
static void pack_sequences(dt_batch_builder *bb, int64_t n_seq, int64_t n) {
  const dt_dataset *ds = bb->ds;
  int max_len;
  int64_t t_total = total_length(bb, n_seq, &max_len);
  for (int64_t s = 0; s < n_seq; s++) bb->sorted[s] = s;
  reserve_host(bb, 0, 0, t_total > max_len ? t_total : max_len, 0);
  g_sort_seqs = bb->seqs;
  qsort(bb->sorted, (size_t)n_seq, sizeof(int64_t), by_length_desc);
  for (int64_t k = 0; k < n_seq; k++) bb->seqs[bb->sorted[k]].order = k;
  int64_t *step_off = dt_xmalloc((size_t)(max_len + 1) * sizeof(int64_t));
  int64_t off = 0;
  for (int t = 0; t < max_len; t++) {
    int32_t a = 0;
    while (a < n_seq && bb->seqs[bb->sorted[a]].hi - bb->seqs[bb->sorted[a]].lo > t) a++;
    bb->batch_sizes[t] = a;
    step_off[t] = off;
    for (int32_t k = 0; k < a; k++) {
      const seq_t *sq = &bb->seqs[bb->sorted[k]];
      int64_t idx = ds->user_ptr[sq->user] + sq->lo + t;
      bb->ids_dyn_tok[off + k] = ds->user_items[idx] + 1; /* row 0 of dynamic.item_emb is padding */
      bb->tok_key[off + k] = sq->key * 1024 + t;
    }
    off += a;
  }
  step_off[max_len] = off;
  for (int64_t e = 0; e < n; e++) {
    int32_t len = bb->ex_len[e];
    const seq_t *sq = &bb->seqs[bb->ex_seq[e]];
    bb->readout[e] = len > 0 ? (int32_t)(step_off[len - 1] + sq->order) : (int32_t)off; /* off = zero state */
  }
  free(step_off);
  bb->batch.n_seq = n_seq;
  bb->batch.n_tokens = off;
  bb->batch.max_len = max_len;
}

/* Packs n_seq windows sequence-major (dt_seq_windows, the SASRec
 * encoder's layout) in their order, and sets every example's read-out
 * token: window s is tokens [seq_off[s], seq_off[s+1]), the item at
 * window position p is token seq_off[s] + p. */
static void pack_windows(dt_batch_builder *bb, int64_t n_seq, int64_t n) {
  const dt_dataset *ds = bb->ds;
  int max_len;
  int64_t t_total = total_length(bb, n_seq, &max_len);
  reserve_host(bb, 0, 0, t_total, n_seq + 1); /* seq_off has n_seq + 1 entries */
  int64_t off = 0;
  for (int64_t s = 0; s < n_seq; s++) {
    const seq_t *sq = &bb->seqs[s];
    const int64_t base = ds->user_ptr[sq->user] + sq->lo;
    bb->seq_off[s] = (int32_t)off;
    for (int32_t p = 0; p < sq->hi - sq->lo; p++, off++) {
      bb->ids_dyn_tok[off] = ds->user_items[base + p] + 1; /* row 0 of dynamic.item_emb is padding */
      bb->tok_key[off] = sq->key * 1024 + p;
    }
  }
  bb->seq_off[n_seq] = (int32_t)off;
  for (int64_t e = 0; e < n; e++) {
    int32_t len = bb->ex_len[e];
    bb->readout[e] = len > 0 ? bb->seq_off[bb->ex_seq[e]] + len - 1 : (int32_t)off; /* off = zero state */
  }
  bb->batch.n_seq = n_seq;
  bb->batch.n_tokens = off;
  bb->batch.max_len = max_len;
}

/* The encoder's packing: sequence-major windows for SASRec, time-major
 * sequences for the GRU. */
static void pack_histories(dt_batch_builder *bb, int64_t n_seq, int64_t n) {
  if (bb->model->encoder_kind == DT_ENCODER_SASREC)
    pack_windows(bb, n_seq, n);
  else
    pack_sequences(bb, n_seq, n);
}

/* ctx (and v3's user statistics) of example e: user u at position pos, at
 * time ts (< 0: the timestamp of the interaction at pos). */
static void example_context(dt_batch_builder *bb, int64_t e, int32_t u, int32_t pos, int64_t ts) {
  const dt_dataset *ds = bb->ds;
  int64_t base = ds->user_ptr[u];
  int gate_in = bb->model->gate_in;
  float *c = bb->ctx + e * gate_in;
  if (ts < 0) ts = ds->user_ts[base + pos];
  dt_context_features(ts, c);
  if (gate_in == 7) {
    int32_t n_hist = pos < bb->L ? pos : bb->L;
    double gap_days = pos > 0 ? (double)(ts - ds->user_ts[base + pos - 1]) / 86400.0 : 0.0;
    if (gap_days < 0) gap_days = 0;
    if (gap_days > 365) gap_days = 365;
    c[5] = (float)(log1p((double)n_hist) / log1p((double)bb->L));
    c[6] = (float)(log1p(gap_days) / log(366.0));
  }
}

/* Fills the per-candidate id arrays from cand[] for n examples of c candidates. */
static void candidate_ids(dt_batch_builder *bb, int64_t n, int c) {
  for (int64_t e = 0; e < n; e++)
    for (int j = 0; j < c; j++) {
      int64_t r = e * c + j;
      bb->ids_user_rep[r] = bb->user[e];
      bb->ids_item[r] = bb->cand[r];
      bb->ids_bias[r] = bb->cand[r];
      bb->ids_dyn_cand[r] = bb->cand[r] + 1;
      bb->cand_key[r] = bb->row_key[e] * 1024 + j;
    }
  for (int64_t e = 0; e < n; e++) bb->ids_user[e] = bb->user[e];
}

int dt_batch_upload_ids(dt_batch_builder *bb) {
  dt_backend *be = bb->be;
  dt_batch *b = &bb->batch;
  int64_t n = b->n, nc = b->nc, t = b->n_tokens;
  const int windows = bb->model->use_dynamic && bb->model->encoder_kind == DT_ENCODER_SASREC;
  DT_TRY(reserve_dev(bb, n, nc, t, windows ? b->n_seq + 1 : 0)); /* offsets: n_seq + 1 */
#define UP(dst, src, count, type) \
  if ((count) > 0) DT_TRY(be->upload(be, bb->dev.dst, bb->src, (size_t)(count) * sizeof(type)))
  UP(ids_user, ids_user, n, int32_t);
  UP(readout, readout, n, int32_t);
  UP(ctx, ctx, n * bb->model->gate_in, float);
  UP(row_key, row_key, n, int64_t);
  UP(cand, cand, nc, int32_t);
  UP(ids_user_rep, ids_user_rep, nc, int32_t);
  UP(ids_item, ids_item, nc, int32_t);
  UP(ids_bias, ids_bias, nc, int32_t);
  UP(ids_dyn_cand, ids_dyn_cand, nc, int32_t);
  UP(cand_key, cand_key, nc, int64_t);
  UP(ids_dyn_tok, ids_dyn_tok, t, int32_t);
  UP(tok_key, tok_key, t, int64_t);
  if (windows) UP(seq_off, seq_off, b->n_seq + 1, int32_t);
#undef UP
  b->ids_user = bb->dev.ids_user;
  b->ids_user_rep = bb->dev.ids_user_rep;
  b->ids_item = bb->dev.ids_item;
  b->ids_bias = bb->dev.ids_bias;
  b->ids_dyn_cand = bb->dev.ids_dyn_cand;
  b->ids_dyn_tok = bb->dev.ids_dyn_tok;
  b->cand = bb->dev.cand;
  b->ctx = bb->dev.ctx;
  b->row_key = bb->dev.row_key;
  b->cand_key = bb->dev.cand_key;
  b->tok_key = bb->dev.tok_key;
  b->readout = bb->dev.readout;
  b->batch_sizes_host = bb->batch_sizes;
  b->seq_offsets = windows ? bb->dev.seq_off : NULL;
  b->seq_offsets_host = windows ? bb->seq_off : NULL;
  return b->n_list > 0 ? dt_batch_list_upload(bb->list, b) : DT_OK;
}

/* Histories of examples that each own a sequence (prefix, user_train, and
 * evaluation in every mode). */
static void own_sequences(dt_batch_builder *bb, int64_t n) {
  const dt_dataset *ds = bb->ds;
  const dt_history_mode mode = bb->model->history;
  reserve_host(bb, 0, 0, 0, n);
  for (int64_t e = 0; e < n; e++) {
    int32_t u = bb->user[e], lo, hi;
    dt_history_window(mode, bb->L, bb->pos[e], ds->user_n_train[u], &lo, &hi);
    bb->seqs[e] = (seq_t){u, lo, hi, bb->row_key[e], 0};
    bb->ex_seq[e] = e;
    bb->ex_len[e] = hi - lo;
  }
  pack_histories(bb, n, n);
}

/* A negative for training interaction `gid` of user u: uniform over items,
 * redrawn up to `tries` times while the user has it in train. */
static int32_t draw_negative(const dt_dataset *ds, int32_t u, int64_t gid, int j, int tries, uint64_t seed,
                             int64_t epoch) {
  int32_t item = 0;
  for (int k = 0; k < tries; k++) {
    dt_rand4 r = dt_philox(seed, DT_RNG_NEGATIVE, (uint32_t)epoch, (uint32_t)gid, (uint32_t)((uint64_t)gid >> 32),
                           (uint32_t)(j * 1024 + k));
    item = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)ds->n_items);
    if (!dt_dataset_user_has_train_item(ds, u, item)) break;
  }
  return item;
}

int dt_batch_build_train(dt_batch_builder *bb, const dt_unit *units, int64_t n_units, int64_t epoch, uint32_t step,
                         uint64_t seed, int n_neg, int neg_tries) {
  const dt_dataset *ds = bb->ds;
  const int c = 1 + n_neg;
  int64_t n = 0;
  for (int64_t k = 0; k < n_units; k++) n += units[k].count;
  reserve_host(bb, n, n * c, 0, n_units > n ? n_units : n);
  int64_t e = 0;
  for (int64_t k = 0; k < n_units; k++)
    for (int32_t p = units[k].start; p < units[k].start + units[k].count; p++, e++) {
      int32_t u = units[k].user;
      int64_t gid = ds->user_ptr[u] + p;
      bb->user[e] = u;
      bb->pos[e] = p;
      bb->row_key[e] = gid;
      bb->cand[e * c] = ds->user_items[gid];
      for (int j = 0; j < n_neg; j++) bb->cand[e * c + 1 + j] = draw_negative(ds, u, gid, j, neg_tries, seed, epoch);
      example_context(bb, e, u, p, -1);
    }
  dt_batch *b = &bb->batch;
  b->n = n;
  b->c = c;
  b->nc = n * c;
  b->n_list = 0; /* dt_batch_build_list adds one */
  b->train = 1;
  b->step = step;
  candidate_ids(bb, n, c);
  if (bb->model->use_dynamic) {
    if (bb->model->history == DT_HISTORY_CHUNK) {
      /* one sequence per chunk, items [w, end-1); position t reads the
       * state after t - w of them */
      e = 0;
      for (int64_t k = 0; k < n_units; k++) {
        int32_t u = units[k].user, s0 = units[k].start, end = s0 + units[k].count;
        int32_t w, unused;
        dt_history_window(DT_HISTORY_CHUNK, bb->L, s0, 0, &w, &unused);
        bb->seqs[k] = (seq_t){u, w, end - 1, ds->user_ptr[u] + s0, 0};
        for (int32_t p = s0; p < end; p++, e++) {
          bb->ex_seq[e] = k;
          bb->ex_len[e] = p - w;
        }
      }
      pack_histories(bb, n_units, n);
    } else {
      own_sequences(bb, n);
    }
  } else {
    b->n_seq = b->n_tokens = 0;
    b->max_len = 0;
    for (int64_t i = 0; i < n; i++) bb->readout[i] = 0;
  }
  return dt_batch_upload_ids(bb);
}

/* The sampled protocol's negatives of user u (MODEL.md section 3): n_neg
 * DISTINCT items the user never interacted with in any split, uniformly,
 * or all of them in id order when no more than n_neg remain. The draws are
 * Philox(eval seed, user, counter): a function of (seed, user) and the data
 * set only. mark[n_items] is zeroed scratch, zeroed again on return.
 * Returns how many negatives were written to out. */
static int eval_negatives(const dt_dataset *ds, int32_t u, int n_neg, uint64_t seed, unsigned char *mark,
                          int32_t *out) {
  const int64_t lo = ds->user_ptr[u], hi = ds->user_ptr[u + 1], n_items = ds->n_items;
  int64_t seen = 0;
  for (int64_t k = lo; k < hi; k++)
    if (!mark[ds->user_items[k]]) {
      mark[ds->user_items[k]] = 1;
      seen++;
    }
  const int64_t unseen = n_items - seen;
  int got = 0;
  if (unseen <= n_neg) {
    for (int64_t i = 0; i < n_items; i++)
      if (!mark[i]) out[got++] = (int32_t)i;
  } else if (unseen >= 2 * (int64_t)n_neg) {
    /* rejection: at least half of the unseen items stay free, so a draw
     * succeeds with probability >= unseen / (2 n_items): about n_neg draws
     * for a user who has seen a small part of the catalogue */
    for (uint32_t draw = 0; got < n_neg; draw++) {
      dt_rand4 r = dt_philox(seed, DT_RNG_EVAL, (uint32_t)u, draw, 0, 0);
      int32_t item = (int32_t)dt_below64(r.v[0], r.v[1], (uint64_t)n_items);
      if (mark[item]) continue;
      mark[item] = 2;
      out[got++] = item;
    }
  } else {
    /* few more unseen items than wanted (rejection would need ~n_items
     * draws): selection sampling (Knuth's algorithm S) over the unseen
     * items in id order, one draw per item visited */
    int64_t left = unseen;
    for (int64_t i = 0; i < n_items && got < n_neg; i++) {
      if (mark[i]) continue;
      dt_rand4 r = dt_philox(seed, DT_RNG_EVAL, (uint32_t)u, (uint32_t)i, 1, 0);
      if ((int64_t)dt_below64(r.v[0], r.v[1], (uint64_t)left) < n_neg - got) out[got++] = (int32_t)i;
      left--;
    }
  }
  for (int64_t k = lo; k < hi; k++) mark[ds->user_items[k]] = 0;
  for (int j = 0; j < got; j++) mark[out[j]] = 0;
  return got;
}

static int finish_eval(dt_batch_builder *bb, int64_t n, int c) {
  dt_batch *b = &bb->batch;
  b->n = n;
  b->c = c;
  b->nc = n * c;
  b->n_list = 0;
  b->train = 0;
  b->step = 0;
  candidate_ids(bb, n, c);
  if (bb->model->use_dynamic) {
    own_sequences(bb, n);
  } else {
    b->n_seq = b->n_tokens = 0;
    b->max_len = 0;
    for (int64_t i = 0; i < n; i++) bb->readout[i] = 0;
  }
  return dt_batch_upload_ids(bb);
}

int dt_batch_build_eval(dt_batch_builder *bb, const int32_t *users, const int32_t *pos, int64_t n, int n_neg,
                        uint64_t eval_seed) {
  const dt_dataset *ds = bb->ds;
  const int c = 1 + n_neg;
  reserve_host(bb, n, n * c, 0, n);
  for (int64_t e = 0; e < n; e++) {
    int32_t u = users[e];
    int64_t gid = ds->user_ptr[u] + pos[e];
    bb->user[e] = u;
    bb->pos[e] = pos[e];
    bb->row_key[e] = gid;
    bb->cand[e * c] = ds->user_items[gid];
    if (!bb->eval_mark) bb->eval_mark = dt_xcalloc((size_t)(ds->n_items > 0 ? ds->n_items : 1), 1);
    int got = eval_negatives(ds, u, n_neg, eval_seed, bb->eval_mark, bb->cand + e * c + 1);
    bb->eval_n_neg[e] = got;
    /* a user with fewer unseen items: the row is padded with the positive,
     * which callers skip (dt_batch_host_negative_counts) */
    for (int j = got; j < n_neg; j++) bb->cand[e * c + 1 + j] = bb->cand[e * c];
    example_context(bb, e, u, pos[e], -1);
  }
  return finish_eval(bb, n, c);
}

int dt_batch_build_candidates(dt_batch_builder *bb, const int32_t *users, const int32_t *pos, const int64_t *ts,
                              int64_t n, const int32_t *cands, int c) {
  const dt_dataset *ds = bb->ds;
  reserve_host(bb, n, n * c, 0, n);
  for (int64_t e = 0; e < n; e++) {
    bb->user[e] = users[e];
    bb->pos[e] = pos[e];
    bb->row_key[e] = ds->user_ptr[users[e]] + pos[e];
    memcpy(bb->cand + e * c, cands + e * c, (size_t)c * sizeof(int32_t));
    example_context(bb, e, users[e], pos[e], ts ? ts[e] : -1);
  }
  return finish_eval(bb, n, c);
}

const dt_batch *dt_batch_get(const dt_batch_builder *bb) { return &bb->batch; }
const int32_t *dt_batch_host_candidates(const dt_batch_builder *bb) { return bb->cand; }
const int32_t *dt_batch_host_users(const dt_batch_builder *bb) { return bb->user; }
const int32_t *dt_batch_host_negative_counts(const dt_batch_builder *bb) { return bb->eval_n_neg; }

int dt_batch_build_list(dt_batch_builder *bb, int64_t n_shared, uint64_t seed, int64_t step) {
  return dt_batch_list_build(&bb->list, bb->be, bb->ds->n_items, bb->cand, &bb->batch, n_shared, seed, step);
}

int32_t *dt_batch_table_ids(dt_batch_builder *bb, int table, int part, int64_t *count) {
  const dt_batch *b = &bb->batch;
  const dt_model *m = bb->model;
  *count = 0;
  if (part == 2) return b->n_list > 0 ? dt_batch_list_ids(bb->list, m, table, count) : NULL;
  switch (table) {
    case DT_TABLE_USER:
      if (part == 1 && m->version != DT_V3 && b->n_list > 0) { /* the list's user side reads one row per example */
        *count = b->n;
        return bb->ids_user;
      }
      if (part != 0) return NULL;
      *count = m->version == DT_V3 ? b->n : b->nc;
      return m->version == DT_V3 ? bb->ids_user : bb->ids_user_rep;
    case DT_TABLE_ITEM:
      if (part != 0) return NULL;
      *count = b->nc;
      return bb->ids_item;
    case DT_TABLE_ITEM_BIAS:
      if (part != 0 || m->version != DT_V3) return NULL;
      *count = b->nc;
      return bb->ids_bias;
    case DT_TABLE_DYN_ITEM:
      if (!m->use_dynamic) return NULL;
      if (part == 0) {
        *count = b->n_tokens;
        return bb->ids_dyn_tok;
      }
      if (part == 1 && m->version == DT_V3) {
        *count = b->nc;
        return bb->ids_dyn_cand;
      }
      return NULL;
  }
  return NULL;
}
