/* enospc_preload.c: a full disk without a mount, for tests/cli/full_disk.sh.
 *
 * LD_PRELOAD=libdtrain_enospc.so makes write(2), pwrite(2) and writev(2)
 * on files whose path contains $DTRAIN_ENOSPC_MATCH fail with ENOSPC once
 * $DTRAIN_ENOSPC_AFTER bytes (default 0) have gone to such files, the way a
 * disk fills up: the write that crosses the limit is short, later ones
 * fail. Every other file is written as usual. HDF5's file driver and
 * dtrain's own writes go through these calls (stdio's internal writes do
 * not, which is why dtrain's text outputs use write(2)).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long g_written = 0;

/* How many of n bytes to `fd` may go through (n: no limit; -1: none). */
static ssize_t allowed(int fd, size_t n) {
  const char *match = getenv("DTRAIN_ENOSPC_MATCH");
  if (!match || !*match) return (ssize_t)n;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, sizeof path - 1);
  if (len < 0) return (ssize_t)n;
  path[len] = '\0';
  if (!strstr(path, match)) return (ssize_t)n;
  const char *after = getenv("DTRAIN_ENOSPC_AFTER");
  long long limit = after ? atoll(after) : 0;
  long long left = limit - g_written;
  if (left <= 0) return -1;
  ssize_t ok = (long long)n < left ? (ssize_t)n : (ssize_t)left;
  g_written += ok;
  return ok;
}

static ssize_t (*real_write)(int, const void *, size_t);

ssize_t write(int fd, const void *buf, size_t n) {
  if (!real_write) real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  ssize_t ok = allowed(fd, n);
  if (ok < 0) {
    errno = ENOSPC;
    return -1;
  }
  return real_write(fd, buf, (size_t)ok);
}

static ssize_t do_pwrite(const char *name, int fd, const void *buf, size_t n, off_t off) {
  ssize_t (*real)(int, const void *, size_t, off_t) =
      (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, name);
  ssize_t ok = allowed(fd, n);
  if (ok < 0) {
    errno = ENOSPC;
    return -1;
  }
  return real(fd, buf, (size_t)ok, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return do_pwrite("pwrite", fd, buf, n, off); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return do_pwrite("pwrite64", fd, buf, n, off); }

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  static ssize_t (*real)(int, const struct iovec *, int);
  if (!real) real = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
  if (!real_write) real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  size_t n = 0;
  for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
  ssize_t ok = allowed(fd, n);
  if (ok < 0) {
    errno = ENOSPC;
    return -1;
  }
  if ((size_t)ok == n) return real(fd, iov, cnt);
  ssize_t done = 0; /* a short write: the first `ok` bytes */
  for (int i = 0; i < cnt && done < ok; i++) {
    size_t part = iov[i].iov_len < (size_t)(ok - done) ? iov[i].iov_len : (size_t)(ok - done);
    ssize_t w = real_write(fd, iov[i].iov_base, part);
    if (w < 0) return done > 0 ? done : -1;
    done += w;
  }
  return done;
}
