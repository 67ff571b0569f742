/* svg_chart.h (internal to src/report): line charts as inline SVG.
 *
 * One call draws a complete <svg> element: a frame, "nice" ticks (1, 2 or 5
 * times a power of ten) with grid lines and labels on both axes, axis
 * labels, one polyline per series (a NaN y breaks the line; dots mark the
 * points of short series), a legend, and for screen readers role="img" with
 * <title> and <desc> (the chart's title and each series' last value). Ids
 * are derived from `id`, which must be unique in the page. No scripts, no
 * external resources: the element stands alone.
 *
 * Series with many points are thinned to the extremes of each pixel column,
 * so spikes survive and the file stays small.
 */
#ifndef DTRAIN_REPORT_SVG_CHART_H
#define DTRAIN_REPORT_SVG_CHART_H

#include <stdint.h>

#include "report/sbuf.h"

typedef enum { DT_SVG_NUMBER = 0, DT_SVG_BYTES, DT_SVG_PERCENT } dt_svg_format;

typedef struct {
  const char *name;    /* legend entry */
  const double *x, *y; /* n points, x ascending; y NaN = gap */
  int64_t n;
  int color; /* palette index (wraps) */
  int dash;  /* 0 solid, 1 dashed, 2 dotted, 3 dash-dot */
} dt_svg_series;

typedef struct {
  const char *id;    /* element id; "<id>-title" and "<id>-desc" are used too */
  const char *title; /* drawn at the top and the <title> */
  const char *x_label, *y_label;
  dt_svg_format y_format;
  int width, height; /* of the plot with its axes (0 = 560 x 300); the legend adds rows */
  int y_from_zero;   /* the y range includes 0 */
  int x_integer;     /* x ticks at whole numbers only (epochs) */
} dt_svg_chart;

/* Appends the chart to `out`. */
void dt_svg_line_chart(dt_sbuf *out, const dt_svg_chart *c, const dt_svg_series *s, int n_series);

/* The palette (colour-blind safe, Okabe & Ito): colour i as "#rrggbb". */
const char *dt_svg_color(int i);
/* A value as a short label ("0.123", "12.5k", "3.1 MB"). `step` is the
 * resolution it needs (0 = about three significant digits); `largest` the
 * largest magnitude shown alongside it, which picks the unit (k, M, kB, ...)
 * so an axis labels every tick in one unit (0 = |v|). */
void dt_svg_format_value(double v, double step, double largest, dt_svg_format f, char *out, int n);

#endif
