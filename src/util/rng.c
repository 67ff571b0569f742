#include "dtrain/rng.h"

#include <math.h>

float dt_normal_from(uint32_t a, uint32_t b) {
  /* u1 in (0, 1] so the log is finite. */
  double u1 = ((double)(a >> 8) + 1.0) * (1.0 / 16777216.0);
  double u2 = (double)(b >> 8) * (1.0 / 16777216.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t dt_name_hash(const char *name) {
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
    h ^= *c;
    h *= 16777619u;
  }
  return h;
}
