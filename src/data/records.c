/* records.c: RFC 4180 records over a line reader (records.h). */
#include "data/records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"

/* A quoted field longer than this is taken for a quote never closed. */
#define MAX_QUOTED ((size_t)1 << 20)

void dt_records_init(dt_records *r, dt_linereader *lr, char delim) {
  memset(r, 0, sizeof *r);
  r->lr = lr;
  r->delim = delim;
}

void dt_records_free(dt_records *r) {
  free(r->fields);
  free(r->buf);
  free(r->starts);
  memset(r, 0, sizeof *r);
}

const char *dt_delimiter_name(char d, char buf[8]) {
  switch (d) {
    case ',': return "comma";
    case '\t': return "tab";
    case ';': return "semicolon";
    case '|': return "pipe";
    case ' ': return "space";
    default: snprintf(buf, 8, "'%c'", d); return buf;
  }
}

static void put(dt_records *r, const char *s, size_t n) {
  if (r->len + n + 1 > r->cap) {
    while (r->len + n + 1 > r->cap) r->cap = r->cap ? 2 * r->cap : 256;
    r->buf = dt_xrealloc(r->buf, r->cap);
  }
  memcpy(r->buf + r->len, s, n);
  r->len += n;
}

/* Ends the field that started at buf offset `start`. */
static void push_field(dt_records *r, size_t start) {
  if (r->n_fields == r->fields_cap) {
    r->fields_cap = r->fields_cap ? 2 * r->fields_cap : 16;
    r->fields = dt_xrealloc(r->fields, sizeof *r->fields * (size_t)r->fields_cap);
    r->starts = dt_xrealloc(r->starts, sizeof *r->starts * (size_t)r->fields_cap);
  }
  r->starts[r->n_fields] = start;
  r->fields[r->n_fields].n = r->len - start;
  r->n_fields++;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

/* The first line decides an automatic delimiter. */
static char detect(const char *line, size_t len) {
  static const char order[] = {'\t', ',', ';', '|'};
  for (size_t k = 0; k < sizeof order; k++)
    if (memchr(line, order[k], len)) return order[k];
  return ',';
}

/* The rest of a quoted field, from just after its opening quote, across
 * lines when it holds line breaks. On return line, len and i are where the
 * closing quote left them. */
static int quoted(dt_records *r, const char **line, size_t *len, size_t *i, size_t start, char *why, size_t why_n) {
  for (;;) {
    if (*i >= *len) { /* the line ends inside the quotes: the field goes on */
      int got = dt_lr_next(r->lr, line, len);
      if (got == 0 || got == DT_LR_LONG_LINE) {
        snprintf(why, why_n, "field %d: the quote opened here is never closed%s", r->n_fields + 1,
                 got ? " (a line in it is too long)" : "");
        return DT_REC_BAD;
      }
      if (got != 1) return got;
      if (memchr(*line, '\0', *len)) {
        snprintf(why, why_n, "a NUL byte in line %lld (binary data?)", (long long)r->lr->line_no);
        return DT_REC_BAD;
      }
      if (r->len - start > MAX_QUOTED) {
        snprintf(why, why_n, "field %d: a quoted field runs past 1 MiB, to line %lld (a quote never closed?)",
                 r->n_fields + 1, (long long)r->lr->line_no);
        return DT_REC_BAD;
      }
      put(r, "\n", 1);
      *i = 0;
      continue;
    }
    const char *q = memchr(*line + *i, '"', *len - *i);
    if (!q) {
      put(r, *line + *i, *len - *i);
      *i = *len;
      continue;
    }
    size_t at = (size_t)(q - *line);
    put(r, *line + *i, at - *i);
    *i = at + 1;
    if (*i < *len && (*line)[*i] == '"') { /* "" is one quote */
      put(r, "\"", 1);
      (*i)++;
      continue;
    }
    return 1;
  }
}

int dt_records_next(dt_records *r, char *why, size_t why_n) {
  const char *line;
  size_t len;
  for (;;) {
    int got = dt_lr_next(r->lr, &line, &len);
    if (got != 1) return got; /* the end, an over-long line, an error */
    if (!is_blank(line, len)) break;
  }
  r->line_no = r->lr->line_no;
  r->len = 0;
  r->n_fields = 0;
  if (memchr(line, '\0', len)) {
    snprintf(why, why_n, "a NUL byte in a text line (binary data?)");
    return DT_REC_BAD;
  }
  if (r->delim == DT_DELIM_AUTO) r->delim = detect(line, len);
  const char d = r->delim;
  size_t i = 0;
  if (d == ' ')
    while (i < len && line[i] == ' ') i++;
  for (;;) {
    if (d != ' ')
      while (i < len && line[i] == ' ') i++;
    size_t start = r->len;
    if (i < len && line[i] == '"') {
      i++;
      int rc = quoted(r, &line, &len, &i, start, why, why_n);
      if (rc != 1) return rc;
      if (d != ' ')
        while (i < len && line[i] == ' ') i++;
      if (i < len && line[i] != d) {
        snprintf(why, why_n,
                 "field %d: text after its closing quote (a quote inside a quoted field is "
                 "written \"\")",
                 r->n_fields + 1);
        return DT_REC_BAD;
      }
    } else {
      const char *e = memchr(line + i, d, len - i);
      size_t end = e ? (size_t)(e - line) : len, t = end;
      while (t > i && line[t - 1] == ' ') t--;
      put(r, line + i, t - i);
      i = end;
    }
    push_field(r, start);
    if (i >= len) break;
    i++; /* the delimiter */
    if (d == ' ') {
      while (i < len && line[i] == ' ') i++;
      if (i >= len) break;
    }
  }
  put(r, "", 1); /* room for the terminator; fields are not NUL-terminated */
  for (int k = 0; k < r->n_fields; k++) r->fields[k].p = r->buf + r->starts[k];
  return 1;
}
