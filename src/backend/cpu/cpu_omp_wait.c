/* cpu_omp_wait.c: how long OpenMP threads spin while they wait (backend.h).
 *
 * libgomp's threads spin 300,000 iterations before they sleep, at every
 * barrier and between parallel regions. A step runs hundreds of short
 * regions; when another process takes one of the cores, the thread that
 * finished first spins on its core while the thread it waits for is not
 * running, so barriers cost scheduler time slices: next to one busy process
 * 20 quickstart training steps took 77 s, against 1.3 s idle (README,
 * "Backends", bench/bench_omp_wait.sh). Sleeping at once
 * (OMP_WAIT_POLICY=passive) is the fastest there but costs 47% of the
 * training speed on an idle machine (every region then wakes its threads
 * through the kernel). 10,000 iterations spin through the short gaps
 * between regions and give the core back soon after: 2% slower idle, 4.8x
 * faster than the default when busy. libgomp reads GOMP_SPINCOUNT and
 * OMP_WAIT_POLICY once, when it loads, so the setting travels with the
 * restart of cpu_blas_core.c. A user who sets either keeps their choice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/backend.h"
#include "dtrain/log.h"

/* What dtrain sets when the user set neither variable. */
#define DT_OMP_WAIT_VAR "GOMP_SPINCOUNT"
#define DT_OMP_WAIT_VALUE "10000"

static int is_set(const char *v) { return v && v[0]; }

int dt_omp_wait_choice(const char *user_policy, const char *user_spincount, const char **var, const char **value) {
  *var = *value = NULL;
  if (is_set(user_policy) || is_set(user_spincount)) return 0; /* the user chose */
  *var = DT_OMP_WAIT_VAR;
  *value = DT_OMP_WAIT_VALUE;
  return 1;
}

void dt_omp_wait_note(int set_by_dtrain) {
  const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
  char what[160];
  snprintf(what, sizeof what, "%s%s%s%s%s", is_set(policy) ? "OMP_WAIT_POLICY=" : "", is_set(policy) ? policy : "",
           is_set(policy) && is_set(spin) ? " " : "", is_set(spin) ? "GOMP_SPINCOUNT=" : "", is_set(spin) ? spin : "");
  if (set_by_dtrain)
    dt_log_info(
        "OpenMP threads spin briefly before they sleep (%s, set by dtrain; libgomp's default of 300000 "
        "slows training 10-30x when another process is busy on this machine; set GOMP_SPINCOUNT or "
        "OMP_WAIT_POLICY yourself to choose)",
        what);
  else if (what[0])
    dt_log_info("OpenMP wait policy from your environment: %s", what);
  else
    dt_log_info("OpenMP wait policy: the runtime's default (dtrain could not restart itself to set %s=%s)",
                DT_OMP_WAIT_VAR, DT_OMP_WAIT_VALUE);
}
