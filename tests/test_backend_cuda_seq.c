/* The CUDA backend's ops of issue 13 (SASRec encoder and softmax losses)
 * against the CPU backend (their reference, itself checked against float64
 * in test_backend_cpu_seq/xent), on random inputs with every output
 * poisoned (NaN) first, so an element the GPU never writes fails; and the
 * same bits when run twice (determinism). Tolerances as
 * test_backend_cuda_ops.c (test_backend_cuda_util.h): 1e-5 relative (rms
 * floor) for fp32; for attention with TF32 GEMMs 1e-2 (TF32 keeps 10
 * mantissa bits, unit roundoff 4.9e-4, and the backward chains three
 * products: dP = dO V^T, dS, dQ = dS K; 3.4e-3 was the worst seen);
 * seq_pos_grad and the target scores must match the CPU exactly.
 *
 * Windows mix lengths 0, 1, 2 and up to 2L-1 = 99 in one batch; heads 1, 3
 * and 4. Skipped (77) without a usable CUDA device; under the emulator
 * (build with -DDTRAIN_CUDA_EMU=ON) it runs everywhere, also with
 * DTK_EMU_SCHEDULE=reverse|shuffle. Inputs from DTRAIN_TEST_SEED, else the
 * clock (printed). */
#include <time.h>

#include "test_backend_cuda_util.h"

#define TOL_ATTN_TF32 1e-2

/* ---- helpers ---- */

/* Downloads a pair twice-run result: the tested backend's buffer after a
 * second identical call must equal the first bit for bit. */
static float *download_gpu(pair p) {
  float *h = fnew(p.bytes / sizeof(float));
  OK(g_gpu->download(g_gpu, h, p.b, p.bytes));
  return h;
}

static void expect_same_bits(const char *what, const float *first, pair p) {
  float *again = download_gpu(p);
  assert_true(same_bits(what, first, again, p.bytes));
  free(again);
}

/* Windows with these lengths: offsets on both backends, max_len. */
typedef struct {
  int32_t *off_host;
  pair off;
  dt_seq_windows wa, wb; /* for the CPU and the tested backend */
} windows;

static windows windows_new(const int *lens, int n_seq) {
  windows w;
  w.off_host = malloc((size_t)(n_seq + 1) * sizeof *w.off_host);
  w.off_host[0] = 0;
  int max_len = 0;
  for (int s = 0; s < n_seq; s++) {
    w.off_host[s + 1] = w.off_host[s] + lens[s];
    if (lens[s] > max_len) max_len = lens[s];
  }
  w.off = pair_new(w.off_host, (size_t)(n_seq + 1) * sizeof(int32_t));
  dt_seq_windows a = {w.off.a, n_seq, w.off_host[n_seq], max_len}, b = {w.off.b, n_seq, w.off_host[n_seq], max_len};
  w.wa = a;
  w.wb = b;
  return w;
}

static void windows_free(windows *w) {
  pair_free(&w->off);
  free(w->off_host);
}

/* ---- layer norm ---- */

static void layer_norm_case(int64_t n, int d, int accumulate) {
  const size_t nx = (size_t)(n * d);
  float *x = fnew(nx), *w = fnew((size_t)d), *b = fnew((size_t)d), *poison = fnew(nx), *dy = fnew(nx);
  float *dx = fnew(nx), *dwb = fnew((size_t)d);
  fill_uniform(x, nx, -2.0f, 3.0f);
  fill_uniform(w, (size_t)d, 0.5f, 1.5f);
  fill_uniform(b, (size_t)d, -1.0f, 1.0f);
  fill_uniform(dy, nx, -1.0f, 1.0f);
  fill_uniform(dx, nx, -1.0f, 1.0f);
  fill_uniform(dwb, (size_t)d, -1.0f, 1.0f);
  fill_nan(poison, nx);
  pair px = pair_new(x, nx * 4), pw = pair_new(w, (size_t)d * 4), pb = pair_new(b, (size_t)d * 4),
       py = pair_new(poison, nx * 4), pm = pair_new(poison, (size_t)n * 4), pr = pair_new(poison, (size_t)n * 4),
       pdy = pair_new(dy, nx * 4), pdx = pair_new(accumulate ? dx : poison, nx * 4), pdw = pair_new(dwb, (size_t)d * 4),
       pdb = pair_new(dwb, (size_t)d * 4);
  OK(g_cpu->layer_norm_fwd(g_cpu, px.a, pw.a, pb.a, 1e-8f, n, d, py.a, pm.a, pr.a));
  OK(g_gpu->layer_norm_fwd(g_gpu, px.b, pw.b, pb.b, 1e-8f, n, d, py.b, pm.b, pr.b));
  char what[80];
  snprintf(what, sizeof what, "layer_norm_fwd [%lld, %d]", (long long)n, d);
  check_pair(what, py, TOL_FP32);
  check_pair("layer_norm_fwd mean", pm, TOL_FP32);
  check_pair("layer_norm_fwd rstd", pr, TOL_FP32);
  OK(g_cpu->layer_norm_bwd(g_cpu, pdy.a, px.a, pw.a, pm.a, pr.a, n, d, pdx.a, accumulate, pdw.a, pdb.a));
  OK(g_gpu->layer_norm_bwd(g_gpu, pdy.b, px.b, pw.b, pm.b, pr.b, n, d, pdx.b, accumulate, pdw.b, pdb.b));
  snprintf(what, sizeof what, "layer_norm_bwd dx (%s)", accumulate ? "accumulate" : "overwrite");
  check_pair(what, pdx, TOL_FP32);
  check_pair("layer_norm_bwd dweight (accumulate)", pdw, TOL_FP32);
  check_pair("layer_norm_bwd dbias (accumulate)", pdb, TOL_FP32);
  /* determinism: the same accumulation from the same start, twice */
  float *first = download_gpu(pdw);
  OK(g_gpu->upload(g_gpu, pdw.b, dwb, (size_t)d * 4));
  OK(g_gpu->layer_norm_bwd(g_gpu, pdy.b, px.b, pw.b, pm.b, pr.b, n, d, pdx.b, 0, pdw.b, NULL));
  OK(g_gpu->upload(g_gpu, pdw.b, dwb, (size_t)d * 4));
  OK(g_gpu->layer_norm_bwd(g_gpu, pdy.b, px.b, pw.b, pm.b, pr.b, n, d, pdx.b, 0, pdw.b, NULL));
  expect_same_bits("layer_norm_bwd dweight", first, pdw);
  free(first);
  pair ps[] = {px, pw, pb, py, pm, pr, pdy, pdx, pdw, pdb};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  free(x);
  free(w);
  free(b);
  free(poison);
  free(dy);
  free(dx);
  free(dwb);
}

static void test_layer_norm(void **state) {
  (void)state;
  layer_norm_case(1100, 64, 0); /* three chunks of the column sums */
  layer_norm_case(300, 45, 1);  /* a width that is not a multiple of 32 */
  layer_norm_case(7, 1, 0);     /* one column */
  layer_norm_case(3, 200, 1);   /* wider than the warp's 32 lanes x 6 */
}

/* ---- attention ---- */

static void attn_case(dt_backend *tested, double tol, const int *lens, int n_seq, int d, int heads) {
  windows w = windows_new(lens, n_seq);
  const int64_t n = w.wa.n_tokens, np = dt_attn_probs_floats(w.off_host, n_seq, heads);
  const size_t nq = (size_t)(n * 3 * d), no = (size_t)(n * d);
  float *qkv = fnew(nq), *dout = fnew(no), *poison = fnew(nq > (size_t)np ? nq : (size_t)np);
  fill_uniform(qkv, nq, -1.5f, 1.5f);
  fill_uniform(dout, no, -1.0f, 1.0f);
  fill_nan(poison, nq > (size_t)np ? nq : (size_t)np);
  pair pq = pair_on(g_cpu, tested, qkv, nq * 4), pdo = pair_on(g_cpu, tested, dout, no * 4),
       po = pair_on(g_cpu, tested, poison, no * 4), pp = pair_on(g_cpu, tested, poison, (size_t)np * 4),
       pdq = pair_on(g_cpu, tested, poison, nq * 4), poff = pair_on(g_cpu, tested, w.off_host, (size_t)(n_seq + 1) * 4);
  dt_seq_windows wb = w.wa;
  wb.offsets = poff.b;
  OK(g_cpu->attn_fwd(g_cpu, pq.a, w.wa, d, heads, po.a, pp.a));
  OK(tested->attn_fwd(tested, pq.b, wb, d, heads, po.b, pp.b));
  char what[96];
  snprintf(what, sizeof what, "attn_fwd out %d win, d=%d, h=%d%s", n_seq, d, heads, tested == g_tf32 ? " tf32" : "");
  check_pair(what, po, tol);
  check_pair("attn_fwd probs (compact)", pp, tol);
  /* the backward from the CPU's probabilities on both, so that it is
   * checked on its own */
  float *probs_cpu = fnew((size_t)np);
  OK(g_cpu->download(g_cpu, probs_cpu, pp.a, (size_t)np * 4));
  OK(tested->upload(tested, pp.b, probs_cpu, (size_t)np * 4));
  OK(g_cpu->attn_bwd(g_cpu, pq.a, pp.a, pdo.a, w.wa, d, heads, pdq.a));
  OK(tested->attn_bwd(tested, pq.b, pp.b, pdo.b, wb, d, heads, pdq.b));
  snprintf(what, sizeof what, "attn_bwd dqkv %d win, d=%d, h=%d%s", n_seq, d, heads, tested == g_tf32 ? " tf32" : "");
  check_pair(what, pdq, tol);
  if (tested == g_gpu) { /* determinism */
    float *out1 = download_gpu(po), *dq1 = download_gpu(pdq);
    OK(g_gpu->attn_fwd(g_gpu, pq.b, wb, d, heads, po.b, pp.b));
    expect_same_bits("attn_fwd out", out1, po);
    OK(g_gpu->upload(g_gpu, pp.b, probs_cpu, (size_t)np * 4));
    OK(g_gpu->attn_bwd(g_gpu, pq.b, pp.b, pdo.b, wb, d, heads, pdq.b));
    expect_same_bits("attn_bwd dqkv", dq1, pdq);
    free(out1);
    free(dq1);
  }
  free(probs_cpu);
  pair ps[] = {pq, pdo, po, pp, pdq, poff};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  windows_free(&w);
  free(qkv);
  free(dout);
  free(poison);
}

static void test_attention(void **state) {
  (void)state;
  const int mixed[] = {1, 5, 37, 0, 64, 2, 99, 13};
  attn_case(g_gpu, TOL_FP32, mixed, 8, 64, 1);
  attn_case(g_gpu, TOL_FP32, mixed, 8, 64, 4);
  attn_case(g_gpu, TOL_FP32, mixed, 8, 48, 3); /* dh = 16 with three heads */
  attn_case(g_tf32, TOL_ATTN_TF32, mixed, 8, 64, 1);
  const int one[] = {1};
  attn_case(g_gpu, TOL_FP32, one, 1, 8, 2); /* one token */
  const int same[] = {50, 50, 50};
  attn_case(g_gpu, TOL_FP32, same, 3, 32, 2); /* no padding at all */
  /* no tokens: nothing written, no error */
  const int empty[] = {0, 0};
  windows w = windows_new(empty, 2);
  float nan4[4] = {NAN, NAN, NAN, NAN};
  pair pq = pair_new(nan4, 16), po = pair_new(nan4, 16);
  OK(g_gpu->attn_fwd(g_gpu, pq.b, w.wb, 4, 1, po.b, po.b));
  OK(g_gpu->attn_bwd(g_gpu, pq.b, po.b, po.b, w.wb, 4, 1, pq.b));
  dt_seq_windows none = {NULL, 0, 0, 0};
  OK(g_gpu->attn_fwd(g_gpu, pq.b, none, 4, 1, po.b, po.b));
  /* a width that the heads do not divide is the caller's bug */
  assert_int_equal(g_gpu->attn_fwd(g_gpu, pq.b, w.wb, 6, 4, po.b, po.b), DT_EXIT_RUNTIME);
  pair_free(&pq);
  pair_free(&po);
  windows_free(&w);
}

/* ---- input embedding ---- */

static void test_seq_embed(void **state) {
  (void)state;
  const int lens[] = {99, 1, 0, 50, 73, 2, 99};
  const int n_seq = 7, d = 64, rows = 100, items = 500;
  windows w = windows_new(lens, n_seq);
  const int64_t n = w.wa.n_tokens;
  float *table = fnew((size_t)(items * d)), *pos = fnew((size_t)(rows * d)), *dx = fnew((size_t)(n * d));
  float *out = fnew((size_t)(n * d)), *dpos = fnew((size_t)(rows * d));
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  fill_uniform(table, (size_t)(items * d), -0.1f, 0.1f);
  fill_uniform(pos, (size_t)(rows * d), -0.1f, 0.1f);
  fill_uniform(dx, (size_t)(n * d), -1.0f, 1.0f);
  fill_uniform(dpos, (size_t)(rows * d), -1.0f, 1.0f);
  fill_ids(ids, (size_t)n, items);
  fill_nan(out, (size_t)(n * d));
  pair pt = pair_new(table, (size_t)(items * d) * 4), pp = pair_new(pos, (size_t)(rows * d) * 4),
       pi = pair_new(ids, (size_t)n * 4), po = pair_new(out, (size_t)(n * d) * 4),
       pdx = pair_new(dx, (size_t)(n * d) * 4), pdp = pair_new(dpos, (size_t)(rows * d) * 4);
  const float scale = 8.0f;
  OK(g_cpu->seq_embed_fwd(g_cpu, pt.a, pi.a, scale, pp.a, rows, w.wa, d, po.a));
  OK(g_gpu->seq_embed_fwd(g_gpu, pt.b, pi.b, scale, pp.b, rows, w.wb, d, po.b));
  check_pair("seq_embed_fwd", po, TOL_FP32);
  OK(g_cpu->seq_pos_grad(g_cpu, pdx.a, w.wa, d, rows, pdp.a));
  OK(g_gpu->seq_pos_grad(g_gpu, pdx.b, w.wb, d, rows, pdp.b));
  check_pair("seq_pos_grad (the CPU's order: exact)", pdp, 0.0);
  /* a positional table shorter than the longest window is the caller's bug */
  assert_int_equal(g_gpu->seq_pos_grad(g_gpu, pdx.b, w.wb, d, 98, pdp.b), DT_EXIT_RUNTIME);
  assert_int_equal(g_gpu->seq_embed_fwd(g_gpu, pt.b, pi.b, scale, pp.b, 98, w.wb, d, po.b), DT_EXIT_RUNTIME);
  pair ps[] = {pt, pp, pi, po, pdx, pdp};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(&ps[i]);
  windows_free(&w);
  free(table);
  free(pos);
  free(dx);
  free(out);
  free(dpos);
  free(ids);
}

/* ---- losses ---- */

static void test_bce(void **state) {
  (void)state;
  const int cs[] = {2, 5, 1};
  for (int t = 0; t < 3; t++) {
    const int64_t n = 1000;
    const int c = cs[t];
    const size_t ns = (size_t)(n * c);
    float *s = fnew(ns), *ds = fnew(ns);
    fill_uniform(s, ns, -6.0f, 6.0f);
    s[0] = 90.0f;
    s[ns - 1] = -90.0f;
    fill_nan(ds, ns);
    pair ps = pair_new(s, ns * 4), pds = pair_new(ds, ns * 4);
    double la = -1.0, lb = -1.0, lb2 = -2.0;
    OK(g_cpu->bce(g_cpu, ps.a, n, c, 1.0f / (float)n, pds.a, &la));
    OK(g_gpu->bce(g_gpu, ps.b, n, c, 1.0f / (float)n, pds.b, &lb));
    char what[64];
    snprintf(what, sizeof what, "bce dscores c=%d", c);
    check_pair(what, pds, TOL_FP32);
    printf("  bce loss sum c=%d: cpu %.17g gpu %.17g\n", c, la, lb);
    assert_true(fabs(la - lb) <= TOL_FP32 * fabs(la));
    OK(g_gpu->bce(g_gpu, ps.b, n, c, 1.0f / (float)n, pds.b, &lb2));
    assert_true(same_bits("bce loss sum", &lb, &lb2, sizeof lb));
    /* in place */
    OK(g_gpu->bce(g_gpu, ps.b, n, c, 1.0f / (float)n, ps.b, &lb2));
    float *inplace = download_gpu(ps), *sep = download_gpu(pds);
    assert_true(same_bits("bce in place", sep, inplace, ns * 4));
    free(inplace);
    free(sep);
    pair_free(&ps);
    pair_free(&pds);
    free(s);
    free(ds);
  }
}

/* Scores [n, total] as three column blocks (slices, ld = total) processed
 * out of order; targets by column, NULL (column 0), or -1 (given). */
static void xent_case(int64_t n, const int32_t *target_host, int given) {
  enum { NB = 3 };
  const int start[NB] = {0, 100, 137}, cols[NB] = {100, 37, 300}, order[NB] = {2, 0, 1}, total = 437;
  const size_t ns = (size_t)(n * total);
  float *s = fnew(ns), *poison = fnew(ns), *tgt = fnew((size_t)n);
  fill_uniform(s, ns, -4.0f, 4.0f);
  for (int j = 0; j < total; j++) s[1 * total + j] += 100.0f; /* e^s overflows float */
  s[2 * total + 5] = 80.0f;
  s[2 * total + 300] = -80.0f;
  for (int j = 100; j < 137; j++) s[3 * total + j] = -INFINITY; /* a whole block */
  s[3 * total + 400] = -INFINITY;
  fill_nan(poison, ns);
  if (given)
    fill_uniform(tgt, (size_t)n, -1.0f, 1.0f);
  else
    fill_nan(tgt, (size_t)n);
  pair ps = pair_new(s, ns * 4), pg = pair_new(poison, ns * 4), pm = pair_new(poison, (size_t)n * 4),
       psum = pair_new(poison, (size_t)n * 4), pt = pair_new(tgt, (size_t)n * 4),
       plse = pair_new(poison, (size_t)n * 4);
  pair ptg = pair_new(target_host ? target_host : (const void *)tgt, (size_t)n * 4);
  const int32_t *ta = target_host ? ptg.a : NULL, *tb = target_host ? ptg.b : NULL;
  for (int q = 0; q < NB; q++) {
    const int k = order[q];
    OK(g_cpu->xent_stats(g_cpu, (float *)ps.a + start[k], n, cols[k], total, start[k], ta, q == 0, pm.a, psum.a, pt.a));
    OK(g_gpu->xent_stats(g_gpu, (float *)ps.b + start[k], n, cols[k], total, start[k], tb, q == 0, pm.b, psum.b, pt.b));
  }
  check_pair("xent_stats run_max", pm, TOL_FP32);
  check_pair("xent_stats run_sum", psum, TOL_FP32);
  check_pair("xent_stats tgt_score", pt, 0.0);
  double la = -1.0, lb = -1.0, lb2 = -2.0;
  OK(g_cpu->xent_loss(g_cpu, pm.a, psum.a, pt.a, n, plse.a, &la));
  OK(g_gpu->xent_loss(g_gpu, pm.b, psum.b, pt.b, n, plse.b, &lb));
  check_pair("xent_loss lse", plse, TOL_FP32);
  printf("  xent loss sum: cpu %.17g gpu %.17g\n", la, lb);
  assert_true(fabs(la - lb) <= TOL_FP32 * fabs(la));
  /* in place into run_max; determinism of the double sum */
  OK(g_gpu->xent_loss(g_gpu, pm.b, psum.b, pt.b, n, pm.b, &lb2));
  assert_true(same_bits("xent loss sum", &lb, &lb2, sizeof lb));
  check_pair("xent_loss lse in place of run_max", (pair){plse.a, pm.b, g_cpu, g_gpu, plse.bytes}, TOL_FP32);
  for (int q = 0; q < NB; q++) {
    const int k = order[q];
    OK(g_cpu->xent_grad(g_cpu, (float *)ps.a + start[k], n, cols[k], total, start[k], ta, plse.a, 0.01f,
                        (float *)pg.a + start[k], total));
    OK(g_gpu->xent_grad(g_gpu, (float *)ps.b + start[k], n, cols[k], total, start[k], tb, plse.b, 0.01f,
                        (float *)pg.b + start[k], total));
  }
  check_pair(target_host ? (given ? "xent_grad (targets given)" : "xent_grad (targets by column)")
                         : "xent_grad (target column 0)",
             pg, TOL_FP32);
  /* in place on the scores */
  for (int q = 0; q < NB; q++) {
    const int k = order[q];
    OK(g_gpu->xent_grad(g_gpu, (float *)ps.b + start[k], n, cols[k], total, start[k], tb, plse.b, 0.01f,
                        (float *)ps.b + start[k], total));
  }
  float *inplace = download_gpu(ps), *sep = download_gpu(pg);
  assert_true(same_bits("xent_grad in place", sep, inplace, ns * 4));
  free(inplace);
  free(sep);
  pair pl[] = {ps, pg, pm, psum, pt, plse, ptg};
  for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++) pair_free(&pl[i]);
  free(s);
  free(poison);
  free(tgt);
}

static void test_softmax_xent(void **state) {
  (void)state;
  const int64_t n = 300;
  int32_t *target = malloc((size_t)n * sizeof *target);
  fill_ids(target, (size_t)n, 437);
  target[3] = 20; /* row 3's -inf block is elsewhere */
  xent_case(n, target, 0);
  for (int64_t i = 0; i < n; i += 3) target[i] = -1; /* a third scored by the caller */
  xent_case(n, target, 1);
  xent_case(n, NULL, 0);
  free(target);
  /* the one-block helper on both backends */
  const int c = 11;
  float *s = fnew((size_t)(n * c)), *poison = fnew((size_t)(n * c));
  fill_uniform(s, (size_t)(n * c), -5.0f, 5.0f);
  s[c + 3] = 1.0e4f;
  fill_nan(poison, (size_t)(n * c));
  pair ps = pair_new(s, (size_t)(n * c) * 4), pg = pair_new(poison, (size_t)(n * c) * 4),
       pw = pair_new(poison, (size_t)(3 * n) * 4);
  double la = -1.0, lb = -1.0;
  OK(dt_softmax_xent(g_cpu, ps.a, n, c, 1.0f / (float)n, pg.a, pw.a, &la));
  OK(dt_softmax_xent(g_gpu, ps.b, n, c, 1.0f / (float)n, pg.b, pw.b, &lb));
  check_pair("dt_softmax_xent dscores", pg, TOL_FP32);
  printf("  dt_softmax_xent loss sum: cpu %.17g gpu %.17g\n", la, lb);
  assert_true(fabs(la - lb) <= TOL_FP32 * fabs(la));
  pair_free(&ps);
  pair_free(&pg);
  pair_free(&pw);
  free(s);
  free(poison);
}

int main(void) {
  char why[512] = "";
  if (dt_backend_cuda_device_count(why, sizeof why) == 0) {
    printf("SKIP: no usable CUDA device (%s)\n", why);
    return 77;
  }
  const char *env = getenv("DTRAIN_TEST_SEED");
  g_seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("random inputs from DTRAIN_TEST_SEED=%llu\n", (unsigned long long)g_seed);
  if (dt_backend_cpu_create(0, &g_cpu) || dt_backend_cuda_create(0, 0, &g_gpu) ||
      dt_backend_cuda_create(0, 1, &g_tf32)) {
    printf("creating the backends failed: %s\n", dt_error_message());
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layer_norm), cmocka_unit_test(test_attention),    cmocka_unit_test(test_seq_embed),
      cmocka_unit_test(test_bce),        cmocka_unit_test(test_softmax_xent),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  g_tf32->destroy(g_tf32);
  g_gpu->destroy(g_gpu);
  g_cpu->destroy(g_cpu);
  return failed;
}
