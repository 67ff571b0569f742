/* report_tables.c: the report's tables: the runs, the test evaluation and
 * the configuration keys that differ (report_internal.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/config.h"
#include "report/report_internal.h"

void dt_report_cell(dt_sbuf *o, double v, int decimals) {
  if (isfinite(v))
    dt_sbuf_printf(o, "%.*f", decimals, v);
  else
    dt_sbuf_puts(o, "–");
}

static double num(const cJSON *node, const char *a, const char *b) {
  const cJSON *v = node ? cJSON_GetObjectItemCaseSensitive(node, a) : NULL;
  if (b) v = v ? cJSON_GetObjectItemCaseSensitive(v, b) : NULL;
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void td_text(dt_sbuf *o, const char *s, int left) {
  dt_sbuf_puts(o, left ? "<td class=\"l\">" : "<td>");
  dt_sbuf_html(o, s ? s : "–");
  dt_sbuf_puts(o, "</td>");
}

static void td_num(dt_sbuf *o, double v, int decimals) {
  dt_sbuf_puts(o, "<td>");
  dt_report_cell(o, v, decimals);
  dt_sbuf_puts(o, "</td>");
}

/* ---- the runs ------------------------------------------------------------------------------ */

static const char *const g_towers[3] = {"static", "dynamic", "content"};

static void towers_text(const dt_run *r, char *out, size_t n) {
  out[0] = '\0';
  for (int k = 0; k < 3; k++)
    if (r->towers[k]) snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", g_towers[k]);
}

static void status_text(const dt_run *r, char *out, size_t n) {
  if (r->finished) {
    snprintf(out, n, "finished (test evaluation from %s)", r->test_source);
    return;
  }
  if (!r->has_metrics) {
    snprintf(out, n, "not started");
    return;
  }
  char when[40] = "";
  if (r->metrics_mtime > 0) {
    time_t t = (time_t)r->metrics_mtime;
    struct tm tmv;
    strftime(when, sizeof when, ", last written %Y-%m-%d %H:%M UTC", gmtime_r(&t, &tmv));
  }
  snprintf(out, n, "in progress or stopped (no test evaluation yet%s)", when);
}

void dt_report_table_runs(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o,
               "<section id=\"runs\">\n<h2>Runs</h2>\n<table id=\"table-runs\">\n<tr><th class=\"l\">run</th>"
               "<th class=\"l\">directory</th><th class=\"l\">model</th><th class=\"l\">data</th>"
               "<th class=\"l\">towers</th><th>epochs</th><th>steps</th><th>last loss</th>"
               "<th>best valid NDCG@10 (epoch)</th><th>test NDCG@10</th><th class=\"l\">status</th></tr>\n");
  for (int i = 0; i < n; i++) {
    const dt_run *r = &runs[i];
    char *ver = dt_run_config_text(r, "model.version"), *var = dt_run_config_text(r, "model.variant");
    char *fmt = dt_run_config_text(r, "data.format"), *rev = dt_run_config_text(r, "data.reviews");
    char model[160], data[600], towers[64], status[160], best[64];
    snprintf(model, sizeof model, "%s %s", ver ? ver : "?", var ? var : "?");
    snprintf(data, sizeof data, "%s%s%s", fmt ? fmt : "?", rev && rev[0] ? ": " : "", rev && rev[0] ? rev : "");
    towers_text(r, towers, sizeof towers);
    status_text(r, status, sizeof status);
    dt_sbuf_puts(o, "<tr>");
    td_text(o, r->label, 1);
    td_text(o, r->dir, 1);
    td_text(o, model, 1);
    td_text(o, data, 1);
    td_text(o, towers, 1);
    const dt_run_table *e = &r->epochs, *s = &r->steps;
    td_num(o, e->n ? e->epoch[e->n - 1] : NAN, 0);
    td_num(o, s->n ? s->step[s->n - 1] : NAN, 0);
    td_num(o, s->n ? s->col[DT_RS_LOSS][s->n - 1] : NAN, 4);
    double bv = NAN, be = NAN;
    for (int64_t j = 0; j < e->n; j++)
      if (isfinite(e->col[DT_RE_VALID_NDCG10][j]) && !(e->col[DT_RE_VALID_NDCG10][j] <= bv))
        bv = e->col[DT_RE_VALID_NDCG10][j], be = e->epoch[j];
    if (isfinite(bv))
      snprintf(best, sizeof best, "%.4f (%.0f)", bv, be);
    else
      snprintf(best, sizeof best, "–");
    td_text(o, best, 0);
    td_num(o, num(r->test, "sampled", "ndcg@10"), 4);
    td_text(o, status, 1);
    dt_sbuf_puts(o, "</tr>\n");
    free(ver), free(var), free(fmt), free(rev);
  }
  dt_sbuf_puts(o, "</table>\n");
  for (int i = 0; i < n; i++) {
    if (!runs[i].n_notes) continue;
    dt_sbuf_puts(o, "<p>Notes on ");
    dt_sbuf_html(o, runs[i].label);
    dt_sbuf_puts(o, ":</p>\n<ul class=\"notes\">\n");
    for (int k = 0; k < runs[i].n_notes; k++) {
      dt_sbuf_puts(o, "<li>");
      dt_sbuf_html(o, runs[i].notes[k]);
      dt_sbuf_puts(o, "</li>\n");
    }
    if (runs[i].skipped > 5) dt_sbuf_printf(o, "<li>%lld lines skipped in all</li>\n", (long long)runs[i].skipped);
    dt_sbuf_puts(o, "</ul>\n");
  }
  dt_sbuf_puts(o, "</section>\n");
}

/* ---- the test evaluation ---------------------------------------------------------------- */

static const char *const g_metric_keys[] = {"ndcg@5",       "ndcg@10", "ndcg@20", "hr@10",      "recall@10",
                                            "precision@10", "map@10",  "mrr",     "coverage@10"};
static const char *const g_metric_heads[] = {"NDCG@5",       "NDCG@10", "NDCG@20", "HR@10",      "Recall@10",
                                             "Precision@10", "MAP@10",  "MRR",     "coverage@10"};
enum { N_METRICS = (int)(sizeof g_metric_keys / sizeof g_metric_keys[0]) };

/* One row: `node` is the protocol's object ("sampled", "popularity.full"). */
static void metrics_row(dt_sbuf *o, const char *run, const char *what, const cJSON *node, int pop, const double *best) {
  dt_sbuf_puts(o, pop ? "<tr class=\"pop\">" : "<tr>");
  td_text(o, run, 1);
  td_text(o, what, 1);
  td_num(o, num(node, "users", NULL), 0);
  for (int k = 0; k < N_METRICS; k++) {
    double v = num(node, g_metric_keys[k], NULL);
    int is_best = best && isfinite(v) && v == best[k];
    dt_sbuf_puts(o, is_best ? "<td class=\"best\">" : "<td>");
    dt_report_cell(o, v, 4);
    dt_sbuf_puts(o, "</td>");
  }
  dt_sbuf_puts(o, "</tr>\n");
}

static void buckets_table(dt_sbuf *o, const dt_run *r, int i) {
  const cJSON *bs = cJSON_GetObjectItemCaseSensitive(r->test, "buckets");
  if (!cJSON_IsArray(bs)) return;
  dt_sbuf_puts(o, "<h3>Cold start by train history length: ");
  dt_sbuf_html(o, r->label);
  dt_sbuf_printf(o,
                 "</h3>\n<table id=\"table-buckets-%d\">\n<tr><th class=\"l\">history length</th><th>users</th>"
                 "<th>NDCG@10</th><th>HR@10</th>",
                 i);
  for (int k = 0; k < 3; k++)
    if (r->towers[k]) dt_sbuf_printf(o, "<th>alpha %s</th>", g_towers[k]);
  dt_sbuf_puts(o, "</tr>\n");
  const cJSON *b;
  cJSON_ArrayForEach(b, bs) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
    dt_sbuf_puts(o, "<tr>");
    td_text(o, cJSON_IsString(name) ? name->valuestring : "?", 1);
    td_num(o, num(b, "users", NULL), 0);
    td_num(o, num(b, "ndcg@10", NULL), 4);
    td_num(o, num(b, "hr@10", NULL), 4);
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(b, "alpha");
    for (int k = 0; k < 3; k++) {
      if (!r->towers[k]) continue;
      const cJSON *a = cJSON_IsArray(al) ? cJSON_GetArrayItem(al, k) : NULL;
      td_num(o, cJSON_IsNumber(a) ? a->valuedouble : NAN, 3);
    }
    dt_sbuf_puts(o, "</tr>\n");
  }
  dt_sbuf_puts(o, "</table>\n");
}

void dt_report_table_test(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o, "<section id=\"test\">\n<h2>Test evaluation</h2>\n");
  int any = 0;
  for (int i = 0; i < n; i++) any |= runs[i].test != NULL;
  if (!any) {
    dt_sbuf_puts(o,
                 "<p class=\"none\">No run has a test evaluation yet (it is written at the end of training, or "
                 "by <code>dtrain eval</code>).</p>\n</section>\n");
    return;
  }
  dt_sbuf_puts(o,
               "<p>The model and the popularity ranking on the same candidates: the sampled protocol (1 + "
               "<code>eval.negatives</code>) and full ranking over the catalogue. With several runs the best "
               "model value of each column is in bold.</p>\n"
               "<table id=\"table-test\">\n<tr><th class=\"l\">run</th><th class=\"l\">protocol</th><th>users</th>");
  for (int k = 0; k < N_METRICS; k++) dt_sbuf_printf(o, "<th>%s</th>", g_metric_heads[k]);
  dt_sbuf_puts(o, "</tr>\n");
  static const char *const protos[2] = {"sampled", "full"};
  static const char *const names[2] = {"sampled", "full ranking"};
  for (int p = 0; p < 2; p++) {
    double best[N_METRICS];
    for (int k = 0; k < N_METRICS; k++) {
      best[k] = NAN;
      for (int i = 0; i < n && n > 1; i++) {
        double v = num(cJSON_GetObjectItemCaseSensitive(runs[i].test, protos[p]), g_metric_keys[k], NULL);
        if (isfinite(v) && !(v <= best[k])) best[k] = v;
      }
    }
    for (int i = 0; i < n; i++) {
      const cJSON *t = runs[i].test;
      const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, protos[p]);
      const cJSON *pop = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "popularity"), protos[p]);
      char what[64];
      snprintf(what, sizeof what, "%s: model", names[p]);
      if (m) metrics_row(o, runs[i].label, what, m, 0, best);
      snprintf(what, sizeof what, "%s: popularity", names[p]);
      if (pop) metrics_row(o, runs[i].label, what, pop, 1, NULL);
    }
  }
  dt_sbuf_puts(o, "</table>\n");
  for (int i = 0; i < n; i++) {
    if (!runs[i].test) {
      dt_sbuf_puts(o, "<p class=\"none\">");
      dt_sbuf_html(o, runs[i].label);
      dt_sbuf_puts(o, ": no test evaluation yet.</p>\n");
      continue;
    }
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(runs[i].test, "alpha_mean");
    if (cJSON_IsArray(am)) {
      dt_sbuf_puts(o, "<p>Mean alpha on test, ");
      dt_sbuf_html(o, runs[i].label);
      dt_sbuf_puts(o, ":");
      for (int k = 0; k < 3; k++) {
        const cJSON *a = cJSON_GetArrayItem(am, k);
        if (runs[i].towers[k] && cJSON_IsNumber(a)) dt_sbuf_printf(o, " %s %.3f", g_towers[k], a->valuedouble);
      }
      dt_sbuf_puts(o, ".</p>\n");
    }
    buckets_table(o, &runs[i], i);
  }
  dt_sbuf_puts(o, "</section>\n");
}

/* ---- the configuration --------------------------------------------------------------------- */

/* Appends "key\tvalue" leaves of a config object to a list. */
typedef struct {
  char **key, **val;
  int n, cap;
} kvlist;

static void kv_add(kvlist *l, const char *k, const cJSON *v) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->key = dt_xrealloc(l->key, sizeof(char *) * (size_t)l->cap);
    l->val = dt_xrealloc(l->val, sizeof(char *) * (size_t)l->cap);
  }
  l->key[l->n] = dt_xstrdup(k);
  if (cJSON_IsString(v)) {
    l->val[l->n] = dt_xstrdup(v->valuestring);
  } else {
    char *s = cJSON_PrintUnformatted(v);
    l->val[l->n] = dt_xstrdup(s ? s : "?");
    cJSON_free(s);
  }
  l->n++;
}

static void flatten(kvlist *l, const cJSON *obj, const char *prefix) {
  const cJSON *c;
  cJSON_ArrayForEach(c, obj) {
    char key[256];
    snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", c->string ? c->string : "?");
    if (cJSON_IsObject(c))
      flatten(l, c, key);
    else
      kv_add(l, key, c);
  }
}

static const char *kv_get(const kvlist *l, const char *key) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->key[i], key)) return l->val[i];
  return NULL;
}

static void kv_free(kvlist *l) {
  for (int i = 0; i < l->n; i++) free(l->key[i]), free(l->val[i]);
  free(l->key);
  free(l->val);
}

/* Two values are the same when equal as text or as numbers ("0.7" = "0.70"). */
static int same_value(const char *a, const char *b) {
  if (!a || !b) return a == b;
  if (!strcmp(a, b)) return 1;
  char *ea, *eb;
  double x = strtod(a, &ea), y = strtod(b, &eb);
  return ea != a && eb != b && !*ea && !*eb && x == y;
}

void dt_report_table_config(dt_sbuf *o, const dt_run *runs, int n) {
  kvlist *lists = dt_xcalloc((size_t)n, sizeof *lists), keys = {0};
  for (int i = 0; i < n; i++) {
    if (runs[i].config) flatten(&lists[i], runs[i].config, "");
    for (int k = 0; k < lists[i].n; k++)
      if (!kv_get(&keys, lists[i].key[k])) kv_add(&keys, lists[i].key[k], NULL);
  }
  dt_sbuf_printf(o, "<section id=\"config\">\n<h2>Configuration</h2>\n<p>%s</p>\n",
                 n > 1 ? "The merged configuration keys whose values differ between the runs (config.json of each run)."
                       : "The merged configuration keys whose values differ from the schema defaults.");
  dt_sbuf_puts(o, "<table id=\"table-config-diff\">\n<tr><th class=\"l\">key</th><th class=\"l\">default</th>");
  for (int i = 0; i < n; i++) {
    dt_sbuf_puts(o, "<th class=\"l\">");
    dt_sbuf_html(o, runs[i].label);
    dt_sbuf_puts(o, "</th>");
  }
  dt_sbuf_puts(o, "</tr>\n");
  int rows = 0;
  for (int k = 0; k < keys.n; k++) {
    const dt_config_key *schema = dt_config_find_key(keys.key[k]);
    const char *def = schema ? schema->def : NULL;
    int differs = 0;
    for (int i = 0; i < n; i++) {
      const char *v = kv_get(&lists[i], keys.key[k]);
      if (n > 1 ? !same_value(v, kv_get(&lists[0], keys.key[k])) : !same_value(v, def)) differs = 1;
    }
    if (!differs) continue;
    rows++;
    dt_sbuf_puts(o, "<tr>");
    td_text(o, keys.key[k], 1);
    td_text(o, def, 1);
    for (int i = 0; i < n; i++) td_text(o, kv_get(&lists[i], keys.key[k]), 1);
    dt_sbuf_puts(o, "</tr>\n");
  }
  if (!rows) dt_sbuf_printf(o, "<tr><td class=\"l\" colspan=\"%d\">no differences</td></tr>\n", n + 2);
  dt_sbuf_puts(o, "</table>\n");
  for (int i = 0; i < n; i++) {
    dt_sbuf_puts(o, "<details><summary>Full configuration of ");
    dt_sbuf_html(o, runs[i].label);
    dt_sbuf_puts(o, "</summary>\n<pre>");
    if (runs[i].config) {
      char *s = cJSON_Print(runs[i].config);
      dt_sbuf_html(o, s ? s : "");
      cJSON_free(s);
    } else {
      dt_sbuf_puts(o, "(no config.json)");
    }
    dt_sbuf_puts(o, "</pre>\n</details>\n");
  }
  dt_sbuf_puts(o, "</section>\n");
  for (int i = 0; i < n; i++) kv_free(&lists[i]);
  free(lists);
  kv_free(&keys);
}
