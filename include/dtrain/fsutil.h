/* fsutil.h: files and paths, every call checked. */
#ifndef DTRAIN_FSUTIL_H
#define DTRAIN_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a NUL-terminated buffer (caller frees). Fails with
 * `code` and a message naming the file. */
int dt_read_file(const char *path, char **data, size_t *len, int code);
/* Writes `len` bytes to `path` atomically: a temporary file beside it,
 * fflush, fsync, rename, fsync of the directory. Fails with DT_EXIT_RUNTIME. */
int dt_write_file_atomic(const char *path, const void *data, size_t len);
/* Creates a directory and its parents (like mkdir -p). */
int dt_mkdir_p(const char *path);
/* Whether a path exists. */
int dt_path_exists(const char *path);
/* The directory part of a path ("." when none); caller frees. */
char *dt_path_dirname(const char *path);
/* `dir`/`name`, or `name` alone when it is absolute or dir is empty; caller frees. */
char *dt_path_join(const char *dir, const char *name);
/* fsyncs the directory holding `path` so a rename in it is durable. */
int dt_fsync_parent_dir(const char *path);
/* CRC-32 (zlib) of a file's bytes, and its size. */
int dt_file_crc32(const char *path, uint32_t *crc, int64_t *size);

#endif
