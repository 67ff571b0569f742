/* model.h: the hybrid recommender of MODEL.md section 1, written once
 * against the backend op set (backend.h).
 *
 * Two fusion designs over the same towers:
 *   v1/v2 (the thesis): z = a_s h_s + a_d h_d + a_c h_c -> head MLP -> score
 *   v3 (dtrain):        s = a_s <e_u,e_i> + a_d <h_d, d_i> + a_c <P e_u, h_c(i)> + b_i
 * each with the six ablation variants, and either sequence encoder (GRU or
 * SASRec, MODEL.md 1c) as the dynamic tower.
 *
 * Parameters: every dense parameter is a view into one contiguous buffer
 * (w), mirrored by its gradient (g) and Adam moments (m, v), so one
 * all-reduce and one fused Adam cover them all. Embedding tables are
 * separate (dt_table, embed.h), updated sparsely. Names and shapes are MODEL.md's
 * (PyTorch layout); the one parameter stored transposed internally
 * (content.fc1.weight, kept [vocab, 512] so a TF-IDF row selects
 * contiguous rows) is transposed back at checkpoint time.
 *
 * A step: dt_model_forward (scores [n, c] and alpha [n, 3]) ->
 * the caller's loss gives dscores and dalpha -> dt_model_backward, which
 * accumulates dense gradients into g and writes each table's sparse
 * gradient rows (dt_table.grad_ids / grad_rows, in the batch's id space).
 *
 * Ownership: dt_model_create allocates everything (backend memory included);
 * dt_model_free releases it. The model keeps pointers to the config and the
 * backend, which must outlive it.
 */
#ifndef DTRAIN_MODEL_H
#define DTRAIN_MODEL_H

#include <stdint.h>

#include "dtrain/backend.h"
#include "dtrain/config.h"
#include "dtrain/embed.h"

typedef enum { DT_V1 = 1, DT_V2 = 2, DT_V3 = 3 } dt_model_version;
typedef enum {
  DT_VARIANT_FULL = 0,
  DT_VARIANT_NO_DYNAMIC,
  DT_VARIANT_NO_CONTENT,
  DT_VARIANT_NO_ATTENTION,
  DT_VARIANT_STATIC_ONLY,
  DT_VARIANT_DYNAMIC_ONLY /* alpha = (0, 1, 0): the sequence encoder alone (v3: plus static.item_bias) */
} dt_model_variant;
typedef enum { DT_HISTORY_PREFIX = 0, DT_HISTORY_USER_TRAIN, DT_HISTORY_CHUNK } dt_history_mode;
/* The dynamic tower's sequence encoder (model.encoder, MODEL.md 1c). */
typedef enum { DT_ENCODER_GRU = 0, DT_ENCODER_SASREC } dt_encoder_kind;

/* How a parameter is initialised (MODEL.md "Initialisation"). */
typedef enum { DT_INIT_ZERO = 0, DT_INIT_XAVIER, DT_INIT_GRU_UNIFORM, DT_INIT_NORMAL_001, DT_INIT_ONE } dt_init_kind;

/* 12 parameters per SASRec block (model.sasrec_blocks <= 8) and the rest */
#define DT_MAX_PARAMS 128
#define DT_SASREC_MAX_BLOCKS 8
#define DT_MAX_TABLES 4

/* One dense parameter: a view into the contiguous buffers. */
typedef struct {
  char name[DT_NAME_LEN]; /* MODEL.md name, e.g. "static.fc1.weight" */
  int ndim;
  int64_t shape[2]; /* PyTorch shape ([out, in] for Linear weights) */
  int64_t numel;
  int64_t offset; /* in floats, into w/g/m/v */
  int transposed; /* stored as [shape[1], shape[0]] */
  dt_init_kind init;
  int64_t fan_in, fan_out; /* for Xavier */
} dt_param;

/* Where the model code finds each dense parameter: offsets (floats) into
 * w/g/m/v, filled once by the layout (-1: the model has no such parameter).
 * The names stay in params[] for checkpoints and the init streams; the
 * model code uses these fields (llm.c's ParameterTensors). */
typedef struct {
  int64_t weight, bias;
} dt_linear_view;
typedef struct {
  int64_t weight_ih, weight_hh, bias_ih, bias_hh;
} dt_gru_view;
/* One pre-LN SASRec block (MODEL.md 1c; LayerNorms are weight + bias views). */
typedef struct {
  dt_linear_view ln1, in_proj, out_proj, ln2, fc1, fc2; /* in_proj: attn.in_proj_weight [3d, d] / _bias [3d] */
} dt_sasrec_block_view;
typedef struct {
  dt_linear_view static_fc1, static_fc2; /* v1/v2 static tower */
  dt_gru_view gru[2];                    /* dynamic tower, 2 layers */
  dt_linear_view dynamic_proj;           /* GRU encoder only */
  int64_t pos_emb;                       /* SASRec: dynamic.pos_emb [2L, D] (-1: none) */
  dt_sasrec_block_view blocks[DT_SASREC_MAX_BLOCKS];
  dt_linear_view ln_final; /* SASRec: dynamic.ln_final */
  dt_linear_view content_fc1, content_fc2, content_fc3;
  dt_linear_view content_user_proj; /* v3 (no bias) */
  dt_linear_view gate_fc1, gate_fc2;
  dt_linear_view head_fc1, head_fc2; /* v1/v2 */
} dt_param_views;

/* Which table (index into dt_model.tables). */
enum { DT_TABLE_USER = 0, DT_TABLE_ITEM, DT_TABLE_ITEM_BIAS, DT_TABLE_DYN_ITEM };

/* A batch on the backend (built on the host by batch.h, uploaded). */
typedef struct {
  int64_t n;  /* examples */
  int c;      /* candidates per example (col 0 = positive in training) */
  int64_t nc; /* n * c */
  /* per-table row ids (in each table's id space, see dt_table.view) */
  const int32_t *ids_user;     /* [n]   static.user_emb */
  const int32_t *ids_user_rep; /* [nc]  static.user_emb, user of each candidate row (v1/v2 static tower) */
  const int32_t *ids_item;     /* [nc]  static.item_emb */
  const int32_t *ids_bias;     /* [nc]  static.item_bias (v3) */
  const int32_t *ids_dyn_cand; /* [nc]  dynamic.item_emb, candidate + 1 (v3) */
  const int32_t *ids_dyn_tok;  /* [n_tokens] dynamic.item_emb, history tokens (+1 shifted) */
  const int32_t *cand;         /* [nc]  item index of each candidate (TF-IDF rows) */
  const float *ctx;            /* [n, gate_in] temporal context (+ user statistics for v3) */
  const int64_t *row_key;      /* [n]   dropout keys of example rows */
  const int64_t *cand_key;     /* [nc]  dropout keys of candidate rows */
  /* GRU input: sequences packed time-major, longest first (like PyTorch's
   * PackedSequence): step t holds batch_sizes[t] tokens, one per sequence
   * still running; token k of step t belongs to sequence k.
   * SASRec input: windows packed sequence-major (dt_seq_windows): window s
   * is tokens [seq_offsets[s], seq_offsets[s+1]), position p = token -
   * seq_offsets[s]; max_len is the longest window. */
  int64_t n_seq, n_tokens;
  int max_len;
  const int32_t *batch_sizes_host; /* [max_len] (host memory) */
  const int64_t *tok_key;          /* [n_tokens] dropout keys of tokens */
  const int32_t *seq_offsets;      /* [n_seq + 1] SASRec window offsets (backend memory; NULL for the GRU) */
  const int32_t *seq_offsets_host; /* the same, host memory */
  const int32_t *readout;          /* [n] token whose encoder state each example reads; n_tokens = zero state */
  int train;                       /* dropout on, gradients wanted */
  uint32_t step;                   /* dropout counter */
  /* The item list every example is also scored against (dt_model_list_*):
   * train.loss = sampled_softmax's negatives shared by the global batch, or
   * softmax's whole catalogue; n_list = 0 in every other batch. */
  int64_t n_list;
  const int32_t *list_item;     /* [n_list] item index (TF-IDF rows) */
  const int32_t *list_ids_item; /* [n_list] static.item_emb */
  const int32_t *list_ids_bias; /* [n_list] static.item_bias (v3) */
  const int32_t *list_ids_dyn;  /* [n_list] dynamic.item_emb, item + 1 (v3) */
  const int64_t *list_key;      /* [n_list] dropout keys of the items' content rows */
  const int32_t *list_target;   /* [n] position of each example's positive in the list (softmax), else -1 */
} dt_batch;

typedef struct dt_model {
  const dt_config *cfg;
  dt_backend *be;
  dt_model_version version;
  dt_model_variant variant;
  dt_history_mode history;
  int use_static, use_dynamic, use_content, use_gate, use_static_mlp, use_head;
  dt_encoder_kind encoder_kind;
  int sasrec_blocks, sasrec_heads;
  int64_t pos_rows; /* SASRec: rows of dynamic.pos_emb (2 * data.history_len) */
  int dim, gru_hidden, content_h1, content_h2, gate_hidden, gate_in, head_hidden, static_hidden;
  int64_t n_users, n_items, vocab;
  float p_static, p_gru, p_content, p_head;
  uint64_t seed;
  /* dense parameters */
  int n_params;
  dt_param params[DT_MAX_PARAMS];
  dt_param_views pv;
  int64_t n_dense;      /* floats */
  float *w, *g, *m, *v; /* [n_dense] each (backend memory) */
  int dense_adopted;    /* w, g, m, v belong to someone else (dt_model_adopt_dense) */
  int64_t adam_step;    /* dense Adam steps taken */
  /* tables */
  dt_table tables[DT_MAX_TABLES];
  /* TF-IDF matrix (backend memory, uploaded once) */
  int64_t *tfidf_indptr;
  int32_t *tfidf_indices;
  float *tfidf_values;
  /* item-side cache for evaluation: h_c of every item (eval mode) */
  float *item_hc;                       /* [n_items, dim] or NULL */
  struct dt_model_work *work;           /* activations, grown on demand */
  const struct dt_seq_encoder *encoder; /* the dynamic tower's sequence encoder (model_internal.h) */
} dt_model;

/* Parses model.version / model.variant / history mode from the config. */
int dt_model_kind(const dt_config *cfg, dt_model_version *version, dt_model_variant *variant, dt_history_mode *history);

/* Creates the model for a data set of n_users x n_items with a TF-IDF CSR
 * (host arrays, uploaded; vocab columns). Tables hold every row until the
 * caller places them (dt_table_place). Parameters are not initialised:
 * call dt_model_init or load a checkpoint. */
int dt_model_create(const dt_config *cfg, dt_backend *be, int64_t n_users, int64_t n_items, int64_t vocab,
                    const int64_t *tfidf_indptr, const int32_t *tfidf_indices, const float *tfidf_values,
                    dt_model **out);
void dt_model_free(dt_model *model);

/* Seeded initialisation (MODEL.md): element e of parameter p is drawn from
 * Philox(seed, DT_RNG_INIT) at counter (p's name hash, e), so the values do
 * not depend on the layout or on sharding. Zeroes optimizer state. */
int dt_model_init(dt_model *model, uint64_t seed);

/* Finds a dense parameter by name (NULL when absent). */
const dt_param *dt_model_param(const dt_model *model, const char *name);

/* Forward pass. On return *scores is [n, c] and *alpha [n, 3] (backend
 * memory owned by the model, valid until the next forward). */
int dt_model_forward(dt_model *model, const dt_batch *batch, const float **scores, const float **alpha);

/* Moves the dense buffers into host memory the caller owns (the node-shared
 * storage of comm.dense_update=shared_memory, n_dense floats each, zeroed):
 * the model's own buffers are freed and these are never freed by it.
 * CPU backend only. */
int dt_model_adopt_dense(dt_model *m, float *w, float *mo, float *v, float *g);
/* Backward pass of the last forward (same batch): dscores [n, c], dalpha
 * [n, 3] (backend memory; dalpha may be NULL when the gate is unused).
 * Accumulates into model->g (zero it first with dt_model_zero_grad) and
 * fills every table's grad_ids/grad_rows. */
int dt_model_backward(dt_model *model, const dt_batch *batch, const float *dscores, const float *dalpha);

int dt_model_zero_grad(dt_model *model);

/* Computes h_c of every item in eval mode into model->item_hc (used by
 * evaluation; forward uses it when batch->train == 0 and it is set). */
int dt_model_build_item_cache(dt_model *model);
void dt_model_drop_item_cache(dt_model *model);

/* v3's score in factorised form, for ranking a whole catalogue with one
 * GEMM: s(u, i) = user_vector(u) . item_vector(i) + bias(i), the user side
 * [a_s e_u, a_d h_d, a_c P e_u] (alpha-weighted, zero for an absent tower),
 * the item side [e_i; d_{i+1}; h_c(i)], 3 * dim floats each. (The same
 * math as the forward pass, summed in another order.) v3 only.
 *
 * Every item's vector [n_items, 3 dim] and bias [n_items] into host memory;
 * needs dt_model_build_item_cache when the content tower exists.
 * COLLECTIVE when a table is sharded. */
int dt_model_item_vectors(dt_model *model, float *items, float *bias);
/* The user vectors [n, 3 dim] (host memory) of the last forward pass's n
 * examples. */
int dt_model_user_vectors(dt_model *model, int64_t n, float *users);

/* ---- Scoring against an item list (model_items.c; the softmax losses) ----
 * Every example of the last forward pass against the batch's item list
 * (b->list_*), in blocks of list positions [lo, lo + k) so memory stays
 * bounded:
 *   v3: one GEMM of the alpha-weighted user vectors [a_s e_u, a_d h_d,
 *       a_c P e_u] against the block's item vectors [e_i; d_{i+1}; h_c(i)]
 *       (split into its three inner blocks), plus the item biases;
 *   v1/v2: the head on every (example, item) pair, static.fc1 split into its
 *       user and item columns so only the rest runs per pair.
 * dt_model_list_scores writes the block's scores [n, k] (row-major,
 * backend memory). dt_model_list_backward takes d loss / d scores of the
 * block last scored ([n, k]; may be the scores buffer) and accumulates
 * every gradient those scores have: the item side at once (the tables'
 * rows of the block's items, the content tower's weights through h_c, the
 * item biases) and the user side (e_u, h_d, alpha) into accumulators the
 * next dt_model_backward of the same forward pass adds to the towers'
 * inputs. Call it after the dense gradient was zeroed and before that
 * dt_model_backward; blocks in any order, each once. */
int dt_model_list_scores(dt_model *model, const dt_batch *batch, int64_t lo, int64_t k, float *scores);
int dt_model_list_backward(dt_model *model, const dt_batch *batch, int64_t lo, int64_t k, const float *dscores);
/* The most list items per block that keep a block's work within the
 * model's own budget for n examples (v3: no limit beyond the scores
 * themselves, v1/v2: about 2^14 (example, item) pairs). */
int64_t dt_model_list_block_hint(const dt_model *model, int64_t n);

/* Whether the gate exists (v1/v2/v3 full, no_dynamic, no_content). */
static inline int dt_model_has_gate(const dt_model *m) { return m->use_gate; }

/* The towers a model has, as DT_TOWER_* bits (bit k = alpha column k):
 * those its variant keeps, less the content tower of a data set without a
 * TF-IDF vocabulary. The one answer to "which towers exist": the log,
 * metrics.jsonl and the evaluation report a gate weight only for these. */
enum { DT_TOWER_STATIC = 1, DT_TOWER_DYNAMIC = 2, DT_TOWER_CONTENT = 4 };
unsigned dt_model_towers(const dt_model *m);

#endif
