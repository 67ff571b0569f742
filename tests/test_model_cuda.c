/* Whole-model parity of the CUDA backend with the CPU backend (label gpu):
 * forward scores, alpha and every gradient (dense and sparse) for every
 * version x variant with either sequence encoder (GRU; SASRec with 1 and 2
 * heads), the training losses' gradients (bce, and the softmax losses'
 * scoring of the item list: v3's GEMMs, v1/v2's head per pair), and 100
 * training steps whose loss curve matches the CPU's (GRU and SASRec).
 * Skipped (77) with a message where no CUDA device is usable;
 * compiled always.
 *
 * Tolerances: fp32 forward/gradients 1e-4 relative to each group's largest
 * value (cuBLAS and OpenBLAS sum in different orders, and the GRU compounds
 * it); the 100-step loss curve 5e-3 relative (the TF32 tolerance of the
 * issue; TF32 stays off here, so the curve is expected much closer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/backend.h"
#include "dtrain/batch.h"
#include "dtrain/comm.h"
#include "dtrain/loss.h"
#include "dtrain/model.h"
#include "dtrain/prep.h"
#include "dtrain/shard.h"
#include "dtrain/trainer.h"
#include "test_model_util.h"

static const char *variants[] = {"full", "no_dynamic", "no_content", "no_attention", "static_only"};
static dt_comm *g_comm; /* one per process: MPI starts once */

typedef struct {
  dt_config cfg;
  dt_backend *be;
  dt_model *m;
  dt_batch_builder *bb;
} side;

static void open_side(side *s, dt_dataset *ds, const char *version, const char *variant, const char *history,
                      const char *encoder, int heads, int cuda, const char *loss) {
  assert_int_equal(small_config_enc(&s->cfg, version, variant, history, 4, encoder, heads), 0);
  if (loss) {
    char lset[64];
    snprintf(lset, sizeof lset, "train.loss=%s", loss);
    const char *sets[] = {lset, "train.n_neg=3", "train.softmax_chunk=6"}; /* the catalogue in several blocks */
    assert_int_equal(dt_config_apply_sets(&s->cfg, sets, 3), 0);
  }
  if (cuda)
    assert_int_equal(dt_backend_cuda_create(0, 0, &s->be), 0);
  else
    assert_int_equal(dt_backend_cpu_create(1, &s->be), 0);
  assert_int_equal(dt_model_create(&s->cfg, s->be, ds->n_users, ds->n_items, ds->vocab_size, ds->tfidf_indptr,
                                   ds->tfidf_indices, ds->tfidf_values, &s->m),
                   0);
  assert_int_equal(dt_model_init(s->m, 77), 0);
  assert_int_equal(dt_batch_builder_create(s->m, ds, s->be, &s->bb), 0);
}

static void close_side(side *s) {
  dt_batch_builder_free(s->bb);
  dt_model_free(s->m);
  s->be->destroy(s->be);
  dt_config_free(&s->cfg);
}

static float *download(dt_backend *be, const void *p, size_t n) {
  float *h = malloc(n * sizeof(float) + 1);
  assert_int_equal(be->download(be, h, p, n * sizeof(float)), 0);
  return h;
}

/* max |a - b| <= tol * max(max |a|, floor) */
static void expect_close_floor(const char *what, const float *a, const float *b, int64_t n, double tol, double floor) {
  double scale = floor, worst = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
  if (worst > tol) fail_msg("%s: CUDA differs from CPU by %.3g of the largest value (> %g)", what, worst, tol);
}

static void expect_close(const char *what, const float *a, const float *b, int64_t n, double tol) {
  expect_close_floor(what, a, b, n, tol, 1e-6);
}

/* Sums sparse rows into a dense [rows, dim] host table, for comparison. */
static float *densify(dt_backend *be, const dt_table *tb) {
  float *dense = calloc((size_t)(tb->rows * tb->dim) + 1, sizeof(float));
  int32_t *ids = malloc((size_t)tb->grad_n * sizeof(int32_t) + 1);
  float *rows = download(be, tb->grad_rows, (size_t)(tb->grad_n * tb->dim));
  assert_int_equal(be->download(be, ids, tb->grad_ids, (size_t)tb->grad_n * sizeof(int32_t)), 0);
  for (int64_t k = 0; k < tb->grad_n; k++)
    for (int c = 0; c < tb->dim; c++) dense[(int64_t)ids[k] * tb->dim + c] += rows[k * tb->dim + c];
  free(ids);
  free(rows);
  return dense;
}

static void parity_enc(dt_dataset *ds, const char *version, const char *variant, const char *history,
                       const char *encoder, int heads) {
  side cpu, gpu;
  open_side(&cpu, ds, version, variant, history, encoder, heads, 0, NULL);
  open_side(&gpu, ds, version, variant, history, encoder, heads, 1, NULL);
  dt_unit units[16];
  int n_units = 0;
  for (int u = 0; u < 4; u++) units[n_units++] = (dt_unit){u, 0, ds->user_n_train[u] < 4 ? ds->user_n_train[u] : 4};
  /* a second chunk: its window holds the first one too (7 items) */
  if (!strcmp(encoder, "sasrec")) units[n_units++] = (dt_unit){4, 4, 4};
  side *sides[2] = {&cpu, &gpu};
  const float *scores[2], *alpha[2];
  for (int k = 0; k < 2; k++) {
    assert_int_equal(dt_batch_build_train(sides[k]->bb, units, n_units, 1, 5, 42, 2, 10), 0);
    assert_int_equal(dt_model_forward(sides[k]->m, dt_batch_get(sides[k]->bb), &scores[k], &alpha[k]), 0);
  }
  const dt_batch *b = dt_batch_get(cpu.bb);
  char what[128];
  float *s0 = download(cpu.be, scores[0], (size_t)b->nc), *s1 = download(gpu.be, scores[1], (size_t)b->nc);
  snprintf(what, sizeof what, "%s %s %s %s/%d scores", version, variant, history, encoder, heads);
  expect_close(what, s0, s1, b->nc, 1e-4);
  /* backward with the same upstream gradients */
  float *up = malloc((size_t)(b->nc + 3 * b->n) * sizeof(float));
  for (int64_t i = 0; i < b->nc + 3 * b->n; i++) up[i] = (float)sin(0.37 * (double)i);
  for (int k = 0; k < 2; k++) {
    dt_backend *be = sides[k]->be;
    float *d_up;
    assert_int_equal(dt_backend_alloc(be, (size_t)(b->nc + 3 * b->n) * sizeof(float), (void **)&d_up), 0);
    assert_int_equal(be->upload(be, d_up, up, (size_t)(b->nc + 3 * b->n) * sizeof(float)), 0);
    assert_int_equal(dt_model_zero_grad(sides[k]->m), 0);
    assert_int_equal(dt_model_backward(sides[k]->m, dt_batch_get(sides[k]->bb), d_up, d_up + b->nc), 0);
    assert_int_equal(be->sync(be), 0);
    be->free(be, d_up);
  }
  for (int i = 0; i < cpu.m->n_params; i++) {
    const dt_param *p = &cpu.m->params[i];
    float *g0 = download(cpu.be, cpu.m->g + p->offset, (size_t)p->numel);
    float *g1 = download(gpu.be, gpu.m->g + p->offset, (size_t)p->numel);
    snprintf(what, sizeof what, "%s %s %s %s/%d gradient of %s", version, variant, history, encoder, heads, p->name);
    expect_close(what, g0, g1, p->numel, 1e-4);
    free(g0);
    free(g1);
  }
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    if (!cpu.m->tables[t].present) continue;
    float *a = densify(cpu.be, &cpu.m->tables[t]), *c = densify(gpu.be, &gpu.m->tables[t]);
    snprintf(what, sizeof what, "%s %s %s %s/%d gradient of %s", version, variant, history, encoder, heads,
             cpu.m->tables[t].name);
    expect_close(what, a, c, cpu.m->tables[t].rows * cpu.m->tables[t].dim, 1e-4);
    free(a);
    free(c);
  }
  free(up);
  free(s0);
  free(s1);
  close_side(&cpu);
  close_side(&gpu);
}

static void parity_case(dt_dataset *ds, const char *version, const char *variant, const char *history) {
  parity_enc(ds, version, variant, history, "gru", 1);
}

static int group_setup(void **state) { return dt_comm_init(NULL, NULL, &g_comm); }
static int group_teardown(void **state) { return dt_comm_finalize(g_comm); }

static int need_gpu(void) {
  char why[256] = "";
  if (dt_backend_cuda_device_count(why, sizeof why) > 0) return 1;
  printf("SKIP: no usable CUDA device (%s): the CUDA parity tests need a GPU\n", why);
  return 0;
}

static void test_gradient_parity_every_variant(void **state) {
  dt_dataset ds;
  tiny_dataset(&ds, 7, 23, 14, 9, 4, 5);
  for (int i = 0; i < 5; i++) {
    parity_case(&ds, "v1", variants[i], "prefix");
    parity_case(&ds, "v2", variants[i], "prefix");
    parity_case(&ds, "v3", variants[i], "chunk");
  }
  parity_case(&ds, "v2", "full", "user_train");
  parity_case(&ds, "v3", "dynamic_only", "chunk");
  tiny_dataset_free(&ds);
}

static void test_gradient_parity_sasrec(void **state) {
  dt_dataset ds;
  tiny_dataset(&ds, 7, 23, 14, 9, 4, 5);
  const char *vs[] = {"full", "dynamic_only"};
  for (int i = 0; i < 2; i++) {
    parity_enc(&ds, "v1", vs[i], "prefix", "sasrec", 1);
    parity_enc(&ds, "v2", vs[i], "prefix", "sasrec", 2);
    parity_enc(&ds, "v3", vs[i], "chunk", "sasrec", 1);
    parity_enc(&ds, "v3", vs[i], "chunk", "sasrec", 2);
  }
  parity_enc(&ds, "v3", "full", "prefix", "sasrec", 2);
  parity_enc(&ds, "v2", "no_content", "user_train", "sasrec", 1);
  tiny_dataset_free(&ds);
}

/* One training step's loss and gradients under train.loss on both backends
 * (dropout on: the same Philox masks, the item list's pair keys too). */
static void loss_parity_case(dt_dataset *ds, const char *version, const char *history, const char *encoder,
                             const char *loss) {
  side sides[2];
  dt_loss losses[2];
  double value[2];
  for (int k = 0; k < 2; k++) {
    side *sd = &sides[k];
    open_side(sd, ds, version, "full", history, encoder, 1, k, loss);
    memset(&losses[k], 0, sizeof losses[k]);
    assert_int_equal(dt_loss_setup(&losses[k], &sd->cfg, sd->m, 0), 0);
    dt_unit units[16];
    int n_units = 0;
    for (int u = 0; u < 4; u++) units[n_units++] = (dt_unit){u, 0, ds->user_n_train[u] < 4 ? ds->user_n_train[u] : 4};
    assert_int_equal(dt_batch_build_train(sd->bb, units, n_units, 1, 5, 42, losses[k].n_neg, 10), 0);
    if (losses[k].list_items) assert_int_equal(dt_batch_build_list(sd->bb, losses[k].list_items, 42, 5), 0);
    const dt_batch *b = dt_batch_get(sd->bb);
    const float *scores, *alpha;
    dt_loss_value v;
    assert_int_equal(dt_model_forward(sd->m, b, &scores, &alpha), 0);
    assert_int_equal(dt_loss_batch_stats(&losses[k], g_comm, sd->be, b, alpha, &v), 0);
    assert_int_equal(dt_model_zero_grad(sd->m), 0);
    assert_int_equal(dt_loss_grad(&losses[k], sd->be, &sd->cfg, sd->m, b, scores, alpha, &v), 0);
    assert_int_equal(dt_model_backward(sd->m, b, losses[k].d_dscores, sd->m->use_gate ? losses[k].d_dalpha : NULL), 0);
    assert_int_equal(dt_loss_reduce(g_comm, &sd->cfg, &v), 0);
    assert_int_equal(sd->be->sync(sd->be), 0);
    value[k] = v.loss;
  }
  char what[160];
  if (fabs(value[0] - value[1]) > 1e-5 * fabs(value[0]))
    fail_msg("%s %s %s %s: loss %.8g on the CPU, %.8g on CUDA", version, history, encoder, loss, value[0], value[1]);
  const dt_model *cm = sides[0].m, *gm = sides[1].m;
  /* a gradient that is ~0 by cancellation (content.fc3.bias: a softmax is
   * shift-invariant) has only rounding left: each group's scale is floored
   * at 1% of the largest dense gradient */
  float *all = download(sides[0].be, cm->g, (size_t)cm->n_dense);
  double floor = 1e-6;
  for (int64_t e = 0; e < cm->n_dense; e++) floor = fmax(floor, 1e-2 * fabs(all[e]));
  free(all);
  for (int i = 0; i < cm->n_params; i++) {
    const dt_param *p = &cm->params[i];
    float *g0 = download(sides[0].be, cm->g + p->offset, (size_t)p->numel);
    float *g1 = download(sides[1].be, gm->g + p->offset, (size_t)p->numel);
    snprintf(what, sizeof what, "%s %s %s train.loss=%s: gradient of %s", version, history, encoder, loss, p->name);
    expect_close_floor(what, g0, g1, p->numel, 1e-4, floor);
    free(g0);
    free(g1);
  }
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    if (!cm->tables[t].present) continue;
    float *a = densify(sides[0].be, &cm->tables[t]), *c = densify(sides[1].be, &gm->tables[t]);
    snprintf(what, sizeof what, "%s %s %s train.loss=%s: gradient of %s", version, history, encoder, loss,
             cm->tables[t].name);
    expect_close(what, a, c, cm->tables[t].rows * cm->tables[t].dim, 1e-4);
    free(a);
    free(c);
  }
  for (int k = 0; k < 2; k++) {
    dt_loss_free(&losses[k], sides[k].be);
    close_side(&sides[k]);
  }
}

static void test_loss_parity_every_loss(void **state) {
  dt_dataset ds;
  tiny_dataset(&ds, 7, 23, 14, 9, 4, 5);
  const char *losses[] = {"bce", "sampled_softmax", "softmax"};
  for (int l = 0; l < 3; l++) {
    loss_parity_case(&ds, "v3", "chunk", "gru", losses[l]);
    loss_parity_case(&ds, "v3", "chunk", "sasrec", losses[l]);
    loss_parity_case(&ds, "v2", "prefix", "gru", losses[l]);
    loss_parity_case(&ds, "v1", "prefix", "gru", losses[l]);
  }
  tiny_dataset_free(&ds);
}

/* 100 steps of the real training step on each backend (`extra`: one more
 * --set, or NULL). */
static void loss_curve_100_steps(const char *extra) {
  char dir[] = "/tmp/dtrain_cuda_curve_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char data[256], cfg_path[512];
  snprintf(data, sizeof data, "data.output=%s/data.h5", dir);
  /* the repository can live elsewhere at run time (a build carried to a GPU
   * machine by tools/make_gpu_carry.sh): DTRAIN_SOURCE_ROOT overrides */
  const char *root = getenv("DTRAIN_SOURCE_ROOT") ? getenv("DTRAIN_SOURCE_ROOT") : DTRAIN_SOURCE_ROOT;
  snprintf(cfg_path, sizeof cfg_path, "%s/tests/configs/tiny_v3.json", root);
  dt_comm *comm = g_comm;
  double curve[2][100];
  for (int k = 0; k < 2; k++) {
    const char *sets[] = {data, k ? "backend.name=cuda" : "backend.name=cpu", "backend.tf32=false", extra};
    dt_config cfg;
    assert_int_equal(dt_config_build(cfg_path, sets, extra ? 4 : 3, &cfg), 0);
    if (k == 0) assert_int_equal(dt_prep_run(&cfg, NULL), 0);
    dt_session s;
    assert_int_equal(dt_session_open(&s, &cfg, comm, 0), 0);
    assert_int_equal(dt_model_init(s.model, (uint64_t)s.cfg.run_seed), 0);
    dt_shard shard;
    assert_int_equal(dt_shard_load(s.cfg.data_output, 0, 1, 1, s.cfg.train_batch_size, s.ds.history_len, &shard), 0);
    int64_t step = 0;
    for (int64_t epoch = 0; step < 100; epoch++) {
      dt_epoch_plan plan;
      assert_int_equal(dt_shard_plan_epoch(&shard, (uint64_t)s.cfg.run_seed, epoch, &plan), 0);
      for (int64_t j = 0; j < plan.n_steps && step < 100; j++, step++) {
        dt_unit units[4096];
        int64_t n = 0;
        for (int64_t q = plan.step_ptr[j]; q < plan.step_ptr[j + 1]; q++, n++) {
          int64_t u = plan.order[q];
          units[n] = (dt_unit){shard.unit_user[u], shard.unit_start[u], shard.unit_count[u]};
        }
        dt_step_stats st;
        assert_int_equal(dt_train_step(&s, units, n, epoch, step, 1e-3, 1e-2, &st), 0);
        curve[k][step] = st.loss;
      }
      dt_epoch_plan_free(&plan);
    }
    dt_shard_free(&shard);
    dt_session_close(&s);
  }
  for (int i = 0; i < 100; i++)
    if (fabs(curve[0][i] - curve[1][i]) > 5e-3 * fabs(curve[0][i]))
      fail_msg("step %d: CPU loss %.7f, CUDA loss %.7f (more than 5e-3 apart)", i, curve[0][i], curve[1][i]);
  printf("100 steps%s%s: CPU loss %.6f -> %.6f, CUDA %.6f -> %.6f\n", extra ? " with " : "", extra ? extra : "",
         curve[0][0], curve[0][99], curve[1][0], curve[1][99]);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_loss_curve_100_steps(void **state) { loss_curve_100_steps(NULL); }
static void test_loss_curve_100_steps_sasrec(void **state) { loss_curve_100_steps("model.encoder=sasrec"); }

int main(void) {
  if (!need_gpu()) return 77;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradient_parity_every_variant), cmocka_unit_test(test_gradient_parity_sasrec),
      cmocka_unit_test(test_loss_parity_every_loss),        cmocka_unit_test(test_loss_curve_100_steps),
      cmocka_unit_test(test_loss_curve_100_steps_sasrec),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
