/* dtrain recommend: top-k items for users from a checkpoint, excluding the
 * items each user already has. One process. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dtrain/ckpt.h"
#include "dtrain/cli.h"
#include "dtrain/comm.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"

static void usage(void) {
  printf(
      "usage: dtrain recommend --checkpoint FILE (--user ID | --users FILE) [-k N] [options]\n"
      "\n"
      "Prints the top-k items for each user (original ids, highest score first),\n"
      "excluding the items the user already interacted with, scored as the next\n"
      "interaction after the user's whole history at the moment --time (default now).\n"
      "\n"
      "  --checkpoint FILE     the HDF5 checkpoint (required)\n"
      "  --user ID             one user (original id)\n"
      "  --users FILE          a file with one user id per line ('-' = stdin)\n"
      "  -k, --top N           items per user (default 10)\n"
      "  --time UNIX_SECONDS   the moment of the recommendation (temporal context)\n"
      "  --json                one JSON object per user instead of text lines\n"
      "  --allow-other-data    go on although the data set is not the one the checkpoint was trained on\n" DT_CLI_COMMON_HELP
      "\nexit codes: 0 ok, 2 usage/config, 3 data (unknown user, bad checkpoint), 4 runtime\n");
}

typedef struct {
  float score;
  int32_t item;
} scored;

static int by_score_desc(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return (x->item > y->item) - (x->item < y->item);
}

/* Scores every item for user u and prints the top k unseen ones. */
static int recommend_one(dt_session *s, const char *uid, int k, int64_t when, int json) {
  const dt_dataset *ds = &s->ds;
  int64_t u = dt_dataset_find_user(ds, uid);
  if (u < 0) return dt_fail(DT_EXIT_DATA, "recommend: unknown user '%s' (not in %s)", uid, s->cfg.data_output);
  int32_t user = (int32_t)u;
  int32_t pos = (int32_t)(ds->user_ptr[u + 1] - ds->user_ptr[u]);
  const int64_t I = ds->n_items;
  float *scores = dt_xmalloc((size_t)I * sizeof(float));
  dt_eval_ctx ctx;
  dt_session_eval_ctx(s, &ctx);
  int rc = dt_score_catalogue(&ctx, &user, &pos, &when, 1, 4096, scores);
  for (int64_t i = 0; i < I && !rc; i++) /* never printed: -nan is not JSON, nor a ranking */
    if (!isfinite(scores[i]))
      rc = dt_fail(DT_EXIT_DATA, "recommend: the model scored item %s as %g for user '%s': the checkpoint's parameters "
                   "are damaged", ds->item_ids[i], (double)scores[i], uid);
  scored *all = dt_xmalloc((size_t)I * sizeof(scored));
  for (int64_t i = 0; i < I; i++) all[i] = (scored){scores[i], (int32_t)i};
  free(scores);
  if (rc) {
    free(all);
    return rc;
  }
  /* drop what the user already has */
  char *seen = dt_xcalloc((size_t)I, 1);
  for (int64_t p = ds->user_ptr[u]; p < ds->user_ptr[u + 1]; p++) seen[ds->user_items[p]] = 1;
  int64_t n = 0;
  for (int64_t i = 0; i < I; i++)
    if (!seen[all[i].item]) all[n++] = all[i];
  free(seen);
  qsort(all, (size_t)n, sizeof(scored), by_score_desc);
  int64_t top = n < k ? n : k;
  if (json) {
    printf("{\"user\": \"%s\", \"items\": [", uid);
    for (int64_t j = 0; j < top; j++)
      printf("%s{\"item\": \"%s\", \"score\": %.6g}", j ? ", " : "", ds->item_ids[all[j].item], (double)all[j].score);
    printf("]}\n");
  } else {
    for (int64_t j = 0; j < top; j++)
      printf("%s\t%lld\t%s\t%.6g\n", uid, (long long)j + 1, ds->item_ids[all[j].item], (double)all[j].score);
  }
  free(all);
  return DT_OK;
}

/* Opens --users FILE ('-': stdin) before the checkpoint is loaded, so a
 * path that is not a readable file fails at once (exit 3). */
static int open_users_file(const char *path, FILE **out) {
  *out = NULL;
  if (!strcmp(path, "-")) {
    *out = stdin;
    return DT_OK;
  }
  struct stat st;
  if (stat(path, &st) != 0)
    return dt_fail(DT_EXIT_DATA, "recommend: cannot open --users %s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return dt_fail(DT_EXIT_DATA, "recommend: --users %s is a directory; give a file with one user id per line", path);
  FILE *f = fopen(path, "r");
  if (!f) return dt_fail(DT_EXIT_DATA, "recommend: cannot open --users %s: %s", path, strerror(errno));
  *out = f;
  return DT_OK;
}

/* Recommends for every id of `f` (one per line, blank lines skipped); a
 * read error or a file without ids is a data error, never a silent exit 0. */
static int recommend_users(dt_session *s, FILE *f, const char *path, int k, int64_t when, int json) {
  char line[4096];
  long lineno = 0, ids = 0;
  int rc = DT_OK;
  errno = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n == 0) continue;
    ids++;
    rc = recommend_one(s, line, k, when, json);
    if (rc) dt_fail_context(rc, "%s line %ld", path, lineno);
  }
  if (!rc && ferror(f))
    rc = dt_fail(DT_EXIT_DATA, "recommend: cannot read --users %s: %s", path, strerror(errno ? errno : EIO));
  if (!rc && ids == 0) rc = dt_fail(DT_EXIT_DATA, "recommend: --users %s has no user ids (one per line expected)", path);
  return rc;
}

int dt_cmd_recommend(int argc, char **argv) {
  enum { OPT_CKPT = 2000, OPT_USER, OPT_USERS, OPT_TIME, OPT_JSON, OPT_OTHER_DATA };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"checkpoint", required_argument, 0, OPT_CKPT},
                                          {"user", required_argument, 0, OPT_USER},
                                          {"users", required_argument, 0, OPT_USERS},
                                          {"top", required_argument, 0, 'k'},
                                          {"time", required_argument, 0, OPT_TIME},
                                          {"json", no_argument, 0, OPT_JSON},
                                          {"allow-other-data", no_argument, 0, OPT_OTHER_DATA},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *ckpt = NULL, *user = NULL, *users_file = NULL;
  FILE *users_f = NULL;
  int k = 10, json = 0, allow_other = 0, rc = DT_OK, opt;
  int64_t when = (int64_t)time(NULL);
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:k:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    char *end = NULL;
    switch (opt) {
      case OPT_CKPT: ckpt = optarg; break;
      case OPT_USER: user = optarg; break;
      case OPT_USERS: users_file = optarg; break;
      case OPT_JSON: json = 1; break;
      case OPT_OTHER_DATA: allow_other = 1; break;
      case 'k':
        k = (int)strtol(optarg, &end, 10);
        if (!*optarg || *end || k <= 0) rc = dt_fail(DT_EXIT_USAGE, "recommend: -k needs a positive integer, got '%s'", optarg);
        break;
      case OPT_TIME:
        when = strtoll(optarg, &end, 10);
        if (!*optarg || *end) rc = dt_fail(DT_EXIT_USAGE, "recommend: --time needs unix seconds, got '%s'", optarg);
        break;
      case DT_OPT_HELP: usage(); dt_cli_common_free(&common); return DT_OK;
      default: rc = dt_fail(DT_EXIT_USAGE, "recommend: unknown or incomplete option '%s' (see dtrain recommend --help)", argv[optind - 1]);
    }
    if (rc) goto out;
  }
  if ((rc = dt_cli_no_positionals(argc, argv, optind, "recommend")) != DT_OK) goto out;
  if (!ckpt || (!user && !users_file) || (user && users_file)) {
    rc = dt_fail(DT_EXIT_USAGE, "recommend: needs --checkpoint FILE and exactly one of --user ID / --users FILE");
    goto out;
  }
  dt_cli_apply_logging(&common);
  if (users_file && (rc = open_users_file(users_file, &users_f)) != DT_OK) goto out;
  dt_comm *comm = NULL;
  if ((rc = dt_comm_init(NULL, NULL, &comm)) != DT_OK) goto out;
  if (dt_comm_size(comm) > 1) rc = dt_fail(DT_EXIT_USAGE, "recommend runs on one process; start it without mpirun");
  dt_config cfg;
  uint32_t ckpt_crc = 0;
  if (!rc) rc = dt_cli_config_for_checkpoint(&common, ckpt, &cfg, &ckpt_crc);
  dt_session s;
  memset(&s, 0, sizeof s);
  dt_ckpt_state st;
  if (!rc) rc = dt_session_open(&s, &cfg, comm, 0);
  if (!rc) rc = dt_cli_check_checkpoint_data(ckpt, ckpt_crc, s.cfg.data_output, s.ds.file_crc32, allow_other, 0);
  if (!rc) rc = dt_session_load(&s, ckpt, &st);
  if (!rc) rc = dt_dataset_load_ids(&s.ds);
  if (!rc) rc = dt_model_build_item_cache(s.model);
  if (!rc && user) rc = recommend_one(&s, user, k, when, json);
  if (!rc && users_f) rc = recommend_users(&s, users_f, users_file, k, when, json);
  dt_session_close(&s);
  int frc = dt_comm_finalize(comm);
  if (!rc) rc = frc;
out:
  if (users_f && users_f != stdin) fclose(users_f);
  dt_cli_common_free(&common);
  return rc;
}
