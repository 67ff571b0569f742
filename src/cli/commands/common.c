#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dtrain/ckpt.h"

#include "dtrain/cli.h"
#include "dtrain/error.h"
#include "dtrain/log.h"

int dt_cli_common_option(int opt, const char *arg, dt_cli_common *common) {
  switch (opt) {
    case DT_OPT_CONFIG:
      common->configs = dt_xrealloc(common->configs, sizeof(char *) * (size_t)(common->n_configs + 1));
      common->configs[common->n_configs++] = arg;
      return 1;
    case DT_OPT_SET:
      common->sets = dt_xrealloc(common->sets, sizeof(char *) * (size_t)(common->n_sets + 1));
      common->sets[common->n_sets++] = arg;
      return 1;
    case DT_OPT_QUIET: common->quiet = 1; return 1;
    case DT_OPT_VERBOSE: common->verbose = 1; return 1;
    case DT_OPT_LOG_ALL_RANKS: common->log_all_ranks = 1; return 1;
    default: return 0;
  }
}

void dt_cli_apply_logging(const dt_cli_common *common) {
  if (common->quiet) dt_log_set_level(DT_LOG_WARN);
  if (common->verbose) dt_log_set_level(DT_LOG_DEBUG);
  dt_log_set_all_ranks(common->log_all_ranks);
}

int dt_cli_build_config(const dt_cli_common *common, dt_config *cfg) {
  return dt_config_build_files(common->configs, common->n_configs, common->sets, common->n_sets, cfg);
}

int dt_cli_config_for_checkpoint(const dt_cli_common *common, const char *checkpoint, dt_config *cfg,
                                 uint32_t *ckpt_crc) {
  char *stored = NULL;
  int rc = dt_ckpt_read_meta(checkpoint, &stored, ckpt_crc);
  if (!rc) {
    if (common->n_configs > 0) {
      rc = dt_cli_build_config(common, cfg);
    } else {
      rc = dt_config_from_string(stored, checkpoint, cfg);
      if (!rc) rc = dt_config_apply_sets(cfg, common->sets, common->n_sets);
      if (rc) memset(cfg, 0, sizeof *cfg);
    }
  }
  free(stored);
  return rc;
}

int dt_cli_check_checkpoint_data(const char *ckpt, uint32_t ckpt_crc, const char *data_path, uint32_t data_crc,
                                 int allow_other, int warn_only) {
  if (ckpt_crc == 0) {
    dt_log_warn(
        "checkpoint %s records no data-set checksum (written by an older dtrain): cannot check that %s is the "
        "data set it was trained on",
        ckpt, data_path);
    return DT_OK;
  }
  if (ckpt_crc == data_crc) return DT_OK;
  if (warn_only || allow_other) {
    dt_log_warn("the data set %s differs from the one the checkpoint %s was trained on (CRC-32 %08x vs %08x)%s",
                data_path, ckpt, data_crc, ckpt_crc, allow_other ? "; going on (--allow-other-data)" : "");
    return DT_OK;
  }
  return dt_fail(
      DT_EXIT_DATA,
      "the data set %s (CRC-32 %08x) is not the one checkpoint %s was trained on (CRC-32 %08x): its user and "
      "item numbering may differ, so the results would be wrong. Point data.output at that data set, or add "
      "--allow-other-data if you know the two agree (e.g. prepared again from the same input)",
      data_path, data_crc, ckpt, ckpt_crc);
}

int dt_cli_json_has_keys(const char *path, const char *const *keys, int n_keys, int first_line) {
  /* dtrain's outputs of these kinds are small: a larger file is not one
   * (and is not read whole) */
  enum { LIMIT = 1 << 22 };
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char *text = dt_xmalloc(LIMIT + 1);
  size_t len = fread(text, 1, LIMIT, f);
  int too_big = len == LIMIT && fgetc(f) != EOF;
  fclose(f);
  text[len] = '\0';
  if (first_line) text[strcspn(text, "\n")] = '\0';
  if (too_big && !first_line) {
    free(text);
    return 0;
  }
  cJSON *o = cJSON_Parse(text);
  int ok = cJSON_IsObject(o);
  for (int i = 0; ok && i < n_keys; i++) ok = cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL;
  cJSON_Delete(o);
  free(text);
  return ok;
}

int dt_cli_unknown_option(const char *command, char **argv) {
  return dt_fail(DT_EXIT_USAGE, "%s: unknown or incomplete option '%s' (see dtrain %s --help)", command,
                 argv[optind - 1], command);
}

int dt_cli_required(const char *command, const char *option, const void *value) {
  if (value) return DT_OK;
  return dt_fail(DT_EXIT_USAGE, "%s: %s is required (see dtrain %s --help)", command, option, command);
}

int dt_cli_no_positionals(int argc, char **argv, int optind_, const char *command) {
  if (optind_ < argc)
    return dt_fail(DT_EXIT_USAGE, "%s: unexpected argument '%s' (see dtrain %s --help)", command, argv[optind_],
                   command);
  return DT_OK;
}

void dt_cli_common_free(dt_cli_common *common) {
  free(common->configs);
  common->configs = NULL;
  common->n_configs = 0;
  free(common->sets);
  common->sets = NULL;
  common->n_sets = 0;
}
