/* prep.c: the preparation pipeline from a configuration, the recorded
 * config, and the summary (prep.h). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/synth.h"
#include "dtrain/timer.h"

/* ---- the recorded configuration ------------------------------------------------------- */

/* Whether data.* key `key` shapes the prepared data for this input format. */
static int key_applies(const char *key, const char *format) {
  if (strncmp(key, "data.", 5) != 0 || !strcmp(key, "data.output")) return 0;
  if (!strncmp(key, "data.synthetic.", 15)) return !strcmp(format, "synthetic");
  if (!strcmp(key, "data.reviews")) return strcmp(format, "synthetic") != 0;
  if (!strcmp(key, "data.meta")) return !strcmp(format, "amazon");
  if (!strcmp(key, "data.items")) return !strcmp(format, "delimited");
  if (!strcmp(key, "data.columns") || !strcmp(key, "data.delimiter") || !strcmp(key, "data.header"))
    return !strcmp(format, "delimited");
  return 1;
}

static const cJSON *tree_get(const cJSON *tree, const char *key) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", key);
  const cJSON *node = tree;
  char *save = NULL;
  for (char *part = strtok_r(buf, ".", &save); part && node; part = strtok_r(NULL, ".", &save))
    node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, part) : NULL;
  return node;
}

char *dt_prep_config_json(const dt_config *cfg) {
  cJSON *o = cJSON_CreateObject();
  if (!o) dt_panic("cJSON allocation failed");
  int n;
  const dt_config_key *keys = dt_config_schema(&n);
  for (int k = 0; k < n; k++) {
    if (!key_applies(keys[k].key, cfg->data_format)) continue;
    const cJSON *v = cfg->tree ? tree_get(cfg->tree, keys[k].key) : NULL;
    cJSON *copy = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
    if (!copy) dt_panic("cJSON allocation failed");
    cJSON_AddItemToObject(o, keys[k].key, copy);
  }
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) dt_panic("cJSON allocation failed");
  return s;
}

int dt_prep_sources(const dt_config *cfg, const char **roles, const char **paths) {
  int n = 0;
  if (!strcmp(cfg->data_format, "synthetic")) return 0;
  roles[n] = "reviews";
  paths[n++] = cfg->data_reviews;
  if (!strcmp(cfg->data_format, "amazon") && cfg->data_meta[0]) {
    roles[n] = "meta";
    paths[n++] = cfg->data_meta;
  }
  if (!strcmp(cfg->data_format, "delimited") && cfg->data_items[0]) {
    roles[n] = "items";
    paths[n++] = cfg->data_items;
  }
  return n;
}

static void add_source(cJSON *arr, const char *role, const char *path, const dt_source_sum *sum) {
  cJSON *o = cJSON_CreateObject();
  char crc[16];
  snprintf(crc, sizeof crc, "%08" PRIx32, sum->crc32);
  if (!o || !cJSON_AddStringToObject(o, "role", role) || !cJSON_AddStringToObject(o, "path", path) ||
      !cJSON_AddNumberToObject(o, "size", (double)sum->size) || !cJSON_AddStringToObject(o, "crc32", crc))
    dt_panic("cJSON allocation failed");
  cJSON_AddItemToArray(arr, o);
}

/* ---- the summary ---------------------------------------------------------------------------- */

/* clang-format 14 reflows this list differently on every pass: kept by hand */
// clang-format off
#define SUMMARY_FIELDS(X)                                                                          \
  X(read) X(after_dedup) X(n_users) X(n_items) X(n_interactions) X(train) X(valid) X(test)          \
  X(dropped_valid) X(dropped_test) X(eval_users_valid) X(eval_users_test) X(vocab_size)            \
  X(tfidf_nnz) X(skipped) X(after_rating) X(kcore_passes) X(n_chunks)
// clang-format on

char *dt_prep_summary_json(const dt_prep_summary *s) {
  cJSON *o = cJSON_CreateObject();
  if (!o) dt_panic("cJSON allocation failed");
#define ADD(f) \
  if (!cJSON_AddNumberToObject(o, #f, (double)s->f)) dt_panic("cJSON allocation failed");
  SUMMARY_FIELDS(ADD)
#undef ADD
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) dt_panic("cJSON allocation failed");
  return text;
}

int dt_prep_summary_from_json(const char *json, dt_prep_summary *s) {
  memset(s, 0, sizeof *s);
  cJSON *o = cJSON_Parse(json);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return dt_fail(DT_EXIT_DATA, "the prep summary is not a JSON object");
  }
  const cJSON *v;
#define GET(f)                                 \
  v = cJSON_GetObjectItemCaseSensitive(o, #f); \
  if (cJSON_IsNumber(v)) s->f = (int64_t)v->valuedouble;
  SUMMARY_FIELDS(GET)
#undef GET
  cJSON_Delete(o);
  return DT_OK;
}

void dt_format_count(int64_t v, char *out, size_t n) {
  char digits[32];
  snprintf(digits, sizeof digits, "%" PRId64, v < 0 ? -v : v);
  size_t len = strlen(digits), o = 0;
  char buf[48];
  if (v < 0) buf[o++] = '-';
  for (size_t i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  snprintf(out, n, "%s", buf);
}

void dt_prep_summary_print(FILE *f, const dt_prep_summary *s, int64_t kcore, const char *split) {
  char a[32], b[32], c[32], d[32], e[32], g[32];
  dt_format_count(s->read, a, sizeof a);
  dt_format_count(s->after_dedup, b, sizeof b);
  if (s->after_rating != s->read) {
    dt_format_count(s->after_rating, c, sizeof c);
    fprintf(f, "rows: %s read, %s after the rating filter, %s after dedup", a, c, b);
  } else {
    fprintf(f, "rows: %s read, %s after dedup", a, b);
  }
  if (s->skipped) {
    dt_format_count(s->skipped, c, sizeof c);
    fprintf(f, " (%s malformed line(s) skipped)", c);
  }
  fprintf(f, "\n");
  dt_format_count(s->n_users, a, sizeof a);
  dt_format_count(s->n_items, b, sizeof b);
  dt_format_count(s->n_interactions, c, sizeof c);
  fprintf(f, "%" PRId64 "-core (%" PRId64 " pass%s): %s users, %s items, %s interactions\n", kcore, s->kcore_passes,
          s->kcore_passes == 1 ? "" : "es", a, b, c);
  dt_format_count(s->train, a, sizeof a);
  dt_format_count(s->valid, b, sizeof b);
  dt_format_count(s->test, c, sizeof c);
  dt_format_count(s->dropped_valid, d, sizeof d);
  dt_format_count(s->dropped_test, e, sizeof e);
  fprintf(f, "split (%s): train %s, valid %s, test %s (%s and %s dropped)\n", split, a, b, c, d, e);
  dt_format_count(s->eval_users_valid, a, sizeof a);
  dt_format_count(s->eval_users_test, b, sizeof b);
  dt_format_count(s->n_chunks, g, sizeof g);
  fprintf(f, "evaluation users: %s valid, %s test; %s train chunks\n", a, b, g);
  dt_format_count(s->vocab_size, a, sizeof a);
  dt_format_count(s->tfidf_nnz, b, sizeof b);
  fprintf(f, "item text: vocabulary %s terms, TF-IDF nnz %s\n", a, b);
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

static int read_input(const dt_config *cfg, const dt_read_opts *opts, dt_interactions *x, char ***synth_text,
                      cJSON *sources) {
  const char *fmt = cfg->data_format;
  dt_source_sum sum;
  if (!strcmp(fmt, "synthetic")) {
    dt_synth_params p;
    dt_synth_params_from_config(cfg, &p);
    return dt_synth_generate(&p, opts->min_rating, x, synth_text);
  }
  if (!cfg->data_reviews[0])
    return dt_fail(DT_EXIT_USAGE, "data.reviews must name the input file when data.format = \"%s\"", fmt);
  dt_input in = {cfg->data_reviews, cfg->data_reviews, NULL, 0};
  if (!strcmp(fmt, "amazon")) {
    DT_TRY(dt_read_amazon_reviews(&in, opts, x, &sum));
  } else {
    dt_delimited_format df;
    DT_TRY(dt_delimited_format_parse(cfg->data_columns, cfg->data_delimiter, cfg->data_header, &df));
    DT_TRY(dt_read_delimited(&in, &df, opts, x, &sum));
  }
  add_source(sources, "reviews", cfg->data_reviews, &sum);
  return DT_OK;
}

/* The text of every (new) item index. */
static int item_text(const dt_config *cfg, const dt_read_opts *opts, const dt_interactions *x, dt_dataset *ds,
                     const int32_t *item_raw, char **synth_text, int64_t n_synth, char ***out, cJSON *sources) {
  int64_t n = ds->n_items;
  if (synth_text) {
    char **t = dt_xmalloc((size_t)(n ? n : 1) * sizeof(char *));
    for (int64_t i = 0; i < n; i++) {
      t[i] = synth_text[item_raw[i]];
      synth_text[item_raw[i]] = NULL;
    }
    for (int64_t i = 0; i < n_synth; i++) free(synth_text[i]);
    *out = t;
    return DT_OK;
  }
  if (!strcmp(cfg->data_format, "amazon") && cfg->data_meta[0]) {
    dt_strtab items = {0};
    for (int64_t i = 0; i < n; i++) dt_strtab_intern(&items, ds->item_ids[i], strlen(ds->item_ids[i]));
    dt_input in = {cfg->data_meta, cfg->data_meta, NULL, 0};
    dt_source_sum sum;
    int64_t found = 0;
    int rc = dt_read_amazon_meta(&in, opts, &items, out, &found, &sum);
    dt_strtab_free(&items);
    DT_TRY(rc);
    add_source(sources, "meta", cfg->data_meta, &sum);
    if (found < n)
      dt_log_warn("%s: no metadata for %lld of %lld items (their TF-IDF rows are empty)", cfg->data_meta,
                  (long long)(n - found), (long long)n);
    return DT_OK;
  }
  if (!strcmp(cfg->data_format, "delimited") && cfg->data_items[0]) {
    dt_strtab items = {0};
    for (int64_t i = 0; i < n; i++) dt_strtab_intern(&items, ds->item_ids[i], strlen(ds->item_ids[i]));
    dt_input in = {cfg->data_items, cfg->data_items, NULL, 0};
    dt_source_sum sum;
    int64_t found = 0;
    char delim;
    int rc = dt_delimiter_parse(cfg->data_delimiter, &delim);
    if (rc == DT_OK) rc = dt_read_item_file(&in, delim, opts, &items, out, &found, &sum);
    dt_strtab_free(&items);
    DT_TRY(rc);
    add_source(sources, "items", cfg->data_items, &sum);
    if (found < n)
      dt_log_warn("%s: no row for %lld of %lld items (their TF-IDF rows are empty)", cfg->data_items,
                  (long long)(n - found), (long long)n);
    return DT_OK;
  }
  if (x->has_text) {
    *out = dt_prep_summary_text(x, n);
    return DT_OK;
  }
  /* delimited text without data.items carries no item text: all TF-IDF rows are empty */
  char **t = dt_xmalloc((size_t)(n ? n : 1) * sizeof(char *));
  for (int64_t i = 0; i < n; i++) t[i] = dt_xstrdup("");
  *out = t;
  return DT_OK;
}

int dt_prep_build(const dt_config *cfg, dt_dataset *ds, char **sources_json) {
  memset(ds, 0, sizeof *ds);
  double t0 = dt_now_s();
  dt_read_opts opts = {0};
  opts.min_rating = cfg->data_min_rating;
  opts.skip_bad = !strcmp(cfg->data_on_error, "skip");
  opts.keep_text = !strcmp(cfg->data_format, "amazon") && !cfg->data_meta[0];
  opts.progress = 1;
  dt_interactions x = {0};
  char **synth_text = NULL, **text = NULL;
  int32_t *item_raw = NULL;
  int64_t n_synth = 0;
  cJSON *sources = cJSON_CreateArray();
  if (!sources) dt_panic("cJSON allocation failed");
  dt_prep_summary *s = &ds->summary;
  int rc = read_input(cfg, &opts, &x, &synth_text, sources);
  if (rc != DT_OK) goto fail;
  n_synth = x.items.n;
  s->read = x.read;
  s->skipped = x.skipped;
  s->after_rating = x.n;
  dt_log_debug("prep: read %lld rows in %.2f s", (long long)x.read, dt_now_s() - t0);
  dt_prep_dedup(&x);
  s->after_dedup = x.n;
  dt_prep_kcore(&x, cfg->data_kcore, &s->kcore_passes);
  if (x.n == 0) {
    rc = dt_fail(DT_EXIT_DATA,
                 "no interactions are left after the %lld-core filter (%lld before it): lower "
                 "data.kcore or use more data",
                 (long long)cfg->data_kcore, (long long)s->after_dedup);
    goto fail;
  }
  s->n_interactions = x.n;
  dt_prep_index(&x, ds, &item_raw);
  s->n_users = ds->n_users;
  s->n_items = ds->n_items;
  rc = item_text(cfg, &opts, &x, ds, item_raw, synth_text, n_synth, &text, sources);
  free(synth_text);
  synth_text = NULL;
  if (rc != DT_OK) goto fail;
  rc = dt_prep_split(&x, !strcmp(cfg->data_split, "leave_one_out"), cfg->data_train_frac, cfg->data_valid_frac, ds);
  if (rc != DT_OK) goto fail;
  ds->history_len = (int)cfg->data_history_len;
  s->n_chunks = 0;
  for (int64_t u = 0; u < ds->n_users; u++)
    s->n_chunks += (ds->user_n_train[u] + ds->history_len - 1) / ds->history_len;
  dt_interactions_free(&x); /* before TF-IDF: lower peak memory */
  dt_prep_tfidf(text, ds->n_items, cfg->data_tfidf_terms, cfg->data_tfidf_min_df, ds);
  for (int64_t i = 0; i < ds->n_items; i++) free(text[i]);
  free(text);
  free(item_raw);
  if (sources_json) {
    *sources_json = cJSON_PrintUnformatted(sources);
    if (!*sources_json) dt_panic("cJSON allocation failed");
  }
  cJSON_Delete(sources);
  dt_log_debug("prep: built in %.2f s", dt_now_s() - t0);
  return DT_OK;
fail:
  if (synth_text)
    for (int64_t i = 0; i < n_synth; i++) free(synth_text[i]);
  free(synth_text);
  free(item_raw);
  dt_interactions_free(&x);
  cJSON_Delete(sources);
  dt_dataset_free(ds);
  return rc;
}

int dt_prep_run(const dt_config *cfg, dt_prep_summary *summary) {
  /* before the work, not after it: data.output must be free or dtrain's */
  DT_TRY(dt_dataset_check_replaceable(cfg->data_output));
  dt_dataset ds;
  char *sources = NULL;
  DT_TRY(dt_prep_build(cfg, &ds, &sources));
  char *config_json = dt_prep_config_json(cfg);
  int rc = dt_dataset_write(cfg->data_output, &ds, config_json, sources);
  free(config_json);
  free(sources);
  if (rc == DT_OK && summary) *summary = ds.summary;
  dt_dataset_free(&ds);
  return rc;
}
