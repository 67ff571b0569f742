#include "dtrain/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/log.h"
#include "dtrain/timer.h"

void dt_format_duration(double seconds, char *out, int out_size) {
  if (seconds < 0 || seconds != seconds) {
    snprintf(out, (size_t)out_size, "?");
  } else if (seconds < 60) {
    snprintf(out, (size_t)out_size, "%.1fs", seconds);
  } else if (seconds < 3600) {
    int s = (int)seconds;
    snprintf(out, (size_t)out_size, "%dm%02ds", s / 60, s % 60);
  } else {
    int m = (int)(seconds / 60);
    snprintf(out, (size_t)out_size, "%dh%02dm", m / 60, m % 60);
  }
}

void dt_progress_begin(dt_progress *p, const char *label, int64_t total, const char *unit) {
  memset(p, 0, sizeof *p);
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->unit = unit ? unit : "items";
  p->start_s = dt_now_s();
  p->last_print_s = p->start_s;
  p->interval_s = 10.0;
  p->tty = isatty(STDERR_FILENO);
  p->enabled = dt_log_is_printing_rank() && dt_log_get_level() >= DT_LOG_INFO;
}

static void format_line(const dt_progress *p, int64_t done, const char *extra, double now, char *line, size_t n) {
  double elapsed = now - p->start_s;
  double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
  char eta[32] = "?", spent[32];
  dt_format_duration(elapsed, spent, sizeof spent);
  if (p->total > 0 && rate > 0) dt_format_duration((double)(p->total - done) / rate, eta, sizeof eta);
  if (p->total > 0)
    snprintf(line, n, "%s %lld/%lld (%.1f%%) %.0f %s/s elapsed %s ETA %s%s%s", p->label, (long long)done,
             (long long)p->total, 100.0 * (double)done / (double)p->total, rate, p->unit, spent, eta, extra ? " " : "",
             extra ? extra : "");
  else
    snprintf(line, n, "%s %lld %.0f %s/s elapsed %s%s%s", p->label, (long long)done, rate, p->unit, spent,
             extra ? " " : "", extra ? extra : "");
}

void dt_progress_update(dt_progress *p, int64_t done, const char *extra) {
  if (!p->enabled) return;
  double now = dt_now_s();
  char line[512];
  if (p->tty) {
    if (now - p->last_print_s < 0.2 && p->drawn) return;
    format_line(p, done, extra, now, line, sizeof line);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->drawn = 1;
    p->last_print_s = now;
  } else if (now - p->last_print_s >= p->interval_s) {
    format_line(p, done, extra, now, line, sizeof line);
    dt_log_info("%s", line);
    p->last_print_s = now;
  }
}

void dt_progress_end(dt_progress *p, int64_t done, const char *extra) {
  if (!p->enabled) return;
  char line[512];
  format_line(p, done, extra, dt_now_s(), line, sizeof line);
  if (p->tty && p->drawn) fprintf(stderr, "\r\033[K");
  p->drawn = 0;
  dt_log_info("%s", line);
}
