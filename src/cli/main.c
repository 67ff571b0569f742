/* dtrain: distributed trainer for hybrid recommenders. The binary's entry
 * point: picks the subcommand, runs it, prints its error, exits with its code. */
#include <stdio.h>
#include <string.h>

#include "dtrain/backend.h"
#include "dtrain/cli.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"

static void usage(void) {
  printf(
      "usage: dtrain [COMMAND] [options]\n"
      "\n"
      "Trains the hybrid recommender of MODEL.md on one process or on MPI ranks\n"
      "(mpirun -np N dtrain ...).\n"
      "\n"
      "commands:\n"
      "  train       train a model (the default when no command is given)\n"
      "  prep        prepare a data set (readers, k-core, split, histories, TF-IDF) into HDF5\n"
      "  eval        evaluate a checkpoint (sampled 1+99 and full ranking, cold-start buckets)\n"
      "  recommend   top-k items for users from a checkpoint (no data set needed)\n"
      "  users       the user ids a checkpoint knows\n"
      "  export      a checkpoint's parameters and inference data, for serving (no optimizer state)\n"
      "  config      print the merged configuration or the schema of every key\n"
      "  report      an HTML report (or CSV) comparing training runs: curves, test tables, config diff\n"
      "\n"
      "  dtrain COMMAND --help   options of one command\n"
      "  dtrain --version        version, git hash, compiled-in backends and libraries\n"
      "\n"
      "exit codes: 0 ok, 2 usage or configuration error, 3 data error,\n"
      "            4 runtime, device or communication error\n");
}

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
    usage();
    return DT_OK;
  }
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    dt_print_version();
    return DT_OK;
  }
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } commands[] = {{"train", dt_cmd_train},         {"prep", dt_cmd_prep},     {"eval", dt_cmd_eval},
                  {"recommend", dt_cmd_recommend}, {"config", dt_cmd_config}, {"report", dt_cmd_report},
                  {"users", dt_cmd_users},         {"export", dt_cmd_export}};
  int (*run)(int, char **) = dt_cmd_train;
  int sub_argc = argc;
  char **sub_argv = argv;
  if (argc >= 2 && argv[1][0] != '-') {
    run = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
      if (!strcmp(argv[1], commands[i].name)) run = commands[i].run;
    if (!run) {
      fprintf(
          stderr,
          "dtrain: error: unknown command '%s' (commands: train, prep, eval, recommend, users, export, config, report)\n",
          argv[1]);
      return DT_EXIT_USAGE;
    }
    sub_argc = argc - 1;
    sub_argv = argv + 1;
  }
  /* the commands that compute: OpenBLAS's kernels and the OpenMP wait
   * policy must be set before those libraries start (one restart at most) */
  if (run == dt_cmd_train || run == dt_cmd_eval || run == dt_cmd_recommend) dt_cpu_restart_check(argv);
  /* a signal removes the temporary file being written (comm replaces these
   * handlers for the commands that start it) */
  dt_tmp_cleanup_on_signals();
  int rc = run(sub_argc, sub_argv);
  if (rc != DT_OK && rc < DT_EXIT_SIGNAL) {
    fflush(stdout);
    fprintf(stderr, "dtrain: error: %s\n", dt_error_message()[0] ? dt_error_message() : "failed");
  }
  return rc;
}
