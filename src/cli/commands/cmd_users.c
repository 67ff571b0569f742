/* dtrain users: the user ids a checkpoint knows (what recommend --user
 * takes), from its inference data, or from its prepared data set when an
 * older dtrain wrote it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ckpt.h"
#include "dtrain/cli.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"

static void usage(void) {
  printf(
      "usage: dtrain users --checkpoint FILE [--limit N]\n"
      "\n"
      "Prints the ids of the users a checkpoint (or export) knows, one per line, in\n"
      "its order (bytewise sorted): the ids `dtrain recommend --user` takes.\n"
      "\n"
      "  --checkpoint FILE     the HDF5 checkpoint or export (required)\n"
      "  --limit N             at most N ids (default: all)\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 usage/config, 3 data (bad checkpoint, missing data set), 4 runtime\n");
}

static void print_ids(char *const *ids, int64_t n, int64_t limit) {
  if (limit > 0 && limit < n) n = limit;
  for (int64_t i = 0; i < n; i++) printf("%s\n", ids[i]);
}

/* A checkpoint without /inference: the ids of the data set it names. */
static int from_dataset(const dt_cli_common *common, const char *ckpt, int64_t limit) {
  dt_config cfg;
  DT_TRY(dt_cli_config_for_checkpoint(common, ckpt, &cfg, NULL));
  dt_dataset ds;
  memset(&ds, 0, sizeof ds);
  int rc = DT_OK;
  if (!dt_path_exists(cfg.data_output))
    rc = dt_fail(DT_EXIT_DATA,
                 "checkpoint %s carries no inference data (an older dtrain wrote it) and its prepared data set %s is "
                 "not there",
                 ckpt, cfg.data_output);
  if (!rc) {
    dt_log_info("checkpoint %s carries no inference data: the users of its data set %s", ckpt, cfg.data_output);
    rc = dt_dataset_load(cfg.data_output, &ds);
  }
  if (!rc) rc = dt_dataset_load_ids(&ds);
  if (!rc) print_ids(ds.user_ids, ds.n_users, limit);
  dt_dataset_free(&ds);
  dt_config_free(&cfg);
  return rc;
}

int dt_cmd_users(int argc, char **argv) {
  enum { OPT_CKPT = 2000, OPT_LIMIT };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"checkpoint", required_argument, 0, OPT_CKPT},
                                          {"limit", required_argument, 0, OPT_LIMIT},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *ckpt = NULL;
  long long limit = 0;
  int rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    char *end = NULL;
    switch (opt) {
      case OPT_CKPT: ckpt = optarg; break;
      case OPT_LIMIT:
        limit = strtoll(optarg, &end, 10);
        if (!*optarg || *end || limit <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "users: --limit needs a positive integer, got '%s'", optarg);
        break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default: rc = dt_cli_unknown_option("users", argv);
    }
    if (rc) goto out;
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "users")) != DT_OK) goto out;
  if ((rc = dt_cli_required("users", "--checkpoint FILE", ckpt)) != DT_OK) goto out;
  dt_cli_apply_logging(&common);
  int has = 0;
  if ((rc = dt_ckpt_probe(ckpt, &has, NULL)) != DT_OK) goto out;
  if (has) {
    dt_ckpt_inference inf;
    rc = dt_ckpt_read_inference(ckpt, &inf);
    if (!rc) print_ids(inf.user_ids, inf.n_users, limit);
    if (!rc) dt_ckpt_inference_free(&inf);
  } else {
    rc = from_dataset(&common, ckpt, limit);
  }
  if (!rc && (fflush(stdout) != 0 || ferror(stdout))) rc = dt_fail(DT_EXIT_RUNTIME, "users: cannot write the ids");
out:
  dt_cli_common_free(&common);
  return rc;
}
