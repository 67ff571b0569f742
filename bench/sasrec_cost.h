/* sasrec_cost.h: the paper figures of one SASRec training step with `chunk`
 * histories (issue 13; MODEL.md 1c), for bench_cuda: FLOPs and the fewest
 * device-memory bytes, term by term, and the time floor at given rates.
 *
 * The step (configs/sasrec.json's model: v3 dynamic_only with the sasrec
 * encoder, BCE): `batch` examples come in windows of `window_len` tokens
 * holding `examples_per_window` examples each (a full chunk: L examples,
 * 2L - 1 tokens), so W = batch / examples_per_window windows and N = W
 * window_len tokens run through `blocks` pre-layer-norm blocks of width d;
 * each example reads one token's state and scores 1 + neg candidates with
 * dot products (+ item bias).
 *
 * FLOPs (2 per multiply-add; training = 3x forward for every product: the
 * forward, the input gradient and the weight gradient, and for attention
 * the two forward and four backward batched GEMMs):
 *   per block 2 N d (3d) in_proj + 2 N d d out_proj + 2 x 2 N d d FFN
 *   + 2 x 2 W len^2 d attention (QK^T and PV over the full padded square,
 *   as the ops compute it; the causal half that matters is half that),
 *   then 2 R d for the scores.
 * Bytes, each moved the fewest times by this design:
 *   - dense parameters (blocks, final norm, pos_emb [2L, d]): 9 x 4 bytes
 *     each (read, gradient written, Adam's reads and writes), as bench_cuda;
 *   - embedding rows (N history tokens + R candidates of dynamic.item_emb,
 *     R item biases): 11 x 4 bytes per float, as bench_cuda;
 *   - activations: per token and block, x, LN1 (+ mean, rstd), qkv (3d),
 *     attention output, out_proj, a, LN2 (+ 2), fc1, fc2 = 11 d + 4 floats,
 *     plus the embedding and the final norm (2 d + 2): 5 x 4 bytes each
 *     (written, read forward, read backward, gradient written and read);
 *   - attention probabilities, W heads len^2 floats per block, moved 14
 *     times by these ops (forward: scores written and read, P written
 *     padded and compact, read by PV; backward: compact read, padded
 *     written, dP written and read, P read twice, dS written and read
 *     twice) and the padding copies of Q, K, V, O, dO and the gradients
 *     (22 N d floats per block). A fused attention kernel would move
 *     neither; they are listed apart as what this design costs.
 */
#ifndef DTRAIN_BENCH_SASREC_COST_H
#define DTRAIN_BENCH_SASREC_COST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  int d, blocks, heads, L, neg;
  double batch, window_len, examples_per_window;
  int64_t train_interactions;
} sasrec_shape;

typedef struct {
  double windows, tokens, candidates;
  double flops_fwd, flops_train, flops_attention_train, flops_linear_train;
  double dense_params, bytes_dense, bytes_rows, bytes_activations, bytes_probs, bytes_padding, bytes_inputs;
  double bytes, bytes_ideal; /* with and without the attention's materialised probabilities and padding */
} sasrec_cost;

static sasrec_cost sasrec_cost_of(const sasrec_shape *s) {
  sasrec_cost c = {0};
  const double d = s->d, W = s->batch / s->examples_per_window, len = s->window_len, N = W * len;
  const double R = s->batch * (1 + s->neg);
  c.windows = W;
  c.tokens = N;
  c.candidates = R;
  const double linear = 2.0 * N * d * (3.0 * d + d + 2.0 * d) * s->blocks;
  const double attention = 2.0 * 2.0 * W * len * len * d * s->blocks;
  const double scores = 2.0 * R * d;
  c.flops_fwd = linear + attention + scores;
  c.flops_train = 3.0 * c.flops_fwd;
  c.flops_attention_train = 3.0 * attention;
  c.flops_linear_train = 3.0 * linear;
  c.dense_params = s->blocks * (6.0 * d * d + 10.0 * d) + 2.0 * d + 2.0 * s->L * d;
  c.bytes_dense = 9.0 * 4.0 * c.dense_params;
  c.bytes_rows = (N + R) * 11.0 * d * 4.0 + R * 11.0 * 4.0;
  const double act = N * ((11.0 * d + 4.0) * s->blocks + 2.0 * d + 2.0) + s->batch * d + R;
  c.bytes_activations = 5.0 * 4.0 * act;
  c.bytes_probs = 14.0 * 4.0 * W * s->heads * len * len * s->blocks;
  c.bytes_padding = 22.0 * 4.0 * N * d * s->blocks;
  c.bytes_inputs = 4.0 * (N + R + s->batch);
  c.bytes_ideal = c.bytes_dense + c.bytes_rows + c.bytes_activations + c.bytes_inputs;
  c.bytes = c.bytes_ideal + c.bytes_probs + c.bytes_padding;
  return c;
}

/* One JSON member "name": {...} (no trailing newline or comma). */
static void sasrec_cost_print(const char *name, const sasrec_shape *s, double fp32, double tf32, double bw) {
  const sasrec_cost c = sasrec_cost_of(s);
  const double steps = ceil((double)s->train_interactions / s->batch);
  const double t_fp32 = c.flops_train / fp32, t_tf32 = c.flops_train / tf32, t_b = c.bytes / bw,
               t_bi = c.bytes_ideal / bw;
  const double floor_fp32 = fmax(t_fp32, t_b), floor_tf32 = fmax(t_tf32, t_b), ideal_tf32 = fmax(t_tf32, t_bi);
  printf(
      "    \"%s\": {\"d\": %d, \"blocks\": %d, \"heads\": %d, \"history_len\": %d, \"negatives\": %d, "
      "\"examples\": %.0f, \"window_len\": %.0f, \"examples_per_window\": %.0f, \"windows\": %.4g, \"tokens\": %.4g, "
      "\"dense_params\": %.0f, \"flops_forward\": %.4g, \"flops_train_step\": %.4g, \"flops_attention\": %.4g, "
      "\"flops_linear\": %.4g, \"bytes_step\": %.4g, \"bytes_dense_params_adam\": %.4g, "
      "\"bytes_embedding_rows\": %.4g, \"bytes_activations\": %.4g, \"bytes_attention_probs\": %.4g, "
      "\"bytes_attention_padding\": %.4g, \"bytes_inputs\": %.4g, \"arithmetic_intensity\": %.3g, "
      "\"floor_ms_fp32\": %.4g, \"floor_ms_tf32\": %.4g, \"floor_ms_tf32_fused_attention\": %.4g, "
      "\"floor_s_per_epoch_fp32\": %.4g, \"floor_s_per_epoch_tf32\": %.4g, \"bound_by\": \"%s\"}",
      name, s->d, s->blocks, s->heads, s->L, s->neg, s->batch, s->window_len, s->examples_per_window, c.windows,
      c.tokens, c.dense_params, c.flops_fwd, c.flops_train, c.flops_attention_train, c.flops_linear_train, c.bytes,
      c.bytes_dense, c.bytes_rows, c.bytes_activations, c.bytes_probs, c.bytes_padding, c.bytes_inputs,
      c.flops_train / c.bytes, floor_fp32 * 1e3, floor_tf32 * 1e3, ideal_tf32 * 1e3, floor_fp32 * steps,
      floor_tf32 * steps, t_fp32 > t_b ? "fp32 arithmetic" : "memory");
}

#endif
