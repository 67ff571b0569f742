/* readers.h: streaming readers of raw interaction logs (MODEL.md section 2).
 *
 * Three inputs feed one table of interactions (dt_interactions): Amazon
 * Reviews 2018 JSON lines, delimited text, and the synthetic generator
 * (synth.h). Readers stream: a file is decompressed and parsed a chunk and a
 * line at a time, and only the kept fields of kept rows are stored (string
 * ids interned once), so memory follows the kept data, not the file size.
 *
 * Input may be plain or gzip (detected by its magic bytes, not its name;
 * concatenated gzip members are read as one stream). A file or an in-memory
 * buffer (tests, fuzzing) is read the same way.
 *
 * Bad input. Every problem is reported as "FILE:LINE: what is wrong". With
 * skip_bad = 0 (data.on_error = "fail") the first one fails the read with
 * DT_EXIT_DATA; with skip_bad = 1 ("skip") a malformed line is counted in
 * `skipped`, the first few are logged as warnings, and reading goes on. A
 * truncated or corrupt gzip stream ends the read: an error, or under "skip"
 * a warning (the partial last line counts as skipped). An input without a
 * single valid row is always an error.
 *
 * Ownership: dt_interactions and dt_strtab own their arrays (free with
 * dt_interactions_free / dt_strtab_free; a zeroed struct is a valid empty
 * one). Text arrays returned by the metadata reader belong to the caller:
 * free each string and the array.
 */
#ifndef DTRAIN_READERS_H
#define DTRAIN_READERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- Interned strings --------------------------------------------------------- */

/* A set of byte strings, each with a dense index in insertion order. */
typedef struct {
  int64_t n;          /* strings held */
  int64_t *off;       /* [n] offset of string i in `bytes` (NUL-terminated) */
  int64_t off_cap;
  char *bytes;
  int64_t bytes_len, bytes_cap;
  int64_t *slots;     /* open-addressing hash table: index + 1, 0 = empty */
  int64_t n_slots;    /* a power of two */
} dt_strtab;

/* Index of the string s[0..len), adding it when new. */
int64_t dt_strtab_intern(dt_strtab *t, const char *s, size_t len);
/* Index of s[0..len), or -1. */
int64_t dt_strtab_find(const dt_strtab *t, const char *s, size_t len);
/* String i; valid until the next intern (the bytes may move). */
static inline const char *dt_strtab_get(const dt_strtab *t, int64_t i) { return t->bytes + t->off[i]; }
void dt_strtab_free(dt_strtab *t);

/* ---- The interaction table ---------------------------------------------------- */

typedef struct {
  dt_strtab users, items; /* original ids; user[r] / item[r] index into these */
  int64_t n, cap;         /* rows */
  int32_t *user, *item;
  int64_t *ts;            /* unix seconds */
  /* Per-row text (Amazon review summaries), kept only when asked for: the
   * item text of MODEL.md step 7 when no metadata is given. */
  int has_text;
  int64_t *text_off;      /* [n] offset into `text`, -1 = none */
  char *text;
  int64_t text_len, text_cap;
  /* counts of the read */
  int64_t read;           /* valid rows read (before the rating filter) */
  int64_t skipped;        /* malformed rows skipped (on_error = skip) */
} dt_interactions;

/* Appends one row (ids as byte strings). `text` may be NULL. Fails with
 * DT_EXIT_DATA when the table would pass 2^31-1 users or items. */
int dt_interactions_add(dt_interactions *x, const char *user, size_t user_len, const char *item, size_t item_len,
                        int64_t ts, const char *text, size_t text_len);
void dt_interactions_free(dt_interactions *x);

/* ---- Inputs and options ----------------------------------------------------------- */

typedef struct {
  const char *name;          /* shown in messages: the path, or a label */
  const char *path;          /* file to read; NULL to read `data` */
  const unsigned char *data; /* in-memory input (tests, fuzzing) */
  size_t size;
} dt_input;

typedef struct {
  double min_rating;  /* keep rows with rating >= this (Amazon `overall`, delimited `rating`) */
  int skip_bad;       /* 1: skip and count malformed lines; 0: fail on the first */
  int keep_text;      /* Amazon reviews: keep `summary` per row */
  int progress;       /* print progress lines (long reads) */
  int max_warnings;   /* malformed lines logged individually under skip (0 = 5) */
} dt_read_opts;

/* Bytes read from a file by the last reader call on it, and their CRC-32:
 * the source checksum recorded in the prepared file. */
typedef struct {
  int64_t size;
  uint32_t crc32;
} dt_source_sum;

/* ---- Amazon Reviews 2018 ---------------------------------------------------------- */

/* Reads review lines: reviewerID (string), asin (string), overall (number),
 * unixReviewTime (integer number), summary (optional string, kept when
 * opts->keep_text). Other fields are ignored whatever their type. `sum`
 * may be NULL. */
int dt_read_amazon_reviews(const dt_input *in, const dt_read_opts *opts, dt_interactions *out, dt_source_sum *sum);

/* Reads metadata lines and builds the text of each item in `items`:
 * title, description (string or array of strings), category (array of
 * strings) and brand, joined by single spaces, in that order. The first row
 * of a repeated asin wins; rows of other items are parsed (to find bad
 * lines) but not kept. text[i] is "" for an item without metadata.
 * `*text` is allocated here ([items->n] strings); `found`, `sum` may be NULL. */
int dt_read_amazon_meta(const dt_input *in, const dt_read_opts *opts, const dt_strtab *items, char ***text,
                        int64_t *found, dt_source_sum *sum);

/* ---- Delimited text ------------------------------------------------------------------ */

enum { DT_COL_SKIP = 0, DT_COL_USER, DT_COL_ITEM, DT_COL_TIMESTAMP, DT_COL_RATING };
enum { DT_DELIM_AUTO = 0 };
enum { DT_HEADER_AUTO = -1, DT_HEADER_NO = 0, DT_HEADER_YES = 1 };

#define DT_MAX_COLUMNS 64

typedef struct {
  int n_columns;
  int column[DT_MAX_COLUMNS]; /* DT_COL_* of each field */
  char delimiter;             /* ',' or '\t', or DT_DELIM_AUTO: a tab in the first line means tab */
  int header;                 /* DT_HEADER_*; auto: a first line whose timestamp is not an integer */
} dt_delimited_format;

/* Parses data.columns ("user,item,rating,timestamp"; "skip" ignores a
 * field), data.delimiter (auto|comma|tab) and data.header (auto|yes|no).
 * An unknown or repeated column name, or a missing user/item/timestamp,
 * fails with DT_EXIT_USAGE naming the key. */
int dt_delimited_format_parse(const char *columns, const char *delimiter, const char *header,
                              dt_delimited_format *fmt);

/* Reads `user<d>item<d>timestamp[<d>rating]` lines in fmt's column order.
 * Timestamps are integer unix seconds; a row must have exactly
 * fmt->n_columns fields. `sum` may be NULL. */
int dt_read_delimited(const dt_input *in, const dt_delimited_format *fmt, const dt_read_opts *opts,
                      dt_interactions *out, dt_source_sum *sum);

#endif
