/* tmpfile.c: the temporary files dtrain writes through (fsutil.h): their
 * names, the ones in the making (removed when a signal ends the process),
 * stale ones of processes that are gone, and the atomic whole-file write. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/log.h"

char *dt_tmp_name(const char *path) {
  size_t n = strlen(path) + 32;
  char *tmp = dt_xmalloc(n);
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  return tmp;
}

/* ---- files in the making (the signal handlers' list) ---- */

enum { N_SLOTS = 4, SLOT_PATH = 4096 };
static char g_slot_path[N_SLOTS][SLOT_PATH];
static atomic_int g_slot_used[N_SLOTS];

void dt_tmp_register(const char *tmp) {
  if (strlen(tmp) >= SLOT_PATH) return; /* not tracked: a later start removes it */
  for (int i = 0; i < N_SLOTS; i++) {
    if (atomic_load(&g_slot_used[i])) continue;
    memcpy(g_slot_path[i], tmp, strlen(tmp) + 1);
    atomic_store(&g_slot_used[i], 1); /* published after the path is complete */
    return;
  }
}

void dt_tmp_unregister(const char *tmp) {
  for (int i = 0; i < N_SLOTS; i++)
    if (atomic_load(&g_slot_used[i]) && !strcmp(g_slot_path[i], tmp)) atomic_store(&g_slot_used[i], 0);
}

void dt_tmp_unlink_all(void) {
  for (int i = 0; i < N_SLOTS; i++)
    if (atomic_load(&g_slot_used[i])) unlink(g_slot_path[i]);
}

void dt_die_of_signal(int sig) {
  dt_tmp_unlink_all();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  raise(sig);
}

static void on_fatal_signal(int sig) { dt_die_of_signal(sig); }

void dt_tmp_cleanup_on_signals(void) {
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old, sa;
    if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue; /* nohup stays nohup */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
  }
}

/* ---- stale ones ---- */

int dt_tmp_parse(const char *name, const char *base, long *pid) {
  const char *mark = strstr(name, ".tmp.");
  if (!mark) return 0;
  while (strstr(mark + 1, ".tmp.")) mark = strstr(mark + 1, ".tmp.");
  if (base && ((size_t)(mark - name) != strlen(base) || strncmp(name, base, strlen(base)) != 0)) return 0;
  const char *d = mark + 5;
  if (!*d) return 0;
  for (const char *c = d; *c; c++)
    if (*c < '0' || *c > '9') return 0;
  *pid = strtol(d, NULL, 10);
  return *pid > 0;
}

int dt_pid_is_gone(long pid) { return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

int dt_tmp_remove_stale(const char *path) {
  char *dir = dt_path_dirname(path);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  int removed = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    long pid;
    if (!dt_tmp_parse(e->d_name, base, &pid) || !dt_pid_is_gone(pid)) continue;
    char *p = dt_path_join(dir, e->d_name);
    if (unlink(p) == 0) {
      dt_log_info("removed %s, left by process %ld, which no longer runs", p, pid);
      removed++;
    }
    free(p);
  }
  if (d) closedir(d);
  free(dir);
  return removed;
}

/* ---- whole files ---- */

int dt_fsync_path(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return dt_fail(DT_EXIT_RUNTIME, "cannot reopen %s to sync it: %s", path, strerror(errno));
  int ok = fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok) return dt_fail(DT_EXIT_RUNTIME, "cannot write %s to disk (fsync): %s", path, strerror(saved));
  return DT_OK;
}

int dt_write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int dt_write_file_atomic(const char *path, const void *data, size_t len) {
  char *tmp = dt_tmp_name(path);
  dt_tmp_register(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int rc = DT_OK;
  if (fd < 0) {
    rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: cannot create its temporary file %s: %s", path, tmp,
                 strerror(errno));
  } else {
    int ok = dt_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
      ok = 0;
      saved = errno;
    }
    if (!ok) rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: %s (%s is unchanged)", path, strerror(saved), path);
  }
  if (rc == DT_OK && rename(tmp, path) != 0)
    rc = dt_fail(DT_EXIT_RUNTIME, "cannot write %s: renaming %s to it failed: %s", path, tmp, strerror(errno));
  if (rc != DT_OK) unlink(tmp);
  dt_tmp_unregister(tmp);
  free(tmp);
  return rc == DT_OK ? dt_fsync_parent_dir(path) : rc;
}

/* ---- outputs named on the command line ---- */

int dt_output_check(const char *path, const char *option, const char *kind, int force,
                    int (*is_ours)(const char *path)) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) return DT_OK;
    return dt_fail(DT_EXIT_DATA, "%s %s: %s", option, path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return dt_fail(DT_EXIT_DATA, "%s %s is a directory; name a file", option, path);
  if (force || (is_ours && is_ours(path))) return DT_OK;
  return dt_fail(DT_EXIT_DATA,
                 "%s %s exists and is not %s written by dtrain; not replacing it (choose another file, or add --force "
                 "to replace it)",
                 option, path, kind);
}
