/* report.c: loads the runs and writes the report file (report.h). */
#include "dtrain/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "report/report_internal.h"

int dt_report_is_report_file(const char *path, int csv) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char head[4097];
  size_t n = fread(head, 1, sizeof head - 1, f);
  fclose(f);
  head[n] = '\0';
  if (csv) return strncmp(head, DT_REPORT_CSV_HEADER, strlen(DT_REPORT_CSV_HEADER)) == 0;
  return strstr(head, DT_REPORT_GENERATOR) != NULL;
}

/* Labels must tell the runs apart: a repeated one gets its directory. */
static void unique_labels(dt_run *runs, int n) {
  for (int i = 0; i < n; i++) {
    int dup = 0;
    for (int j = 0; j < n; j++) dup |= j != i && !strcmp(runs[i].label, runs[j].label);
    if (!dup) continue;
    size_t len = strlen(runs[i].label) + strlen(runs[i].dir) + 4;
    char *l = dt_xmalloc(len);
    snprintf(l, len, "%s (%s)", runs[i].label, runs[i].dir);
    free(runs[i].label);
    runs[i].label = l;
  }
}

/* Refuses to replace a file dtrain did not write, unless forced. */
static int check_target(const char *path, int csv, int force) {
  struct stat st;
  if (stat(path, &st) != 0)
    return errno == ENOENT ? DT_OK : dt_fail(DT_EXIT_DATA, "report: %s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return dt_fail(DT_EXIT_DATA, "report: %s is a directory; give a file name with -o (e.g. -o %s/report.%s)", path,
                   path, csv ? "csv" : "html");
  if (force || dt_report_is_report_file(path, csv)) return DT_OK;
  return dt_fail(DT_EXIT_DATA,
                 "report: %s exists and is not a dtrain %s report; not replacing it (choose another -o, or add "
                 "--force to replace it)",
                 path, csv ? "CSV" : "HTML");
}

int dt_report_write(const dt_report_options *opts, char **written) {
  if (written) *written = NULL;
  if (opts->n_runs < 1) return dt_fail(DT_EXIT_USAGE, "report: name at least one run directory");
  dt_run *runs = dt_xcalloc((size_t)opts->n_runs, sizeof *runs);
  int rc = DT_OK, loaded = 0;
  for (; loaded < opts->n_runs; loaded++)
    if ((rc = dt_run_load(opts->run_dirs[loaded], &runs[loaded])) != DT_OK) goto out;
  unique_labels(runs, opts->n_runs);
  dt_sbuf page = {0};
  if (opts->csv)
    dt_report_csv(&page, runs, opts->n_runs);
  else
    dt_report_html(&page, runs, opts->n_runs);
  char *path = NULL;
  if (opts->output && strcmp(opts->output, "-") != 0)
    path = dt_xstrdup(opts->output);
  else if (!opts->output && !opts->csv)
    path = opts->n_runs == 1 ? dt_path_join(opts->run_dirs[0], "report.html") : dt_xstrdup("report.html");
  if (!path) { /* stdout */
    if (fwrite(page.s, 1, page.len, stdout) != page.len || fflush(stdout) != 0)
      rc = dt_fail(DT_EXIT_RUNTIME, "report: cannot write to stdout: %s", strerror(errno));
  } else {
    rc = check_target(path, opts->csv, opts->force);
    if (rc == DT_OK) rc = dt_write_file_atomic(path, page.s, page.len);
    if (rc == DT_OK && written)
      *written = path;
    else
      free(path);
  }
  dt_sbuf_free(&page);
out:
  for (int i = 0; i < loaded; i++) dt_run_free(&runs[i]);
  free(runs);
  return rc;
}
