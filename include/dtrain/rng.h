/* rng.h: counter-based random numbers (Random123 Philox4x32-10).
 *
 * Every draw is a pure function of (seed, stream, counter), where the stream
 * says what the numbers are for and the counter says which one: there is no
 * generator state to carry, split or checkpoint. That makes draws independent
 * of batch layout and rank count, and identical in C and CUDA (these
 * functions are DT_HD).
 */
#ifndef DTRAIN_RNG_H
#define DTRAIN_RNG_H

#include <stdint.h>

#include <Random123/philox.h>

#include "dtrain/hostdev.h"

/* What a draw is for. Never renumber: checkpoints and tests depend on them. */
enum {
  DT_RNG_INIT = 1,           /* parameter initialisation: (param index, element) */
  DT_RNG_SHUFFLE = 2,        /* per-epoch shuffling: (epoch, lane, i) */
  DT_RNG_NEGATIVE = 3,       /* training negatives: (epoch, interaction, neg, try) */
  DT_RNG_DROPOUT = 4,        /* dropout masks: (step, site, example, element) */
  DT_RNG_EVAL = 5,           /* evaluation negatives: (user, draw) */
  DT_RNG_SYNTH = 6,          /* synthetic data generator */
  DT_RNG_TEST = 7,           /* tests */
  DT_RNG_SHARED_NEGATIVE = 8 /* sampled_softmax's negatives shared by a global batch: (step, negative) */
};

typedef struct {
  uint32_t v[4];
} dt_rand4;

/* Four 32-bit draws for (seed, stream, c0..c3). */
DT_HD static inline dt_rand4 dt_philox(uint64_t seed, uint32_t stream, uint32_t c0, uint32_t c1, uint32_t c2,
                                       uint32_t c3) {
  philox4x32_ctr_t ctr = {{c0, c1, c2, c3}};
  philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32) * 0x9E3779B9u + stream}};
  philox4x32_ctr_t r = philox4x32(ctr, key);
  dt_rand4 out = {{r.v[0], r.v[1], r.v[2], r.v[3]}};
  return out;
}

/* A float in [0, 1) from the top 24 bits of x. */
DT_HD static inline float dt_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* A double in [0, 1) from two 32-bit draws (53 bits). */
DT_HD static inline double dt_u01d(uint32_t hi, uint32_t lo) {
  uint64_t bits = ((uint64_t)hi << 21) ^ (uint64_t)(lo >> 11);
  return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* An integer in [0, n) from a 64-bit draw (bias below n/2^64, negligible). */
DT_HD static inline uint64_t dt_below64(uint32_t hi, uint32_t lo, uint64_t n) {
  uint64_t x = ((uint64_t)hi << 32) | lo;
#if defined(__CUDA_ARCH__)
  return __umul64hi(x, n);
#else
  return (uint64_t)(((unsigned __int128)x * n) >> 64);
#endif
}

/* A standard normal draw (Box-Muller) from two uniform 32-bit draws. */
float dt_normal_from(uint32_t a, uint32_t b);

/* A stable 32-bit id of a name (FNV-1a): the counter word that keeps each
 * parameter's and table's initialisation stream apart. */
uint32_t dt_name_hash(const char *name);

#endif
