/* run_data.c: reads a run directory for the report (run_data.h). */
#include "report/run_data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"

static const dt_run_field g_step_fields[DT_RS_N] = {
    [DT_RS_LOSS] = {"loss", "loss", "loss"},
    [DT_RS_BPR] = {"bpr", "bpr", "BPR"},
    [DT_RS_NEG_ENTROPY] = {"neg_entropy", "neg_entropy", "negative gate entropy"},
    [DT_RS_BALANCE] = {"balance", "balance", "gate balance"},
    [DT_RS_ALPHA_S] = {"alpha_mean.0", "alpha_static", "alpha static"},
    [DT_RS_ALPHA_D] = {"alpha_mean.1", "alpha_dynamic", "alpha dynamic"},
    [DT_RS_ALPHA_C] = {"alpha_mean.2", "alpha_content", "alpha content"},
    [DT_RS_LR] = {"lr", "lr", "learning rate"},
    [DT_RS_SPARSE_LR] = {"sparse_lr", "sparse_lr", "table learning rate"},
    [DT_RS_GRAD_NORM] = {"grad_norm", "grad_norm", "gradient norm"},
    [DT_RS_EXAMPLES] = {"examples", "examples", "examples"},
    [DT_RS_EXAMPLES_PER_SEC] = {"examples_per_sec", "examples_per_sec", "examples/s"},
    [DT_RS_TIME_S] = {"time_s", "time_s", "time (s)"},
    [DT_RS_PEAK_RSS_MB] = {"peak_rss_mb", "peak_rss_mb", "peak RSS (MiB)"},
    [DT_RS_COMM_DENSE] = {"comm_dense_bytes_per_step", "comm_dense_bytes_per_step", "dense"},
    [DT_RS_COMM_SPARSE] = {"comm_sparse_bytes_per_step", "comm_sparse_bytes_per_step", "sparse"},
    [DT_RS_COMM_LOWER_BOUND] = {"sparse_lower_bound_bytes_per_step", "sparse_lower_bound_bytes_per_step",
                                "sparse lower bound"},
    [DT_RS_T_BATCH] = {"time_ms.batch", "time_ms_batch", "batch"},
    [DT_RS_T_FORWARD] = {"time_ms.forward", "time_ms_forward", "forward"},
    [DT_RS_T_BACKWARD] = {"time_ms.backward", "time_ms_backward", "backward"},
    [DT_RS_T_WAIT] = {"time_ms.wait", "time_ms_wait", "wait"},
    [DT_RS_T_DENSE_COMM] = {"time_ms.dense_comm", "time_ms_dense_comm", "dense comm"},
    [DT_RS_T_SPARSE_COMM] = {"time_ms.sparse_comm", "time_ms_sparse_comm", "sparse comm"},
    [DT_RS_T_UPDATE] = {"time_ms.update", "time_ms_update", "update"},
};

static const dt_run_field g_epoch_fields[DT_RE_N] = {
    [DT_RE_LOSS] = {"loss", "epoch_loss", "loss"},
    [DT_RE_EXAMPLES_PER_SEC] = {"examples_per_sec", "epoch_examples_per_sec", "examples/s"},
    [DT_RE_EPOCH_TIME_S] = {"epoch_time_s", "epoch_time_s", "epoch time (s)"},
    [DT_RE_ALPHA_S] = {"alpha_mean.0", "epoch_alpha_static", "alpha static"},
    [DT_RE_ALPHA_D] = {"alpha_mean.1", "epoch_alpha_dynamic", "alpha dynamic"},
    [DT_RE_ALPHA_C] = {"alpha_mean.2", "epoch_alpha_content", "alpha content"},
    [DT_RE_LR] = {"lr", "epoch_lr", "learning rate"},
    [DT_RE_VALID_NDCG10] = {"valid.ndcg@10", "valid_ndcg@10", "valid NDCG@10"},
    [DT_RE_VALID_HR10] = {"valid.hr@10", "valid_hr@10", "valid HR@10"},
    [DT_RE_VALID_MRR] = {"valid.mrr", "valid_mrr", "valid MRR"},
    [DT_RE_BEST_NDCG10] = {"best_ndcg@10", "best_ndcg@10", "best valid NDCG@10"},
};

_Static_assert((int)DT_RS_N >= (int)DT_RE_N, "dt_run_table holds DT_RS_N columns");

const dt_run_field *dt_run_step_fields(void) { return g_step_fields; }
const dt_run_field *dt_run_epoch_fields(void) { return g_epoch_fields; }

/* ---- helpers ---------------------------------------------------------------------- */

static void add_note(dt_run *r, const char *fmt, ...) DT_PRINTF(2, 3);
static void add_note(dt_run *r, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  r->notes = dt_xrealloc(r->notes, sizeof(char *) * (size_t)(r->n_notes + 1));
  r->notes[r->n_notes++] = dt_xstrdup(buf);
}

/* The node at a dotted path; a numeric part indexes an array. Keys may hold
 * '@' ("ndcg@10") but not '.'. */
static const cJSON *json_path(const cJSON *node, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  for (char *part = strtok_r(buf, ".", &save); part && node; part = strtok_r(NULL, ".", &save)) {
    if (cJSON_IsArray(node) && part[0] >= '0' && part[0] <= '9')
      node = cJSON_GetArrayItem(node, atoi(part));
    else if (cJSON_IsObject(node))
      node = cJSON_GetObjectItemCaseSensitive(node, part);
    else
      node = NULL;
  }
  return node;
}

static double json_number(const cJSON *node, const char *path) {
  const cJSON *v = json_path(node, path);
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

static void table_add(dt_run_table *t, int n_cols, const cJSON *line, const dt_run_field *fields) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->step = dt_xrealloc(t->step, sizeof(double) * (size_t)t->cap);
    t->epoch = dt_xrealloc(t->epoch, sizeof(double) * (size_t)t->cap);
    for (int c = 0; c < n_cols; c++) t->col[c] = dt_xrealloc(t->col[c], sizeof(double) * (size_t)t->cap);
  }
  t->step[t->n] = json_number(line, "step");
  t->epoch[t->n] = json_number(line, "epoch");
  for (int c = 0; c < n_cols; c++) t->col[c][t->n] = json_number(line, fields[c].path);
  t->n++;
}

/* alpha_mean (a line's, or the test evaluation's) names an absent tower
 * with null (eval.h's dt_alpha_json). */
static void note_absent_towers(dt_run *r, const cJSON *o) {
  const cJSON *am = cJSON_GetObjectItemCaseSensitive(o, "alpha_mean");
  for (int k = 0; k < 3 && cJSON_IsArray(am); k++)
    if (cJSON_IsNull(cJSON_GetArrayItem(am, k))) r->tower_null[k] = 1;
}

static void table_free(dt_run_table *t) {
  free(t->step);
  free(t->epoch);
  for (size_t c = 0; c < sizeof t->col / sizeof t->col[0]; c++) free(t->col[c]);
  memset(t, 0, sizeof *t);
}

/* Sorts rows by key (step or epoch) keeping file order among equals, then
 * keeps the last row of each key (a resumed run repeats the steps after its
 * checkpoint) and drops rows without a key. */
static const double *g_sort_key;
static int cmp_rows(const void *a, const void *b) {
  int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
  double x = g_sort_key[i], y = g_sort_key[j];
  if (x < y) return -1;
  if (x > y) return 1;
  return i < j ? -1 : i > j;
}

static void table_normalise(dt_run_table *t, int n_cols, int by_epoch) {
  if (t->n == 0) return;
  const double *key = by_epoch ? t->epoch : t->step;
  int64_t *order = dt_xmalloc(sizeof(int64_t) * (size_t)t->n), m = 0;
  for (int64_t i = 0; i < t->n; i++)
    if (isfinite(key[i])) order[m++] = i;
  g_sort_key = key;
  qsort(order, (size_t)m, sizeof *order, cmp_rows);
  int64_t k = 0;
  for (int64_t i = 0; i < m; i++)
    if (i + 1 == m || key[order[i + 1]] != key[order[i]]) order[k++] = order[i];
  double *tmp = dt_xmalloc(sizeof(double) * (size_t)(k ? k : 1));
  double **cols[2 + DT_RS_N];
  int nc = 0;
  cols[nc++] = &t->step;
  cols[nc++] = &t->epoch;
  for (int c = 0; c < n_cols; c++) cols[nc++] = &t->col[c];
  for (int c = 0; c < nc; c++) {
    for (int64_t i = 0; i < k; i++) tmp[i] = (*cols[c])[order[i]];
    memcpy(*cols[c], tmp, sizeof(double) * (size_t)k);
  }
  t->n = k;
  free(tmp);
  free(order);
}

/* ---- the three files -------------------------------------------------------------- */

static cJSON *read_json_file(dt_run *r, const char *path, const char *what) {
  char *text = NULL;
  size_t len = 0;
  if (dt_read_file(path, &text, &len, DT_EXIT_DATA) != DT_OK) {
    dt_error_clear();
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    dt_log_warn("%s: not a JSON object; the report leaves out %s", path, what);
    add_note(r, "%s is not valid JSON: %s left out", path, what);
    return NULL;
  }
  return j;
}

/* One JSON value filling the line (blanks around it allowed), or NULL. */
static cJSON *parse_line(const char *line, size_t len) {
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!o) return NULL;
  for (; end && end < line + len; end++)
    if (*end != ' ' && *end != '\t') {
      cJSON_Delete(o);
      return NULL;
    }
  return o;
}

static void bad_line(dt_run *r, const char *path, int64_t line, const char *why) {
  r->skipped++;
  dt_log_warn("%s:%lld: %s; line skipped", path, (long long)line, why);
  if (r->skipped <= 5)
    add_note(r, "%s:%lld: %s; line skipped", path, (long long)line, why);
  else if (r->skipped == 6)
    add_note(r, "%s: further bad lines skipped (see the total above)", path);
}

static int read_metrics(dt_run *r, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return DT_OK;
    return dt_fail(DT_EXIT_DATA, "cannot open %s: %s", path, strerror(errno));
  }
  r->has_metrics = 1;
  struct stat st;
  if (fstat(fileno(f), &st) == 0) r->metrics_mtime = (long long)st.st_mtime;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t no = 0;
  cJSON *last_test = NULL;
  while ((len = getline(&line, &cap, f)) >= 0) {
    no++;
    int complete = len > 0 && line[len - 1] == '\n';
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    size_t skip = 0;
    while (skip < (size_t)len && (line[skip] == ' ' || line[skip] == '\t')) skip++;
    if (skip == (size_t)len) continue;
    r->lines++;
    if (memchr(line, '\0', (size_t)len)) {
      bad_line(r, path, no, "a NUL byte in the line");
      continue;
    }
    cJSON *o = parse_line(line, (size_t)len);
    if (!o && !complete) { /* the writer has not finished this line yet */
      r->partial_last_line = 1;
      add_note(r, "%s:%lld: the last line is incomplete (the run is still writing it?); left out", path, (long long)no);
      break;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsObject(o)) {
      bad_line(r, path, no, o ? "not a JSON object" : "invalid JSON");
    } else if (!cJSON_IsString(type)) {
      bad_line(r, path, no, "no \"type\" (step, epoch or test)");
    } else if (!strcmp(type->valuestring, "step")) {
      table_add(&r->steps, DT_RS_N, o, g_step_fields);
      note_absent_towers(r, o);
    } else if (!strcmp(type->valuestring, "epoch")) {
      table_add(&r->epochs, DT_RE_N, o, g_epoch_fields);
      note_absent_towers(r, o);
    } else if (!strcmp(type->valuestring, "test")) {
      cJSON_Delete(last_test);
      last_test = o;
      o = NULL;
    } /* other types: a newer dtrain's lines, ignored */
    cJSON_Delete(o);
  }
  int read_error = ferror(f);
  free(line);
  fclose(f);
  if (read_error) {
    cJSON_Delete(last_test);
    return dt_fail(DT_EXIT_DATA, "cannot read %s", path);
  }
  if (!r->test && last_test) {
    r->test = last_test;
    r->test_source = "metrics.jsonl";
  } else {
    cJSON_Delete(last_test);
  }
  table_normalise(&r->steps, DT_RS_N, 0);
  table_normalise(&r->epochs, DT_RE_N, 1);
  return DT_OK;
}

/* Which towers the run has: those its variant keeps, less any whose alpha
 * is null (dtrain writes null for a tower the model lacks, e.g. the content
 * tower of a data set without item text), and, for runs written before
 * that, less any whose weight is zero in every line that carries one. */
static void find_towers(dt_run *r) {
  char *variant = dt_run_config_text(r, "model.variant");
  int keep[3] = {1, 1, 1};
  if (variant) {
    if (!strcmp(variant, "no_dynamic")) keep[1] = 0;
    if (!strcmp(variant, "no_content")) keep[2] = 0;
    if (!strcmp(variant, "static_only")) keep[1] = keep[2] = 0;
    if (!strcmp(variant, "dynamic_only")) keep[0] = keep[2] = 0;
  }
  free(variant);
  if (r->test) note_absent_towers(r, r->test);
  for (int k = 0; k < 3; k++)
    if (r->tower_null[k]) keep[k] = 0;
  for (int k = 0; k < 3; k++) {
    int finite = 0, nonzero = 0;
    const double *cols[2] = {r->steps.col[DT_RS_ALPHA_S + k], r->epochs.col[DT_RE_ALPHA_S + k]};
    const int64_t ns[2] = {r->steps.n, r->epochs.n};
    for (int t = 0; t < 2; t++)
      for (int64_t i = 0; i < ns[t]; i++)
        if (isfinite(cols[t][i])) finite = 1, nonzero |= cols[t][i] != 0;
    char path[32];
    snprintf(path, sizeof path, "alpha_mean.%d", k);
    double a = r->test ? json_number(r->test, path) : NAN;
    if (isfinite(a)) finite = 1, nonzero |= a != 0;
    r->towers[k] = keep[k] && (!finite || nonzero);
  }
}

int dt_run_load(const char *dir, dt_run *r) {
  memset(r, 0, sizeof *r);
  struct stat st;
  if (stat(dir, &st) != 0) return dt_fail(DT_EXIT_DATA, "report: run directory %s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return dt_fail(DT_EXIT_DATA, "report: %s is not a directory (give run directories, e.g. runs/quickstart)", dir);
  r->dir = dt_xstrdup(dir);
  char *cpath = dt_path_join(dir, "config.json"), *mpath = dt_path_join(dir, "metrics.jsonl"),
       *epath = dt_path_join(dir, "eval_test.json");
  int has_config = dt_path_exists(cpath), has_eval = dt_path_exists(epath);
  int rc = DT_OK;
  if (!has_config && !dt_path_exists(mpath) && !has_eval) {
    rc =
        dt_fail(DT_EXIT_DATA,
                "report: %s holds none of config.json, metrics.jsonl, eval_test.json: not a dtrain run directory", dir);
    goto out;
  }
  if (has_config)
    r->config = read_json_file(r, cpath, "the configuration");
  else
    add_note(r, "%s has no config.json", dir);
  if (has_eval) {
    r->test = read_json_file(r, epath, "the test evaluation");
    if (r->test) r->test_source = "eval_test.json";
  }
  if ((rc = read_metrics(r, mpath)) != DT_OK) goto out;
  if (!r->has_metrics) add_note(r, "%s has no metrics.jsonl", dir);
  r->finished = r->test != NULL;
  find_towers(r);
  char *name = dt_run_config_text(r, "run.name");
  if (name) {
    r->label = name;
  } else { /* the directory's last component */
    r->label = dt_xstrdup(dir);
    size_t n = strlen(r->label);
    while (n > 1 && r->label[n - 1] == '/') r->label[--n] = '\0';
    const char *base = strrchr(r->label, '/');
    if (base && base[1]) memmove(r->label, base + 1, strlen(base + 1) + 1);
  }
out:
  free(cpath);
  free(mpath);
  free(epath);
  if (rc != DT_OK) dt_run_free(r);
  return rc;
}

void dt_run_free(dt_run *r) {
  if (!r) return;
  free(r->dir);
  free(r->label);
  cJSON_Delete(r->config);
  cJSON_Delete(r->test);
  table_free(&r->steps);
  table_free(&r->epochs);
  for (int i = 0; i < r->n_notes; i++) free(r->notes[i]);
  free(r->notes);
  memset(r, 0, sizeof *r);
}

char *dt_run_config_text(const dt_run *r, const char *key) {
  const cJSON *v = r->config ? json_path(r->config, key) : NULL;
  if (!v) return NULL;
  if (cJSON_IsString(v)) return dt_xstrdup(v->valuestring);
  char *s = cJSON_PrintUnformatted(v);
  if (!s) dt_panic("cJSON_PrintUnformatted failed");
  char *copy = dt_xstrdup(s);
  cJSON_free(s);
  return copy;
}
