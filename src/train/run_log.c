/* run_log.c: metrics.jsonl (train_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/timer.h"
#include "train_internal.h"

/* Whether a line of an earlier run belongs before a checkpoint at `step`:
 * a complete JSON object whose step is not later (a test line is about a
 * run's end, so one at the checkpoint's step goes too). */
static int keep_line(const char *line, size_t len, int64_t step) {
  cJSON *o = cJSON_ParseWithLength(line, len);
  int keep = cJSON_IsObject(o);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
  if (keep && cJSON_IsNumber(st)) {
    int test = cJSON_IsString(type) && !strcmp(type->valuestring, "test");
    keep = test ? st->valuedouble < (double)step : st->valuedouble <= (double)step;
  }
  cJSON_Delete(o);
  return keep;
}

/* Rewrites metrics.jsonl with only the lines up to `step`, when any other
 * is there (atomically: a failure leaves it as it was). */
static int truncate_after(const char *path, int64_t step) {
  if (!dt_path_exists(path)) return DT_OK;
  char *text;
  size_t len;
  DT_TRY(dt_read_file(path, &text, &len, DT_EXIT_RUNTIME));
  char *kept = dt_xmalloc(len + 1);
  size_t n_kept = 0, dropped = 0;
  for (size_t a = 0; a < len;) {
    const char *nl = memchr(text + a, '\n', len - a);
    size_t end = nl ? (size_t)(nl - text) : len; /* no newline: a half-written last line */
    if (nl && keep_line(text + a, end - a, step)) {
      memcpy(kept + n_kept, text + a, end - a + 1);
      n_kept += end - a + 1;
    } else if (end > a) {
      dropped++;
    }
    a = end + 1;
  }
  int rc = DT_OK;
  if (dropped > 0) {
    rc = dt_write_file_atomic(path, kept, n_kept);
    if (!rc)
      dt_log_info("%s: dropped %zu line(s) written after step %lld, the checkpoint's", path, dropped, (long long)step);
  }
  free(kept);
  free(text);
  return rc;
}

int dt_run_log_open(dt_run *R, int resumed) {
  R->metrics_path = dt_path_join(R->s->run_dir, "metrics.jsonl");
  if (resumed) DT_TRY(truncate_after(R->metrics_path, R->st.global_step));
  R->metrics_fd = open(R->metrics_path, O_WRONLY | O_CREAT | O_CLOEXEC | (resumed ? O_APPEND : O_TRUNC), 0666);
  if (R->metrics_fd < 0) return dt_fail(DT_EXIT_RUNTIME, "cannot open %s: %s", R->metrics_path, strerror(errno));
  return DT_OK;
}

void dt_run_log_close(dt_run *R) {
  if (R->metrics_fd >= 0) close(R->metrics_fd);
  R->metrics_fd = -1;
  free(R->metrics_path);
  R->metrics_path = NULL;
}

int dt_run_write_line(dt_run *R, cJSON *o) {
  int rc = DT_OK;
  if (R->metrics_fd >= 0) {
    char *s = cJSON_PrintUnformatted(o);
    size_t n = s ? strlen(s) : 0;
    if (s) s[n] = '\n'; /* one write per line: a line is whole or (killed mid-way) the torn last one */
    if (!s || dt_write_all(R->metrics_fd, s, n + 1) != 0)
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: %s", R->metrics_path, strerror(s ? errno : ENOMEM));
    cJSON_free(s);
  }
  cJSON_Delete(o);
  return rc;
}

void dt_log_add_alpha(cJSON *o, const double a[3], unsigned towers) {
  cJSON_AddItemToObject(o, "alpha_mean", dt_alpha_json(a, towers));
}

/* Bytes this rank has sent: the dense reduction, and every table's sparse
 * exchange (lookups and gradients). */
static void comm_bytes(dt_session *s, uint64_t *dense, uint64_t *sparse) {
  dt_comm_stats cs;
  dt_comm_get_stats(s->comm, &cs);
  *dense = cs.dense_bytes;
  *sparse = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    if (!s->model->tables[t].present) continue;
    dt_comm_table_stats ts;
    dt_comm_get_table_stats(s->comm, s->model->tables[t].comm_id, &ts);
    *sparse += ts.lookup_bytes + ts.grad_bytes;
  }
}

/* The phases of dt_step_times, in the order of "time_ms". */
static const struct {
  const char *name;
  size_t offset;
} phases[] = {
    {"batch", offsetof(dt_step_times, batch)},           {"forward", offsetof(dt_step_times, forward)},
    {"backward", offsetof(dt_step_times, backward)},     {"wait", offsetof(dt_step_times, wait)},
    {"dense_comm", offsetof(dt_step_times, dense_comm)}, {"sparse_comm", offsetof(dt_step_times, sparse_comm)},
    {"update", offsetof(dt_step_times, update)},
};
enum { N_PHASES = sizeof phases / sizeof phases[0] };

static double *phase(dt_step_times *t, int k) { return (double *)((char *)t + phases[k].offset); }

void dt_step_log_begin(dt_run *R, dt_step_log *lg) {
  memset(lg, 0, sizeof *lg);
  lg->since = dt_now_s();
  lg->floor0 = R->s->sparse_lower_bound_bytes;
  comm_bytes(R->s, &lg->dense0, &lg->sparse0);
}

static cJSON *step_line(dt_run *R, dt_step_log *lg, const dt_step_stats *st, int64_t epoch, double lr_dense,
                        double lr_sparse, double now) {
  dt_session *s = R->s;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "step");
  cJSON_AddNumberToObject(o, "epoch", (double)epoch + 1);
  cJSON_AddNumberToObject(o, "step", (double)R->st.global_step);
  cJSON_AddNumberToObject(o, "loss", st->loss);
  cJSON_AddNumberToObject(o, "examples", (double)st->examples);
  /* the ranking term of train.loss; "bpr" as before when it is BPR */
  cJSON_AddNumberToObject(o, "ranking", st->bpr);
  if (!strcmp(s->cfg.train_loss, "bpr")) cJSON_AddNumberToObject(o, "bpr", st->bpr);
  cJSON_AddNumberToObject(o, "neg_entropy", st->entropy);
  cJSON_AddNumberToObject(o, "balance", st->balance);
  dt_log_add_alpha(o, st->alpha, dt_model_towers(s->model));
  cJSON_AddNumberToObject(o, "lr", lr_dense);
  cJSON_AddNumberToObject(o, "sparse_lr", lr_sparse);
  cJSON_AddNumberToObject(o, "grad_norm", st->grad_norm);
  cJSON_AddNumberToObject(o, "examples_per_sec", now > lg->since ? (double)lg->examples / (now - lg->since) : 0);
  cJSON_AddNumberToObject(o, "time_s", now - R->t0);
  cJSON_AddNumberToObject(o, "peak_rss_mb", (double)dt_peak_rss_bytes() / 1048576.0);
  /* this rank's communication per step since the last line */
  uint64_t dense_b, sparse_b;
  comm_bytes(s, &dense_b, &sparse_b);
  double per = lg->steps > 0 ? (double)lg->steps : 1.0;
  cJSON_AddNumberToObject(o, "comm_dense_bytes_per_step", (double)(dense_b - lg->dense0) / per);
  cJSON_AddNumberToObject(o, "comm_sparse_bytes_per_step", (double)(sparse_b - lg->sparse0) / per);
  cJSON_AddNumberToObject(o, "sparse_lower_bound_bytes_per_step",
                          (double)(s->sparse_lower_bound_bytes - lg->floor0) / per);
  /* this rank's time per step, by phase (ms) */
  cJSON *tm = cJSON_CreateObject();
  for (int k = 0; k < N_PHASES; k++) cJSON_AddNumberToObject(tm, phases[k].name, 1e3 * *phase(&lg->t, k) / per);
  cJSON_AddItemToObject(o, "time_ms", tm);
  lg->dense0 = dense_b;
  lg->sparse0 = sparse_b;
  return o;
}

int dt_step_log_add(dt_run *R, dt_step_log *lg, const dt_step_stats *st, int64_t epoch, int last_of_epoch,
                    double lr_dense, double lr_sparse) {
  lg->examples += st->examples;
  lg->steps++;
  dt_step_times t = st->t;
  for (int k = 0; k < N_PHASES; k++) *phase(&lg->t, k) += *phase(&t, k);
  if (R->st.global_step % R->s->cfg.run_log_every != 0 && !last_of_epoch) return DT_OK;
  double now = dt_now_s();
  cJSON *o = step_line(R, lg, st, epoch, lr_dense, lr_sparse, now);
  memset(&lg->t, 0, sizeof lg->t);
  lg->floor0 = R->s->sparse_lower_bound_bytes;
  lg->steps = 0;
  lg->since = now;
  lg->examples = 0;
  return dt_run_write_line(R, o);
}
