/* read_items.c: an item file (data.items) of item,text[,category][,brand]
 * records with a header line, feeding the item text of delimited input
 * (readers.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/badline.h"
#include "data/linereader.h"
#include "data/records.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

enum { COL_ITEM, COL_TEXT, COL_CATEGORY, COL_BRAND, N_COLS };
static const char *const g_cols[N_COLS] = {"item", "text", "category", "brand"};

/* Finds the named columns in the header record; fails naming what it found. */
static int read_header(const dt_records *rec, const char *name, int col[N_COLS]) {
  for (int k = 0; k < N_COLS; k++) col[k] = -1;
  char ignored[256] = "";
  for (int f = 0; f < rec->n_fields; f++) {
    const dt_field *h = &rec->fields[f];
    int hit = 0;
    for (int k = 0; k < N_COLS && !hit; k++)
      if (strlen(g_cols[k]) == h->n && strncasecmp(g_cols[k], h->p, h->n) == 0) {
        if (col[k] >= 0)
          return dt_fail(DT_EXIT_DATA, "%s:%lld: the header names the column \"%s\" twice", name,
                         (long long)rec->line_no, g_cols[k]);
        col[k] = f, hit = 1;
      }
    if (!hit && strlen(ignored) + h->n + 4 < sizeof ignored)
      snprintf(ignored + strlen(ignored), sizeof ignored - strlen(ignored), "%s\"%.*s\"", ignored[0] ? ", " : "",
               (int)h->n, h->p);
  }
  if (col[COL_ITEM] < 0 || col[COL_TEXT] < 0)
    return dt_fail(DT_EXIT_DATA,
                   "%s:%lld: an item file (data.items) starts with a header line naming the columns item and text, "
                   "optionally category and brand (e.g. \"item,text,category,brand\"); this one has %s",
                   name, (long long)rec->line_no, ignored[0] ? ignored : "no fields");
  if (ignored[0]) dt_log_info("%s: ignoring the column(s) %s", name, ignored);
  return DT_OK;
}

/* text, category and brand joined by single spaces */
static char *join_text(const dt_field *f, const int col[N_COLS]) {
  size_t n = 0;
  for (int k = COL_TEXT; k < N_COLS; k++)
    if (col[k] >= 0) n += f[col[k]].n + 1;
  char *s = dt_xmalloc(n + 1);
  size_t o = 0;
  for (int k = COL_TEXT; k < N_COLS; k++) {
    if (col[k] < 0 || f[col[k]].n == 0) continue;
    if (o) s[o++] = ' ';
    memcpy(s + o, f[col[k]].p, f[col[k]].n);
    o += f[col[k]].n;
  }
  s[o] = '\0';
  return s;
}

int dt_item_texts_finish(int rc, char **text, int64_t n, int64_t found, char ***text_out, int64_t *found_out) {
  if (rc != DT_OK) {
    for (int64_t i = 0; i < n; i++) free(text[i]);
    free(text);
    return rc;
  }
  for (int64_t i = 0; i < n; i++)
    if (!text[i]) text[i] = dt_xstrdup("");
  *text_out = text;
  if (found_out) *found_out = found;
  return DT_OK;
}

int dt_read_item_file(const dt_input *in, char delimiter, const dt_read_opts *opts, const dt_strtab *items,
                      char ***text_out, int64_t *found_out, dt_source_sum *sum) {
  dt_linereader lr;
  DT_TRY(dt_lr_open(&lr, in, opts->skip_bad, opts->progress, "reading items"));
  dt_badlines bad = {lr.name, opts->skip_bad, opts->max_warnings, 0};
  dt_records rec;
  dt_records_init(&rec, &lr, delimiter);
  char **text = dt_xcalloc((size_t)(items->n ? items->n : 1), sizeof(char *));
  int col[N_COLS], have_header = 0, rc = DT_OK;
  int64_t rows = 0, found = 0;
  char why[512];
  for (;;) {
    int got = dt_records_next(&rec, why, sizeof why);
    if (got == 0) break;
    if (got == DT_LR_LONG_LINE) {
      bad.count++;
      continue;
    }
    if (got == DT_REC_BAD) {
      if (!have_header) { /* a broken header spoils every row */
        rc = dt_fail(DT_EXIT_DATA, "%s:%lld: %s", lr.name, (long long)rec.line_no, why);
        goto out;
      }
      if ((rc = dt_badline(&bad, rec.line_no, "%s", why)) != DT_OK) goto out;
      continue;
    }
    if (got != 1) {
      rc = got;
      goto out;
    }
    if (!have_header) {
      if ((rc = read_header(&rec, lr.name, col)) != DT_OK) goto out;
      have_header = rec.n_fields;
      continue;
    }
    const dt_field *f = rec.fields;
    if (rec.n_fields != have_header) {
      char dn[8];
      if ((rc = dt_badline(&bad, rec.line_no, "expected %d %s-separated fields like the header, found %d", have_header,
                           dt_delimiter_name(rec.delim, dn), rec.n_fields)) != DT_OK)
        goto out;
      continue;
    }
    if (f[col[COL_ITEM]].n == 0) {
      if ((rc = dt_badline(&bad, rec.line_no, "field %d (item) must be a non-empty id", col[COL_ITEM] + 1)) != DT_OK)
        goto out;
      continue;
    }
    rows++;
    int64_t idx = dt_strtab_find(items, f[col[COL_ITEM]].p, f[col[COL_ITEM]].n);
    if (idx >= 0 && !text[idx]) { /* the first row of a repeated item wins */
      text[idx] = join_text(f, col);
      found++;
    }
  }
  bad.count += lr.tail_skipped;
  dt_badline_report(&bad);
  if (sum) dt_lr_sum(&lr, sum);
  if (rows == 0)
    rc = dt_fail(DT_EXIT_DATA, "%s: no item rows in %lld line(s)%s", lr.name, (long long)lr.line_no,
                 bad.count     ? " (all were malformed)"
                 : have_header ? " (only the header)"
                               : " (the file is empty)");
out:
  dt_records_free(&rec);
  dt_lr_close(&lr);
  return dt_item_texts_finish(rc, text, items->n, found, text_out, found_out);
}
