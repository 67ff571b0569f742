/* config.h: the configuration, typed and validated.
 *
 * A configuration is built from JSON files (each may name a parent with
 * "extends", itself layered the same way; several files layer in order, later
 * ones winning), then `--set key=value` overrides
 * (typed by the schema), then schema defaults for every key left unset. The
 * schema (config_schema.def) is the one place keys, types, ranges and
 * defaults are defined. Every error names the key, where it came from (file
 * or --set) and what is allowed; an unknown key also gets the closest valid
 * key.
 *
 * Ownership: dt_config_build() fills a dt_config whose strings and JSON tree
 * it owns; release them with dt_config_free().
 */
#ifndef DTRAIN_CONFIG_H
#define DTRAIN_CONFIG_H

#include <stdint.h>

typedef enum { DT_CFG_STR, DT_CFG_INT, DT_CFG_FLOAT, DT_CFG_BOOL, DT_CFG_ENUM, DT_CFG_FLOAT_OR_NULL } dt_cfg_type;

#define DT_CFG_FIELD_STR(f) char *f;
#define DT_CFG_FIELD_ENUM(f) char *f;
#define DT_CFG_FIELD_INT(f) int64_t f;
#define DT_CFG_FIELD_FLOAT(f) double f;
#define DT_CFG_FIELD_FLOAT_OR_NULL(f) double f; /* NaN when null */
#define DT_CFG_FIELD_BOOL(f) int f;

typedef struct dt_config {
#define DT_CFG(field, key, type, def, lo, hi, choices, help) DT_CFG_FIELD_##type(field)
#include "dtrain/config_schema.def"
#undef DT_CFG
  struct cJSON *tree; /* the merged configuration, every key present */
} dt_config;

typedef struct {
  const char *key;
  dt_cfg_type type;
  const char *def;
  double min, max;
  const char *choices;
  const char *help;
} dt_config_key;

/* The schema, in definition order. */
const dt_config_key *dt_config_schema(int *n_keys);
const dt_config_key *dt_config_find_key(const char *key);

/* Builds a configuration from `path` (NULL: defaults only) and `n_sets`
 * overrides "key=value". Returns 0, or DT_EXIT_USAGE with a message (also
 * for a key given twice in one JSON object, naming both lines). */
int dt_config_build(const char *path, const char *const *sets, int n_sets, dt_config *out);
/* The same from n_paths files layered in order, each over the ones before
 * it as if it extended them (later files win), then the overrides. */
int dt_config_build_files(const char *const *paths, int n_paths, const char *const *sets, int n_sets, dt_config *out);
/* Builds a configuration from a complete JSON text (e.g. a checkpoint's
 * stored config); `origin` names it in messages. */
int dt_config_from_string(const char *json, const char *origin, dt_config *out);
/* Applies more overrides to a built configuration. */
int dt_config_apply_sets(dt_config *cfg, const char *const *sets, int n_sets);

/* The merged configuration as pretty JSON (caller frees). */
char *dt_config_to_json(const dt_config *cfg);
/* Writes it to `path` (atomically). */
int dt_config_write(const dt_config *cfg, const char *path);
void dt_config_free(dt_config *cfg);

/* Resolved values that depend on other keys. */
double dt_config_sparse_lr(const dt_config *cfg);
double dt_config_sparse_weight_decay(const dt_config *cfg);
/* "prefix", "user_train" or "chunk" (auto resolved by model.version). */
const char *dt_config_history_mode(const dt_config *cfg);
/* run.dir, or runs/<run.name> when empty (caller frees). */
char *dt_config_run_dir(const dt_config *cfg);

/* Edit distance between two strings (used for "did you mean"). */
int dt_edit_distance(const char *a, const char *b);

#endif
