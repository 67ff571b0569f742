/* read_delimited.c: user,item,timestamp[,rating] records with any
 * one-byte delimiter and RFC 4180 quoting (readers.h; records.h splits
 * them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/badline.h"
#include "data/linereader.h"
#include "data/records.h"
#include "dtrain/error.h"
#include "dtrain/readers.h"

int dt_delimiter_parse(const char *delimiter, char *out) {
  static const struct {
    const char *name;
    char c;
  } names[] = {{"auto", DT_DELIM_AUTO}, {"comma", ','}, {"tab", '\t'},
               {"semicolon", ';'},      {"pipe", '|'},  {"space", ' '}};
  const char *d = delimiter ? delimiter : "auto";
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    if (!strcmp(d, names[k].name)) {
      *out = names[k].c;
      return DT_OK;
    }
  if (strlen(d) == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r') {
    *out = d[0];
    return DT_OK;
  }
  return dt_fail(DT_EXIT_USAGE,
                 "data.delimiter = \"%s\" must be auto, comma, tab, semicolon, pipe, space or one character "
                 "(not a double quote or a line break)",
                 d);
}

static const struct {
  const char *name;
  int col;
} g_names[] = {{"user", DT_COL_USER},
               {"item", DT_COL_ITEM},
               {"timestamp", DT_COL_TIMESTAMP},
               {"rating", DT_COL_RATING},
               {"skip", DT_COL_SKIP}};

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
  DT_TRY(dt_delimiter_parse(delimiter, &fmt->delimiter));
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

static int parse_double(dt_field f, double *out) {
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

static const char *col_name(int col) {
  for (size_t k = 0; k < sizeof g_names / sizeof g_names[0]; k++)
    if (g_names[k].col == col) return g_names[k].name;
  return "?";
}

/* The timestamp field: unix seconds or ISO-8601, within DT_TS_MIN..MAX. */
static int parse_ts(dt_field f, int64_t *ts, char *why, size_t why_n, int c) {
  int r = dt_parse_timestamp(f.p, f.n, ts);
  if (r == DT_TS_OK) return 1;
  int shown = (int)(f.n > 64 ? 64 : f.n);
  if (r == DT_TS_RANGE)
    snprintf(why, why_n,
             "field %d (timestamp) \"%.*s\" is out of range (years 0001 to 9999: %lld to %lld unix "
             "seconds)",
             c + 1, shown, f.p, (long long)DT_TS_MIN, (long long)DT_TS_MAX);
  else
    snprintf(why, why_n,
             "field %d (timestamp) must be unix seconds (an integer) or an ISO-8601 time such as "
             "2024-03-01T12:00:00Z, got \"%.*s\"",
             c + 1, shown, f.p);
  return 0;
}

/* Checks one record's fields and takes user, item, time and rating. */
static int parse_row(const dt_delimited_format *fmt, const dt_field *f, dt_field *user, dt_field *item, int64_t *ts,
                     double *rating, int *has_rating, char *why, size_t why_n) {
  *has_rating = 0;
  for (int c = 0; c < fmt->n_columns; c++) {
    int col = fmt->column[c], ok = 1;
    switch (col) {
      case DT_COL_USER:
        *user = f[c];
        ok = f[c].n > 0;
        break;
      case DT_COL_ITEM:
        *item = f[c];
        ok = f[c].n > 0;
        break;
      case DT_COL_TIMESTAMP:
        if (!parse_ts(f[c], ts, why, why_n, c)) return 0;
        break;
      case DT_COL_RATING: ok = *has_rating = parse_double(f[c], rating); break;
      default: break;
    }
    if (!ok) {
      snprintf(why, why_n, "field %d (%s) must be %s, got \"%.*s\"", c + 1, col_name(col),
               col == DT_COL_RATING ? "a number" : "a non-empty id", (int)(f[c].n > 64 ? 64 : f[c].n), f[c].p);
      return 0;
    }
  }
  return 1;
}

int dt_read_delimited(const dt_input *in, const dt_delimited_format *fmt, const dt_read_opts *opts,
                      dt_interactions *out, dt_source_sum *sum) {
  dt_linereader lr;
  DT_TRY(dt_lr_open(&lr, in, opts->skip_bad, opts->progress, "reading interactions"));
  dt_badlines bad = {lr.name, opts->skip_bad, opts->max_warnings, 0};
  dt_records rec;
  dt_records_init(&rec, &lr, fmt->delimiter);
  int first = 1, rc = DT_OK;
  int64_t rows = 0;
  int ts_col = 0;
  for (int c = 0; c < fmt->n_columns; c++)
    if (fmt->column[c] == DT_COL_TIMESTAMP) ts_col = c;
  char why[512], dname[8];
  for (;;) {
    int got = dt_records_next(&rec, why, sizeof why);
    if (got == 0) break;
    if (got == DT_LR_LONG_LINE) {
      bad.count++;
      continue;
    }
    if (got == DT_REC_BAD) {
      if ((rc = dt_badline(&bad, rec.line_no, "%s", why)) != DT_OK) goto out;
      continue;
    }
    if (got != 1) {
      rc = got;
      goto out;
    }
    const dt_field *f = rec.fields;
    const int nf = rec.n_fields;
    if (first) {
      /* the first record may be a header */
      first = 0;
      int64_t dummy;
      int is_header =
          fmt->header == DT_HEADER_YES || (fmt->header == DT_HEADER_AUTO && nf == fmt->n_columns &&
                                           dt_parse_timestamp(f[ts_col].p, f[ts_col].n, &dummy) == DT_TS_BAD);
      if (is_header) continue;
    }
    if (nf != fmt->n_columns) {
      if ((rc = dt_badline(&bad, rec.line_no, "expected %d %s-separated fields (data.columns), found %d",
                           fmt->n_columns, dt_delimiter_name(rec.delim, dname), nf)) != DT_OK)
        goto out;
      continue;
    }
    dt_field user = {0}, item = {0};
    int64_t ts = 0;
    double rating = 0;
    int has_rating = 0;
    if (!parse_row(fmt, f, &user, &item, &ts, &rating, &has_rating, why, sizeof why)) {
      if ((rc = dt_badline(&bad, rec.line_no, "%s", why)) != DT_OK) goto out;
      continue;
    }
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
  dt_records_free(&rec);
  dt_lr_close(&lr);
  return rc;
}
