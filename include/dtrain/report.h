/* report.h: a run report comparing training runs, as one HTML file or CSV.
 *
 * The HTML report is one self-contained file (inline CSS and SVG charts
 * drawn here; no script, no font, nothing fetched): per run and compared
 * across runs, the training loss and its parts per step, validation
 * NDCG@10 and HR@10 per epoch, the mean gate weight (alpha) of each tower
 * the run has, examples/s and the time per step by phase, communication
 * bytes per step against the sparse lower bound, the test evaluation
 * tables (sampled, full ranking, popularity, cold-start buckets with alpha)
 * and the configuration keys that differ between the runs (from the schema
 * defaults, for one run). The CSV holds the per-step and per-epoch series
 * of every run, one row per line of metrics.jsonl.
 *
 * Inputs are run directories as training writes them (README "Training"):
 * config.json, metrics.jsonl, eval_test.json, any of which may be missing;
 * a run still in progress is reported as far as it got. Lines of
 * metrics.jsonl that are not valid JSON are skipped, each named as
 * FILE:LINE in a warning and in the report; a directory that is missing or
 * holds none of the three files fails with DT_EXIT_DATA.
 *
 * Overwriting: the output is written atomically, and an existing file is
 * replaced only when it is a dtrain report of the same kind (or `force`);
 * anything else fails with DT_EXIT_DATA naming --force.
 */
#ifndef DTRAIN_REPORT_H
#define DTRAIN_REPORT_H

typedef struct {
  const char *const *run_dirs; /* n_runs >= 1 run directories */
  int n_runs;
  const char *output; /* NULL: HTML to <run dir>/report.html for one run, ./report.html for
                         several; CSV to stdout */
  int csv;            /* write the series as CSV instead of the HTML report */
  int force;          /* replace an existing file that is not a dtrain report */
} dt_report_options;

/* Writes the report. *written (may be NULL) gets the path written, or NULL
 * for stdout; the caller frees it. */
int dt_report_write(const dt_report_options *opts, char **written);

/* Whether `path` is a file dtrain's report wrote (HTML: the generator tag
 * near its start; CSV: its header line). */
int dt_report_is_report_file(const char *path, int csv);

#endif
