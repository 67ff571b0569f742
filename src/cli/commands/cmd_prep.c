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
      "      --force              prepare again even if data.output is current\n"
      "      --synthetic-json DIR write the synthetic log (data.synthetic.*) as Amazon JSON\n"
      "                           lines DIR/reviews.json.gz and DIR/meta.json.gz, then stop\n" DT_CLI_COMMON_HELP
      "\n"
      "examples:\n"
      "  dtrain prep --config configs/data_amazon_gift_cards.json\n"
      "  dtrain prep --set data.format=delimited --set data.reviews=u.data \\\n"
      "              --set data.columns=user,item,rating,timestamp --set data.delimiter=tab\n"
      "\nexit codes: 0 ok, 2 usage or configuration error, 3 bad input data, 4 runtime or I/O error\n");
}

static int write_synthetic_json(const dt_config *cfg, const char *dir) {
  dt_synth_params p;
  dt_synth_params_from_config(cfg, &p);
  char *reviews = dt_path_join(dir, "reviews.json.gz"), *meta = dt_path_join(dir, "meta.json.gz");
  double t0 = dt_now_s();
  int rc = dt_synth_write_amazon(&p, reviews, meta);
  if (rc == DT_OK)
    printf("wrote %s and %s (%lld users, %lld items, %lld interactions) in %.1f s\n", reviews, meta,
           (long long)p.users, (long long)p.items, (long long)p.interactions, dt_now_s() - t0);
  free(reviews);
  free(meta);
  return rc;
}

int dt_cmd_prep(int argc, char **argv) {
  enum { OPT_SUMMARY_JSON = 2000, OPT_FORCE, OPT_SYNTH_JSON };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"summary-json", required_argument, 0, OPT_SUMMARY_JSON},
                                          {"force", no_argument, 0, OPT_FORCE},
                                          {"synthetic-json", required_argument, 0, OPT_SYNTH_JSON},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *summary_path = NULL, *synth_dir = NULL;
  int force = 0, rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    switch (opt) {
      case OPT_SUMMARY_JSON: summary_path = optarg; break;
      case OPT_FORCE: force = 1; break;
      case OPT_SYNTH_JSON: synth_dir = optarg; break;
      case DT_OPT_HELP: usage(); dt_cli_common_free(&common); return DT_OK;
      default:
        rc = dt_fail(DT_EXIT_USAGE, "prep: unknown option or missing value '%s' (see dtrain prep --help)",
                     argv[optind - 1]);
        goto out;
    }
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "prep")) != DT_OK) goto out;
  dt_cli_apply_logging(&common);
  dt_config cfg;
  if ((rc = dt_cli_build_config(&common, &cfg)) != DT_OK) goto out;
  if (synth_dir) {
    rc = write_synthetic_json(&cfg, synth_dir);
    dt_config_free(&cfg);
    goto out;
  }
  double t0 = dt_now_s();
  dt_prep_summary s;
  char why[1024];
  if (!force && dt_dataset_is_current(cfg.data_output, &cfg, why, sizeof why)) {
    printf("%s is current (same data.* config and input checksums; --force prepares it again)\n", cfg.data_output);
    rc = dt_dataset_read_summary(cfg.data_output, &s);
  } else {
    if (!force) dt_log_info("preparing %s: %s", cfg.data_output, why);
    rc = dt_prep_run(&cfg, &s);
    if (rc == DT_OK)
      printf("wrote %s in %.1f s (peak RSS %.0f MiB)\n", cfg.data_output, dt_now_s() - t0,
             (double)dt_peak_rss_bytes() / (1024.0 * 1024.0));
  }
  if (rc == DT_OK) {
    dt_prep_summary_print(stdout, &s, cfg.data_kcore, cfg.data_split);
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
