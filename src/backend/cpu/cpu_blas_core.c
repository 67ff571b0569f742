/* cpu_blas_core.c: makes sure OpenBLAS runs the kernels this CPU can run.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU's family/model
 * number when the library loads. A CPU newer than its table (Debian 12 ships
 * 0.3.21), or a hypervisor that reports a generic model, gets the Prescott
 * (SSE3) kernels: on an AVX-512 machine GEMMs run 3-4x slower and a v3
 * training step 2.6x slower (bench/, 2026-12). The choice can only be made
 * before the library loads, through OPENBLAS_CORETYPE, so the binary starts
 * itself again, once, with that variable set to the best core the CPU's
 * feature flags allow. A user who sets OPENBLAS_CORETYPE keeps their choice.
 * The same restart carries the OpenMP wait policy (cpu_omp_wait.c), which
 * libgomp also reads only when it loads: one restart at most, for both.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/backend.h"
#include "dtrain/log.h"

/* Set by the restart so the restarted process can say what happened. */
#define DT_BLAS_RESTART_ENV "DTRAIN_OPENBLAS_CORE_DETECTED"
#define DT_OMP_RESTART_ENV "DTRAIN_OMP_WAIT_SET"

/* Cores OpenBLAS falls back to when it does not recognise a CPU. */
static int is_fallback_core(const char *core) {
  static const char *fallback[] = {"Prescott", "Core2",      "Penryn",    "Dunnington", "Nehalem", "Atom",
                                   "Katmai",   "Coppermine", "Northwood", "Banias",     "Opteron", "Barcelona"};
  for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++)
    if (!strcmp(core, fallback[i])) return 1;
  return 0;
}

/* The best OpenBLAS core for this CPU's features, or NULL. */
static const char *best_core(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
  return NULL;
}

const char *dt_blas_core_choice(const char *core, const char *config, const char *user_setting) {
  if (user_setting && user_setting[0]) return NULL; /* the user chose */
  if (!core || !is_fallback_core(core)) return NULL;
  if (!config || !strstr(config, "DYNAMIC_ARCH")) return NULL; /* one core compiled in: nothing to choose */
  const char *want = best_core();
  if (!want || !strcmp(want, core)) return NULL;
  return want;
}

/* The core OpenBLAS detected before the restart ("" if there was none),
 * and whether the restart set the OpenMP wait policy; logged once. */
static char g_detected[32];
static int g_omp_set, g_noted;

void dt_blas_core_note(void) {
  if (g_noted) return;
  g_noted = 1;
  if (g_detected[0])
    dt_log_info(
        "OpenBLAS took this CPU for %s: dtrain restarted itself with OPENBLAS_CORETYPE=%s "
        "(set OPENBLAS_CORETYPE yourself to choose)",
        g_detected, openblas_get_corename());
  dt_omp_wait_note(g_omp_set);
}

void dt_cpu_restart_check(char **argv) {
  const char *detected = getenv(DT_BLAS_RESTART_ENV), *omp = getenv(DT_OMP_RESTART_ENV);
  if (detected || omp) { /* the restarted process: logged by the CPU backend, once the log level is known */
    snprintf(g_detected, sizeof g_detected, "%s", detected ? detected : "");
    g_omp_set = omp != NULL;
    unsetenv(DT_BLAS_RESTART_ENV);
    unsetenv(DT_OMP_RESTART_ENV);
    return;
  }
  const char *core = openblas_get_corename();
  const char *want = dt_blas_core_choice(core, openblas_get_config(), getenv("OPENBLAS_CORETYPE"));
  const char *omp_var, *omp_value;
  int omp_set = dt_omp_wait_choice(getenv("OMP_WAIT_POLICY"), getenv("GOMP_SPINCOUNT"), &omp_var, &omp_value);
  if (!want && !omp_set) return;
  int ok = 1;
  if (want) ok = setenv("OPENBLAS_CORETYPE", want, 1) == 0 && setenv(DT_BLAS_RESTART_ENV, core, 1) == 0;
  if (ok && omp_set) ok = setenv(omp_var, omp_value, 1) == 0 && setenv(DT_OMP_RESTART_ENV, "1", 1) == 0;
  if (ok) {
    fflush(NULL);
    execv("/proc/self/exe", argv);
  }
  /* still here: run on as the libraries started rather than not at all */
  if (want) unsetenv("OPENBLAS_CORETYPE");
  if (omp_set) unsetenv(omp_var);
  unsetenv(DT_BLAS_RESTART_ENV);
  unsetenv(DT_OMP_RESTART_ENV);
  if (want)
    dt_log_warn(
        "OpenBLAS uses its generic %s kernels on a CPU that runs %s ones (2-4x slower GEMMs); "
        "restarting with OPENBLAS_CORETYPE=%s failed. Set OPENBLAS_CORETYPE=%s before starting dtrain",
        core, want, want, want);
  if (omp_set)
    dt_log_warn(
        "restarting with %s=%s failed: OpenMP threads spin long while they wait, which slows training "
        "10-30x when another process is busy on this machine. Set %s=%s before starting dtrain",
        omp_var, omp_value, omp_var, omp_value);
}
