/* synth.h: the synthetic interaction log, modelled on an e-commerce log.
 *
 * What it models (each draw is Philox keyed by (seed, purpose, entity,
 * index), so a log is a pure function of the parameters and the seed):
 *   - Items in categories and subcategories (Zipf-sized), each with a brand
 *     of its category, a Zipf popularity, and a life-cycle: a launch day, a
 *     rise of three weeks, then exponential decay to a small floor.
 *   - Category seasonality (a yearly sine per category) and a daypart
 *     profile per category (work-hours, evening/weekend, neutral).
 *   - Users with a primary category and a preferred subcategory in it (most
 *     of their interactions), a secondary category, an activity level
 *     (heavy-tailed), an active window, a preferred time of day and a
 *     weekend propensity.
 *   - Sessions of Zipf-distributed size at a time drawn from the user's
 *     habits; the session's category depends on the user, the hour/weekday
 *     and the season; items within a session stay in one subcategory and
 *     often follow a "next item" chain (item j, then j+1), so sequences
 *     carry signal a GRU can use. Timestamps are in seconds with real hours
 *     and weekdays, so the temporal context carries signal too.
 *   - Item text: title (brand, subcategory name, subcategory words, a model
 *     code), description (subcategory, category and generic words),
 *     categories and brand, so TF-IDF rows of one subcategory are similar.
 *
 * The log has exactly `interactions` rows before prep (duplicates and the
 * k-core remove some). Ids look like Amazon's ("A" + 13 characters for
 * users, "B0" + 8 for items), scrambled so bytewise order is not the
 * generation order.
 *
 * Ownership: dt_synth_generate fills a dt_interactions (readers.h) and
 * allocates *item_text ([items] strings, each and the array freed by the
 * caller).
 */
#ifndef DTRAIN_SYNTH_H
#define DTRAIN_SYNTH_H

#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/readers.h"

typedef struct {
  int64_t users, items, interactions;
  int64_t categories;    /* top-level categories */
  int64_t subcategories; /* per category */
  int64_t brands;        /* per category */
  int64_t days;          /* length of the log */
  uint64_t seed;
} dt_synth_params;

/* The data.synthetic.* keys. */
void dt_synth_params_from_config(const dt_config *cfg, dt_synth_params *p);

/* Generates the log into `out` (which must be empty): every row is counted
 * in out->read, rows with rating >= min_rating are kept. item_text (may be
 * NULL) gets the text of every generated item, indexed like out->items:
 * title, description, categories and brand joined by spaces, exactly as
 * the Amazon metadata reader joins the same fields. */
int dt_synth_generate(const dt_synth_params *p, double min_rating, dt_interactions *out, char ***item_text);

/* Writes the same log as Amazon Reviews 2018 JSON lines: reviews
 * (reviewerID, asin, overall, unixReviewTime, summary, and some optional
 * fields) and metadata (asin, title, description array, category array,
 * brand; a few asin rows repeated with other text, which readers must
 * ignore). A path ending in ".gz" is gzip-compressed (level 1). Reading
 * them back with data.format = amazon prepares exactly the data set that
 * data.format = synthetic prepares. Fails with DT_EXIT_RUNTIME. */
int dt_synth_write_amazon(const dt_synth_params *p, const char *reviews_path, const char *meta_path);
/* Writes the same log as delimited input, an example of bringing one's own
 * data: interactions (header user,item,timestamp,rating; ISO-8601 UTC
 * times; one row per event) and an item file (header
 * item,text,category,brand; the text quoted per RFC 4180). Fails with
 * DT_EXIT_RUNTIME. */
int dt_synth_write_csv(const dt_synth_params *p, const char *interactions_path, const char *items_path);

#endif
