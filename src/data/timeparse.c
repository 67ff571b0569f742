/* timeparse.c: timestamps of raw input as unix seconds (readers.h):
 * integers, or ISO-8601 dates and times in the extended format. */
#include <stddef.h>
#include <stdint.h>

#include "dtrain/readers.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 ? 28 + leap : days[m - 1];
}

/* Exactly `n` digits at s[*i] as a number; -1 if not. */
static int64_t digits(const char *s, size_t len, size_t *i, int n) {
  int64_t v = 0;
  for (int k = 0; k < n; k++, (*i)++) {
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
    v = v * 10 + (s[*i] - '0');
  }
  return v;
}

static int in_range(int64_t t) { return t >= DT_TS_MIN && t <= DT_TS_MAX; }

/* YYYY-MM-DD[(T|t| )hh:mm[:ss[(.|,)fraction]][Z|z|(+|-)hh[[:]mm]]] */
static int parse_iso(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int64_t y = digits(s, n, &i, 4);
  if (y < 0 || i >= n || s[i++] != '-') return DT_TS_BAD;
  int64_t mo = digits(s, n, &i, 2);
  if (mo < 1 || mo > 12 || i >= n || s[i++] != '-') return DT_TS_BAD;
  int64_t d = digits(s, n, &i, 2);
  if (d < 1 || d > days_in_month(y, (int)mo)) return DT_TS_BAD;
  if (y == 0) return DT_TS_RANGE; /* year 0000 is before DT_TS_MIN */
  int64_t t = days_from_civil(y, (int)mo, (int)d) * 86400;
  if (i == n) {
    *out = t;
    return DT_TS_OK;
  }
  if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return DT_TS_BAD;
  i++;
  int64_t hh = digits(s, n, &i, 2);
  if (hh < 0 || hh > 23 || i >= n || s[i++] != ':') return DT_TS_BAD;
  int64_t mm = digits(s, n, &i, 2), ss = 0;
  if (mm < 0 || mm > 59) return DT_TS_BAD;
  if (i < n && s[i] == ':') {
    i++;
    ss = digits(s, n, &i, 2);
    if (ss < 0 || ss > 60) return DT_TS_BAD;     /* 60: a leap second */
    if (i < n && (s[i] == '.' || s[i] == ',')) { /* a fraction: truncated to the second */
      size_t start = ++i;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
      if (i == start) return DT_TS_BAD;
    }
  }
  t += hh * 3600 + mm * 60 + ss;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i++] == '-' ? -1 : 1;
    int64_t oh = digits(s, n, &i, 2), om = 0;
    if (oh < 0 || oh > 23) return DT_TS_BAD;
    if (i < n && s[i] == ':') i++;
    if (i < n) {
      om = digits(s, n, &i, 2);
      if (om < 0 || om > 59) return DT_TS_BAD;
    }
    t -= sign * (oh * 3600 + om * 60); /* local time minus its offset is UTC */
  }
  if (i != n) return DT_TS_BAD;
  if (!in_range(t)) return DT_TS_RANGE;
  *out = t;
  return DT_TS_OK;
}

int dt_parse_timestamp(const char *s, size_t n, int64_t *out) {
  if (n == 0) return DT_TS_BAD;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == n) return DT_TS_BAD;
  int all_digits = 1;
  for (size_t k = i; k < n; k++) all_digits &= s[k] >= '0' && s[k] <= '9';
  if (!all_digits) return parse_iso(s, n, out);
  /* an integer: unix seconds; anything past 19 digits is out of range */
  int64_t v = 0;
  for (size_t k = i; k < n; k++) {
    if (v > (INT64_MAX - 9) / 10) return DT_TS_RANGE;
    v = v * 10 + (s[k] - '0');
  }
  if (s[0] == '-') v = -v;
  if (!in_range(v)) return DT_TS_RANGE;
  *out = v;
  return DT_TS_OK;
}
