/* Temporary: `prep` lands with the data pipeline. */
#include "dtrain/cli.h"
#include "dtrain/error.h"

int dt_cmd_prep(int argc, char **argv) { return dt_fail(DT_EXIT_USAGE, "prep: not built yet"); }
