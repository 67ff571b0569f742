/* params.c: which parameters a model has (by version and variant), their
 * layout in the contiguous dense buffer, and their seeded initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"
#include "model_internal.h"

int dt_model_kind(const dt_config *cfg, dt_model_version *version, dt_model_variant *variant,
                  dt_history_mode *history) {
  const char *v = cfg->model_version;
  *version = !strcmp(v, "v1") ? DT_V1 : !strcmp(v, "v2") ? DT_V2 : DT_V3;
  const char *a = cfg->model_variant;
  if (!strcmp(a, "full"))
    *variant = DT_VARIANT_FULL;
  else if (!strcmp(a, "no_dynamic"))
    *variant = DT_VARIANT_NO_DYNAMIC;
  else if (!strcmp(a, "no_content"))
    *variant = DT_VARIANT_NO_CONTENT;
  else if (!strcmp(a, "no_attention"))
    *variant = DT_VARIANT_NO_ATTENTION;
  else if (!strcmp(a, "static_only"))
    *variant = DT_VARIANT_STATIC_ONLY;
  else if (!strcmp(a, "dynamic_only"))
    *variant = DT_VARIANT_DYNAMIC_ONLY;
  else
    return dt_fail(DT_EXIT_USAGE, "config key 'model.variant' = \"%s\" is not a known variant", a);
  const char *h = dt_config_history_mode(cfg);
  *history = !strcmp(h, "prefix")       ? DT_HISTORY_PREFIX
             : !strcmp(h, "user_train") ? DT_HISTORY_USER_TRAIN
                                        : DT_HISTORY_CHUNK;
  return DT_OK;
}

static dt_param *add_param(dt_model *m, const char *name, int64_t d0, int64_t d1, dt_init_kind init) {
  if (m->n_params >= DT_MAX_PARAMS) dt_panic("too many parameters");
  dt_param *p = &m->params[m->n_params++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->ndim = d1 > 0 ? 2 : 1;
  p->shape[0] = d0;
  p->shape[1] = d1 > 0 ? d1 : 0;
  p->numel = d1 > 0 ? d0 * d1 : d0;
  p->init = init;
  p->fan_out = d0;
  p->fan_in = d1 > 0 ? d1 : 1;
  /* Keep every parameter 16-float aligned (64 bytes) in the buffer. */
  p->offset = m->n_dense;
  m->n_dense += (p->numel + 15) / 16 * 16;
  return p;
}

/* A Linear layer: weight [out, in] (Xavier) and bias [out] (zero). */
static dt_linear_view add_linear(dt_model *m, const char *prefix, int64_t in, int64_t out, int bias) {
  char name[DT_NAME_LEN];
  dt_linear_view v = {-1, -1};
  snprintf(name, sizeof name, "%s.weight", prefix);
  v.weight = add_param(m, name, out, in, DT_INIT_XAVIER)->offset;
  if (bias) {
    snprintf(name, sizeof name, "%s.bias", prefix);
    v.bias = add_param(m, name, out, 0, DT_INIT_ZERO)->offset;
  }
  return v;
}

/* torch.nn.GRU's parameter names of the two layers */
static const char *const gru_names[2][4] = {
    {"dynamic.gru.weight_ih_l0", "dynamic.gru.weight_hh_l0", "dynamic.gru.bias_ih_l0", "dynamic.gru.bias_hh_l0"},
    {"dynamic.gru.weight_ih_l1", "dynamic.gru.weight_hh_l1", "dynamic.gru.bias_ih_l1", "dynamic.gru.bias_hh_l1"}};

static dt_gru_view add_gru_layer(dt_model *m, int layer, int64_t in, int64_t hidden) {
  const char *const *n = gru_names[layer];
  dt_gru_view v;
  v.weight_ih = add_param(m, n[0], 3 * hidden, in, DT_INIT_GRU_UNIFORM)->offset;
  v.weight_hh = add_param(m, n[1], 3 * hidden, hidden, DT_INIT_GRU_UNIFORM)->offset;
  v.bias_ih = add_param(m, n[2], 3 * hidden, 0, DT_INIT_GRU_UNIFORM)->offset;
  v.bias_hh = add_param(m, n[3], 3 * hidden, 0, DT_INIT_GRU_UNIFORM)->offset;
  return v;
}

/* A LayerNorm: weight [d] (one) and bias [d] (zero), in a Linear view. */
static dt_linear_view add_layer_norm(dt_model *m, const char *prefix, int64_t d) {
  char name[DT_NAME_LEN];
  dt_linear_view v;
  snprintf(name, sizeof name, "%s.weight", prefix);
  v.weight = add_param(m, name, d, 0, DT_INIT_ONE)->offset;
  snprintf(name, sizeof name, "%s.bias", prefix);
  v.bias = add_param(m, name, d, 0, DT_INIT_ZERO)->offset;
  return v;
}

/* The SASRec encoder's dense parameters (MODEL.md 1c), PyTorch's names:
 * dynamic.pos_emb, dynamic.blocks.K.{ln1, attn, ln2, ffn}, dynamic.ln_final. */
static void add_sasrec(dt_model *m) {
  const int64_t D = m->dim;
  dt_param_views *pv = &m->pv;
  char prefix[DT_NAME_LEN];
  pv->pos_emb = add_param(m, "dynamic.pos_emb", m->pos_rows, D, DT_INIT_NORMAL_001)->offset;
  for (int k = 0; k < m->sasrec_blocks; k++) {
    dt_sasrec_block_view *bv = &pv->blocks[k];
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.ln1", k);
    bv->ln1 = add_layer_norm(m, prefix, D);
    /* torch.nn.MultiheadAttention's names: one [3d, d] input projection */
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.attn.in_proj_weight", k);
    bv->in_proj.weight = add_param(m, prefix, 3 * D, D, DT_INIT_XAVIER)->offset;
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.attn.in_proj_bias", k);
    bv->in_proj.bias = add_param(m, prefix, 3 * D, 0, DT_INIT_ZERO)->offset;
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.attn.out_proj", k);
    bv->out_proj = add_linear(m, prefix, D, D, 1);
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.ln2", k);
    bv->ln2 = add_layer_norm(m, prefix, D);
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.ffn.fc1", k);
    bv->fc1 = add_linear(m, prefix, D, D, 1);
    snprintf(prefix, sizeof prefix, "dynamic.blocks.%d.ffn.fc2", k);
    bv->fc2 = add_linear(m, prefix, D, D, 1);
  }
  pv->ln_final = add_layer_norm(m, "dynamic.ln_final", D);
}

void dt_model_layout(dt_model *m) {
  const int64_t D = m->dim, H = m->gru_hidden;
  dt_param_views *pv = &m->pv;
  m->n_params = 0;
  m->n_dense = 0;
  const dt_linear_view none = {-1, -1};
  const dt_gru_view no_gru = {-1, -1, -1, -1};
  memset(pv, 0, sizeof *pv);
  pv->static_fc1 = pv->static_fc2 = pv->dynamic_proj = pv->ln_final = none;
  pv->gru[0] = pv->gru[1] = no_gru;
  pv->pos_emb = -1;
  for (int k = 0; k < DT_SASREC_MAX_BLOCKS; k++)
    pv->blocks[k] = (dt_sasrec_block_view){none, none, none, none, none, none};
  pv->content_fc1 = pv->content_fc2 = pv->content_fc3 = pv->content_user_proj = none;
  pv->gate_fc1 = pv->gate_fc2 = pv->head_fc1 = pv->head_fc2 = none;
  if (m->use_static_mlp && m->use_static) {
    pv->static_fc1 = add_linear(m, "static.fc1", 2 * D, m->static_hidden, 1);
    pv->static_fc2 = add_linear(m, "static.fc2", m->static_hidden, D, 1);
  }
  if (m->use_dynamic && m->encoder_kind == DT_ENCODER_GRU) {
    pv->gru[0] = add_gru_layer(m, 0, D, H);
    pv->gru[1] = add_gru_layer(m, 1, H, H);
    pv->dynamic_proj = add_linear(m, "dynamic.proj", H, D, 1);
  }
  if (m->use_dynamic && m->encoder_kind == DT_ENCODER_SASREC) add_sasrec(m);
  if (m->use_content) {
    pv->content_fc1 = add_linear(m, "content.fc1", m->vocab, m->content_h1, 1);
    m->params[m->n_params - 2].transposed = 1; /* stored [vocab, h1]: TF-IDF rows pick contiguous rows */
    pv->content_fc2 = add_linear(m, "content.fc2", m->content_h1, m->content_h2, 1);
    pv->content_fc3 = add_linear(m, "content.fc3", m->content_h2, D, 1);
    if (m->version == DT_V3) pv->content_user_proj = add_linear(m, "content.user_proj", D, D, 0);
  }
  if (m->use_gate) {
    pv->gate_fc1 = add_linear(m, "gate.fc1", m->gate_in, m->gate_hidden, 1);
    pv->gate_fc2 = add_linear(m, "gate.fc2", m->gate_hidden, 3, 1);
    /* v2/v3: gate.fc2 starts near uniform attention (MODEL.md "Loss") */
    if (m->version != DT_V1) m->params[m->n_params - 2].init = DT_INIT_NORMAL_001;
  }
  if (m->use_head) {
    pv->head_fc1 = add_linear(m, "head.fc1", D, m->head_hidden, 1);
    pv->head_fc2 = add_linear(m, "head.fc2", m->head_hidden, 1, 1);
  }
  memset(m->tables, 0, sizeof m->tables);
  struct {
    const char *name;
    int64_t rows;
    int dim;
    int present, zero_init;
    int64_t pad_row;
  } t[DT_MAX_TABLES] = {
      /* dynamic_only scores without them (as python/dtrain_torch, whose
       * checkpoint loader accepts their absence) */
      {"static.user_emb", m->n_users, (int)D, m->use_static, 0, -1},
      {"static.item_emb", m->n_items, (int)D, m->use_static, 0, -1},
      {"static.item_bias", m->n_items, 1, m->version == DT_V3, 1, -1},    /* biases start at 0 */
      {"dynamic.item_emb", m->n_items + 1, (int)D, m->use_dynamic, 0, 0}, /* row 0: padding, 0 */
  };
  for (int i = 0; i < DT_MAX_TABLES; i++) {
    dt_table *tb = &m->tables[i];
    snprintf(tb->name, sizeof tb->name, "%s", t[i].name);
    tb->present = t[i].present;
    tb->rows = t[i].rows;
    tb->dim = t[i].dim;
    tb->zero_init = t[i].zero_init;
    tb->pad_row = t[i].pad_row;
    tb->row_lo = 0;
    tb->row_hi = t[i].rows;
  }
}

const dt_param *dt_model_param(const dt_model *m, const char *name) {
  for (int i = 0; i < m->n_params; i++)
    if (!strcmp(m->params[i].name, name)) return &m->params[i];
  return NULL;
}

/* The initial value of element e (in PyTorch layout) of a parameter. */
static float init_value(const dt_param *p, uint32_t hash, uint64_t seed, int64_t e, int64_t gru_hidden) {
  dt_rand4 r = dt_philox(seed, DT_RNG_INIT, hash, (uint32_t)e, (uint32_t)((uint64_t)e >> 32), 0);
  switch (p->init) {
    case DT_INIT_ZERO: return 0.0f;
    case DT_INIT_XAVIER: {
      double a = sqrt(6.0 / (double)(p->fan_in + p->fan_out));
      return (float)((2.0 * dt_u01d(r.v[0], r.v[1]) - 1.0) * a);
    }
    case DT_INIT_GRU_UNIFORM: {
      double a = 1.0 / sqrt((double)gru_hidden);
      return (float)((2.0 * dt_u01d(r.v[0], r.v[1]) - 1.0) * a);
    }
    case DT_INIT_NORMAL_001: return 0.01f * dt_normal_from(r.v[0], r.v[1]);
    case DT_INIT_ONE: return 1.0f;
  }
  return 0.0f;
}

int dt_model_init(dt_model *m, uint64_t seed) {
  dt_backend *be = m->be;
  m->seed = seed;
  float *host = dt_xcalloc((size_t)m->n_dense, sizeof(float));
  for (int i = 0; i < m->n_params; i++) {
    const dt_param *p = &m->params[i];
    uint32_t hash = dt_name_hash(p->name);
    float *dst = host + p->offset;
    for (int64_t e = 0; e < p->numel; e++) {
      float x = init_value(p, hash, seed, e, m->gru_hidden);
      if (p->transposed) {
        int64_t r = e / p->shape[1], c = e % p->shape[1]; /* PyTorch [r, c] -> stored [c, r] */
        dst[c * p->shape[0] + r] = x;
      } else {
        dst[e] = x;
      }
    }
  }
  int rc = be->upload(be, m->w, host, (size_t)m->n_dense * sizeof(float));
  free(host);
  DT_TRY(rc);
  DT_TRY(be->zero(be, m->m, (size_t)m->n_dense * sizeof(float)));
  DT_TRY(be->zero(be, m->v, (size_t)m->n_dense * sizeof(float)));
  DT_TRY(be->zero(be, m->g, (size_t)m->n_dense * sizeof(float)));
  m->adam_step = 0;

  /* tables: N(0, 0.01^2), item bias 0, padding row 0 of dynamic.item_emb 0 */
  for (int t = 0; t < DT_MAX_TABLES; t++) DT_TRY(dt_table_init(&m->tables[t], seed));
  return DT_OK;
}
