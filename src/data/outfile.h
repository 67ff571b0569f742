/* outfile.h (internal to src/data): a buffered output file, plain or gzip
 * (a path ending in ".gz", level 1), for the synthetic writers. Every write
 * is checked; errors are DT_EXIT_RUNTIME naming the file. The parent
 * directory is created. dt_of_close always releases the file and returns
 * the first error (pass the caller's rc in). */
#ifndef DTRAIN_DATA_OUTFILE_H
#define DTRAIN_DATA_OUTFILE_H

#include <stddef.h>
#include <stdio.h>
#include <zlib.h>

#include "dtrain/error.h"

typedef struct {
  const char *path;
  FILE *f;
  gzFile gz;
  char *buf;
  size_t len, cap;
} dt_outfile;

int dt_of_open(dt_outfile *o, const char *path);
/* Appends a formatted line (under 8 KiB). */
int dt_of_printf(dt_outfile *o, const char *fmt, ...) DT_PRINTF(2, 3);
int dt_of_flush(dt_outfile *o);
int dt_of_close(dt_outfile *o, int rc);

#endif
