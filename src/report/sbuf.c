/* sbuf.c: a growable text buffer (sbuf.h). */
#include "report/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(dt_sbuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  b->s = dt_xrealloc(b->s, cap);
  b->cap = cap;
}

void dt_sbuf_put(dt_sbuf *b, const char *s, size_t n) {
  reserve(b, n);
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void dt_sbuf_puts(dt_sbuf *b, const char *s) { dt_sbuf_put(b, s, strlen(s)); }

void dt_sbuf_printf(dt_sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) dt_panic("vsnprintf failed for \"%s\"", fmt);
  reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void dt_sbuf_html(dt_sbuf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '&': dt_sbuf_puts(b, "&amp;"); break;
      case '<': dt_sbuf_puts(b, "&lt;"); break;
      case '>': dt_sbuf_puts(b, "&gt;"); break;
      case '"': dt_sbuf_puts(b, "&quot;"); break;
      case '\'': dt_sbuf_puts(b, "&#39;"); break;
      default:
        if (*p < 0x20 && *p != '\t' && *p != '\n')
          dt_sbuf_puts(b, "&#xFFFD;");
        else
          dt_sbuf_put(b, (const char *)p, 1);
    }
  }
}

void dt_sbuf_csv(dt_sbuf *b, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    dt_sbuf_puts(b, s);
    return;
  }
  dt_sbuf_put(b, "\"", 1);
  for (const char *p = s; *p; p++) {
    if (*p == '"') dt_sbuf_put(b, "\"", 1);
    dt_sbuf_put(b, p, 1);
  }
  dt_sbuf_put(b, "\"", 1);
}

void dt_sbuf_free(dt_sbuf *b) {
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}
