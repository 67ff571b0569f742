/* report_internal.h (internal to src/report): the parts of a report page.
 *
 * report.c loads the runs and writes the file; report_html.c writes the
 * page and its charts; report_tables.c the run summary, the test
 * evaluation and the configuration tables; report_csv.c the CSV. Each
 * appends to a dt_sbuf and reads the runs only.
 */
#ifndef DTRAIN_REPORT_INTERNAL_H
#define DTRAIN_REPORT_INTERNAL_H

#include "report/run_data.h"
#include "report/sbuf.h"

/* The generator tag that marks a file as a dtrain HTML report. */
#define DT_REPORT_GENERATOR "<meta name=\"generator\" content=\"dtrain report"
/* The first CSV header fields that mark a file as a dtrain CSV report. */
#define DT_REPORT_CSV_HEADER "run,dir,type,epoch,step,"

void dt_report_html(dt_sbuf *o, const dt_run *runs, int n);
void dt_report_table_runs(dt_sbuf *o, const dt_run *runs, int n);
void dt_report_table_test(dt_sbuf *o, const dt_run *runs, int n);
void dt_report_table_config(dt_sbuf *o, const dt_run *runs, int n);
void dt_report_csv(dt_sbuf *o, const dt_run *runs, int n);

/* A number for a table cell: %.4f, "–" when not finite. */
void dt_report_cell(dt_sbuf *o, double v, int decimals);

#endif
