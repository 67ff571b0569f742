/* badline.c: fail or skip-and-count a bad input line (badline.h). */
#include "data/badline.h"

#include <stdarg.h>
#include <stdio.h>

#include "dtrain/log.h"

int dt_badline(dt_badlines *b, int64_t line, const char *fmt, ...) {
  char why[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (!b->skip)
    return dt_fail(DT_EXIT_DATA, "%s:%lld: %s (set data.on_error=skip to skip and count such lines)", b->name,
                   (long long)line, why);
  b->count++;
  int max = b->max_warnings > 0 ? b->max_warnings : 5;
  if (b->count <= max)
    dt_log_warn("%s:%lld: %s; skipped (data.on_error=skip)%s", b->name, (long long)line, why,
                b->count == max ? "; further bad lines are only counted" : "");
  return DT_OK;
}

void dt_badline_report(const dt_badlines *b) {
  if (b->count > 0)
    dt_log_warn("%s: %lld malformed line(s) skipped (data.on_error=skip)", b->name, (long long)b->count);
}
