/* config_suggest.c: the closest valid key to a misspelt one (config_suggest.h)
 * and the edit distance behind it (config.h). */
#include "config/config_suggest.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

int dt_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  int *prev = dt_xmalloc((lb + 1) * sizeof(int));
  int *cur = dt_xmalloc((lb + 1) * sizeof(int));
  for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = prev[j - 1] + cost;
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      cur[j] = best;
    }
    int *t = prev;
    prev = cur;
    cur = t;
  }
  int d = prev[lb];
  free(prev);
  free(cur);
  return d;
}

static const char *last_component(const char *key) {
  const char *dot = strrchr(key, '.');
  return dot ? dot + 1 : key;
}

/* The valid key closest to `key`, or NULL when none is plausibly meant. */
const char *dt_config_closest_key(const char *key) {
  const char *best = NULL;
  int best_d = INT_MAX;
  int n_keys;
  const dt_config_key *schema = dt_config_schema(&n_keys);
  for (int i = 0; i < n_keys; i++) {
    int d = dt_edit_distance(key, schema[i].key);
    if (d < best_d) {
      best_d = d;
      best = schema[i].key;
    }
  }
  int limit = (int)strlen(key) / 3;
  if (limit < 2) limit = 2;
  if (best && best_d <= limit) return best;
  /* A known key name put in the wrong group ("optim.lr" for "train.lr"). */
  const char *tail = last_component(key);
  for (int i = 0; i < n_keys; i++)
    if (strcmp(last_component(schema[i].key), tail) == 0) return schema[i].key;
  return NULL;
}
