/* The SASRec encoder's ops on the CPU backend (issue 13): layer norm,
 * causal multi-head attention over packed windows, the input embedding and
 * its positional gradient. Forward values against double-precision
 * references, every backward against central finite differences of the
 * double reference objective L = <dout, f(x)> (test_backend_cpu_util.h),
 * edge cases (windows of length 0 and 1, windows of different lengths in
 * one batch, no tokens, several heads), error paths, and the same bits with
 * 1 and 2 threads. */
#include "dtrain/op_math.h"
#include "test_backend_cpu_util.h"

/* ---------------------------------------------------------------- layer norm */

typedef struct {
  int n, d;
  double eps;
  const double *dy;
} ln_ctx;

/* y of row r from params p = [x (n*d), w (d), b (d)] */
static void ln_ref_row(const double *p, const ln_ctx *c, int r, double *y, double *mean, double *rstd) {
  const double *x = p + (size_t)r * c->d, *w = p + (size_t)c->n * c->d, *b = w + c->d;
  double m = 0.0, v = 0.0;
  for (int k = 0; k < c->d; k++) m += x[k];
  m /= c->d;
  for (int k = 0; k < c->d; k++) v += (x[k] - m) * (x[k] - m);
  v /= c->d;
  const double rs = 1.0 / sqrt(v + c->eps);
  for (int k = 0; k < c->d; k++) y[k] = (x[k] - m) * rs * w[k] + b[k];
  if (mean) *mean = m;
  if (rstd) *rstd = rs;
}

static double ln_objective(const double *p, const void *vctx) {
  const ln_ctx *c = vctx;
  double y[64], l = 0.0;
  for (int r = 0; r < c->n; r++) {
    ln_ref_row(p, c, r, y, NULL, NULL);
    for (int k = 0; k < c->d; k++) l += c->dy[r * c->d + k] * y[k];
  }
  return l;
}

/* n rows of width d; rows spread over several of the backward's 256-row
 * blocks when n > 256. */
static void ln_case(int n, int d, int accumulate) {
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(100 + (uint64_t)n * 7 + (uint64_t)d);
  const int nx = n * d, np = nx + 2 * d;
  float *x = tb_floats(&t, nx), *w = tb_floats(&t, d), *b = tb_floats(&t, d), *y = tb_floats(&t, nx);
  float *mean = tb_floats(&t, n), *rstd = tb_floats(&t, n), *dy = tb_floats(&t, nx), *dx = tb_floats(&t, nx);
  float *dw = tb_floats(&t, d), *db = tb_floats(&t, d);
  tb_fill(&r, x, nx, -1, 1);
  for (int i = 0; i < n; i++) /* row offsets and scales: the mean matters */
    for (int k = 0; k < d; k++) x[i * d + k] = x[i * d + k] * (float)(1 + i % 3) + (float)(i % 5) - 2.0f;
  tb_fill(&r, w, d, 0.5f, 1.5f);
  tb_fill(&r, b, d, -0.5f, 0.5f);
  tb_fill(&r, dy, nx, -1, 1);
  tb_fill(&r, dx, nx, -1, 1);
  tb_fill(&r, dw, d, -1, 1);
  tb_fill(&r, db, d, -1, 1);
  float *dx0 = tb_floats(&t, nx), *dw0 = tb_floats(&t, d), *db0 = tb_floats(&t, d);
  memcpy(dx0, dx, (size_t)nx * 4);
  memcpy(dw0, dw, (size_t)d * 4);
  memcpy(db0, db, (size_t)d * 4);
  double *p = tb_doubles(&t, np), *g = tb_doubles(&t, np), *ddy = tb_doubles(&t, nx);
  double *want = tb_doubles(&t, nx), *wmean = tb_doubles(&t, n), *wrstd = tb_doubles(&t, n);
  tb_to_double(p, x, nx);
  tb_to_double(p + nx, w, d);
  tb_to_double(p + nx + d, b, d);
  tb_to_double(ddy, dy, nx);
  ln_ctx ctx = {n, d, 1e-8, ddy};
  for (int i = 0; i < n; i++) ln_ref_row(p, &ctx, i, want + (size_t)i * d, wmean + i, wrstd + i);

  TB_OK(t.be->layer_norm_fwd(t.be, x, w, b, 1e-8f, n, d, y, mean, rstd));
  char what[80];
  snprintf(what, sizeof what, "layer_norm_fwd [%d, %d]", n, d);
  TB_EXPECT_ERR(what, tb_rel_err(y, want, nx, 1e-6), TB_TOL_FWD);
  TB_EXPECT_ERR("layer_norm_fwd mean", tb_rel_err(mean, wmean, n, 1e-6), TB_TOL_FWD);
  TB_EXPECT_ERR("layer_norm_fwd rstd", tb_rel_err(rstd, wrstd, n, 1e-6), TB_TOL_FWD);

  TB_OK(t.be->layer_norm_bwd(t.be, dy, x, w, mean, rstd, n, d, dx, accumulate, dw, db));
  for (int i = 0; i < nx; i++) dx[i] -= accumulate ? dx0[i] : 0.0f;
  for (int k = 0; k < d; k++) {
    dw[k] -= dw0[k];
    db[k] -= db0[k];
  }
  tb_fd_gradient(ln_objective, &ctx, p, np, TB_FD_H, g);
  snprintf(what, sizeof what, "layer_norm_bwd dx (%s)", accumulate ? "accumulate" : "overwrite");
  TB_EXPECT_ERR(what, tb_rel_err(dx, g, nx, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("layer_norm_bwd dweight (accumulate)", tb_rel_err(dw, g + nx, d, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("layer_norm_bwd dbias (accumulate)", tb_rel_err(db, g + nx + d, d, 1e-6), TB_TOL_GRAD);
  /* NULL dweight and dbias: dx alone, same values */
  float *dx2 = tb_floats(&t, nx);
  memcpy(dx2, dx0, (size_t)nx * 4);
  TB_OK(t.be->layer_norm_bwd(t.be, dy, x, w, mean, rstd, n, d, dx2, accumulate, NULL, NULL));
  for (int i = 0; i < nx; i++) dx2[i] -= accumulate ? dx0[i] : 0.0f;
  assert_memory_equal(dx, dx2, (size_t)nx * 4);
  tb_close(&t);
}

static void test_layer_norm(void **state) {
  (void)state;
  ln_case(5, 7, 0);
  ln_case(300, 13, 1); /* two row blocks of the column sums */
  ln_case(3, 64, 1);   /* the model's width */
  ln_case(1, 1, 0);    /* one column: xhat = 0, y = bias, dx = 0 */
  /* a constant row: variance 0, rstd = 1/sqrt(eps), finite */
  tb_ctx t;
  tb_open(&t, 1);
  float x[4] = {3, 3, 3, 3}, w[4] = {1, 1, 1, 1}, b[4] = {0.5f, 0, 0, 0}, y[4], m, rs;
  TB_OK(t.be->layer_norm_fwd(t.be, x, w, b, 1e-8f, 1, 4, y, &m, &rs));
  assert_true(m == 3.0f && isfinite(rs) && y[0] == 0.5f && y[1] == 0.0f);
  /* n = 0: nothing to do, nothing touched */
  TB_OK(t.be->layer_norm_fwd(t.be, x, w, b, 1e-8f, 0, 4, y, &m, &rs));
  TB_OK(t.be->layer_norm_bwd(t.be, x, x, w, &m, &rs, 0, 4, y, 0, w, b));
  assert_true(w[0] == 1.0f && b[0] == 0.5f);
  tb_close(&t);
}

/* ---------------------------------------------------------------- attention */

typedef struct {
  const int32_t *off;
  int n_seq, d, heads;
  const double *dout; /* [n_tokens, d] */
} attn_ctx;

/* out [n_tokens, d] and probs (compact layout) from qkv in double */
static void attn_ref(const double *qkv, const attn_ctx *c, double *out, double *probs) {
  const int d = c->d, dh = d / c->heads, ld = 3 * d;
  const double scale = 1.0 / sqrt((double)dh);
  int64_t po = 0;
  double srow[128];
  for (int s = 0; s < c->n_seq; s++) {
    const int t0 = c->off[s], len = c->off[s + 1] - t0;
    for (int k = 0; k < c->heads; k++) {
      for (int i = 0; i < len; i++) {
        double m = -INFINITY, sum = 0.0;
        for (int j = 0; j <= i; j++) {
          double a = 0.0;
          for (int e = 0; e < dh; e++) a += qkv[(t0 + i) * ld + k * dh + e] * qkv[(t0 + j) * ld + d + k * dh + e];
          srow[j] = a * scale;
          m = srow[j] > m ? srow[j] : m;
        }
        for (int j = 0; j <= i; j++) sum += exp(srow[j] - m);
        for (int e = 0; e < dh; e++) out[(t0 + i) * d + k * dh + e] = 0.0;
        for (int j = 0; j < len; j++) {
          const double pij = j <= i ? exp(srow[j] - m) / sum : 0.0;
          if (probs) probs[po + (int64_t)i * len + j] = pij;
          for (int e = 0; e < dh && j <= i; e++)
            out[(t0 + i) * d + k * dh + e] += pij * qkv[(t0 + j) * ld + 2 * d + k * dh + e];
        }
      }
      po += (int64_t)len * len;
    }
  }
}

static double attn_objective(const double *p, const void *vctx) {
  const attn_ctx *c = vctx;
  const int64_t n = c->off[c->n_seq];
  double *out = malloc((size_t)(n * c->d) * sizeof *out);
  attn_ref(p, c, out, NULL);
  double l = 0.0;
  for (int64_t i = 0; i < n * c->d; i++) l += c->dout[i] * out[i];
  free(out);
  return l;
}

static dt_seq_windows windows_of(const int32_t *off, int n_seq) {
  dt_seq_windows w = {off, n_seq, off[n_seq], 0};
  for (int s = 0; s < n_seq; s++)
    if (off[s + 1] - off[s] > w.max_len) w.max_len = off[s + 1] - off[s];
  return w;
}

/* lens: the windows' lengths (0 allowed) */
static void attn_case(const int *lens, int n_seq, int d, int heads, float qk_range) {
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(200 + (uint64_t)n_seq * 31 + (uint64_t)d * 7 + (uint64_t)heads);
  int32_t *off = tb_ints(&t, n_seq + 1);
  off[0] = 0;
  for (int s = 0; s < n_seq; s++) off[s + 1] = off[s] + lens[s];
  const dt_seq_windows w = windows_of(off, n_seq);
  const int n = (int)w.n_tokens, nq = n * 3 * d, no = n * d;
  const int64_t np = dt_attn_probs_floats(off, n_seq, heads);
  float *qkv = tb_floats(&t, nq), *out = tb_floats(&t, no), *probs = tb_floats(&t, np), *dout = tb_floats(&t, no);
  float *dqkv = tb_floats(&t, nq);
  tb_fill(&r, qkv, nq, -qk_range, qk_range);
  for (int i = 0; i < n; i++) /* V in [-1, 1] */
    for (int k = 0; k < d; k++) qkv[i * 3 * d + 2 * d + k] /= qk_range;
  tb_fill(&r, dout, no, -1, 1);
  for (int i = 0; i < no; i++) out[i] = NAN;
  for (int i = 0; i < nq; i++) dqkv[i] = NAN;
  for (int64_t i = 0; i < np; i++) probs[i] = NAN;
  double *p = tb_doubles(&t, nq), *g = tb_doubles(&t, nq), *dd = tb_doubles(&t, no);
  double *want = tb_doubles(&t, no), *wprobs = tb_doubles(&t, np);
  tb_to_double(p, qkv, nq);
  tb_to_double(dd, dout, no);
  attn_ctx ctx = {off, n_seq, d, heads, dd};
  attn_ref(p, &ctx, want, wprobs);

  TB_OK(t.be->attn_fwd(t.be, qkv, w, d, heads, out, probs));
  char what[96];
  snprintf(what, sizeof what, "attn_fwd out (%d windows, d=%d, %d heads)", n_seq, d, heads);
  TB_EXPECT_ERR(what, tb_rel_err(out, want, no, 1e-6), TB_TOL_FWD);
  TB_EXPECT_ERR("attn_fwd probs (compact layout)", tb_rel_err(probs, wprobs, np, 1e-6), TB_TOL_FWD);
  TB_OK(t.be->attn_bwd(t.be, qkv, probs, dout, w, d, heads, dqkv));
  tb_fd_gradient(attn_objective, &ctx, p, nq, TB_FD_H, g);
  snprintf(what, sizeof what, "attn_bwd dqkv (%d windows, d=%d, %d heads)", n_seq, d, heads);
  TB_EXPECT_ERR(what, tb_rel_err(dqkv, g, nq, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

static void test_attention(void **state) {
  (void)state;
  const int mixed[] = {1, 5, 3, 0, 8, 1, 6};
  attn_case(mixed, 7, 8, 1, 1.0f);  /* one head */
  attn_case(mixed, 7, 12, 3, 1.5f); /* three heads of 4 */
  const int one[] = {1};
  attn_case(one, 1, 4, 2, 1.0f); /* a single token: P = 1, out = V */
  const int peaked[] = {9, 4};
  attn_case(peaked, 2, 8, 2, 4.0f); /* |S| up to 32: peaked rows */
  /* a window of length 1 gives out = V exactly */
  tb_ctx t;
  tb_open(&t, 1);
  int32_t off[3] = {0, 1, 1};
  float qkv[6] = {0.3f, -2.0f, 7.0f, 1.0f, 0.25f, -0.5f}, out[2], probs[2] = {NAN, NAN};
  dt_seq_windows w = {off, 2, 1, 1};
  TB_OK(t.be->attn_fwd(t.be, qkv, w, 2, 1, out, probs));
  assert_true(out[0] == 0.25f && out[1] == -0.5f && probs[0] == 1.0f && isnan(probs[1]));
  /* no tokens (no windows, or only empty ones): nothing written */
  dt_seq_windows none = {off, 0, 0, 0};
  int32_t empty_off[3] = {0, 0, 0};
  dt_seq_windows empties = {empty_off, 2, 0, 0};
  out[0] = NAN;
  TB_OK(t.be->attn_fwd(t.be, qkv, none, 2, 1, out, probs));
  TB_OK(t.be->attn_bwd(t.be, qkv, probs, out, none, 2, 1, qkv));
  TB_OK(t.be->attn_fwd(t.be, qkv, empties, 2, 1, out, probs));
  TB_OK(t.be->attn_bwd(t.be, qkv, probs, out, empties, 2, 1, qkv));
  assert_true(isnan(out[0]) && qkv[0] == 0.3f);
  /* the caller's bugs are errors that say what is wrong */
  assert_int_equal(t.be->attn_fwd(t.be, qkv, w, 3, 2, out, probs), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "multiple of heads"));
  dt_seq_windows too_long = {off, 2, 1, 0};
  assert_int_equal(t.be->attn_fwd(t.be, qkv, too_long, 2, 1, out, probs), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "max_len"));
  int32_t bad_off[3] = {0, 1, 2};
  dt_seq_windows bad = {bad_off, 2, 1, 1};
  assert_int_equal(t.be->attn_fwd(t.be, qkv, bad, 2, 1, out, probs), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "offsets"));
  tb_close(&t);
}

/* ---------------------------------------------------------------- input embedding */

typedef struct {
  const int32_t *off, *ids;
  int n_seq, d, rows;
  double scale;
  const double *table, *dout;
} embed_ctx;

/* L = <dout, out> as a function of pos [rows, d] */
static double embed_objective(const double *pos, const void *vctx) {
  const embed_ctx *c = vctx;
  double l = 0.0;
  for (int s = 0; s < c->n_seq; s++)
    for (int t = c->off[s]; t < c->off[s + 1]; t++)
      for (int k = 0; k < c->d; k++)
        l += c->dout[t * c->d + k] * (c->scale * c->table[c->ids[t] * c->d + k] + pos[(t - c->off[s]) * c->d + k]);
  return l;
}

static void test_seq_embed(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(300);
  enum { NSEQ = 5, D = 6, ROWS = 12, ITEMS = 30 };
  const int lens[NSEQ] = {4, 1, 0, 10, 7};
  int32_t *off = tb_ints(&t, NSEQ + 1);
  off[0] = 0;
  for (int s = 0; s < NSEQ; s++) off[s + 1] = off[s] + lens[s];
  const dt_seq_windows w = windows_of(off, NSEQ);
  const int n = (int)w.n_tokens;
  int32_t *ids = tb_ints(&t, n);
  for (int i = 0; i < n; i++) ids[i] = (int32_t)tb_below(&r, ITEMS);
  float *table = tb_floats(&t, ITEMS * D), *pos = tb_floats(&t, ROWS * D), *out = tb_floats(&t, n * D);
  float *dout = tb_floats(&t, n * D), *dpos = tb_floats(&t, ROWS * D), *dpos0 = tb_floats(&t, ROWS * D);
  tb_fill(&r, table, ITEMS * D, -1, 1);
  tb_fill(&r, pos, ROWS * D, -1, 1);
  tb_fill(&r, dout, n * D, -1, 1);
  tb_fill(&r, dpos, ROWS * D, -1, 1);
  memcpy(dpos0, dpos, sizeof(float) * ROWS * D);
  const float scale = sqrtf((float)D);
  double dtable[ITEMS * D], dd[22 * D], p[ROWS * D], g[ROWS * D], want[22 * D];
  assert_true(n == 22);
  tb_to_double(dtable, table, ITEMS * D);
  tb_to_double(dd, dout, n * D);
  tb_to_double(p, pos, ROWS * D);
  for (int s = 0; s < NSEQ; s++)
    for (int i = off[s]; i < off[s + 1]; i++)
      for (int k = 0; k < D; k++) want[i * D + k] = (double)scale * dtable[ids[i] * D + k] + p[(i - off[s]) * D + k];
  TB_OK(t.be->seq_embed_fwd(t.be, table, ids, scale, pos, ROWS, w, D, out));
  TB_EXPECT_ERR("seq_embed_fwd", tb_rel_err(out, want, n * D, 1e-6), TB_TOL_FWD);
  TB_OK(t.be->seq_pos_grad(t.be, dout, w, D, ROWS, dpos));
  for (int i = 0; i < ROWS * D; i++) dpos[i] -= dpos0[i];
  embed_ctx ctx = {off, ids, NSEQ, D, ROWS, (double)scale, dtable, dd};
  tb_fd_gradient(embed_objective, &ctx, p, ROWS * D, TB_FD_H, g);
  TB_EXPECT_ERR("seq_pos_grad (accumulate)", tb_rel_err(dpos, g, ROWS * D, 1e-6), TB_TOL_GRAD);
  /* positions past the longest window get nothing */
  for (int i = w.max_len * D; i < ROWS * D; i++) assert_true(dpos[i] == 0.0f);
  /* a positional table shorter than the longest window is an error */
  assert_int_equal(t.be->seq_embed_fwd(t.be, table, ids, scale, pos, 9, w, D, out), DT_EXIT_RUNTIME);
  assert_int_equal(t.be->seq_pos_grad(t.be, dout, w, D, 9, dpos), DT_EXIT_RUNTIME);
  assert_non_null(strstr(dt_error_message(), "positions"));
  tb_close(&t);
}

/* ---------------------------------------------------------------- thread counts */

/* The model's shapes (windows up to 2L-1 = 99, d = 64): every op gives the
 * same bits on 1 and 2 threads. */
static void test_same_bits_any_thread_count(void **state) {
  (void)state;
  enum { NSEQ = 12, D = 64, H = 2, ROWS = 100 };
  /* 746 tokens: every op runs its parallel loop */
  const int lens[NSEQ] = {99, 50, 1, 73, 99, 12, 64, 2, 88, 99, 99, 60};
  float *res[2][7];
  int64_t sizes[7];
  for (int run = 0; run < 2; run++) {
    tb_ctx t;
    tb_open(&t, run + 1);
    tb_rng r = tb_seed(400);
    int32_t *off = tb_ints(&t, NSEQ + 1);
    off[0] = 0;
    for (int s = 0; s < NSEQ; s++) off[s + 1] = off[s] + lens[s];
    const dt_seq_windows w = windows_of(off, NSEQ);
    const int64_t n = w.n_tokens, np = dt_attn_probs_floats(off, NSEQ, H);
    float *x = tb_floats(&t, n * D), *wt = tb_floats(&t, D), *b = tb_floats(&t, D), *y = tb_floats(&t, n * D);
    float *mean = tb_floats(&t, n), *rstd = tb_floats(&t, n), *dx = tb_floats(&t, n * D);
    float *dw = tb_floats(&t, D), *db = tb_floats(&t, D), *qkv = tb_floats(&t, n * 3 * D);
    float *out = tb_floats(&t, n * D), *probs = tb_floats(&t, np), *dqkv = tb_floats(&t, n * 3 * D);
    float *dpos = tb_floats(&t, ROWS * D);
    tb_fill(&r, x, n * D, -1, 1);
    tb_fill(&r, wt, D, 0.5f, 1.5f);
    tb_fill(&r, b, D, -1, 1);
    tb_fill(&r, qkv, n * 3 * D, -1, 1);
    memset(dw, 0, D * 4);
    memset(db, 0, D * 4);
    memset(dpos, 0, ROWS * D * 4);
    TB_OK(t.be->layer_norm_fwd(t.be, x, wt, b, 1e-8f, n, D, y, mean, rstd));
    TB_OK(t.be->layer_norm_bwd(t.be, x, y, wt, mean, rstd, n, D, dx, 0, dw, db));
    TB_OK(t.be->attn_fwd(t.be, qkv, w, D, H, out, probs));
    TB_OK(t.be->attn_bwd(t.be, qkv, probs, y, w, D, H, dqkv));
    TB_OK(t.be->seq_pos_grad(t.be, dqkv, w, D, ROWS, dpos));
    float *bufs[7] = {y, dx, dw, out, probs, dqkv, dpos};
    const int64_t ns[7] = {n * D, n * D, D, n * D, np, n * 3 * D, ROWS * D};
    for (int i = 0; i < 7; i++) {
      res[run][i] = malloc((size_t)ns[i] * 4);
      memcpy(res[run][i], bufs[i], (size_t)ns[i] * 4);
      sizes[i] = ns[i];
    }
    tb_close(&t);
  }
  const char *names[7] = {"layer_norm_fwd", "layer_norm_bwd dx", "layer_norm_bwd dweight",
                          "attn_fwd out",   "attn_fwd probs",    "attn_bwd dqkv",
                          "seq_pos_grad"};
  for (int i = 0; i < 7; i++) {
    print_message("  %-44s %s on 1 and 2 threads\n", names[i],
                  tb_bits_equal(res[0][i], res[1][i], (size_t)sizes[i] * 4) ? "same bits" : "DIFFERENT bits");
    assert_true(tb_bits_equal(res[0][i], res[1][i], (size_t)sizes[i] * 4));
    free(res[0][i]);
    free(res[1][i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layer_norm),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_seq_embed),
      cmocka_unit_test(test_same_bits_any_thread_count),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
