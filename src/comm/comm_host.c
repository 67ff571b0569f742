/* comm_host.c: collectives over host memory. With MPI each call is one or
 * two MPI collectives on the private world communicator, with the watchdog
 * told which one is waiting; without MPI they are copies (one rank). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"

/* Element chunk for all-reduce and broadcast: keeps MPI's int counts safe. */
#define DTC_CHUNK_ELEMS ((int64_t)1 << 28)

/* The element types and reductions of the host all-reduces. */
typedef enum { HOST_SUM_F32, HOST_SUM_F64, HOST_SUM_I64, HOST_MAX_I64 } host_reduce;

#ifdef DTRAIN_HAVE_MPI
#define DTC_CALL(c, op, what, expr)                                            \
  do {                                                                         \
    dtc_enter(op);                                                             \
    int dtc_e_ = (expr);                                                       \
    dtc_leave();                                                               \
    if (dtc_e_ != MPI_SUCCESS) return dtc_mpi_fail((c), dtc_e_, (op), (what)); \
  } while (0)

static int allreduce(dt_comm *c, void *buf, int64_t n, host_reduce kind, const char *name) {
  if (n < 0) return dt_fail(DT_EXIT_RUNTIME, "%s: negative element count %lld", name, (long long)n);
  static const struct {
    MPI_Datatype type;
    size_t esize;
  } types[] = {{MPI_FLOAT, sizeof(float)},
               {MPI_DOUBLE, sizeof(double)},
               {MPI_INT64_T, sizeof(int64_t)},
               {MPI_INT64_T, sizeof(int64_t)}};
  const MPI_Datatype type = types[kind].type;
  const size_t esize = types[kind].esize;
  const MPI_Op op = kind == HOST_MAX_I64 ? MPI_MAX : MPI_SUM;
  for (int64_t off = 0; off < n; off += DTC_CHUNK_ELEMS) {
    int64_t k = n - off < DTC_CHUNK_ELEMS ? n - off : DTC_CHUNK_ELEMS;
    DTC_CALL(c, name, "host buffer",
             MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * (int64_t)esize, (int)k, type, op, c->world));
  }
  if (c->size > 1) c->stats.host_bytes += (uint64_t)(2.0 * (c->size - 1) / c->size * (double)n * (double)esize);
  c->stats.host_calls++;
  return DT_OK;
}
#else
/* One rank: every all-reduce leaves the buffer as it is. */
static int allreduce(dt_comm *c, void *buf, int64_t n, host_reduce kind, const char *name) {
  (void)c, (void)buf, (void)n, (void)kind, (void)name;
  return DT_OK;
}
#endif

int dt_comm_allreduce_sum_f32(dt_comm *c, float *buf, int64_t n) {
  return allreduce(c, buf, n, HOST_SUM_F32, "MPI_Allreduce(sum, float)");
}

int dt_comm_allreduce_sum_f64(dt_comm *c, double *buf, int64_t n) {
  return allreduce(c, buf, n, HOST_SUM_F64, "MPI_Allreduce(sum, double)");
}

int dt_comm_allreduce_sum_i64(dt_comm *c, int64_t *buf, int64_t n) {
  return allreduce(c, buf, n, HOST_SUM_I64, "MPI_Allreduce(sum, int64)");
}

int dt_comm_allreduce_max_i64(dt_comm *c, int64_t *buf, int64_t n) {
  return allreduce(c, buf, n, HOST_MAX_I64, "MPI_Allreduce(max, int64)");
}

int dt_comm_bcast(dt_comm *c, void *buf, size_t bytes, int root) {
  if (root < 0 || root >= c->size)
    return dt_fail(DT_EXIT_RUNTIME, "broadcast: root %d is not a rank (0..%d)", root, c->size - 1);
#ifdef DTRAIN_HAVE_MPI
  for (size_t off = 0; off < bytes; off += (size_t)DTC_CHUNK_ELEMS) {
    size_t k = bytes - off < (size_t)DTC_CHUNK_ELEMS ? bytes - off : (size_t)DTC_CHUNK_ELEMS;
    DTC_CALL(c, "MPI_Bcast", "host bytes", MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, c->world));
  }
  if (c->rank == root) c->stats.host_bytes += (uint64_t)bytes * (uint64_t)(c->size - 1);
#else
  (void)buf;
#endif
  c->stats.host_calls++;
  return DT_OK;
}

int dt_comm_allgather(dt_comm *c, const void *item, size_t item_bytes, void *out) {
#ifdef DTRAIN_HAVE_MPI
  int n;
  DT_TRY(dtc_int_count(c, item_bytes, "MPI_Allgather", &n));
  DTC_CALL(c, "MPI_Allgather", "fixed-size items", MPI_Allgather(item, n, MPI_BYTE, out, n, MPI_BYTE, c->world));
  c->stats.host_bytes += (uint64_t)item_bytes * (uint64_t)(c->size - 1);
#else
  if (item_bytes) memmove(out, item, item_bytes);
#endif
  c->stats.host_calls++;
  return DT_OK;
}

#ifdef DTRAIN_HAVE_MPI
/* Byte counts to MPI int counts and displacements; fails when the total
 * does not fit an int. */
static int to_int_layout(const dt_comm *c, const size_t *counts, int *icounts, int *displs, size_t *total,
                         const char *what) {
  size_t sum = 0;
  for (int r = 0; r < c->size; r++) {
    DT_TRY(dtc_int_count(c, sum, what, &displs[r]));
    DT_TRY(dtc_int_count(c, counts[r], what, &icounts[r]));
    sum += counts[r];
  }
  int dummy;
  DT_TRY(dtc_int_count(c, sum, what, &dummy));
  *total = sum;
  return DT_OK;
}
#endif

int dtc_allgatherv(dt_comm *c, const void *send, size_t bytes, dt_comm_buffer *out, size_t *counts,
                   uint64_t *bytes_counter, const char *what) {
#ifdef DTRAIN_HAVE_MPI
  int size = c->size;
  uint64_t *sizes = dt_xmalloc(sizeof(uint64_t) * (size_t)size);
  int *ic = dt_xmalloc(sizeof(int) * 2 * (size_t)size);
  size_t *sc = dt_xmalloc(sizeof(size_t) * (size_t)size);
  int rc = DT_OK;
  uint64_t mine = bytes;
  dtc_enter("MPI_Allgather(sizes)");
  int e = MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes, 1, MPI_UINT64_T, c->world);
  dtc_leave();
  if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Allgather(sizes)", what);
  size_t total = 0;
  if (!rc) {
    for (int r = 0; r < size; r++) sc[r] = (size_t)sizes[r];
    rc = to_int_layout(c, sc, ic, ic + size, &total, what);
  }
  if (!rc) {
    dtc_buffer_reserve(out, total);
    int ib = ic[c->rank];
    dtc_enter("MPI_Allgatherv");
    e = MPI_Allgatherv(send, ib, MPI_BYTE, out->data, ic, ic + size, MPI_BYTE, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Allgatherv", what);
  }
  if (!rc) {
    out->size = total;
    if (counts) memcpy(counts, sc, sizeof(size_t) * (size_t)size);
    *bytes_counter += (uint64_t)(bytes + sizeof(uint64_t)) * (uint64_t)(size - 1);
  }
  free(sizes);
  free(ic);
  free(sc);
  return rc;
#else
  (void)what;
  (void)bytes_counter;
  dtc_buffer_reserve(out, bytes);
  if (bytes) memmove(out->data, send, bytes);
  out->size = bytes;
  if (counts) counts[0] = bytes;
  return DT_OK;
#endif
}

int dt_comm_allgatherv(dt_comm *c, const void *send, size_t bytes, dt_comm_buffer *out, size_t *counts) {
  c->stats.host_calls++;
  return dtc_allgatherv(c, send, bytes, out, counts, &c->stats.host_bytes, "allgatherv of host bytes");
}

int dtc_alltoallv_known(dt_comm *c, const void *send, const size_t *send_counts, void *recv, const size_t *recv_counts,
                        uint64_t *bytes_counter, const char *what) {
#ifdef DTRAIN_HAVE_MPI
  int size = c->size;
  int *ic = dt_xmalloc(sizeof(int) * 4 * (size_t)size);
  size_t st = 0, rt = 0;
  int rc = to_int_layout(c, send_counts, ic, ic + size, &st, what);
  if (!rc) rc = to_int_layout(c, recv_counts, ic + 2 * size, ic + 3 * size, &rt, what);
  if (!rc) {
    dtc_enter("MPI_Alltoallv");
    int e = MPI_Alltoallv(send, ic, ic + size, MPI_BYTE, recv, ic + 2 * size, ic + 3 * size, MPI_BYTE, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Alltoallv", what);
  }
  if (!rc)
    for (int r = 0; r < size; r++)
      if (r != c->rank) *bytes_counter += send_counts[r];
  free(ic);
  return rc;
#else
  (void)what;
  (void)bytes_counter;
  if (send_counts[0] != recv_counts[0])
    return dt_fail(DT_EXIT_RUNTIME, "%s: one rank sends %zu bytes to itself but expects %zu", what, send_counts[0],
                   recv_counts[0]);
  if (send_counts[0]) memmove(recv, send, send_counts[0]);
  return DT_OK;
#endif
}

int dtc_alltoallv(dt_comm *c, const void *send, const size_t *send_counts, dt_comm_buffer *recv, size_t *recv_counts,
                  uint64_t *bytes_counter, const char *what) {
  int size = c->size;
  size_t *rc_local = dt_xmalloc(sizeof(size_t) * (size_t)size);
  int rc = DT_OK;
#ifdef DTRAIN_HAVE_MPI
  uint64_t *sc64 = dt_xmalloc(sizeof(uint64_t) * 2 * (size_t)size);
  for (int r = 0; r < size; r++) sc64[r] = send_counts[r];
  dtc_enter("MPI_Alltoall(sizes)");
  int e = MPI_Alltoall(sc64, 1, MPI_UINT64_T, sc64 + size, 1, MPI_UINT64_T, c->world);
  dtc_leave();
  if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Alltoall(sizes)", what);
  for (int r = 0; r < size; r++) rc_local[r] = (size_t)sc64[size + r];
  if (!rc) *bytes_counter += sizeof(uint64_t) * (uint64_t)(size - 1);
  free(sc64);
#else
  rc_local[0] = send_counts[0];
#endif
  size_t total = 0;
  if (!rc) {
    for (int r = 0; r < size; r++) total += rc_local[r];
    dtc_buffer_reserve(recv, total);
    rc = dtc_alltoallv_known(c, send, send_counts, recv->data, rc_local, bytes_counter, what);
  }
  if (!rc) {
    recv->size = total;
    if (recv_counts) memcpy(recv_counts, rc_local, sizeof(size_t) * (size_t)size);
  }
  free(rc_local);
  return rc;
}

int dt_comm_alltoallv(dt_comm *c, const void *send, const size_t *send_counts, dt_comm_buffer *recv,
                      size_t *recv_counts) {
  c->stats.host_calls++;
  return dtc_alltoallv(c, send, send_counts, recv, recv_counts, &c->stats.host_bytes, "alltoallv of host bytes");
}

int dt_comm_gatherv(dt_comm *c, const void *send, size_t bytes, int root, dt_comm_buffer *out, size_t *counts) {
  if (root < 0 || root >= c->size)
    return dt_fail(DT_EXIT_RUNTIME, "gatherv: root %d is not a rank (0..%d)", root, c->size - 1);
  c->stats.host_calls++;
#ifdef DTRAIN_HAVE_MPI
  int size = c->size;
  const char *what = "gather of byte blobs";
  int nb;
  DT_TRY(dtc_int_count(c, bytes, what, &nb));
  uint64_t mine = bytes;
  uint64_t *sizes = dt_xmalloc(sizeof(uint64_t) * (size_t)size);
  size_t *sc = dt_xmalloc(sizeof(size_t) * (size_t)size);
  int *ic = dt_xmalloc(sizeof(int) * 2 * (size_t)size);
  int rc = DT_OK;
  /* Every rank learns every size (an all-gather, not a gather), so all
   * agree on whether the layout fits MPI's int counts before the Gatherv. */
  dtc_enter("MPI_Allgather(sizes)");
  int e = MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes, 1, MPI_UINT64_T, c->world);
  dtc_leave();
  if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Allgather(sizes)", what);
  size_t total = 0;
  if (!rc) {
    for (int r = 0; r < size; r++) sc[r] = (size_t)sizes[r];
    rc = to_int_layout(c, sc, ic, ic + size, &total, what);
  }
  if (!rc) {
    void *dst = NULL;
    if (c->rank == root) {
      dtc_buffer_reserve(out, total);
      dst = out->data;
    }
    dtc_enter("MPI_Gatherv");
    e = MPI_Gatherv(send, nb, MPI_BYTE, dst, ic, ic + size, MPI_BYTE, root, c->world);
    dtc_leave();
    if (e != MPI_SUCCESS) rc = dtc_mpi_fail(c, e, "MPI_Gatherv", what);
  }
  if (!rc) {
    if (c->rank == root) {
      out->size = total;
      if (counts) memcpy(counts, sc, sizeof(size_t) * (size_t)size);
    } else {
      c->stats.host_bytes += bytes;
    }
  }
  free(sizes);
  free(sc);
  free(ic);
  return rc;
#else
  dtc_buffer_reserve(out, bytes);
  if (bytes) memmove(out->data, send, bytes);
  out->size = bytes;
  if (counts) counts[0] = bytes;
  return DT_OK;
#endif
}

int dtc_send(dt_comm *c, const void *buf, size_t bytes, int dest, uint64_t *bytes_counter, const char *what) {
#ifdef DTRAIN_HAVE_MPI
  int n;
  DT_TRY(dtc_int_count(c, bytes, what, &n));
  DTC_CALL(c, "MPI_Send", what, MPI_Send(buf, n, MPI_BYTE, dest, 77, c->world));
  *bytes_counter += bytes;
  return DT_OK;
#else
  (void)buf, (void)bytes, (void)dest, (void)bytes_counter;
  return dt_fail(DT_EXIT_RUNTIME, "%s: point-to-point send to rank %d without MPI (internal error)", what, dest);
#endif
}

int dtc_recv(dt_comm *c, void *buf, size_t bytes, int src, const char *what) {
#ifdef DTRAIN_HAVE_MPI
  int n;
  DT_TRY(dtc_int_count(c, bytes, what, &n));
  MPI_Status st;
  DTC_CALL(c, "MPI_Recv", what, MPI_Recv(buf, n, MPI_BYTE, src, 77, c->world, &st));
  int got = 0;
  MPI_Get_count(&st, MPI_BYTE, &got);
  if (got != n)
    return dt_fail(DT_EXIT_RUNTIME, "%s: rank %d received %d bytes from rank %d, expected %d (internal error)", what,
                   c->rank, got, src, n);
  return DT_OK;
#else
  (void)buf, (void)bytes;
  return dt_fail(DT_EXIT_RUNTIME, "%s: point-to-point receive from rank %d without MPI (internal error)", what, src);
#endif
}
