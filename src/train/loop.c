/* loop.c: epochs, validation and early stopping, checkpoints, metrics.jsonl,
 * and the final test evaluation of the best model. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/optim.h"
#include "dtrain/progress.h"
#include "dtrain/shard.h"
#include "dtrain/timer.h"
#include "dtrain/trainer.h"
#include "train_internal.h"

/* ---- Checkpoints -------------------------------------------------------------------- */

static char *ckpt_path(dt_run *L, const char *name) { return dt_path_join(L->ckpt_dir, name); }

static int save(dt_run *L, const char *name) {
  /* with the sharded dense update each rank's Adam moments are current in
   * its own block only: gather them so the file holds all of them (the
   * shared-memory update keeps one copy, always whole) */
  dt_session *s = L->s;
  DT_TRY(dt_comm_dense_sync(s->comm)->before_save(s->comm, s->model->m, s->model->v, s->model->n_dense));
  char *path = ckpt_path(L, name);
  const dt_ckpt_inference *inf = L->inference.user_ids ? &L->inference : NULL;
  int rc = dt_ckpt_save(path, L->s->model, &L->st, L->config_json, L->s->ds.file_crc32, L->s->cfg.data_output, inf,
                        L->s->comm);
  if (!rc) dt_log_info("checkpoint %s", path);
  free(path);
  return rc;
}

/* Keeps the newest ckpt.keep_last epoch checkpoints (rank 0). */
static void prune(dt_run *L, int64_t epoch) {
  if (dt_comm_rank(L->s->comm) != 0) return;
  int64_t old = epoch - L->s->cfg.ckpt_keep_last;
  if (old < 1) return;
  char name[64];
  snprintf(name, sizeof name, "epoch-%04lld.h5", (long long)old);
  char *path = ckpt_path(L, name);
  if (dt_path_exists(path) && unlink(path) != 0)
    dt_log_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
  free(path);
}

/* ---- Validation ----------------------------------------------------------------------- */

static int validate(dt_run *L, dt_eval_result *r) {
  dt_eval_ctx ctx;
  dt_session_eval_ctx(L->s, &ctx);
  int rc = dt_evaluate(&ctx, DT_SPLIT_VALID, 1, 0, L->s->cfg.eval_max_users, r);
  /* the content cache is only valid for these parameters */
  dt_model_drop_item_cache(L->s->model);
  return rc;
}

/* ---- The loop ------------------------------------------------------------------------ */

static int open_run_dir(dt_run *L, int resumed) {
  dt_session *s = L->s;
  L->ckpt_dir = dt_path_join(s->run_dir, "checkpoints");
  int rc = DT_OK;
  if (dt_comm_rank(s->comm) == 0) {
    rc = dt_mkdir_p(L->ckpt_dir);
    char *cfg_path = dt_path_join(s->run_dir, "config.json");
    if (!rc) rc = dt_config_write(&s->cfg, cfg_path);
    free(cfg_path);
    if (!rc) rc = dt_run_log_open(L, resumed);
  }
  int64_t failed = rc != DT_OK;
  DT_TRY(dt_comm_allreduce_max_i64(s->comm, &failed, 1));
  if (failed && !rc) rc = dt_fail(DT_EXIT_RUNTIME, "rank 0 could not set up the run directory %s", s->run_dir);
  return rc;
}

/* comm.balance_steps: the whole step's units from every rank, then this
 * rank's part of a split by work (dt_balance_units). */
typedef struct {
  dt_comm_buffer all;
  int64_t *weight;
  int64_t weight_cap;
} balancer;

static int balance_step(dt_session *s, balancer *bal, dt_unit **units, int64_t *n, int64_t *cap) {
  DT_TRY(dt_comm_allgatherv(s->comm, *units, (size_t)*n * sizeof(dt_unit), &bal->all, NULL));
  const int64_t total = (int64_t)(bal->all.size / sizeof(dt_unit));
  if (total > *cap) {
    *cap = total + 64;
    *units = dt_xrealloc(*units, (size_t)*cap * sizeof(dt_unit));
  }
  if (total > bal->weight_cap) {
    bal->weight_cap = total + 64;
    bal->weight = dt_xrealloc(bal->weight, (size_t)bal->weight_cap * sizeof(int64_t));
  }
  const dt_unit *all = bal->all.data;
  const int chunk = s->model->history == DT_HISTORY_CHUNK;
  for (int64_t i = 0; i < total; i++) bal->weight[i] = dt_unit_weight(&all[i], chunk, s->ds.history_len);
  *n = dt_balance_units(all, bal->weight, total, dt_comm_rank(s->comm), dt_comm_size(s->comm), *units);
  return DT_OK;
}

/* Units of local step `step` of a plan (empty past the plan's end). */
static int64_t step_units(const dt_shard *sh, const dt_epoch_plan *plan, int64_t step, dt_unit **buf, int64_t *cap) {
  if (step >= plan->n_steps) return 0;
  int64_t lo = plan->step_ptr[step], hi = plan->step_ptr[step + 1];
  if (hi - lo > *cap) {
    *cap = hi - lo + 64;
    *buf = dt_xrealloc(*buf, (size_t)*cap * sizeof(dt_unit));
  }
  for (int64_t k = lo; k < hi; k++) {
    int64_t u = plan->order[k];
    (*buf)[k - lo] = (dt_unit){sh->unit_user[u], sh->unit_start[u], sh->unit_count[u]};
  }
  return hi - lo;
}

static int final_test(dt_run *L) {
  dt_session *s = L->s;
  char *best = ckpt_path(L, "best.h5");
  int rc = DT_OK;
  if (dt_path_exists(best)) {
    dt_ckpt_state st;
    rc = dt_session_load(s, best, &st);
    if (!rc)
      dt_log_info("final evaluation with the best model (epoch %lld, valid NDCG@10 %.4f)", (long long)st.best_epoch,
                  st.best_metric);
  }
  free(best);
  DT_TRY(rc);
  dt_eval_ctx ctx;
  dt_session_eval_ctx(s, &ctx);
  dt_eval_result r;
  int sampled = strcmp(s->cfg.eval_protocol, "full") != 0, full = strcmp(s->cfg.eval_protocol, "sampled") != 0;
  DT_TRY(dt_evaluate(&ctx, DT_SPLIT_TEST, sampled, full, 0, &r));
  dt_model_drop_item_cache(s->model);
  if (dt_comm_rank(s->comm) == 0) {
    dt_eval_print(stdout, &r);
    char *json = dt_eval_to_json(&r);
    char *path = dt_path_join(s->run_dir, "eval_test.json");
    rc = dt_write_file_atomic(path, json, strlen(json));
    if (!rc) printf("  results: %s\n", path);
    free(path);
    cJSON *o = cJSON_Parse(json);
    free(json);
    if (o) {
      cJSON_AddStringToObject(o, "type", "test");
      cJSON_AddNumberToObject(o, "step", (double)L->st.global_step);
      int wrc = dt_run_write_line(L, o);
      if (!rc) rc = wrc;
    }
  }
  return rc;
}

/* ---- The run, in named steps ---------------------------------------------------------- */

/* What one epoch's step loop needs and what it adds up. */
typedef struct {
  dt_shard shard;
  dt_unit *units;
  int64_t units_cap;
  balancer bal;
  int64_t max_steps, check_every;
  double base_sparse_lr;
} run_steps;

typedef struct {
  int64_t epoch, steps; /* global steps of this epoch */
  double lr_dense, lr_sparse;
  double loss_sum, examples, alpha_sum[3]; /* example-weighted */
  double t_start;
} epoch_sums;

/* Fresh parameters or a checkpoint's, the run directory, this rank's shard. */
static int start_run(dt_run *L, const dt_train_options *opt, run_steps *R) {
  dt_session *s = L->s;
  const dt_config *cfg = &s->cfg;
  int rc;
  L->st.best_metric = -1;
  L->st.seed = (uint64_t)cfg->run_seed;
  if (opt->resume) {
    rc = dt_session_load(s, opt->resume, &L->st);
    if (!rc)
      dt_log_info("resuming from %s: %lld epochs and %lld steps done", opt->resume, (long long)L->st.epoch,
                  (long long)L->st.global_step);
  } else {
    rc = dt_model_init(s->model, (uint64_t)cfg->run_seed);
    /* node-shared parameters: every rank wrote the same values into the one
     * copy; nobody updates it before all are done (dt_session_load waits
     * likewise) */
    rc = dt_comm_dense_sync(s->comm)->after_write(s->comm, rc, DT_EXIT_RUNTIME, "initialising the parameters");
  }
  DT_TRY(rc);
  DT_TRY(open_run_dir(L, opt->resume != NULL));
  if (dt_comm_rank(s->comm) == 0) { /* rank 0 writes the checkpoints, with what inference needs */
    DT_TRY(dt_dataset_load_ids(&s->ds));
    DT_TRY(dt_inference_from_dataset(&s->ds, s->model->history, (dt_model_towers(s->model) & DT_TOWER_CONTENT) != 0,
                                     &L->inference));
  }
  const int chunk = s->model->history == DT_HISTORY_CHUNK;
  DT_TRY(dt_shard_load(cfg->data_output, dt_comm_rank(s->comm), dt_comm_size(s->comm), chunk, cfg->train_batch_size,
                       s->ds.history_len, &R->shard));
  dt_log_info(
      "training %s %s (%s history) on %s: %lld users, %lld items, %lld train interactions; this rank: %lld "
      "units, %lld interactions; %d rank(s), backend %s",
      cfg->model_version, cfg->model_variant, dt_config_history_mode(cfg), cfg->data_output, (long long)s->ds.n_users,
      (long long)s->ds.n_items, (long long)s->ds.train.n, (long long)R->shard.n_units,
      (long long)R->shard.n_interactions, dt_comm_size(s->comm), s->be->name);
  R->max_steps = opt->max_steps > 0 ? opt->max_steps : cfg->train_max_steps;
  R->check_every = opt->check_replicas > 0 ? opt->check_replicas : cfg->comm_check_replicas;
  R->base_sparse_lr = dt_config_sparse_lr(cfg);
  return DT_OK;
}

/* --check-replicas: the replicated tables' checksums agree over ranks. */
static int check_replicas(dt_session *s) {
  int ids[DT_MAX_TABLES];
  uint64_t sums[DT_MAX_TABLES];
  int nt = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    const dt_table *tb = &s->model->tables[t];
    if (!tb->present || tb->sharded) continue;
    DT_TRY(dt_table_checksum(tb, &sums[nt]));
    ids[nt++] = tb->comm_id;
  }
  return dt_comm_check_replicas(s->comm, nt, ids, sums);
}

/* One global step of an epoch: this rank's units, the step, its line. */
static int run_one_step(dt_run *L, run_steps *R, const dt_epoch_plan *plan, epoch_sums *E, dt_step_log *lg,
                        int64_t step, double *loss) {
  dt_session *s = L->s;
  dt_comm_set_progress(s->comm, E->epoch, L->st.global_step);
  int64_t nu = step_units(&R->shard, plan, step, &R->units, &R->units_cap);
  if (dt_comm_size(s->comm) > 1 && s->cfg.comm_balance_steps)
    DT_TRY(balance_step(s, &R->bal, &R->units, &nu, &R->units_cap));
  dt_step_stats st;
  DT_TRY(dt_train_step(s, R->units, nu, E->epoch, L->st.global_step, E->lr_dense, E->lr_sparse, &st));
  *loss = st.loss;
  L->st.global_step++;
  L->st.step_in_epoch = step + 1;
  E->loss_sum += st.loss * (double)st.examples;
  E->examples += (double)st.examples;
  for (int k = 0; k < 3; k++) E->alpha_sum[k] += st.alpha[k] * (double)st.examples;
  DT_TRY(dt_step_log_add(L, lg, &st, E->epoch, step + 1 == E->steps, E->lr_dense, E->lr_sparse));
  if (R->check_every > 0 && L->st.global_step % R->check_every == 0) DT_TRY(check_replicas(s));
  return DT_OK;
}

/* The epoch's steps (from where a resumed run left off); *stop when
 * --max-steps is reached, L->stop_sig when the ranks agree on a stop
 * signal after a step. */
static int run_epoch_steps(dt_run *L, run_steps *R, epoch_sums *E, int *stop) {
  dt_session *s = L->s;
  const dt_config *cfg = &s->cfg;
  dt_epoch_plan plan;
  DT_TRY(dt_shard_plan_epoch(&R->shard, (uint64_t)cfg->run_seed, E->epoch, &plan));
  E->steps = plan.n_steps;
  int rc = dt_comm_allreduce_max_i64(s->comm, &E->steps, 1);
  E->lr_dense = dt_lr_at_epoch(cfg, cfg->train_lr, E->epoch);
  E->lr_sparse = dt_lr_at_epoch(cfg, R->base_sparse_lr, E->epoch);
  E->t_start = dt_now_s();
  dt_step_log lg;
  dt_step_log_begin(L, &lg);
  dt_progress prog;
  char label[64], extra[96];
  snprintf(label, sizeof label, "epoch %lld/%lld", (long long)E->epoch + 1, (long long)cfg->train_epochs);
  dt_progress_begin(&prog, label, E->steps, "steps");
  int64_t step0 = E->epoch == L->st.epoch ? L->st.step_in_epoch : 0;
  for (int64_t step = step0; step < E->steps && !rc && !*stop; step++) {
    double loss = 0;
    rc = run_one_step(L, R, &plan, E, &lg, step, &loss);
    if (!rc) {
      snprintf(extra, sizeof extra, "loss %.4f", loss);
      dt_progress_update(&prog, step + 1, extra);
    }
    if (!rc && R->max_steps > 0 && L->st.global_step >= R->max_steps) *stop = 1;
    if (!rc) rc = dt_comm_stop_signal(s->comm, &L->stop_sig);
    if (L->stop_sig) *stop = 1;
  }
  dt_epoch_plan_free(&plan);
  dt_progress_end(&prog, L->st.step_in_epoch, rc ? "failed" : NULL);
  return rc;
}

/* Validation (every train.eval_every epochs and the last) into the epoch
 * line, and the early-stopping bookkeeping; *improved when the best
 * validation NDCG@10 so far. */
static int validate_epoch(dt_run *L, const epoch_sums *E, double epoch_time, cJSON *o, int *improved) {
  const dt_config *cfg = &L->s->cfg;
  const int64_t epoch = E->epoch;
  *improved = 0;
  if (cfg->train_eval_every <= 0 || ((epoch + 1) % cfg->train_eval_every != 0 && epoch + 1 != cfg->train_epochs))
    return DT_OK;
  dt_eval_result r;
  DT_TRY(validate(L, &r));
  cJSON *v = cJSON_CreateObject();
  cJSON_AddNumberToObject(v, "ndcg@10", r.sampled.ndcg[1]);
  cJSON_AddNumberToObject(v, "hr@10", r.sampled.hr[1]);
  cJSON_AddNumberToObject(v, "mrr", r.sampled.mrr);
  cJSON_AddNumberToObject(v, "users", (double)r.sampled.users);
  cJSON_AddItemToObject(o, "valid", v);
  double metric = r.sampled.ndcg[1];
  *improved = metric > L->st.best_metric;
  if (*improved) {
    L->st.best_metric = metric;
    L->st.best_epoch = epoch + 1;
    L->st.bad_epochs = 0;
  } else {
    L->st.bad_epochs++;
  }
  const double loss = E->examples > 0 ? E->loss_sum / E->examples : NAN;
  double am[3];
  char alpha[128];
  for (int k = 0; k < 3; k++) am[k] = E->examples > 0 ? E->alpha_sum[k] / E->examples : NAN;
  dt_alpha_text(alpha, sizeof alpha, am, dt_model_towers(L->s->model));
  dt_log_info(
      "epoch %lld: loss %.4f, valid NDCG@10 %.4f HR@10 %.4f (best %.4f at epoch %lld), alpha %s, %.0f "
      "examples/s",
      (long long)epoch + 1, loss, metric, r.sampled.hr[1], L->st.best_metric, (long long)L->st.best_epoch, alpha,
      epoch_time > 0 ? E->examples / epoch_time : 0);
  return DT_OK;
}

/* After a whole epoch: its line (with validation), the epoch and best
 * checkpoints, early stopping (*stop). */
static int end_epoch(dt_run *L, const epoch_sums *E, int *stop) {
  const dt_config *cfg = &L->s->cfg;
  const int64_t epoch = E->epoch;
  const double epoch_time = dt_now_s() - E->t_start;
  L->st.epoch = epoch + 1;
  L->st.step_in_epoch = 0;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "epoch");
  cJSON_AddNumberToObject(o, "epoch", (double)epoch + 1);
  cJSON_AddNumberToObject(o, "step", (double)L->st.global_step);
  cJSON_AddNumberToObject(o, "loss", E->examples > 0 ? E->loss_sum / E->examples : NAN);
  cJSON_AddNumberToObject(o, "examples_per_sec", epoch_time > 0 ? E->examples / epoch_time : 0);
  cJSON_AddNumberToObject(o, "epoch_time_s", epoch_time);
  double am[3];
  for (int k = 0; k < 3; k++) am[k] = E->examples > 0 ? E->alpha_sum[k] / E->examples : NAN;
  dt_log_add_alpha(o, am, dt_model_towers(L->s->model));
  cJSON_AddNumberToObject(o, "lr", E->lr_dense);
  int improved = 0, rc = validate_epoch(L, E, epoch_time, o, &improved);
  if (rc) {
    cJSON_Delete(o);
    return rc;
  }
  cJSON_AddNumberToObject(o, "best_ndcg@10", L->st.best_metric);
  DT_TRY(dt_run_write_line(L, o));
  if (cfg->ckpt_every > 0 && (epoch + 1) % cfg->ckpt_every == 0) {
    char name[64];
    snprintf(name, sizeof name, "epoch-%04lld.h5", (long long)epoch + 1);
    DT_TRY(save(L, name));
    prune(L, epoch + 1);
  }
  if (improved) DT_TRY(save(L, "best.h5"));
  if (cfg->train_patience > 0 && L->st.bad_epochs >= cfg->train_patience) {
    dt_log_info("early stopping: no better validation NDCG@10 for %lld epochs", (long long)L->st.bad_epochs);
    *stop = 1;
  }
  return DT_OK;
}

/* After a stop signal: where it stopped and how to go on (last.h5 is
 * written); the process exits 128 + the signal. */
static int stopped_by_signal(dt_run *L) {
  const int sig = L->stop_sig;
  const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
  if (dt_comm_rank(L->s->comm) == 0) {
    char *last = ckpt_path(L, "last.h5");
    dt_log_warn(
        "stopped by %s after %lld completed epochs and %lld steps of the next (global step %lld); wrote %s. "
        "Continue with: dtrain train --resume %s",
        name, (long long)L->st.epoch, (long long)L->st.step_in_epoch, (long long)L->st.global_step, last, last);
    free(last);
  }
  dt_error_clear();
  return DT_EXIT_SIGNAL + sig;
}

int dt_train_run(dt_session *s, const dt_train_options *opt) {
  dt_run L;
  memset(&L, 0, sizeof L);
  L.s = s;
  L.metrics_fd = -1;
  L.config_json = dt_config_to_json(&s->cfg);
  L.t0 = dt_now_s();
  run_steps R;
  memset(&R, 0, sizeof R);
  /* SIGINT/SIGTERM/SIGUSR1 stop the loop at a step boundary, with last.h5 */
  dt_comm_defer_stop_signals(s->comm, 1);
  int rc = start_run(&L, opt, &R), stop = 0;
  for (int64_t epoch = L.st.epoch; !rc && !stop && epoch < s->cfg.train_epochs; epoch++) {
    epoch_sums E = {.epoch = epoch};
    rc = run_epoch_steps(&L, &R, &E, &stop);
    if (!rc && stop && (L.st.step_in_epoch < E.steps || L.stop_sig)) {
      /* stopped inside the epoch (--max-steps), or by a signal after any
       * step (after the epoch's last one, a resumed run starts with the
       * epoch's validation): a resumable checkpoint */
      L.st.epoch = epoch;
      rc = save(&L, "last.h5");
      break;
    }
    if (!rc) rc = end_epoch(&L, &E, &stop);
    /* a signal during validation or the epoch's checkpoints */
    if (!rc && !stop && (rc = dt_comm_stop_signal(s->comm, &L.stop_sig)) == DT_OK && L.stop_sig) stop = 1;
  }
  if (!rc && !(stop && L.st.step_in_epoch > 0)) rc = save(&L, "last.h5");
  /* from here a signal ends the process at once; one that came during that
   * save is seen here */
  dt_comm_defer_stop_signals(s->comm, 0);
  if (!rc && !L.stop_sig) rc = dt_comm_stop_signal(s->comm, &L.stop_sig);
  if (!rc && L.stop_sig) rc = stopped_by_signal(&L);
  if (!rc && !opt->skip_final_eval) rc = final_test(&L);
  if (rc && rc < DT_EXIT_SIGNAL && L.ckpt_dir && dt_comm_rank(s->comm) == 0) /* say where the last good state is */
    dt_log_error("training stopped; the checkpoints in %s are intact", L.ckpt_dir);
  free(R.units);
  dt_comm_buffer_free(&R.bal.all);
  free(R.bal.weight);
  dt_shard_free(&R.shard);
  dt_run_log_close(&L);
  dt_inference_release(&L.inference);
  free(L.ckpt_dir);
  free(L.config_json);
  return rc;
}
