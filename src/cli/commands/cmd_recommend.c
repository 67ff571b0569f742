/* dtrain recommend: top-k items for users from a checkpoint, excluding the
 * items each user already has; a user without history gets the popularity
 * ranking. Works from the checkpoint's inference data alone (no data set);
 * a checkpoint written before it existed falls back to its data set. One
 * process. */
#include <cjson/cJSON.h>
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
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"

static void usage(void) {
  printf(
      "usage: dtrain recommend --checkpoint FILE (--user ID | --users FILE) [-k N] [options]\n"
      "\n"
      "Prints the top-k items for each user (original ids, highest score first),\n"
      "excluding the items the user already interacted with, scored as the next\n"
      "interaction after the user's whole history at the moment --time (default now).\n"
      "A user without history gets the most popular items (train interactions) instead,\n"
      "marked \"fallback\": \"popularity\" in JSON and by a '# ...' note line in text.\n"
      "The checkpoint (or `dtrain export` file) carries the id maps and histories,\n"
      "so the prepared data set is not needed.\n"
      "\n"
      "  --checkpoint FILE     the HDF5 checkpoint or export (required)\n"
      "  --user ID             one user (original id)\n"
      "  --users FILE          a file with one user id per line ('-' = stdin)\n"
      "  --skip-unknown        report an unknown user (with its line) and go on,\n"
      "                        instead of stopping with exit 3\n"
      "  -k, --top N           items per user (default 10)\n"
      "  --time UNIX_SECONDS   the moment of the recommendation (temporal context)\n"
      "  --json                one JSON object per user instead of text lines\n"
      "  --allow-other-data    (a checkpoint without inference data, which reads its data set) go on although\n"
      "                        the data set is not the one the checkpoint was trained on\n" DT_CLI_COMMON_HELP
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

/* What recommending needs: the session (model and lists), the popularity
 * ranking, the options, and the counts of an --users run. */
typedef struct {
  dt_session s;
  const char *source;  /* where the users come from (checkpoint or data set), for messages */
  int64_t *popularity; /* [n_items] train interactions */
  int32_t *pop_order;  /* items by popularity (count desc, index asc) */
  int k, json, skip_unknown;
  int allow_other_data; /* --allow-other-data: only for a checkpoint without inference data */
  int64_t when;
  int64_t known, skipped;
} rec_ctx;

static const int64_t *g_pop;
static int by_popularity(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (g_pop[x] != g_pop[y]) return g_pop[x] > g_pop[y] ? -1 : 1;
  return (x > y) - (x < y);
}

/* Prints one user's list: JSON (ids escaped) or text lines. */
static void print_items(const rec_ctx *R, const char *uid, const scored *top, int64_t n, int fallback) {
  const dt_dataset *ds = &R->s.ds;
  if (R->json) {
    cJSON *o = cJSON_CreateObject(), *items = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "user", uid);
    if (fallback) cJSON_AddStringToObject(o, "fallback", "popularity");
    for (int64_t j = 0; j < n; j++) {
      cJSON *it = cJSON_CreateObject();
      cJSON_AddStringToObject(it, "item", ds->item_ids[top[j].item]);
      cJSON_AddNumberToObject(it, "score", (double)top[j].score);
      cJSON_AddItemToArray(items, it);
    }
    cJSON_AddItemToObject(o, "items", items);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s ? s : "{}");
    cJSON_free(s);
    cJSON_Delete(o);
    return;
  }
  if (fallback) printf("# user %s has no history: the most popular items (score = train interactions)\n", uid);
  for (int64_t j = 0; j < n; j++)
    printf("%s\t%lld\t%s\t%.6g\n", uid, (long long)j + 1, ds->item_ids[top[j].item], (double)top[j].score);
}

/* The model's top k unseen items of user u. */
static int model_top(rec_ctx *R, int64_t u, scored **out, int64_t *n_out) {
  const dt_dataset *ds = &R->s.ds;
  int32_t user = (int32_t)u;
  int32_t pos = (int32_t)(ds->user_ptr[u + 1] - ds->user_ptr[u]);
  const int64_t I = ds->n_items;
  float *scores = dt_xmalloc((size_t)I * sizeof(float));
  dt_eval_ctx ctx;
  dt_session_eval_ctx(&R->s, &ctx);
  int rc = dt_score_catalogue(&ctx, &user, &pos, &R->when, 1, 4096, scores);
  for (int64_t i = 0; i < I && !rc; i++) /* never printed: -nan is not JSON, nor a ranking */
    if (!isfinite(scores[i]))
      rc = dt_fail(DT_EXIT_DATA,
                   "recommend: the model scored item %s as %g for user '%s': the checkpoint's parameters "
                   "are damaged",
                   ds->item_ids[i], (double)scores[i], ds->user_ids[u]);
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
  *out = all;
  *n_out = n < R->k ? n : R->k;
  return DT_OK;
}

/* Recommends for one user id (`where` names its line for --users). */
static int recommend_one(rec_ctx *R, const char *uid, const char *where) {
  const dt_dataset *ds = &R->s.ds;
  int64_t u = dt_dataset_find_user(ds, uid);
  if (u < 0) {
    if (!R->skip_unknown)
      return dt_fail(DT_EXIT_DATA,
                     "recommend: unknown user '%s' (not among the users of %s; `dtrain users "
                     "--checkpoint FILE` lists them, --skip-unknown goes on past such ids)",
                     uid, R->source);
    dt_log_warn("recommend: %s%sunknown user '%s' (not among the users of %s): skipped", where ? where : "",
                where ? ": " : "", uid, R->source);
    R->skipped++;
    return DT_OK;
  }
  R->known++;
  if (ds->user_ptr[u + 1] == ds->user_ptr[u]) { /* no history: the popularity ranking */
    int64_t n = R->k < ds->n_items ? R->k : ds->n_items;
    scored *top = dt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(scored));
    for (int64_t j = 0; j < n; j++) top[j] = (scored){(float)R->popularity[R->pop_order[j]], R->pop_order[j]};
    print_items(R, uid, top, n, 1);
    free(top);
    return DT_OK;
  }
  scored *top = NULL;
  int64_t n = 0;
  DT_TRY(model_top(R, u, &top, &n));
  print_items(R, uid, top, n, 0);
  free(top);
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
 * read error or a file without (known) ids is a data error, never a silent
 * exit 0. */
static int recommend_users(rec_ctx *R, FILE *f, const char *path) {
  char line[4096], where[4200];
  long lineno = 0, ids = 0;
  int rc = DT_OK;
  errno = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n == 0) continue;
    ids++;
    snprintf(where, sizeof where, "--users %s line %ld", path, lineno);
    rc = recommend_one(R, line, where);
    if (rc) dt_fail_context(rc, "%s line %ld", path, lineno);
  }
  if (!rc && ferror(f))
    rc = dt_fail(DT_EXIT_DATA, "recommend: cannot read --users %s: %s", path, strerror(errno ? errno : EIO));
  if (!rc && ids == 0)
    rc = dt_fail(DT_EXIT_DATA, "recommend: --users %s has no user ids (one per line expected)", path);
  if (!rc && R->skipped > 0 && R->known == 0)
    rc = dt_fail(DT_EXIT_DATA, "recommend: none of the %ld ids in --users %s is a user of %s", ids, path, R->source);
  else if (!rc && R->skipped > 0)
    dt_log_warn("recommend: %lld of %ld ids in --users %s were unknown and skipped", (long long)R->skipped, ids, path);
  return rc;
}

/* The session from the checkpoint's inference data, or (a checkpoint from
 * before it existed) from the prepared data set its config names. Takes
 * over *cfg either way. */
static int open_session(rec_ctx *R, dt_config *cfg, dt_comm *comm, const char *ckpt, uint32_t ckpt_crc) {
  int has = 0, rc = dt_ckpt_probe(ckpt, &has, NULL);
  dt_ckpt_inference inf;
  if (!rc && has) rc = dt_ckpt_read_inference(ckpt, &inf);
  if (rc) {
    dt_config_free(cfg);
    return rc;
  }
  if (has) {
    dt_dataset ds;
    dt_inference_to_dataset(&inf, ckpt, ckpt_crc, &ds, &R->popularity);
    R->source = ckpt;
    return dt_session_open_with_data(&R->s, cfg, comm, &ds);
  }
  char *data = dt_xstrdup(cfg->data_output);
  if (!dt_path_exists(data)) {
    dt_config_free(cfg);
    rc = dt_fail(DT_EXIT_DATA,
                 "checkpoint %s carries no inference data (an older dtrain wrote it), so recommend needs the "
                 "prepared data set it was trained on, %s, which is not there: prepare it again with the "
                 "checkpoint's config, or recommend from a checkpoint written by this dtrain",
                 ckpt, data);
    free(data);
    return rc;
  }
  dt_log_info("checkpoint %s carries no inference data (an older dtrain wrote it): reading the prepared data set %s",
              ckpt, data);
  free(data);
  DT_TRY(dt_session_open(&R->s, cfg, comm, 0));
  DT_TRY(
      dt_cli_check_checkpoint_data(ckpt, ckpt_crc, R->s.cfg.data_output, R->s.ds.file_crc32, R->allow_other_data, 0));
  R->source = R->s.cfg.data_output;
  DT_TRY(dt_dataset_load_ids(&R->s.ds));
  R->popularity = dt_xcalloc((size_t)(R->s.ds.n_items ? R->s.ds.n_items : 1), sizeof(int64_t));
  dt_popularity_counts(&R->s.ds, R->popularity);
  return DT_OK;
}

/* Loads the model and the popularity order, then recommends. */
static int run(rec_ctx *R, dt_config *cfg, dt_comm *comm, const char *ckpt, uint32_t ckpt_crc, const char *user,
               FILE *users_f, const char *users_file) {
  int rc = open_session(R, cfg, comm, ckpt, ckpt_crc);
  dt_ckpt_state st;
  if (!rc) rc = dt_session_load_weights(&R->s, ckpt, &st);
  if (!rc) rc = dt_model_build_item_cache(R->s.model);
  if (!rc) {
    const int64_t I = R->s.ds.n_items;
    R->pop_order = dt_xmalloc((size_t)(I > 0 ? I : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < I; i++) R->pop_order[i] = (int32_t)i;
    g_pop = R->popularity;
    qsort(R->pop_order, (size_t)I, sizeof(int32_t), by_popularity);
  }
  if (!rc && user) rc = recommend_one(R, user, NULL);
  if (!rc && user && R->skipped) rc = dt_fail(DT_EXIT_DATA, "recommend: '%s' is not a user of %s", user, R->source);
  if (!rc && users_f) rc = recommend_users(R, users_f, users_file);
  return rc;
}

int dt_cmd_recommend(int argc, char **argv) {
  enum { OPT_CKPT = 2000, OPT_USER, OPT_USERS, OPT_TIME, OPT_JSON, OPT_SKIP_UNKNOWN, OPT_OTHER_DATA };
  static const struct option options[] = {DT_CLI_COMMON_LONG_OPTIONS,
                                          {"checkpoint", required_argument, 0, OPT_CKPT},
                                          {"user", required_argument, 0, OPT_USER},
                                          {"users", required_argument, 0, OPT_USERS},
                                          {"skip-unknown", no_argument, 0, OPT_SKIP_UNKNOWN},
                                          {"top", required_argument, 0, 'k'},
                                          {"time", required_argument, 0, OPT_TIME},
                                          {"json", no_argument, 0, OPT_JSON},
                                          {"allow-other-data", no_argument, 0, OPT_OTHER_DATA},
                                          {0, 0, 0, 0}};
  dt_cli_common common = {0};
  const char *ckpt = NULL, *user = NULL, *users_file = NULL;
  FILE *users_f = NULL;
  rec_ctx R;
  memset(&R, 0, sizeof R);
  R.k = 10;
  R.when = (int64_t)time(NULL);
  int rc = DT_OK, opt;
  optind = 0;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "c:k:", options, NULL)) != -1) {
    if (dt_cli_common_option(opt, optarg, &common)) continue;
    char *end = NULL;
    switch (opt) {
      case OPT_CKPT: ckpt = optarg; break;
      case OPT_USER: user = optarg; break;
      case OPT_USERS: users_file = optarg; break;
      case OPT_JSON: R.json = 1; break;
      case OPT_SKIP_UNKNOWN: R.skip_unknown = 1; break;
      case OPT_OTHER_DATA: R.allow_other_data = 1; break;
      case 'k':
        R.k = (int)strtol(optarg, &end, 10);
        if (!*optarg || *end || R.k <= 0)
          rc = dt_fail(DT_EXIT_USAGE, "recommend: -k needs a positive integer, got '%s'", optarg);
        break;
      case OPT_TIME:
        R.when = strtoll(optarg, &end, 10);
        if (!*optarg || *end) rc = dt_fail(DT_EXIT_USAGE, "recommend: --time needs unix seconds, got '%s'", optarg);
        break;
      case DT_OPT_HELP:
        usage();
        dt_cli_common_free(&common);
        return DT_OK;
      default: rc = dt_cli_unknown_option("recommend", argv);
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
  if (!rc) rc = run(&R, &cfg, comm, ckpt, ckpt_crc, user, users_f, users_file);
  dt_session_close(&R.s);
  free(R.popularity);
  free(R.pop_order);
  int frc = dt_comm_finalize(comm);
  if (!rc) rc = frc;
out:
  if (users_f && users_f != stdin) fclose(users_f);
  dt_cli_common_free(&common);
  return rc;
}
