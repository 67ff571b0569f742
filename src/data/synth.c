/* synth.c: the synthetic e-commerce log (synth.h).
 *
 * Two stages: a "world" (categories, items with popularity, life-cycle,
 * brand and text; per month, each subcategory's item distribution), then
 * users, generated one at a time, whose events go to a callback: straight
 * into an interaction table (dt_synth_generate) or out as JSON lines
 * (synth_json.c). Every random number is Philox keyed by what it is for,
 * so the log does not depend on the order anything is computed in.
 */
#include "data/synth_world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/progress.h"
#include "dtrain/rng.h"

/* index of the first cum[k] > r (cum ascending, r < cum[n-1]) */
static int64_t search_cum_d(const double *cum, int64_t n, double r) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > r)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static int64_t search_cum_f(const float *cum, int64_t n, float r) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > r)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/* ---- words ------------------------------------------------------------------------------ */

/* A pronounceable made-up word for `id`, written into out (>= 16 bytes). */
void synth_word(const synth_world *w, uint64_t id, int syllables, int capital, char *out) {
  static const char cons[] = "bcdfghjklmnprstvz";
  static const char vow[] = "aeiou";
  dt_rand4 r = synth_draw(w, P_WORD, id, 0);
  int o = 0;
  for (int s = 0; s < syllables && s < 6; s++) {
    uint32_t x = r.v[s % 4] >> (8 * (s / 4));
    out[o++] = cons[x % 17];
    out[o++] = vow[(x / 17) % 5];
  }
  out[o] = '\0';
  if (capital) out[0] = (char)(out[0] - 'a' + 'A');
}

/* word namespaces */
#define W_CAT 0ull
#define W_SUB 1000000ull
#define W_BRAND 2000000ull
#define W_SUBVOCAB 10000000ull
#define W_CATVOCAB 30000000ull
#define W_GENERIC 40000000ull
enum { SUB_VOCAB = 12, CAT_VOCAB = 12, GENERIC_VOCAB = 300 };

/* ---- ids ---------------------------------------------------------------------------------- */

static void base36(uint64_t x, int digits, char *out) {
  static const char a[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int k = digits - 1; k >= 0; k--) {
    out[k] = a[x % 36];
    x /= 36;
  }
  out[digits] = '\0';
}

/* A bijection of [0, 2^bits): odd multiplications and xorshifts. */
static uint64_t scramble(uint64_t x, uint64_t seed, int bits) {
  uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  x = (x + seed * 0x9E3779B97F4A7C15ull) & mask;
  for (int r = 0; r < 3; r++) {
    x = (x * 0xBF58476D1CE4E5B9ull) & mask;
    x ^= x >> (bits / 2);
  }
  return x;
}

void synth_user_id(const synth_world *w, int64_t u, char *out) {
  out[0] = 'A';
  base36(scramble((uint64_t)u, w->p.seed, 64), 13, out + 1);
}

void synth_item_id(const synth_world *w, int64_t i, char *out) {
  out[0] = 'B';
  out[1] = '0';
  base36(scramble((uint64_t)i, w->p.seed, 41), 8, out + 2);
}

/* ---- item text ---------------------------------------------------------------------------- */

static void append(char *buf, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len && *len + 1 < cap) buf[(*len)++] = ' ';
  if (*len + n >= cap) n = cap - *len - 1;
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = '\0';
}

void synth_item_fields(const synth_world *w, int64_t i, synth_item_text *t) {
  int64_t g = w->item_group[i], c = g / w->S;
  char word[24];
  synth_word(w, W_CAT + (uint64_t)c, 3, 1, t->category);
  synth_word(w, W_SUB + (uint64_t)g, 3, 1, t->subcategory);
  synth_word(w, W_BRAND + (uint64_t)(c * w->p.brands + w->item_brand[i]), 2, 1, t->brand);
  dt_rand4 r = synth_draw(w, P_ITEM_TEXT, (uint64_t)i, 0);
  size_t len = 0;
  t->title[0] = '\0';
  append(t->title, sizeof t->title, &len, t->brand);
  append(t->title, sizeof t->title, &len, t->subcategory);
  for (int k = 0; k < 2; k++) {
    synth_word(w, W_SUBVOCAB + (uint64_t)(g * SUB_VOCAB) + (r.v[k] % SUB_VOCAB), 3, 0, word);
    append(t->title, sizeof t->title, &len, word);
  }
  snprintf(word, sizeof word, "X%u", (unsigned)(r.v[2] % 100000));
  append(t->title, sizeof t->title, &len, word);
  /* description: one or two sentences of subcategory, category and generic words */
  t->n_desc = 1 + (int)(r.v[3] & 1);
  for (int d = 0; d < t->n_desc; d++) {
    len = 0;
    t->desc[d][0] = '\0';
    int n_words = d == 0 ? 10 : 8;
    for (int k = 0; k < n_words; k++) {
      dt_rand4 q = synth_draw(w, P_ITEM_TEXT, (uint64_t)i, 1 + (uint32_t)(d * 16 + k));
      int kind = d == 0 ? (k < 4 ? 0 : k < 7 ? 1 : 2) : (k == 0 ? 0 : k == 1 ? 1 : 2);
      if (kind == 0)
        synth_word(w, W_SUBVOCAB + (uint64_t)(g * SUB_VOCAB) + (q.v[0] % SUB_VOCAB), 3, 0, word);
      else if (kind == 1)
        synth_word(w, W_CATVOCAB + (uint64_t)(c * CAT_VOCAB) + (q.v[0] % CAT_VOCAB), 3, 0, word);
      else
        synth_word(w, W_GENERIC + (q.v[0] % GENERIC_VOCAB), 2 + (int)(q.v[1] & 1), 0, word);
      append(t->desc[d], sizeof t->desc[d], &len, word);
    }
  }
}

/* title, description, categories, brand: the order the metadata reader joins them in */
char *synth_item_text_join(const synth_item_text *t) {
  char buf[1024];
  size_t len = 0;
  buf[0] = '\0';
  append(buf, sizeof buf, &len, t->title);
  for (int d = 0; d < t->n_desc; d++) append(buf, sizeof buf, &len, t->desc[d]);
  append(buf, sizeof buf, &len, t->category);
  append(buf, sizeof buf, &len, t->subcategory);
  append(buf, sizeof buf, &len, t->brand);
  return dt_xstrdup(buf);
}

void synth_review_summary(const synth_world *w, int64_t user, int64_t k, int64_t item, int rating, char *out,
                          size_t n) {
  static const char *adj[] = {"terrible", "poor", "okay", "good", "great"};
  int64_t g = w->item_group[item];
  dt_rand4 r = synth_draw(w, P_SUMMARY, (uint64_t)user, (uint32_t)k);
  char sub[24], word[24];
  synth_word(w, W_SUB + (uint64_t)g, 3, 1, sub);
  synth_word(w, W_SUBVOCAB + (uint64_t)(g * SUB_VOCAB) + (r.v[0] % SUB_VOCAB), 3, 0, word);
  snprintf(out, n, "%s %s %s", adj[(rating - 1) % 5], word, sub);
}

/* ---- users and their sessions ------------------------------------------------------------------ */

/* How many events each user gets: a floor of min(5, T/U) plus a
 * heavy-tailed share (Pareto, alpha 1.4, capped) of the rest; sums to T. */
int64_t *synth_activity(const synth_world *w) {
  int64_t U = w->p.users, T = w->p.interactions;
  int64_t *n = dt_xmalloc((size_t)U * sizeof(int64_t));
  int64_t floor_n = T / U < 5 ? T / U : 5;
  double *a = dt_xmalloc((size_t)U * sizeof(double));
  double sum = 0;
  for (int64_t u = 0; u < U; u++) {
    double x = synth_u01(synth_draw(w, P_ACTIVITY, (uint64_t)u, 0).v[0]);
    a[u] = fmin(pow(x, -1.0 / 1.4), 200.0);
    sum += a[u];
  }
  int64_t rest = T - floor_n * U, given = 0;
  for (int64_t u = 0; u < U; u++) {
    n[u] = floor_n + (int64_t)((double)rest * a[u] / sum);
    given += n[u];
  }
  for (int64_t u = 0; given < T; u = (u + 1) % U) { /* rounding leftovers, fewer than U */
    n[u]++;
    given++;
  }
  free(a);
  return n;
}

/* time-of-day / weekday affinity of a category's daypart profile */
static double affinity(int64_t c, double hour, int weekend) {
  switch (c % 3) {
    case 0: return (!weekend && hour >= 9 && hour < 17) ? 3.0 : 0.6; /* work hours */
    case 1: return (weekend || hour >= 18 || hour < 1) ? 2.5 : 0.6;  /* evenings, weekends */
    default: return 1.0;
  }
}

static int64_t sample_item(const synth_world *w, int64_t g, int64_t m, uint32_t r) {
  int64_t lo = w->gstart[g], n = w->gstart[g + 1] - lo;
  const float *c = w->cum + m * w->p.items + lo;
  float x = (float)synth_u01(r) * c[n - 1];
  return lo + search_cum_f(c, n, x);
}

static int already_seen(const int64_t *seen, int64_t n, int64_t item) {
  for (int64_t j = n - 1; j >= 0; j--)
    if (seen[j] == item) return 1;
  return 0;
}

int synth_user_events(const synth_world *w, int64_t u, int64_t n_events, synth_emit_fn emit, void *ctx) {
  int64_t C = w->C, S = w->S, D = w->p.days;
  dt_rand4 r = synth_draw(w, P_USER, (uint64_t)u, 0);
  dt_rand4 r2 = synth_draw(w, P_USER, (uint64_t)u, 1);
  int64_t prim = search_cum_d(w->cat_cum, C, synth_u01(r.v[0]));
  int64_t pref = search_cum_d(w->sub_cum, S, synth_u01(r.v[1]));
  int64_t sec = search_cum_d(w->cat_cum, C, synth_u01(r.v[2]));
  if (sec == prim && C > 1) sec = (prim + 1 + (int64_t)(r.v[3] % (uint32_t)(C - 1))) % C;
  int64_t pref2 = search_cum_d(w->sub_cum, S, synth_u01(r2.v[0]));
  /* habits: time of day, weekend propensity, active window */
  double hx = synth_u01(r2.v[1]);
  double center = hx < 0.55 ? 20.5 : hx < 0.80 ? 12.5 : hx < 0.92 ? 8.0 : 1.0;
  double weekend_w = 0.5 + 2.0 * synth_u01(r2.v[2]);
  /* active window: from a few weeks to the whole log (long for most
   * users, as in a shop's regular customers), placed uniformly */
  dt_rand4 r3 = synth_draw(w, P_USER, (uint64_t)u, 2);
  double span = 21.0 + ((double)D - 21.0) * pow(synth_u01(r3.v[0]), 0.6);
  if (span > (double)D) span = (double)D;
  double start = synth_u01(r2.v[3]) * ((double)D - span);
  const int64_t day0 = SYNTH_EPOCH / 86400;
  double *cw = dt_xmalloc((size_t)C * sizeof(double));
  /* the user's items so far: a redraw avoids most repeats (reviews of the
   * same item twice are rare in real logs; prep's dedup removes the rest) */
  int64_t *seen = dt_xmalloc((size_t)(n_events ? n_events : 1) * sizeof(int64_t));
  int64_t k = 0, session = 0;
  while (k < n_events) {
    dt_rand4 s = synth_draw(w, P_SESSION, (uint64_t)u, (uint32_t)(session * 4));
    int64_t size = 1 + search_cum_d(w->session_cum, SYNTH_MAX_SESSION, synth_u01(s.v[0]));
    if (size > n_events - k) size = n_events - k;
    /* the day: uniform in the window, thinned by the weekend propensity */
    int64_t day = 0;
    int weekend = 0;
    for (int tries = 0; tries < 8; tries++) {
      dt_rand4 t = synth_draw(w, P_SESSION, (uint64_t)u, (uint32_t)(session * 4 + 1) + ((uint32_t)tries << 24));
      day = (int64_t)(start + synth_u01(t.v[0]) * span);
      if (day >= D) day = D - 1;
      weekend = (day0 + day + 3) % 7 >= 5;
      double wgt = weekend ? weekend_w : 1.0;
      if (synth_u01(t.v[1]) * fmax(weekend_w, 1.0) < wgt) break;
    }
    double hour = center + 1.3 * (double)dt_normal_from(s.v[1], s.v[2]);
    hour = fmod(hour + 48.0, 24.0);
    int64_t month = (int64_t)((double)day / DAYS_PER_MONTH);
    if (month >= w->M) month = w->M - 1;
    /* the category: the user's own ones, seasons and the time of day */
    double total = 0;
    for (int64_t c = 0; c < C; c++) {
      double base = w->cat_w[c] + (c == prim ? 4.0 : 0.0) + (c == sec ? 1.2 : 0.0);
      total += base * affinity(c, hour, weekend) * w->season[c * w->M + month];
      cw[c] = total;
    }
    int64_t cat = search_cum_d(cw, C, synth_u01(s.v[3]) * total);
    dt_rand4 s2 = synth_draw(w, P_SESSION, (uint64_t)u, (uint32_t)(session * 4 + 2));
    int64_t sub;
    if (cat == prim && synth_u01(s2.v[0]) < 0.7)
      sub = pref;
    else if (cat == sec && synth_u01(s2.v[0]) < 0.5)
      sub = pref2;
    else
      sub = search_cum_d(w->sub_cum, S, synth_u01(s2.v[1]));
    int64_t g = cat * S + sub;
    if (w->gstart[g] == w->gstart[g + 1]) /* an empty group (fewer items than groups) */
      g = w->item_group[dt_below64(s2.v[2], s2.v[3], (uint64_t)w->p.items)];
    int64_t ts = SYNTH_EPOCH + day * 86400 + (int64_t)(hour * 3600.0);
    int64_t item = -1;
    for (int64_t e = 0; e < size; e++, k++) {
      dt_rand4 ev = synth_draw(w, P_EVENT, (uint64_t)u, (uint32_t)k);
      if (item >= 0 && synth_u01(ev.v[0]) < 0.5) {
        /* the next item of the chain, within the subcategory */
        int64_t lo = w->gstart[g], n = w->gstart[g + 1] - lo;
        item = lo + (item - lo + 1 + (ev.v[1] % 4 == 0)) % n;
      } else {
        item = sample_item(w, g, month, ev.v[1]);
      }
      for (uint32_t redraw = 0; redraw < 4 && already_seen(seen, k, item); redraw++) {
        dt_rand4 rd = synth_draw(w, P_EVENT, (uint64_t)u, (uint32_t)k + ((redraw + 1u) << 26));
        item = sample_item(w, g, month, rd.v[0]);
      }
      seen[k] = item;
      if (e > 0) ts += 20 + (int64_t)(-150.0 * log(synth_u01(ev.v[2])));
      /* ratings: mostly positive, as in real review data */
      double rr = synth_u01(ev.v[3]);
      int rating = rr < 0.55 ? 5 : rr < 0.77 ? 4 : rr < 0.88 ? 3 : rr < 0.94 ? 2 : 1;
      int rc = emit(ctx, u, k, item, ts, rating);
      if (rc != DT_OK) {
        free(cw);
        free(seen);
        return rc;
      }
    }
    session++;
  }
  free(cw);
  free(seen);
  return DT_OK;
}

/* ---- straight into an interaction table ----------------------------------------------------------- */

typedef struct {
  dt_interactions *x;
  double min_rating;
} table_ctx;

static int emit_row(void *ctx, int64_t user, int64_t k, int64_t item, int64_t ts, int rating) {
  (void)k;
  table_ctx *t = ctx;
  dt_interactions *x = t->x;
  x->read++;
  if ((double)rating < t->min_rating) return DT_OK;
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 4096;
    x->user = dt_xrealloc(x->user, (size_t)x->cap * sizeof(int32_t));
    x->item = dt_xrealloc(x->item, (size_t)x->cap * sizeof(int32_t));
    x->ts = dt_xrealloc(x->ts, (size_t)x->cap * sizeof(int64_t));
  }
  x->user[x->n] = (int32_t)user;
  x->item[x->n] = (int32_t)item;
  x->ts[x->n] = ts;
  x->n++;
  return DT_OK;
}

void dt_synth_params_from_config(const dt_config *cfg, dt_synth_params *p) {
  p->users = cfg->data_synthetic_users;
  p->items = cfg->data_synthetic_items;
  p->interactions = cfg->data_synthetic_interactions;
  p->categories = cfg->data_synthetic_categories;
  p->subcategories = cfg->data_synthetic_subcategories;
  p->brands = cfg->data_synthetic_brands;
  p->days = cfg->data_synthetic_days;
  p->seed = (uint64_t)cfg->data_synthetic_seed;
}

int dt_synth_generate(const dt_synth_params *p, double min_rating, dt_interactions *out, char ***item_text) {
  synth_world w;
  DT_TRY(synth_world_build(p, &w));
  /* ids interned in index order, so row indices are string-table indices */
  char id[32];
  for (int64_t u = 0; u < p->users; u++) {
    synth_user_id(&w, u, id);
    dt_strtab_intern(&out->users, id, strlen(id));
  }
  for (int64_t i = 0; i < p->items; i++) {
    synth_item_id(&w, i, id);
    dt_strtab_intern(&out->items, id, strlen(id));
  }
  if (out->users.n != p->users || out->items.n != p->items) dt_panic("synthetic ids are not unique");
  out->cap = p->interactions;
  out->user = dt_xmalloc((size_t)out->cap * sizeof(int32_t));
  out->item = dt_xmalloc((size_t)out->cap * sizeof(int32_t));
  out->ts = dt_xmalloc((size_t)out->cap * sizeof(int64_t));
  int64_t *n_events = synth_activity(&w);
  table_ctx ctx = {out, min_rating};
  int rc = DT_OK;
  dt_progress prog;
  int show = p->interactions >= 2000000; /* a few seconds or more */
  if (show) dt_progress_begin(&prog, "generating synthetic log", p->interactions, "rows");
  for (int64_t u = 0; u < p->users && rc == DT_OK; u++) {
    rc = synth_user_events(&w, u, n_events[u], emit_row, &ctx);
    if (show && (u & 4095) == 0) dt_progress_update(&prog, out->read, NULL);
  }
  if (show) dt_progress_end(&prog, out->read, NULL);
  free(n_events);
  if (rc == DT_OK && item_text) {
    char **t = dt_xmalloc((size_t)p->items * sizeof(char *));
    synth_item_text it;
    for (int64_t i = 0; i < p->items; i++) {
      synth_item_fields(&w, i, &it);
      t[i] = synth_item_text_join(&it);
    }
    *item_text = t;
  }
  synth_world_free(&w);
  return rc;
}
