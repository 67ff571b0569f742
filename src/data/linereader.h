/* linereader.h (internal to src/data): lines from a plain or gzip input.
 *
 * Reads a file (or an in-memory buffer) in chunks, inflating gzip data
 * (detected by the magic bytes 1f 8b; concatenated members are one stream)
 * with zlib's inflate, and hands out one line at a time without its "\n"
 * or "\r\n". Memory is one input chunk plus the longest line seen. While
 * reading it keeps the size and CRC-32 of the raw bytes (the source
 * checksum) and a progress line for long files.
 */
#ifndef DTRAIN_DATA_LINEREADER_H
#define DTRAIN_DATA_LINEREADER_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "dtrain/progress.h"
#include "dtrain/readers.h"

/* A line longer than this is refused (a corrupt or non-text file). */
#define DT_LR_MAX_LINE ((size_t)64 << 20)

typedef struct {
  const char *name;
  /* raw source */
  FILE *f;
  const unsigned char *mem;
  size_t mem_size, mem_pos;
  int raw_eof;
  unsigned char *in; /* raw chunk */
  size_t in_cap, in_len, in_pos;
  int64_t raw_bytes; /* raw bytes consumed so far */
  uint32_t raw_crc;
  int64_t file_size; /* 0 when unknown */
  /* gzip */
  int gz;
  z_stream zs;
  int zs_ready;
  int member_end; /* the current gzip member ended */
  /* decompressed text */
  char *buf;
  size_t buf_len, buf_pos, buf_cap, scan;
  int text_eof; /* no more text will come */
  int skip_bad;
  int broken;           /* the stream ended in error under skip_bad (already warned) */
  int64_t tail_skipped; /* a partial last line dropped because the stream broke */
  int discarding;       /* dropping the rest of an over-long line */
  int64_t line_no;      /* number of the line last returned (1-based) */
  /* progress */
  dt_progress prog;
  int progress_on;
} dt_linereader;

/* Opens `in`. Fails with DT_EXIT_DATA naming the file. */
int dt_lr_open(dt_linereader *lr, const dt_input *in, int skip_bad, int progress, const char *label);
/* Next line: returns 1 with *line and *len set (the text stays valid until the
 * next call; it is not NUL-terminated), 0 at the end, or an error code. A
 * line over DT_LR_MAX_LINE is an error, or under skip_bad returns
 * DT_LR_LONG_LINE once (the caller counts it) and is dropped. */
int dt_lr_next(dt_linereader *lr, const char **line, size_t *len);
#define DT_LR_LONG_LINE (-1)
/* Size and CRC-32 of the raw bytes read (the whole file after the end). */
void dt_lr_sum(const dt_linereader *lr, dt_source_sum *sum);
void dt_lr_close(dt_linereader *lr);

#endif
