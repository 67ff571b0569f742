/* bench_prep: the synthetic generator and `dtrain prep` at the scale of
 * Amazon Electronics 2018 (728,719 users, 160,052 items, 6.7 M
 * interactions), printing JSON: seconds, rows/s and peak RSS per phase.
 *
 *   build/bench/bench_prep [--users N --items N --interactions N]
 *                          [--json]   also write the log as Amazon JSON .gz and prepare it
 *                                     through the real readers (tests reader throughput)
 *                          [--dir D]  where files go (default /tmp/dtrain_bench_prep)
 *
 * Phases: generate (the log into memory), prep (the whole pipeline from the
 * synthetic config: generate, dedup, k-core, ids, split, TF-IDF, no write),
 * write (HDF5), and with --json: json_write and json_prep. Peak RSS is the
 * process's high-water mark after each phase (it only grows). cpu_seconds
 * is the process CPU time of the phase (the code is single-threaded), the
 * figure to trust on a busy machine; rows_per_s uses wall seconds.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/config.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/prep.h"
#include "dtrain/synth.h"
#include "dtrain/timer.h"

static double mib(int64_t b) { return (double)b / (1024.0 * 1024.0); }

/* CPU seconds of this (single-threaded) process: unlike wall time, not
 * inflated by other work on a shared machine */
static double cpu_s(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(int rc) {
  fprintf(stderr, "bench_prep: %s\n", dt_error_message());
  return rc;
}

int main(int argc, char **argv) {
  long long users = 728719, items = 160052, inter = 6700000;
  int json = 0;
  const char *dir = "/tmp/dtrain_bench_prep";
  static const struct option opts[] = {
      {"users", required_argument, 0, 'u'},        {"items", required_argument, 0, 'i'},
      {"interactions", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
      {"dir", required_argument, 0, 'd'},          {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'u': users = atoll(optarg); break;
      case 'i': items = atoll(optarg); break;
      case 'n': inter = atoll(optarg); break;
      case 'j': json = 1; break;
      case 'd': dir = optarg; break;
      default:
        fprintf(stderr, "usage: bench_prep [--users N] [--items N] [--interactions N] [--json] [--dir D]\n");
        return 2;
    }
  }
  dt_log_set_level(DT_LOG_WARN);
  if (dt_mkdir_p(dir) != DT_OK) return die(DT_EXIT_RUNTIME);
  char *out = dt_path_join(dir, "synthetic.h5");
  char s_users[64], s_items[64], s_inter[64], s_out[4200];
  snprintf(s_users, sizeof s_users, "data.synthetic.users=%lld", users);
  snprintf(s_items, sizeof s_items, "data.synthetic.items=%lld", items);
  snprintf(s_inter, sizeof s_inter, "data.synthetic.interactions=%lld", inter);
  snprintf(s_out, sizeof s_out, "data.output=%s", out);
  const char *sets[] = {"data.format=synthetic", s_users, s_items, s_inter, s_out};
  dt_config cfg;
  if (dt_config_build(NULL, sets, 5, &cfg) != DT_OK) return die(DT_EXIT_USAGE);
  dt_synth_params p;
  dt_synth_params_from_config(&cfg, &p);

  /* generate only */
  double t0 = dt_now_s(), c0 = cpu_s();
  dt_interactions x = {0};
  char **text = NULL;
  if (dt_synth_generate(&p, 0.0, &x, &text) != DT_OK) return die(DT_EXIT_RUNTIME);
  double t_gen = dt_now_s() - t0, c_gen = cpu_s() - c0;
  int64_t rss_gen = dt_peak_rss_bytes();
  for (int64_t i = 0; i < p.items; i++) free(text[i]);
  free(text);
  dt_interactions_free(&x);

  /* the whole pipeline, in memory */
  t0 = dt_now_s();
  c0 = cpu_s();
  dt_dataset ds;
  char *sources = NULL;
  if (dt_prep_build(&cfg, &ds, &sources) != DT_OK) return die(DT_EXIT_RUNTIME);
  double t_prep = dt_now_s() - t0, c_prep = cpu_s() - c0;
  int64_t rss_prep = dt_peak_rss_bytes();
  t0 = dt_now_s();
  c0 = cpu_s();
  char *cj = dt_prep_config_json(&cfg);
  if (dt_dataset_write(out, &ds, cj, sources) != DT_OK) return die(DT_EXIT_RUNTIME);
  double t_write = dt_now_s() - t0, c_write = cpu_s() - c0;
  int64_t file_size = 0;
  uint32_t crc;
  if (dt_file_crc32(out, &crc, &file_size) != DT_OK) return die(DT_EXIT_RUNTIME);
  dt_prep_summary s = ds.summary;
  dt_dataset_free(&ds);
  free(cj);
  free(sources);

  printf("{\n  \"bench\": \"prep\",\n  \"scale\": {\"users\": %lld, \"items\": %lld, \"interactions\": %lld},\n", users,
         items, inter);
  printf("  \"generate\": {\"seconds\": %.3f, \"cpu_seconds\": %.3f, \"rows_per_s\": %.0f, \"peak_rss_mib\": %.0f},\n",
         t_gen, c_gen, (double)inter / t_gen, mib(rss_gen));
  printf("  \"prep\": {\"seconds\": %.3f, \"cpu_seconds\": %.3f, \"rows_per_s\": %.0f, \"peak_rss_mib\": %.0f},\n",
         t_prep, c_prep, (double)inter / t_prep, mib(rss_prep));
  printf("  \"write\": {\"seconds\": %.3f, \"cpu_seconds\": %.3f, \"file_mib\": %.1f},\n", t_write, c_write,
         mib(file_size));
  if (json) {
    char *rv = dt_path_join(dir, "reviews.json.gz"), *mt = dt_path_join(dir, "meta.json.gz");
    t0 = dt_now_s();
    c0 = cpu_s();
    if (dt_synth_write_amazon(&p, rv, mt) != DT_OK) return die(DT_EXIT_RUNTIME);
    double t_jw = dt_now_s() - t0, c_jw = cpu_s() - c0;
    int64_t rv_size = 0;
    if (dt_file_crc32(rv, &crc, &rv_size) != DT_OK) return die(DT_EXIT_RUNTIME);
    char s_rv[4200], s_mt[4200];
    snprintf(s_rv, sizeof s_rv, "data.reviews=%s", rv);
    snprintf(s_mt, sizeof s_mt, "data.meta=%s", mt);
    const char *jsets[] = {"data.format=amazon", s_rv, s_mt};
    dt_config jc;
    if (dt_config_build(NULL, jsets, 3, &jc) != DT_OK) return die(DT_EXIT_USAGE);
    t0 = dt_now_s();
    c0 = cpu_s();
    if (dt_prep_build(&jc, &ds, NULL) != DT_OK) return die(DT_EXIT_RUNTIME);
    double t_jp = dt_now_s() - t0, c_jp = cpu_s() - c0;
    int same = ds.summary.tfidf_nnz == s.tfidf_nnz && ds.summary.train == s.train;
    dt_dataset_free(&ds);
    dt_config_free(&jc);
    printf("  \"json_write\": {\"seconds\": %.3f, \"cpu_seconds\": %.3f, \"reviews_gz_mib\": %.1f},\n", t_jw, c_jw,
           mib(rv_size));
    printf(
        "  \"json_prep\": {\"seconds\": %.3f, \"cpu_seconds\": %.3f, \"rows_per_s\": %.0f, \"peak_rss_mib\": %.0f, "
        "\"same_as_direct\": %s},\n",
        t_jp, c_jp, (double)inter / t_jp, mib(dt_peak_rss_bytes()), same ? "true" : "false");
    unlink(rv);
    unlink(mt);
    free(rv);
    free(mt);
  }
  printf(
      "  \"summary\": {\"after_dedup\": %lld, \"n_users\": %lld, \"n_items\": %lld, \"n_interactions\": %lld, "
      "\"train\": %lld, \"valid\": %lld, \"test\": %lld, \"vocab_size\": %lld, \"tfidf_nnz\": %lld}\n}\n",
      (long long)s.after_dedup, (long long)s.n_users, (long long)s.n_items, (long long)s.n_interactions,
      (long long)s.train, (long long)s.valid, (long long)s.test, (long long)s.vocab_size, (long long)s.tfidf_nnz);
  unlink(out);
  free(out);
  dt_config_free(&cfg);
  return 0;
}
