/* loop.c: epochs, validation and early stopping, checkpoints, metrics.jsonl,
 * and the final test evaluation of the best model. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
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

typedef struct {
  dt_session *s;
  FILE *metrics;        /* rank 0 only */
  char *ckpt_dir;
  char *config_json;
  dt_ckpt_state st;
  double t0;
} loop_ctx;

/* ---- metrics.jsonl ----------------------------------------------------------------- */

static int write_json_line(loop_ctx *L, cJSON *o) {
  int rc = DT_OK;
  if (L->metrics) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s || fprintf(L->metrics, "%s\n", s) < 0 || fflush(L->metrics) != 0)
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s/metrics.jsonl: %s", L->s->run_dir, strerror(errno));
    cJSON_free(s);
  }
  cJSON_Delete(o);
  return rc;
}

static void add_alpha(cJSON *o, const double a[3]) {
  cJSON *arr = cJSON_CreateArray();
  for (int k = 0; k < 3; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a[k]));
  cJSON_AddItemToObject(o, "alpha_mean", arr);
}

/* Bytes this rank has sent: the dense all-reduce, and every table's sparse
 * exchange (lookups and gradients). */
static void comm_bytes(dt_session *s, uint64_t *dense, uint64_t *sparse) {
  dt_comm_stats cs;
  dt_comm_get_stats(s->comm, &cs);
  *dense = cs.dense_bytes;
  *sparse = 0;
  for (int t = 0; t < DT_MAX_TABLES; t++) {
    if (!s->model->tables[t].present) continue;
    dt_comm_table_stats ts;
    dt_comm_get_table_stats(s->comm, s->model->tables[t].comm_id, &ts);
    *sparse += ts.lookup_bytes + ts.grad_bytes;
  }
}

/* ---- Checkpoints -------------------------------------------------------------------- */

static char *ckpt_path(loop_ctx *L, const char *name) { return dt_path_join(L->ckpt_dir, name); }

static int save(loop_ctx *L, const char *name) {
  /* with the sharded dense update each rank's Adam moments are current in
   * its own block only: gather them so the file holds all of them (the
   * shared-memory update keeps one copy, always whole) */
  dt_session *s = L->s;
  DT_TRY(dt_comm_dense_sync(s->comm)->before_save(s->comm, s->model->m, s->model->v, s->model->n_dense));
  char *path = ckpt_path(L, name);
  int rc = dt_ckpt_save(path, L->s->model, &L->st, L->config_json, L->s->ds.file_crc32, L->s->cfg.data_output,
                        L->s->comm);
  if (!rc) dt_log_info("checkpoint %s", path);
  free(path);
  return rc;
}

/* Keeps the newest ckpt.keep_last epoch checkpoints (rank 0). */
static void prune(loop_ctx *L, int64_t epoch) {
  if (dt_comm_rank(L->s->comm) != 0) return;
  int64_t old = epoch - L->s->cfg.ckpt_keep_last;
  if (old < 1) return;
  char name[64];
  snprintf(name, sizeof name, "epoch-%04lld.h5", (long long)old);
  char *path = ckpt_path(L, name);
  if (dt_path_exists(path) && unlink(path) != 0) dt_log_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
  free(path);
}

/* ---- Validation ----------------------------------------------------------------------- */

static int validate(loop_ctx *L, dt_eval_result *r) {
  dt_eval_ctx ctx;
  dt_session_eval_ctx(L->s, &ctx);
  int rc = dt_evaluate(&ctx, DT_SPLIT_VALID, 1, 0, L->s->cfg.eval_max_users, r);
  /* the content cache is only valid for these parameters */
  dt_model_drop_item_cache(L->s->model);
  return rc;
}

/* ---- The loop ------------------------------------------------------------------------ */

static int open_run_dir(loop_ctx *L, int resumed) {
  dt_session *s = L->s;
  L->ckpt_dir = dt_path_join(s->run_dir, "checkpoints");
  int rc = DT_OK;
  if (dt_comm_rank(s->comm) == 0) {
    rc = dt_mkdir_p(L->ckpt_dir);
    char *cfg_path = dt_path_join(s->run_dir, "config.json");
    if (!rc) rc = dt_config_write(&s->cfg, cfg_path);
    free(cfg_path);
    if (!rc) {
      char *mpath = dt_path_join(s->run_dir, "metrics.jsonl");
      L->metrics = fopen(mpath, resumed ? "a" : "w");
      if (!L->metrics) rc = dt_fail(DT_EXIT_RUNTIME, "cannot open %s: %s", mpath, strerror(errno));
      free(mpath);
    }
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

static int final_test(loop_ctx *L) {
  dt_session *s = L->s;
  char *best = ckpt_path(L, "best.h5");
  int rc = DT_OK;
  if (dt_path_exists(best)) {
    dt_ckpt_state st;
    rc = dt_session_load(s, best, &st);
    if (!rc) dt_log_info("final evaluation with the best model (epoch %lld, valid NDCG@10 %.4f)", (long long)st.best_epoch, st.best_metric);
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
      int wrc = write_json_line(L, o);
      if (!rc) rc = wrc;
    }
  }
  return rc;
}

int dt_train_run(dt_session *s, const dt_train_options *opt) {
  const dt_config *cfg = &s->cfg;
  loop_ctx L;
  memset(&L, 0, sizeof L);
  L.s = s;
  L.config_json = dt_config_to_json(cfg);
  L.t0 = dt_now_s();
  const int rank = dt_comm_rank(s->comm), size = dt_comm_size(s->comm);
  int rc = DT_OK;
  dt_shard shard;
  memset(&shard, 0, sizeof shard);
  dt_unit *units = NULL;
  int64_t units_cap = 0;
  balancer bal;
  memset(&bal, 0, sizeof bal);

  /* state: fresh or resumed */
  L.st.best_metric = -1;
  L.st.seed = (uint64_t)cfg->run_seed;
  if (opt->resume) {
    rc = dt_session_load(s, opt->resume, &L.st);
    if (!rc) dt_log_info("resuming from %s: %lld epochs and %lld steps done", opt->resume, (long long)L.st.epoch,
                         (long long)L.st.global_step);
  } else {
    rc = dt_model_init(s->model, (uint64_t)cfg->run_seed);
    /* shared_memory: every rank wrote the same values into the one copy of
     * the dense parameters; nobody updates it before all are done
     * (dt_session_load waits likewise) */
    rc = dt_comm_dense_sync(s->comm)->after_write(s->comm, rc, DT_EXIT_RUNTIME, "initialising the parameters");
  }
  if (!rc) rc = open_run_dir(&L, opt->resume != NULL);
  const int chunk = s->model->history == DT_HISTORY_CHUNK;
  if (!rc) rc = dt_shard_load(cfg->data_output, rank, size, chunk, cfg->train_batch_size, s->ds.history_len, &shard);
  if (rc) goto out;
  dt_log_info("training %s %s (%s history) on %s: %lld users, %lld items, %lld train interactions; this rank: %lld "
              "units, %lld interactions; %d rank(s), backend %s",
              cfg->model_version, cfg->model_variant, dt_config_history_mode(cfg), cfg->data_output,
              (long long)s->ds.n_users, (long long)s->ds.n_items, (long long)s->ds.train.n, (long long)shard.n_units,
              (long long)shard.n_interactions, size, s->be->name);

  const int64_t max_steps = opt->max_steps > 0 ? opt->max_steps : cfg->train_max_steps;
  const int64_t check_every = opt->check_replicas > 0 ? opt->check_replicas : cfg->comm_check_replicas;
  const double base_sparse_lr = dt_config_sparse_lr(cfg);
  int stop = 0;
  for (int64_t epoch = L.st.epoch; epoch < cfg->train_epochs && !stop && !rc; epoch++) {
    dt_epoch_plan plan;
    rc = dt_shard_plan_epoch(&shard, (uint64_t)cfg->run_seed, epoch, &plan);
    if (rc) break;
    int64_t steps = plan.n_steps;
    rc = dt_comm_allreduce_max_i64(s->comm, &steps, 1);
    const double lr_d = dt_lr_at_epoch(cfg, cfg->train_lr, epoch), lr_s = dt_lr_at_epoch(cfg, base_sparse_lr, epoch);
    double loss_sum = 0, ex_sum = 0, alpha_sum[3] = {0, 0, 0}, t_epoch = dt_now_s(), t_log = t_epoch;
    int64_t ex_log = 0, steps_log = 0;
    double phase[7] = {0, 0, 0, 0, 0, 0, 0};
    uint64_t log_dense0 = 0, log_sparse0 = 0, log_lb0 = s->sparse_lower_bound_bytes;
    comm_bytes(s, &log_dense0, &log_sparse0);
    dt_progress prog;
    char label[64];
    snprintf(label, sizeof label, "epoch %lld/%lld", (long long)epoch + 1, (long long)cfg->train_epochs);
    dt_progress_begin(&prog, label, steps, "steps");
    int64_t step0 = epoch == L.st.epoch ? L.st.step_in_epoch : 0;
    for (int64_t step = step0; step < steps && !rc; step++) {
      dt_comm_set_progress(s->comm, epoch, L.st.global_step);
      int64_t nu = step_units(&shard, &plan, step, &units, &units_cap);
      if (size > 1 && cfg->comm_balance_steps) {
        rc = balance_step(s, &bal, &units, &nu, &units_cap);
        if (rc) break;
      }
      dt_step_stats st;
      rc = dt_train_step(s, units, nu, epoch, L.st.global_step, lr_d, lr_s, &st);
      if (rc) break;
      L.st.global_step++;
      L.st.step_in_epoch = step + 1;
      loss_sum += st.loss * (double)st.examples;
      ex_sum += (double)st.examples;
      ex_log += st.examples;
      steps_log++;
      const double ph[7] = {st.t_batch, st.t_forward, st.t_backward, st.t_wait, st.t_dense, st.t_sparse, st.t_update};
      for (int k = 0; k < 7; k++) phase[k] += ph[k];
      for (int k = 0; k < 3; k++) alpha_sum[k] += st.alpha[k] * (double)st.examples;
      char extra[96];
      snprintf(extra, sizeof extra, "loss %.4f", st.loss);
      dt_progress_update(&prog, step + 1, extra);
      if (L.st.global_step % cfg->run_log_every == 0 || step + 1 == steps) {
        double now = dt_now_s();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "step");
        cJSON_AddNumberToObject(o, "epoch", (double)epoch + 1);
        cJSON_AddNumberToObject(o, "step", (double)L.st.global_step);
        cJSON_AddNumberToObject(o, "loss", st.loss);
        cJSON_AddNumberToObject(o, "examples", (double)st.examples);
        cJSON_AddNumberToObject(o, "bpr", st.bpr);
        cJSON_AddNumberToObject(o, "neg_entropy", st.entropy);
        cJSON_AddNumberToObject(o, "balance", st.balance);
        add_alpha(o, st.alpha);
        cJSON_AddNumberToObject(o, "lr", lr_d);
        cJSON_AddNumberToObject(o, "sparse_lr", lr_s);
        cJSON_AddNumberToObject(o, "grad_norm", st.grad_norm);
        cJSON_AddNumberToObject(o, "examples_per_sec", now > t_log ? (double)ex_log / (now - t_log) : 0);
        cJSON_AddNumberToObject(o, "time_s", now - L.t0);
        cJSON_AddNumberToObject(o, "peak_rss_mb", (double)dt_peak_rss_bytes() / 1048576.0);
        /* this rank's communication per step since the last line */
        uint64_t dense_b, sparse_b;
        comm_bytes(s, &dense_b, &sparse_b);
        double per = steps_log > 0 ? (double)steps_log : 1.0;
        cJSON_AddNumberToObject(o, "comm_dense_bytes_per_step", (double)(dense_b - log_dense0) / per);
        cJSON_AddNumberToObject(o, "comm_sparse_bytes_per_step", (double)(sparse_b - log_sparse0) / per);
        cJSON_AddNumberToObject(o, "sparse_lower_bound_bytes_per_step",
                                (double)(s->sparse_lower_bound_bytes - log_lb0) / per);
        /* this rank's time per step, by phase (ms) */
        static const char *phase_names[7] = {"batch",      "forward",     "backward", "wait",
                                             "dense_comm", "sparse_comm", "update"};
        cJSON *tm = cJSON_CreateObject();
        for (int k = 0; k < 7; k++) {
          cJSON_AddNumberToObject(tm, phase_names[k], 1e3 * phase[k] / per);
          phase[k] = 0;
        }
        cJSON_AddItemToObject(o, "time_ms", tm);
        log_dense0 = dense_b;
        log_sparse0 = sparse_b;
        log_lb0 = s->sparse_lower_bound_bytes;
        steps_log = 0;
        rc = write_json_line(&L, o);
        t_log = now;
        ex_log = 0;
      }
      if (!rc && check_every > 0 && L.st.global_step % check_every == 0) {
        int ids[DT_MAX_TABLES];
        uint64_t sums[DT_MAX_TABLES];
        int nt = 0;
        for (int t = 0; t < DT_MAX_TABLES && !rc; t++) {
          const dt_table *tb = &s->model->tables[t];
          if (!tb->present || tb->sharded) continue;
          rc = dt_table_checksum(tb, &sums[nt]);
          ids[nt++] = tb->comm_id;
        }
        if (!rc) rc = dt_comm_check_replicas(s->comm, nt, ids, sums);
      }
      if (!rc && max_steps > 0 && L.st.global_step >= max_steps) {
        stop = 1;
        break;
      }
    }
    dt_epoch_plan_free(&plan);
    if (rc) {
      dt_progress_end(&prog, L.st.step_in_epoch, "failed");
      break;
    }
    double epoch_time = dt_now_s() - t_epoch;
    dt_progress_end(&prog, L.st.step_in_epoch, NULL);
    if (stop && L.st.step_in_epoch < steps) {
      /* stopped inside the epoch (--max-steps): a resumable checkpoint */
      L.st.epoch = epoch;
      rc = save(&L, "last.h5");
      break;
    }
    L.st.epoch = epoch + 1;
    L.st.step_in_epoch = 0;
    /* validation and early stopping */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "epoch");
    cJSON_AddNumberToObject(o, "epoch", (double)epoch + 1);
    cJSON_AddNumberToObject(o, "step", (double)L.st.global_step);
    cJSON_AddNumberToObject(o, "loss", ex_sum > 0 ? loss_sum / ex_sum : NAN);
    cJSON_AddNumberToObject(o, "examples_per_sec", epoch_time > 0 ? ex_sum / epoch_time : 0);
    cJSON_AddNumberToObject(o, "epoch_time_s", epoch_time);
    double am[3];
    for (int k = 0; k < 3; k++) am[k] = ex_sum > 0 ? alpha_sum[k] / ex_sum : NAN;
    add_alpha(o, am);
    cJSON_AddNumberToObject(o, "lr", lr_d);
    int improved = 0;
    if (cfg->train_eval_every > 0 && ((epoch + 1) % cfg->train_eval_every == 0 || epoch + 1 == cfg->train_epochs)) {
      dt_eval_result r;
      rc = validate(&L, &r);
      if (rc) {
        cJSON_Delete(o);
        break;
      }
      cJSON *v = cJSON_CreateObject();
      cJSON_AddNumberToObject(v, "ndcg@10", r.sampled.ndcg[1]);
      cJSON_AddNumberToObject(v, "hr@10", r.sampled.hr[1]);
      cJSON_AddNumberToObject(v, "mrr", r.sampled.mrr);
      cJSON_AddNumberToObject(v, "users", (double)r.sampled.users);
      cJSON_AddItemToObject(o, "valid", v);
      double metric = r.sampled.ndcg[1];
      improved = metric > L.st.best_metric;
      if (improved) {
        L.st.best_metric = metric;
        L.st.best_epoch = epoch + 1;
        L.st.bad_epochs = 0;
      } else {
        L.st.bad_epochs++;
      }
      dt_log_info("epoch %lld: loss %.4f, valid NDCG@10 %.4f HR@10 %.4f (best %.4f at epoch %lld), alpha %.3f %.3f "
                  "%.3f, %.0f examples/s",
                  (long long)epoch + 1, ex_sum > 0 ? loss_sum / ex_sum : NAN, metric, r.sampled.hr[1],
                  L.st.best_metric, (long long)L.st.best_epoch, am[0], am[1], am[2],
                  epoch_time > 0 ? ex_sum / epoch_time : 0);
    }
    cJSON_AddNumberToObject(o, "best_ndcg@10", L.st.best_metric);
    rc = write_json_line(&L, o);
    if (!rc && cfg->ckpt_every > 0 && (epoch + 1) % cfg->ckpt_every == 0) {
      char name[64];
      snprintf(name, sizeof name, "epoch-%04lld.h5", (long long)epoch + 1);
      rc = save(&L, name);
      if (!rc) prune(&L, epoch + 1);
    }
    if (!rc && improved) rc = save(&L, "best.h5");
    if (!rc && cfg->train_patience > 0 && L.st.bad_epochs >= cfg->train_patience) {
      dt_log_info("early stopping: no better validation NDCG@10 for %lld epochs", (long long)L.st.bad_epochs);
      stop = 1;
    }
  }
  if (!rc && !(stop && L.st.step_in_epoch > 0)) rc = save(&L, "last.h5");
  if (!rc && !opt->skip_final_eval) rc = final_test(&L);
out:
  if (rc && L.ckpt_dir && rank == 0) /* say where the last good state is */
    dt_log_error("training stopped; the checkpoints in %s are intact", L.ckpt_dir);
  free(units);
  dt_comm_buffer_free(&bal.all);
  free(bal.weight);
  dt_shard_free(&shard);
  if (L.metrics) fclose(L.metrics);
  free(L.ckpt_dir);
  free(L.config_json);
  return rc;
}
