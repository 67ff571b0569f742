/* sbuf.h (internal to src/report): a growable text buffer.
 *
 * Appends never fail (allocation failure exits through dt_xrealloc). A
 * zeroed dt_sbuf is a valid empty buffer; `s` is NUL-terminated whenever
 * len > 0. Free with dt_sbuf_free.
 */
#ifndef DTRAIN_REPORT_SBUF_H
#define DTRAIN_REPORT_SBUF_H

#include <stddef.h>

#include "dtrain/error.h"

typedef struct {
  char *s;
  size_t len, cap;
} dt_sbuf;

void dt_sbuf_put(dt_sbuf *b, const char *s, size_t n);
void dt_sbuf_puts(dt_sbuf *b, const char *s);
void dt_sbuf_printf(dt_sbuf *b, const char *fmt, ...) DT_PRINTF(2, 3);
/* Appends s with &, <, >, " and ' escaped for HTML text and attributes;
 * bytes below 0x20 other than tab and newline become U+FFFD. */
void dt_sbuf_html(dt_sbuf *b, const char *s);
/* Appends one CSV field (RFC 4180: quoted when it holds a comma, quote or
 * line break). */
void dt_sbuf_csv(dt_sbuf *b, const char *s);
void dt_sbuf_free(dt_sbuf *b);

#endif
