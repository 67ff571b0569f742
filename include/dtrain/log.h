/* log.h: timestamped, levelled logging to stderr.
 *
 * Only rank 0 prints unless dt_log_set_all_ranks(1) was called; with more
 * than one rank printing, each line carries "[rank r]". Results meant for
 * the user (tables, JSON) go to stdout through ordinary printf, not here.
 */
#ifndef DTRAIN_LOG_H
#define DTRAIN_LOG_H

#include "dtrain/error.h"

typedef enum { DT_LOG_ERROR = 0, DT_LOG_WARN = 1, DT_LOG_INFO = 2, DT_LOG_DEBUG = 3 } dt_log_level;

void dt_log_set_level(dt_log_level level);
dt_log_level dt_log_get_level(void);
/* Tells the logger which rank this process is and how many there are. */
void dt_log_set_rank(int rank, int size);
void dt_log_set_all_ranks(int on);
/* Whether this process prints at all (rank 0, or every rank when asked). */
int dt_log_is_printing_rank(void);

void dt_log(dt_log_level level, const char *fmt, ...) DT_PRINTF(2, 3);
/* Errors print on every rank: the rank that failed is the one that knows why. */
#define dt_log_error(...) dt_log(DT_LOG_ERROR, __VA_ARGS__)
#define dt_log_warn(...) dt_log(DT_LOG_WARN, __VA_ARGS__)
#define dt_log_info(...) dt_log(DT_LOG_INFO, __VA_ARGS__)
#define dt_log_debug(...) dt_log(DT_LOG_DEBUG, __VA_ARGS__)

#endif
