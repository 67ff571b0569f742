/* comm_dense_shared.c: who updates the dense parameters (comm.dense_update).
 *
 *  - allreduce: every rank sums the whole gradient (dt_comm_dense_allreduce)
 *    and runs the same Adam over the whole buffer. GPUs (NCCL) and one rank.
 *  - sharded: reduce-scatter, each rank updates its block, all-gather of the
 *    weights (comm_dense.c). Ranks on several machines, host memory.
 *  - shared_memory: every rank is on one machine and the backend's memory is
 *    host memory. The weights and Adam moments are ONE copy per machine in
 *    an MPI-3 shared-memory window; every rank's gradient buffer is in a
 *    window its peers read. After the backward pass each rank sums its block
 *    of everyone's gradient straight from their buffers (no copies, no
 *    all-gather), updates that block of the shared weights and zeroes it;
 *    a barrier later every rank sees the new weights. On a 2-core machine
 *    this takes the dense exchange from ~7 ms to ~1 ms per step (bench/).
 *
 * The block sums run in rank order, whoever owns the block, so the result
 * does not depend on which rank computes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "comm/comm_internal.h"
#include "dtrain/error.h"
#include "dtrain/log.h"

/* Shared windows are files in Open MPI's osc/sm backing directory (a tmpfs,
 * /dev/shm by default): a container's 64 MB /dev/shm cannot hold the
 * Electronics-scale tables. Before each window the bytes it needs are
 * checked against what that directory had free when the dense windows were
 * set up, less what earlier windows took; auto falls back to the copying
 * roads (sharded dense update, owner-served lookups) with a warning. */
#ifdef DTRAIN_HAVE_MPI
static const char *shm_dir(void) {
  const char *d = getenv("OMPI_MCA_osc_sm_backing_directory");
  return d && d[0] ? d : "/dev/shm";
}

/* Free bytes in the backing directory, the same on every rank (the least
 * any rank sees); INT64_MAX when it cannot be told. COLLECTIVE. */
static int shm_free_bytes(dt_comm *c, int64_t *out) {
  struct statvfs st;
  int64_t v[1] = {INT64_MAX};
  if (statvfs(shm_dir(), &st) == 0) v[0] = (int64_t)st.f_bavail * (int64_t)st.f_frsize;
  v[0] = -v[0]; /* the minimum through the max all-reduce */
  DT_TRY(dt_comm_allreduce_max_i64(c, v, 1));
  *out = -v[0];
  return DT_OK;
}
#endif

struct dtc_dense_shared {
#ifdef DTRAIN_HAVE_MPI
  MPI_Win win_wmv, win_g;
  MPI_Win win_tables[8]; /* sharded tables' rows (dt_comm_table_shared) */
#endif
  int n_tables;
  int64_t shm_free, shm_taken; /* bytes: free at set-up, taken by our windows since */
  float **g;                   /* [local_size]: every rank's gradient buffer, in this address space */
  int64_t lo, hi;              /* this rank's block */
};

dt_dense_update dt_comm_dense_update(const dt_comm *c) { return (dt_dense_update)c->dense_update; }

const char *dt_comm_dense_update_name(dt_dense_update u) {
  switch (u) {
    case DT_DENSE_ALLREDUCE: return "allreduce";
    case DT_DENSE_SHARDED: return "sharded";
    case DT_DENSE_SHARED: return "shared_memory";
  }
  return "?";
}

void dtc_dense_shared_free(dt_comm *c) {
  dtc_dense_shared *s = c->dshared;
  if (!s) return;
#ifdef DTRAIN_HAVE_MPI
  for (int i = 0; i < s->n_tables; i++) {
    MPI_Win_unlock_all(s->win_tables[i]);
    if (MPI_Win_free(&s->win_tables[i]) != MPI_SUCCESS) dt_log_warn("MPI_Win_free of a shared table failed");
  }
  MPI_Win_unlock_all(s->win_g);
  MPI_Win_unlock_all(s->win_wmv);
  int e1 = MPI_Win_free(&s->win_g), e2 = MPI_Win_free(&s->win_wmv);
  if (e1 != MPI_SUCCESS || e2 != MPI_SUCCESS) dt_log_warn("MPI_Win_free of the shared dense buffers failed");
#endif
  free(s->g);
  free(s);
  c->dshared = NULL;
}

#ifdef DTRAIN_HAVE_MPI
/* A 64-byte aligned pointer into a window segment that has 16 floats of slack. */
static float *align64(void *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Memory ordering for the windows plus a barrier of the node's ranks: what
 * any rank wrote before it is visible to every rank after it. */
static int shared_sync(dt_comm *c, const char *what) {
  dtc_dense_shared *s = c->dshared;
  MPI_Win_sync(s->win_g);
  MPI_Win_sync(s->win_wmv);
  for (int i = 0; i < s->n_tables; i++) MPI_Win_sync(s->win_tables[i]);
  dtc_enter(what);
  int e = MPI_Barrier(c->local);
  dtc_leave();
  if (e != MPI_SUCCESS) return dtc_mpi_fail(c, e, "MPI_Barrier", what);
  MPI_Win_sync(s->win_g);
  MPI_Win_sync(s->win_wmv);
  for (int i = 0; i < s->n_tables; i++) MPI_Win_sync(s->win_tables[i]);
  return DT_OK;
}

static int shared_alloc(dt_comm *c, int64_t n, dt_dense_storage *st) {
  dtc_dense_shared *s = dt_xcalloc(1, sizeof *s);
  s->g = dt_xcalloc((size_t)c->local_size, sizeof *s->g);
  dt_comm_dense_shard(c, n, &s->lo, &s->hi);
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* each segment page-aligned, first touched by its owner */
  /* w, m and v: one copy per machine, in local rank 0's segment */
  MPI_Aint wmv_bytes = c->local_rank == 0 ? (MPI_Aint)((3 * n + 16) * (int64_t)sizeof(float)) : 0;
  void *base = NULL;
  int e = MPI_Win_allocate_shared(wmv_bytes, sizeof(float), info, c->local, &base, &s->win_wmv);
  if (e != MPI_SUCCESS) {
    MPI_Info_free(&info);
    free(s->g);
    free(s);
    return dtc_mpi_fail(c, e, "MPI_Win_allocate_shared", "the shared dense parameters");
  }
  e = MPI_Win_allocate_shared((MPI_Aint)((n + 16) * (int64_t)sizeof(float)), sizeof(float), info, c->local, &base,
                              &s->win_g);
  MPI_Info_free(&info);
  if (e != MPI_SUCCESS) {
    MPI_Win_free(&s->win_wmv);
    free(s->g);
    free(s);
    return dtc_mpi_fail(c, e, "MPI_Win_allocate_shared", "the shared dense gradients");
  }
  MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win_wmv);
  MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win_g);
  c->dshared = s;
  MPI_Aint size;
  int disp;
  void *p;
  int rc = DT_OK;
  if ((e = MPI_Win_shared_query(s->win_wmv, 0, &size, &disp, &p)) != MPI_SUCCESS)
    rc = dtc_mpi_fail(c, e, "MPI_Win_shared_query", "the shared dense parameters");
  float *wmv = rc ? NULL : align64(p);
  for (int r = 0; r < c->local_size && !rc; r++) {
    if ((e = MPI_Win_shared_query(s->win_g, r, &size, &disp, &p)) != MPI_SUCCESS)
      rc = dtc_mpi_fail(c, e, "MPI_Win_shared_query", "the shared dense gradients");
    else
      s->g[r] = align64(p);
  }
  if (rc) {
    dtc_dense_shared_free(c);
    return rc;
  }
  /* zeroed by their owners (page placement follows the first touch) */
  memset(s->g[c->local_rank], 0, (size_t)n * sizeof(float));
  if (c->local_rank == 0) memset(wmv, 0, (size_t)(3 * n) * sizeof(float));
  DT_TRY(shared_sync(c, "MPI_Barrier(shared dense buffers ready)"));
  st->w = wmv;
  st->m = wmv + n;
  st->v = wmv + 2 * n;
  st->g = s->g[c->local_rank];
  return DT_OK;
}

/* Bytes of the dense windows on one machine: w, m, v once, a gradient per rank
 * (plus alignment slack and a page of Open MPI's bookkeeping per window). */
static int64_t shared_bytes(int64_t n, int ranks) {
  return ((3 * n + 16) + (int64_t)ranks * (n + 16)) * (int64_t)sizeof(float) + 2 * 65536;
}
#endif

int dt_comm_dense_update_setup(dt_comm *c, const char *mode, int64_t n, dt_dense_storage *storage) {
  memset(storage, 0, sizeof *storage);
  static const char *modes[] = {"auto", "allreduce", "sharded", "shared_memory"};
  int want = -1;
  for (int i = 0; i < 4; i++)
    if (mode && !strcmp(mode, modes[i])) want = i;
  if (want < 0)
    return dt_fail(DT_EXIT_USAGE,
                   "comm.dense_update: '%s' is not a choice (allowed: auto, allreduce, sharded, "
                   "shared_memory)",
                   mode ? mode : "");
  if (!c->dense)
    return dt_fail(DT_EXIT_RUNTIME, "dt_comm_dense_update_setup before dt_comm_dense_setup (internal error)");
  dtc_dense_shared_free(c);
  c->dense_update = DT_DENSE_ALLREDUCE;
  if (c->size == 1) return DT_OK; /* one rank: every mode is the same local update */
  const int host = dt_comm_dense_can_shard(c);
  const int one_node = c->local_size == c->size;
  if (want == 2 && !host)
    return dt_fail(DT_EXIT_USAGE,
                   "comm.dense_update=sharded needs the CPU backend with the MPI transport (this run: "
                   "backend %s, comm.dense transport %s); use allreduce or auto",
                   dtc_dense_backend_name(c), dt_comm_dense_transport(c));
  if (want == 3 && (!host || !one_node))
    return dt_fail(DT_EXIT_USAGE,
                   "comm.dense_update=shared_memory needs the CPU backend and every rank on one "
                   "machine (this run: backend %s, %d of %d ranks on rank %d's machine); use sharded or auto",
                   dtc_dense_backend_name(c), c->local_size, c->size, c->rank);
  dt_dense_update u = DT_DENSE_ALLREDUCE;
  if (want == 0) u = host ? (one_node ? DT_DENSE_SHARED : DT_DENSE_SHARDED) : DT_DENSE_ALLREDUCE;
  if (want == 2) u = DT_DENSE_SHARDED;
  if (want == 3) u = DT_DENSE_SHARED;
#ifdef DTRAIN_HAVE_MPI
  int64_t shm_free = INT64_MAX;
  if (u == DT_DENSE_SHARED) {
    DT_TRY(shm_free_bytes(c, &shm_free));
    const int64_t need = shared_bytes(n, c->local_size);
    if (need > shm_free) {
      if (want == 3)
        return dt_fail(DT_EXIT_RUNTIME,
                       "comm.dense_update=shared_memory needs %.1f MB in %s, which has %.1f MB free: "
                       "enlarge it (docker run --shm-size), point OMPI_MCA_osc_sm_backing_directory at a larger "
                       "local directory, or use comm.dense_update=sharded",
                       need / 1e6, shm_dir(), shm_free / 1e6);
      if (c->rank == 0)
        dt_log_warn(
            "dense update: sharded, not shared_memory: it needs %.1f MB in %s, which has %.1f MB free "
            "(enlarge it, e.g. docker run --shm-size, or set OMPI_MCA_osc_sm_backing_directory)",
            need / 1e6, shm_dir(), shm_free / 1e6);
      u = DT_DENSE_SHARDED;
    }
  }
  if (u == DT_DENSE_SHARED) {
    DT_TRY(shared_alloc(c, n, storage));
    c->dshared->shm_free = shm_free;
    c->dshared->shm_taken = shared_bytes(n, c->local_size);
  }
#else
  (void)n;
#endif
  c->dense_update = u;
  if (c->rank == 0)
    dt_log_info("dense update: %s (%s)", dt_comm_dense_update_name(u),
                u == DT_DENSE_SHARED
                    ? "one copy of the dense parameters per machine; each rank sums and updates its block"
                : u == DT_DENSE_SHARDED ? "reduce-scatter, each rank updates its block, all-gather"
                                        : "every rank sums the whole gradient and updates everything");
  return DT_OK;
}

int dt_comm_dense_shared_reduce(dt_comm *c, double *sumsq) {
  dtc_dense_shared *s = c->dshared;
  if (!s || c->dense_update != DT_DENSE_SHARED)
    return dt_fail(DT_EXIT_RUNTIME, "shared dense reduce outside comm.dense_update=shared_memory (internal error)");
#ifdef DTRAIN_HAVE_MPI
  DT_TRY(shared_sync(c, "MPI_Barrier(dense gradients ready)"));
  c->stats.dense_calls++;
  /* bytes read from the other ranks' buffers */
  c->stats.dense_bytes += (uint64_t)(c->local_size - 1) * (uint64_t)(s->hi - s->lo) * sizeof(float);
  const int P = c->local_size, me = c->local_rank;
  float *restrict own = s->g[me];
  enum { CHUNK = 2048 }; /* floats: the partial sums stay in L1 */
  float acc[CHUNK];
  double ss = 0.0;
  for (int64_t i0 = s->lo; i0 < s->hi; i0 += CHUNK) {
    const int64_t k = s->hi - i0 < CHUNK ? s->hi - i0 : CHUNK;
    const float *restrict g0 = s->g[0] + i0;
    for (int64_t i = 0; i < k; i++) acc[i] = g0[i];
    for (int p = 1; p < P; p++) {
      const float *restrict gp = s->g[p] + i0;
      for (int64_t i = 0; i < k; i++) acc[i] += gp[i];
    }
    memcpy(own + i0, acc, (size_t)k * sizeof(float));
    double part = 0.0; /* per chunk, then in chunk order: the same bits every run */
#pragma omp simd reduction(+ : part)
    for (int64_t i = 0; i < k; i++) part += (double)acc[i] * (double)acc[i];
    ss += part;
    for (int p = 0; p < P; p++)
      if (p != me) memset(s->g[p] + i0, 0, (size_t)k * sizeof(float));
  }
  *sumsq = ss;
#else
  *sumsq = 0.0;
#endif
  return DT_OK;
}

int dt_comm_dense_shared_wait(dt_comm *c) {
  if (!c->dshared || c->dense_update != DT_DENSE_SHARED)
    return dt_fail(DT_EXIT_RUNTIME, "shared dense wait outside comm.dense_update=shared_memory (internal error)");
#ifdef DTRAIN_HAVE_MPI
  return shared_sync(c, "MPI_Barrier(dense parameters updated)");
#else
  return DT_OK;
#endif
}

int dt_comm_table_shared(dt_comm *c, int id, int dim, float **mine, float **whole) {
  *mine = *whole = NULL;
  dtc_dense_shared *s = c->dshared;
  if (!s || c->dense_update != DT_DENSE_SHARED) return DT_OK;
#ifdef DTRAIN_HAVE_MPI
  if (s->n_tables == (int)(sizeof s->win_tables / sizeof s->win_tables[0])) return DT_OK;
  int64_t lo, hi;
  dt_comm_table_range(c, id, &lo, &hi);
  const int64_t n_rows = dtc_table_get(c, id)->n_rows;
  const int64_t need = n_rows * (int64_t)dim * (int64_t)sizeof(float) + 65536;
  if (s->shm_free != INT64_MAX && s->shm_taken + need > s->shm_free) { /* the same numbers on every rank */
    if (c->rank == 0)
      dt_log_warn(
          "table %s: lookups go to the owners: its rows need %.1f MB more in %s, which had %.1f MB free "
          "(%.1f MB taken); enlarge it (docker run --shm-size) or set OMPI_MCA_osc_sm_backing_directory",
          dt_comm_table_name(c, id), need / 1e6, shm_dir(), s->shm_free / 1e6, s->shm_taken / 1e6);
    return DT_OK;
  }
  /* contiguous across ranks (the default): rank r's rows follow rank r-1's,
   * so the whole table is one array in every process */
  MPI_Win win;
  void *base = NULL;
  int e = MPI_Win_allocate_shared((MPI_Aint)((hi - lo) * (int64_t)dim * (int64_t)sizeof(float)), sizeof(float),
                                  MPI_INFO_NULL, c->local, &base, &win);
  if (e != MPI_SUCCESS) return dtc_mpi_fail(c, e, "MPI_Win_allocate_shared", dt_comm_table_name(c, id));
  MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  MPI_Aint size;
  int disp, contiguous = 1;
  void *first = NULL, *p = NULL;
  int rc = DT_OK;
  for (int r = 0; r < c->local_size && !rc; r++) {
    if ((e = MPI_Win_shared_query(win, r, &size, &disp, &p)) != MPI_SUCCESS) {
      rc = dtc_mpi_fail(c, e, "MPI_Win_shared_query", dt_comm_table_name(c, id));
      break;
    }
    if (r == 0) first = p;
    /* rank r's block starts at its first row (one machine: local rank = rank) */
    const int64_t rlo = dt_comm_block_lo(n_rows, r, c->size);
    if ((char *)p != (char *)first + rlo * (int64_t)dim * (int64_t)sizeof(float)) contiguous = 0;
  }
  /* every rank must take the same road */
  int64_t flag[2] = {rc != DT_OK, !contiguous};
  int arc = dt_comm_allreduce_max_i64(c, flag, 2);
  if (rc || arc || flag[0] || flag[1]) {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    if (rc || arc) return rc ? rc : arc;
    if (flag[0])
      return dt_fail(DT_EXIT_RUNTIME, "shared table %s: set-up failed on another rank", dt_comm_table_name(c, id));
    dt_log_debug("table %s: the MPI library did not place the shared blocks contiguously; owners serve lookups",
                 dt_comm_table_name(c, id));
    return DT_OK;
  }
  s->win_tables[s->n_tables++] = win;
  s->shm_taken += need;
  *mine = base;
  *whole = first;
  return DT_OK;
#else
  (void)id, (void)dim;
  return DT_OK;
#endif
}
