/* report_csv.c: the per-step and per-epoch series of every run as one CSV
 * table (report_internal.h). One row per step or epoch line; the columns
 * of the other kind are empty, so a spreadsheet filter on `type` gives
 * either table. */
#include <math.h>
#include <stdio.h>

#include "report/report_internal.h"

static void cell(dt_sbuf *o, double v) {
  dt_sbuf_put(o, ",", 1);
  if (isfinite(v)) dt_sbuf_printf(o, "%.10g", v);
}

void dt_report_csv(dt_sbuf *o, const dt_run *runs, int n) {
  const dt_run_field *sf = dt_run_step_fields(), *ef = dt_run_epoch_fields();
  dt_sbuf_puts(o, DT_REPORT_CSV_HEADER);
  for (int c = 0; c < DT_RS_N; c++) dt_sbuf_printf(o, "%s%s", c ? "," : "", sf[c].csv);
  for (int c = 0; c < DT_RE_N; c++) dt_sbuf_printf(o, ",%s", ef[c].csv);
  dt_sbuf_puts(o, "\n");
  for (int i = 0; i < n; i++) {
    for (int kind = 0; kind < 2; kind++) {
      const dt_run_table *t = kind == 0 ? &runs[i].steps : &runs[i].epochs;
      for (int64_t j = 0; j < t->n; j++) {
        dt_sbuf_csv(o, runs[i].label);
        dt_sbuf_put(o, ",", 1);
        dt_sbuf_csv(o, runs[i].dir);
        dt_sbuf_puts(o, kind == 0 ? ",step" : ",epoch");
        cell(o, t->epoch[j]);
        cell(o, t->step[j]);
        for (int c = 0; c < DT_RS_N; c++) cell(o, kind == 0 ? t->col[c][j] : NAN);
        for (int c = 0; c < DT_RE_N; c++) cell(o, kind == 1 ? t->col[c][j] : NAN);
        dt_sbuf_puts(o, "\n");
      }
    }
  }
}
