/* ReLU + dropout, in place. The mask is never stored: the forward and the
 * backward (without ReLU) redraw it from the key. The draws are exactly
 * dt_dropout_draws() of op_math.h (Philox4x32-10, one call per four
 * columns); on x86-64 a row's calls run four at a time in SSE2 lanes (the
 * scalar call costs ~10 ns per element). test_backend_cpu_dropout checks
 * every bit against dt_dropout_keep. */
#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

/* Philox calls computed together: 16 calls = 64 columns. */
enum { LANES = 16 };

#if defined(__SSE2__)
#include <emmintrin.h>

/* lo and hi 32-bit halves of a[l] * m for the four lanes (SSE2 multiplies
 * lanes 0 and 2, then 1 and 3, into 64-bit products) */
static inline void mulhilo4(__m128i a, __m128i m, __m128i *lo, __m128i *hi) {
  __m128i even = _mm_mul_epu32(a, m);
  __m128i odd = _mm_mul_epu32(_mm_srli_epi64(a, 32), m);
  *lo = _mm_unpacklo_epi32(_mm_shuffle_epi32(even, 0x08), _mm_shuffle_epi32(odd, 0x08));
  *hi = _mm_unpacklo_epi32(_mm_shuffle_epi32(even, 0x0D), _mm_shuffle_epi32(odd, 0x0D));
}
#endif

/* The draws of columns 4*g0 .. 4*(g0+LANES)-1 of one row: out[k] is column
 * 4*g0 + k. Same arithmetic as Random123's philox4x32 with 10 rounds and
 * the key and counter layout of dt_dropout_draws. */
static void dropout_draws_block(const dt_dropout_key *key, int64_t row_key, int g0, uint32_t *restrict out) {
  uint32_t k0 = (uint32_t)key->seed, k1 = (uint32_t)(key->seed >> 32) * 0x9E3779B9u + DT_RNG_DROPOUT;
  uint32_t ctr1 = key->site * 0x10000u + (uint32_t)g0;
#if defined(__SSE2__)
  const __m128i m0 = _mm_set1_epi32((int)0xD2511F53u), m1 = _mm_set1_epi32((int)0xCD9E8D57u);
  for (int v = 0; v < LANES / 4; v++) {
    __m128i c0 = _mm_set1_epi32((int)key->step);
    __m128i c1 = _mm_add_epi32(_mm_set1_epi32((int)(ctr1 + 4u * (uint32_t)v)), _mm_setr_epi32(0, 1, 2, 3));
    __m128i c2 = _mm_set1_epi32((int)(uint32_t)row_key);
    __m128i c3 = _mm_set1_epi32((int)(uint32_t)((uint64_t)row_key >> 32));
    uint32_t kk0 = k0, kk1 = k1;
    for (int round = 0; round < 10; round++) {
      __m128i lo0, hi0, lo1, hi1;
      mulhilo4(c0, m0, &lo0, &hi0);
      mulhilo4(c2, m1, &lo1, &hi1);
      c0 = _mm_xor_si128(_mm_xor_si128(hi1, c1), _mm_set1_epi32((int)kk0));
      c1 = lo1;
      c2 = _mm_xor_si128(_mm_xor_si128(hi0, c3), _mm_set1_epi32((int)kk1));
      c3 = lo0;
      kk0 += 0x9E3779B9u;
      kk1 += 0xBB67AE85u;
    }
    /* transpose: lane l's four words are columns 4l .. 4l+3 */
    __m128i t0 = _mm_unpacklo_epi32(c0, c1), t1 = _mm_unpacklo_epi32(c2, c3);
    __m128i t2 = _mm_unpackhi_epi32(c0, c1), t3 = _mm_unpackhi_epi32(c2, c3);
    __m128i *o = (__m128i *)(void *)(out + 16 * v);
    _mm_storeu_si128(o, _mm_unpacklo_epi64(t0, t1));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi64(t0, t1));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi64(t2, t3));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi64(t2, t3));
  }
#else
  for (int l = 0; l < LANES; l++) {
    dt_rand4 r = dt_dropout_draws(key->seed, key->step, key->site, row_key, g0 + l);
    for (int j = 0; j < 4; j++) out[4 * l + j] = r.v[j];
  }
  (void)k0;
  (void)k1;
  (void)ctr1;
#endif
}

/* Multiplies row `x` (cols values, keyed by row_key) by mask/(1-p), after
 * a ReLU when `relu`. */
static void dropout_row(float *restrict x, int cols, int relu, float p, float scale, const dt_dropout_key *key,
                        int64_t row_key) {
  uint32_t draws[4 * LANES];
  for (int c0 = 0; c0 < cols; c0 += 4 * LANES) {
    dropout_draws_block(key, row_key, c0 / 4, draws);
    int n = cols - c0 < 4 * LANES ? cols - c0 : 4 * LANES;
    float *restrict xr = x + c0;
    if (relu) {
      for (int k = 0; k < n; k++) {
        float v = xr[k] > 0.0f ? xr[k] : 0.0f;
        xr[k] = dt_dropout_keep_draw(draws[k], p) ? v * scale : 0.0f;
      }
    } else {
      for (int k = 0; k < n; k++) xr[k] = dt_dropout_keep_draw(draws[k], p) ? xr[k] * scale : 0.0f;
    }
  }
}

static int check_args(const char *op, int64_t rows, int cols, float p, const dt_dropout_key *key) {
  if (rows < 0 || cols < 0) return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: negative shape [%lld, %d]", op,
                                           (long long)rows, cols);
  if (!(p >= 0.0f && p < 1.0f))
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: dropout probability %g is outside [0, 1)", op, (double)p);
  if (p > 0.0f && rows > 0 && !key->row_keys)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: dropout p=%g needs row_keys", op, (double)p);
  /* the counter holds the column group in the low 16 bits beside the site */
  if (cols > 4 * 0x10000)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: %d columns exceed the dropout counter's %d", op, cols,
                   4 * 0x10000);
  return 0;
}

/* Philox work per element is about that of 4 adds */
static int dropout_threads(dt_backend *be, int64_t rows, int cols, float p) {
  return dt_cpu_threads_for(be, p > 0.0f ? rows * cols * 4 : rows * cols);
}

int dt_cpu_relu_dropout_fwd(dt_backend *be, float *x, int64_t rows, int cols, int relu, float p,
                            dt_dropout_key key) {
  DT_TRY(check_args("relu_dropout_fwd", rows, cols, p, &key));
  int nt = dropout_threads(be, rows, cols, p);
  if (p == 0.0f) {
    if (!relu) return 0;
    int64_t total = rows * cols;
    float *restrict xx = x;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < total; i++) xx[i] = xx[i] > 0.0f ? xx[i] : 0.0f;
    return 0;
  }
  float scale = 1.0f / (1.0f - p);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) dropout_row(x + r * cols, cols, relu, p, scale, &key, key.row_keys[r]);
  return 0;
}

int dt_cpu_relu_dropout_bwd(dt_backend *be, float *dy, const float *y, int64_t rows, int cols, int relu, float p,
                            dt_dropout_key key) {
  DT_TRY(check_args("relu_dropout_bwd", rows, cols, p, &key));
  int nt = dropout_threads(be, rows, cols, relu ? 0.0f : p);
  float scale = 1.0f / (1.0f - p);
  if (relu) {
    /* y > 0 exactly where the ReLU passed and dropout kept: no redraw */
    DT_CPU_REQUIRE(y != NULL || rows * cols == 0, "relu_dropout_bwd", "relu needs the forward output y");
    int64_t total = rows * cols;
    const float *restrict yy = y;
    float *restrict d = dy;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < total; i++) d[i] = yy[i] > 0.0f ? d[i] * scale : 0.0f;
    return 0;
  }
  if (p == 0.0f) return 0;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) dropout_row(dy + r * cols, cols, 0, p, scale, &key, key.row_keys[r]);
  return 0;
}
