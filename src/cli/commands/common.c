#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
