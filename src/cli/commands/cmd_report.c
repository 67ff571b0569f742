/* dtrain report: an HTML report (or CSV) comparing training runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/cli.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/report.h"

static void usage(void) {
  printf(
      "usage: dtrain report RUN_DIR [RUN_DIR...] [-o FILE] [--csv] [--force]\n"
      "\n"
      "Writes one self-contained HTML file (charts drawn as inline SVG; no scripts, nothing\n"
      "fetched) that compares training runs: loss and its parts per step, validation NDCG@10\n"
      "and HR@10 per epoch, mean alpha per tower, examples/s and time per step by phase,\n"
      "bytes sent per step against the lower bound, the test evaluation tables and the\n"
      "configuration keys that differ. A run still in progress is reported as far as it got;\n"
      "lines of metrics.jsonl that are not valid JSON are skipped and named (FILE:LINE).\n"
      "\n"
      "  -o, --output FILE   where to write (default: RUN_DIR/report.html for one run,\n"
      "                      ./report.html for several; with --csv: stdout; '-' = stdout)\n"
      "      --csv           write the per-step and per-epoch series as CSV instead\n"
      "      --force         replace FILE even when it is not a dtrain report\n"
      "      --quiet         only warnings and errors\n"
      "      --help          this help\n"
      "\n"
      "examples:\n"
      "  dtrain report runs/quickstart\n"
      "  dtrain report runs/v3 runs/v3-no_content -o compare.html\n"
      "  dtrain report runs/v3 --csv -o v3.csv\n"
      "\nexit codes: 0 ok, 2 usage error, 3 a missing run directory or a file it will not replace,\n"
      "            4 write error\n");
}

int dt_cmd_report(int argc, char **argv) {
  enum { OPT_CSV = 2000, OPT_FORCE };
  static const struct option options[] = {{"output", required_argument, 0, 'o'},
                                          {"csv", no_argument, 0, OPT_CSV},
                                          {"force", no_argument, 0, OPT_FORCE},
                                          {"quiet", no_argument, 0, DT_OPT_QUIET},
                                          {"verbose", no_argument, 0, DT_OPT_VERBOSE},
                                          {"help", no_argument, 0, DT_OPT_HELP},
                                          {0, 0, 0, 0}};
  dt_report_options ro = {0};
  dt_cli_common common = {0};
  int opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
    switch (opt) {
      case 'o': ro.output = optarg; break;
      case OPT_CSV: ro.csv = 1; break;
      case OPT_FORCE: ro.force = 1; break;
      case DT_OPT_QUIET: common.quiet = 1; break;
      case DT_OPT_VERBOSE: common.verbose = 1; break;
      case DT_OPT_HELP: usage(); return DT_OK;
      default:
        return dt_fail(DT_EXIT_USAGE, "report: unknown option or missing value '%s' (see dtrain report --help)",
                       argv[optind - 1]);
    }
  }
  dt_cli_apply_logging(&common);
  if (optind >= argc)
    return dt_fail(DT_EXIT_USAGE, "report: name at least one run directory, e.g. dtrain report runs/quickstart");
  ro.run_dirs = (const char *const *)(argv + optind);
  ro.n_runs = argc - optind;
  char *path = NULL;
  int rc = dt_report_write(&ro, &path);
  if (rc == DT_OK && path) printf("report: %s\n", path);
  free(path);
  return rc;
}
