/* cuda_kernels.h: the launch wrappers of the kernels/ files, callable from C.
 *
 * Internal to the CUDA backend (src/backend/cuda); nothing else includes it.
 * Each wrapper does one GPU-side thing (one kernel, or one CUB call) on
 * `stream` and returns its cudaError_t: the launch error from
 * cudaGetLastError, or in sync-debug mode the error of the kernel's
 * execution too (the wrapper then synchronises the stream). The host side
 * checks every result with DT_KERNEL (cuda_check.h), which names the wrapper
 * and the call site, so one wrapper per step is what makes a failure
 * point at its kernel.
 *
 * Wrappers taking `temp`/`temp_bytes` follow CUB's convention: with temp ==
 * NULL they only store the scratch size they need in *temp_bytes.
 *
 * Sizes: row counts are int64_t; a row's length (cols, dim, o, h, d) is int.
 * Wrappers assume their sizes are > 0 and their pointers valid: the host
 * side checks arguments and skips empty work before calling them.
 */
#ifndef DTRAIN_CUDA_KERNELS_H
#define DTRAIN_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "dtrain/backend.h"
#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Sync-debug mode: every wrapper synchronises after its launch and returns
 * the kernel's execution error. Always on in a build with
 * -DDTRAIN_CUDA_SYNC_DEBUG=ON; dtk_set_sync_debug(1) turns it on at run time
 * (the backend does so when the environment has DTRAIN_CUDA_SYNC_DEBUG=1). */
int dtk_sync_debug(void);
void dtk_set_sync_debug(int on);
/* kernels/probe.cu: one thread writes 42 to *dev_out. */
cudaError_t dt_cuda_probe_launch(int *dev_out, cudaStream_t stream);

/* ---- dense (kernels/dense.cu) ---- */
cudaError_t dtk_add_bias(cudaStream_t s, float *y, const float *bias, int64_t rows, int cols);
/* Rows of a bias_grad are summed in chunks of this many rows, then the
 * chunks in order: partials has room for ceil(rows/DTK_BIAS_CHUNK) * cols. */
#define DTK_BIAS_CHUNK 512
cudaError_t dtk_bias_grad_partials(cudaStream_t s, const float *dy, int64_t rows, int cols, float *partials);
cudaError_t dtk_bias_grad_finish(cudaStream_t s, const float *partials, int64_t chunks, int cols, float *dbias);
cudaError_t dtk_axpy(cudaStream_t s, float *y, const float *x, int64_t n, float alpha);
cudaError_t dtk_scale(cudaStream_t s, float *x, int64_t n, float alpha);
cudaError_t dtk_relu_dropout_fwd(cudaStream_t s, float *x, int64_t rows, int cols, int relu, float p,
                                 dt_dropout_key key);
cudaError_t dtk_relu_dropout_bwd(cudaStream_t s, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                                 dt_dropout_key key);

/* ---- reductions in double (kernels/reduce.cu) ----
 * A reduction over n items writes dtk_partial_count(n) partial sums, each a
 * fixed slice summed in a fixed tree, then dtk_sum_partials adds them in
 * order: the same n gives the same bits on any device. */
#define DTK_MAX_PARTIALS 1024
int dtk_partial_count(int64_t n);
cudaError_t dtk_sumsq_partials(cudaStream_t s, const float *x, int64_t n, double *partials);
cudaError_t dtk_sum_partials(cudaStream_t s, const double *partials, int count, double *out);

/* ---- embedding rows (kernels/embed.cu) ---- */
cudaError_t dtk_gather_rows(cudaStream_t s, float *out, const float *table, const int32_t *ids, int64_t n, int dim);
cudaError_t dtk_scatter_add_rows(cudaStream_t s, float *dst, int64_t dst_rows, const int32_t *ids, const float *src,
                                 int64_t n, int dim);
cudaError_t dtk_iota_i32(cudaStream_t s, int32_t *out, int64_t n);
/* Stable radix sort of (key, value) pairs by the full 32-bit signed key. */
cudaError_t dtk_sort_pairs_i32(cudaStream_t s, void *temp, size_t *temp_bytes, const int32_t *keys_in,
                               int32_t *keys_out, const int32_t *vals_in, int32_t *vals_out, int64_t n);
/* Runs of equal keys in sorted[n] (CUB's run-length encoder spills
 * registers on sm_90, so runs are found with a scan instead):
 * heads[i] = 1 where a run starts; after an exclusive sum of heads into
 * run_idx, dtk_run_starts writes each run's key to uniq[r], its first
 * position to starts[r], and the number of runs to *num_runs (device). */
cudaError_t dtk_run_heads(cudaStream_t s, const int32_t *sorted, int64_t n, int32_t *heads);
cudaError_t dtk_run_starts(cudaStream_t s, const int32_t *sorted, const int32_t *heads, const int32_t *run_idx,
                           int64_t n, int32_t *uniq, int32_t *starts, int32_t *num_runs);
cudaError_t dtk_exclusive_sum_i32(cudaStream_t s, void *temp, size_t *temp_bytes, const int32_t *in, int32_t *out,
                                  int64_t n);
/* sums[r,:] = sum over q in [starts[r], starts[r+1]) (the last run ends at
 * n) of grads[perm[q],:], q ascending: input order within the run. */
cudaError_t dtk_segment_sum_rows(cudaStream_t s, const int32_t *perm, const int32_t *starts, int64_t m, int64_t n,
                                 const float *grads, int dim, float *sums);

/* ---- TF-IDF CSR x dense (kernels/csr.cu) ---- */
cudaError_t dtk_csr_matmul(cudaStream_t s, float *out, const int64_t *indptr, const int32_t *indices,
                           const float *values, const int32_t *rows, int64_t n, const float *wt, int o);
/* counts[i] = nnz of CSR row rows[i] for i < n, counts[n] = 0. */
cudaError_t dtk_csr_row_counts(cudaStream_t s, const int64_t *indptr, const int32_t *rows, int64_t n, int64_t *counts);
cudaError_t dtk_exclusive_sum_i64(cudaStream_t s, void *temp, size_t *temp_bytes, const int64_t *in, int64_t *out,
                                  int64_t n);
/* Lists the batch's nonzeros in order (batch row, then CSR order) from
 * offsets[i] on (fewer than 2^31 in all): keys = vocabulary column, ent_row
 * = batch row, ent_val = value, ent_idx = position. */
cudaError_t dtk_csr_expand(cudaStream_t s, const int64_t *indptr, const int32_t *indices, const float *values,
                           const int32_t *rows, const int64_t *offsets, int64_t n, int32_t *keys, int32_t *ent_idx,
                           int32_t *ent_row, float *ent_val);
/* dwt[j,:] += sum over the entries of column j in sorted order of
 * ent_val * dout[ent_row,:], for every j < vocab with entries. */
cudaError_t dtk_csr_grad_reduce(cudaStream_t s, const int32_t *keys_sorted, const int32_t *perm, const int32_t *ent_row,
                                const float *ent_val, int64_t nnz, const float *dout, int o, int64_t vocab, float *dwt);

/* ---- GRU gates (kernels/gru.cu) ---- */
cudaError_t dtk_gru_fwd(cudaStream_t s, const float *xg, const float *hg, const float *h_prev, float *h_out,
                        float *cache, int64_t a, int h);
cudaError_t dtk_gru_bwd(cudaStream_t s, const float *dh_out, const float *h_prev, const float *cache, float *dxg,
                        float *dhg, float *dh_prev, int64_t a, int h);

/* ---- gate (kernels/gate.cu) ---- */
cudaError_t dtk_softmax3_fwd(cudaStream_t s, const float *logits, float *alpha, int64_t n);
cudaError_t dtk_softmax3_bwd(cudaStream_t s, const float *alpha, const float *dalpha, float *dlogits, int64_t n);
/* dalpha[i,k] += ent_scale * dt_neg_entropy_grad(alpha[i,k]) + bal_grad[k];
 * partials (dtk_partial_count(n)) get sums of alpha log(alpha + 1e-8). */
cudaError_t dtk_gate_reg(cudaStream_t s, const float *alpha, int64_t n, float ent_scale, float bal0, float bal1,
                         float bal2, float *dalpha, double *partials);

/* ---- scores and loss (kernels/score.cu) ---- */
/* partials (dtk_partial_count(n)) get sums of the pair losses. */
cudaError_t dtk_bpr(cudaStream_t s, const float *scores, int64_t n, int c, float inv_pairs, float *dscores,
                    double *partials);
cudaError_t dtk_rowdot_fwd(cudaStream_t s, const float *u, const float *v, float *out, int64_t n, int c, int d);
cudaError_t dtk_rowdot_bwd_u(cudaStream_t s, const float *v, const float *dout, float *du, int64_t n, int c, int d);
cudaError_t dtk_rowdot_bwd_v(cudaStream_t s, const float *u, const float *dout, float *dv, int64_t n, int c, int d);
cudaError_t dtk_mix3_fwd(cudaStream_t s, const float *alpha, const float *hs, const float *hd, const float *hc,
                         float *z, int64_t n, int c, int d);
cudaError_t dtk_mix3_bwd_alpha(cudaStream_t s, const float *hs, const float *hd, const float *hc, const float *dz,
                               float *dalpha, int64_t n, int c, int d);
/* dh[i*c+j,:] += alpha[i,k] dz[i*c+j,:] (the per-candidate towers, k = 0 or 2) */
cudaError_t dtk_mix3_bwd_cand(cudaStream_t s, const float *alpha, int k, const float *dz, float *dh, int64_t n, int c,
                              int d);
/* dhd[i,:] += alpha[i,1] sum_j dz[i*c+j,:] */
cudaError_t dtk_mix3_bwd_user(cudaStream_t s, const float *alpha, const float *dz, float *dhd, int64_t n, int c, int d);
cudaError_t dtk_score_mix_fwd(cudaStream_t s, const float *alpha, const float *ss, const float *sd, const float *sc,
                              const float *bias, float *out, int64_t n, int c);
cudaError_t dtk_score_mix_bwd(cudaStream_t s, const float *alpha, const float *ss, const float *sd, const float *sc,
                              const float *ds, float *dalpha, float *dss, float *dsd, float *dsc, int64_t n, int c);

/* ---- optimizers (kernels/optim.cu) ---- */
cudaError_t dtk_adam(cudaStream_t s, float *param, const float *grad, float *m, float *v, int64_t n,
                     dt_adam_hyper hyper, float bc1, float bc2);
cudaError_t dtk_adam_rows(cudaStream_t s, float *table, float *m_table, float *v_table, int64_t *row_step,
                          const int32_t *ids, const float *grads, int64_t m, int dim, dt_adam_hyper hyper);
cudaError_t dtk_adagrad_rows(cudaStream_t s, float *table, float *acc, const int32_t *ids, const float *grads,
                             int64_t m, int dim, dt_adam_hyper hyper);

/* ---- top-k (kernels/topk.cu) ---- */
/* One block per row, per-thread candidate lists: k <= DTK_TOPK_SMALL_MAX. */
#define DTK_TOPK_SMALL_MAX 128
cudaError_t dtk_topk_small(cudaStream_t s, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx,
                           float *val);
/* Larger k: rows sorted whole. keys[r*cols+c] = scores with -0 as +0 and
 * NaN as -INFINITY, vals = c, offsets[r] = r*cols for r <= rows. */
cudaError_t dtk_topk_sort_prepare(cudaStream_t s, const float *scores, int64_t rows, int64_t cols, float *keys,
                                  int32_t *vals, int64_t *offsets);
/* Stable descending sort of each segment [offsets[r], offsets[r+1]). */
cudaError_t dtk_segmented_sort_desc(cudaStream_t s, void *temp, size_t *temp_bytes, const float *keys_in,
                                    float *keys_out, const int32_t *vals_in, int32_t *vals_out, int64_t items,
                                    int64_t segments, const int64_t *offsets);
/* idx/val [rows, k] from the sorted rows: the first k entries that are not
 * -INFINITY, the value read back from scores; the rest (-1, -INFINITY). */
cudaError_t dtk_topk_sort_pick(cudaStream_t s, const float *scores, const float *keys_sorted,
                               const int32_t *vals_sorted, int64_t rows, int64_t cols, int k, int32_t *idx, float *val);

/* ==== sequence encoder and softmax losses (issue 13) ==== */

/* ---- layer norm, input embedding (kernels/seq.cu) ---- */
cudaError_t dtk_layer_norm_fwd(cudaStream_t s, const float *x, const float *w, const float *b, float eps, int64_t n,
                               int d, float *y, float *mean, float *rstd);
cudaError_t dtk_layer_norm_bwd_dx(cudaStream_t s, const float *dy, const float *x, const float *w, const float *mean,
                                  const float *rstd, int64_t n, int d, float *dx, int accumulate);
/* Chunk sums (DTK_BIAS_CHUNK rows, as bias_grad) of dy xhat into part_w and
 * of dy into part_b, each [chunks, d]; dtk_bias_grad_finish adds them. */
cudaError_t dtk_layer_norm_bwd_partials(cudaStream_t s, const float *dy, const float *x, const float *mean,
                                        const float *rstd, int64_t n, int d, float *part_w, float *part_b);
cudaError_t dtk_seq_embed(cudaStream_t s, const float *table, const int32_t *ids, float scale, const float *pos,
                          const int32_t *offsets, int64_t n_seq, int d, float *out);
cudaError_t dtk_seq_pos_grad(cudaStream_t s, const float *dx, const int32_t *offsets, int64_t n_seq, int max_len, int d,
                             float *dpos);

/* ---- attention (kernels/attn.cu) ----
 * Padded layouts: operands [n_seq * heads, T, dh], scores [n_seq * heads,
 * T, T], pair b = s * heads + k; T >= every window's length. */
/* sizes[s] = heads * len_s^2 (s < n_seq), sizes[n_seq] = 0 */
cudaError_t dtk_attn_prob_sizes(cudaStream_t s, const int32_t *offsets, int64_t n_seq, int heads, int64_t *sizes);
/* dst (padded) from columns col0 + k*dh .. of src [n_tokens, ld] */
cudaError_t dtk_attn_pad(cudaStream_t s, const float *src, int ld, int col0, const int32_t *offsets, int64_t n_seq,
                         int heads, int T, int dh, float *dst);
/* the window rows of src (padded) into columns col0 + k*dh .. of dst [n_tokens, ld] */
cudaError_t dtk_attn_unpad(cudaStream_t s, const float *src, const int32_t *offsets, int64_t n_seq, int heads, int T,
                           int dh, int ld, int col0, float *dst);
/* causal softmax of the scores in place, and the compact copy at poff */
cudaError_t dtk_attn_softmax_fwd(cudaStream_t s, float *S, const int32_t *offsets, const int64_t *poff, int64_t n_seq,
                                 int heads, int T, float *probs);
cudaError_t dtk_attn_expand_probs(cudaStream_t s, const float *probs, const int32_t *offsets, const int64_t *poff,
                                  int64_t n_seq, int heads, int T, float *P);
/* dS = P (dP - <P, dP>) in place of dP */
cudaError_t dtk_attn_softmax_bwd(cudaStream_t s, const float *P, float *dS, const int32_t *offsets, int64_t n_seq,
                                 int heads, int T);

/* ---- losses (kernels/xent.cu) ---- */
/* partials (dtk_partial_count(n)) get sums of the loss terms */
cudaError_t dtk_bce(cudaStream_t s, const float *scores, int64_t n, int c, float inv_count, float *dscores,
                    double *partials);
cudaError_t dtk_xent_stats(cudaStream_t s, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                           const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score);
/* partials (dtk_partial_count(n)) get sums of lse - tgt_score */
cudaError_t dtk_xent_loss(cudaStream_t s, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                          float *lse, double *partials);
cudaError_t dtk_xent_grad(cudaStream_t s, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                          const int32_t *target, const float *lse, float scale, float *dscores, int ldd);

/* ==== end of issue 13 ==== */

#ifdef __cplusplus
}
#endif

#endif
