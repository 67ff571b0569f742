/* strtab.c: interned byte strings and the interaction table (readers.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/readers.h"

/* FNV-1a over the bytes, then a 64-bit finaliser so the low bits (the slot
 * index) depend on every input byte. */
static uint64_t hash_bytes(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

static int64_t str_len(const dt_strtab *t, int64_t idx) {
  return (idx + 1 < t->n ? t->off[idx + 1] : t->bytes_len) - t->off[idx] - 1;
}

static int64_t find_slot(const dt_strtab *t, const char *s, size_t len) {
  uint64_t mask = (uint64_t)t->n_slots - 1;
  uint64_t h = hash_bytes(s, len) & mask;
  for (;;) {
    int64_t v = t->slots[h];
    if (v == 0) return (int64_t)h;
    if (str_len(t, v - 1) == (int64_t)len && memcmp(t->bytes + t->off[v - 1], s, len) == 0) return (int64_t)h;
    h = (h + 1) & mask;
  }
}

static void rehash(dt_strtab *t, int64_t n_slots) {
  free(t->slots);
  t->slots = dt_xcalloc((size_t)n_slots, sizeof(int64_t));
  t->n_slots = n_slots;
  uint64_t mask = (uint64_t)n_slots - 1;
  for (int64_t i = 0; i < t->n; i++) {
    uint64_t h = hash_bytes(t->bytes + t->off[i], (size_t)str_len(t, i)) & mask;
    while (t->slots[h]) h = (h + 1) & mask;
    t->slots[h] = i + 1;
  }
}

int64_t dt_strtab_find(const dt_strtab *t, const char *s, size_t len) {
  if (t->n_slots == 0) return -1;
  return t->slots[find_slot(t, s, len)] - 1;
}

int64_t dt_strtab_intern(dt_strtab *t, const char *s, size_t len) {
  if (t->n_slots == 0) rehash(t, 1024);
  int64_t slot = find_slot(t, s, len);
  if (t->slots[slot]) return t->slots[slot] - 1;
  if (t->n == t->off_cap) {
    t->off_cap = t->off_cap ? t->off_cap * 2 : 1024;
    t->off = dt_xrealloc(t->off, (size_t)t->off_cap * sizeof(int64_t));
  }
  if (t->bytes_len + (int64_t)len + 1 > t->bytes_cap) {
    int64_t cap = t->bytes_cap ? t->bytes_cap : 16384;
    while (cap < t->bytes_len + (int64_t)len + 1) cap *= 2;
    t->bytes = dt_xrealloc(t->bytes, (size_t)cap);
    t->bytes_cap = cap;
  }
  int64_t idx = t->n++;
  t->off[idx] = t->bytes_len;
  memcpy(t->bytes + t->bytes_len, s, len);
  t->bytes[t->bytes_len + (int64_t)len] = '\0';
  t->bytes_len += (int64_t)len + 1;
  t->slots[slot] = idx + 1;
  /* a load factor of at most 1/2 keeps probe sequences short */
  if (t->n * 2 > t->n_slots) rehash(t, t->n_slots * 2);
  return idx;
}

void dt_strtab_free(dt_strtab *t) {
  free(t->off);
  free(t->bytes);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

/* ---- dt_interactions ---------------------------------------------------------------- */

int dt_interactions_add(dt_interactions *x, const char *user, size_t user_len, const char *item, size_t item_len,
                        int64_t ts, const char *text, size_t text_len) {
  int64_t u = dt_strtab_intern(&x->users, user, user_len);
  int64_t i = dt_strtab_intern(&x->items, item, item_len);
  if (u > INT32_MAX || i > INT32_MAX)
    return dt_fail(DT_EXIT_DATA, "more than %d distinct %s ids: dtrain indexes them with 32-bit integers", INT32_MAX,
                   u > INT32_MAX ? "user" : "item");
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 4096;
    x->user = dt_xrealloc(x->user, (size_t)x->cap * sizeof(int32_t));
    x->item = dt_xrealloc(x->item, (size_t)x->cap * sizeof(int32_t));
    x->ts = dt_xrealloc(x->ts, (size_t)x->cap * sizeof(int64_t));
    if (x->has_text) x->text_off = dt_xrealloc(x->text_off, (size_t)x->cap * sizeof(int64_t));
  }
  int64_t r = x->n++;
  x->user[r] = (int32_t)u;
  x->item[r] = (int32_t)i;
  x->ts[r] = ts;
  if (x->has_text) {
    if (!text) {
      x->text_off[r] = -1;
    } else {
      if (x->text_len + (int64_t)text_len + 1 > x->text_cap) {
        int64_t cap = x->text_cap ? x->text_cap : 65536;
        while (cap < x->text_len + (int64_t)text_len + 1) cap *= 2;
        x->text = dt_xrealloc(x->text, (size_t)cap);
        x->text_cap = cap;
      }
      x->text_off[r] = x->text_len;
      memcpy(x->text + x->text_len, text, text_len);
      x->text[x->text_len + (int64_t)text_len] = '\0';
      x->text_len += (int64_t)text_len + 1;
    }
  }
  return DT_OK;
}

void dt_interactions_free(dt_interactions *x) {
  dt_strtab_free(&x->users);
  dt_strtab_free(&x->items);
  free(x->user);
  free(x->item);
  free(x->ts);
  free(x->text_off);
  free(x->text);
  memset(x, 0, sizeof *x);
}
