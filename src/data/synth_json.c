/* synth_json.c: the synthetic log as Amazon Reviews 2018 JSON lines
 * (dt_synth_write_amazon in synth.h), so the real readers can be exercised
 * end to end at any scale. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/outfile.h"
#include "data/synth_world.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"

typedef struct {
  const synth_world *w;
  dt_outfile *o;
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
    return dt_of_printf(
        c->o,
        "{\"overall\": %d.0, \"vote\": \"1,%03d\", \"verified\": true, \"reviewerID\": \"%s\", \"asin\": "
        "\"%s\", \"style\": {\"Size:\": \" Large\"}, \"summary\": \"%s\", \"unixReviewTime\": %lld}\n",
        rating, (int)(k % 1000), uid, iid, summary, (long long)ts);
  return dt_of_printf(c->o,
                      "{\"overall\": %d.0, \"verified\": true, \"reviewerID\": \"%s\", \"asin\": \"%s\", \"summary\": "
                      "\"%s\", \"unixReviewTime\": %lld}\n",
                      rating, uid, iid, summary, (long long)ts);
}

static int write_meta_row(dt_outfile *o, const char *asin, const synth_item_text *t) {
  /* generated text is letters, digits and spaces only: no JSON escaping needed */
  DT_TRY(dt_of_printf(o, "{\"category\": [\"%s\", \"%s\"], \"description\": [\"%s\"", t->category, t->subcategory,
                      t->desc[0]));
  if (t->n_desc > 1) DT_TRY(dt_of_printf(o, ", \"%s\"", t->desc[1]));
  return dt_of_printf(o,
                      "], \"title\": \"%s\", \"brand\": \"%s\", \"imageURL\": [], \"imageURLHighRes\": [], \"asin\": "
                      "\"%s\"}\n",
                      t->title, t->brand, asin);
}

int dt_synth_write_amazon(const dt_synth_params *p, const char *reviews_path, const char *meta_path) {
  synth_world w;
  DT_TRY(synth_world_build(p, &w));
  dt_outfile o;
  int rc = dt_of_open(&o, reviews_path);
  if (rc == DT_OK) {
    int64_t *n_events = synth_activity(&w);
    review_ctx ctx = {&w, &o};
    for (int64_t u = 0; u < p->users && rc == DT_OK; u++) rc = synth_user_events(&w, u, n_events[u], emit_review, &ctx);
    free(n_events);
    rc = dt_of_close(&o, rc);
  }
  if (rc == DT_OK) rc = dt_of_open(&o, meta_path);
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
    rc = dt_of_close(&o, rc);
  }
  synth_world_free(&w);
  return rc;
}
