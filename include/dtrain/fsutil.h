/* fsutil.h: files and paths, every call checked. */
#ifndef DTRAIN_FSUTIL_H
#define DTRAIN_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a NUL-terminated buffer (caller frees). Fails with
 * `code` and a message naming the file. */
int dt_read_file(const char *path, char **data, size_t *len, int code);
/* Writes `len` bytes to `path` atomically: a temporary file beside it
 * (dt_tmp_name), write, fsync, rename, fsync of the directory. Fails with
 * DT_EXIT_RUNTIME naming `path` and the OS error (e.g. "No space left on
 * device"); the temporary file is removed and `path` is left as it was. */
int dt_write_file_atomic(const char *path, const void *data, size_t len);
/* write(2) until done (EINTR retried); 0, or -1 with errno. */
int dt_write_all(int fd, const void *data, size_t len);
/* fsyncs a file by name. */
int dt_fsync_path(const char *path);
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

/* ---- temporary files (tmpfile.c) ---- */
/* "<path>.tmp.<pid>": the name dtrain writes `path` under before renaming
 * it into place (caller frees). */
char *dt_tmp_name(const char *path);
/* The temporary files being written right now (at most 4 are tracked): a
 * signal that ends the process removes them (dt_tmp_unlink_all is
 * async-signal-safe; comm's SIGINT/SIGTERM handler calls it, and
 * dt_tmp_cleanup_on_signals installs handlers that do for commands that
 * start no communicator). */
void dt_tmp_register(const char *tmp);
void dt_tmp_unregister(const char *tmp);
void dt_tmp_unlink_all(void);
/* From a signal handler (async-signal-safe): removes the registered
 * temporary files, restores sig's default action and raises it, so the
 * process dies of the signal and its exit status says which. */
void dt_die_of_signal(int sig);
void dt_tmp_cleanup_on_signals(void);
/* Whether directory entry `name` is "<base>.tmp.<pid>" (any base when base
 * is NULL); *pid gets the pid. */
int dt_tmp_parse(const char *name, const char *base, long *pid);
/* Whether process `pid` is gone from this machine (not this process). */
int dt_pid_is_gone(long pid);
/* Removes "<path>.tmp.<pid>" files beside `path` whose process is gone;
 * returns how many (each is logged). */
int dt_tmp_remove_stale(const char *path);

/* ---- outputs named on the command line ---- */
/* May `path` (given with `option`, e.g. "--json") be written? Yes when it
 * does not exist, when is_ours(path) recognises it as `kind` (e.g. "an
 * evaluation result") written by dtrain, or when forced; a directory or
 * anything else is DT_EXIT_DATA naming it: dtrain never replaces a file it
 * did not write without --force. */
int dt_output_check(const char *path, const char *option, const char *kind, int force,
                    int (*is_ours)(const char *path));

#endif
