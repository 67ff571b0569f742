/* comm_faults.c: what a rank says when the job goes wrong around it.
 *
 * - The watchdog: a thread that wakes a few times per timeout and, when the
 *   main thread has been inside one collective for longer than
 *   comm.timeout_s, prints which rank, step and collective, then takes the
 *   whole job down (exit 4). A dead peer, a rank stuck in compute or a rank
 *   that skipped a collective all look the same from here: a wait that
 *   never ends.
 * - The SIGTERM/SIGINT handler: when a rank dies, mpirun (and srun, and
 *   scancel) stop the others with SIGTERM; each survivor then writes one line
 *   naming itself, its epoch/step and the collective it was waiting in,
 *   removes the temporary file it was writing, and dies of the signal as it
 *   would have without the handler. Only async-signal-safe calls (write,
 *   unlink, sigaction, raise) in the handler; the state it
 *   reads is lock-free atomics and strings prepared in advance.
 * - Stopping at a step boundary: while the training loop defers stop
 *   signals, the first SIGINT/SIGTERM (or SIGUSR1, what a batch script
 *   forwards before a time limit) only records the request (the line says
 *   so); the loop agrees on it with the other ranks after each step
 *   (dt_comm_stop_signal), writes last.h5 and exits 128 + signal. A second
 *   SIGINT/SIGTERM ends the process at once. A rank whose peer is gone never
 *   reaches the boundary: the launcher's SIGKILL (mpirun after
 *   odls_base_sigkill_timeout, srun after KillWait) or the watchdog ends it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm_internal.h"
#include "dtrain/fsutil.h"

#if ATOMIC_LLONG_LOCK_FREE != 2 || ATOMIC_POINTER_LOCK_FREE != 2
#error "the signal handler needs lock-free 64-bit and pointer atomics"
#endif

_Atomic(const char *) dtc_current_op = NULL;
_Atomic int64_t dtc_op_start_ns = 0;
static _Atomic int64_t g_epoch = -1;
static _Atomic int64_t g_step = -1;

static _Atomic int g_defer = 0;    /* the training loop stops at a step boundary */
static _Atomic int g_stop_sig = 0; /* the first stop signal (0: none) */

static int g_rank = 0, g_size = 1;
static char g_host[64] = "?";

int64_t dtc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void dt_comm_set_progress(dt_comm *c, int64_t epoch, int64_t step) {
  (void)c;
  atomic_store_explicit(&g_epoch, epoch, memory_order_relaxed);
  atomic_store_explicit(&g_step, step, memory_order_relaxed);
}

/* ---- the signal line (async-signal-safe helpers) ---- */

typedef struct {
  char buf[512];
  size_t n;
} sig_line;

static void line_str(sig_line *l, const char *s) {
  while (*s && l->n + 1 < sizeof l->buf) l->buf[l->n++] = *s++;
}

static void line_int(sig_line *l, int64_t v) {
  char tmp[24];
  int k = 0;
  uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
  do {
    tmp[k++] = (char)('0' + u % 10);
    u /= 10;
  } while (u && k < (int)sizeof tmp);
  if (v < 0) line_str(l, "-");
  while (k > 0 && l->n + 1 < sizeof l->buf) l->buf[l->n++] = tmp[--k];
}

static void line_progress(sig_line *l) {
  int64_t epoch = atomic_load_explicit(&g_epoch, memory_order_relaxed);
  int64_t step = atomic_load_explicit(&g_step, memory_order_relaxed);
  if (epoch >= 0) {
    line_str(l, " at epoch ");
    line_int(l, epoch);
  }
  if (step >= 0) {
    line_str(l, epoch >= 0 ? " step " : " at step ");
    line_int(l, step);
  }
  if (epoch < 0 && step < 0) line_str(l, " before the first step");
  const char *op = atomic_load_explicit(&dtc_current_op, memory_order_acquire);
  if (op) {
    line_str(l, ", waiting in ");
    line_str(l, op);
  } else {
    line_str(l, ", not in a collective");
  }
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}

static void line_start(sig_line *l, const char *verb, int sig) {
  l->n = 0;
  line_str(l, "dtrain: rank ");
  line_int(l, g_rank);
  line_str(l, " of ");
  line_int(l, g_size);
  line_str(l, " (host ");
  line_str(l, g_host);
  line_str(l, ", pid ");
  line_int(l, (int64_t)getpid());
  line_str(l, ") ");
  line_str(l, verb);
  line_str(l, signal_name(sig));
  line_progress(l);
}

static void on_stop_signal(int sig) {
  int saved_errno = errno;
  sig_line l;
  /* Signals sent together can run their handlers at once on two threads:
   * exactly one of them claims the stop (compare-and-swap), so the other
   * is a second signal, whatever the order. */
  const int deferring = atomic_load(&g_defer) || sig == SIGUSR1;
  int none = 0;
  const int first = deferring ? atomic_compare_exchange_strong(&g_stop_sig, &none, sig) : atomic_load(&g_stop_sig) == 0;
  if (first && deferring) {
    /* a request (claimed above): the training loop stops at the next step boundary */
    line_start(&l, "got ", sig);
    line_str(&l,
             ": stopping at the next step boundary to write last.h5 (a second SIGINT or SIGTERM ends it at once)\n");
    ssize_t w = write(STDERR_FILENO, l.buf, l.n);
    (void)w;
    errno = saved_errno;
    return;
  }
  if (sig == SIGUSR1) { /* a repeated warning changes nothing */
    errno = saved_errno;
    return;
  }
  line_start(&l, "stopped by ", sig);
  if (!first)
    line_str(&l, " (a second signal: ending at once)\n");
  else if (g_size > 1)
    line_str(&l, " (the launcher stops all ranks when one fails; its message names the rank that failed)\n");
  else
    line_str(&l, "\n");
  ssize_t w = write(STDERR_FILENO, l.buf, l.n);
  (void)w;
  /* Die of the signal itself, so the exit status says what happened. */
  dt_die_of_signal(sig);
}

/* The stop signals' action: on_stop_signal, with the three stop signals
 * blocked while it runs. */
static void stop_action(struct sigaction *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sa_handler = on_stop_signal;
  sigemptyset(&sa->sa_mask);
  sigaddset(&sa->sa_mask, SIGTERM);
  sigaddset(&sa->sa_mask, SIGINT);
  sigaddset(&sa->sa_mask, SIGUSR1);
}

int dtc_faults_install(int rank, int size) {
  g_rank = rank;
  g_size = size;
  if (gethostname(g_host, sizeof g_host) != 0) snprintf(g_host, sizeof g_host, "?");
  g_host[sizeof g_host - 1] = '\0';
  struct sigaction sa;
  stop_action(&sa);
  const int sigs[2] = {SIGTERM, SIGINT};
  for (int i = 0; i < 2; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) != 0)
      return dt_fail(DT_EXIT_RUNTIME, "sigaction(%s) failed: %s", i ? "SIGINT" : "SIGTERM", strerror(errno));
    /* A signal ignored by whoever started us (nohup, a shell's background
     * job for SIGINT) stays ignored. */
    if (old.sa_handler == SIG_IGN) continue;
    if (sigaction(sigs[i], &sa, NULL) != 0)
      return dt_fail(DT_EXIT_RUNTIME, "sigaction(%s) failed: %s", i ? "SIGINT" : "SIGTERM", strerror(errno));
  }
  return DT_OK;
}

void dt_comm_defer_stop_signals(dt_comm *c, int on) {
  (void)c;
  static int usr1_installed = 0;
  if (on && !usr1_installed) { /* SIGUSR1 only ever asks for a stop, and only for training */
    struct sigaction sa, old;
    stop_action(&sa);
    if (sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(SIGUSR1, &sa, NULL);
    usr1_installed = 1;
  }
  atomic_store(&g_defer, on);
}

int dt_comm_stop_signal(dt_comm *c, int *sig) {
  int64_t s = atomic_load(&g_stop_sig);
  if (dt_comm_size(c) > 1) DT_TRY(dt_comm_allreduce_max_i64(c, &s, 1));
  *sig = (int)s;
  return DT_OK;
}

/* ---- the watchdog thread ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int running;  /* thread exists */
  int stopping; /* asked to end */
  int64_t timeout_ns;
  void (*abort_fn)(int code);
} g_wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t watch_interval_ns(int64_t timeout_ns) {
  int64_t iv = timeout_ns / 10;
  if (iv < 10000000) iv = 10000000;     /* 10 ms */
  if (iv > 1000000000) iv = 1000000000; /* 1 s */
  return iv;
}

static void report_timeout(const char *op, double waited_s, double timeout_s) {
  int64_t epoch = atomic_load_explicit(&g_epoch, memory_order_relaxed);
  int64_t step = atomic_load_explicit(&g_step, memory_order_relaxed);
  char where[96];
  if (epoch >= 0 || step >= 0)
    snprintf(where, sizeof where, "at epoch %lld step %lld", (long long)epoch, (long long)step);
  else
    snprintf(where, sizeof where, "before the first step");
  fflush(stdout);
  fprintf(stderr,
          "dtrain: error: rank %d of %d (host %s): communication timeout: %s has waited %.1f s (comm.timeout_s = "
          "%g) %s; another rank is stuck, far behind or gone. Aborting all ranks (exit 4); raise comm.timeout_s "
          "if a rank legitimately works this long alone (checkpoint writing, evaluation)\n",
          g_rank, g_size, g_host, op, waited_s, timeout_s, where);
  fflush(stderr);
}

static void *watchdog_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_wd.mu);
  while (!g_wd.stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + watch_interval_ns(g_wd.timeout_ns);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    int e = pthread_cond_timedwait(&g_wd.cv, &g_wd.mu, &until);
    if (g_wd.stopping) break;
    if (e != 0 && e != ETIMEDOUT) continue;
    /* Read start, op, start: an unchanged start with an op set means that
     * very call has been waiting since `start`. */
    int64_t start = atomic_load_explicit(&dtc_op_start_ns, memory_order_acquire);
    const char *op = atomic_load_explicit(&dtc_current_op, memory_order_acquire);
    int64_t start2 = atomic_load_explicit(&dtc_op_start_ns, memory_order_acquire);
    if (!op || start != start2) continue;
    int64_t waited = dtc_now_ns() - start;
    if (waited > g_wd.timeout_ns) {
      void (*abort_fn)(int) = g_wd.abort_fn;
      double timeout_s = (double)g_wd.timeout_ns / 1e9;
      pthread_mutex_unlock(&g_wd.mu);
      report_timeout(op, (double)waited / 1e9, timeout_s);
      abort_fn(DT_EXIT_RUNTIME);
      _Exit(DT_EXIT_RUNTIME); /* not reached */
    }
  }
  pthread_mutex_unlock(&g_wd.mu);
  return NULL;
}

int dtc_watchdog_configure(double timeout_s, void (*abort_fn)(int code)) {
  if (timeout_s <= 0) {
    dtc_watchdog_stop();
    return DT_OK;
  }
  pthread_mutex_lock(&g_wd.mu);
  g_wd.timeout_ns = (int64_t)(timeout_s * 1e9);
  g_wd.abort_fn = abort_fn;
  if (g_wd.running) {
    pthread_cond_signal(&g_wd.cv); /* re-arm with the new interval */
    pthread_mutex_unlock(&g_wd.mu);
    return DT_OK;
  }
  pthread_condattr_t attr;
  int e = pthread_condattr_init(&attr);
  if (!e) e = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (!e) e = pthread_cond_init(&g_wd.cv, &attr);
  pthread_condattr_destroy(&attr);
  if (e) {
    pthread_mutex_unlock(&g_wd.mu);
    return dt_fail(DT_EXIT_RUNTIME, "watchdog: pthread_cond_init failed: %s", strerror(e));
  }
  g_wd.stopping = 0;
  /* The watchdog must not take the job's stop signals away from the main
   * thread's handler: block them in the new thread. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  e = pthread_create(&g_wd.thread, NULL, watchdog_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) {
    pthread_cond_destroy(&g_wd.cv);
    pthread_mutex_unlock(&g_wd.mu);
    return dt_fail(DT_EXIT_RUNTIME, "watchdog: pthread_create failed: %s", strerror(e));
  }
  g_wd.running = 1;
  pthread_mutex_unlock(&g_wd.mu);
  return DT_OK;
}

void dtc_watchdog_stop(void) {
  pthread_mutex_lock(&g_wd.mu);
  if (!g_wd.running) {
    pthread_mutex_unlock(&g_wd.mu);
    return;
  }
  g_wd.stopping = 1;
  pthread_cond_signal(&g_wd.cv);
  pthread_t t = g_wd.thread;
  pthread_mutex_unlock(&g_wd.mu);
  pthread_join(t, NULL);
  pthread_mutex_lock(&g_wd.mu);
  g_wd.running = 0;
  pthread_cond_destroy(&g_wd.cv);
  pthread_mutex_unlock(&g_wd.mu);
}
