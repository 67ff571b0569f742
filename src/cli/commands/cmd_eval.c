/* dtrain eval: evaluate a checkpoint on test (or valid). */
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
      "usage: dtrain eval --checkpoint FILE [options]\n"
      "\n"
      "Evaluates a checkpoint with the sampled 1+99 and full-ranking protocols,\n"
      "the cold-start buckets and the popularity baseline on the same split, prints\n"
      "the table and optionally writes JSON. The checkpoint's stored config is used;\n"
      "--config replaces it and --set overrides keys (e.g. eval.protocol).\n"
      "\n"
      "  --checkpoint FILE     the HDF5 checkpoint or export (required); the prepared\n"
      "                        data set its config names is read too\n"
      "  --split test|valid    which held-out split (default test)\n"
      "  --json FILE           write the results as JSON\n"
      "  --dump FILE           also write the first --dump-users users' inputs and scores\n"
      "                        as JSON lines (for tools/torch_check.py)\n"
      "  --dump-users N        users in the dump (default 64)\n"
      "  --force               replace a --json/--dump file that is not one dtrain wrote\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 usage/config, 3 data (bad checkpoint), 4 runtime\n");
}

/* The outputs eval writes, recognised by their keys (dtrain replaces only
 * files it wrote, unless --force). */
static int is_eval_json(const char *path) {
  static const char *const keys[] = {"split", "popularity"};
  return dt_cli_json_has_keys(path, keys, 2, 0);
}

static int is_eval_dump(const char *path) {
  static const char *const keys[] = {"user", "pos", "candidates", "scores", "alpha"};
  return dt_cli_json_has_keys(path, keys, 5, 1);
}

int dt_cmd_eval(int argc, char **argv) {
  enum { OPT_CKPT = 2000, OPT_SPLIT, OPT_JSON, OPT_DUMP, OPT_DUMP_USERS, OPT_FORCE };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"checkpoint", required_argument, 0, OPT_CKPT},
                                          {"split", required_argument, 0, OPT_SPLIT},
                                          {"json", required_argument, 0, OPT_JSON},
                                          {"dump", required_argument, 0, OPT_DUMP},
                                          {"dump-users", required_argument, 0, OPT_DUMP_USERS},
                                          {"force", no_argument, 0, OPT_FORCE},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *ckpt = NULL, *json_path = NULL, *dump_path = NULL;
  int64_t dump_users = 64;
  int force = 0;
  dt_split_kind split = DT_SPLIT_TEST;
  int rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    switch (opt) {
      case OPT_CKPT: ckpt = optarg; break;
      case OPT_JSON: json_path = optarg; break;
      case OPT_DUMP: dump_path = optarg; break;
      case OPT_FORCE: force = 1; break;
      case OPT_DUMP_USERS: {
        char *end = NULL;
        dump_users = strtoll(optarg, &end, 10);
        if (!*optarg || *end || dump_users <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "eval: --dump-users needs a positive integer");
        break;
      }
      case OPT_SPLIT:
        if (!strcmp(optarg, "test"))
          split = DT_SPLIT_TEST;
        else if (!strcmp(optarg, "valid"))
          split = DT_SPLIT_VALID;
        else
          rc = dt_fail(DT_EXIT_USAGE, "eval: --split must be test or valid, got '%s'", optarg);
        break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default: rc = dt_cli_unknown_option("eval", argv);
    }
    if (rc) goto out;
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "eval")) != DT_OK) goto out;
  if ((rc = dt_cli_required("eval", "--checkpoint FILE", ckpt)) != DT_OK) goto out;
  /* before the evaluation: a file that may not be replaced stops it at once */
  if (json_path &&
      (rc = dt_output_check(json_path, "eval: --json", "an evaluation result", force, is_eval_json)) != DT_OK)
    goto out;
  if (dump_path &&
      (rc = dt_output_check(dump_path, "eval: --dump", "an evaluation dump", force, is_eval_dump)) != DT_OK)
    goto out;
  dt_cli_apply_logging(&common);
  dt_comm *comm = NULL;
  if ((rc = dt_comm_init(NULL, NULL, &comm)) != DT_OK) goto out;
  dt_cli_apply_logging(&common);
  dt_config cfg;
  uint32_t ckpt_crc = 0;
  rc = dt_cli_config_for_checkpoint(&common, ckpt, &cfg, &ckpt_crc);
  dt_session s;
  memset(&s, 0, sizeof s);
  if (!rc) rc = dt_session_open(&s, &cfg, comm, 0);
  if (!rc) rc = dt_cli_check_checkpoint_data(ckpt, ckpt_crc, s.cfg.data_output, s.ds.file_crc32, 0, 1);
  dt_ckpt_state st;
  if (!rc) rc = dt_session_load_weights(&s, ckpt, &st);
  dt_eval_result r;
  if (!rc) {
    dt_eval_ctx ctx;
    dt_session_eval_ctx(&s, &ctx);
    int sampled = strcmp(s.cfg.eval_protocol, "full") != 0, full = strcmp(s.cfg.eval_protocol, "sampled") != 0;
    rc = dt_evaluate(&ctx, split, sampled, full, 0, &r);
  }
  if (!rc && dump_path) {
    if (dt_comm_size(comm) > 1) {
      rc = dt_fail(DT_EXIT_USAGE, "eval: --dump runs on one process");
    } else {
      dt_eval_ctx ctx;
      dt_session_eval_ctx(&s, &ctx);
      rc = dt_eval_dump(&ctx, split, dump_users, dump_path);
    }
  }
  if (!rc && dt_comm_rank(comm) == 0) {
    printf("checkpoint %s (epoch %lld, step %lld, %s %s)\n", ckpt, (long long)st.epoch, (long long)st.global_step,
           s.cfg.model_version, s.cfg.model_variant);
    dt_eval_print(stdout, &r);
    if (json_path) {
      char *json = dt_eval_to_json(&r);
      rc = dt_write_file_atomic(json_path, json, strlen(json));
      free(json);
    }
  }
  dt_session_close(&s);
  if (rc && dt_comm_size(comm) > 1) dt_comm_abort(comm, rc, dt_error_message());
  int frc = dt_comm_finalize(comm);
  if (!rc) rc = frc;
out:
  dt_cli_common_free(&common);
  return rc;
}
