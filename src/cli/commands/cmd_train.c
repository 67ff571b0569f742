/* dtrain train: prepare the data set if needed, train, checkpoint, evaluate. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ckpt.h"
#include "dtrain/cli.h"
#include "dtrain/comm.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"

static void usage(void) {
  printf(
      "usage: dtrain train [options]          (also: dtrain [options])\n"
      "       mpirun -np N dtrain train [options]\n"
      "\n"
      "Prepares the data set when its file is missing or stale, trains the model of\n"
      "the config, validates every epoch (early stopping on NDCG@10), writes\n"
      "checkpoints and metrics.jsonl into the run directory (run.dir, default\n"
      "runs/<run.name>/), then evaluates the best model on test and prints the table.\n"
      "\n"
      "  --epochs N            train.epochs (also the cosine schedule's length)\n"
      "  --max-steps N         stop after N optimizer steps (a resumable last.h5 is written)\n"
      "  --resume FILE         continue from a checkpoint (its config is used when no --config is given)\n"
      "  --check-replicas K    compare replicated tables across ranks every K steps\n"
      "  --no-final-eval       skip the test evaluation at the end\n"
      "  --dump-step FILE      write one step's batch, loss and gradients (dropout off, nothing updated) and the\n"
      "                        parameters it started from (FILE.params.h5) for tools/torch_grad_check.py; stop\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 usage/config, 3 data, 4 runtime/device/communication\n");
}

/* train's own options into *topt, the common ones into *common;
 * epochs_set (the caller's, 64 bytes: common keeps a pointer to it) holds
 * --epochs as a --set. *help when --help was given. */
static int parse_options(int argc, char **argv, dt_cli_common *common, dt_train_options *topt, char *epochs_set,
                         int *help) {
  enum { OPT_EPOCHS = 2000, OPT_MAX_STEPS, OPT_RESUME, OPT_CHECK, OPT_NO_EVAL, OPT_DUMP_STEP };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"epochs", required_argument, 0, OPT_EPOCHS},
                                          {"max-steps", required_argument, 0, OPT_MAX_STEPS},
                                          {"resume", required_argument, 0, OPT_RESUME},
                                          {"check-replicas", required_argument, 0, OPT_CHECK},
                                          {"no-final-eval", no_argument, 0, OPT_NO_EVAL},
                                          {"dump-step", required_argument, 0, OPT_DUMP_STEP},
                                          {0, 0, 0, 0}};
  int rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while (!rc && (opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, common)) continue;
    char *end = NULL;
    switch (opt) {
      case OPT_EPOCHS: snprintf(epochs_set, 64, "train.epochs=%s", optarg); break;
      case OPT_MAX_STEPS:
        topt->max_steps = strtoll(optarg, &end, 10);
        if (!*optarg || *end || topt->max_steps <= 0) rc = dt_fail(DT_EXIT_USAGE, "train: --max-steps needs a positive integer, got '%s'", optarg);
        break;
      case OPT_RESUME: topt->resume = optarg; break;
      case OPT_CHECK:
        topt->check_replicas = strtoll(optarg, &end, 10);
        if (!*optarg || *end || topt->check_replicas <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "train: --check-replicas needs a positive integer, got '%s'", optarg);
        break;
      case OPT_NO_EVAL: topt->skip_final_eval = 1; break;
      case OPT_DUMP_STEP: topt->dump_step = optarg; break;
      case DT_OPT_HELP: *help = 1; return DT_OK;
      default: rc = dt_fail(DT_EXIT_USAGE, "train: unknown or incomplete option '%s' (see dtrain train --help)", argv[optind - 1]);
    }
  }
  if (!rc) rc = dt_cli_no_positionals(argc, argv, optind, "train");
  if (!rc && epochs_set[0]) dt_cli_common_option(DT_OPT_SET, epochs_set, common);
  return rc;
}

int dt_cmd_train(int argc, char **argv) {
  dt_cli_common common = {0};
  dt_train_options topt = {0};
  char epochs_set[64] = "";
  int help = 0;
  int rc = parse_options(argc, argv, &common, &topt, epochs_set, &help);
  if (rc || help) {
    if (help) usage();
    dt_cli_common_free(&common);
    return rc;
  }
  dt_cli_apply_logging(&common);

  dt_comm *comm = NULL;
  if ((rc = dt_comm_init(NULL, NULL, &comm)) != DT_OK) goto out;
  dt_cli_apply_logging(&common); /* the rank is known now */
  dt_config cfg;
  if (topt.resume)
    rc = dt_cli_config_for_checkpoint(&common, topt.resume, &cfg, NULL);
  else
    rc = dt_cli_build_config(&common, &cfg);
  dt_session s;
  memset(&s, 0, sizeof s);
  if (!rc) rc = dt_session_open(&s, &cfg, comm, 1);
  if (!rc) rc = topt.dump_step ? dt_train_dump_step(&s, &topt) : dt_train_run(&s, &topt);
  dt_session_close(&s);
  if (rc && dt_comm_size(comm) > 1) dt_comm_abort(comm, rc, dt_error_message());
  int frc = dt_comm_finalize(comm);
  if (!rc) rc = frc;
out:
  dt_cli_common_free(&common);
  return rc;
}
