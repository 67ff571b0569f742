/* dtrain config: print the merged configuration, the schema, or check a file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/cli.h"
#include "dtrain/error.h"

static const char *type_name(dt_cfg_type t) {
  switch (t) {
    case DT_CFG_STR: return "string";
    case DT_CFG_INT: return "integer";
    case DT_CFG_FLOAT: return "number";
    case DT_CFG_BOOL: return "bool";
    case DT_CFG_ENUM: return "enum";
    case DT_CFG_FLOAT_OR_NULL: return "number|null";
  }
  return "?";
}

/* The schema as a Markdown table (README.md's key table comes from this). */
static void print_schema(void) {
  int n;
  const dt_config_key *keys = dt_config_schema(&n);
  printf("| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
  for (int i = 0; i < n; i++) {
    const dt_config_key *k = &keys[i];
    char allowed[256] = "";
    if (k->type == DT_CFG_ENUM) {
      snprintf(allowed, sizeof allowed, "%s", k->choices);
      /* '|' would split the Markdown cell */
      char tmp[256];
      size_t o = 0;
      for (const char *c = allowed; *c && o + 3 < sizeof tmp; c++) {
        if (*c == '|') {
          tmp[o++] = ',';
          tmp[o++] = ' ';
        } else {
          tmp[o++] = *c;
        }
      }
      tmp[o] = '\0';
      snprintf(allowed, sizeof allowed, "%s", tmp);
    } else if (k->type == DT_CFG_INT || k->type == DT_CFG_FLOAT || k->type == DT_CFG_FLOAT_OR_NULL) {
      snprintf(allowed, sizeof allowed, "%.10g … %.10g", k->min, k->max);
    }
    printf("| `%s` | %s | `%s` | %s | %s |\n", k->key, type_name(k->type), k->def[0] ? k->def : "\"\"", allowed,
           k->help);
  }
}

static void usage(void) {
  printf(
      "usage: dtrain config [--print | --schema | --check] [options]\n"
      "\n"
      "  --print               print the merged configuration as JSON (default)\n"
      "  --schema              print every key with its type, default and range (Markdown)\n"
      "  --check               validate the configuration and print \"ok\"\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 invalid configuration\n");
}

int dt_cmd_config(int argc, char **argv) {
  enum { MODE_PRINT, MODE_SCHEMA, MODE_CHECK } mode = MODE_PRINT;
  enum { OPT_PRINT = 2000, OPT_SCHEMA, OPT_CHECK };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"print", no_argument, 0, OPT_PRINT},
                                          {"schema", no_argument, 0, OPT_SCHEMA},
                                          {"check", no_argument, 0, OPT_CHECK},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  int rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    switch (opt) {
      case OPT_PRINT: mode = MODE_PRINT; break;
      case OPT_SCHEMA: mode = MODE_SCHEMA; break;
      case OPT_CHECK: mode = MODE_CHECK; break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default:
        rc = dt_fail(DT_EXIT_USAGE, "config: unknown option '%s' (see dtrain config --help)", argv[optind - 1]);
        goto out;
    }
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "config")) != DT_OK) goto out;
  dt_cli_apply_logging(&common);
  if (mode == MODE_SCHEMA) {
    print_schema();
    goto out;
  }
  dt_config cfg;
  if ((rc = dt_cli_build_config(&common, &cfg)) != DT_OK) goto out;
  if (mode == MODE_CHECK) {
    printf("ok\n");
  } else {
    char *s = dt_config_to_json(&cfg);
    printf("%s\n", s);
    free(s);
  }
  dt_config_free(&cfg);
out:
  dt_cli_common_free(&common);
  return rc;
}
