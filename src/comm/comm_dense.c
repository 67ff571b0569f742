/* comm_dense.c: the one all-reduce of the dense gradient buffer per step.
 *
 * Transports:
 *  - "local": one rank; the sum is the buffer itself.
 *  - "mpi": MPI_Allreduce. The CPU backend's memory is host memory (its
 *    alloc is malloc), so the buffer is reduced in place; any other backend
 *    is staged through host memory with its download/upload ops, because
 *    Debian's Open MPI is not CUDA-aware. Staging is pinned (cudaHostAlloc)
 *    for the CUDA backend so the copies run at full PCIe speed.
 *  - "nccl": ncclAllReduce on a stream of its own, ordered after the
 *    backend's stream by an event and before its later work by another; the
 *    call waits for completion so the watchdog covers NCCL hangs too.
 *
 * The NCCL path runs after the CUDA backend's stream (backend_cuda.h's
 * dt_backend_cuda_stream).
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"
#include "dtrain/log.h"

#if defined(DTRAIN_HAVE_NCCL) && defined(DTRAIN_HAVE_CUDA) && defined(DTRAIN_HAVE_MPI)
#define DTC_USE_NCCL 1
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "dtrain/backend_cuda.h"
#endif
#if defined(DTRAIN_HAVE_CUDA) && !defined(DTC_USE_NCCL)
#include <cuda_runtime_api.h>
#endif

enum { DTC_NONE = 0, DTC_LOCAL, DTC_MPI, DTC_NCCL };

struct dtc_dense {
  dt_backend *be;
  int transport;
  int host_direct; /* the backend's memory is host memory */
  float *staging;
  size_t staging_elems;
  int staging_pinned;
#ifdef DTC_USE_NCCL
  ncclComm_t nccl;
  cudaStream_t stream;
  cudaEvent_t ev_ready, ev_done;
  int nccl_ready;
#endif
};

const char *dtc_dense_backend_name(const dt_comm *c) { return c->dense && c->dense->be ? c->dense->be->name : "none"; }

const char *dt_comm_dense_transport(const dt_comm *c) {
  if (!c->dense) return "none";
  switch (c->dense->transport) {
    case DTC_LOCAL: return "local";
    case DTC_MPI: return "mpi";
    case DTC_NCCL: return "nccl";
    default: return "none";
  }
}

static void staging_free(dtc_dense *d) {
  if (!d->staging) return;
#ifdef DTRAIN_HAVE_CUDA
  if (d->staging_pinned) {
    cudaError_t ce = cudaFreeHost(d->staging);
    if (ce != cudaSuccess) dt_log_warn("cudaFreeHost of the dense staging buffer: %s", cudaGetErrorString(ce));
  } else {
    free(d->staging);
  }
#else
  free(d->staging);
#endif
  d->staging = NULL;
  d->staging_elems = 0;
}

#ifdef DTRAIN_HAVE_MPI
static void staging_reserve(dtc_dense *d, size_t n) {
  if (n <= d->staging_elems) return;
  staging_free(d);
#ifdef DTRAIN_HAVE_CUDA
  if (d->be && !strcmp(d->be->name, "cuda")) {
    void *p = NULL;
    cudaError_t ce = cudaHostAlloc(&p, n * sizeof(float), cudaHostAllocDefault);
    if (ce == cudaSuccess) {
      d->staging = p;
      d->staging_elems = n;
      d->staging_pinned = 1;
      return;
    }
    /* Pinned memory can run out (ulimit -l); pageable memory is slower but works. */
    cudaGetLastError();
    dt_log_warn("cudaHostAlloc(%zu bytes) for the dense staging buffer failed (%s); using pageable memory", n * 4,
                cudaGetErrorString(ce));
  }
#endif
  d->staging = dt_xmalloc(n * sizeof(float));
  d->staging_elems = n;
  d->staging_pinned = 0;
}
#endif

#ifdef DTC_USE_NCCL
static int cuda_fail(cudaError_t ce, const char *call) {
  return dt_fail(DT_EXIT_RUNTIME, "%s failed: %s (comm, dense all-reduce)", call, cudaGetErrorString(ce));
}

static int nccl_fail(ncclResult_t r, const char *call, int rank) {
  return dt_fail(DT_EXIT_RUNTIME, "%s failed on rank %d: %s; set comm.dense=mpi to all-reduce through host memory",
                 call, rank, ncclGetErrorString(r));
}

/* Whether this rank's current CUDA device is its own on this node: each
 * rank's PCI bus id is compared with the other local ranks'. Collective
 * over the node. */
static int own_gpu(dt_comm *c, int *ok, int *shared, char *why, size_t why_size) {
  *ok = 0;
  *shared = 0;
  int dev = -1;
  char bus[32] = {0};
  cudaError_t ce = cudaGetDevice(&dev);
  if (ce == cudaSuccess) ce = cudaDeviceGetPCIBusId(bus, (int)sizeof bus, dev);
  if (ce != cudaSuccess) {
    snprintf(why, why_size, "rank %d cannot query its CUDA device: %s", c->rank, cudaGetErrorString(ce));
    cudaGetLastError();
    memset(bus, 0, sizeof bus);
    snprintf(bus, sizeof bus, "none-%d", c->rank);
  }
  char *all = dt_xcalloc((size_t)c->local_size, sizeof bus);
  dtc_enter("MPI_Allgather(gpu bus ids)");
  int e = MPI_Allgather(bus, (int)sizeof bus, MPI_CHAR, all, (int)sizeof bus, MPI_CHAR, c->local);
  dtc_leave();
  if (e != MPI_SUCCESS) {
    free(all);
    return dtc_mpi_fail(c, e, "MPI_Allgather", "GPU bus ids of the node's ranks");
  }
  if (ce == cudaSuccess) {
    *ok = 1;
    for (int r = 0; r < c->local_size; r++)
      if (r != c->local_rank && !strncmp(all + (size_t)r * sizeof bus, bus, sizeof bus)) {
        *ok = 0;
        *shared = 1;
        snprintf(why, why_size,
                 "local ranks %d and %d share GPU %s (more ranks than GPUs on this node): NCCL needs one GPU per "
                 "rank",
                 c->local_rank, r, bus);
        break;
      }
  }
  free(all);
  return DT_OK;
}

static int nccl_setup(dt_comm *c, dtc_dense *d) {
  /* Rank 0's id and whether it got one travel together, so a failure there
   * stops every rank instead of feeding them a zero id. */
  struct {
    int64_t status;
    ncclUniqueId id;
  } msg;
  memset(&msg, 0, sizeof msg);
  ncclResult_t r;
  if (c->rank == 0 && (r = ncclGetUniqueId(&msg.id)) != ncclSuccess) msg.status = nccl_fail(r, "ncclGetUniqueId", 0);
  DT_TRY(dt_comm_bcast(c, &msg, sizeof msg, 0));
  if (msg.status) {
    if (c->rank == 0) return (int)msg.status;
    return dt_fail(DT_EXIT_RUNTIME, "ncclGetUniqueId failed on rank 0 (its message says why); set comm.dense=mpi");
  }
  ncclUniqueId id = msg.id;
  cudaError_t ce = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking);
  if (ce != cudaSuccess) return cuda_fail(ce, "cudaStreamCreateWithFlags");
  if ((ce = cudaEventCreateWithFlags(&d->ev_ready, cudaEventDisableTiming)) != cudaSuccess)
    return cuda_fail(ce, "cudaEventCreateWithFlags");
  if ((ce = cudaEventCreateWithFlags(&d->ev_done, cudaEventDisableTiming)) != cudaSuccess)
    return cuda_fail(ce, "cudaEventCreateWithFlags");
  dtc_enter("ncclCommInitRank");
  r = ncclCommInitRank(&d->nccl, c->size, id, c->rank);
  dtc_leave();
  int64_t failed = r != ncclSuccess;
  char why[1024] = "";
  if (failed) {
    nccl_fail(r, "ncclCommInitRank", c->rank);
    snprintf(why, sizeof why, "%s", dt_error_message());
  }
  DT_TRY(dt_comm_allreduce_max_i64(c, &failed, 1));
  if (failed) {
    if (r == ncclSuccess) {
      ncclCommDestroy(d->nccl);
      return dt_fail(DT_EXIT_RUNTIME, "NCCL communicator set-up failed on another rank (its message names it)");
    }
    return dt_fail(DT_EXIT_RUNTIME, "%s", why);
  }
  d->nccl_ready = 1;
  return DT_OK;
}

static void nccl_free(dtc_dense *d) {
  if (d->nccl_ready) {
    ncclResult_t r = ncclCommDestroy(d->nccl);
    if (r != ncclSuccess) dt_log_warn("ncclCommDestroy: %s", ncclGetErrorString(r));
    d->nccl_ready = 0;
  }
  if (d->ev_ready) cudaEventDestroy(d->ev_ready);
  if (d->ev_done) cudaEventDestroy(d->ev_done);
  if (d->stream) cudaStreamDestroy(d->stream);
  d->ev_ready = d->ev_done = NULL;
  d->stream = NULL;
}
#endif

void dtc_dense_free(dt_comm *c) {
  dtc_dense *d = c->dense;
  if (!d) return;
#ifdef DTC_USE_NCCL
  nccl_free(d);
#endif
  staging_free(d);
  free(d);
  c->dense = NULL;
}

static int dense_choose(dt_comm *c, dtc_dense *d, const char *mode);

int dt_comm_dense_setup(dt_comm *c, dt_backend *be, const char *mode) {
  if (!mode || (strcmp(mode, "auto") && strcmp(mode, "nccl") && strcmp(mode, "mpi")))
    return dt_fail(DT_EXIT_USAGE, "comm.dense: '%s' is not a transport (allowed: auto, nccl, mpi)", mode ? mode : "");
  if (!be) return dt_fail(DT_EXIT_RUNTIME, "dt_comm_dense_setup: no backend given");
  dtc_dense_free(c);
  dtc_dense *d = dt_xcalloc(1, sizeof *d);
  d->be = be;
  d->host_direct = dt_backend_host_memory(be);
  int rc = dense_choose(c, d, mode);
  if (rc) {
    /* No half-made transport is left behind: a later all-reduce says
     * "before setup" instead of using it. */
#ifdef DTC_USE_NCCL
    nccl_free(d);
#endif
    staging_free(d);
    free(d);
    return rc;
  }
  c->dense = d;
  return DT_OK;
}

static int dense_choose(dt_comm *c, dtc_dense *d, const char *mode) {
  dt_backend *be = d->be;
  if (c->size == 1) {
    d->transport = DTC_LOCAL;
    dt_log_debug("dense all-reduce: one rank, nothing to exchange");
    return DT_OK;
  }
  int want_nccl = strcmp(mode, "mpi") != 0;
  char why[512] = "";
  /* Why NCCL cannot be used here: 0 it can, 1 ranks share a GPU (always a
   * fallback to MPI), 2 anything else (an error when NCCL was asked for). */
  int64_t unusable = 2;
  if (want_nccl) {
#ifdef DTC_USE_NCCL
    if (strcmp(be->name, "cuda")) {
      snprintf(why, sizeof why, "the backend is '%s', not cuda", be->name);
    } else {
      int ok = 0, shared = 0;
      DT_TRY(own_gpu(c, &ok, &shared, why, sizeof why));
      unusable = ok ? 0 : shared ? 1 : 2;
    }
#else
    snprintf(why, sizeof why, "this build has no NCCL (it needs the CUDA backend built with nccl.h and libnccl)");
#endif
  }
  /* Every rank must take the same road: NCCL only if it works everywhere. */
  int64_t worst = unusable;
  if (want_nccl) DT_TRY(dt_comm_allreduce_max_i64(c, &worst, 1));
  if (want_nccl && worst != 0) {
    if (!unusable) snprintf(why, sizeof why, "NCCL is unusable on another rank (its message says why)");
    if (!strcmp(mode, "nccl") && worst == 2)
      return dt_fail(DT_EXIT_USAGE, "comm.dense=nccl on rank %d: %s; use comm.dense=mpi or auto", c->rank, why);
    if (unusable && (!strcmp(mode, "nccl") || !strcmp(be->name, "cuda")))
      dt_log(DT_LOG_WARN, "dense all-reduce falls back to MPI through host memory: %s", why);
  }
#ifdef DTC_USE_NCCL
  if (want_nccl && worst == 0) {
    DT_TRY(nccl_setup(c, d));
    d->transport = DTC_NCCL;
    dt_log_info("dense all-reduce: NCCL %d.%d (one GPU per rank, %d ranks)", NCCL_MAJOR, NCCL_MINOR, c->size);
    return DT_OK;
  }
#endif
  d->transport = DTC_MPI;
  dt_log_info("dense all-reduce: MPI_Allreduce over %d ranks%s%s%s", c->size,
              d->host_direct ? " in place (CPU backend)" : " through host staging",
              want_nccl && why[0] ? "; NCCL not used: " : "", want_nccl && why[0] ? why : "");
  return DT_OK;
}

#ifdef DTRAIN_HAVE_MPI
static int dense_mpi(dt_comm *c, dtc_dense *d, float *buf, int64_t n, int average) {
  float *host = buf;
  size_t bytes = (size_t)n * sizeof(float);
  if (!d->host_direct) {
    staging_reserve(d, (size_t)n);
    host = d->staging;
    int rc = d->be->download(d->be, host, buf, bytes);
    if (rc) return dt_fail_context(rc, "dense all-reduce: downloading %lld gradients", (long long)n);
  }
  const int64_t chunk = (int64_t)1 << 28;
  for (int64_t off = 0; off < n; off += chunk) {
    int k = (int)(n - off < chunk ? n - off : chunk);
    dtc_enter("MPI_Allreduce(dense gradients)");
    int e = MPI_Allreduce(MPI_IN_PLACE, host + off, k, MPI_FLOAT, MPI_SUM, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS) return dtc_mpi_fail(c, e, "MPI_Allreduce", "dense gradients");
  }
  if (average) {
    /* Division, not multiplication by 1/size: exact for powers of two and
     * correctly rounded otherwise. */
    const float div = (float)c->size;
    for (int64_t i = 0; i < n; i++) host[i] /= div;
  }
  if (!d->host_direct) {
    int rc = d->be->upload(d->be, buf, host, bytes);
    if (rc) return dt_fail_context(rc, "dense all-reduce: uploading %lld gradients", (long long)n);
  }
  return DT_OK;
}
#endif

#ifdef DTC_USE_NCCL
static int dense_nccl(dt_comm *c, dtc_dense *d, float *buf, int64_t n, int average) {
  cudaStream_t bs = (cudaStream_t)dt_backend_cuda_stream(d->be);
  cudaError_t ce;
  if ((ce = cudaEventRecord(d->ev_ready, bs)) != cudaSuccess) return cuda_fail(ce, "cudaEventRecord");
  if ((ce = cudaStreamWaitEvent(d->stream, d->ev_ready, 0)) != cudaSuccess) return cuda_fail(ce, "cudaStreamWaitEvent");
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
  ncclRedOp_t op = average ? ncclAvg : ncclSum;
  int scale_after = 0;
#else
  ncclRedOp_t op = ncclSum;
  int scale_after = average;
#endif
  ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, ncclFloat32, op, d->nccl, d->stream);
  if (r != ncclSuccess) return nccl_fail(r, "ncclAllReduce", c->rank);
  if ((ce = cudaEventRecord(d->ev_done, d->stream)) != cudaSuccess) return cuda_fail(ce, "cudaEventRecord");
  if ((ce = cudaStreamWaitEvent(bs, d->ev_done, 0)) != cudaSuccess) return cuda_fail(ce, "cudaStreamWaitEvent");
  /* Wait here, inside the watchdog's view, and notice NCCL's own errors
   * (a peer gone) instead of hanging in a later synchronisation. */
  dtc_enter("ncclAllReduce(dense gradients)");
  while ((ce = cudaEventQuery(d->ev_done)) == cudaErrorNotReady) {
    ncclResult_t ae = ncclSuccess;
    ncclCommGetAsyncError(d->nccl, &ae);
    if (ae != ncclSuccess && ae != ncclInProgress) {
      dtc_leave();
      ncclCommAbort(d->nccl);
      d->nccl_ready = 0;
      return nccl_fail(ae, "ncclAllReduce (asynchronous)", c->rank);
    }
    sched_yield();
  }
  dtc_leave();
  if (ce != cudaSuccess) return cuda_fail(ce, "cudaEventQuery after ncclAllReduce");
  if (scale_after) DT_TRY(d->be->scale(d->be, buf, n, 1.0f / (float)c->size));
  return DT_OK;
}
#endif

int dt_comm_dense_can_shard(const dt_comm *c) {
  return c->dense && c->dense->transport == DTC_MPI && c->dense->host_direct && c->size > 1;
}

/* Block r of n floats over `size` ranks, rounded to multiples of 16 floats. */
static void shard_of(int64_t n, int r, int size, int64_t *lo, int64_t *hi) {
  int64_t blocks = (n + 15) / 16;
  int64_t b0 = blocks * r / size, b1 = blocks * (r + 1) / size;
  *lo = b0 * 16 < n ? b0 * 16 : n;
  *hi = b1 * 16 < n ? b1 * 16 : n;
}

void dt_comm_dense_shard(const dt_comm *c, int64_t n, int64_t *lo, int64_t *hi) {
  shard_of(n, c->rank, c->size, lo, hi);
}

#ifdef DTRAIN_HAVE_MPI
/* Counts and displacements of every rank's block (ints: MPI's limit). */
static int shard_counts(dt_comm *c, int64_t n, int *counts, int *displs) {
  for (int r = 0; r < c->size; r++) {
    int64_t lo, hi;
    shard_of(n, r, c->size, &lo, &hi);
    if (hi - lo > INT32_MAX || lo > INT32_MAX)
      return dt_fail(DT_EXIT_RUNTIME, "sharded dense update: %lld floats is more than MPI's int counts allow",
                     (long long)n);
    counts[r] = (int)(hi - lo);
    displs[r] = (int)lo;
  }
  return DT_OK;
}
#endif

/* One half of the sharded dense update: reduce-scatter (gather = 0) or
 * all-gather (gather = 1) of buf[n] over every rank's block. */
static int dense_shard_collective(dt_comm *c, float *buf, int64_t n, int gather) {
  if (!dt_comm_dense_can_shard(c))
    return dt_fail(DT_EXIT_RUNTIME, "sharded dense update without the MPI host transport (internal error)");
#ifdef DTRAIN_HAVE_MPI
  if (!gather) c->stats.dense_calls++;
  c->stats.dense_bytes += (uint64_t)((double)(c->size - 1) / c->size * 4.0 * (double)n);
  int *counts = dt_xmalloc(2 * (size_t)c->size * sizeof(int)), *displs = counts + c->size;
  int rc = shard_counts(c, n, counts, displs);
  if (!rc && gather) {
    dtc_enter("MPI_Allgatherv(dense parameters)");
    int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Allgatherv", "dense parameters");
  } else if (!rc) {
    /* MPI_Reduce_scatter puts the block at the start of its receive buffer */
    dtc_dense *d = c->dense;
    staging_reserve(d, (size_t)counts[c->rank] + 1);
    dtc_enter("MPI_Reduce_scatter(dense gradients)");
    int e = MPI_Reduce_scatter(buf, d->staging, counts, MPI_FLOAT, MPI_SUM, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS)
      rc = dtc_mpi_fail(c, e, "MPI_Reduce_scatter", "dense gradients");
    else
      memcpy(buf + displs[c->rank], d->staging, (size_t)counts[c->rank] * sizeof(float));
  }
  free(counts);
  return rc;
#else
  (void)buf, (void)n, (void)gather;
  return DT_OK;
#endif
}

int dt_comm_dense_reduce_scatter(dt_comm *c, float *buf, int64_t n) { return dense_shard_collective(c, buf, n, 0); }

int dt_comm_dense_allgather(dt_comm *c, float *buf, int64_t n) { return dense_shard_collective(c, buf, n, 1); }

int dt_comm_dense_allreduce(dt_comm *c, float *buf, int64_t n, int average) {
  dtc_dense *d = c->dense;
  if (!d) return dt_fail(DT_EXIT_RUNTIME, "dense all-reduce before dt_comm_dense_setup (internal error)");
  if (n < 0) return dt_fail(DT_EXIT_RUNTIME, "dense all-reduce: negative length %lld", (long long)n);
  c->stats.dense_calls++;
  if (d->transport == DTC_LOCAL || n == 0) return DT_OK;
  c->stats.dense_bytes += (uint64_t)(2.0 * (c->size - 1) / c->size * 4.0 * (double)n);
#ifdef DTC_USE_NCCL
  if (d->transport == DTC_NCCL) return dense_nccl(c, d, buf, n, average);
#endif
#ifdef DTRAIN_HAVE_MPI
  return dense_mpi(c, d, buf, n, average);
#else
  (void)buf, (void)average;
  return dt_fail(DT_EXIT_RUNTIME, "dense all-reduce over several ranks without MPI (internal error)");
#endif
}
