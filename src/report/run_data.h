/* run_data.h (internal to src/report): what a run directory holds, read
 * leniently for the report.
 *
 * A run directory (README "Training") holds config.json (the merged
 * config), metrics.jsonl (one JSON object per line: "step", "epoch" and
 * "test" lines) and, after the final evaluation, eval_test.json. Any of them
 * may be missing (a run still starting, a run stopped early) and
 * metrics.jsonl may end in a half-written line (a run in progress). The
 * reader never fails on their contents: a line that is not valid JSON, or
 * not an object with a "type", is skipped with a warning naming FILE:LINE
 * (logged, and kept in `notes` for the report); unknown types and missing
 * fields are ignored (a missing number is NaN). It fails (DT_EXIT_DATA) only
 * when the directory does not exist or holds none of the three files.
 *
 * A resumed run appends to metrics.jsonl, so steps may repeat: the series
 * are sorted by step (epochs by epoch) and the last line for a step wins.
 *
 * Ownership: dt_run_load fills a dt_run that owns everything it points to;
 * free it with dt_run_free.
 */
#ifndef DTRAIN_REPORT_RUN_DATA_H
#define DTRAIN_REPORT_RUN_DATA_H

#include <stdint.h>

/* The numbers of a "step" line, by column. */
enum {
  DT_RS_LOSS,
  DT_RS_BPR,
  DT_RS_NEG_ENTROPY,
  DT_RS_BALANCE,
  DT_RS_ALPHA_S,
  DT_RS_ALPHA_D,
  DT_RS_ALPHA_C,
  DT_RS_LR,
  DT_RS_SPARSE_LR,
  DT_RS_GRAD_NORM,
  DT_RS_EXAMPLES,
  DT_RS_EXAMPLES_PER_SEC,
  DT_RS_TIME_S,
  DT_RS_PEAK_RSS_MB,
  DT_RS_COMM_DENSE,
  DT_RS_COMM_SPARSE,
  DT_RS_COMM_LOWER_BOUND,
  DT_RS_T_BATCH,
  DT_RS_T_FORWARD,
  DT_RS_T_BACKWARD,
  DT_RS_T_WAIT,
  DT_RS_T_DENSE_COMM,
  DT_RS_T_SPARSE_COMM,
  DT_RS_T_UPDATE,
  DT_RS_N
};
#define DT_RS_PHASES 7 /* DT_RS_T_BATCH .. DT_RS_T_UPDATE */

/* The numbers of an "epoch" line, by column. */
enum {
  DT_RE_LOSS,
  DT_RE_EXAMPLES_PER_SEC,
  DT_RE_EPOCH_TIME_S,
  DT_RE_ALPHA_S,
  DT_RE_ALPHA_D,
  DT_RE_ALPHA_C,
  DT_RE_LR,
  DT_RE_VALID_NDCG10,
  DT_RE_VALID_HR10,
  DT_RE_VALID_MRR,
  DT_RE_BEST_NDCG10,
  DT_RE_N
};

/* A column: its JSON path in a line ("time_ms.batch", "alpha_mean.0"), its
 * CSV header and its label in the report. */
typedef struct {
  const char *path, *csv, *label;
} dt_run_field;

const dt_run_field *dt_run_step_fields(void);  /* [DT_RS_N] */
const dt_run_field *dt_run_epoch_fields(void); /* [DT_RE_N] */

/* A table of lines: x (step) and epoch per row, one column per field. */
typedef struct {
  int64_t n, cap;
  double *step, *epoch;
  double *col[DT_RS_N]; /* DT_RS_N >= DT_RE_N */
} dt_run_table;

typedef struct {
  char *dir;               /* as given */
  char *label;             /* the name shown: run.name, made unique by the caller */
  struct cJSON *config;    /* config.json, NULL when absent or invalid */
  struct cJSON *test;      /* eval_test.json, else the last "test" line; NULL when neither */
  const char *test_source; /* "eval_test.json", "metrics.jsonl" or NULL */
  dt_run_table steps;      /* DT_RS_* columns */
  dt_run_table epochs;     /* DT_RE_* columns */
  int towers[3];           /* static, dynamic, content: 1 when the run has the tower */
  int tower_null[3];       /* a line or the test evaluation gave this tower's alpha as null: it is absent */
  int has_metrics;         /* metrics.jsonl exists */
  int finished;            /* a test evaluation exists */
  int64_t lines, skipped;  /* lines of metrics.jsonl read, lines skipped */
  int partial_last_line;   /* the file ends in a line without its newline */
  long long metrics_mtime; /* metrics.jsonl's modification time (unix seconds), 0 if absent */
  char **notes;            /* problems found, for the report */
  int n_notes;
} dt_run;

/* Reads the run directory `dir`. */
int dt_run_load(const char *dir, dt_run *run);
void dt_run_free(dt_run *run);

/* A config value as text: a string as is, anything else as compact JSON
 * ("0.001", "true", "null"); looked up by its dotted key ("model.variant").
 * NULL when absent; the caller frees. */
char *dt_run_config_text(const dt_run *run, const char *key);

#endif
