/* read_delimited.c: user,item,timestamp[,rating] text, comma or tab
 * (readers.h). No quoting: a field is the bytes between two delimiters,
 * without surrounding spaces. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/badline.h"
#include "data/linereader.h"
#include "dtrain/error.h"
#include "dtrain/readers.h"

static const struct {
  const char *name;
  int col;
} g_names[] = {{"user", DT_COL_USER}, {"item", DT_COL_ITEM}, {"timestamp", DT_COL_TIMESTAMP},
               {"rating", DT_COL_RATING}, {"skip", DT_COL_SKIP}};

int dt_delimited_format_parse(const char *columns, const char *delimiter, const char *header,
                              dt_delimited_format *fmt) {
  memset(fmt, 0, sizeof *fmt);
  int seen[5] = {0};
  const char *all = columns ? columns : "";
  const char *p = all;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n > 0 && *p == ' ') p++, n--;
    while (n > 0 && p[n - 1] == ' ') n--;
    int col = -1;
    for (size_t k = 0; k < sizeof g_names / sizeof g_names[0]; k++)
      if (strlen(g_names[k].name) == n && strncmp(g_names[k].name, p, n) == 0) col = g_names[k].col;
    if (col < 0)
      return dt_fail(DT_EXIT_USAGE,
                     "data.columns = \"%s\": unknown column \"%.*s\" (allowed: user, item, timestamp, rating, skip)",
                     all, (int)n, p);
    if (col != DT_COL_SKIP && seen[col]++)
      return dt_fail(DT_EXIT_USAGE, "data.columns = \"%s\": column \"%.*s\" appears twice", all, (int)n, p);
    if (fmt->n_columns == DT_MAX_COLUMNS)
      return dt_fail(DT_EXIT_USAGE, "data.columns = \"%s\": more than %d columns", all, DT_MAX_COLUMNS);
    fmt->column[fmt->n_columns++] = col;
    if (!comma) break;
    p = comma + 1;
  }
  if (!seen[DT_COL_USER] || !seen[DT_COL_ITEM] || !seen[DT_COL_TIMESTAMP])
    return dt_fail(DT_EXIT_USAGE, "data.columns = \"%s\" must name the columns user, item and timestamp", all);
  if (!delimiter || !strcmp(delimiter, "auto"))
    fmt->delimiter = DT_DELIM_AUTO;
  else if (!strcmp(delimiter, "comma"))
    fmt->delimiter = ',';
  else if (!strcmp(delimiter, "tab"))
    fmt->delimiter = '\t';
  else
    return dt_fail(DT_EXIT_USAGE, "data.delimiter = \"%s\" must be auto, comma or tab", delimiter);
  if (!header || !strcmp(header, "auto"))
    fmt->header = DT_HEADER_AUTO;
  else if (!strcmp(header, "yes"))
    fmt->header = DT_HEADER_YES;
  else if (!strcmp(header, "no"))
    fmt->header = DT_HEADER_NO;
  else
    return dt_fail(DT_EXIT_USAGE, "data.header = \"%s\" must be auto, yes or no", header);
  return DT_OK;
}

typedef struct {
  const char *p;
  size_t n;
} field;

static field trim(const char *p, size_t n) {
  while (n > 0 && *p == ' ') p++, n--;
  while (n > 0 && p[n - 1] == ' ') n--;
  field f = {p, n};
  return f;
}

/* Splits a line; returns the number of fields (counting past max). */
static int split(const char *line, size_t len, char delim, field *out, int max) {
  int n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || line[i] == delim) {
      if (n < max) out[n] = trim(line + start, i - start);
      if (n < INT32_MAX) n++;
      start = i + 1;
    }
  }
  return n;
}

/* A whole-number field as int64 (optional sign, digits only). */
static int parse_int64(field f, int64_t *out) {
  char buf[32];
  if (f.n == 0 || f.n >= sizeof buf) return 0;
  memcpy(buf, f.p, f.n);
  buf[f.n] = '\0';
  size_t i = (buf[0] == '-' || buf[0] == '+') ? 1 : 0;
  if (buf[i] == '\0') return 0;
  for (; buf[i]; i++)
    if (buf[i] < '0' || buf[i] > '9') return 0;
  errno = 0;
  long long v = strtoll(buf, NULL, 10);
  if (errno == ERANGE) return 0;
  *out = (int64_t)v;
  return 1;
}

static int parse_double(field f, double *out) {
  char buf[64];
  if (f.n == 0 || f.n >= sizeof buf) return 0;
  memcpy(buf, f.p, f.n);
  buf[f.n] = '\0';
  char *end = NULL;
  errno = 0;
  double v = strtod(buf, &end);
  if (*end || errno == ERANGE || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

static const char *col_name(int col) {
  for (size_t k = 0; k < sizeof g_names / sizeof g_names[0]; k++)
    if (g_names[k].col == col) return g_names[k].name;
  return "?";
}

int dt_read_delimited(const dt_input *in, const dt_delimited_format *fmt, const dt_read_opts *opts,
                      dt_interactions *out, dt_source_sum *sum) {
  dt_linereader lr;
  DT_TRY(dt_lr_open(&lr, in, opts->skip_bad, opts->progress, "reading interactions"));
  dt_badlines bad = {lr.name, opts->skip_bad, opts->max_warnings, 0};
  char delim = fmt->delimiter;
  int first = 1, rc = DT_OK;
  int64_t rows = 0;
  field f[DT_MAX_COLUMNS];
  int ts_col = 0;
  for (int c = 0; c < fmt->n_columns; c++)
    if (fmt->column[c] == DT_COL_TIMESTAMP) ts_col = c;
  const char *line;
  size_t len;
  for (;;) {
    int got = dt_lr_next(&lr, &line, &len);
    if (got == 0) break;
    if (got == DT_LR_LONG_LINE) {
      bad.count++;
      continue;
    }
    if (got != 1) {
      rc = got;
      goto out;
    }
    if (is_blank(line, len)) continue;
    if (memchr(line, '\0', len)) {
      if ((rc = dt_badline(&bad, lr.line_no, "a NUL byte in a text line (binary data?)")) != DT_OK) goto out;
      continue;
    }
    if (delim == DT_DELIM_AUTO) delim = memchr(line, '\t', len) ? '\t' : ',';
    int nf = split(line, len, delim, f, DT_MAX_COLUMNS);
    if (first) {
      /* the first non-blank line may be a header */
      first = 0;
      int64_t dummy;
      int is_header = fmt->header == DT_HEADER_YES ||
                      (fmt->header == DT_HEADER_AUTO && nf == fmt->n_columns && !parse_int64(f[ts_col], &dummy));
      if (is_header) continue;
    }
    if (nf != fmt->n_columns) {
      if ((rc = dt_badline(&bad, lr.line_no, "expected %d %s-separated fields (data.columns), found %d",
                           fmt->n_columns, delim == '\t' ? "tab" : "comma", nf)) != DT_OK)
        goto out;
      continue;
    }
    field user = {0}, item = {0};
    int64_t ts = 0;
    double rating = 0;
    int has_rating = 0, ok = 1;
    for (int c = 0; c < nf && ok; c++) {
      switch (fmt->column[c]) {
        case DT_COL_USER: user = f[c]; ok = f[c].n > 0; break;
        case DT_COL_ITEM: item = f[c]; ok = f[c].n > 0; break;
        case DT_COL_TIMESTAMP: ok = parse_int64(f[c], &ts); break;
        case DT_COL_RATING: ok = has_rating = parse_double(f[c], &rating); break;
        default: break;
      }
      if (!ok) {
        const char *want = fmt->column[c] == DT_COL_TIMESTAMP ? "an integer (unix seconds)"
                           : fmt->column[c] == DT_COL_RATING  ? "a number"
                                                              : "a non-empty id";
        if ((rc = dt_badline(&bad, lr.line_no, "field %d (%s) must be %s, got \"%.*s\"", c + 1,
                             col_name(fmt->column[c]), want, (int)(f[c].n > 64 ? 64 : f[c].n), f[c].p)) != DT_OK)
          goto out;
      }
    }
    if (!ok) continue;
    rows++;
    out->read++;
    if (has_rating && rating < opts->min_rating) continue;
    if ((rc = dt_interactions_add(out, user.p, user.n, item.p, item.n, ts, NULL, 0)) != DT_OK) goto out;
  }
  bad.count += lr.tail_skipped;
  dt_badline_report(&bad);
  if (sum) dt_lr_sum(&lr, sum);
  if (rows == 0)
    rc = dt_fail(DT_EXIT_DATA, "%s: no valid interactions in %lld line(s)%s", lr.name, (long long)lr.line_no,
                 bad.count ? " (all were malformed)" : " (the file is empty)");
out:
  out->skipped += bad.count;
  dt_lr_close(&lr);
  return rc;
}
