/* dtrain prep: raw data to the prepared HDF5 data set (MODEL.md section 2). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/cli.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/synth.h"
#include "dtrain/timer.h"

static void usage(void) {
  printf(
      "usage: dtrain prep [options]\n"
      "\n"
      "Reads the input named by the data.* keys (Amazon JSON lines, delimited text, or the\n"
      "synthetic generator), filters (rating, duplicates, k-core), indexes, splits, and\n"
      "computes TF-IDF item features, then writes data.output (HDF5) and prints a summary.\n"
      "A file that is already current (same data.* config, same input checksums) is kept.\n"
      "\n"
      "      --summary-json FILE  also write the summary as JSON to FILE\n"
      "      --force              prepare again even if data.output is current (with\n"
      "                           --synthetic-json/--synthetic-csv: replace existing files;\n"
      "                           with --summary-json: replace a file that is not a prep summary)\n"
      "      --synthetic-json DIR write the synthetic log (data.synthetic.*) as Amazon JSON\n"
      "                           lines DIR/reviews.json.gz and DIR/meta.json.gz, then stop\n"
      "      --synthetic-csv DIR  write a 1,000-row example of delimited input, DIR/interactions.csv\n"
      "                           (user,item,timestamp,rating; ISO-8601 times) and DIR/items.csv\n"
      "                           (item,text,category,brand), then stop (configs/data_csv_example.json\n"
      "                           reads them from data/example)\n" DT_CLI_COMMON_HELP
      "\n"
      "examples:\n"
      "  dtrain prep --config configs/data_amazon_gift_cards.json\n"
      "  dtrain prep --set data.format=delimited --set data.reviews=u.data \\\n"
      "              --set data.columns=user,item,rating,timestamp --set data.delimiter=tab\n"
      "  dtrain prep --synthetic-csv data/example && dtrain prep --config configs/data_csv_example.json\n"
      "\nexit codes: 0 ok, 2 usage or configuration error, 3 bad input data, 4 runtime or I/O error\n");
}

/* The example of delimited input: 1,000 events of a small synthetic world. */
static void csv_example_params(const dt_config *cfg, dt_synth_params *p) {
  dt_synth_params_from_config(cfg, p);
  p->users = 100;
  p->items = 120;
  p->interactions = 1000;
  p->categories = 4;
  p->subcategories = 3;
  p->brands = 4;
  p->days = 120;
}

/* Writes the synthetic log as files under `dir` (JSON or CSV); existing
 * files are kept unless forced. */
static int write_synthetic(const dt_config *cfg, const char *dir, int csv, int force) {
  dt_synth_params p;
  if (csv)
    csv_example_params(cfg, &p);
  else
    dt_synth_params_from_config(cfg, &p);
  char *a = dt_path_join(dir, csv ? "interactions.csv" : "reviews.json.gz");
  char *b = dt_path_join(dir, csv ? "items.csv" : "meta.json.gz");
  int rc = DT_OK;
  for (int k = 0; k < 2 && !force && rc == DT_OK; k++)
    if (dt_path_exists(k ? b : a))
      rc = dt_fail(DT_EXIT_DATA, "prep: %s exists; not replacing it (choose another directory, or add --force)",
                   k ? b : a);
  double t0 = dt_now_s();
  if (rc == DT_OK) rc = csv ? dt_synth_write_csv(&p, a, b) : dt_synth_write_amazon(&p, a, b);
  if (rc == DT_OK)
    dt_log_info("wrote %s and %s (%lld users, %lld items, %lld interactions) in %.1f s", a, b, (long long)p.users,
                (long long)p.items, (long long)p.interactions, dt_now_s() - t0);
  free(a);
  free(b);
  return rc;
}

/* The summary's lines, through the logger. */
static void log_summary(const dt_prep_summary *s, const dt_config *cfg) {
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  if (!m) dt_panic("open_memstream failed");
  dt_prep_summary_print(m, s, cfg->data_kcore, cfg->data_split);
  if (fclose(m) != 0) dt_panic("open_memstream failed");
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) dt_log_info("%s", line);
  free(text);
}

/* A summary dtrain wrote before (replaced without --force). */
static int is_summary_json(const char *path) {
  static const char *const keys[] = {"read", "after_dedup", "n_users", "n_items", "tfidf_nnz"};
  return dt_cli_json_has_keys(path, keys, 5, 0);
}

int dt_cmd_prep(int argc, char **argv) {
  enum { OPT_SUMMARY_JSON = 2000, OPT_FORCE, OPT_SYNTH_JSON, OPT_SYNTH_CSV };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"summary-json", required_argument, 0, OPT_SUMMARY_JSON},
                                          {"force", no_argument, 0, OPT_FORCE},
                                          {"synthetic-json", required_argument, 0, OPT_SYNTH_JSON},
                                          {"synthetic-csv", required_argument, 0, OPT_SYNTH_CSV},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *summary_path = NULL, *synth_dir = NULL;
  int force = 0, synth_csv = 0, rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    switch (opt) {
      case OPT_SUMMARY_JSON: summary_path = optarg; break;
      case OPT_FORCE: force = 1; break;
      case OPT_SYNTH_JSON: synth_dir = optarg, synth_csv = 0; break;
      case OPT_SYNTH_CSV: synth_dir = optarg, synth_csv = 1; break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default:
        rc = dt_fail(DT_EXIT_USAGE, "prep: unknown option or missing value '%s' (see dtrain prep --help)",
                     argv[optind - 1]);
        goto out;
    }
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "prep")) != DT_OK) goto out;
  if (summary_path &&
      (rc = dt_output_check(summary_path, "prep: --summary-json", "a prep summary", force, is_summary_json)) != DT_OK)
    goto out;
  dt_cli_apply_logging(&common);
  dt_config cfg;
  if ((rc = dt_cli_build_config(&common, &cfg)) != DT_OK) goto out;
  if (synth_dir) {
    rc = write_synthetic(&cfg, synth_dir, synth_csv, force);
    dt_config_free(&cfg);
    goto out;
  }
  double t0 = dt_now_s();
  dt_prep_summary s;
  char why[1024];
  if (!force && dt_dataset_is_current(cfg.data_output, &cfg, why, sizeof why)) {
    dt_log_info("%s is current (same data.* config and input checksums; --force prepares it again)", cfg.data_output);
    rc = dt_dataset_read_summary(cfg.data_output, &s);
  } else {
    if (!force) dt_log_info("preparing %s: %s", cfg.data_output, why);
    rc = dt_prep_run(&cfg, &s);
    if (rc == DT_OK)
      dt_log_info("wrote %s in %.1f s (peak RSS %.0f MiB)", cfg.data_output, dt_now_s() - t0,
                  (double)dt_peak_rss_bytes() / (1024.0 * 1024.0));
  }
  if (rc == DT_OK) {
    log_summary(&s, &cfg);
    if (summary_path) {
      char *json = dt_prep_summary_json(&s);
      size_t n = strlen(json);
      json = dt_xrealloc(json, n + 2);
      json[n] = '\n';
      json[n + 1] = '\0';
      rc = dt_write_file_atomic(summary_path, json, n + 1);
      free(json);
    }
  }
  dt_config_free(&cfg);
out:
  dt_cli_common_free(&common);
  return rc;
}
