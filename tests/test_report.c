/* The run report: the SVG chart helper (ticks and units, gaps, thinning,
 * the accessible title, an empty chart), reading run directories leniently
 * (resumed runs, bad and half-written lines, missing files, towers of
 * other variants) and the rule that a file dtrain did not write is not
 * replaced without --force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/report.h"
#include "report/run_data.h"
#include "report/svg_chart.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char g_dir[256];

static int setup_dir(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/dtrain_test_report_XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  dt_log_set_level(DT_LOG_ERROR);
  return 0;
}

static int teardown_dir(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static char *path_in(const char *name) {
  static char p[512];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  return p;
}

static void write_text(const char *name, const char *text) {
  FILE *f = fopen(path_in(name), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* ---- the chart helper ----------------------------------------------------------- */

static void values_are_labelled_in_one_unit(void **state) {
  char b[64];
  dt_svg_format_value(0.25, 0.05, 0, DT_SVG_NUMBER, b, sizeof b);
  assert_string_equal(b, "0.25");
  dt_svg_format_value(5000, 5000, 15000, DT_SVG_NUMBER, b, sizeof b); /* the axis' unit, not its own */
  assert_string_equal(b, "5k");
  dt_svg_format_value(12500, 2500, 15000, DT_SVG_NUMBER, b, sizeof b);
  assert_string_equal(b, "12.5k");
  dt_svg_format_value(2500000, 500000, 0, DT_SVG_BYTES, b, sizeof b);
  assert_string_equal(b, "2.5 MB");
  dt_svg_format_value(0, 0.0005, 0.002, DT_SVG_NUMBER, b, sizeof b);
  assert_string_equal(b, "0.0000");
  dt_svg_format_value(4e-8, 2e-8, 1e-7, DT_SVG_NUMBER, b, sizeof b); /* tiny steps: significant digits */
  assert_string_equal(b, "4e-08");
  dt_svg_format_value(NAN, 0, 0, DT_SVG_NUMBER, b, sizeof b);
  assert_string_equal(b, "–");
}

static void chart_has_title_axes_legend_and_breaks_at_nan(void **state) {
  double x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0.5, 0.4, NAN, 0.3, 0.25, 0.2}, y2[6] = {0.6, 0.5, 0.45, 0.4, 0.35, 0.3};
  dt_svg_series s[2] = {{"run <a>", x, y, 6, 0, 0}, {"run b", x, y2, 6, 1, 1}};
  dt_svg_chart c = {"chart-t", "Loss & more", "step", "loss", DT_SVG_NUMBER, 0, 0, 0, 0};
  dt_sbuf o = {0};
  dt_svg_line_chart(&o, &c, s, 2);
  assert_non_null(strstr(o.s, "<title id=\"chart-t-title\">Loss &amp; more</title>"));
  assert_non_null(strstr(o.s, "aria-labelledby=\"chart-t-title chart-t-desc\""));
  assert_non_null(strstr(o.s, "role=\"img\""));
  assert_non_null(strstr(o.s, "data-series=\"run &lt;a&gt;\"")); /* names are escaped */
  assert_int_equal(count(o.s, "class=\"series\""), 2);
  /* the NaN splits the first line in two: two moves; the second is one line */
  const char *d = strstr(strstr(o.s, "data-series=\"run &lt;a&gt;\""), " d=\"");
  assert_non_null(d);
  const char *end = strchr(d + 4, '"');
  int moves = 0;
  for (const char *p = d + 4; p < end; p++) moves += *p == 'M';
  assert_int_equal(moves, 2);
  assert_non_null(strstr(o.s, "stroke-dasharray")); /* the second series is dashed */
  assert_int_equal(count(o.s, "<g class=\"legend\">"), 1);
  assert_non_null(strstr(o.s, "run b: last 0.300 at 6."));
  assert_null(strstr(o.s, "no-data"));
  assert_null(strstr(o.s, "nan "));
  assert_null(strstr(o.s, "nan\""));
  assert_null(strstr(o.s, "NaN"));
  dt_sbuf_free(&o);
}

static void long_series_are_thinned_keeping_spikes(void **state) {
  enum { N = 200000 };
  double *x = malloc(sizeof(double) * N), *y = malloc(sizeof(double) * N);
  for (int i = 0; i < N; i++) x[i] = i, y[i] = 1.0 + 0.001 * (i % 7);
  y[123457] = 50; /* one spike */
  dt_svg_series s = {"long", x, y, N, 0, 0};
  dt_svg_chart c = {"chart-long", "long", "step", "loss", DT_SVG_NUMBER, 0, 0, 0, 0};
  dt_sbuf o = {0};
  dt_svg_line_chart(&o, &c, &s, 1);
  assert_true(o.len < 60000); /* about four points per pixel column, not 200k */
  /* the spike is the top of the y axis (50) and is drawn there (y = 30.0) */
  assert_non_null(strstr(o.s, ">50</text>"));
  assert_non_null(strstr(o.s, " 30.0"));
  dt_sbuf_free(&o);
  free(x);
  free(y);
}

static void empty_chart_says_no_data(void **state) {
  dt_svg_chart c = {"chart-e", "Nothing", "epoch", "NDCG@10", DT_SVG_NUMBER, 0, 0, 0, 1};
  double x[1] = {1}, y[1] = {NAN};
  dt_svg_series s = {"r", x, y, 1, 0, 0};
  dt_sbuf o = {0};
  dt_svg_line_chart(&o, &c, &s, 1);
  assert_non_null(strstr(o.s, "class=\"chart no-data\""));
  assert_non_null(strstr(o.s, ">no data</text>"));
  assert_non_null(strstr(o.s, "r: no values."));
  dt_sbuf_free(&o);
}

/* ---- reading run directories ---------------------------------------------------------- */

#define STEP(s, loss) "{\"type\":\"step\",\"epoch\":1,\"step\":" #s ",\"loss\":" #loss ",\"alpha_mean\":[0.5,0.5,0]}\n"

static void resumed_run_keeps_the_last_line_of_each_step(void **state) {
  write_text("config.json", "{\"run\":{\"name\":\"r1\"},\"model\":{\"version\":\"v3\",\"variant\":\"full\"}}");
  /* steps 1..3, then a resume from step 1 re-runs 2..3 and goes on to 4 */
  write_text("metrics.jsonl",
             STEP(1, 0.9) STEP(2, 0.8)
                 STEP(3, 0.7) "{\"type\":\"epoch\",\"epoch\":1,\"step\":3,\"valid\":{\"ndcg@10\":0.1}}\n" STEP(2, 0.81)
                     STEP(3, 0.71) STEP(4, 0.6));
  dt_run r;
  assert_int_equal(dt_run_load(g_dir, &r), DT_OK);
  assert_string_equal(r.label, "r1");
  assert_int_equal(r.steps.n, 4);
  assert_true(r.steps.step[1] == 2 && r.steps.col[DT_RS_LOSS][1] == 0.81);
  assert_true(r.steps.step[3] == 4 && r.steps.col[DT_RS_LOSS][3] == 0.6);
  assert_int_equal(r.epochs.n, 1);
  assert_true(r.epochs.col[DT_RE_VALID_NDCG10][0] == 0.1);
  assert_true(isnan(r.steps.col[DT_RS_BPR][0])); /* a missing field is NaN */
  /* the content weight is 0 in every line: the run has no content tower */
  assert_int_equal(r.towers[0], 1);
  assert_int_equal(r.towers[1], 1);
  assert_int_equal(r.towers[2], 0);
  assert_false(r.finished);
  assert_int_equal(r.skipped, 0);
  dt_run_free(&r);
}

static void bad_lines_are_skipped_and_named(void **state) {
  write_text("metrics.jsonl", STEP(1, 0.9) "{not json\n" "[1,2]\n" "{\"step\":3}\n" STEP(2, 0.8)
             "{\"type\":\"step\",\"step\":3} trailing\n" "{\"type\":\"step\",\"step\":4,\"lo");
  dt_run r;
  assert_int_equal(dt_run_load(g_dir, &r), DT_OK);
  assert_int_equal(r.steps.n, 2);
  assert_int_equal(r.skipped, 4);
  assert_int_equal(r.partial_last_line, 1);
  int named = 0;
  for (int i = 0; i < r.n_notes; i++) named += strstr(r.notes[i], "metrics.jsonl:2: invalid JSON") != NULL;
  assert_int_equal(named, 1);
  int partial = 0;
  for (int i = 0; i < r.n_notes; i++)
    partial += strstr(r.notes[i], "metrics.jsonl:7: the last line is incomplete") != NULL;
  assert_int_equal(partial, 1);
  /* no config.json: the label is the directory's name, and that is noted */
  assert_string_equal(r.label, strrchr(g_dir, '/') + 1);
  dt_run_free(&r);
}

static void variants_decide_the_towers(void **state) {
  write_text("config.json", "{\"model\":{\"variant\":\"static_only\"}}");
  write_text("eval_test.json", "{\"split\":\"test\",\"sampled\":{\"ndcg@10\":0.2},\"alpha_mean\":[1,0,0]}");
  dt_run r;
  assert_int_equal(dt_run_load(g_dir, &r), DT_OK);
  assert_true(r.towers[0] && !r.towers[1] && !r.towers[2]);
  assert_true(r.finished);
  assert_string_equal(r.test_source, "eval_test.json");
  assert_int_equal(r.has_metrics, 0);
  dt_run_free(&r);
}

static void missing_or_empty_directories_fail(void **state) {
  dt_run r;
  assert_int_equal(dt_run_load(path_in("absent"), &r), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "absent"));
  assert_int_equal(mkdir(path_in("empty"), 0755), 0);
  assert_int_equal(dt_run_load(path_in("empty"), &r), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "not a dtrain run directory"));
}

/* ---- writing --------------------------------------------------------------------------- */

static void a_file_dtrain_did_not_write_is_not_replaced(void **state) {
  write_text("metrics.jsonl", STEP(1, 0.9) STEP(2, 0.8));
  write_text("mine.html", "<html>my notes</html>");
  const char *dirs[1] = {g_dir};
  dt_report_options o = {dirs, 1, path_in("mine.html"), 0, 0};
  assert_int_equal(dt_report_write(&o, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "--force"));
  assert_false(dt_report_is_report_file(path_in("mine.html"), 0));
  /* the default name in the run directory, then writing over its own report */
  o.output = NULL;
  char *written = NULL;
  assert_int_equal(dt_report_write(&o, &written), DT_OK);
  assert_string_equal(written, path_in("report.html"));
  free(written);
  assert_true(dt_report_is_report_file(path_in("report.html"), 0));
  assert_int_equal(dt_report_write(&o, NULL), DT_OK);
  /* a CSV is not an HTML report and the other way round */
  o.output = path_in("report.html");
  o.csv = 1;
  assert_int_equal(dt_report_write(&o, NULL), DT_EXIT_DATA);
  o.output = path_in("series.csv");
  assert_int_equal(dt_report_write(&o, NULL), DT_OK);
  assert_true(dt_report_is_report_file(path_in("series.csv"), 1));
  /* --force replaces anything */
  o.csv = 0;
  o.output = path_in("mine.html");
  o.force = 1;
  assert_int_equal(dt_report_write(&o, NULL), DT_OK);
  assert_true(dt_report_is_report_file(path_in("mine.html"), 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(values_are_labelled_in_one_unit),
      cmocka_unit_test(chart_has_title_axes_legend_and_breaks_at_nan),
      cmocka_unit_test(long_series_are_thinned_keeping_spikes),
      cmocka_unit_test(empty_chart_says_no_data),
      cmocka_unit_test_setup_teardown(resumed_run_keeps_the_last_line_of_each_step, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(bad_lines_are_skipped_and_named, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(variants_decide_the_towers, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(missing_or_empty_directories_fail, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(a_file_dtrain_did_not_write_is_not_replaced, setup_dir, teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
