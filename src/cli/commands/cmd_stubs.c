/* Temporary: subcommands whose modules have not landed yet. */
#include "dtrain/cli.h"
#include "dtrain/error.h"

int dt_cmd_train(int argc, char **argv) { return dt_fail(DT_EXIT_USAGE, "train: not built yet"); }
int dt_cmd_eval(int argc, char **argv) { return dt_fail(DT_EXIT_USAGE, "eval: not built yet"); }
int dt_cmd_recommend(int argc, char **argv) { return dt_fail(DT_EXIT_USAGE, "recommend: not built yet"); }
