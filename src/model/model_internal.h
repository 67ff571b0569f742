/* model_internal.h: what the model's source files share (not public). */
#ifndef DTRAIN_MODEL_INTERNAL_H
#define DTRAIN_MODEL_INTERNAL_H

#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/model.h"

/* Activations and their gradients, sized by three batch dimensions:
 * n (examples), nc (candidate rows) and t (GRU tokens). Grown on demand,
 * never shrunk. Backend memory. */
typedef struct dt_model_work {
  int64_t cap_n, cap_nc, cap_t;
  /* per example [n, .] */
  float *eu, *d_eu;         /* v3 user embeddings [n, D] */
  float *up, *d_up;         /* v3 content.user_proj(e_u) [n, D] */
  float *hdin, *d_hdin;     /* GRU read-outs [n, H] */
  float *hd, *d_hd;         /* dynamic tower output [n, D] */
  float *g1, *d_g1;         /* gate hidden [n, gate_hidden] */
  float *logits, *d_logits; /* [n, 3] */
  float *alpha, *d_alpha;   /* [n, 3] */
  float *alpha_const;       /* fixed alpha for no_attention / static_only [n, 3] */
  /* per candidate row [nc, .] */
  float *eu_rep;            /* v1/v2 user embedding of each candidate row [nc, D] */
  float *ei;                /* item embeddings [nc, D] */
  float *s1, *d_s1;         /* static.fc1 output [nc, static_hidden] */
  float *hs, *d_hs;         /* static tower output [nc, D] */
  float *c1, *d_c1;         /* content.fc1 output [nc, h1] */
  float *c2, *d_c2;         /* content.fc2 output [nc, h2] */
  float *hc, *d_hc;         /* content tower output [nc, D] */
  float *di;                /* v3 dynamic.item_emb of the candidates [nc, D] */
  float *z, *d_z;           /* v1/v2 fused representation [nc, D] */
  float *hh, *d_hh;         /* head hidden [nc, head_hidden] */
  float *scores, *d_scores; /* [nc] */
  float *ss, *sd, *sc;      /* v3 tower scores [nc] */
  float *d_ss, *d_sd, *d_sc;
  /* per GRU token [t(+1), .] */
  float *x0;                     /* token embeddings [t, D] */
  float *xg0, *xg1;              /* input pre-activations [t, 3H] */
  float *cache0, *cache1;        /* gate cache [t, 4H] */
  float *h0, *h1;                /* states [t+1, H]; row t of h1 is the zero state */
  float *x1;                     /* dropout(h0), layer 2 input [t, H] */
  float *d_h0, *d_h1, *d_x1;     /* [t+1, H] */
  float *d_xg;                   /* [t, 3H] */
  float *hg_step, *d_hg_step;    /* one step's hidden pre-activations [n_seq <= t, 3H] */
  int64_t readout_rows;          /* n_tokens of the last forward */
  struct dt_sasrec_work *sasrec; /* the SASRec encoder's buffers (encoder_sasrec.c) */
  uint64_t fwd_serial;           /* counts forward passes (the item-list path's state belongs to one) */
  struct dt_list_work *list;     /* the item-list path's buffers (model_items.c), or NULL */
} dt_model_work;

/* The SASRec encoder's activations (encoder_sasrec.c), [T, .] per token
 * (T = b->n_tokens), grown on demand. */
typedef struct dt_sasrec_work {
  int64_t cap_t, cap_p;               /* tokens, probability floats per block */
  float *arena, *parena;              /* the buffers below, carved from two allocations */
  float *x[DT_SASREC_MAX_BLOCKS + 1]; /* block k's input [T, D]; x[blocks] the last block's output */
  float *ln1[DT_SASREC_MAX_BLOCKS], *qkv[DT_SASREC_MAX_BLOCKS], *att[DT_SASREC_MAX_BLOCKS];
  float *a[DT_SASREC_MAX_BLOCKS], *ln2[DT_SASREC_MAX_BLOCKS], *f1[DT_SASREC_MAX_BLOCKS];
  float *mean1[DT_SASREC_MAX_BLOCKS], *rstd1[DT_SASREC_MAX_BLOCKS];
  float *mean2[DT_SASREC_MAX_BLOCKS], *rstd2[DT_SASREC_MAX_BLOCKS];
  float *probs[DT_SASREC_MAX_BLOCKS]; /* attn_fwd's P, kept for the backward */
  float *y, *meanf, *rstdf;           /* ln_final's output [T + 1, D] (row T: the zero state) */
  float *tmp, *dln, *df1;             /* backward scratch [T, D] */
  float *dqkv;                        /* [T, 3D] */
} dt_sasrec_work;

/* The item-list path's buffers and state (model_items.c): n examples of
 * the last forward, k items of a block, P = n k (example, item) pairs. */
typedef struct dt_list_work {
  int64_t cap_n, cap_k, cap_p;
  uint64_t user_serial;  /* the forward whose user side is below (0: none) */
  uint64_t bwd_serial;   /* the forward whose list backward has begun (0: none) */
  int64_t blk_lo, blk_k; /* the block last scored (its item side and pairs are below) */
  /* per example [n, .] */
  float *u[3], *du[3];         /* v3: a_s e_u, a_d h_d, a_c P e_u and their gradients [n, D] */
  float *eu;                   /* v1/v2: e_u [n, D] */
  float *upart, *d_upart;      /* v1/v2: e_u W1[:, :D]^T + b1 [n, SH] */
  float *d_eu, *d_up, *d_hd;   /* [n, D] */
  float *d_alpha, *dalpha_tmp; /* [n, 3] */
  int64_t *row_key_host;       /* the examples' dropout keys [n] (v1/v2 pairs) */
  /* per item of a block [k, .] */
  float *vi[3];                        /* e_i, d_{i+1} (v3), h_c(i) [k, D] */
  float *bias;                         /* v3 item biases [k] */
  float *c1, *c2, *d_c1, *d_c2, *d_hc; /* the content tower on the block's items */
  float *ipart, *d_ipart;              /* v1/v2: e_i W1[:, D:]^T [k, SH] */
  /* per (example, item) pair [P, .], row i k + j (v1/v2) */
  float *s1, *d_s1, *hs, *d_hs, *hcp, *d_hcp, *z, *d_z, *hh, *d_hh, *ones;
  int32_t *pair_i, *pair_j;          /* [P] the pair's example and block item */
  int64_t *pair_key, *pair_key_host; /* [P] dropout keys of the pairs */
  int64_t pairs_n, pairs_k;          /* the shape pair_i / pair_j hold */
} dt_list_work;

/* Lays out the parameters (filling m->pv) and tables for m's
 * version/variant/sizes. */
void dt_model_layout(dt_model *m);

/* ---- Layers ---- */

/* A Linear layer's parameters resolved against the current buffers (the
 * buffers can move: dt_model_adopt_dense). b and db are NULL without bias. */
typedef struct {
  const float *w, *b;
  float *dw, *db;
} dt_linear;
static inline dt_linear dt_linear_of(const dt_model *m, dt_linear_view v) {
  dt_linear l = {m->w + v.weight, v.bias >= 0 ? m->w + v.bias : NULL, m->g + v.weight,
                 v.bias >= 0 ? m->g + v.bias : NULL};
  return l;
}

/* y [rows, out] = x [rows, in] W^T + b (PyTorch layout: W [out, in]) */
static inline int dt_linear_fwd(dt_backend *be, float *y, const float *x, dt_linear l, int64_t rows, int in, int out) {
  if (rows == 0) return DT_OK;
  DT_TRY(be->gemm(be, 0, 1, (int)rows, out, in, 1.0f, x, in, l.w, in, 0.0f, y, out));
  if (l.b) DT_TRY(be->add_bias(be, y, l.b, rows, out));
  return DT_OK;
}

/* dW += dy^T x; db += colsum(dy); dx = dy W (+= when accumulate_dx; dx may be NULL). */
static inline int dt_linear_bwd(dt_backend *be, const float *dy, const float *x, dt_linear l, float *dx,
                                int accumulate_dx, int64_t rows, int in, int out) {
  if (rows == 0) return DT_OK;
  DT_TRY(be->gemm(be, 1, 0, out, in, (int)rows, 1.0f, dy, out, x, in, 1.0f, l.dw, in));
  if (l.db) DT_TRY(be->bias_grad(be, l.db, dy, rows, out));
  if (dx) DT_TRY(be->gemm(be, 0, 0, (int)rows, in, out, 1.0f, dy, out, l.w, in, accumulate_dx ? 1.0f : 0.0f, dx, in));
  return DT_OK;
}

/* The dropout key of a site (row keys of the rows it drops in). */
static inline dt_dropout_key dt_model_key(const dt_model *m, const dt_batch *b, uint32_t site,
                                          const int64_t *row_keys) {
  dt_dropout_key k = {m->seed, b->step, site, row_keys};
  return k;
}
/* The key of a ReLU without dropout (p = 0: never consulted). */
static inline dt_dropout_key dt_model_no_dropout(const dt_model *m) {
  dt_dropout_key k = {m->seed, 0, 0, NULL};
  return k;
}

/* ---- Towers (towers.c): each reads the batch and writes m->work ---- */

/* The dynamic tower's sequence encoder: the batch's packed history tokens
 * (b->ids_dyn_tok, rows of dynamic.item_emb) -> one state per example (the
 * read-out token b->readout, or the zero state for an empty history):
 * with `projected`, gru_hidden floats in work->hdin that dynamic.proj maps
 * to h_d; without, h_d itself (dim floats) in work->hd. backward takes
 * work->d_hdin (projected) or work->d_hd, accumulates the encoder's weight
 * gradients and appends the tokens' gradient rows to dynamic.item_emb's
 * sparse gradient. free_work (may be NULL) releases buffers the encoder
 * keeps in work. */
typedef struct dt_seq_encoder {
  const char *name;
  int projected;
  int (*forward)(dt_model *m, const dt_batch *b);
  int (*backward)(dt_model *m, const dt_batch *b);
  void (*free_work)(dt_model *m);
} dt_seq_encoder;
extern const dt_seq_encoder dt_encoder_gru;    /* encoder_gru.c: 2-layer GRU, PyTorch's */
extern const dt_seq_encoder dt_encoder_sasrec; /* encoder_sasrec.c: pre-LN self-attention (MODEL.md 1c) */

/* history -> encoder (-> dynamic.proj for the GRU) -> work->hd [n, D] */
int dt_dynamic_fwd(dt_model *m, const dt_batch *b);
int dt_dynamic_bwd(dt_model *m, const dt_batch *b);
/* TF-IDF rows of `items` -> work->hc-like `out` [rows, D]; b NULL = eval
 * mode; keys: the rows' dropout keys (NULL: b->cand_key) */
int dt_content_fwd(dt_model *m, const int32_t *items, int64_t rows, const dt_batch *b, const int64_t *keys, float *c1,
                   float *c2, float *out);
/* The content tower's backward from d_hc [rows, D] of the forward above
 * (its c1, c2; d_c1, d_c2 are scratch of the same shapes). */
int dt_content_bwd_rows(dt_model *m, const dt_batch *b, const int32_t *items, int64_t rows, const int64_t *keys,
                        const float *c1, const float *c2, const float *d_hc, float *d_c1, float *d_c2);
/* ... of the candidates' forward (work->hc, b->cand) */
int dt_content_bwd(dt_model *m, const dt_batch *b);
/* context -> alpha [n, 3] (the fixed alpha when the model has no gate) */
int dt_gate_fwd(dt_model *m, const dt_batch *b, const float **alpha);
int dt_gate_bwd(dt_model *m, const dt_batch *b);
/* v1/v2: [e_u ; e_i] -> work->hs [nc, D]; backward ends in the two tables' sparse rows */
int dt_static_fwd(dt_model *m, const dt_batch *b);
int dt_static_bwd(dt_model *m, const dt_batch *b);
/* Appends `rows` gradient rows of table t (ids from `ids`, backend memory):
 * *slot is where the caller writes them. */
int dt_model_grad_slot(dt_model *m, int t, const int32_t *ids, int64_t rows, float **slot);

/* Before a backward pass: every present table's sparse gradient emptied,
 * with room for the batch's rows plus extra_rows. */
int dt_model_grad_begin(dt_model *m, const dt_batch *b, int64_t extra_rows);

/* ---- The item list (model_items.c) ---- */
/* Whether a list backward has begun for the last forward pass. */
int dt_list_backward_pending(const dt_model *m);
/* In dt_model_backward, after the fusion's backward: adds the list's user
 * side (h_d, alpha; the user rows and content.user_proj directly). */
int dt_list_finish(dt_model *m, const dt_batch *b);
void dt_list_work_free(dt_model *m);

int dt_model_work_ensure(dt_model *m, int64_t n, int64_t nc, int64_t t);
void dt_model_work_free(dt_model *m);

#endif
