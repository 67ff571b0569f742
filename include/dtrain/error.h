/* error.h: dtrain's error convention.
 *
 * Functions that can fail return an int: 0 on success, otherwise one of the
 * DT_EXIT_* codes below, after recording a message with dt_fail(). The
 * message says what went wrong and where (file/line, config key, data-file
 * line) and, where it helps, what to do. The caller either adds nothing and
 * passes the code up, or prefixes context with dt_fail_context(). main()
 * prints the message and exits with the code, so the exit code of the
 * process says which kind of failure happened.
 */
#ifndef DTRAIN_ERROR_H
#define DTRAIN_ERROR_H

#include <stddef.h>

/* Process exit codes (documented in README.md). */
enum {
  DT_OK = 0,
  DT_EXIT_USAGE = 2,   /* bad command line or configuration */
  DT_EXIT_DATA = 3,    /* bad or missing input data, malformed files */
  DT_EXIT_RUNTIME = 4, /* runtime, device, I/O or communication failure */
  DT_EXIT_SIGNAL = 128 /* + the signal: training stopped by SIGINT (130), SIGUSR1 (138) or SIGTERM (143) after
                          writing last.h5; the message was printed, main adds none */
};

#if defined(__GNUC__)
#define DT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DT_PRINTF(a, b)
#endif

/* Records a message for `code` and returns `code` (never DT_OK). */
int dt_fail(int code, const char *fmt, ...) DT_PRINTF(2, 3);
/* Prefixes the recorded message with "context: " and returns `code`. */
int dt_fail_context(int code, const char *fmt, ...) DT_PRINTF(2, 3);
/* The last recorded message ("" if none). */
const char *dt_error_message(void);
void dt_error_clear(void);

/* Allocation that cannot fail: on out-of-memory prints where and exits 4.
 * Memory from these is released with free(). */
void *dt_xmalloc_at(size_t n, const char *file, int line);
void *dt_xcalloc_at(size_t count, size_t size, const char *file, int line);
void *dt_xrealloc_at(void *p, size_t n, const char *file, int line);
char *dt_xstrdup_at(const char *s, const char *file, int line);
#define dt_xmalloc(n) dt_xmalloc_at((n), __FILE__, __LINE__)
#define dt_xcalloc(c, s) dt_xcalloc_at((c), (s), __FILE__, __LINE__)
#define dt_xrealloc(p, n) dt_xrealloc_at((p), (n), __FILE__, __LINE__)
#define dt_xstrdup(s) dt_xstrdup_at((s), __FILE__, __LINE__)

/* Stops the process after an internal invariant broke (a bug, not bad
 * input): prints file/line and the message, exits 4. */
void dt_panic_at(const char *file, int line, const char *fmt, ...) DT_PRINTF(3, 4);
#define dt_panic(...) dt_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Propagates a non-zero status from an expression. */
#define DT_TRY(expr)                        \
  do {                                      \
    int dt_try_rc_ = (expr);                \
    if (dt_try_rc_ != 0) return dt_try_rc_; \
  } while (0)

#endif
