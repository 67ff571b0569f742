/* Config layering, typed overrides, and every validation message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

static char g_dir[256];

static void write_text(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static const char *path_of(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  return path;
}

static int setup(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/dtrain_test_config_XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  char sub[300];
  snprintf(sub, sizeof sub, "%s/sub", g_dir);
  mkdir(sub, 0777);
  return 0;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Builds from `file` (NULL: none) with sets; expects failure with `code`
 * and every needle in the message. */
static void expect_error(const char *file, const char *const *sets, int n_sets, int code, const char *needle1,
                         const char *needle2) {
  dt_config cfg;
  int rc = dt_config_build(file ? path_of(file) : NULL, sets, n_sets, &cfg);
  const char *msg = dt_error_message();
  if (rc != code || (needle1 && !strstr(msg, needle1)) || (needle2 && !strstr(msg, needle2)))
    fail_msg("expected code %d with '%s' and '%s', got %d: %s", code, needle1 ? needle1 : "", needle2 ? needle2 : "",
             rc, msg);
}

static void test_defaults_match_schema(void **state) {
  dt_config cfg;
  assert_int_equal(dt_config_build(NULL, NULL, 0, &cfg), 0);
  assert_float_equal(cfg.train_lr, 1e-3, 0);
  assert_int_equal(cfg.train_batch_size, 2048);
  assert_string_equal(cfg.model_version, "v2");
  assert_true(isnan(cfg.optim_sparse_lr));
  assert_float_equal(dt_config_sparse_lr(&cfg), 1e-3, 0);
  assert_float_equal(dt_config_sparse_weight_decay(&cfg), 1e-4, 0);
  assert_string_equal(dt_config_history_mode(&cfg), "prefix");
  char *dir = dt_config_run_dir(&cfg);
  assert_string_equal(dir, "runs/dtrain");
  free(dir);
  dt_config_free(&cfg);
}

static void test_extends_layering(void **state) {
  write_text("sub/base.json", "{\"train\": {\"lr\": 0.5, \"epochs\": 7}, \"model\": {\"version\": \"v1\"}}");
  write_text("sub/mid.json", "{\"extends\": \"base.json\", \"train\": {\"lr\": 0.25}}");
  /* relative to the file's own directory, and a list of parents (later wins) */
  write_text("other.json", "{\"model\": {\"version\": \"v3\"}, \"run\": {\"name\": \"other\"}}");
  write_text("child.json",
             "{\"extends\": [\"sub/mid.json\", \"other.json\"], \"train\": {\"batch_size\": 64}, "
             "\"_comment\": \"documentation is allowed\"}");
  dt_config cfg;
  assert_int_equal(dt_config_build(path_of("child.json"), NULL, 0, &cfg), 0);
  assert_float_equal(cfg.train_lr, 0.25, 0);    /* mid overrides base */
  assert_int_equal(cfg.train_epochs, 7);        /* from base */
  assert_int_equal(cfg.train_batch_size, 64);   /* child */
  assert_string_equal(cfg.model_version, "v3"); /* second parent wins over first */
  assert_string_equal(cfg.run_name, "other");
  assert_string_equal(dt_config_history_mode(&cfg), "chunk");
  dt_config_free(&cfg);
}

static void test_set_overrides_are_typed(void **state) {
  write_text("plain.json", "{\"train\": {\"lr\": 0.5}}");
  const char *sets[] = {"train.lr=5e-4",    "train.epochs=3",       "backend.tf32=true",
                        "model.version=v3", "optim.sparse_lr=0.01", "run.name=x=y"};
  dt_config cfg;
  assert_int_equal(dt_config_build(path_of("plain.json"), sets, 6, &cfg), 0);
  assert_float_equal(cfg.train_lr, 5e-4, 0);
  assert_int_equal(cfg.train_epochs, 3);
  assert_true(cfg.backend_tf32);
  assert_string_equal(cfg.model_version, "v3");
  assert_float_equal(dt_config_sparse_lr(&cfg), 0.01, 0);
  assert_string_equal(cfg.run_name, "x=y"); /* only the first '=' splits */
  /* null resets to "inherit" */
  const char *more[] = {"optim.sparse_lr=null"};
  assert_int_equal(dt_config_apply_sets(&cfg, more, 1), 0);
  assert_float_equal(dt_config_sparse_lr(&cfg), 5e-4, 0);
  dt_config_free(&cfg);
}

static void test_print_round_trip(void **state) {
  const char *sets[] = {"train.lr=0.01", "model.variant=static_only"};
  dt_config a, b;
  assert_int_equal(dt_config_build(NULL, sets, 2, &a), 0);
  char *json = dt_config_to_json(&a);
  assert_non_null(strstr(json, "\"lr\":\t0.01"));
  assert_int_equal(dt_config_from_string(json, "round trip", &b), 0);
  char *json2 = dt_config_to_json(&b);
  assert_string_equal(json, json2);
  free(json);
  free(json2);
  dt_config_free(&a);
  dt_config_free(&b);
}

static void test_unknown_key_in_file_names_file_and_suggestion(void **state) {
  write_text("typo.json", "{\"train\": {\"lrr\": 0.1}}");
  expect_error("typo.json", NULL, 0, DT_EXIT_USAGE, "unknown config key 'train.lrr'", "did you mean 'train.lr'");
  expect_error("typo.json", NULL, 0, DT_EXIT_USAGE, "typo.json", NULL);
}

static void test_unknown_key_from_set(void **state) {
  const char *sets[] = {"train.lrr=1"};
  expect_error(NULL, sets, 1, DT_EXIT_USAGE, "unknown config key 'train.lrr' (from --set)", "did you mean 'train.lr'");
  const char *wrong_group[] = {"optim.lr=1"};
  expect_error(NULL, wrong_group, 1, DT_EXIT_USAGE, "'optim.lr'", "did you mean 'train.lr'");
  const char *nonsense[] = {"zzzzzzzz.qqqqqqq=1"};
  expect_error(NULL, nonsense, 1, DT_EXIT_USAGE, "unknown config key 'zzzzzzzz.qqqqqqq'", "--schema");
}

static void test_unknown_group(void **state) {
  write_text("group.json", "{\"trian\": {\"lr\": 0.1}}");
  expect_error("group.json", NULL, 0, DT_EXIT_USAGE, "unknown config key 'trian.lr'", "did you mean 'train.lr'");
}

static void test_wrong_type_names_key_and_allowed(void **state) {
  write_text("type.json", "{\"train\": {\"lr\": \"fast\"}}");
  expect_error("type.json", NULL, 0, DT_EXIT_USAGE, "'train.lr'", "must be a number in [1e-12, 10], got a string");
  write_text("bool.json", "{\"backend\": {\"tf32\": 1}}");
  expect_error("bool.json", NULL, 0, DT_EXIT_USAGE, "'backend.tf32'", "true or false");
  write_text("str.json", "{\"run\": {\"name\": 3}}");
  expect_error("str.json", NULL, 0, DT_EXIT_USAGE, "'run.name'", "must be a string");
  const char *sets[] = {"train.epochs=many"};
  expect_error(NULL, sets, 1, DT_EXIT_USAGE, "'train.epochs' = \"many\" (from --set)", "an integer in [1, 1000000]");
  const char *bools[] = {"backend.tf32=maybe"};
  expect_error(NULL, bools, 1, DT_EXIT_USAGE, "'backend.tf32'", "true or false");
}

static void test_out_of_range_names_range(void **state) {
  const char *sets[] = {"train.lr=-1"};
  expect_error(NULL, sets, 1, DT_EXIT_USAGE, "'train.lr' = -1", "out of range: it must be a number in [1e-12, 10]");
  write_text("range.json", "{\"train\": {\"batch_size\": 0}}");
  expect_error("range.json", NULL, 0, DT_EXIT_USAGE, "'train.batch_size' = 0 (in ", "[1, 16777216]");
  const char *frac[] = {"train.epochs=2.5"};
  expect_error(NULL, frac, 1, DT_EXIT_USAGE, "'train.epochs' = 2.5", "an integer");
}

static void test_enum_lists_choices(void **state) {
  const char *sets[] = {"model.version=v4"};
  expect_error(NULL, sets, 1, DT_EXIT_USAGE, "'model.version' = \"v4\"", "one of v1/v2/v3");
}

static void test_cross_key_check(void **state) {
  const char *sets[] = {"data.train_frac=0.9", "data.valid_frac=0.1"};
  expect_error(NULL, sets, 2, DT_EXIT_USAGE, "'data.train_frac'", "'data.valid_frac'");
  /* SASRec's heads split model.dim; the GRU ignores the key */
  const char *heads[] = {"model.encoder=sasrec", "model.sasrec_heads=5"};
  expect_error(NULL, heads, 2, DT_EXIT_USAGE, "'model.dim' (64)", "'model.sasrec_heads' (5)");
  const char *gru_heads[] = {"model.encoder=gru", "model.sasrec_heads=5"};
  dt_config cfg;
  assert_int_equal(dt_config_build(NULL, gru_heads, 2, &cfg), 0);
  dt_config_free(&cfg);
  const char *ok_heads[] = {"model.encoder=sasrec", "model.sasrec_heads=4", "model.variant=dynamic_only"};
  assert_int_equal(dt_config_build(NULL, ok_heads, 3, &cfg), 0);
  assert_string_equal(cfg.model_encoder, "sasrec");
  assert_int_equal(cfg.model_sasrec_blocks, 2);
  dt_config_free(&cfg);
}

static void test_group_and_leaf_shapes(void **state) {
  write_text("leafobj.json", "{\"train\": {\"lr\": {\"value\": 1}}}");
  expect_error("leafobj.json", NULL, 0, DT_EXIT_USAGE, "'train.lr'", "got an object");
  write_text("groupscalar.json", "{\"train\": 3}");
  expect_error("groupscalar.json", NULL, 0, DT_EXIT_USAGE, "'train'", "group of keys");
  const char *sets[] = {"train=3"};
  expect_error(NULL, sets, 1, DT_EXIT_USAGE, "'train' is a group of keys", NULL);
  const char *noeq[] = {"train.lr"};
  expect_error(NULL, noeq, 1, DT_EXIT_USAGE, "expected key=value", NULL);
}

static void test_file_errors(void **state) {
  expect_error("missing.json", NULL, 0, DT_EXIT_USAGE, "missing.json", "No such file");
  write_text("bad.json", "{\n  \"train\": {\n    \"lr\": 0.1,\n  }\n}\n");
  expect_error("bad.json", NULL, 0, DT_EXIT_USAGE, "bad.json: invalid JSON at line 4", NULL);
  write_text("array.json", "[1, 2]");
  expect_error("array.json", NULL, 0, DT_EXIT_USAGE, "top level must be a JSON object", NULL);
  write_text("cycle_a.json", "{\"extends\": \"cycle_b.json\"}");
  write_text("cycle_b.json", "{\"extends\": \"cycle_a.json\"}");
  expect_error("cycle_a.json", NULL, 0, DT_EXIT_USAGE, "nests more than", NULL);
  write_text("badext.json", "{\"extends\": 3}");
  expect_error("badext.json", NULL, 0, DT_EXIT_USAGE, "\"extends\" must be a file name", NULL);
  write_text("parent_typo.json", "{\"model\": {\"varaint\": \"full\"}}");
  write_text("kid.json", "{\"extends\": \"parent_typo.json\"}");
  expect_error("kid.json", NULL, 0, DT_EXIT_USAGE, "parent_typo.json", "did you mean 'model.variant'");
  expect_error("kid.json", NULL, 0, DT_EXIT_USAGE, "extended by", "kid.json");
}

/* A key given twice in one object: JSON parsers keep one or the other, so
 * one of the user's settings would be lost silently. Exit 2 naming the key
 * and both lines, in any file of the "extends" chain. */
static void test_duplicate_keys(void **state) {
  write_text("dup_top.json",
             "{\n  \"train\": {\"lr\": 0.1},\n  \"model\": {\"dim\": 8},\n  \"train\": {\"epochs\": 3}\n}\n");
  expect_error("dup_top.json", NULL, 0, DT_EXIT_USAGE, "dup_top.json: key 'train' appears twice", "lines 2 and 4");
  write_text("dup_leaf.json", "{\"train\": {\n  \"lr\": 0.1,\n  \"epochs\": 2,\n  \"lr\": 0.2\n}}");
  expect_error("dup_leaf.json", NULL, 0, DT_EXIT_USAGE, "key 'train.lr' appears twice", "lines 2 and 4");
  /* the same key after JSON escapes, on one line */
  write_text("dup_esc.json", "{\"run\": {\"seed\": 1, \"s\\u0065ed\": 2}}");
  expect_error("dup_esc.json", NULL, 0, DT_EXIT_USAGE, "key 'run.seed' appears twice", "lines 1 and 1");
  write_text("dup_ext.json", "{\"extends\": \"sub/base.json\",\n\"extends\": \"other.json\"}");
  expect_error("dup_ext.json", NULL, 0, DT_EXIT_USAGE, "key 'extends' appears twice", "lines 1 and 2");
  /* in a parent: named, with the child that extends it */
  write_text("dup_kid.json", "{\"extends\": \"dup_leaf.json\"}");
  expect_error("dup_kid.json", NULL, 0, DT_EXIT_USAGE, "dup_leaf.json: key 'train.lr' appears twice", "extended by");
  /* the same name in different objects, in strings and in arrays is fine */
  write_text("nodup.json",
             "{\"run\": {\"seed\": 1, \"name\": \"seed\"}, \"eval\": {\"seed\": 2}, "
             "\"_comment\": [{\"seed\": 1}, {\"seed\": 2}], \"data\": {\"synthetic\": {\"seed\": 3}}}");
  dt_config cfg;
  if (dt_config_build(path_of("nodup.json"), NULL, 0, &cfg) != 0) fail_msg("nodup.json: %s", dt_error_message());
  assert_int_equal(cfg.run_seed, 1);
  assert_int_equal(cfg.eval_seed, 2);
  assert_int_equal(cfg.data_synthetic_seed, 3);
  dt_config_free(&cfg);
}

static void test_write_and_reload(void **state) {
  const char *sets[] = {"train.lr=0.125"};
  dt_config a, b;
  assert_int_equal(dt_config_build(NULL, sets, 1, &a), 0);
  assert_int_equal(dt_config_write(&a, path_of("written.json")), 0);
  assert_int_equal(dt_config_build(path_of("written.json"), NULL, 0, &b), 0);
  assert_float_equal(b.train_lr, 0.125, 0);
  dt_config_free(&a);
  dt_config_free(&b);
}

static void test_every_shipped_config_is_valid(void **state) {
  const char *files[] = {"base.json",
                         "hybrid_v1.json",
                         "hybrid_v2.json",
                         "hybrid_v3.json",
                         "quickstart.json",
                         "ablation/v1_no_dynamic.json",
                         "ablation/v2_static_only.json",
                         "ablation/v3_no_attention.json",
                         "sasrec.json",
                         "gru4rec.json",
                         "hybrid_v3_sasrec.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/configs/%s", DTRAIN_SOURCE_ROOT, files[i]);
    dt_config cfg;
    int rc = dt_config_build(path, NULL, 0, &cfg);
    if (rc != 0) fail_msg("%s: %s", path, dt_error_message());
    dt_config_free(&cfg);
  }
  /* v3's recipe (MODEL.md) */
  char path[512];
  snprintf(path, sizeof path, "%s/configs/hybrid_v3.json", DTRAIN_SOURCE_ROOT);
  dt_config cfg;
  assert_int_equal(dt_config_build(path, NULL, 0, &cfg), 0);
  assert_float_equal(dt_config_sparse_lr(&cfg), 1e-2, 0);
  assert_float_equal(dt_config_sparse_weight_decay(&cfg), 0, 0);
  assert_string_equal(dt_config_history_mode(&cfg), "chunk");
  assert_int_equal(cfg.train_epochs, 20);
  dt_config_free(&cfg);
  /* SASRec's recipe (issue 13): one learning rate for everything, no decay */
  snprintf(path, sizeof path, "%s/configs/sasrec.json", DTRAIN_SOURCE_ROOT);
  assert_int_equal(dt_config_build(path, NULL, 0, &cfg), 0);
  assert_string_equal(cfg.model_encoder, "sasrec");
  assert_string_equal(cfg.model_variant, "dynamic_only");
  assert_string_equal(cfg.model_version, "v3");
  assert_int_equal(cfg.model_dim, 64);
  assert_float_equal(dt_config_sparse_lr(&cfg), cfg.train_lr, 0);
  assert_float_equal(cfg.train_lr, 1e-3, 0);
  assert_float_equal(dt_config_sparse_weight_decay(&cfg), 0, 0);
  assert_float_equal(cfg.optim_weight_decay, 0, 0);
  assert_string_equal(dt_config_history_mode(&cfg), "chunk");
  assert_string_equal(cfg.train_loss, "bce");
  assert_int_equal(cfg.train_n_neg, 1);
  dt_config_free(&cfg);
  /* the hybrid with SASRec: v3's recipe, the loss chosen on validation */
  snprintf(path, sizeof path, "%s/configs/hybrid_v3_sasrec.json", DTRAIN_SOURCE_ROOT);
  assert_int_equal(dt_config_build(path, NULL, 0, &cfg), 0);
  assert_string_equal(cfg.model_encoder, "sasrec");
  assert_string_equal(cfg.model_variant, "full");
  assert_string_equal(cfg.train_loss, "sampled_softmax");
  assert_int_equal(cfg.train_n_neg, 1024);
  assert_float_equal(dt_config_sparse_lr(&cfg), 3e-3, 0);
  dt_config_free(&cfg);
  snprintf(path, sizeof path, "%s/configs/hybrid_v1.json", DTRAIN_SOURCE_ROOT);
  assert_int_equal(dt_config_build(path, NULL, 0, &cfg), 0);
  assert_float_equal(cfg.model_lambda_ent, 0, 0);
  assert_float_equal(cfg.model_lambda_bal, 0, 0);
  dt_config_free(&cfg);
}

static void test_edit_distance(void **state) {
  assert_int_equal(dt_edit_distance("train.lr", "train.lr"), 0);
  assert_int_equal(dt_edit_distance("train.lrr", "train.lr"), 1);
  assert_int_equal(dt_edit_distance("kitten", "sitting"), 3);
  assert_int_equal(dt_edit_distance("", "abc"), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_match_schema),
      cmocka_unit_test(test_extends_layering),
      cmocka_unit_test(test_set_overrides_are_typed),
      cmocka_unit_test(test_print_round_trip),
      cmocka_unit_test(test_unknown_key_in_file_names_file_and_suggestion),
      cmocka_unit_test(test_unknown_key_from_set),
      cmocka_unit_test(test_unknown_group),
      cmocka_unit_test(test_wrong_type_names_key_and_allowed),
      cmocka_unit_test(test_out_of_range_names_range),
      cmocka_unit_test(test_enum_lists_choices),
      cmocka_unit_test(test_cross_key_check),
      cmocka_unit_test(test_group_and_leaf_shapes),
      cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_write_and_reload),
      cmocka_unit_test(test_every_shipped_config_is_valid),
      cmocka_unit_test(test_edit_distance),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
