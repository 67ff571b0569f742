/* model_internal.h: what the model's source files share (not public). */
#ifndef DTRAIN_MODEL_INTERNAL_H
#define DTRAIN_MODEL_INTERNAL_H

#include <stdint.h>

#include "dtrain/model.h"

/* Activations and their gradients, sized by three batch dimensions:
 * n (examples), nc (candidate rows) and t (GRU tokens). Grown on demand,
 * never shrunk. Backend memory. */
typedef struct dt_model_work {
  int64_t cap_n, cap_nc, cap_t;
  /* per example [n, .] */
  float *eu, *d_eu;           /* v3 user embeddings [n, D] */
  float *up, *d_up;           /* v3 content.user_proj(e_u) [n, D] */
  float *hdin, *d_hdin;       /* GRU read-outs [n, H] */
  float *hd, *d_hd;           /* dynamic tower output [n, D] */
  float *g1, *d_g1;           /* gate hidden [n, gate_hidden] */
  float *logits, *d_logits;   /* [n, 3] */
  float *alpha, *d_alpha;     /* [n, 3] */
  float *alpha_const;         /* fixed alpha for no_attention / static_only [n, 3] */
  /* per candidate row [nc, .] */
  float *eu_rep;              /* v1/v2 user embedding of each candidate row [nc, D] */
  float *ei;                  /* item embeddings [nc, D] */
  float *s1, *d_s1;           /* static.fc1 output [nc, static_hidden] */
  float *hs, *d_hs;           /* static tower output [nc, D] */
  float *c1, *d_c1;           /* content.fc1 output [nc, h1] */
  float *c2, *d_c2;           /* content.fc2 output [nc, h2] */
  float *hc, *d_hc;           /* content tower output [nc, D] */
  float *di;                  /* v3 dynamic.item_emb of the candidates [nc, D] */
  float *z, *d_z;             /* v1/v2 fused representation [nc, D] */
  float *hh, *d_hh;           /* head hidden [nc, head_hidden] */
  float *scores, *d_scores;   /* [nc] */
  float *ss, *sd, *sc;        /* v3 tower scores [nc] */
  float *d_ss, *d_sd, *d_sc;
  /* per GRU token [t(+1), .] */
  float *x0;                  /* token embeddings [t, D] */
  float *xg0, *xg1;           /* input pre-activations [t, 3H] */
  float *cache0, *cache1;     /* gate cache [t, 4H] */
  float *h0, *h1;             /* states [t+1, H]; row t of h1 is the zero state */
  float *x1;                  /* dropout(h0), layer 2 input [t, H] */
  float *d_h0, *d_h1, *d_x1;  /* [t+1, H] */
  float *d_xg;                /* [t, 3H] */
  float *hg_step, *d_hg_step; /* one step's hidden pre-activations [n_seq <= t, 3H] */
  int64_t readout_rows;       /* n_tokens of the last forward */
} dt_model_work;

/* Lays out the parameters and tables for m's version/variant/sizes. */
void dt_model_layout(dt_model *m);
/* Pointers into the dense buffers by name (panics when absent: a bug). */
float *dt_model_w(dt_model *m, const char *name);
float *dt_model_g(dt_model *m, const char *name);
uint32_t dt_name_hash(const char *name);

int dt_model_work_ensure(dt_model *m, int64_t n, int64_t nc, int64_t t);
void dt_model_work_free(dt_model *m);
/* Makes sure a table's sparse-gradient buffers hold `rows` rows. */
int dt_table_grad_reserve(dt_model *m, dt_table *tb, int64_t rows);

#endif
