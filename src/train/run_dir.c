/* run_dir.c: claiming a run directory for a training run (trainer.h): its
 * lock, an earlier run's files (refused, or removed with --overwrite), and
 * temporary files that killed processes left behind. Rank 0 does the work. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"
#include "dtrain/report.h"
#include "dtrain/trainer.h"

struct dt_run_dir_lock {
  int fd;
};

/* The files a run writes at the top of its directory (besides the lock). */
static const char *const RUN_FILES[] = {"config.json", "metrics.jsonl", "eval_test.json", "report.html"};
enum { N_RUN_FILES = sizeof RUN_FILES / sizeof RUN_FILES[0] };

/* A growable list of names. */
typedef struct {
  char **v;
  int n;
} names;

static void names_add(names *l, const char *s) {
  l->v = dt_xrealloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
  l->v[l->n++] = dt_xstrdup(s);
}

static void names_free(names *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "a, b, c and 4 more" (sorted) into buf. */
static void names_text(names *l, char *buf, size_t cap) {
  if (l->n > 1) qsort(l->v, (size_t)l->n, sizeof(char *), by_name);
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < l->n && len + 1 < cap; i++) {
    if (i == 6) {
      snprintf(buf + len, cap - len, " and %d more", l->n - i);
      return;
    }
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", l->v[i]);
  }
}

static int is_checkpoint_name(const char *n) {
  if (!strcmp(n, "best.h5") || !strcmp(n, "last.h5")) return 1;
  if (strncmp(n, "epoch-", 6) != 0) return 0;
  const char *d = n + 6;
  while (*d >= '0' && *d <= '9') d++;
  return d > n + 6 && !strcmp(d, ".h5");
}

/* ---- the lock ---- */

/* Takes the run's lock: fcntl (POSIX) record locks, which NFS supports
 * through its lock manager, unlike flock on older kernels. The kernel
 * drops the lock when the process ends, however it ends, so a lock file
 * left by a crash is no obstacle: its text (host, pid, start) only tells
 * who holds it. */
static int take_lock(const char *dir, dt_run_dir_lock *lk) {
  char *path = dt_path_join(dir, DT_RUN_LOCK_FILE);
  int rc = DT_OK;
  lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lk->fd < 0) {
    rc = dt_fail(DT_EXIT_RUNTIME, "cannot create the run directory's lock file %s: %s", path, strerror(errno));
    free(path);
    return rc;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(lk->fd, F_SETLK, &fl) != 0) {
    int err = errno;
    if (err == EACCES || err == EAGAIN) {
      char holder[256] = "";
      ssize_t n = pread(lk->fd, holder, sizeof holder - 1, 0);
      holder[n > 0 ? n : 0] = '\0';
      holder[strcspn(holder, "\n")] = '\0';
      struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
      if (!holder[0] && fcntl(lk->fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
        snprintf(holder, sizeof holder, "pid %ld", (long)who.l_pid);
      rc = dt_fail(DT_EXIT_USAGE,
                   "run directory %s is in use by another training (%s; lock %s): wait for it to end or stop it, "
                   "or train into another run.name / run.dir",
                   dir, holder[0] ? holder : "holder unknown", path);
    } else if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS) {
      dt_log_warn(
          "cannot lock %s (%s: a network file system without a lock service?); a second training into %s "
          "would not be stopped",
          path, strerror(err), dir);
    } else {
      rc = dt_fail(DT_EXIT_RUNTIME, "cannot lock %s: %s", path, strerror(err));
    }
  }
  if (!rc) {
    char host[128] = "?", when[32], text[256];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int len = snprintf(text, sizeof text, "host %s, pid %ld, since %s\n", host, (long)getpid(), when);
    /* informational only: a failure here does not weaken the lock */
    if (ftruncate(lk->fd, 0) != 0 || pwrite(lk->fd, text, (size_t)len, 0) != len)
      dt_log_debug("cannot record the holder in %s: %s", path, strerror(errno));
  }
  if (rc) {
    close(lk->fd);
    lk->fd = -1;
  }
  free(path);
  return rc;
}

/* ---- what is there ---- */

typedef struct {
  names ours;   /* an earlier run's files (relative names) */
  names stale;  /* temporary files of processes that are gone */
  names others; /* anything else: never touched */
  char newest_ckpt[64];
} dir_scan;

/* A temporary file of one of dtrain's names whose process is gone; a live
 * one (another command writing, e.g. dtrain report) counts as someone
 * else's and is left alone. */
static int stale_tmp(const char *name, int in_checkpoints) {
  long pid;
  if (!dt_tmp_parse(name, NULL, &pid)) return 0;
  const char *mark = strstr(name, ".tmp."); /* the last one, as dt_tmp_parse reads it */
  while (strstr(mark + 1, ".tmp.")) mark = strstr(mark + 1, ".tmp.");
  char base[256];
  snprintf(base, sizeof base, "%.*s", (int)(mark - name), name);
  int ours = in_checkpoints ? strlen(base) > 3 && !strcmp(base + strlen(base) - 3, ".h5") : 0;
  for (int i = 0; i < N_RUN_FILES && !in_checkpoints; i++) ours |= !strcmp(base, RUN_FILES[i]);
  return ours && dt_pid_is_gone(pid);
}

static void scan_checkpoints(const char *dir, dir_scan *sc) {
  char *cdir = dt_path_join(dir, "checkpoints");
  DIR *d = opendir(cdir);
  struct dirent *e;
  long best_epoch = -1;
  int have_last = 0, have_best = 0;
  char rel[512];
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(rel, sizeof rel, "checkpoints/%s", e->d_name);
    if (is_checkpoint_name(e->d_name)) {
      names_add(&sc->ours, rel);
      have_last |= !strcmp(e->d_name, "last.h5");
      have_best |= !strcmp(e->d_name, "best.h5");
      long ep = strncmp(e->d_name, "epoch-", 6) ? -1 : strtol(e->d_name + 6, NULL, 10);
      if (ep > best_epoch) {
        best_epoch = ep;
        snprintf(sc->newest_ckpt, sizeof sc->newest_ckpt, "%s", e->d_name);
      }
    } else {
      names_add(stale_tmp(e->d_name, 1) ? &sc->stale : &sc->others, rel);
    }
  }
  if (d) closedir(d);
  if (have_last) snprintf(sc->newest_ckpt, sizeof sc->newest_ckpt, "last.h5");
  if (!sc->newest_ckpt[0] && have_best) snprintf(sc->newest_ckpt, sizeof sc->newest_ckpt, "best.h5");
  free(cdir);
}

static void scan_dir(const char *dir, dir_scan *sc) {
  memset(sc, 0, sizeof *sc);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, DT_RUN_LOCK_FILE)) continue;
    if (!strcmp(n, "checkpoints")) {
      scan_checkpoints(dir, sc);
      continue;
    }
    int ours = 0;
    for (int i = 0; i < N_RUN_FILES; i++) ours |= !strcmp(n, RUN_FILES[i]);
    if (ours && !strcmp(n, "report.html")) { /* only a report dtrain wrote */
      char *p = dt_path_join(dir, n);
      ours = dt_report_is_report_file(p, 0);
      free(p);
    }
    names_add(ours ? &sc->ours : stale_tmp(n, 0) ? &sc->stale : &sc->others, n);
  }
  if (d) closedir(d);
}

static void scan_free(dir_scan *sc) {
  names_free(&sc->ours);
  names_free(&sc->stale);
  names_free(&sc->others);
}

/* Removes dir/rel for each name; the first failure is returned. */
static int remove_all(const char *dir, const names *l, const char *what) {
  for (int i = 0; i < l->n; i++) {
    char *p = dt_path_join(dir, l->v[i]);
    int ok = unlink(p) == 0 || errno == ENOENT;
    int rc = ok ? DT_OK : dt_fail(DT_EXIT_RUNTIME, "cannot remove %s (%s): %s", p, what, strerror(errno));
    free(p);
    DT_TRY(rc);
  }
  return DT_OK;
}

/* Rank 0: the lock, then what an earlier run left, by mode. */
static int claim(const char *dir, dt_run_dir_mode mode, dt_run_dir_lock *lk) {
  DT_TRY(dt_mkdir_p(dir));
  DT_TRY(take_lock(dir, lk));
  dir_scan sc;
  scan_dir(dir, &sc);
  char list[1024], kept[1024];
  int rc = remove_all(dir, &sc.stale, "a temporary file left by a process that is gone");
  if (!rc && sc.stale.n > 0) {
    names_text(&sc.stale, list, sizeof list);
    dt_log_info("removed %d temporary file(s) left in %s by processes that no longer run: %s", sc.stale.n, dir, list);
  }
  names_text(&sc.ours, list, sizeof list);
  names_text(&sc.others, kept, sizeof kept);
  if (!rc && sc.ours.n > 0 && mode == DT_RUN_DIR_FRESH) {
    char resume[600] = "";
    if (sc.newest_ckpt[0]) snprintf(resume, sizeof resume, " --resume %s/checkpoints/%s", dir, sc.newest_ckpt);
    rc = dt_fail(DT_EXIT_USAGE,
                 "run directory %s already holds a run (%s); a new training would mix with it or replace it. Continue "
                 "it with%s%s, start over with --overwrite (removes that run's files, nothing else), or "
                 "train into another run.name / run.dir",
                 dir, list, resume[0] ? resume : " --resume CHECKPOINT", resume[0] ? "" : " (it has no checkpoint)");
  } else if (!rc && sc.ours.n > 0 && mode == DT_RUN_DIR_OVERWRITE) {
    rc = remove_all(dir, &sc.ours, "--overwrite");
    if (!rc) {
      dt_log_info("--overwrite: removed the earlier run's %d file(s) from %s: %s", sc.ours.n, dir, list);
      if (sc.others.n > 0) dt_log_info("--overwrite: kept what dtrain did not write there: %s", kept);
    }
  }
  scan_free(&sc);
  return rc;
}

int dt_run_dir_claim(dt_comm *comm, const char *dir, dt_run_dir_mode mode, dt_run_dir_lock **out) {
  *out = NULL;
  dt_run_dir_lock *lk = dt_xcalloc(1, sizeof *lk);
  lk->fd = -1;
  int rc = dt_comm_rank(comm) == 0 ? claim(dir, mode, lk) : DT_OK;
  /* every rank ends with rank 0's exit code */
  int64_t code = rc;
  int crc = dt_comm_allreduce_max_i64(comm, &code, 1);
  if (!crc && code && !rc)
    rc = dt_fail((int)code, "rank 0 could not claim the run directory %s (see its message)", dir);
  if (crc && !rc) rc = crc;
  if (rc) {
    dt_run_dir_release(lk);
    return rc;
  }
  *out = lk;
  return DT_OK;
}

void dt_run_dir_release(dt_run_dir_lock *lk) {
  if (!lk) return;
  if (lk->fd >= 0) close(lk->fd); /* releases the lock; the file stays (see take_lock) */
  free(lk);
}
