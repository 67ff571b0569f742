/* GRU on the CPU backend: one step against torch.nn.GRU's formulas written
 * out in double, and a 3-step unrolled sequence (gemm + add_bias +
 * gru_step_fwd forward, gru_step_bwd + gemm + bias_grad backward, sequences
 * of different lengths, left-padded, padding steps passing the state
 * through) against finite differences of the whole sequence in double. */
#include "test_backend_cpu_util.h"

enum { IN = 3, H = 4, G = 3 * H };

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

/* torch.nn.GRU, one step for one sequence, in double:
 *   r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h
 * W_ih rows [0,H) are W_ir, [H,2H) W_iz, [2H,3H) W_in; likewise W_hh. */
static void torch_gru_cell(const double *w_ih, const double *w_hh, const double *b_ih, const double *b_hh,
                           const double *x, const double *hp, double *h_out, double *r_out, double *z_out,
                           double *n_out) {
  for (int j = 0; j < H; j++) {
    double gi[3], gh[3];
    for (int q = 0; q < 3; q++) {
      int row = q * H + j;
      gi[q] = b_ih[row];
      gh[q] = b_hh[row];
      for (int k = 0; k < IN; k++) gi[q] += w_ih[row * IN + k] * x[k];
      for (int k = 0; k < H; k++) gh[q] += w_hh[row * H + k] * hp[k];
    }
    double r = sigmoid_ref(gi[0] + gh[0]);
    double z = sigmoid_ref(gi[1] + gh[1]);
    double n = tanh(gi[2] + r * gh[2]);
    h_out[j] = (1.0 - z) * n + z * hp[j];
    if (r_out) {
      r_out[j] = r;
      z_out[j] = z;
      n_out[j] = n;
    }
  }
}

typedef struct {
  float *w_ih, *w_hh, *b_ih, *b_hh; /* [G,IN], [G,H], [G], [G] */
} gru_params;

static void random_params(tb_ctx *t, tb_rng *r, gru_params *p) {
  const float bound = 0.5f; /* wider than torch's 1/sqrt(H), to exercise the nonlinearity */
  p->w_ih = tb_floats(t, G * IN);
  p->w_hh = tb_floats(t, G * H);
  p->b_ih = tb_floats(t, G);
  p->b_hh = tb_floats(t, G);
  tb_fill(r, p->w_ih, G * IN, -bound, bound);
  tb_fill(r, p->w_hh, G * H, -bound, bound);
  tb_fill(r, p->b_ih, G, -bound, bound);
  tb_fill(r, p->b_hh, G, -bound, bound);
}

/* xg = x W_ih^T + b_ih, hg = h W_hh^T + b_hh (hg = b_hh when h is NULL) */
static void pre_activations(tb_ctx *t, const gru_params *p, const float *x, const float *h, int64_t a, float *xg,
                            float *hg) {
  dt_backend *be = t->be;
  TB_OK(be->gemm(be, 0, 1, (int)a, G, IN, 1.0f, x, IN, p->w_ih, IN, 0.0f, xg, G));
  TB_OK(be->add_bias(be, xg, p->b_ih, a, G));
  if (h) {
    TB_OK(be->gemm(be, 0, 1, (int)a, G, H, 1.0f, h, H, p->w_hh, H, 0.0f, hg, G));
  } else {
    TB_OK(be->zero(be, hg, (size_t)a * G * sizeof(float)));
  }
  TB_OK(be->add_bias(be, hg, p->b_hh, a, G));
}

static void test_gru_step_matches_torch_formulas(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(21);
  enum { A = 3 };
  gru_params p;
  random_params(&t, &r, &p);
  float *x = tb_floats(&t, A * IN), *h = tb_floats(&t, A * H), *xg = tb_floats(&t, A * G), *hg = tb_floats(&t, A * G);
  float *ho = tb_floats(&t, A * H), *cache = tb_floats(&t, A * 4 * H);
  tb_fill(&r, x, A * IN, -1, 1);
  tb_fill(&r, h, A * H, -1, 1);
  double w_ih[G * IN], w_hh[G * H], b_ih[G], b_hh[G];
  tb_to_double(w_ih, p.w_ih, G * IN);
  tb_to_double(w_hh, p.w_hh, G * H);
  tb_to_double(b_ih, p.b_ih, G);
  tb_to_double(b_hh, p.b_hh, G);

  for (int with_state = 1; with_state >= 0; with_state--) {
    pre_activations(&t, &p, x, with_state ? h : NULL, A, xg, hg);
    TB_OK(t.be->gru_step_fwd(t.be, xg, hg, with_state ? h : NULL, ho, cache, A, H));
    double want_h[A * H], want_cache[A * 4 * H];
    for (int s = 0; s < A; s++) {
      double xs[IN], hs[H] = {0, 0, 0, 0};
      tb_to_double(xs, x + s * IN, IN);
      if (with_state) tb_to_double(hs, h + s * H, H);
      double *c = want_cache + s * 4 * H;
      torch_gru_cell(w_ih, w_hh, b_ih, b_hh, xs, hs, want_h + s * H, c, c + H, c + 2 * H);
      for (int j = 0; j < H; j++) { /* hg_n = W_hn h + b_hn */
        double v = b_hh[2 * H + j];
        for (int k = 0; k < H; k++) v += w_hh[(2 * H + j) * H + k] * hs[k];
        c[3 * H + j] = v;
      }
    }
    TB_EXPECT_ERR(with_state ? "gru step h' vs torch formulas" : "gru step h' (zero state, h_prev NULL)",
                  tb_rel_err(ho, want_h, A * H, 1e-6), TB_TOL_FWD);
    TB_EXPECT_ERR(with_state ? "gru step cache (r, z, n, hg_n)" : "gru step cache, zero state",
                  tb_rel_err(cache, want_cache, A * 4 * H, 1e-6), TB_TOL_FWD);
  }
  tb_close(&t);
}

/* ---------------------------------------------------------------- sequence */

enum { T = 3, A = 4 };
static const int k_len[A] = {3, 3, 2, 1}; /* longest first: the active rows of a step are a prefix */

static int active_at(int step) {
  int n = 0;
  for (int s = 0; s < A; s++) n += k_len[s] >= T - step;
  return n;
}

/* p = [W_ih | W_hh | b_ih | b_hh | X (T, A, IN)] */
enum {
  OFF_WHH = G * IN,
  OFF_BIH = OFF_WHH + G * H,
  OFF_BHH = OFF_BIH + G,
  OFF_X = OFF_BHH + G,
  NP = OFF_X + T * A * IN
};

static double sequence_objective(const double *p, const void *ctx) {
  const double *dout = ctx;
  double hstate[A][H];
  memset(hstate, 0, sizeof hstate);
  for (int t = 0; t < T; t++) {
    for (int s = 0; s < A; s++) {
      if (k_len[s] < T - t) continue; /* padding step: state passes through */
      double hn[H];
      torch_gru_cell(p, p + OFF_WHH, p + OFF_BIH, p + OFF_BHH, p + OFF_X + (t * A + s) * IN, hstate[s], hn, NULL, NULL,
                     NULL);
      memcpy(hstate[s], hn, sizeof hn);
    }
  }
  double l = 0.0;
  for (int s = 0; s < A; s++)
    for (int j = 0; j < H; j++) l += dout[s * H + j] * hstate[s][j];
  return l;
}

static void test_gru_sequence_gradients(void **state) {
  (void)state;
  tb_ctx t;
  tb_open(&t, 2);
  tb_rng r = tb_seed(22);
  dt_backend *be = t.be;
  gru_params p;
  random_params(&t, &r, &p);
  float *x = tb_floats(&t, T * A * IN);
  tb_fill(&r, x, T * A * IN, -1, 1);
  float *hs[T], *cache[T];
  for (int s = 0; s < T; s++) {
    hs[s] = tb_floats(&t, A * H);
    cache[s] = tb_floats(&t, A * 4 * H);
  }
  float *xg = tb_floats(&t, A * G), *hg = tb_floats(&t, A * G);

  /* forward: hs[t] rows [0, a_t) from the step, the rest pass through */
  for (int s = 0; s < T; s++) {
    int at = active_at(s);
    const float *hp = s == 0 ? NULL : hs[s - 1];
    pre_activations(&t, &p, x + s * A * IN, hp, at, xg, hg);
    TB_OK(be->gru_step_fwd(be, xg, hg, hp, hs[s], cache[s], at, H));
    if (at < A) {
      if (hp)
        TB_OK(be->copy(be, hs[s] + at * H, hp + at * H, (size_t)(A - at) * H * sizeof(float)));
      else
        TB_OK(be->zero(be, hs[s] + at * H, (size_t)(A - at) * H * sizeof(float)));
    }
  }

  /* backward */
  float *dh = tb_floats(&t, A * H), *dprev = tb_floats(&t, A * H), *dxg = tb_floats(&t, A * G);
  float *dhg = tb_floats(&t, A * G), *dx = tb_floats(&t, T * A * IN);
  float *dw_ih = tb_floats(&t, G * IN), *dw_hh = tb_floats(&t, G * H), *db_ih = tb_floats(&t, G);
  float *db_hh = tb_floats(&t, G);
  tb_fill(&r, dh, A * H, -1, 1);
  double dout[A * H];
  tb_to_double(dout, dh, A * H);
  TB_OK(be->zero(be, dx, T * A * IN * sizeof(float)));
  TB_OK(be->zero(be, dw_ih, G * IN * sizeof(float)));
  TB_OK(be->zero(be, dw_hh, G * H * sizeof(float)));
  TB_OK(be->zero(be, db_ih, G * sizeof(float)));
  TB_OK(be->zero(be, db_hh, G * sizeof(float)));
  for (int s = T - 1; s >= 0; s--) {
    int at = active_at(s);
    const float *hp = s == 0 ? NULL : hs[s - 1];
    TB_OK(be->zero(be, dprev, A * H * sizeof(float)));
    TB_OK(be->gru_step_bwd(be, dh, hp, cache[s], dxg, dhg, hp ? dprev : NULL, at, H));
    if (hp) {
      TB_OK(be->gemm(be, 0, 0, at, H, G, 1.0f, dhg, G, p.w_hh, H, 1.0f, dprev, H)); /* dh_prev += dhg W_hh */
      TB_OK(be->gemm(be, 1, 0, G, H, at, 1.0f, dhg, G, hp, H, 1.0f, dw_hh, H));     /* dW_hh += dhg^T h_prev */
    }
    TB_OK(be->bias_grad(be, db_hh, dhg, at, G));
    TB_OK(be->gemm(be, 1, 0, G, IN, at, 1.0f, dxg, G, x + s * A * IN, IN, 1.0f, dw_ih, IN)); /* dW_ih += dxg^T x */
    TB_OK(be->bias_grad(be, db_ih, dxg, at, G));
    TB_OK(be->gemm(be, 0, 0, at, IN, G, 1.0f, dxg, G, p.w_ih, IN, 0.0f, dx + s * A * IN, IN)); /* dx = dxg W_ih */
    TB_OK(be->copy(be, dh, dprev, (size_t)at * H * sizeof(float))); /* rows >= at pass through */
  }

  double pd[NP], g[NP];
  tb_to_double(pd, p.w_ih, G * IN);
  tb_to_double(pd + OFF_WHH, p.w_hh, G * H);
  tb_to_double(pd + OFF_BIH, p.b_ih, G);
  tb_to_double(pd + OFF_BHH, p.b_hh, G);
  tb_to_double(pd + OFF_X, x, T * A * IN);
  double want_h[A * H];
  {
    /* forward check: the final state against the double sequence */
    double hstate[A][H];
    memset(hstate, 0, sizeof hstate);
    for (int s = 0; s < T; s++)
      for (int q = 0; q < A; q++) {
        if (k_len[q] < T - s) continue;
        double hn[H];
        torch_gru_cell(pd, pd + OFF_WHH, pd + OFF_BIH, pd + OFF_BHH, pd + OFF_X + (s * A + q) * IN, hstate[q], hn, NULL,
                       NULL, NULL);
        memcpy(hstate[q], hn, sizeof hn);
      }
    for (int q = 0; q < A; q++)
      for (int j = 0; j < H; j++) want_h[q * H + j] = hstate[q][j];
  }
  TB_EXPECT_ERR("gru sequence final state", tb_rel_err(hs[T - 1], want_h, A * H, 1e-6), TB_TOL_FWD);

  tb_fd_gradient(sequence_objective, dout, pd, NP, TB_FD_H, g);
  TB_EXPECT_ERR("gru sequence dW_ih", tb_rel_err(dw_ih, g, G * IN, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("gru sequence dW_hh", tb_rel_err(dw_hh, g + OFF_WHH, G * H, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("gru sequence db_ih", tb_rel_err(db_ih, g + OFF_BIH, G, 1e-6), TB_TOL_GRAD);
  TB_EXPECT_ERR("gru sequence db_hh", tb_rel_err(db_hh, g + OFF_BHH, G, 1e-6), TB_TOL_GRAD);
  /* padding steps' inputs are never read: their gradient is 0 both ways */
  TB_EXPECT_ERR("gru sequence dx (all steps, padding 0)", tb_rel_err(dx, g + OFF_X, T * A * IN, 1e-6), TB_TOL_GRAD);
  tb_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gru_step_matches_torch_formulas),
      cmocka_unit_test(test_gru_sequence_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
