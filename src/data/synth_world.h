/* synth_world.h (internal to src/data): the synthetic generator's world
 * (categories, items, their text; synth_world.c) and per-user event
 * generation, shared by the table writer (synth.c) and the JSON writer
 * (synth_json.c). */
#ifndef DTRAIN_DATA_SYNTH_WORLD_H
#define DTRAIN_DATA_SYNTH_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/rng.h"
#include "dtrain/synth.h"

#define SYNTH_MAX_SESSION 20
/* 2016-01-01 00:00:00 UTC, a Friday: the log starts here. */
#define SYNTH_EPOCH 1451606400LL
#define DAYS_PER_MONTH 30.4375

typedef struct {
  dt_synth_params p;
  int64_t C, S, G, M;  /* categories, subcategories per category, groups (C*S), months */
  double *cat_w;       /* [C] category popularity (sums to 1) */
  double *cat_cum;     /* [C] its cumulative sums */
  double *sub_cum;     /* [S] subcategory popularity, cumulative */
  int64_t *gstart;     /* [G+1] items of group g: [gstart[g], gstart[g+1]) */
  int32_t *item_group; /* [items] */
  double *item_pop;    /* [items] Zipf popularity */
  double *item_launch; /* [items] launch day (may be before day 0) */
  double *item_tau;    /* [items] decay time in days */
  int32_t *item_brand; /* [items] brand within the category */
  float *cum;          /* [M * items] per month, cumulative weights within each group */
  double *season;      /* [C * M] seasonal factor */
  double session_cum[SYNTH_MAX_SESSION];
} synth_world;

typedef struct {
  char title[256];
  char desc[2][512];
  int n_desc;
  char category[24], subcategory[24], brand[24];
} synth_item_text;

/* One event: user u's k-th, on `item` at `ts`, with a 1-5 rating. */
typedef int (*synth_emit_fn)(void *ctx, int64_t user, int64_t k, int64_t item, int64_t ts, int rating);

/* What a draw is for: its first Philox counter word. */
enum {
  P_CAT = 1,
  P_ITEM_POP,
  P_ITEM_LIFE,
  P_ITEM_BRAND,
  P_ITEM_TEXT,
  P_WORD,
  P_USER,
  P_ACTIVITY,
  P_SESSION,
  P_EVENT,
  P_RATING,
  P_SEASON,
  P_SUMMARY
};

static inline dt_rand4 synth_draw(const synth_world *w, uint32_t purpose, uint64_t a, uint32_t b) {
  return dt_philox(w->p.seed, DT_RNG_SYNTH, purpose, (uint32_t)a, (uint32_t)(a >> 32), b);
}

/* A double in (0, 1) from 32 bits. */
static inline double synth_u01(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

/* synth_world.c */
int synth_world_build(const dt_synth_params *p, synth_world *w);
void synth_world_free(synth_world *w);
/* Events per user, summing to p.interactions ([users], caller frees). */
int64_t *synth_activity(const synth_world *w);
/* Generates user u's n_events events through emit (session by session; not in time order). */
int synth_user_events(const synth_world *w, int64_t u, int64_t n_events, synth_emit_fn emit, void *ctx);
/* ids: out needs 16 bytes */
void synth_user_id(const synth_world *w, int64_t u, char *out);
void synth_item_id(const synth_world *w, int64_t i, char *out);
void synth_word(const synth_world *w, uint64_t id, int syllables, int capital, char *out);
void synth_item_fields(const synth_world *w, int64_t i, synth_item_text *t);
/* The fields joined as the metadata reader joins them (caller frees). */
char *synth_item_text_join(const synth_item_text *t);
void synth_review_summary(const synth_world *w, int64_t user, int64_t k, int64_t item, int rating, char *out, size_t n);

#endif
