/* comm_core.c: start/end of communication, rank facts, abort, error text,
 * the table registry and the byte counters. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"
#include "dtrain/log.h"

#ifdef DTRAIN_HAVE_MPI
int dtc_mpi_fail(const dt_comm *c, int mpi_err, const char *call, const char *what) {
  char text[MPI_MAX_ERROR_STRING + 1];
  int len = 0;
  if (MPI_Error_string(mpi_err, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", mpi_err);
  text[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
  return dt_fail(DT_EXIT_RUNTIME,
                 "%s (%s) failed on rank %d of %d: %s; when another rank died or was killed, its own message comes "
                 "first in the log",
                 call, what, c ? c->rank : -1, c ? c->size : 0, text);
}

/* Called from the watchdog thread. MPI_Abort from a second thread while the
 * main thread waits inside MPI is only allowed with MPI_THREAD_MULTIPLE;
 * without it, exiting without MPI_Finalize makes mpirun/srun end the job. */
static int g_abort_with_mpi = 0;
static void watchdog_abort(int code) {
  if (g_abort_with_mpi) MPI_Abort(MPI_COMM_WORLD, code);
  _Exit(code);
}
#else
static void watchdog_abort(int code) { _Exit(code); }
#endif

/* MPI counts are ints. The v-collectives check their layouts on every rank
 * where all ranks can know the sizes (all-gather, gather); an all-to-all
 * part over 2 GiB is seen only by the rank sending or receiving it, which
 * fails while its peers wait until the watchdog ends the job. Per-step
 * exchanges are megabytes, checkpoint chunks are capped below 2 GiB. */
int dtc_int_count(const dt_comm *c, size_t n, const char *what, int *out) {
  if (n > (size_t)INT_MAX)
    return dt_fail(DT_EXIT_RUNTIME,
                   "%s: %zu bytes/elements exceed MPI's int count (%d) on rank %d; use a smaller batch size or "
                   "checkpoint chunk",
                   what, n, INT_MAX, c->rank);
  *out = (int)n;
  return DT_OK;
}

int dt_comm_have_mpi(void) {
#ifdef DTRAIN_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int dt_comm_init(int *argc, char ***argv, dt_comm **out) {
  *out = NULL;
  dt_comm *c = dt_xcalloc(1, sizeof *c);
  c->rank = 0;
  c->size = 1;
  c->local_rank = 0;
  c->local_size = 1;
#ifdef DTRAIN_HAVE_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    free(c);
    return dt_fail(DT_EXIT_RUNTIME, "dt_comm_init: MPI is already initialised (dt_comm_init must be called once)");
  }
  int provided = MPI_THREAD_SINGLE;
  int e = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  if (e != MPI_SUCCESS) {
    free(c);
    return dt_fail(DT_EXIT_RUNTIME,
                   "MPI_Init_thread failed (error %d): start dtrain with mpirun/srun of the MPI it was built with", e);
  }
  c->thread_level = provided;
  g_abort_with_mpi = provided >= MPI_THREAD_MULTIPLE;
  int rc = DT_OK;
  if ((e = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_set_errhandler", "MPI_COMM_WORLD");
  /* A private duplicate keeps dtrain's traffic apart from any library's. */
  if (!rc && (e = MPI_Comm_dup(MPI_COMM_WORLD, &c->world)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_dup", "MPI_COMM_WORLD");
  if (!rc && (e = MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_set_errhandler", "world");
  if (!rc && (e = MPI_Comm_rank(c->world, &c->rank)) != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Comm_rank", "world");
  if (!rc && (e = MPI_Comm_size(c->world, &c->size)) != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Comm_size", "world");
  if (!rc &&
      (e = MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->local)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_split_type", "MPI_COMM_TYPE_SHARED");
  if (!rc && (e = MPI_Comm_set_errhandler(c->local, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_set_errhandler", "local");
  if (!rc && (e = MPI_Comm_rank(c->local, &c->local_rank)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_rank", "local");
  if (!rc && (e = MPI_Comm_size(c->local, &c->local_size)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Comm_size", "local");
  if (rc) {
    /* Init failing on one rank only would leave the others waiting: take
     * the job down (the message is printed by dt_comm_abort). */
    dt_comm_abort(NULL, rc, dt_error_message());
  }
#endif
  dt_log_set_rank(c->rank, c->size);
  c->scratch_counts = dt_xcalloc(4 * (size_t)c->size, sizeof(size_t));
  int rc2 = dtc_faults_install(c->rank, c->size);
  if (rc2) {
    dt_comm_abort(c, rc2, dt_error_message());
  }
#ifdef DTRAIN_HAVE_MPI
  if (c->size > 1 && provided < MPI_THREAD_MULTIPLE)
    dt_log_warn(
        "MPI provides thread level %d, not MPI_THREAD_MULTIPLE: a watchdog timeout will end this rank "
        "with _Exit instead of MPI_Abort (the launcher still stops the job)",
        provided);
#endif
  *out = c;
  return DT_OK;
}

int dt_comm_finalize(dt_comm *c) {
  if (!c) return DT_OK;
  int rc = DT_OK;
  dtc_watchdog_stop();
  dtc_dense_shared_free(c);
  dtc_dense_free(c);
#ifdef DTRAIN_HAVE_MPI
  int e;
  if ((e = MPI_Comm_free(&c->local)) != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Comm_free", "local");
  if (!rc && (e = MPI_Comm_free(&c->world)) != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Comm_free", "world");
  if ((e = MPI_Finalize()) != MPI_SUCCESS && !rc) rc = dtc_mpi_fail(c, e, "MPI_Finalize", "end of run");
#endif
  for (int i = 0; i < c->n_tables; i++) free(c->tables[i].name);
  free(c->tables);
  dt_comm_buffer_free(&c->scratch_send);
  dt_comm_buffer_free(&c->scratch_recv);
  dt_comm_buffer_free(&c->scratch_aux);
  free(c->scratch_counts);
  free(c);
  return rc;
}

_Noreturn void dt_comm_abort(dt_comm *c, int code, const char *message) {
  if (code == DT_OK) code = DT_EXIT_RUNTIME;
  int rank = c ? c->rank : 0;
  fflush(stdout);
  fprintf(stderr, "dtrain: error: rank %d: %s\n", rank, message && message[0] ? message : "aborted");
  fflush(stderr);
#ifdef DTRAIN_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    int size = c ? c->size : 2;
    if (c == NULL) MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    /* Alone: a clean finalize lets mpirun report the exit code plainly. */
    MPI_Finalize();
  }
#endif
  exit(code);
}

int dt_comm_rank(const dt_comm *c) { return c->rank; }
int dt_comm_size(const dt_comm *c) { return c->size; }
int dt_comm_local_rank(const dt_comm *c) { return c->local_rank; }
int dt_comm_local_size(const dt_comm *c) { return c->local_size; }

int dt_comm_set_timeout(dt_comm *c, double seconds) {
  if (!(seconds >= 0)) return dt_fail(DT_EXIT_USAGE, "comm.timeout_s must be >= 0 (0 = no watchdog), got %g", seconds);
  /* One rank waits on nobody: the watchdog only matters with company. */
  if (c->size <= 1) seconds = 0;
  return dtc_watchdog_configure(seconds, watchdog_abort);
}

int dt_comm_barrier(dt_comm *c) {
#ifdef DTRAIN_HAVE_MPI
  dtc_enter("barrier");
  int e = MPI_Barrier(c->world);
  dtc_leave();
  if (e != MPI_SUCCESS) return dtc_mpi_fail(c, e, "MPI_Barrier", "barrier");
#endif
  return DT_OK;
}

/* ---- buffers ---- */

void dtc_buffer_reserve(dt_comm_buffer *b, size_t bytes) {
  if (bytes <= b->capacity) return;
  size_t cap = b->capacity ? b->capacity : 4096;
  while (cap < bytes) cap = cap > SIZE_MAX / 2 ? bytes : cap * 2;
  b->data = dt_xrealloc(b->data, cap);
  b->capacity = cap;
}

void dt_comm_buffer_free(dt_comm_buffer *b) {
  if (!b) return;
  free(b->data);
  b->data = NULL;
  b->size = b->capacity = 0;
}

void dtc_sparse_reserve(dt_sparse_rows *s, int64_t rows, int dim) {
  if (s->dim != dim) {
    /* Another table's shape: the rows array must be re-sized for it. */
    free(s->rows);
    s->rows = NULL;
    free(s->ids);
    s->ids = NULL;
    s->capacity = 0;
    s->dim = dim;
  }
  if (rows <= s->capacity && s->ids) return;
  int64_t cap = s->capacity > 0 ? s->capacity : 64;
  while (cap < rows) cap *= 2;
  s->ids = dt_xrealloc(s->ids, (size_t)cap * sizeof(int32_t));
  s->rows = dt_xrealloc(s->rows, (size_t)cap * (size_t)dim * sizeof(float));
  s->capacity = cap;
}

void dt_sparse_rows_free(dt_sparse_rows *s) {
  if (!s) return;
  free(s->ids);
  free(s->rows);
  memset(s, 0, sizeof *s);
}

/* ---- placement and tables ---- */

int dt_placement_parse(const char *name, dt_placement *out) {
  if (name && !strcmp(name, "replicated")) {
    *out = DT_PLACEMENT_REPLICATED;
    return DT_OK;
  }
  if (name && !strcmp(name, "sharded")) {
    *out = DT_PLACEMENT_SHARDED;
    return DT_OK;
  }
  return dt_fail(DT_EXIT_USAGE, "unknown table placement '%s' (allowed: replicated, sharded)", name ? name : "");
}

const char *dt_placement_name(dt_placement p) { return p == DT_PLACEMENT_SHARDED ? "sharded" : "replicated"; }

int64_t dt_comm_block_lo(int64_t n_rows, int rank, int size) {
  /* n_rows < 2^31 (int32 ids) and rank <= size < 2^31: no overflow. */
  return n_rows * (int64_t)rank / (int64_t)size;
}

int dt_comm_block_owner(int64_t row, int64_t n_rows, int size) {
  int r = (int)(row * (int64_t)size / n_rows);
  if (r >= size) r = size - 1;
  while (r > 0 && dt_comm_block_lo(n_rows, r, size) > row) r--;
  /* With fewer rows than ranks some blocks are empty; the owner is the last
   * rank whose block starts at or before the row. */
  while (r + 1 < size && dt_comm_block_lo(n_rows, r + 1, size) <= row) r++;
  return r;
}

int dt_comm_table_add(dt_comm *c, const char *name, int64_t n_rows, int dim, dt_placement placement, int *id) {
  if (n_rows < 1 || n_rows > INT32_MAX)
    return dt_fail(DT_EXIT_RUNTIME, "table '%s': %lld rows; tables need 1..%d rows (int32 row ids)", name,
                   (long long)n_rows, INT32_MAX);
  if (dim < 1) return dt_fail(DT_EXIT_RUNTIME, "table '%s': dimension %d must be >= 1", name, dim);
  c->tables = dt_xrealloc(c->tables, sizeof(dtc_table) * (size_t)(c->n_tables + 1));
  dtc_table *t = &c->tables[c->n_tables];
  memset(t, 0, sizeof *t);
  t->name = dt_xstrdup(name);
  t->n_rows = n_rows;
  t->dim = dim;
  t->placement = placement;
  if (placement == DT_PLACEMENT_SHARDED) {
    t->lo = dt_comm_block_lo(n_rows, c->rank, c->size);
    t->hi = dt_comm_block_lo(n_rows, c->rank + 1, c->size);
  } else {
    t->lo = 0;
    t->hi = n_rows;
  }
  *id = c->n_tables++;
  return DT_OK;
}

dtc_table *dtc_table_get(const dt_comm *c, int id) {
  if (id < 0 || id >= c->n_tables) dt_panic("comm: table id %d out of range (%d registered)", id, c->n_tables);
  return &c->tables[id];
}

void dt_comm_table_range(const dt_comm *c, int id, int64_t *lo, int64_t *hi) {
  const dtc_table *t = dtc_table_get(c, id);
  *lo = t->lo;
  *hi = t->hi;
}

const char *dt_comm_table_name(const dt_comm *c, int id) { return dtc_table_get(c, id)->name; }

/* ---- counters ---- */

void dt_comm_get_stats(const dt_comm *c, dt_comm_stats *out) { *out = c->stats; }

void dt_comm_get_table_stats(const dt_comm *c, int table, dt_comm_table_stats *out) {
  *out = dtc_table_get(c, table)->stats;
}

void dt_comm_reset_stats(dt_comm *c) {
  memset(&c->stats, 0, sizeof c->stats);
  for (int i = 0; i < c->n_tables; i++) memset(&c->tables[i].stats, 0, sizeof c->tables[i].stats);
}
