/* report_html.c: the report page and its charts (report_internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtrain/build_info.h"
#include "report/report_internal.h"
#include "report/svg_chart.h"

static const char g_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1220px;padding:0 16px 40px;"
    "color:#1d1d1d;background:#fff;line-height:1.4}\n"
    "h1{font-size:1.6em;margin:24px 0 4px}h2{font-size:1.25em;margin:32px 0 8px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}h3{font-size:1.05em;margin:18px 0 6px}\n"
    "nav a{margin-right:14px}p.meta{color:#555;margin:0 0 8px}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.charts figure{margin:0;border:1px solid #e3e3e3;"
    "border-radius:4px;padding:4px}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    "table{border-collapse:collapse;margin:6px 0 12px;font-size:0.92em}th,td{border:1px solid #d8d8d8;"
    "padding:3px 8px;text-align:right;vertical-align:top}th{background:#f3f3f3}\n"
    "td.l,th.l{text-align:left}tr.pop td{color:#555}td.best{font-weight:700}\n"
    "ul.notes{color:#8a4b00;margin:4px 0}code{font-size:0.95em}\n"
    "details{margin:6px 0}details pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px}\n"
    "p.none{color:#666;font-style:italic}\n";

/* ---- chart helpers -------------------------------------------------------------------- */

static void figure(dt_sbuf *o, const dt_svg_chart *c, const dt_svg_series *s, int n) {
  dt_sbuf_puts(o, "<figure>\n");
  dt_svg_line_chart(o, c, s, n);
  dt_sbuf_puts(o, "</figure>\n");
}

/* One chart, one series per run: column `col` of the step (or epoch) table. */
static void runs_chart(dt_sbuf *o, const dt_run *runs, int n, const char *id, const char *title, const char *y_label,
                       int col, int epochs, dt_svg_format fmt, int from_zero) {
  dt_svg_series *s = dt_xcalloc((size_t)n, sizeof *s);
  for (int i = 0; i < n; i++) {
    const dt_run_table *t = epochs ? &runs[i].epochs : &runs[i].steps;
    s[i] = (dt_svg_series){runs[i].label, epochs ? t->epoch : t->step, t->col[col], t->n, i, i / 7};
  }
  dt_svg_chart c = {id, title, epochs ? "epoch" : "step", y_label, fmt, 0, 0, from_zero, epochs};
  figure(o, &c, s, n);
  free(s);
}

/* ---- sections ------------------------------------------------------------------------------ */

static void section_loss(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o,
               "<section id=\"loss\">\n<h2>Training loss</h2>\n"
               "<p>Per logged step (<code>run.log_every</code>): the loss and its parts, BPR plus the gate's "
               "regularisers (weighted by <code>model.lambda_ent</code>, <code>model.lambda_bal</code>).</p>\n"
               "<div class=\"charts\">\n");
  runs_chart(o, runs, n, "chart-loss", "Loss per step", "loss", DT_RS_LOSS, 0, DT_SVG_NUMBER, 0);
  runs_chart(o, runs, n, "chart-bpr", "BPR loss per step", "BPR", DT_RS_BPR, 0, DT_SVG_NUMBER, 0);
  runs_chart(o, runs, n, "chart-neg-entropy", "Negative gate entropy per step", "negative entropy", DT_RS_NEG_ENTROPY,
             0, DT_SVG_NUMBER, 0);
  runs_chart(o, runs, n, "chart-balance", "Gate balance term per step", "balance", DT_RS_BALANCE, 0, DT_SVG_NUMBER, 1);
  dt_sbuf_puts(o, "</div>\n</section>\n");
}

static void section_validation(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o,
               "<section id=\"validation\">\n<h2>Validation</h2>\n"
               "<p>Sampled protocol (1 held-out item + <code>eval.negatives</code>) on the validation split after "
               "each evaluated epoch.</p>\n<div class=\"charts\">\n");
  runs_chart(o, runs, n, "chart-valid-ndcg10", "Validation NDCG@10 per epoch", "NDCG@10", DT_RE_VALID_NDCG10, 1,
             DT_SVG_NUMBER, 0);
  runs_chart(o, runs, n, "chart-valid-hr10", "Validation HR@10 per epoch", "HR@10", DT_RE_VALID_HR10, 1, DT_SVG_NUMBER,
             0);
  dt_sbuf_puts(o, "</div>\n</section>\n");
}

static const char *const g_tower_names[3] = {"static", "dynamic", "content"};

static void section_alpha(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o,
               "<section id=\"alpha\">\n<h2>Gate weights</h2>\n"
               "<p>Mean alpha of each tower the run has, over the examples of each logged step.</p>\n"
               "<div class=\"charts\">\n");
  for (int i = 0; i < n; i++) {
    dt_svg_series s[3];
    int ns = 0;
    for (int k = 0; k < 3; k++)
      if (runs[i].towers[k])
        s[ns++] = (dt_svg_series){
            g_tower_names[k], runs[i].steps.step, runs[i].steps.col[DT_RS_ALPHA_S + k], runs[i].steps.n, k, 0};
    char id[32], title[300];
    snprintf(id, sizeof id, "chart-alpha-%d", i);
    snprintf(title, sizeof title, "Mean alpha per tower: %s", runs[i].label);
    dt_svg_chart c = {id, title, "step", "mean alpha", DT_SVG_NUMBER, 0, 0, 1, 0};
    figure(o, &c, s, ns);
  }
  dt_sbuf_puts(o, "</div>\n</section>\n");
}

static void section_speed(dt_sbuf *o, const dt_run *runs, int n) {
  const dt_run_field *fields = dt_run_step_fields();
  dt_sbuf_puts(o,
               "<section id=\"speed\">\n<h2>Speed</h2>\n"
               "<p>Training examples per second, and rank 0's time per step by phase (<code>wait</code>: "
               "waiting for the slowest rank), averaged over each logged interval.</p>\n<div class=\"charts\">\n");
  runs_chart(o, runs, n, "chart-examples-per-sec", "Examples per second", "examples/s", DT_RS_EXAMPLES_PER_SEC, 0,
             DT_SVG_NUMBER, 1);
  for (int i = 0; i < n; i++) {
    dt_svg_series s[DT_RS_PHASES];
    for (int k = 0; k < DT_RS_PHASES; k++)
      s[k] = (dt_svg_series){fields[DT_RS_T_BATCH + k].label,
                             runs[i].steps.step,
                             runs[i].steps.col[DT_RS_T_BATCH + k],
                             runs[i].steps.n,
                             k,
                             0};
    char id[32], title[300];
    snprintf(id, sizeof id, "chart-phases-%d", i);
    snprintf(title, sizeof title, "Time per step by phase: %s", runs[i].label);
    dt_svg_chart c = {id, title, "step", "ms per step", DT_SVG_NUMBER, 0, 0, 1, 0};
    figure(o, &c, s, DT_RS_PHASES);
  }
  dt_sbuf_puts(
      o,
      "</div>\n<h3>Mean time per step by phase (ms)</h3>\n<table id=\"table-phases\">\n<tr><th class=\"l\">run</th>");
  for (int k = 0; k < DT_RS_PHASES; k++) {
    dt_sbuf_puts(o, "<th>");
    dt_sbuf_html(o, fields[DT_RS_T_BATCH + k].label);
    dt_sbuf_puts(o, "</th>");
  }
  dt_sbuf_puts(o, "<th>total</th><th>examples/s</th></tr>\n");
  for (int i = 0; i < n; i++) {
    dt_sbuf_puts(o, "<tr><td class=\"l\">");
    dt_sbuf_html(o, runs[i].label);
    dt_sbuf_puts(o, "</td>");
    double total = 0;
    for (int k = 0; k <= DT_RS_PHASES; k++) {
      int col = k < DT_RS_PHASES ? DT_RS_T_BATCH + k : DT_RS_EXAMPLES_PER_SEC;
      double sum = 0;
      int64_t cnt = 0;
      for (int64_t j = 0; j < runs[i].steps.n; j++)
        if (isfinite(runs[i].steps.col[col][j])) sum += runs[i].steps.col[col][j], cnt++;
      double mean = cnt ? sum / (double)cnt : NAN;
      if (k < DT_RS_PHASES) total += cnt ? mean : 0;
      if (k == DT_RS_PHASES) {
        dt_sbuf_puts(o, "<td>");
        dt_report_cell(o, runs[i].steps.n ? total : NAN, 2);
        dt_sbuf_puts(o, "</td>");
      }
      dt_sbuf_puts(o, "<td>");
      dt_report_cell(o, mean, k < DT_RS_PHASES ? 2 : 0);
      dt_sbuf_puts(o, "</td>");
    }
    dt_sbuf_puts(o, "</tr>\n");
  }
  dt_sbuf_puts(o, "</table>\n</section>\n");
}

static void section_comm(dt_sbuf *o, const dt_run *runs, int n) {
  const dt_run_field *fields = dt_run_step_fields();
  dt_sbuf_puts(o,
               "<section id=\"comm\">\n<h2>Communication</h2>\n"
               "<p>Bytes rank 0 sent per step: the dense gradients and the sparse embedding rows, against the "
               "sparse lower bound (the unique rows a step touches). One process sends nothing.</p>\n"
               "<div class=\"charts\">\n");
  for (int i = 0; i < n; i++) {
    dt_svg_series s[3];
    for (int k = 0; k < 3; k++)
      s[k] = (dt_svg_series){fields[DT_RS_COMM_DENSE + k].label,
                             runs[i].steps.step,
                             runs[i].steps.col[DT_RS_COMM_DENSE + k],
                             runs[i].steps.n,
                             k,
                             k == 2 ? 1 : 0};
    char id[32], title[300];
    snprintf(id, sizeof id, "chart-comm-%d", i);
    snprintf(title, sizeof title, "Bytes sent per step: %s", runs[i].label);
    dt_svg_chart c = {id, title, "step", "bytes per step", DT_SVG_BYTES, 0, 0, 1, 0};
    figure(o, &c, s, 3);
  }
  dt_sbuf_puts(o, "</div>\n</section>\n");
}

void dt_report_html(dt_sbuf *o, const dt_run *runs, int n) {
  dt_sbuf_puts(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
  dt_sbuf_printf(o, "%s %s\">\n", DT_REPORT_GENERATOR, DTRAIN_VERSION);
  dt_sbuf_puts(o, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>dtrain report: ");
  for (int i = 0; i < n; i++) {
    if (i) dt_sbuf_puts(o, ", ");
    dt_sbuf_html(o, runs[i].label);
  }
  dt_sbuf_printf(o, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>dtrain run report</h1>\n", g_style);
  char when[64];
  time_t now = time(NULL);
  struct tm tmv;
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime_r(&now, &tmv));
  dt_sbuf_printf(o, "<p class=\"meta\">%d run%s, written %s by dtrain %s (git %s).</p>\n", n, n == 1 ? "" : "s", when,
                 DTRAIN_VERSION, DTRAIN_GIT_HASH);
  dt_sbuf_puts(o,
               "<nav><a href=\"#runs\">Runs</a><a href=\"#loss\">Loss</a><a href=\"#validation\">Validation</a>"
               "<a href=\"#alpha\">Gate weights</a><a href=\"#speed\">Speed</a><a href=\"#comm\">Communication</a>"
               "<a href=\"#test\">Test evaluation</a><a href=\"#config\">Configuration</a></nav>\n</header>\n<main>\n");
  dt_report_table_runs(o, runs, n);
  section_loss(o, runs, n);
  section_validation(o, runs, n);
  section_alpha(o, runs, n);
  section_speed(o, runs, n);
  section_comm(o, runs, n);
  dt_report_table_test(o, runs, n);
  dt_report_table_config(o, runs, n);
  dt_sbuf_puts(o,
               "</main>\n<footer><p class=\"meta\">Written by <code>dtrain report</code>; the same series as CSV: "
               "<code>dtrain report --csv</code>.</p></footer>\n</body>\n</html>\n");
}
