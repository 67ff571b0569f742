/* Temporary until the data pipeline lands: membership test used by the
 * negative sampler. */
#include "dtrain/dataset.h"

int dt_dataset_user_has_train_item(const dt_dataset *ds, int32_t u, int32_t i) {
  int64_t lo = ds->train_sorted_ptr[u], hi = ds->train_sorted_ptr[u + 1];
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (ds->train_sorted[mid] < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < ds->train_sorted_ptr[u + 1] && ds->train_sorted[lo] == i;
}
