#include "dtrain/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dtrain/error.h"

int dt_read_file(const char *path, char **data, size_t *len, int code) {
  FILE *f = fopen(path, "rb");
  if (!f) return dt_fail(code, "cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *buf = dt_xmalloc(cap);
  for (;;) {
    if (cap - n < 2) {
      cap *= 2;
      buf = dt_xrealloc(buf, cap);
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return dt_fail(code, "error reading %s", path);
  }
  buf[n] = '\0';
  *data = buf;
  if (len) *len = n;
  return DT_OK;
}

int dt_fsync_parent_dir(const char *path) {
  char *dir = dt_path_dirname(path);
  int fd = open(dir, O_RDONLY);
  if (fd < 0) {
    int rc = dt_fail(DT_EXIT_RUNTIME, "cannot open directory %s: %s", dir, strerror(errno));
    free(dir);
    return rc;
  }
  /* Some file systems refuse fsync on directories (EINVAL); that is not an error. */
  if (fsync(fd) != 0 && errno != EINVAL) {
    int rc = dt_fail(DT_EXIT_RUNTIME, "cannot fsync directory %s: %s", dir, strerror(errno));
    close(fd);
    free(dir);
    return rc;
  }
  close(fd);
  free(dir);
  return DT_OK;
}

int dt_mkdir_p(const char *path) {
  if (!path || !*path) return DT_OK;
  char *p = dt_xstrdup(path);
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int rc = dt_fail(DT_EXIT_RUNTIME, "cannot create directory %s: %s", p, strerror(errno));
      free(p);
      return rc;
    }
    *s = '/';
  }
  if (mkdir(p, 0777) != 0 && errno != EEXIST) {
    int rc = dt_fail(DT_EXIT_RUNTIME, "cannot create directory %s: %s", p, strerror(errno));
    free(p);
    return rc;
  }
  struct stat st;
  if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
    int rc = dt_fail(DT_EXIT_RUNTIME, "%s exists and is not a directory", p);
    free(p);
    return rc;
  }
  free(p);
  return DT_OK;
}

int dt_path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

char *dt_path_dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return dt_xstrdup(".");
  if (slash == path) return dt_xstrdup("/");
  size_t n = (size_t)(slash - path);
  char *d = dt_xmalloc(n + 1);
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

char *dt_path_join(const char *dir, const char *name) {
  if (name[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0) return dt_xstrdup(name);
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = dt_xmalloc(n);
  snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
  return p;
}

int dt_file_crc32(const char *path, uint32_t *crc, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return dt_fail(DT_EXIT_DATA, "cannot open %s: %s", path, strerror(errno));
  unsigned char *buf = dt_xmalloc(1 << 20);
  uLong c = crc32(0L, Z_NULL, 0);
  int64_t total = 0;
  size_t got;
  while ((got = fread(buf, 1, 1 << 20, f)) > 0) {
    c = crc32(c, buf, (uInt)got);
    total += (int64_t)got;
  }
  int err = ferror(f);
  fclose(f);
  free(buf);
  if (err) return dt_fail(DT_EXIT_DATA, "error reading %s", path);
  *crc = (uint32_t)c;
  if (size) *size = total;
  return DT_OK;
}
