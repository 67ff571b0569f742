/* badline.h (internal to src/data): what a reader does with a bad line.
 *
 * Under data.on_error = "fail" the first bad line fails the read with
 * "FILE:LINE: why" (DT_EXIT_DATA); under "skip" it is counted and the first
 * few are logged as warnings, then one summary line at the end.
 */
#ifndef DTRAIN_DATA_BADLINE_H
#define DTRAIN_DATA_BADLINE_H

#include <stdint.h>

#include "dtrain/error.h"

typedef struct {
  const char *name; /* file name for messages */
  int skip;         /* 1: count and go on */
  int max_warnings; /* lines logged individually */
  int64_t count;    /* lines skipped */
} dt_badlines;

/* Reports a bad line: returns DT_OK (skipped, counted) or DT_EXIT_DATA. */
int dt_badline(dt_badlines *b, int64_t line, const char *fmt, ...) DT_PRINTF(3, 4);
/* Logs "N malformed lines skipped" when there were any. */
void dt_badline_report(const dt_badlines *b);

#endif
