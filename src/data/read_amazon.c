/* read_amazon.c: Amazon Reviews 2018 JSON lines, reviews and metadata
 * (readers.h). One cJSON tree per line, freed before the next. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/badline.h"
#include "data/linereader.h"
#include "dtrain/error.h"
#include "dtrain/readers.h"

/* Unix seconds must stay exact in a double (the JSON number type). */
#define MAX_EXACT_TS 9007199254740992.0

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
  return 1;
}

/* A line with a NUL in it: raw, or escaped as \u0000 in a string (cJSON
 * would decode it and the C string would end there, cutting an id short).
 * The escape counts only after an even number of backslashes. */
static int has_nul(const char *s, size_t n, char *why, size_t why_n) {
  if (memchr(s, '\0', n)) {
    snprintf(why, why_n, "a NUL byte in a text line (binary data?)");
    return 1;
  }
  for (size_t i = 0; i + 6 <= n; i++) {
    if (s[i] != '\\' || strncmp(s + i + 1, "u0000", 5) != 0) continue;
    size_t b = 0;
    while (b < i && s[i - 1 - b] == '\\') b++;
    if (b % 2 == 0) {
      snprintf(why, why_n, "a NUL character (\\u0000) in a JSON string at column %zu: ids and text cannot hold one",
               i + 1);
      return 1;
    }
  }
  return 0;
}

static const char *kind(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  return "invalid";
}

/* Parses one line into a JSON object; on failure *why says what is wrong. */
static cJSON *parse_object(const char *line, size_t len, char *why, size_t why_n) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!root) {
    size_t col = end && end >= line && end <= line + len ? (size_t)(end - line) + 1 : 1;
    snprintf(why, why_n, "invalid JSON near column %zu", col);
    return NULL;
  }
  if (end && end >= line && (size_t)(end - line) < len && !is_blank(end, len - (size_t)(end - line))) {
    snprintf(why, why_n, "unexpected text after the JSON object at column %zu", (size_t)(end - line) + 1);
    cJSON_Delete(root);
    return NULL;
  }
  if (!cJSON_IsObject(root)) {
    snprintf(why, why_n, "a line must be one JSON object, got %s", kind(root));
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* A required non-empty string field; NULL with *why set otherwise. */
static const char *need_string(const cJSON *obj, const char *field, char *why, size_t why_n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (!v) {
    snprintf(why, why_n, "field \"%s\" is missing", field);
    return NULL;
  }
  if (!cJSON_IsString(v)) {
    snprintf(why, why_n, "field \"%s\" must be a string, got %s", field, kind(v));
    return NULL;
  }
  if (!v->valuestring[0]) {
    snprintf(why, why_n, "field \"%s\" is empty", field);
    return NULL;
  }
  return v->valuestring;
}

static int need_number(const cJSON *obj, const char *field, double *out, char *why, size_t why_n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (!v) {
    snprintf(why, why_n, "field \"%s\" is missing", field);
    return 0;
  }
  if (!cJSON_IsNumber(v)) {
    snprintf(why, why_n, "field \"%s\" must be a number, got %s", field, kind(v));
    return 0;
  }
  if (!isfinite(v->valuedouble)) {
    snprintf(why, why_n, "field \"%s\" is not a finite number", field);
    return 0;
  }
  *out = v->valuedouble;
  return 1;
}

/* Parses one review; returns 1 (fields set) or 0 (bad line, *why set). */
static int parse_review(const cJSON *root, const char **user, const char **item, double *rating, int64_t *ts,
                        const char **summary, char *why, size_t why_n) {
  double t;
  if (!(*user = need_string(root, "reviewerID", why, why_n))) return 0;
  if (!(*item = need_string(root, "asin", why, why_n))) return 0;
  if (!need_number(root, "overall", rating, why, why_n)) return 0;
  if (!need_number(root, "unixReviewTime", &t, why, why_n)) return 0;
  if (t != floor(t) || fabs(t) > MAX_EXACT_TS) {
    snprintf(why, why_n, "field \"unixReviewTime\" must be a whole number of seconds, got %.17g", t);
    return 0;
  }
  if (t < (double)DT_TS_MIN || t > (double)DT_TS_MAX) {
    snprintf(why, why_n, "field \"unixReviewTime\" = %.0f is out of range (years 0001 to 9999: %lld to %lld)", t,
             (long long)DT_TS_MIN, (long long)DT_TS_MAX);
    return 0;
  }
  *ts = (int64_t)t;
  *summary = NULL;
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "summary");
  if (s && !cJSON_IsNull(s)) {
    if (!cJSON_IsString(s)) {
      snprintf(why, why_n, "field \"summary\" must be a string, got %s", kind(s));
      return 0;
    }
    *summary = s->valuestring;
  }
  return 1;
}

/* Ends a read: folds the reader's counts in and refuses an input without rows. */
static int finish_read(dt_linereader *lr, dt_badlines *bad, int64_t rows, const char *what, dt_source_sum *sum) {
  bad->count += lr->tail_skipped;
  dt_badline_report(bad);
  if (sum) dt_lr_sum(lr, sum);
  if (rows == 0)
    return dt_fail(DT_EXIT_DATA, "%s: no valid %s in %lld line(s)%s", lr->name, what, (long long)lr->line_no,
                   bad->count ? " (all were malformed)" : " (the file is empty)");
  return DT_OK;
}

int dt_read_amazon_reviews(const dt_input *in, const dt_read_opts *opts, dt_interactions *out, dt_source_sum *sum) {
  dt_linereader lr;
  DT_TRY(dt_lr_open(&lr, in, opts->skip_bad, opts->progress, "reading reviews"));
  dt_badlines bad = {lr.name, opts->skip_bad, opts->max_warnings, 0};
  if (opts->keep_text && out->n == 0) out->has_text = 1;
  int64_t rows = 0;
  int rc = DT_OK;
  const char *line;
  size_t len;
  char why[512];
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
    cJSON *root = has_nul(line, len, why, sizeof why) ? NULL : parse_object(line, len, why, sizeof why);
    const char *user, *item, *summary;
    double rating;
    int64_t ts;
    if (!root || !parse_review(root, &user, &item, &rating, &ts, &summary, why, sizeof why)) {
      cJSON_Delete(root);
      if ((rc = dt_badline(&bad, lr.line_no, "%s", why)) != DT_OK) goto out;
      continue;
    }
    rows++;
    out->read++;
    if (rating >= opts->min_rating)
      rc = dt_interactions_add(out, user, strlen(user), item, strlen(item), ts, summary, summary ? strlen(summary) : 0);
    cJSON_Delete(root);
    if (rc != DT_OK) goto out;
  }
  rc = finish_read(&lr, &bad, rows, "reviews", sum);
out:
  out->skipped += bad.count;
  dt_lr_close(&lr);
  return rc;
}

/* ---- Metadata ------------------------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
} textbuf;

/* Appends s after a space (skipping empty pieces). */
static void tb_add(textbuf *b, const char *s) {
  size_t n = strlen(s);
  if (n == 0) return;
  if (b->len + n + 2 > b->cap) {
    while (b->len + n + 2 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
    b->s = dt_xrealloc(b->s, b->cap);
  }
  if (b->len) b->s[b->len++] = ' ';
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

/* A text field that must be a string (null = absent). */
static int check_string(const cJSON *obj, const char *field, const cJSON **v, char *why, size_t why_n) {
  *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (*v && cJSON_IsNull(*v)) *v = NULL;
  if (*v && !cJSON_IsString(*v)) {
    snprintf(why, why_n, "field \"%s\" must be a string, got %s", field, kind(*v));
    return 0;
  }
  return 1;
}

/* A field that must be an array of strings (or, when allowed, one string). */
static int check_strings(const cJSON *obj, const char *field, int allow_string, const cJSON **v, char *why,
                         size_t why_n) {
  *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (*v && cJSON_IsNull(*v)) *v = NULL;
  if (!*v || (allow_string && cJSON_IsString(*v))) return 1;
  if (!cJSON_IsArray(*v)) {
    snprintf(why, why_n, "field \"%s\" must be %san array of strings, got %s", field,
             allow_string ? "a string or " : "", kind(*v));
    return 0;
  }
  const cJSON *e;
  int i = 0;
  cJSON_ArrayForEach(e, *v) {
    if (!cJSON_IsString(e)) {
      snprintf(why, why_n, "field \"%s\"[%d] must be a string, got %s", field, i, kind(e));
      return 0;
    }
    i++;
  }
  return 1;
}

static void add_strings(textbuf *b, const cJSON *v) {
  if (!v) return;
  if (cJSON_IsString(v)) {
    tb_add(b, v->valuestring);
    return;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, v) tb_add(b, e->valuestring);
}

int dt_read_amazon_meta(const dt_input *in, const dt_read_opts *opts, const dt_strtab *items, char ***text_out,
                        int64_t *found_out, dt_source_sum *sum) {
  dt_linereader lr;
  DT_TRY(dt_lr_open(&lr, in, opts->skip_bad, opts->progress, "reading metadata"));
  dt_badlines bad = {lr.name, opts->skip_bad, opts->max_warnings, 0};
  char **text = dt_xcalloc((size_t)(items->n ? items->n : 1), sizeof(char *));
  int64_t rows = 0, found = 0;
  int rc = DT_OK;
  const char *line;
  size_t len;
  char why[512];
  textbuf tb = {0};
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
    cJSON *root = has_nul(line, len, why, sizeof why) ? NULL : parse_object(line, len, why, sizeof why);
    const char *asin = NULL;
    const cJSON *title = NULL, *desc = NULL, *cat = NULL, *brand = NULL;
    int ok = root && (asin = need_string(root, "asin", why, sizeof why)) &&
             check_string(root, "title", &title, why, sizeof why) &&
             check_strings(root, "description", 1, &desc, why, sizeof why) &&
             check_strings(root, "category", 0, &cat, why, sizeof why) &&
             check_string(root, "brand", &brand, why, sizeof why);
    if (!ok) {
      cJSON_Delete(root);
      if ((rc = dt_badline(&bad, lr.line_no, "%s", why)) != DT_OK) goto out;
      continue;
    }
    rows++;
    int64_t idx = dt_strtab_find(items, asin, strlen(asin));
    if (idx >= 0 && !text[idx]) { /* the first row of a repeated asin wins */
      tb.len = 0;
      if (tb.s) tb.s[0] = '\0';
      if (title) tb_add(&tb, title->valuestring);
      add_strings(&tb, desc);
      add_strings(&tb, cat);
      if (brand) tb_add(&tb, brand->valuestring);
      text[idx] = dt_xstrdup(tb.s ? tb.s : "");
      found++;
    }
    cJSON_Delete(root);
  }
  rc = finish_read(&lr, &bad, rows, "metadata rows", sum);
out:
  free(tb.s);
  dt_lr_close(&lr);
  return dt_item_texts_finish(rc, text, items->n, found, text_out, found_out);
}
