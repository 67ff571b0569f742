/* synth_world.c: the synthetic log's world (synth_world.h): categories and
 * subcategories with Zipf-like popularity, items split over them, each
 * item's popularity, life cycle and brand, per month each group's item
 * distribution, seasonality and session sizes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth_world.h"
#include "dtrain/error.h"

static double life(const synth_world *w, int64_t i, double day) {
  double x = day - w->item_launch[i];
  if (x < 0) return 0.0;
  const double rise = 21.0;
  if (x < rise) return (x + 1.0) / (rise + 1.0);
  return exp(-(x - rise) / w->item_tau[i]) + 0.05;
}

/* Category and subcategory popularity, Zipf-like: w's cumulative shares,
 * and the subcategory weights (unnormalised, sum in *sub_sum) the item
 * split uses. */
static double *group_weights(synth_world *w, double *sub_sum) {
  const int64_t C = w->C, S = w->S;
  w->cat_w = dt_xmalloc((size_t)C * sizeof(double));
  w->cat_cum = dt_xmalloc((size_t)C * sizeof(double));
  w->sub_cum = dt_xmalloc((size_t)S * sizeof(double));
  double sum = 0;
  for (int64_t c = 0; c < C; c++) sum += w->cat_w[c] = pow((double)(c + 1), -0.8);
  double acc = 0;
  for (int64_t c = 0; c < C; c++) {
    w->cat_w[c] /= sum;
    acc += w->cat_w[c];
    w->cat_cum[c] = acc;
  }
  w->cat_cum[C - 1] = 1.0;
  double *sub_w = dt_xmalloc((size_t)S * sizeof(double));
  sum = 0;
  for (int64_t s = 0; s < S; s++) sum += sub_w[s] = pow((double)(s + 1), -0.6);
  acc = 0;
  for (int64_t s = 0; s < S; s++) {
    acc += sub_w[s] / sum;
    w->sub_cum[s] = acc;
  }
  w->sub_cum[S - 1] = 1.0;
  *sub_sum = sum;
  return sub_w;
}

/* Items per group: proportional to category x subcategory weight (largest
 * remainder), at least one each while items last; w->gstart, item_group. */
static void items_per_group(synth_world *w, const double *sub_w, double sub_sum) {
  const int64_t S = w->S, I = w->p.items;
  w->gstart = dt_xcalloc((size_t)w->G + 1, sizeof(int64_t));
  int64_t *cnt = dt_xcalloc((size_t)w->G, sizeof(int64_t));
  double *frac = dt_xmalloc((size_t)w->G * sizeof(double));
  int64_t given = 0, base = I >= w->G ? 1 : 0;
  int64_t spread = I - base * w->G;
  for (int64_t g = 0; g < w->G; g++) {
    double share = w->cat_w[g / S] * sub_w[g % S] / sub_sum * (double)spread;
    cnt[g] = base + (int64_t)share;
    frac[g] = share - floor(share);
    given += cnt[g];
  }
  while (given < I) { /* hand the rest to the largest remainders */
    int64_t best = 0;
    for (int64_t g = 1; g < w->G; g++)
      if (frac[g] > frac[best]) best = g;
    cnt[best]++;
    frac[best] = -1;
    given++;
  }
  for (int64_t g = 0; g < w->G; g++) w->gstart[g + 1] = w->gstart[g] + cnt[g];
  free(cnt);
  free(frac);
  w->item_group = dt_xmalloc((size_t)(I ? I : 1) * sizeof(int32_t));
  for (int64_t g = 0; g < w->G; g++)
    for (int64_t i = w->gstart[g]; i < w->gstart[g + 1]; i++) w->item_group[i] = (int32_t)g;
}

/* Each item's popularity (Zipf over a random ranking: Fisher-Yates with
 * Philox), launch day, lifetime and brand. */
static void item_attributes(synth_world *w) {
  const dt_synth_params *p = &w->p;
  const int64_t I = p->items;
  int64_t *rank = dt_xmalloc((size_t)(I ? I : 1) * sizeof(int64_t));
  for (int64_t i = 0; i < I; i++) rank[i] = i;
  for (int64_t i = I - 1; i > 0; i--) {
    dt_rand4 r = synth_draw(w, P_ITEM_POP, (uint64_t)i, 0);
    int64_t j = (int64_t)dt_below64(r.v[0], r.v[1], (uint64_t)(i + 1));
    int64_t t = rank[i];
    rank[i] = rank[j];
    rank[j] = t;
  }
  w->item_pop = dt_xmalloc((size_t)(I ? I : 1) * sizeof(double));
  w->item_launch = dt_xmalloc((size_t)(I ? I : 1) * sizeof(double));
  w->item_tau = dt_xmalloc((size_t)(I ? I : 1) * sizeof(double));
  w->item_brand = dt_xmalloc((size_t)(I ? I : 1) * sizeof(int32_t));
  for (int64_t i = 0; i < I; i++) {
    w->item_pop[i] = pow((double)(rank[i] + 1), -0.8);
    dt_rand4 r = synth_draw(w, P_ITEM_LIFE, (uint64_t)i, 0);
    /* a third launched before the log starts, the rest during it */
    w->item_launch[i] = (double)p->days * (-0.5 + 1.5 * synth_u01(r.v[0]));
    w->item_tau[i] = 60.0 + 300.0 * synth_u01(r.v[1]);
    /* brand: Zipf over the category's brands */
    double x = synth_u01(r.v[2]);
    w->item_brand[i] = (int32_t)((double)p->brands * pow(x, 2.0));
    if (w->item_brand[i] >= p->brands) w->item_brand[i] = (int32_t)p->brands - 1;
  }
  free(rank);
}

/* Per month, each group's cumulative item weights (popularity x life). */
static void monthly_weights(synth_world *w) {
  const int64_t I = w->p.items;
  w->cum = dt_xmalloc((size_t)(w->M * (I ? I : 1)) * sizeof(float));
  for (int64_t m = 0; m < w->M; m++) {
    double day = ((double)m + 0.5) * DAYS_PER_MONTH;
    for (int64_t g = 0; g < w->G; g++) {
      float *c = w->cum + m * I;
      double a = 0;
      for (int64_t i = w->gstart[g]; i < w->gstart[g + 1]; i++) {
        a += w->item_pop[i] * life(w, i, day);
        c[i] = (float)a;
      }
      if (a <= 0) { /* nothing launched yet: popularity alone */
        for (int64_t i = w->gstart[g]; i < w->gstart[g + 1]; i++) {
          a += w->item_pop[i];
          c[i] = (float)a;
        }
      }
    }
  }
}

/* Seasonality (a yearly sine per category) and session sizes (Zipf on
 * 1..20 with exponent 1.7). */
static void season_and_sessions(synth_world *w) {
  w->season = dt_xmalloc((size_t)(w->C * w->M) * sizeof(double));
  for (int64_t c = 0; c < w->C; c++) {
    double phase = synth_u01(synth_draw(w, P_SEASON, (uint64_t)c, 0).v[0]);
    for (int64_t m = 0; m < w->M; m++)
      w->season[c * w->M + m] = 1.0 + 0.5 * sin(6.283185307179586 * ((double)m / 12.0 + phase));
  }
  double acc = 0, sum = 0;
  for (int s = 0; s < SYNTH_MAX_SESSION; s++) sum += pow(s + 1.0, -1.7);
  for (int s = 0; s < SYNTH_MAX_SESSION; s++) {
    acc += pow(s + 1.0, -1.7) / sum;
    w->session_cum[s] = acc;
  }
  w->session_cum[SYNTH_MAX_SESSION - 1] = 1.0;
}

int synth_world_build(const dt_synth_params *p, synth_world *w) {
  memset(w, 0, sizeof *w);
  w->p = *p;
  int64_t C = p->categories, S = p->subcategories, I = p->items;
  w->C = C;
  w->S = S;
  w->G = C * S;
  w->M = (int64_t)ceil((double)p->days / DAYS_PER_MONTH);
  if (w->M < 1) w->M = 1;
  if (I > INT32_MAX || p->users > INT32_MAX)
    return dt_fail(DT_EXIT_USAGE, "data.synthetic.users and .items must be below 2^31");
  if (w->G > 10000000 || w->G > 100 * (I + 1))
    return dt_fail(DT_EXIT_USAGE,
                   "data.synthetic.categories x .subcategories = %lld groups is too many for %lld items "
                   "(at most 100 per item and 10^7 in all)",
                   (long long)w->G, (long long)I);
  double sub_sum;
  double *sub_w = group_weights(w, &sub_sum);
  items_per_group(w, sub_w, sub_sum);
  free(sub_w);
  item_attributes(w);
  monthly_weights(w);
  season_and_sessions(w);
  return DT_OK;
}

void synth_world_free(synth_world *w) {
  free(w->cat_w);
  free(w->cat_cum);
  free(w->sub_cum);
  free(w->gstart);
  free(w->item_group);
  free(w->item_pop);
  free(w->item_launch);
  free(w->item_tau);
  free(w->item_brand);
  free(w->cum);
  free(w->season);
  memset(w, 0, sizeof *w);
}
