/* progress.h: a progress line for long work (done/total, rate, ETA).
 *
 * On a terminal the line redraws in place; when stderr is not a terminal it
 * prints a plain line every `interval_s` seconds (and one at the end), so
 * logs from batch jobs stay readable. Silent on non-printing ranks and when
 * the log level is below info.
 */
#ifndef DTRAIN_PROGRESS_H
#define DTRAIN_PROGRESS_H

#include <stdint.h>

typedef struct {
  char label[64];
  int64_t total; /* 0 when unknown */
  double start_s;
  double last_print_s;
  double interval_s; /* seconds between plain lines when not on a terminal */
  int tty;
  int enabled;
  int drawn;        /* a redrawable line is on the terminal */
  const char *unit; /* e.g. "rows", "examples" */
} dt_progress;

void dt_progress_begin(dt_progress *p, const char *label, int64_t total, const char *unit);
/* `extra` (may be NULL) is appended, e.g. "loss 0.512". */
void dt_progress_update(dt_progress *p, int64_t done, const char *extra);
void dt_progress_end(dt_progress *p, int64_t done, const char *extra);

/* Formats seconds as "1h02m", "3m05s" or "12.3s". */
void dt_format_duration(double seconds, char *out, int out_size);

#endif
