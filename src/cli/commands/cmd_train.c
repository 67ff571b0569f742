/* dtrain train: prepare the data set if needed, train, checkpoint, evaluate. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ckpt.h"
#include "dtrain/cli.h"
#include "dtrain/comm.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
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
      "  --resume FILE         continue from a checkpoint (its config is used when no --config is given;\n"
      "                        then it writes into the checkpoint's own run directory, or --set run.dir,\n"
      "                        and only reads its data set: a checkpoint's paths are never written to)\n"
      "  --overwrite           start afresh in a run directory that holds an earlier run: removes that\n"
      "                        run's files (config.json, metrics.jsonl, eval_test.json, report.html,\n"
      "                        checkpoints/*.h5) and nothing else; without it such a directory is refused\n"
      "  --allow-other-data    resume although the data set is not the one the checkpoint was trained on\n"
      "  --check-replicas K    compare replicated tables across ranks every K steps\n"
      "  --no-final-eval       skip the test evaluation at the end\n"
      "  --dump-step FILE      write one step's batch, loss and gradients (dropout off, nothing updated) and the\n"
      "                        parameters it started from (FILE.params.h5) for tools/torch_grad_check.py; stop\n"
      "                        (claims no run directory: nothing but FILE and FILE.params.h5 is written)\n" DT_CLI_COMMON_HELP
      "\nSIGINT/SIGTERM (or SIGUSR1) stop training at the next step boundary: last.h5 is written and\n"
      "dtrain exits 128 + the signal (130, 143, 138); a second SIGINT/SIGTERM ends it at once.\n"
      "\nexit codes: 0 ok, 2 usage/config (also: the run directory holds another run or is in use),\n"
      "3 data, 4 runtime/device/communication, 130/143/138 stopped by a signal\n");
}

/* train's own options into *topt, the common ones into *common;
 * epochs_set (the caller's, 64 bytes: common keeps a pointer to it) holds
 * --epochs as a --set. *help when --help was given. */
static int parse_options(int argc, char **argv, dt_cli_common *common, dt_train_options *topt, char *epochs_set,
                         int *help) {
  enum {
    OPT_EPOCHS = 2000,
    OPT_MAX_STEPS,
    OPT_RESUME,
    OPT_CHECK,
    OPT_NO_EVAL,
    OPT_DUMP_STEP,
    OPT_OVERWRITE,
    OPT_OTHER_DATA
  };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"epochs", required_argument, 0, OPT_EPOCHS},
                                          {"max-steps", required_argument, 0, OPT_MAX_STEPS},
                                          {"resume", required_argument, 0, OPT_RESUME},
                                          {"check-replicas", required_argument, 0, OPT_CHECK},
                                          {"no-final-eval", no_argument, 0, OPT_NO_EVAL},
                                          {"dump-step", required_argument, 0, OPT_DUMP_STEP},
                                          {"overwrite", no_argument, 0, OPT_OVERWRITE},
                                          {"allow-other-data", no_argument, 0, OPT_OTHER_DATA},
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
        if (!*optarg || *end || topt->max_steps <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "train: --max-steps needs a positive integer, got '%s'", optarg);
        break;
      case OPT_RESUME: topt->resume = optarg; break;
      case OPT_CHECK:
        topt->check_replicas = strtoll(optarg, &end, 10);
        if (!*optarg || *end || topt->check_replicas <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "train: --check-replicas needs a positive integer, got '%s'", optarg);
        break;
      case OPT_NO_EVAL: topt->skip_final_eval = 1; break;
      case OPT_DUMP_STEP: topt->dump_step = optarg; break;
      case OPT_OVERWRITE: topt->overwrite = 1; break;
      case OPT_OTHER_DATA: topt->allow_other_data = 1; break;
      case DT_OPT_HELP: *help = 1; return DT_OK;
      default: rc = dt_cli_unknown_option("train", argv);
    }
  }
  if (!rc) rc = dt_cli_no_positionals(argc, argv, optind, "train");
  if (!rc && topt->overwrite && topt->resume)
    rc = dt_fail(DT_EXIT_USAGE, "train: --overwrite starts afresh and --resume continues: give one of them");
  if (!rc && epochs_set[0]) dt_cli_common_option(DT_OPT_SET, epochs_set, common);
  return rc;
}

/* Whether --set names `key`. */
static int sets_key(const dt_cli_common *common, const char *key) {
  size_t n = strlen(key);
  for (int i = 0; i < common->n_sets; i++)
    if (!strncmp(common->sets[i], key, n) && common->sets[i][n] == '=') return 1;
  return 0;
}

/* --resume: the configuration, and whether its data set may be prepared.
 * A checkpoint is data, not instructions: with its stored config (no
 * --config) none of the paths stored in it is written to. The run writes
 * into --set run.dir (or runs/<--set run.name>), else into the checkpoint's
 * own run directory (the folder above its checkpoints/); its data.output
 * is read as it is, never prepared, unless --set data.output names one. */
static int resume_config(const dt_cli_common *common, const char *ckpt, dt_config *cfg, uint32_t *crc, int *prepare) {
  *prepare = 1;
  DT_TRY(dt_cli_config_for_checkpoint(common, ckpt, cfg, crc));
  if (common->n_configs > 0) return DT_OK; /* the user's config names every path */
  *prepare = sets_key(common, "data.output");
  int rc = DT_OK;
  if (!*prepare && !dt_path_exists(cfg->data_output))
    rc = dt_fail(DT_EXIT_DATA,
                 "train --resume: the data set %s named in the checkpoint's stored config does not exist; dtrain "
                 "does not create files where a checkpoint says: give --config, or --set data.output=FILE",
                 cfg->data_output);
  if (rc || sets_key(common, "run.dir")) goto out;
  char *dir = NULL;
  if (!sets_key(common, "run.name")) {
    char *cdir = dt_path_dirname(ckpt);
    const char *base = strrchr(cdir, '/') ? strrchr(cdir, '/') + 1 : cdir;
    if (strcmp(base, "checkpoints") != 0)
      rc = dt_fail(DT_EXIT_USAGE,
                   "train --resume %s: the checkpoint is not in a run directory's checkpoints/ folder, so say where "
                   "this run writes: --set run.dir=DIR (the run directory in its stored config is not used)",
                   ckpt);
    else
      dir = dt_path_dirname(cdir);
    free(cdir);
  }
  if (!rc) {
    size_t n = (dir ? strlen(dir) : 0) + 16;
    char *set = dt_xmalloc(n);
    snprintf(set, n, "run.dir=%s", dir ? dir : "");
    const char *sets[1] = {set};
    rc = dt_config_apply_sets(cfg, sets, 1);
    free(set);
  }
  free(dir);
out:
  if (rc) dt_config_free(cfg);
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
  uint32_t ckpt_crc = 0;
  int prepare = 1;
  if (topt.resume)
    rc = resume_config(&common, topt.resume, &cfg, &ckpt_crc, &prepare);
  else
    rc = dt_cli_build_config(&common, &cfg);
  /* the run directory first: a refusal comes before any preparation */
  dt_run_dir_lock *lock = NULL;
  if (!rc && !topt.dump_step) { /* --dump-step writes only its file */
    char *dir = dt_config_run_dir(&cfg);
    dt_run_dir_mode mode = topt.resume ? DT_RUN_DIR_RESUME : topt.overwrite ? DT_RUN_DIR_OVERWRITE : DT_RUN_DIR_FRESH;
    rc = dt_run_dir_claim(comm, dir, mode, &lock);
    free(dir);
    if (rc) dt_config_free(&cfg);
  }
  dt_session s;
  memset(&s, 0, sizeof s);
  if (!rc) rc = dt_session_open(&s, &cfg, comm, prepare);
  if (!rc && topt.resume)
    rc = dt_cli_check_checkpoint_data(topt.resume, ckpt_crc, s.cfg.data_output, s.ds.file_crc32, topt.allow_other_data,
                                      0);
  if (!rc) rc = topt.dump_step ? dt_train_dump_step(&s, &topt) : dt_train_run(&s, &topt);
  dt_session_close(&s);
  dt_run_dir_release(lock);
  if (rc && rc < DT_EXIT_SIGNAL && dt_comm_size(comm) > 1) dt_comm_abort(comm, rc, dt_error_message());
  int frc = dt_comm_finalize(comm);
  if (!rc) rc = frc;
out:
  dt_cli_common_free(&common);
  return rc;
}
