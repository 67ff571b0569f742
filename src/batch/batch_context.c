/* batch_context.c: what an example sees besides its item: the temporal
 * context features of its timestamp and the window of its history
 * (MODEL.md "Temporal context" and "History"). */
#include <math.h>
#include <stdint.h>

#include "dtrain/batch.h"

void dt_context_features(int64_t ts, float out[5]) {
  const double two_pi = 6.283185307179586;
  int64_t day = ts >= 0 ? ts / 86400 : -((-ts + 86399) / 86400);
  double hour = (double)(ts - day * 86400) / 3600.0;
  int64_t dow = ((day + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday: Monday = 0 */
  out[0] = (float)sin(two_pi * hour / 24.0);
  out[1] = (float)cos(two_pi * hour / 24.0);
  out[2] = (float)sin(two_pi * (double)dow / 7.0);
  out[3] = (float)cos(two_pi * (double)dow / 7.0);
  out[4] = dow >= 5 ? 1.0f : 0.0f;
}

void dt_history_window(dt_history_mode mode, int L, int32_t pos, int32_t n_train, int32_t *lo, int32_t *hi) {
  *lo = *hi = pos;
  switch (mode) {
    case DT_HISTORY_PREFIX:
      *lo = pos > L ? pos - L : 0;
      *hi = pos;
      break;
    case DT_HISTORY_USER_TRAIN:
      /* the thesis: every interaction sees the user's last L train items */
      *lo = n_train > L ? n_train - L : 0;
      *hi = n_train;
      break;
    case DT_HISTORY_CHUNK: {
      int32_t w = L * (pos / L) - L;
      *lo = w > 0 ? w : 0;
      *hi = pos;
      break;
    }
  }
}
