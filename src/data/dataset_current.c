/* dataset_current.c: is a prepared file what this config would make?
 * (dt_dataset_is_current, dt_dataset_ensure_prepared in dataset.h) */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/h5io.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"

/* Names the first key whose value differs between the recorded config
 * `was` and the current `now` (flat JSON objects). */
static void config_difference(const char *was, const char *now, char *why, int why_size) {
  cJSON *a = cJSON_Parse(was), *b = cJSON_Parse(now);
  snprintf(why, (size_t)why_size, "its preparation config differs from this one");
  const cJSON *item;
  if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
    cJSON_ArrayForEach(item, b) {
      const cJSON *old = cJSON_GetObjectItemCaseSensitive(a, item->string);
      if (old && cJSON_Compare(item, old, 1)) continue;
      char *vo = old ? cJSON_PrintUnformatted(old) : NULL, *vn = cJSON_PrintUnformatted(item);
      snprintf(why, (size_t)why_size, "config key %s was %s when it was prepared, now %s", item->string,
               vo ? vo : "(not recorded)", vn ? vn : "?");
      free(vo);
      free(vn);
      goto done;
    }
    cJSON_ArrayForEach(item, a) {
      if (cJSON_GetObjectItemCaseSensitive(b, item->string)) continue;
      snprintf(why, (size_t)why_size, "config key %s was recorded when it was prepared and no longer applies",
               item->string);
      goto done;
    }
  }
done:
  cJSON_Delete(a);
  cJSON_Delete(b);
}

/* Compares the recorded source checksums with the files named by cfg. */
static int sources_match(const char *recorded, const dt_config *cfg, char *why, int why_size) {
  const char *roles[2], *paths[2];
  int n = dt_prep_sources(cfg, roles, paths);
  cJSON *arr = cJSON_Parse(recorded);
  int ok = cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == n;
  if (!ok) snprintf(why, (size_t)why_size, "its recorded input files differ from this config's");
  for (int k = 0; ok && k < n; k++) {
    const cJSON *o = cJSON_GetArrayItem(arr, k);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    const cJSON *crc = cJSON_GetObjectItemCaseSensitive(o, "crc32");
    if (!cJSON_IsString(role) || strcmp(role->valuestring, roles[k]) || !cJSON_IsNumber(size) || !cJSON_IsString(crc)) {
      snprintf(why, (size_t)why_size, "its recorded input files differ from this config's");
      ok = 0;
      break;
    }
    uint32_t c;
    int64_t sz;
    if (dt_file_crc32(paths[k], &c, &sz) != DT_OK) {
      snprintf(why, (size_t)why_size, "%s", dt_error_message());
      dt_error_clear();
      ok = 0;
      break;
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08" PRIx32, c);
    if ((double)sz != size->valuedouble || strcmp(hex, crc->valuestring)) {
      snprintf(why, (size_t)why_size,
               "input %s changed since it was prepared (size %lld, CRC-32 %s; recorded %.0f, %s)", paths[k],
               (long long)sz, hex, size->valuedouble, crc->valuestring);
      ok = 0;
    }
  }
  cJSON_Delete(arr);
  return ok;
}

int dt_dataset_is_current(const char *path, const dt_config *cfg, char *why, int why_size) {
  if (!dt_path_exists(path)) {
    snprintf(why, (size_t)why_size, "%s does not exist", path);
    return 0;
  }
  hid_t f;
  if (dt_h5_open_prepared(path, DT_DATASET_FORMAT_VERSION, &f) != DT_OK) {
    snprintf(why, (size_t)why_size, "%s", dt_error_message());
    dt_error_clear();
    return 0;
  }
  char *recorded_cfg = NULL, *recorded_src = NULL;
  int ok = dt_h5_read_attr_str(f, "prep_config", &recorded_cfg, path) == DT_OK &&
           dt_h5_read_attr_str(f, "sources", &recorded_src, path) == DT_OK;
  H5Fclose(f);
  if (!ok) {
    snprintf(why, (size_t)why_size, "%s", dt_error_message());
    dt_error_clear();
  } else {
    char *now = dt_prep_config_json(cfg);
    if (strcmp(now, recorded_cfg) != 0) {
      config_difference(recorded_cfg, now, why, why_size);
      ok = 0;
    }
    free(now);
    if (ok) ok = sources_match(recorded_src, cfg, why, why_size);
  }
  free(recorded_cfg);
  free(recorded_src);
  return ok;
}

int dt_dataset_ensure_prepared(const dt_config *cfg) {
  char why[1024];
  if (dt_dataset_is_current(cfg->data_output, cfg, why, sizeof why)) {
    dt_log_info("data: %s is current", cfg->data_output);
    return DT_OK;
  }
  dt_log_info("data: preparing %s (%s)", cfg->data_output, why);
  dt_prep_summary s;
  DT_TRY(dt_prep_run(cfg, &s));
  if (dt_log_is_printing_rank() && dt_log_get_level() >= DT_LOG_INFO)
    dt_prep_summary_print(stderr, &s, cfg->data_kcore, cfg->data_split);
  return DT_OK;
}
