#include "dtrain/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_message[4096];

int dt_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_message, sizeof g_message, fmt, ap);
  va_end(ap);
  return code == DT_OK ? DT_EXIT_RUNTIME : code;
}

int dt_fail_context(int code, const char *fmt, ...) {
  char prefix[1024];
  char old[sizeof g_message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, g_message, sizeof old);
  snprintf(g_message, sizeof g_message, "%s: %s", prefix, old);
  return code == DT_OK ? DT_EXIT_RUNTIME : code;
}

const char *dt_error_message(void) { return g_message; }

void dt_error_clear(void) { g_message[0] = '\0'; }

static void out_of_memory(size_t n, const char *file, int line) {
  fprintf(stderr, "dtrain: out of memory allocating %zu bytes (%s:%d); reduce the data set, batch size or threads\n", n,
          file, line);
  exit(DT_EXIT_RUNTIME);
}

void *dt_xmalloc_at(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n, file, line);
  return p;
}

void *dt_xcalloc_at(size_t count, size_t size, const char *file, int line) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) out_of_memory(count * size, file, line);
  return p;
}

void *dt_xrealloc_at(void *p, size_t n, const char *file, int line) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n, file, line);
  return q;
}

char *dt_xstrdup_at(const char *s, const char *file, int line) {
  size_t n = strlen(s) + 1;
  char *p = dt_xmalloc_at(n, file, line);
  memcpy(p, s, n);
  return p;
}

void dt_panic_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "dtrain: internal error at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (this is a bug in dtrain; please report it)\n", stderr);
  exit(DT_EXIT_RUNTIME);
}
