/* data_config.c: data.* rules across keys (data_config.h). */
#include "dtrain/data_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/readers.h"

#define SYNTHETIC_OUTPUT "data/prepared/synthetic.h5"

/* "dir/ratings.csv.gz" -> "ratings" */
static void input_name(const char *path, char *out, size_t n) {
  const char *base = strrchr(path, '/');
  snprintf(out, n, "%s", base ? base + 1 : path);
  static const char *const packed[] = {".gz", ".bz2", ".xz", ".zst"};
  size_t len = strlen(out);
  for (size_t k = 0; k < sizeof packed / sizeof packed[0]; k++) {
    size_t s = strlen(packed[k]);
    if (len > s && !strcmp(out + len - s, packed[k])) {
      out[len -= s] = '\0';
      break;
    }
  }
  char *dot = strrchr(out, '.');
  if (dot && dot != out) *dot = '\0';
  if (!out[0]) snprintf(out, n, "input");
}

void dt_data_config_resolve(dt_config *cfg, struct cJSON *tree) {
  if (cfg->data_output && cfg->data_output[0]) return;
  char path[1200];
  if (strcmp(cfg->data_format, "synthetic") != 0 && cfg->data_reviews[0]) {
    char name[1024];
    input_name(cfg->data_reviews, name, sizeof name);
    snprintf(path, sizeof path, "data/prepared/%s.h5", name);
  } else {
    snprintf(path, sizeof path, "%s", SYNTHETIC_OUTPUT);
  }
  free(cfg->data_output);
  cfg->data_output = dt_xstrdup(path);
  cJSON *data = tree ? cJSON_GetObjectItemCaseSensitive(tree, "data") : NULL;
  if (cJSON_IsObject(data)) {
    cJSON *v = cJSON_CreateString(path);
    if (!v) dt_panic("cJSON allocation failed");
    if (cJSON_GetObjectItemCaseSensitive(data, "output"))
      cJSON_ReplaceItemInObjectCaseSensitive(data, "output", v);
    else
      cJSON_AddItemToObject(data, "output", v);
  }
}

int dt_data_config_check(const dt_config *cfg) {
  const char *fmt = cfg->data_format;
  if (!strcmp(fmt, "synthetic")) {
    const struct {
      const char *key, *value;
    } files[] = {{"data.reviews", cfg->data_reviews}, {"data.meta", cfg->data_meta}, {"data.items", cfg->data_items}};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
      if (files[k].value[0])
        return dt_fail(DT_EXIT_USAGE,
                       "config key '%s' names a file (\"%s\") but 'data.format' is \"synthetic\", which generates "
                       "the data and reads no file: set data.format to \"delimited\" (CSV/TSV) or \"amazon\" (JSON "
                       "lines) to read it, or leave %s empty",
                       files[k].key, files[k].value, files[k].key);
  }
  if (!strcmp(fmt, "delimited") && cfg->data_meta[0])
    return dt_fail(DT_EXIT_USAGE,
                   "config key 'data.meta' (\"%s\") is Amazon metadata (JSON lines), which 'data.format' = "
                   "\"delimited\" does not read: name a CSV/TSV item file (item,text[,category][,brand]) with "
                   "data.items instead",
                   cfg->data_meta);
  if (!strcmp(fmt, "amazon") && cfg->data_items[0])
    return dt_fail(DT_EXIT_USAGE,
                   "config key 'data.items' (\"%s\") is read for 'data.format' = \"delimited\" only; Amazon "
                   "metadata goes in data.meta",
                   cfg->data_items);
  char d;
  return dt_delimiter_parse(cfg->data_delimiter, &d);
}
