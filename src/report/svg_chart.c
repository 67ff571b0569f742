/* svg_chart.c: line charts as inline SVG (svg_chart.h). */
#include "report/svg_chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const g_palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
static const char *const g_dashes[] = {"", "7 4", "2 3", "8 3 2 3"};
enum { N_PALETTE = (int)(sizeof g_palette / sizeof g_palette[0]) };

const char *dt_svg_color(int i) { return g_palette[((i % N_PALETTE) + N_PALETTE) % N_PALETTE]; }

/* ---- numbers -------------------------------------------------------------------- */

void dt_svg_format_value(double v, double step, double largest, dt_svg_format f, char *out, int n) {
  if (!isfinite(v)) {
    snprintf(out, (size_t)n, "–");
    return;
  }
  if (step <= 0) step = fabs(v) > 0 ? pow(10, floor(log10(fabs(v))) - 2) : 1;
  if (f == DT_SVG_PERCENT) {
    v *= 100;
    step *= 100;
    largest *= 100;
  }
  static const char *const si[] = {"", "k", "M", "G", "T", "P"};
  static const char *const bytes[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int e = 0;
  double scale = 1;
  double big = fmax(largest > 0 ? largest : fabs(v), step);
  if (f != DT_SVG_PERCENT)
    while (e < 5 && big / scale >= (f == DT_SVG_BYTES ? 1000.0 : 10000.0)) scale *= 1000, e++;
  double vs = v / scale, ss = step / scale;
  if (fabs(vs) < ss * 1e-6) vs = 0; /* no "-0" from rounding */
  int dec = 0;                      /* the fewest decimals that show the step exactly */
  while (dec < 12 && fabs(ss * pow(10, dec) - round(ss * pow(10, dec))) > 1e-6 * ss * pow(10, dec)) dec++;
  const char *unit = f == DT_SVG_BYTES ? bytes[e] : si[e];
  const char *sep = f == DT_SVG_BYTES ? " " : "";
  if (dec > 4 && f != DT_SVG_BYTES) { /* tiny steps: significant digits */
    int sig = (int)ceil(log10(fmax(big / scale, ss) / ss)) + 1;
    snprintf(out, (size_t)n, "%.*g%s", sig < 2 ? 2 : sig > 10 ? 10 : sig, vs, unit);
  } else
    snprintf(out, (size_t)n, "%.*f%s%s%s", dec, vs, sep, unit, f == DT_SVG_PERCENT ? "%" : "");
}

/* A step of 1, 2 or 5 times a power of ten giving about `target` intervals. */
static double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  double raw = range / target, mag = pow(10, floor(log10(raw))), norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

typedef struct {
  double lo, hi, step;
} axis;

/* The axis over [lo, hi]: widened when flat, rounded out to whole steps. */
static axis make_axis(double lo, double hi, int target, int integer) {
  if (hi - lo <= fabs(hi) * 1e-12) {
    double pad = fabs(hi) > 0 ? fabs(hi) * 0.05 : 1;
    lo -= pad, hi += pad;
  }
  axis a;
  a.step = nice_step(hi - lo, target);
  if (integer && a.step < 1) a.step = 1;
  a.lo = floor(lo / a.step + 1e-9) * a.step;
  a.hi = ceil(hi / a.step - 1e-9) * a.step;
  if (a.hi <= a.lo) a.hi = a.lo + a.step;
  return a;
}

/* ---- layout --------------------------------------------------------------------- */

typedef struct {
  double x0, x1, y0, y1; /* plot area: left, right, top, bottom */
  axis ax, ay;
} frame;

static double px(const frame *f, double x) { return f->x0 + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->x1 - f->x0); }
static double py(const frame *f, double y) { return f->y1 - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->y1 - f->y0); }

static double text_width(const char *s) { return 6.6 * (double)strlen(s); }

typedef struct {
  double x, y;
} legend_pos;

/* Places legend entries in rows below the plot; returns the rows used. */
static int legend_layout(const dt_svg_series *s, int n, double left, double right, double top, legend_pos *pos) {
  double x = left, y = top;
  int rows = n > 0 ? 1 : 0;
  for (int i = 0; i < n; i++) {
    double w = 30 + text_width(s[i].name ? s[i].name : "") + 16;
    if (x > left && x + w > right) {
      x = left;
      y += 18;
      rows++;
    }
    pos[i].x = x;
    pos[i].y = y;
    x += w;
  }
  return rows;
}

/* ---- drawing -------------------------------------------------------------------- */

/* Tick i of an axis (0 .. ticks(a)-1). */
static int ticks(const axis *a) { return (int)floor((a->hi - a->lo) / a->step + 1e-6) + 1; }
static double tick(const axis *a, int i) { return a->lo + i * a->step; }

static void draw_axes(dt_sbuf *o, const dt_svg_chart *c, const frame *f) {
  char lab[48];
  double t;
  dt_sbuf_puts(o, "<g class=\"axes\" stroke=\"#d0d0d0\" stroke-width=\"1\">\n");
  for (int i = 0; i < ticks(&f->ay); i++) {
    t = py(f, tick(&f->ay, i));
    dt_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", f->x0, t, f->x1, t);
  }
  for (int i = 0; i < ticks(&f->ax); i++) {
    t = px(f, tick(&f->ax, i));
    dt_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", t, f->y0, t, f->y1);
  }
  dt_sbuf_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#808080\"/>\n",
                 f->x0, f->y0, f->x1 - f->x0, f->y1 - f->y0);
  dt_sbuf_puts(o, "</g>\n<g class=\"ticks\" fill=\"#333333\">\n");
  for (int i = 0; i < ticks(&f->ay); i++) {
    t = tick(&f->ay, i);
    dt_svg_format_value(t, f->ay.step, fmax(fabs(f->ay.lo), fabs(f->ay.hi)), c->y_format, lab, sizeof lab);
    dt_sbuf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\">", f->x0 - 6,
                   py(f, t));
    dt_sbuf_html(o, lab);
    dt_sbuf_puts(o, "</text>\n");
  }
  for (int i = 0; i < ticks(&f->ax); i++) {
    t = tick(&f->ax, i);
    dt_svg_format_value(t, f->ax.step, fmax(fabs(f->ax.lo), fabs(f->ax.hi)), DT_SVG_NUMBER, lab, sizeof lab);
    dt_sbuf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px(f, t), f->y1 + 16);
    dt_sbuf_html(o, lab);
    dt_sbuf_puts(o, "</text>\n");
  }
  dt_sbuf_puts(o, "</g>\n");
  if (c->x_label) {
    dt_sbuf_printf(o, "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (f->x0 + f->x1) / 2,
                   f->y1 + 34);
    dt_sbuf_html(o, c->x_label);
    dt_sbuf_puts(o, "</text>\n");
  }
  if (c->y_label) {
    double cy = (f->y0 + f->y1) / 2;
    dt_sbuf_printf(o,
                   "<text class=\"axis-label\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" "
                   "transform=\"rotate(-90 14 %.1f)\">",
                   cy, cy);
    dt_sbuf_html(o, c->y_label);
    dt_sbuf_puts(o, "</text>\n");
  }
}

/* One column's extremes, emitted in the order they occurred. */
typedef struct {
  int64_t col, first, lo, hi, last;
  int open;
} column;

static void emit_point(dt_sbuf *o, const frame *f, const dt_svg_series *s, int64_t i, int *pen_down) {
  dt_sbuf_printf(o, "%c%.1f %.1f", *pen_down ? 'L' : 'M', px(f, s->x[i]), py(f, s->y[i]));
  *pen_down = 1;
}

static void flush_column(dt_sbuf *o, const frame *f, const dt_svg_series *s, column *c, int *pen_down) {
  if (!c->open) return;
  int64_t idx[4] = {c->first, c->lo < c->hi ? c->lo : c->hi, c->lo < c->hi ? c->hi : c->lo, c->last};
  int64_t prev = -1;
  for (int k = 0; k < 4; k++)
    if (idx[k] != prev && idx[k] > prev) {
      emit_point(o, f, s, idx[k], pen_down);
      prev = idx[k];
    }
  c->open = 0;
}

/* A point to draw: finite, and within a range the axis arithmetic handles. */
static int finite_point(const dt_svg_series *s, int64_t i) {
  return isfinite(s->x[i]) && isfinite(s->y[i]) && fabs(s->x[i]) < 1e100 && fabs(s->y[i]) < 1e100;
}

static void draw_series(dt_sbuf *o, const frame *f, const dt_svg_series *s, int k) {
  const char *dash = g_dashes[s->dash % 4];
  dt_sbuf_printf(o, "<path class=\"series\" data-series=\"");
  dt_sbuf_html(o, s->name ? s->name : "");
  dt_sbuf_printf(o, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" stroke-linejoin=\"round\"%s%s%s d=\"",
                 dt_svg_color(s->color), dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
  int pen_down = 0;
  int64_t finite = 0;
  column col = {0};
  const int thin = s->n > 4 * (int64_t)(f->x1 - f->x0);
  for (int64_t i = 0; i < s->n; i++) {
    if (!finite_point(s, i)) {
      flush_column(o, f, s, &col, &pen_down);
      pen_down = 0;
      continue;
    }
    finite++;
    if (!thin) {
      emit_point(o, f, s, i, &pen_down);
      continue;
    }
    int64_t cx = (int64_t)floor(px(f, s->x[i]));
    if (col.open && cx != col.col) flush_column(o, f, s, &col, &pen_down);
    if (!col.open) {
      col = (column){cx, i, i, i, i, 1};
    } else {
      if (s->y[i] < s->y[col.lo]) col.lo = i;
      if (s->y[i] > s->y[col.hi]) col.hi = i;
      col.last = i;
    }
  }
  flush_column(o, f, s, &col, &pen_down);
  dt_sbuf_puts(o, "\"/>\n");
  if (finite > 0 && finite <= 40) {
    dt_sbuf_printf(o, "<g class=\"points\" fill=\"%s\">", dt_svg_color(s->color));
    for (int64_t i = 0; i < s->n; i++)
      if (finite_point(s, i))
        dt_sbuf_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", px(f, s->x[i]), py(f, s->y[i]));
    dt_sbuf_puts(o, "</g>\n");
  }
  (void)k;
}

static void draw_legend(dt_sbuf *o, const dt_svg_series *s, int n, const legend_pos *pos) {
  dt_sbuf_puts(o, "<g class=\"legend\">\n");
  for (int i = 0; i < n; i++) {
    const char *dash = g_dashes[s[i].dash % 4];
    dt_sbuf_printf(o,
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s%s%s/>",
                   pos[i].x, pos[i].y, pos[i].x + 24, pos[i].y, dt_svg_color(s[i].color),
                   dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
    dt_sbuf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">", pos[i].x + 30, pos[i].y);
    dt_sbuf_html(o, s[i].name ? s[i].name : "");
    dt_sbuf_puts(o, "</text>\n");
  }
  dt_sbuf_puts(o, "</g>\n");
}

/* <desc>: what is plotted and where each series ends. */
static void write_desc(dt_sbuf *o, const dt_svg_chart *c, const dt_svg_series *s, int n) {
  dt_sbuf_puts(o, "Line chart of ");
  dt_sbuf_html(o, c->y_label ? c->y_label : "values");
  dt_sbuf_puts(o, " against ");
  dt_sbuf_html(o, c->x_label ? c->x_label : "x");
  dt_sbuf_puts(o, ".");
  for (int i = 0; i < n; i++) {
    int64_t last = -1;
    for (int64_t j = 0; j < s[i].n; j++)
      if (finite_point(&s[i], j)) last = j;
    dt_sbuf_puts(o, " ");
    dt_sbuf_html(o, s[i].name ? s[i].name : "");
    if (last < 0) {
      dt_sbuf_puts(o, ": no values.");
      continue;
    }
    char v[48], x[48];
    dt_svg_format_value(s[i].y[last], 0, 0, c->y_format, v, sizeof v);
    dt_svg_format_value(s[i].x[last], 1, 0, DT_SVG_NUMBER, x, sizeof x);
    dt_sbuf_printf(o, ": last %s at %s.", v, x);
  }
}

void dt_svg_line_chart(dt_sbuf *o, const dt_svg_chart *c, const dt_svg_series *s, int n_series) {
  const int W = c->width > 0 ? c->width : 560, H = c->height > 0 ? c->height : 300;
  frame f;
  f.x0 = 70, f.x1 = W - 16, f.y0 = 30, f.y1 = H - 42;
  legend_pos *pos = dt_xcalloc((size_t)(n_series > 0 ? n_series : 1), sizeof *pos);
  int rows = legend_layout(s, n_series, f.x0, f.x1, H + 2, pos);
  const int total_h = H + rows * 18 + 6;

  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int k = 0; k < n_series; k++)
    for (int64_t i = 0; i < s[k].n; i++)
      if (finite_point(&s[k], i)) {
        xlo = fmin(xlo, s[k].x[i]), xhi = fmax(xhi, s[k].x[i]);
        ylo = fmin(ylo, s[k].y[i]), yhi = fmax(yhi, s[k].y[i]);
      }
  const int empty = !(xlo <= xhi);
  if (empty) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (c->y_from_zero) ylo = fmin(ylo, 0), yhi = fmax(yhi, 0);
  f.ax = make_axis(xlo, xhi, (int)((f.x1 - f.x0) / 90), c->x_integer);
  f.ay = make_axis(ylo, yhi, 5, 0);

  dt_sbuf_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart%s\" id=\"", empty ? " no-data" : "");
  dt_sbuf_html(o, c->id);
  dt_sbuf_printf(o, "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-labelledby=\"", W, total_h,
                 W, total_h);
  dt_sbuf_html(o, c->id);
  dt_sbuf_puts(o, "-title ");
  dt_sbuf_html(o, c->id);
  dt_sbuf_puts(
      o, "-desc\" font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" font-size=\"12\">\n<title id=\"");
  dt_sbuf_html(o, c->id);
  dt_sbuf_puts(o, "-title\">");
  dt_sbuf_html(o, c->title ? c->title : "");
  dt_sbuf_puts(o, "</title>\n<desc id=\"");
  dt_sbuf_html(o, c->id);
  dt_sbuf_puts(o, "-desc\">");
  write_desc(o, c, s, n_series);
  dt_sbuf_printf(o, "</desc>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, total_h);
  dt_sbuf_printf(o, "<text class=\"chart-title\" x=\"%.1f\" y=\"18\" font-size=\"14\" font-weight=\"600\">", f.x0);
  dt_sbuf_html(o, c->title ? c->title : "");
  dt_sbuf_puts(o, "</text>\n");
  draw_axes(o, c, &f);
  if (empty) {
    dt_sbuf_printf(
        o, "<text class=\"no-data\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#666666\">no data</text>\n",
        (f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2);
  } else {
    dt_sbuf_printf(o, "<g class=\"plot\">\n");
    for (int k = 0; k < n_series; k++) draw_series(o, &f, &s[k], k);
    dt_sbuf_puts(o, "</g>\n");
  }
  draw_legend(o, s, n_series, pos);
  dt_sbuf_puts(o, "</svg>\n");
  free(pos);
}
