/* shard.h: which training interactions rank r of N owns, and the batches of
 * each epoch.
 *
 * Units. Training is done in units: in row mode (history "prefix" or
 * "user_train") a unit is one train interaction (/train rows); in chunk mode
 * a unit is one chunk (/train_chunks rows: up to L consecutive train
 * positions of one user, so its one GRU pass stays on one rank).
 *
 * Lanes. Units are dealt round-robin, in file order, onto K lanes:
 * unit j goes to lane j mod K, with K = B (row mode) or K = max(1, B / L)
 * (chunk mode), B the global batch size. Each lane's bin holds at most
 * cap = B / K interactions. Rank r of N owns lanes [floor(rK/N),
 * floor((r+1)K/N)): its shard, read from the file with one strided HDF5
 * hyperslab (rows j with j mod K in its lane range), never the whole table.
 *
 * Epochs. In epoch e every lane shuffles its units (Philox keyed by
 * (seed, epoch, lane)) and packs them, in that order, into bins of at most
 * cap interactions. Global batch s is bin s of every lane; rank r's part of
 * it is bin s of each of its lanes (the trainer re-splits each step's units
 * by work when comm.balance_steps is on: src/train/balance.c). Lane contents and shuffles depend only
 * on (seed, B, L), never on N, so N ranks train on exactly the global
 * batches one rank does, and a batch's composition changes every epoch.
 * The number of steps in an epoch is the largest number of bins of any
 * lane; ranks whose lanes run out first take empty parts (every rank runs
 * every step's collectives). In chunk mode that maximum needs one small
 * all-reduce, which the caller does (dt_shard_plan_epoch gives the local one).
 *
 * Ownership: dt_shard_load fills a dt_shard whose arrays it owns
 * (dt_shard_free); dt_epoch_plan likewise (dt_epoch_plan_free).
 */
#ifndef DTRAIN_SHARD_H
#define DTRAIN_SHARD_H

#include <stdint.h>

typedef struct {
  int rank, n_ranks;
  int chunk_mode;           /* units are chunks (1) or single interactions (0) */
  int64_t batch_size;       /* global B */
  int history_len;          /* L */
  int64_t n_lanes;          /* K */
  int64_t bin_cap;          /* interactions per lane bin */
  int64_t lane_lo, lane_hi; /* this rank's lanes [lo, hi) */
  int64_t n_units_total;    /* units in the whole file */
  /* this rank's units (in file order) */
  int64_t n_units;
  int64_t *unit_index; /* global unit index j (lane = j mod K) */
  int32_t *unit_user;
  int32_t *unit_start;    /* first position in the user's list */
  int32_t *unit_count;    /* interactions in the unit (1 in row mode) */
  int64_t n_interactions; /* sum of unit_count */
} dt_shard;

/* Reads rank `rank` of `n_ranks`'s shard from a prepared file. */
int dt_shard_load(const char *path, int rank, int n_ranks, int chunk_mode, int64_t batch_size, int history_len,
                  dt_shard *shard);
void dt_shard_free(dt_shard *shard);

/* One epoch's local batches: step s covers units order[step_ptr[s] ..
 * step_ptr[s+1]) (indices into the shard's unit arrays). */
typedef struct {
  int64_t n_steps;            /* local number of steps (bins of the fullest own lane) */
  int64_t *step_ptr;          /* [n_steps+1] */
  int64_t *order;             /* [n_units] */
  int64_t *step_interactions; /* [n_steps] interactions in the local part of each step */
} dt_epoch_plan;

/* Plans epoch `epoch` for the shard with `seed`. The global step count is
 * the maximum of n_steps over ranks; steps past a rank's n_steps are empty. */
int dt_shard_plan_epoch(const dt_shard *shard, uint64_t seed, int64_t epoch, dt_epoch_plan *plan);
void dt_epoch_plan_free(dt_epoch_plan *plan);

#endif
