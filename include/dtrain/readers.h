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
  int64_t n;    /* strings held */
  int64_t *off; /* [n] offset of string i in `bytes` (NUL-terminated) */
  int64_t off_cap;
  char *bytes;
  int64_t bytes_len, bytes_cap;
  int64_t *slots;  /* open-addressing hash table: index + 1, 0 = empty */
  int64_t n_slots; /* a power of two */
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
  int64_t *ts; /* unix seconds */
  /* Per-row text (Amazon review summaries), kept only when asked for: the
   * item text of MODEL.md step 7 when no metadata is given. */
  int has_text;
  int64_t *text_off; /* [n] offset into `text`, -1 = none */
  char *text;
  int64_t text_len, text_cap;
  /* counts of the read */
  int64_t read;    /* valid rows read (before the rating filter) */
  int64_t skipped; /* malformed rows skipped (on_error = skip) */
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
  double min_rating; /* keep rows with rating >= this (Amazon `overall`, delimited `rating`) */
  int skip_bad;      /* 1: skip and count malformed lines; 0: fail on the first */
  int keep_text;     /* Amazon reviews: keep `summary` per row */
  int progress;      /* print progress lines (long reads) */
  int max_warnings;  /* malformed lines logged individually under skip (0 = 5) */
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

/* The end of an item-text reader (dt_read_amazon_meta, dt_read_item_file):
 * on rc != DT_OK frees text[0..n) and returns rc; else fills the items
 * without text with "", hands text and found out (found_out may be NULL)
 * and returns DT_OK. */
int dt_item_texts_finish(int rc, char **text, int64_t n, int64_t found, char ***text_out, int64_t *found_out);

/* ---- Timestamps ---------------------------------------------------------------------- */

/* The timestamps dtrain accepts: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z
 * in unix seconds. Anything outside (INT64_MIN, say) is a bad input line. */
#define DT_TS_MIN INT64_C(-62135596800)
#define DT_TS_MAX INT64_C(253402300799)
enum { DT_TS_BAD = 0, DT_TS_OK = 1, DT_TS_RANGE = -1 };

/* Parses s[0..n) as unix seconds: an integer (optional sign), or an
 * ISO-8601 date or date and time in the extended format:
 * "2024-03-01", "2024-03-01T12:00:00Z", "2024-03-01T13:00:00+01:00",
 * "2024-03-01 12:00" (a space for the T; no zone = UTC; a fraction of a
 * second is dropped; offsets as +hh, +hhmm or +hh:mm). Returns DT_TS_OK
 * (*out set), DT_TS_BAD (not a timestamp) or DT_TS_RANGE (outside
 * DT_TS_MIN..DT_TS_MAX). */
int dt_parse_timestamp(const char *s, size_t n, int64_t *out);

/* ---- Delimited text ------------------------------------------------------------------ */

enum { DT_COL_SKIP = 0, DT_COL_USER, DT_COL_ITEM, DT_COL_TIMESTAMP, DT_COL_RATING };
enum { DT_DELIM_AUTO = 0 };
enum { DT_HEADER_AUTO = -1, DT_HEADER_NO = 0, DT_HEADER_YES = 1 };

#define DT_MAX_COLUMNS 64

typedef struct {
  int n_columns;
  int column[DT_MAX_COLUMNS]; /* DT_COL_* of each field */
  char delimiter;             /* the byte between fields, or DT_DELIM_AUTO: the first line decides (a tab,
                                 else a comma, else ';', else '|'; a comma when it has none) */
  int header;                 /* DT_HEADER_*; auto: a first line whose timestamp is not a timestamp */
} dt_delimited_format;

/* Parses data.columns ("user,item,rating,timestamp"; "skip" ignores a
 * field), data.delimiter (auto, comma, tab, semicolon, pipe, space, or any
 * one character other than a quote, a line break or NUL) and data.header
 * (auto|yes|no). An unknown or repeated column name, a missing
 * user/item/timestamp or a bad delimiter fails with DT_EXIT_USAGE naming
 * the key. */
int dt_delimited_format_parse(const char *columns, const char *delimiter, const char *header, dt_delimited_format *fmt);
/* Just the data.delimiter part: the byte, or DT_DELIM_AUTO. */
int dt_delimiter_parse(const char *delimiter, char *out);

/* Reads `user<d>item<d>timestamp[<d>rating]` records in fmt's column
 * order. Fields follow RFC 4180: a field in double quotes may hold the
 * delimiter, line breaks (the record then spans lines; errors name its
 * first line) and doubled quotes ("" for "); spaces around a field are
 * dropped (with the space delimiter, runs of spaces separate fields).
 * Timestamps as dt_parse_timestamp reads them. A record must have exactly
 * fmt->n_columns fields. `sum` may be NULL. */
int dt_read_delimited(const dt_input *in, const dt_delimited_format *fmt, const dt_read_opts *opts,
                      dt_interactions *out, dt_source_sum *sum);

/* Reads an item file (data.items): delimited records, quoted as above,
 * starting with a header line that names the columns `item` and `text`
 * and optionally `category` and `brand` (any order, any case; other
 * columns are ignored). The text of an item is text, category and brand
 * joined by single spaces. As with the metadata reader, rows of items not
 * in `items` are checked but not kept, the first row of a repeated item
 * wins, and text[i] is "" for an item without a row. `delimiter` is a byte
 * or DT_DELIM_AUTO (decided by the header line). *text is allocated here
 * ([items->n] strings); `found`, `sum` may be NULL. */
int dt_read_item_file(const dt_input *in, char delimiter, const dt_read_opts *opts, const dt_strtab *items,
                      char ***text, int64_t *found, dt_source_sum *sum);

#endif
