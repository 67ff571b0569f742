#include "dtrain/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static dt_log_level g_level = DT_LOG_INFO;
static int g_rank = 0, g_size = 1, g_all_ranks = 0;

void dt_log_set_level(dt_log_level level) { g_level = level; }
dt_log_level dt_log_get_level(void) { return g_level; }
void dt_log_set_rank(int rank, int size) {
  g_rank = rank;
  g_size = size;
}
void dt_log_set_all_ranks(int on) { g_all_ranks = on; }
int dt_log_is_printing_rank(void) { return g_rank == 0 || g_all_ranks; }

static const char *level_name(dt_log_level level) {
  switch (level) {
    case DT_LOG_ERROR: return "error";
    case DT_LOG_WARN: return "warn";
    case DT_LOG_INFO: return "info";
    default: return "debug";
  }
}

void dt_log(dt_log_level level, const char *fmt, ...) {
  if (level > g_level) return;
  if (level != DT_LOG_ERROR && !dt_log_is_printing_rank()) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  time_t secs = tv.tv_sec;
  localtime_r(&secs, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  char line[8192];
  int n;
  if (g_size > 1)
    n = snprintf(line, sizeof line, "%s.%03d [%s] [rank %d] ", stamp, (int)(tv.tv_usec / 1000), level_name(level),
                 g_rank);
  else
    n = snprintf(line, sizeof line, "%s.%03d [%s] ", stamp, (int)(tv.tv_usec / 1000), level_name(level));
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One fputs per line so lines from several ranks do not interleave mid-line. */
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
}
