/* timer.h: monotonic wall-clock time and peak resident memory. */
#ifndef DTRAIN_TIMER_H
#define DTRAIN_TIMER_H

#include <stdint.h>

/* Seconds from an arbitrary fixed point (CLOCK_MONOTONIC). */
double dt_now_s(void);
/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
int64_t dt_peak_rss_bytes(void);

#endif
