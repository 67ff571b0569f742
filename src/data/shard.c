/* shard.c: lanes, a rank's strided read of its units, and per-epoch
 * shuffled bins (shard.h). */
#include "dtrain/shard.h"

#include <stdlib.h>
#include <string.h>

#include "dtrain/h5io.h"
#include "dtrain/dataset.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"

/* Selects the rows j < n with j mod K in [lo, hi): full blocks of hi - lo
 * rows every K rows, then a last partial block. Returns the count. */
static int64_t select_lanes(hid_t space, int64_t n, int64_t K, int64_t lo, int64_t hi) {
  int64_t width = hi - lo;
  int64_t full = n >= hi ? (n - hi) / K + 1 : 0;
  int64_t tail_start = lo + full * K;
  int64_t tail = n > tail_start ? (n - tail_start < width ? n - tail_start : width) : 0;
  H5Sselect_none(space);
  if (width <= 0) return 0;
  if (full > 0) {
    hsize_t start[1] = {(hsize_t)lo}, stride[1] = {(hsize_t)K}, count[1] = {(hsize_t)full}, block[1] = {(hsize_t)width};
    if (H5Sselect_hyperslab(space, H5S_SELECT_SET, start, stride, count, block) < 0) return -1;
  }
  if (tail > 0) {
    hsize_t start[1] = {(hsize_t)tail_start}, count[1] = {1}, block[1] = {(hsize_t)tail};
    if (H5Sselect_hyperslab(space, full > 0 ? H5S_SELECT_OR : H5S_SELECT_SET, start, NULL, count, block) < 0) return -1;
  }
  return full * width + tail;
}

/* Reads the selected rows of one int32 column. */
static int read_column(hid_t f, const char *name, int64_t n_total, int64_t K, int64_t lo, int64_t hi, int32_t *out,
                       int64_t expect, const char *path) {
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  if (ds < 0) return dt_fail(DT_EXIT_DATA, "%s: cannot open dataset %s (HDF5: %s)", path, name, dt_h5_last_error());
  hid_t space = H5Dget_space(ds);
  hsize_t dims[1] = {0};
  int ok = space >= 0 && H5Sget_simple_extent_ndims(space) == 1 && H5Sget_simple_extent_dims(space, dims, NULL) == 1 &&
           (int64_t)dims[0] == n_total;
  int rc = DT_OK;
  if (!ok) {
    rc = dt_fail(DT_EXIT_DATA,
                 "%s: dataset %s does not have %lld rows like the other columns (a damaged file: "
                 "re-run `dtrain prep --force`)",
                 path, name, (long long)n_total);
  } else {
    int64_t n = select_lanes(space, n_total, K, lo, hi);
    if (n != expect) {
      rc = dt_fail(DT_EXIT_RUNTIME, "%s: selecting lanes [%lld, %lld) of %lld in %s failed (HDF5: %s)", path,
                   (long long)lo, (long long)hi, (long long)K, name, dt_h5_last_error());
    } else if (n > 0) {
      hsize_t mdims[1] = {(hsize_t)n};
      hid_t mem = H5Screate_simple(1, mdims, NULL);
      herr_t st = mem < 0 ? -1 : H5Dread(ds, H5T_NATIVE_INT32, mem, space, H5P_DEFAULT, out);
      if (st < 0) rc = dt_fail(DT_EXIT_DATA, "%s: cannot read %s (HDF5: %s)", path, name, dt_h5_last_error());
      if (mem >= 0) H5Sclose(mem);
    }
  }
  if (space >= 0) H5Sclose(space);
  H5Dclose(ds);
  return rc;
}

static int load_open(hid_t f, const char *path, dt_shard *s) {
  int64_t file_L = 0;
  DT_TRY(dt_h5_read_attr_int(f, "history_len", &file_L, path));
  if (s->chunk_mode && file_L != s->history_len)
    return dt_fail(DT_EXIT_DATA,
                   "%s was prepared with data.history_len = %lld, but chunks of L = %d are asked for: "
                   "re-run `dtrain prep` with data.history_len = %d",
                   path, (long long)file_L, s->history_len, s->history_len);
  const char *ucol = s->chunk_mode ? "/train_chunks/user" : "/train/user";
  DT_TRY(dt_h5_length(f, ucol, &s->n_units_total, path));
  int64_t K = s->n_lanes, lo = s->lane_lo, hi = s->lane_hi, n = s->n_units_total;
  /* how many rows the selection holds, computed without HDF5 */
  int64_t width = hi - lo, full = n >= hi ? (n - hi) / K + 1 : 0, tail_start = lo + full * K;
  int64_t tail = n > tail_start ? (n - tail_start < width ? n - tail_start : width) : 0;
  s->n_units = width > 0 ? full * width + tail : 0;
  size_t m = (size_t)(s->n_units ? s->n_units : 1);
  s->unit_index = dt_xmalloc(m * sizeof(int64_t));
  s->unit_user = dt_xmalloc(m * sizeof(int32_t));
  s->unit_start = dt_xmalloc(m * sizeof(int32_t));
  s->unit_count = dt_xmalloc(m * sizeof(int32_t));
  int64_t k = 0;
  for (int64_t b = 0; b <= full && width > 0; b++)
    for (int64_t j = lo + b * K; j < lo + b * K + width && j < n; j++) s->unit_index[k++] = j;
  if (k != s->n_units) dt_panic("shard selection count mismatch (%lld vs %lld)", (long long)k, (long long)s->n_units);
  DT_TRY(read_column(f, ucol, n, K, lo, hi, s->unit_user, s->n_units, path));
  if (s->chunk_mode) {
    DT_TRY(read_column(f, "/train_chunks/start", n, K, lo, hi, s->unit_start, s->n_units, path));
    DT_TRY(read_column(f, "/train_chunks/count", n, K, lo, hi, s->unit_count, s->n_units, path));
  } else {
    DT_TRY(read_column(f, "/train/pos", n, K, lo, hi, s->unit_start, s->n_units, path));
    for (int64_t j = 0; j < s->n_units; j++) s->unit_count[j] = 1;
  }
  s->n_interactions = 0;
  for (int64_t j = 0; j < s->n_units; j++) {
    if (s->unit_count[j] < 1 || s->unit_start[j] < 0 || s->unit_user[j] < 0)
      return dt_fail(DT_EXIT_DATA, "%s: training unit %lld is malformed (a damaged file: re-run `dtrain prep --force`)",
                     path, (long long)s->unit_index[j]);
    s->n_interactions += s->unit_count[j];
  }
  return DT_OK;
}

int dt_shard_load(const char *path, int rank, int n_ranks, int chunk_mode, int64_t batch_size, int history_len,
                  dt_shard *shard) {
  memset(shard, 0, sizeof *shard);
  if (n_ranks < 1 || rank < 0 || rank >= n_ranks)
    return dt_fail(DT_EXIT_USAGE, "shard: rank %d of %d is not a valid rank", rank, n_ranks);
  if (batch_size < 1) return dt_fail(DT_EXIT_USAGE, "train.batch_size must be at least 1");
  if (history_len < 1) return dt_fail(DT_EXIT_USAGE, "data.history_len must be at least 1");
  shard->rank = rank;
  shard->n_ranks = n_ranks;
  shard->chunk_mode = chunk_mode != 0;
  shard->batch_size = batch_size;
  shard->history_len = history_len;
  shard->n_lanes = chunk_mode ? (batch_size / history_len > 1 ? batch_size / history_len : 1) : batch_size;
  shard->bin_cap = batch_size / shard->n_lanes;
  shard->lane_lo = (int64_t)rank * shard->n_lanes / n_ranks;
  shard->lane_hi = (int64_t)(rank + 1) * shard->n_lanes / n_ranks;
  hid_t f;
  DT_TRY(dt_h5_open_prepared(path, DT_DATASET_FORMAT_VERSION, &f));
  int rc = load_open(f, path, shard);
  H5Fclose(f);
  if (rc != DT_OK) dt_shard_free(shard);
  return rc;
}

void dt_shard_free(dt_shard *shard) {
  free(shard->unit_index);
  free(shard->unit_user);
  free(shard->unit_start);
  free(shard->unit_count);
  memset(shard, 0, sizeof *shard);
}

int dt_shard_plan_epoch(const dt_shard *shard, uint64_t seed, int64_t epoch, dt_epoch_plan *plan) {
  memset(plan, 0, sizeof *plan);
  int64_t n_lanes = shard->lane_hi - shard->lane_lo, n = shard->n_units, K = shard->n_lanes;
  size_t m = (size_t)(n ? n : 1);
  /* the shard's units lane by lane, in file order (unit_index ascending) */
  int64_t *lane_ptr = dt_xcalloc((size_t)n_lanes + 2, sizeof(int64_t));
  for (int64_t j = 0; j < n; j++) lane_ptr[shard->unit_index[j] % K - shard->lane_lo + 1]++;
  for (int64_t l = 0; l < n_lanes; l++) lane_ptr[l + 1] += lane_ptr[l];
  int64_t *lane_units = dt_xmalloc(m * sizeof(int64_t));
  int64_t *fill = dt_xmalloc(((size_t)n_lanes + 1) * sizeof(int64_t));
  memcpy(fill, lane_ptr, ((size_t)n_lanes + 1) * sizeof(int64_t));
  for (int64_t j = 0; j < n; j++) lane_units[fill[shard->unit_index[j] % K - shard->lane_lo]++] = j;
  /* shuffle each lane: Fisher-Yates keyed by (seed, epoch, lane), independent of the rank count */
  for (int64_t l = 0; l < n_lanes; l++) {
    int64_t lane = shard->lane_lo + l, *u = lane_units + lane_ptr[l], len = lane_ptr[l + 1] - lane_ptr[l];
    for (int64_t i = len - 1; i > 0; i--) {
      dt_rand4 r = dt_philox(seed, DT_RNG_SHUFFLE, (uint32_t)epoch, (uint32_t)lane, (uint32_t)i,
                             (uint32_t)((uint64_t)i >> 32) ^ ((uint32_t)((uint64_t)epoch >> 32) << 16));
      int64_t j = (int64_t)dt_below64(r.v[0], r.v[1], (uint64_t)(i + 1));
      int64_t t = u[i];
      u[i] = u[j];
      u[j] = t;
    }
  }
  /* greedy bins of at most bin_cap interactions (a bigger unit alone) */
  int64_t *bin_of = dt_xmalloc(m * sizeof(int64_t)); /* bin of lane_units[k] */
  int64_t n_steps = 0;
  for (int64_t l = 0; l < n_lanes; l++) {
    int64_t bin = 0, load = 0;
    for (int64_t k = lane_ptr[l]; k < lane_ptr[l + 1]; k++) {
      int64_t c = shard->unit_count[lane_units[k]];
      if (load > 0 && load + c > shard->bin_cap) {
        bin++;
        load = 0;
      }
      load += c;
      bin_of[k] = bin;
    }
    if (lane_ptr[l + 1] > lane_ptr[l] && bin + 1 > n_steps) n_steps = bin + 1;
  }
  /* step s = bin s of every own lane, lanes in order */
  plan->n_steps = n_steps;
  plan->step_ptr = dt_xcalloc((size_t)n_steps + 1, sizeof(int64_t));
  plan->order = dt_xmalloc(m * sizeof(int64_t));
  plan->step_interactions = dt_xcalloc((size_t)(n_steps ? n_steps : 1), sizeof(int64_t));
  for (int64_t k = 0; k < n; k++) {
    plan->step_ptr[bin_of[k] + 1]++;
    plan->step_interactions[bin_of[k]] += shard->unit_count[lane_units[k]];
  }
  for (int64_t s = 0; s < n_steps; s++) plan->step_ptr[s + 1] += plan->step_ptr[s];
  int64_t *pos = dt_xmalloc(((size_t)n_steps + 1) * sizeof(int64_t));
  memcpy(pos, plan->step_ptr, ((size_t)n_steps + 1) * sizeof(int64_t));
  for (int64_t k = 0; k < n; k++) plan->order[pos[bin_of[k]]++] = lane_units[k]; /* lanes in order, bins in order */
  free(pos);
  free(bin_of);
  free(fill);
  free(lane_units);
  free(lane_ptr);
  return DT_OK;
}

void dt_epoch_plan_free(dt_epoch_plan *plan) {
  free(plan->step_ptr);
  free(plan->order);
  free(plan->step_interactions);
  memset(plan, 0, sizeof *plan);
}
