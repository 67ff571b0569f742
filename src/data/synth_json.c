/* synth_json.c: the synthetic log as Amazon Reviews 2018 JSON lines
 * (dt_synth_write_amazon in synth.h), so the real readers can be exercised
 * end to end at any scale. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/synth_world.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"

/* A buffered output file, plain or gzip. */
typedef struct {
  const char *path;
  FILE *f;
  gzFile gz;
  char *buf;
  size_t len, cap;
} out_file;

static int of_open(out_file *o, const char *path) {
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

static int of_flush(out_file *o) {
  if (o->len == 0) return DT_OK;
  int ok = o->gz ? gzwrite(o->gz, o->buf, (unsigned)o->len) == (int)o->len : fwrite(o->buf, 1, o->len, o->f) == o->len;
  o->len = 0;
  if (!ok) return dt_fail(DT_EXIT_RUNTIME, "cannot write %s: %s (disk full?)", o->path, strerror(errno));
  return DT_OK;
}

/* Appends a formatted line (each line is well below the buffer size). */
static int of_printf(out_file *o, const char *fmt, ...) DT_PRINTF(2, 3);
static int of_printf(out_file *o, const char *fmt, ...) {
  if (o->cap - o->len < 8192) DT_TRY(of_flush(o));
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) return dt_fail(DT_EXIT_RUNTIME, "line too long writing %s", o->path);
  o->len += (size_t)n;
  return DT_OK;
}

static int of_close(out_file *o, int rc) {
  if (rc == DT_OK) rc = of_flush(o);
  if (o->gz) {
    int zr = gzclose(o->gz);
    if (zr != Z_OK && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "cannot finish %s (zlib error %d)", o->path, zr);
  } else if (o->f) {
    if (fclose(o->f) != 0 && rc == DT_OK) rc = dt_fail(DT_EXIT_RUNTIME, "cannot close %s: %s", o->path, strerror(errno));
  }
  free(o->buf);
  memset(o, 0, sizeof *o);
  return rc;
}

typedef struct {
  const synth_world *w;
  out_file *o;
} review_ctx;

static int emit_review(void *ctx, int64_t user, int64_t k, int64_t item, int64_t ts, int rating) {
  review_ctx *c = ctx;
  char uid[24], iid[24], summary[96];
  synth_user_id(c->w, user, uid);
  synth_item_id(c->w, item, iid);
  synth_review_summary(c->w, user, k, item, rating, summary, sizeof summary);
  /* optional fields as in the real files: a vote count written with a
   * thousands comma, a style object */
  if ((user + k) % 50 == 0)
    return of_printf(c->o,
                     "{\"overall\": %d.0, \"vote\": \"1,%03d\", \"verified\": true, \"reviewerID\": \"%s\", \"asin\": "
                     "\"%s\", \"style\": {\"Size:\": \" Large\"}, \"summary\": \"%s\", \"unixReviewTime\": %lld}\n",
                     rating, (int)(k % 1000), uid, iid, summary, (long long)ts);
  return of_printf(c->o,
                   "{\"overall\": %d.0, \"verified\": true, \"reviewerID\": \"%s\", \"asin\": \"%s\", \"summary\": "
                   "\"%s\", \"unixReviewTime\": %lld}\n",
                   rating, uid, iid, summary, (long long)ts);
}

static int write_meta_row(out_file *o, const char *asin, const synth_item_text *t) {
  /* generated text is letters, digits and spaces only: no JSON escaping needed */
  DT_TRY(of_printf(o, "{\"category\": [\"%s\", \"%s\"], \"description\": [\"%s\"", t->category, t->subcategory,
                   t->desc[0]));
  if (t->n_desc > 1) DT_TRY(of_printf(o, ", \"%s\"", t->desc[1]));
  return of_printf(o,
                   "], \"title\": \"%s\", \"brand\": \"%s\", \"imageURL\": [], \"imageURLHighRes\": [], \"asin\": "
                   "\"%s\"}\n",
                   t->title, t->brand, asin);
}

int dt_synth_write_amazon(const dt_synth_params *p, const char *reviews_path, const char *meta_path) {
  synth_world w;
  DT_TRY(synth_world_build(p, &w));
  out_file o;
  int rc = of_open(&o, reviews_path);
  if (rc == DT_OK) {
    int64_t *n_events = synth_activity(&w);
    review_ctx ctx = {&w, &o};
    for (int64_t u = 0; u < p->users && rc == DT_OK; u++)
      rc = synth_user_events(&w, u, n_events[u], emit_review, &ctx);
    free(n_events);
    rc = of_close(&o, rc);
  }
  if (rc == DT_OK) rc = of_open(&o, meta_path);
  if (rc == DT_OK) {
    char iid[24];
    synth_item_text t;
    for (int64_t i = 0; i < p->items && rc == DT_OK; i++) {
      synth_item_id(&w, i, iid);
      synth_item_fields(&w, i, &t);
      rc = write_meta_row(&o, iid, &t);
    }
    /* repeated asin rows, as some metadata releases have: the first wins */
    for (int64_t i = 0; i < p->items && rc == DT_OK; i += 97) {
      synth_item_id(&w, i, iid);
      synth_item_fields(&w, (i + 1) % p->items, &t);
      rc = write_meta_row(&o, iid, &t);
    }
    rc = of_close(&o, rc);
  }
  synth_world_free(&w);
  return rc;
}
