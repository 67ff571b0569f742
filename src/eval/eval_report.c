/* eval_report.c: the metric table and the JSON of an evaluation (eval.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dtrain/error.h"
#include "eval_internal.h"

static const char *const g_tower_names[3] = {"static", "dynamic", "content"};

cJSON *dt_alpha_json(const double a[3], unsigned towers) {
  cJSON *arr = cJSON_CreateArray();
  for (int k = 0; k < 3; k++)
    cJSON_AddItemToArray(arr, (towers >> k) & 1u && isfinite(a[k]) ? cJSON_CreateNumber(a[k]) : cJSON_CreateNull());
  return arr;
}

void dt_alpha_text(char *buf, size_t size, const double a[3], unsigned towers) {
  size_t off = 0;
  buf[0] = '\0';
  for (int k = 0; k < 3 && off < size; k++) {
    if (!((towers >> k) & 1u)) continue;
    if (a)
      off += (size_t)snprintf(buf + off, size - off, "%s%s %.3f", off ? ", " : "", g_tower_names[k], a[k]);
    else
      off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "", g_tower_names[k]);
  }
  if (!off) snprintf(buf, size, "none");
}

/* The bucket table's alpha column: the present towers' numbers only. */
static void alpha_numbers(char *buf, size_t size, const double a[3], unsigned towers) {
  size_t off = 0;
  buf[0] = '\0';
  for (int k = 0; k < 3 && off < size; k++)
    if ((towers >> k) & 1u) off += (size_t)snprintf(buf + off, size - off, "%s%.3f", off ? " " : "", a[k]);
}

static void print_metrics_row(FILE *f, const char *name, const dt_metrics *m, int full) {
  fprintf(f, "  %-22s %8lld", name, (long long)m->users);
  for (int k = 0; k < DT_EVAL_NK; k++) fprintf(f, "  %6.4f %6.4f", m->ndcg[k], full ? m->recall[k] : m->hr[k]);
  fprintf(f, "  %6.4f\n", m->mrr);
}

void dt_eval_print(FILE *f, const dt_eval_result *r) {
  const char *split = r->split == DT_SPLIT_VALID ? "valid" : "test";
  fprintf(f, "\nEvaluation on %s\n", split);
  fprintf(f, "  %-22s %8s  %-13s  %-13s  %-13s  %6s\n", "protocol", "users", "NDCG@5 R@5", "NDCG@10 R@10",
          "NDCG@20 R@20", "MRR");
  if (r->has_sampled) {
    char label[32];
    snprintf(label, sizeof label, "sampled 1+%d", r->sampled_negatives);
    print_metrics_row(f, label, &r->sampled, 0);
    print_metrics_row(f, "  popularity", &r->pop_sampled, 0);
  }
  if (r->has_full) {
    print_metrics_row(f, "full ranking", &r->full, 1);
    print_metrics_row(f, "  popularity", &r->pop_full, 1);
    fprintf(f, "  full ranking: precision@10 %.4f  MAP@10 %.4f  HR@10 %.4f  coverage@5/10/20 %.4f %.4f %.4f\n",
            r->full.precision[1], r->full.map[1], r->full.hr[1], r->full.coverage[0], r->full.coverage[1],
            r->full.coverage[2]);
  }
  if (r->has_sampled) {
    if (r->sampled_fewer_negatives > 0)
      fprintf(f, "  sampled: %lld users have fewer than %d unseen items and were ranked against all of them\n",
              (long long)r->sampled_fewer_negatives, r->sampled_negatives);
    char text[128];
    dt_alpha_text(text, sizeof text, r->alpha_mean, r->towers);
    fprintf(f, "  mean alpha: %s\n", text);
    char names[64];
    dt_alpha_text(names, sizeof names, NULL, r->towers);
    fprintf(f, "  cold start (train history length):\n  %-8s %8s %8s %8s   alpha (%s)\n", "bucket", "users", "NDCG@10",
            "HR@10", names);
    for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
      const dt_bucket *bk = &r->buckets[b];
      alpha_numbers(text, sizeof text, bk->alpha, r->towers);
      fprintf(f, "  %-8s %8lld %8.4f %8.4f   %s\n", bk->name, (long long)bk->users, bk->ndcg10, bk->hr10, text);
    }
  }
  fflush(f);
}

static void add_number(cJSON *o, const char *key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static cJSON *metrics_json(const dt_metrics *m, int full) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "users", (double)m->users);
  char key[32];
  for (int k = 0; k < DT_EVAL_NK; k++) {
    int K = dt_eval_ks[k];
    snprintf(key, sizeof key, "ndcg@%d", K);
    add_number(o, key, m->ndcg[k]);
    snprintf(key, sizeof key, "hr@%d", K);
    add_number(o, key, m->hr[k]);
    snprintf(key, sizeof key, "recall@%d", K);
    add_number(o, key, m->recall[k]);
    snprintf(key, sizeof key, "precision@%d", K);
    add_number(o, key, m->precision[k]);
    snprintf(key, sizeof key, "map@%d", K);
    add_number(o, key, m->map[k]);
    if (full) {
      snprintf(key, sizeof key, "coverage@%d", K);
      add_number(o, key, m->coverage[k]);
    }
  }
  add_number(o, "mrr", m->mrr);
  return o;
}

char *dt_eval_to_json(const dt_eval_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "split", r->split == DT_SPLIT_VALID ? "valid" : "test");
  cJSON *pop = cJSON_CreateObject();
  if (r->has_sampled) {
    cJSON *sampled = metrics_json(&r->sampled, 0);
    cJSON_AddNumberToObject(sampled, "negatives", r->sampled_negatives);
    cJSON_AddNumberToObject(sampled, "users_fewer_negatives", (double)r->sampled_fewer_negatives);
    cJSON_AddItemToObject(root, "sampled", sampled);
    cJSON_AddItemToObject(pop, "sampled", metrics_json(&r->pop_sampled, 0));
  }
  if (r->has_full) {
    cJSON_AddItemToObject(root, "full", metrics_json(&r->full, 1));
    cJSON_AddItemToObject(pop, "full", metrics_json(&r->pop_full, 1));
  }
  cJSON_AddItemToObject(root, "popularity", pop);
  if (r->has_sampled) {
    cJSON_AddItemToObject(root, "alpha_mean", dt_alpha_json(r->alpha_mean, r->towers));
    cJSON *bs = cJSON_CreateArray();
    for (int b = 0; b < DT_EVAL_BUCKETS; b++) {
      const dt_bucket *bk = &r->buckets[b];
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", bk->name ? bk->name : dt_eval_bucket_names[b]);
      cJSON_AddNumberToObject(o, "users", (double)bk->users);
      add_number(o, "ndcg@10", bk->ndcg10);
      add_number(o, "hr@10", bk->hr10);
      cJSON_AddItemToObject(o, "alpha", dt_alpha_json(bk->alpha, r->towers));
      cJSON_AddItemToArray(bs, o);
    }
    cJSON_AddItemToObject(root, "buckets", bs);
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  char *copy = dt_xstrdup(s ? s : "{}");
  cJSON_free(s);
  return copy;
}
