/* config.c: JSON configuration with "extends" layering, typed --set
 * overrides and validation against the schema in config_schema.def. */
#include "dtrain/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_suggest.h"
#include "config/json_dupkeys.h"
#include "dtrain/data_config.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"

/* ---- The schema table, generated from config_schema.def ---------------------- */

static const dt_config_key g_schema[] = {
#define DT_CFG(field, key, type, def, lo, hi, choices, help) {key, DT_CFG_##type, def, lo, hi, choices, help},
#include "dtrain/config_schema.def"
#undef DT_CFG
};
static const size_t g_offsets[] = {
#define DT_CFG(field, key, type, def, lo, hi, choices, help) offsetof(dt_config, field),
#include "dtrain/config_schema.def"
#undef DT_CFG
};
enum { N_KEYS = (int)(sizeof g_schema / sizeof g_schema[0]) };

/* A config file may not extend more deeply than this (catches cycles too). */
enum { MAX_EXTENDS_DEPTH = 16 };

const dt_config_key *dt_config_schema(int *n_keys) {
  if (n_keys) *n_keys = N_KEYS;
  return g_schema;
}

static int key_index(const char *key) {
  for (int i = 0; i < N_KEYS; i++)
    if (strcmp(g_schema[i].key, key) == 0) return i;
  return -1;
}

const dt_config_key *dt_config_find_key(const char *key) {
  int i = key_index(key);
  return i < 0 ? NULL : &g_schema[i];
}

/* Whether `prefix` names a group of keys ("train" for "train.lr"). */
static int is_group(const char *prefix) {
  size_t n = strlen(prefix);
  for (int i = 0; i < N_KEYS; i++)
    if (strncmp(g_schema[i].key, prefix, n) == 0 && g_schema[i].key[n] == '.') return 1;
  return 0;
}

static int unknown_key_error(const char *key, const char *origin) {
  const char *hint = dt_config_closest_key(key);
  if (hint)
    return dt_fail(DT_EXIT_USAGE,
                   "unknown config key '%s' (%s); did you mean '%s'? (`dtrain config --schema` lists every key)", key,
                   origin, hint);
  return dt_fail(DT_EXIT_USAGE, "unknown config key '%s' (%s); `dtrain config --schema` lists every key", key, origin);
}

/* ---- Values ---------------------------------------------------------------- */

static void describe_allowed(const dt_config_key *k, char *out, size_t n) {
  switch (k->type) {
    case DT_CFG_INT: snprintf(out, n, "an integer in [%.15g, %.15g]", k->min, k->max); break;
    case DT_CFG_FLOAT: snprintf(out, n, "a number in [%.15g, %.15g]", k->min, k->max); break;
    case DT_CFG_FLOAT_OR_NULL: snprintf(out, n, "null or a number in [%.15g, %.15g]", k->min, k->max); break;
    case DT_CFG_BOOL: snprintf(out, n, "true or false"); break;
    case DT_CFG_STR: snprintf(out, n, "a string"); break;
    case DT_CFG_ENUM: {
      char buf[512];
      snprintf(buf, sizeof buf, "%s", k->choices);
      for (char *c = buf; *c; c++)
        if (*c == '|') *c = '/';
      snprintf(out, n, "one of %s", buf);
      break;
    }
  }
}

static const char *json_kind(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  return "an invalid value";
}

static int enum_contains(const char *choices, const char *s) {
  size_t n = strlen(s);
  const char *p = choices;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && strncmp(p, s, n) == 0) return 1;
    if (!bar) break;
    p = bar + 1;
  }
  return 0;
}

/* Checks one leaf value against its schema entry. */
static int check_value(const dt_config_key *k, const cJSON *v, const char *origin) {
  char allowed[600];
  describe_allowed(k, allowed, sizeof allowed);
  switch (k->type) {
    case DT_CFG_STR:
      if (!cJSON_IsString(v))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' (%s) must be %s, got %s", k->key, origin, allowed, json_kind(v));
      return DT_OK;
    case DT_CFG_ENUM:
      if (!cJSON_IsString(v))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' (%s) must be %s, got %s", k->key, origin, allowed, json_kind(v));
      if (!enum_contains(k->choices, v->valuestring))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' = \"%s\" (%s) is not allowed: it must be %s", k->key,
                       v->valuestring, origin, allowed);
      return DT_OK;
    case DT_CFG_BOOL:
      if (!cJSON_IsBool(v))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' (%s) must be %s, got %s", k->key, origin, allowed, json_kind(v));
      return DT_OK;
    case DT_CFG_FLOAT_OR_NULL:
      if (cJSON_IsNull(v)) return DT_OK;
      /* fall through */
    case DT_CFG_INT:
    case DT_CFG_FLOAT: {
      if (!cJSON_IsNumber(v))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' (%s) must be %s, got %s", k->key, origin, allowed, json_kind(v));
      double x = v->valuedouble;
      if (!isfinite(x)) return dt_fail(DT_EXIT_USAGE, "config key '%s' (%s) must be finite", k->key, origin);
      if (k->type == DT_CFG_INT && x != floor(x))
        return dt_fail(DT_EXIT_USAGE, "config key '%s' = %.17g (%s) must be %s", k->key, x, origin, allowed);
      if (x < k->min || x > k->max)
        return dt_fail(DT_EXIT_USAGE, "config key '%s' = %.17g (%s) is out of range: it must be %s", k->key, x, origin,
                       allowed);
      return DT_OK;
    }
  }
  return DT_OK;
}

/* Parses `text` as a value of key `k` (for --set and for defaults). */
static int parse_typed(const dt_config_key *k, const char *text, const char *origin, cJSON **out) {
  char allowed[600];
  describe_allowed(k, allowed, sizeof allowed);
  switch (k->type) {
    case DT_CFG_STR:
    case DT_CFG_ENUM: *out = cJSON_CreateString(text); break;
    case DT_CFG_BOOL:
      if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes") || !strcmp(text, "on"))
        *out = cJSON_CreateTrue();
      else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no") || !strcmp(text, "off"))
        *out = cJSON_CreateFalse();
      else
        return dt_fail(DT_EXIT_USAGE, "config key '%s' = \"%s\" (%s) must be %s", k->key, text, origin, allowed);
      break;
    case DT_CFG_FLOAT_OR_NULL:
      if (!strcmp(text, "null")) {
        *out = cJSON_CreateNull();
        break;
      }
      /* fall through */
    case DT_CFG_INT:
    case DT_CFG_FLOAT: {
      char *end = NULL;
      errno = 0;
      double x = strtod(text, &end);
      if (!*text || *end || errno == ERANGE)
        return dt_fail(DT_EXIT_USAGE, "config key '%s' = \"%s\" (%s) must be %s", k->key, text, origin, allowed);
      *out = cJSON_CreateNumber(x);
      break;
    }
  }
  if (!*out) dt_panic("cJSON allocation failed");
  return DT_OK;
}

/* ---- Trees with dotted paths --------------------------------------------------- */

/* The value at dotted `key`, or NULL. */
static cJSON *tree_get(cJSON *tree, const char *key) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", key);
  cJSON *node = tree;
  char *save = NULL;
  for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
    if (!cJSON_IsObject(node)) return NULL;
    node = cJSON_GetObjectItemCaseSensitive(node, part);
    if (!node) return NULL;
  }
  return node;
}

/* Puts `value` at dotted `key` (creating groups), replacing any old value. */
static void tree_set(cJSON *tree, const char *key, cJSON *value) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", key);
  cJSON *node = tree;
  char *save = NULL;
  char *part = strtok_r(buf, ".", &save);
  while (part) {
    char *next = strtok_r(NULL, ".", &save);
    if (!next) {
      if (cJSON_GetObjectItemCaseSensitive(node, part))
        cJSON_ReplaceItemInObjectCaseSensitive(node, part, value);
      else
        cJSON_AddItemToObject(node, part, value);
      return;
    }
    cJSON *child = cJSON_GetObjectItemCaseSensitive(node, part);
    if (!cJSON_IsObject(child)) {
      if (child) cJSON_DeleteItemFromObjectCaseSensitive(node, part);
      child = cJSON_AddObjectToObject(node, part);
    }
    node = child;
    part = next;
  }
}

/* ---- Loading files --------------------------------------------------------------- */

typedef struct {
  cJSON *tree;    /* merged values */
  cJSON *origins; /* dotted key -> where it was set */
} layers;

static void line_col(const char *text, const char *at, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (const char *p = text; p < at && *p; p++) {
    if (*p == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

static int merge_object(layers *acc, const cJSON *obj, const char *prefix, const char *origin, int top);

static int merge_value(layers *acc, const char *key, const cJSON *item, const char *origin) {
  if (key_index(key) >= 0) {
    char where[1100];
    snprintf(where, sizeof where, "in %s", origin);
    DT_TRY(check_value(dt_config_find_key(key), item, where));
    cJSON *copy = cJSON_Duplicate(item, 1);
    if (!copy) dt_panic("cJSON allocation failed");
    tree_set(acc->tree, key, copy);
    cJSON *o = cJSON_CreateString(where);
    if (cJSON_GetObjectItemCaseSensitive(acc->origins, key))
      cJSON_ReplaceItemInObjectCaseSensitive(acc->origins, key, o);
    else
      cJSON_AddItemToObject(acc->origins, key, o);
    return DT_OK;
  }
  if (is_group(key)) {
    if (!cJSON_IsObject(item))
      return dt_fail(DT_EXIT_USAGE, "config key '%s' (in %s) is a group of keys and must be an object, got %s", key,
                     origin, json_kind(item));
    return merge_object(acc, item, key, origin, 0);
  }
  char where[1100];
  snprintf(where, sizeof where, "in %s", origin);
  /* A misspelt group ("trian": {"lr": ..}): name the first full key inside
   * it, so the suggestion can match a real key ("train.lr"). */
  char full[256];
  snprintf(full, sizeof full, "%s", key);
  for (const cJSON *c = item; cJSON_IsObject(c) && c->child; c = c->child) {
    size_t used = strlen(full);
    snprintf(full + used, sizeof full - used, ".%s", c->child->string);
  }
  return unknown_key_error(full, where);
}

static int merge_object(layers *acc, const cJSON *obj, const char *prefix, const char *origin, int top) {
  const cJSON *item;
  cJSON_ArrayForEach(item, obj) {
    if (top && strcmp(item->string, "extends") == 0) continue;
    if (strcmp(item->string, "_comment") == 0) continue; /* documentation inside config files */
    char key[256];
    if (prefix)
      snprintf(key, sizeof key, "%s.%s", prefix, item->string);
    else
      snprintf(key, sizeof key, "%s", item->string);
    DT_TRY(merge_value(acc, key, item, origin));
  }
  return DT_OK;
}

static int load_layer(layers *acc, const char *path, int depth) {
  if (depth > MAX_EXTENDS_DEPTH)
    return dt_fail(DT_EXIT_USAGE, "config %s: \"extends\" nests more than %d files deep (a cycle?)", path,
                   MAX_EXTENDS_DEPTH);
  char *text = NULL;
  if (dt_read_file(path, &text, NULL, DT_EXIT_USAGE) != DT_OK) return dt_fail_context(DT_EXIT_USAGE, "config file");
  const char *err_at = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &err_at, 1);
  if (!root) {
    int line, col;
    line_col(text, err_at ? err_at : text, &line, &col);
    free(text);
    return dt_fail(DT_EXIT_USAGE, "config file %s: invalid JSON at line %d, column %d", path, line, col);
  }
  char dup[256];
  int line1, line2, rc = DT_OK;
  if (dt_json_find_duplicate_key(text, dup, sizeof dup, &line1, &line2))
    rc = dt_fail(DT_EXIT_USAGE,
                 "config file %s: key '%s' appears twice in one object (lines %d and %d); only one value can hold: "
                 "remove the other",
                 path, dup, line1, line2);
  free(text);
  if (rc != DT_OK) goto done;
  if (!cJSON_IsObject(root)) {
    rc = dt_fail(DT_EXIT_USAGE, "config file %s: the top level must be a JSON object", path);
    goto done;
  }
  const cJSON *ext = cJSON_GetObjectItemCaseSensitive(root, "extends");
  if (ext) {
    int n = cJSON_IsArray(ext) ? cJSON_GetArraySize(ext) : 1;
    char *dir = dt_path_dirname(path);
    for (int i = 0; i < n && rc == DT_OK; i++) {
      const cJSON *e = cJSON_IsArray(ext) ? cJSON_GetArrayItem(ext, i) : ext;
      if (!cJSON_IsString(e) || !e->valuestring[0]) {
        rc = dt_fail(DT_EXIT_USAGE, "config file %s: \"extends\" must be a file name or a list of them", path);
        break;
      }
      char *parent = dt_path_join(dir, e->valuestring);
      rc = load_layer(acc, parent, depth + 1);
      if (rc != DT_OK && !strstr(dt_error_message(), "extended by")) dt_fail_context(rc, "extended by %s", path);
      free(parent);
    }
    free(dir);
    if (rc != DT_OK) goto done;
  }
  rc = merge_object(acc, root, NULL, path, 1);
done:
  cJSON_Delete(root);
  return rc;
}

/* ---- The typed struct ------------------------------------------------------------ */

static void free_strings(dt_config *cfg) {
  for (int i = 0; i < N_KEYS; i++) {
    if (g_schema[i].type == DT_CFG_STR || g_schema[i].type == DT_CFG_ENUM) {
      char **slot = (char **)((char *)cfg + g_offsets[i]);
      free(*slot);
      *slot = NULL;
    }
  }
}

/* Fills defaults into `tree` and the typed fields from it. */
static int finish(cJSON *tree, cJSON *origins, dt_config *out) {
  for (int i = 0; i < N_KEYS; i++) {
    const dt_config_key *k = &g_schema[i];
    cJSON *v = tree_get(tree, k->key);
    if (!v) {
      cJSON *def = NULL;
      if (parse_typed(k, k->def, "schema default", &def) != DT_OK) dt_panic("bad default for %s", k->key);
      tree_set(tree, k->key, def);
      v = def;
    }
    const cJSON *o = origins ? cJSON_GetObjectItemCaseSensitive(origins, k->key) : NULL;
    char where[1100];
    snprintf(where, sizeof where, "%s", o ? o->valuestring : "default");
    DT_TRY(check_value(k, v, where));
    void *slot = (char *)out + g_offsets[i];
    switch (k->type) {
      case DT_CFG_STR:
      case DT_CFG_ENUM: *(char **)slot = dt_xstrdup(v->valuestring); break;
      case DT_CFG_INT: *(int64_t *)slot = (int64_t)v->valuedouble; break;
      case DT_CFG_FLOAT: *(double *)slot = v->valuedouble; break;
      case DT_CFG_FLOAT_OR_NULL: *(double *)slot = cJSON_IsNull(v) ? NAN : v->valuedouble; break;
      case DT_CFG_BOOL: *(int *)slot = cJSON_IsTrue(v); break;
    }
  }
  dt_data_config_resolve(out, tree); /* an empty data.output */
  /* Checks that involve several keys. */
  if (out->data_train_frac + out->data_valid_frac >= 1.0)
    return dt_fail(DT_EXIT_USAGE,
                   "config keys 'data.train_frac' (%.6g) + 'data.valid_frac' (%.6g) must be below 1 so the test split "
                   "is not empty",
                   out->data_train_frac, out->data_valid_frac);
  if (!strcmp(out->model_encoder, "sasrec") && out->model_dim % out->model_sasrec_heads != 0)
    return dt_fail(DT_EXIT_USAGE,
                   "config key 'model.dim' (%lld) must be a multiple of 'model.sasrec_heads' (%lld): each attention "
                   "head gets model.dim / model.sasrec_heads columns",
                   (long long)out->model_dim, (long long)out->model_sasrec_heads);
  return DT_OK;
}

static int rebuild(dt_config *cfg, cJSON *tree, cJSON *origins) {
  free_strings(cfg);
  int rc = finish(tree, origins, cfg);
  if (rc != DT_OK) {
    free_strings(cfg);
    return rc;
  }
  return DT_OK;
}

static int apply_sets(cJSON *tree, cJSON *origins, const char *const *sets, int n_sets) {
  for (int i = 0; i < n_sets; i++) {
    const char *eq = strchr(sets[i], '=');
    if (!eq || eq == sets[i])
      return dt_fail(DT_EXIT_USAGE, "--set '%s': expected key=value, e.g. --set train.lr=5e-4", sets[i]);
    char key[256];
    size_t n = (size_t)(eq - sets[i]);
    if (n >= sizeof key) return dt_fail(DT_EXIT_USAGE, "--set '%s': the key is too long", sets[i]);
    memcpy(key, sets[i], n);
    key[n] = '\0';
    const dt_config_key *k = dt_config_find_key(key);
    if (!k) {
      if (is_group(key))
        return dt_fail(DT_EXIT_USAGE, "--set '%s': '%s' is a group of keys; set one of its keys, e.g. %s.<name>=...",
                       sets[i], key, key);
      return unknown_key_error(key, "from --set");
    }
    cJSON *v = NULL;
    DT_TRY(parse_typed(k, eq + 1, "from --set", &v));
    int rc = check_value(k, v, "from --set");
    if (rc != DT_OK) {
      cJSON_Delete(v);
      return rc;
    }
    tree_set(tree, key, v);
    if (origins) {
      cJSON *o = cJSON_CreateString("from --set");
      if (cJSON_GetObjectItemCaseSensitive(origins, key))
        cJSON_ReplaceItemInObjectCaseSensitive(origins, key, o);
      else
        cJSON_AddItemToObject(origins, key, o);
    }
  }
  return DT_OK;
}

/* Finishes a configuration from merged layers (rc: the merge's result);
 * takes ownership of acc either way. */
static int take_layers(layers *acc, int rc, dt_config *out) {
  if (rc == DT_OK) rc = rebuild(out, acc->tree, acc->origins);
  cJSON_Delete(acc->origins);
  if (rc != DT_OK) {
    cJSON_Delete(acc->tree);
    memset(out, 0, sizeof *out);
    return rc;
  }
  out->tree = acc->tree;
  return DT_OK;
}

int dt_config_build_files(const char *const *paths, int n_paths, const char *const *sets, int n_sets, dt_config *out) {
  memset(out, 0, sizeof *out);
  layers acc = {cJSON_CreateObject(), cJSON_CreateObject()};
  int rc = DT_OK;
  for (int i = 0; i < n_paths && rc == DT_OK; i++) rc = load_layer(&acc, paths[i], 0);
  if (rc == DT_OK) rc = apply_sets(acc.tree, acc.origins, sets, n_sets);
  rc = take_layers(&acc, rc, out);
  if (rc == DT_OK && (rc = dt_data_config_check(out)) != DT_OK) dt_config_free(out);
  return rc;
}

int dt_config_build(const char *path, const char *const *sets, int n_sets, dt_config *out) {
  return dt_config_build_files(&path, path ? 1 : 0, sets, n_sets, out);
}

int dt_config_from_string(const char *json, const char *origin, dt_config *out) {
  memset(out, 0, sizeof *out);
  cJSON *root = cJSON_Parse(json);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return dt_fail(DT_EXIT_USAGE, "%s: the stored configuration is not a JSON object", origin);
  }
  layers acc = {cJSON_CreateObject(), cJSON_CreateObject()};
  int rc = merge_object(&acc, root, NULL, origin, 1);
  cJSON_Delete(root);
  return take_layers(&acc, rc, out);
}

int dt_config_apply_sets(dt_config *cfg, const char *const *sets, int n_sets) {
  cJSON *copy = cJSON_Duplicate(cfg->tree, 1);
  int rc = apply_sets(copy, NULL, sets, n_sets);
  if (rc == DT_OK) {
    dt_config next;
    memset(&next, 0, sizeof next);
    rc = rebuild(&next, copy, NULL);
    if (rc == DT_OK) {
      free_strings(cfg);
      cJSON_Delete(cfg->tree);
      *cfg = next;
      cfg->tree = copy;
      return DT_OK;
    }
  }
  cJSON_Delete(copy);
  return rc;
}

char *dt_config_to_json(const dt_config *cfg) {
  /* Rebuilt in schema order so the printout is stable and grouped. */
  cJSON *ordered = cJSON_CreateObject();
  for (int i = 0; i < N_KEYS; i++) {
    cJSON *v = tree_get(cfg->tree, g_schema[i].key);
    if (v) tree_set(ordered, g_schema[i].key, cJSON_Duplicate(v, 1));
  }
  char *s = cJSON_Print(ordered);
  cJSON_Delete(ordered);
  if (!s) dt_panic("cJSON_Print failed");
  char *copy = dt_xstrdup(s);
  cJSON_free(s);
  return copy;
}

int dt_config_write(const dt_config *cfg, const char *path) {
  char *s = dt_config_to_json(cfg);
  size_t n = strlen(s);
  s = dt_xrealloc(s, n + 2);
  s[n] = '\n';
  s[n + 1] = '\0';
  int rc = dt_write_file_atomic(path, s, n + 1);
  free(s);
  return rc;
}

void dt_config_free(dt_config *cfg) {
  if (!cfg) return;
  free_strings(cfg);
  cJSON_Delete(cfg->tree);
  memset(cfg, 0, sizeof *cfg);
}

double dt_config_sparse_lr(const dt_config *cfg) {
  return isnan(cfg->optim_sparse_lr) ? cfg->train_lr : cfg->optim_sparse_lr;
}

double dt_config_sparse_weight_decay(const dt_config *cfg) {
  return isnan(cfg->optim_sparse_weight_decay) ? cfg->optim_weight_decay : cfg->optim_sparse_weight_decay;
}

const char *dt_config_history_mode(const dt_config *cfg) {
  if (strcmp(cfg->model_history, "auto") != 0) return cfg->model_history;
  return strcmp(cfg->model_version, "v3") == 0 ? "chunk" : "prefix";
}

char *dt_config_run_dir(const dt_config *cfg) {
  if (cfg->run_dir[0]) return dt_xstrdup(cfg->run_dir);
  size_t n = strlen(cfg->run_name) + 8;
  char *d = dt_xmalloc(n);
  snprintf(d, n, "runs/%s", cfg->run_name);
  return d;
}
