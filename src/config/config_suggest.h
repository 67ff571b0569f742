/* config_suggest.h (internal to src/config): "did you mean" for unknown keys. */
#ifndef DTRAIN_CONFIG_SUGGEST_H
#define DTRAIN_CONFIG_SUGGEST_H

/* The schema key closest to `key` (edit distance, or the same last
 * component in another group), or NULL when none is plausibly meant. */
const char *dt_config_closest_key(const char *key);

#endif
