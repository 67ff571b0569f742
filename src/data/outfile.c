/* outfile.c: buffered output files, plain or gzip (outfile.h). */
#include "data/outfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"

int dt_of_open(dt_outfile *o, const char *path) {
  memset(o, 0, sizeof *o);
  o->path = path;
  size_t n = strlen(path);
  char *dir = dt_path_dirname(path);
  int rc = dt_mkdir_p(dir);
  free(dir);
  DT_TRY(rc);
  if (n > 3 && !strcmp(path + n - 3, ".gz")) {
    o->gz = gzopen(path, "wb1");
    if (!o->gz) return dt_fail(DT_EXIT_RUNTIME, "cannot create %s: %s", path, strerror(errno));
  } else {
    o->f = fopen(path, "wb");
    if (!o->f) return dt_fail(DT_EXIT_RUNTIME, "cannot create %s: %s", path, strerror(errno));
  }
  o->cap = 1 << 20;
  o->buf = dt_xmalloc(o->cap);
  return DT_OK;
}

int dt_of_flush(dt_outfile *o) {
  if (o->len == 0) return DT_OK;
  int ok = o->gz ? gzwrite(o->gz, o->buf, (unsigned)o->len) == (int)o->len : fwrite(o->buf, 1, o->len, o->f) == o->len;
  o->len = 0;
  if (!ok) return dt_fail(DT_EXIT_RUNTIME, "cannot write %s: %s (disk full?)", o->path, strerror(errno));
  return DT_OK;
}

int dt_of_printf(dt_outfile *o, const char *fmt, ...) {
  if (o->cap - o->len < 8192) DT_TRY(dt_of_flush(o));
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) return dt_fail(DT_EXIT_RUNTIME, "line too long writing %s", o->path);
  o->len += (size_t)n;
  return DT_OK;
}

int dt_of_close(dt_outfile *o, int rc) {
  if (rc == DT_OK) rc = dt_of_flush(o);
  if (o->gz) {
    int zr = gzclose(o->gz);
    if (zr != Z_OK && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "cannot finish %s (zlib error %d)", o->path, zr);
  } else if (o->f) {
    if (fclose(o->f) != 0 && rc == DT_OK)
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot close %s: %s", o->path, strerror(errno));
  }
  free(o->buf);
  memset(o, 0, sizeof *o);
  return rc;
}
