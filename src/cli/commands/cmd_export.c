/* dtrain export: a checkpoint's parameters and inference data, without the
 * optimizer state, for serving (recommend, eval, python dtrain_torch.load). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/ckpt.h"
#include "dtrain/cli.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"

static void usage(void) {
  printf(
      "usage: dtrain export --checkpoint FILE -o OUT [--force]\n"
      "\n"
      "Writes the parameters and the inference data (id maps, histories, TF-IDF rows,\n"
      "popularity) of a checkpoint to OUT, without the optimizer state: a file about a\n"
      "third of the checkpoint's size that `dtrain recommend`, `dtrain eval` and the\n"
      "PyTorch package (dtrain_torch.load) read, but training cannot resume from.\n"
      "A checkpoint written before checkpoints carried inference data takes it from\n"
      "its prepared data set. OUT is written atomically; an existing OUT is replaced\n"
      "only when it is a checkpoint or export dtrain wrote.\n"
      "\n"
      "  --checkpoint FILE     the HDF5 checkpoint (required)\n"
      "  -o, --output OUT      the file to write (required)\n"
      "  --force               replace OUT even when dtrain did not write it\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 usage/config, 3 data (bad checkpoint, OUT not replaceable), 4 runtime\n");
}

static double mib(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
}

/* An older checkpoint: the inference data from its prepared data set. */
static int export_from_dataset(const dt_cli_common *common, const char *ckpt, const char *out, int force) {
  dt_config cfg;
  DT_TRY(dt_cli_config_for_checkpoint(common, ckpt, &cfg, NULL));
  dt_model_version version;
  dt_model_variant variant;
  dt_history_mode mode;
  dt_dataset ds;
  memset(&ds, 0, sizeof ds);
  int rc = dt_model_kind(&cfg, &version, &variant, &mode);
  if (!rc && !dt_path_exists(cfg.data_output))
    rc = dt_fail(DT_EXIT_DATA,
                 "checkpoint %s carries no inference data (an older dtrain wrote it) and its prepared data set %s is "
                 "not there to take it from",
                 ckpt, cfg.data_output);
  if (!rc) {
    dt_log_info("checkpoint %s carries no inference data: taking it from the data set %s", ckpt, cfg.data_output);
    rc = dt_dataset_load(cfg.data_output, &ds);
  }
  if (!rc) rc = dt_dataset_load_ids(&ds);
  dt_ckpt_inference inf;
  memset(&inf, 0, sizeof inf);
  int with_tfidf = variant != DT_VARIANT_NO_CONTENT && variant != DT_VARIANT_STATIC_ONLY;
  if (!rc) rc = dt_inference_from_dataset(&ds, mode, with_tfidf, &inf);
  if (!rc) rc = dt_ckpt_export(ckpt, out, &inf, force);
  dt_inference_release(&inf);
  dt_dataset_free(&ds);
  dt_config_free(&cfg);
  return rc;
}

int dt_cmd_export(int argc, char **argv) {
  enum { OPT_CKPT = 2000, OPT_FORCE };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"checkpoint", required_argument, 0, OPT_CKPT},
                                          {"output", required_argument, 0, 'o'},
                                          {"force", no_argument, 0, OPT_FORCE},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *ckpt = NULL, *out = NULL;
  int force = 0, rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:o:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    switch (opt) {
      case OPT_CKPT: ckpt = optarg; break;
      case 'o': out = optarg; break;
      case OPT_FORCE: force = 1; break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default: rc = dt_cli_unknown_option("export", argv);
    }
    if (rc) goto out;
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "export")) != DT_OK) goto out;
  if (!ckpt || !out) {
    rc = dt_fail(DT_EXIT_USAGE, "export: needs --checkpoint FILE and -o OUT (see dtrain export --help)");
    goto out;
  }
  dt_cli_apply_logging(&common);
  int has = 0;
  if ((rc = dt_ckpt_probe(ckpt, &has, NULL)) != DT_OK) goto out;
  rc = has ? dt_ckpt_export(ckpt, out, NULL, force) : export_from_dataset(&common, ckpt, out, force);
  if (!rc) {
    double a = mib(out), b = mib(ckpt);
    printf("wrote %s: %.1f MiB (the checkpoint: %.1f MiB, %.0f%%)\n", out, a, b, b > 0 ? 100.0 * a / b : 0.0);
  }
out:
  dt_cli_common_free(&common);
  return rc;
}
