/* comm_dense_sync.c: the three dense updates (comm.dense_update) as one
 * strategy object each (comm.h dt_dense_sync), over the dense calls of
 * comm_dense.c and comm_dense_shared.c. No MPI calls of its own. */
#include "comm/comm_internal.h"

static int zero_grad(dt_comm *c, dt_backend *be, float *g, int64_t n) {
  (void)c;
  return be->zero(be, g, (size_t)n * sizeof(float));
}

static int keep_grad(dt_comm *c, dt_backend *be, float *g, int64_t n) {
  (void)c, (void)be, (void)g, (void)n;
  return DT_OK; /* shared_memory: the last step's owners left every block zero */
}

static int no_moments(dt_comm *c, float *m, float *v, int64_t n) {
  (void)c, (void)m, (void)v, (void)n;
  return DT_OK;
}

static int no_wait(dt_comm *c, int rc, int fail_code, const char *what) {
  (void)c, (void)fail_code, (void)what;
  return rc;
}

/* ---- allreduce: every rank sums everything and updates everything ---- */

static int allreduce_reduce(dt_comm *c, dt_backend *be, float *g, int64_t n, dt_dense_block *blk) {
  *blk = (dt_dense_block){0, n, 0.0, 0};
  DT_TRY(dt_comm_dense_allreduce(c, g, n, 0));
  return be->sumsq(be, g, n, &blk->sumsq);
}

static int allreduce_after(dt_comm *c, dt_backend *be, float *w, float *g, int64_t n, const dt_dense_block *blk) {
  (void)c, (void)be, (void)w, (void)g, (void)n, (void)blk;
  return DT_OK;
}

/* ---- sharded: reduce-scatter, each rank updates its block, all-gather ---- */

static int sharded_reduce(dt_comm *c, dt_backend *be, float *g, int64_t n, dt_dense_block *blk) {
  *blk = (dt_dense_block){0, n, 0.0, 1};
  dt_comm_dense_shard(c, n, &blk->lo, &blk->hi);
  DT_TRY(dt_comm_dense_reduce_scatter(c, g, n));
  return be->sumsq(be, g + blk->lo, blk->hi - blk->lo, &blk->sumsq);
}

static int sharded_after(dt_comm *c, dt_backend *be, float *w, float *g, int64_t n, const dt_dense_block *blk) {
  (void)be, (void)g, (void)blk;
  return dt_comm_dense_allgather(c, w, n);
}

/* Each rank's Adam moments are current in its own block only: gather them
 * so a checkpoint holds all of them. */
static int sharded_moments(dt_comm *c, float *m, float *v, int64_t n) {
  DT_TRY(dt_comm_dense_allgather(c, m, n));
  return dt_comm_dense_allgather(c, v, n);
}

/* ---- shared_memory: one copy per machine, each rank sums and updates a block ---- */

static int shared_reduce(dt_comm *c, dt_backend *be, float *g, int64_t n, dt_dense_block *blk) {
  (void)be, (void)g;
  *blk = (dt_dense_block){0, n, 0.0, 1};
  dt_comm_dense_shard(c, n, &blk->lo, &blk->hi);
  return dt_comm_dense_shared_reduce(c, &blk->sumsq); /* the block's sum of squares comes with it */
}

static int shared_after(dt_comm *c, dt_backend *be, float *w, float *g, int64_t n, const dt_dense_block *blk) {
  (void)w, (void)n;
  /* the other blocks of this buffer were zeroed by their owners */
  DT_TRY(be->zero(be, g + blk->lo, (size_t)(blk->hi - blk->lo) * sizeof(float)));
  return dt_comm_dense_shared_wait(c);
}

/* Nobody reads another rank's rows or updates the shared weights before
 * every rank has written its part. */
static int shared_written(dt_comm *c, int rc, int fail_code, const char *what) {
  int64_t failed = rc != DT_OK;
  DT_TRY(dt_comm_allreduce_max_i64(c, &failed, 1));
  if (failed && !rc) return dt_fail(fail_code, "%s failed on another rank (see its message)", what);
  return rc;
}

static const dt_dense_sync syncs[3] = {
    {DT_DENSE_ALLREDUCE, zero_grad, allreduce_reduce, allreduce_after, no_moments, no_wait},
    {DT_DENSE_SHARDED, zero_grad, sharded_reduce, sharded_after, sharded_moments, no_wait},
    {DT_DENSE_SHARED, keep_grad, shared_reduce, shared_after, no_moments, shared_written},
};

const dt_dense_sync *dt_comm_dense_sync(const dt_comm *c) { return &syncs[c->dense_update]; }
