/* synth_csv.c: the synthetic log as an example of delimited input
 * (dt_synth_write_csv in synth.h): an interaction CSV with ISO-8601 times
 * and an item file whose text needs RFC 4180 quoting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/outfile.h"
#include "data/synth_world.h"
#include "dtrain/error.h"

typedef struct {
  const synth_world *w;
  dt_outfile *o;
} row_ctx;

static int emit_row(void *ctx, int64_t user, int64_t k, int64_t item, int64_t ts, int rating) {
  row_ctx *c = ctx;
  char uid[24], iid[24], when[32];
  synth_user_id(c->w, user, uid);
  synth_item_id(c->w, item, iid);
  time_t t = (time_t)ts;
  struct tm tmv;
  if (!gmtime_r(&t, &tmv)) return dt_fail(DT_EXIT_RUNTIME, "synthetic time %lld out of range", (long long)ts);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  (void)k;
  return dt_of_printf(c->o, "%s,%s,%s,%d\n", uid, iid, when, rating);
}

/* Generated text is letters, digits and spaces; the comma and the quoted
 * word make the field need quoting, as real catalogue text does. */
static int write_item_row(dt_outfile *o, const char *iid, const synth_item_text *t) {
  DT_TRY(dt_of_printf(o, "%s,\"%s, \"\"%s\"\": %s", iid, t->title, t->subcategory, t->desc[0]));
  if (t->n_desc > 1) DT_TRY(dt_of_printf(o, " %s", t->desc[1]));
  return dt_of_printf(o, "\",%s > %s,%s\n", t->category, t->subcategory, t->brand);
}

int dt_synth_write_csv(const dt_synth_params *p, const char *interactions_path, const char *items_path) {
  synth_world w;
  DT_TRY(synth_world_build(p, &w));
  dt_outfile o;
  int rc = dt_of_open(&o, interactions_path);
  if (rc == DT_OK) {
    rc = dt_of_printf(&o, "user,item,timestamp,rating\n");
    int64_t *n_events = synth_activity(&w);
    row_ctx ctx = {&w, &o};
    for (int64_t u = 0; u < p->users && rc == DT_OK; u++) rc = synth_user_events(&w, u, n_events[u], emit_row, &ctx);
    free(n_events);
    rc = dt_of_close(&o, rc);
  }
  if (rc == DT_OK) rc = dt_of_open(&o, items_path);
  if (rc == DT_OK) {
    rc = dt_of_printf(&o, "item,text,category,brand\n");
    char iid[24];
    synth_item_text t;
    for (int64_t i = 0; i < p->items && rc == DT_OK; i++) {
      synth_item_id(&w, i, iid);
      synth_item_fields(&w, i, &t);
      rc = write_item_row(&o, iid, &t);
    }
    rc = dt_of_close(&o, rc);
  }
  synth_world_free(&w);
  return rc;
}
