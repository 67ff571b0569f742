/* Readers: Amazon reviews and metadata JSON lines, delimited text, plain
 * and gzip (multi-member, truncated, corrupt), bad lines under on_error
 * fail and skip, empty input, files on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

/* gzip of `text` (a single member), malloc'd */
static unsigned char *gzip_bytes(const char *text, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&zs, (uLong)len) + 64;
  unsigned char *out = malloc(cap);
  zs.next_in = (Bytef *)text;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *out_len = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

static dt_input mem(const char *name, const void *data, size_t size) {
  dt_input in = {name, NULL, data, size};
  return in;
}

static const char *REVIEWS =
    "{\"overall\": 5.0, \"verified\": true, \"reviewTime\": \"06 17, 2018\", \"reviewerID\": \"U1\", \"asin\": \"I1\", "
    "\"style\": {\"Gift Amount:\": \" 50\"}, \"summary\": \"Five Stars\", \"unixReviewTime\": 1529193600}\n"
    "{\"overall\": 2.0, \"vote\": \"1,234\", \"reviewerID\": \"U2\", \"asin\": \"I1\", \"unixReviewTime\": 1529000000}\n"
    "\r\n"
    "{\"reviewerID\": \"U1\", \"asin\": \"I2\", \"overall\": 4, \"unixReviewTime\": 1400000000, \"image\": [\"x\"], "
    "\"summary\": \"ok\"}\r\n"
    "{\"reviewerID\": \"U3\", \"asin\": \"I2\", \"overall\": 3.0, \"unixReviewTime\": 1300000000}";

static void check_reviews(const dt_interactions *x) {
  assert_int_equal(x->read, 4);
  assert_int_equal(x->n, 4);
  assert_int_equal(x->users.n, 3);
  assert_int_equal(x->items.n, 2);
  assert_string_equal(dt_strtab_get(&x->users, x->user[3]), "U3");
  assert_string_equal(dt_strtab_get(&x->items, x->item[2]), "I2");
  assert_int_equal(x->ts[0], 1529193600);
  assert_int_equal(x->ts[3], 1300000000);
}

static void amazon_reviews_plain_and_gzip(void **state) {
  (void)state;
  dt_read_opts o = {0};
  o.keep_text = 1;
  dt_interactions x = {0};
  dt_input in = mem("reviews.json", REVIEWS, strlen(REVIEWS));
  dt_source_sum sum;
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, &sum), DT_OK);
  check_reviews(&x);
  assert_int_equal(sum.size, (int64_t)strlen(REVIEWS));
  assert_int_equal(sum.crc32, (uint32_t)crc32(crc32(0, NULL, 0), (const Bytef *)REVIEWS, (uInt)strlen(REVIEWS)));
  assert_true(x.has_text);
  assert_string_equal(x.text + x.text_off[0], "Five Stars");
  assert_int_equal(x.text_off[1], -1);
  dt_interactions_free(&x);

  size_t gl;
  unsigned char *gz = gzip_bytes(REVIEWS, strlen(REVIEWS), &gl);
  in = mem("reviews.json.gz", gz, gl);
  o.keep_text = 0;
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, &sum), DT_OK);
  check_reviews(&x);
  assert_false(x.has_text);
  assert_int_equal(sum.size, (int64_t)gl);
  dt_interactions_free(&x);

  /* two concatenated gzip members are one stream */
  size_t half = strlen(REVIEWS) / 2;
  while (REVIEWS[half] != '\n') half++;
  size_t l1, l2;
  unsigned char *g1 = gzip_bytes(REVIEWS, half + 1, &l1),
                *g2 = gzip_bytes(REVIEWS + half + 1, strlen(REVIEWS) - half - 1, &l2);
  unsigned char *both = malloc(l1 + l2);
  memcpy(both, g1, l1);
  memcpy(both + l1, g2, l2);
  in = mem("two.gz", both, l1 + l2);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  check_reviews(&x);
  dt_interactions_free(&x);
  free(g1);
  free(g2);
  free(both);
  free(gz);
}

static void amazon_reviews_rating_filter(void **state) {
  (void)state;
  dt_read_opts o = {0};
  o.min_rating = 4.0;
  dt_interactions x = {0};
  dt_input in = mem("r", REVIEWS, strlen(REVIEWS));
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  assert_int_equal(x.read, 4);
  assert_int_equal(x.n, 2); /* 5.0 and 4 */
  dt_interactions_free(&x);
}

/* A bad line: fail names file:line, skip counts it. */
static void bad_review_line(const char *text, int line, const char *what) {
  dt_read_opts o = {0};
  dt_interactions x = {0};
  dt_input in = mem("bad.json", text, strlen(text));
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  char where[64];
  snprintf(where, sizeof where, "bad.json:%d: ", line);
  if (!strstr(dt_error_message(), where) || !strstr(dt_error_message(), what)) {
    print_error("message '%s' lacks '%s' / '%s'\n", dt_error_message(), where, what);
    fail();
  }
  dt_interactions_free(&x);
  o.skip_bad = 1;
  memset(&x, 0, sizeof x);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  assert_int_equal(x.skipped, 1);
  assert_int_equal(x.n, 1);
  dt_interactions_free(&x);
}

static void amazon_reviews_bad_lines(void **state) {
  (void)state;
  const char *good = "{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1}\n";
  char buf[512];
  struct {
    const char *line, *what;
  } cases[] = {
      {"{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": 5.0", "invalid JSON"},
      {"{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": \"5.0\", \"unixReviewTime\": 1}",
       "\"overall\" must be a number"},
      {"{\"reviewerID\": 7, \"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1}",
       "\"reviewerID\" must be a string"},
      {"{\"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1}", "\"reviewerID\" is missing"},
      {"{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1.5}", "whole number"},
      {"[1, 2]", "one JSON object"},
      {"{\"reviewerID\": \"U\", \"asin\": \"\", \"overall\": 5.0, \"unixReviewTime\": 1}", "\"asin\" is empty"},
      {"{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1} x", "unexpected text"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    snprintf(buf, sizeof buf, "%s%s\n", good, cases[k].line);
    bad_review_line(buf, 2, cases[k].what);
  }
}

/* A NUL inside an id cut it short ("AZ5C65G10R6W6" became user "AZ5C"),
 * and a time far outside any calendar was taken: both are bad lines now,
 * named FILE:LINE. */
static void amazon_nul_and_out_of_range_time_fail(void **state) {
  (void)state;
  const char good[] = "{\"reviewerID\": \"U\", \"asin\": \"I\", \"overall\": 5.0, \"unixReviewTime\": 1}\n";
  const char raw_nul[] =
      "{\"reviewerID\": \"AZ5C\0"
      "65G10R6W6\", \"asin\": \"I\", \"overall\": 5.0, "
      "\"unixReviewTime\": 1}\n";
  const char esc_nul[] =
      "{\"reviewerID\": \"AZ5C\\u000065G10R6W6\", \"asin\": \"I\", \"overall\": 5.0, "
      "\"unixReviewTime\": 1}\n";
  const char not_esc[] =
      "{\"reviewerID\": \"AZ5C\\\\u0000\", \"asin\": \"I\", \"overall\": 5.0, "
      "\"unixReviewTime\": 1}\n"; /* an escaped backslash, then "u0000": no NUL */
  const char far[] =
      "{\"reviewerID\": \"U2\", \"asin\": \"I\", \"overall\": 5.0, "
      "\"unixReviewTime\": -9007199254740000}\n";
  struct {
    const char *text;
    size_t len;
    const char *what;
  } cases[] = {{raw_nul, sizeof raw_nul - 1, "NUL byte"},
               {esc_nul, sizeof esc_nul - 1, "NUL character (\\u0000)"},
               {far, sizeof far - 1, "out of range"}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t n = strlen(good) + cases[k].len;
    char *text = malloc(n);
    memcpy(text, good, strlen(good));
    memcpy(text + strlen(good), cases[k].text, cases[k].len);
    dt_read_opts o = {0};
    dt_interactions x = {0};
    dt_input in = mem("nul.json", text, n);
    assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
    if (!strstr(dt_error_message(), "nul.json:2: ") || !strstr(dt_error_message(), cases[k].what)) {
      print_error("case %zu: message '%s' lacks 'nul.json:2: ' / '%s'\n", k, dt_error_message(), cases[k].what);
      fail();
    }
    dt_interactions_free(&x);
    free(text);
  }
  dt_read_opts o = {0};
  dt_interactions x = {0};
  dt_input in = mem("ok.json", not_esc, sizeof not_esc - 1);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  assert_string_equal(dt_strtab_get(&x.users, 0), "AZ5C\\u0000");
  dt_interactions_free(&x);
}

static void empty_input_is_an_error(void **state) {
  (void)state;
  dt_read_opts o = {0};
  o.skip_bad = 1; /* even under skip */
  dt_interactions x = {0};
  dt_input in = mem("empty.json", "", 0);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "empty.json"));
  assert_non_null(strstr(dt_error_message(), "empty"));
  dt_interactions_free(&x);
  in = mem("blank.json", "\n  \n", 4);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  dt_interactions_free(&x);
  size_t gl;
  unsigned char *gz = gzip_bytes("", 0, &gl);
  in = mem("empty.json.gz", gz, gl);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  dt_interactions_free(&x);
  free(gz);
}

static void truncated_and_corrupt_gzip(void **state) {
  (void)state;
  size_t gl;
  unsigned char *gz = gzip_bytes(REVIEWS, strlen(REVIEWS), &gl);
  dt_read_opts o = {0};
  dt_interactions x = {0};
  /* cut the stream: fail names the file and a line */
  dt_input in = mem("cut.json.gz", gz, gl - 12);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "cut.json.gz:"));
  assert_non_null(strstr(dt_error_message(), "truncated"));
  dt_interactions_free(&x);
  /* under skip: the complete lines before the cut are used */
  o.skip_bad = 1;
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  assert_true(x.n >= 3 && x.n <= 4);
  dt_interactions_free(&x);
  /* cut in the header: nothing usable */
  in = mem("cut.json.gz", gz, 5);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  dt_interactions_free(&x);
  /* corrupt deflate data */
  o.skip_bad = 0;
  unsigned char *bad = malloc(gl);
  memcpy(bad, gz, gl);
  for (size_t k = 12; k < 40 && k < gl; k++) bad[k] ^= 0x5a;
  in = mem("corrupt.json.gz", bad, gl);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "corrupt.json.gz:"));
  dt_interactions_free(&x);
  /* bytes after the stream that are not another member */
  unsigned char *tail = malloc(gl + 3);
  memcpy(tail, gz, gl);
  memcpy(tail + gl, "xyz", 3);
  in = mem("tail.json.gz", tail, gl + 3);
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "after the end of the gzip stream"));
  dt_interactions_free(&x);
  /* under skip: every line is whole (the last one has no newline but is complete) */
  o.skip_bad = 1;
  assert_int_equal(dt_read_amazon_reviews(&in, &o, &x, NULL), DT_OK);
  assert_int_equal(x.n, 4);
  assert_int_equal(x.skipped, 0);
  dt_interactions_free(&x);
  o.skip_bad = 0;
  free(tail);
  free(bad);
  free(gz);
}

static void amazon_meta_both_releases_first_asin_wins(void **state) {
  (void)state;
  const char *meta =
      "{\"category\": [\"Gift Cards\", \"Restaurants\"], \"description\": [\"Good food.\", \"Any day\"], \"title\": "
      "\"Diner $50\", \"image\": [], \"brand\": \"Diner\", \"asin\": \"I1\"}\n"
      "{\"asin\": \"I9\", \"title\": \"not asked for\"}\n"
      "{\"title\": \"Spa\", \"description\": \"Relax\", \"imageURL\": [\"u\"], \"imageURLHighRes\": [], \"asin\": "
      "\"I2\", \"brand\": null}\n"
      "{\"title\": \"Diner again\", \"asin\": \"I1\"}\n";
  dt_strtab items = {0};
  dt_strtab_intern(&items, "I1", 2);
  dt_strtab_intern(&items, "I2", 2);
  dt_strtab_intern(&items, "I3", 2);
  dt_read_opts o = {0};
  char **text = NULL;
  int64_t found = 0;
  dt_input in = mem("meta.json", meta, strlen(meta));
  assert_int_equal(dt_read_amazon_meta(&in, &o, &items, &text, &found, NULL), DT_OK);
  assert_int_equal(found, 2);
  assert_string_equal(text[0], "Diner $50 Good food. Any day Gift Cards Restaurants Diner");
  assert_string_equal(text[1], "Spa Relax");
  assert_string_equal(text[2], "");
  for (int i = 0; i < 3; i++) free(text[i]);
  free(text);
  /* a wrong type in a text field is a bad line */
  const char *bad = "{\"asin\": \"I1\", \"category\": \"Gift Cards\"}\n{\"asin\": \"I2\"}\n";
  in = mem("meta.json", bad, strlen(bad));
  assert_int_equal(dt_read_amazon_meta(&in, &o, &items, &text, &found, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "meta.json:1:"));
  assert_non_null(strstr(dt_error_message(), "\"category\""));
  o.skip_bad = 1;
  assert_int_equal(dt_read_amazon_meta(&in, &o, &items, &text, &found, NULL), DT_OK);
  assert_int_equal(found, 1);
  for (int i = 0; i < 3; i++) free(text[i]);
  free(text);
  dt_strtab_free(&items);
}

static int read_delim(const char *text, const char *columns, const char *delim, const char *header, int skip,
                      dt_interactions *x) {
  dt_delimited_format f;
  int rc = dt_delimited_format_parse(columns, delim, header, &f);
  if (rc != DT_OK) return rc;
  dt_read_opts o = {0};
  o.skip_bad = skip;
  memset(x, 0, sizeof *x);
  dt_input in = mem("data.csv", text, strlen(text));
  return dt_read_delimited(&in, &f, &o, x, NULL);
}

static void delimited_with_and_without_header(void **state) {
  (void)state;
  dt_interactions x;
  /* MovieLens u.data layout: user item rating timestamp, tab */
  const char *udata = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n";
  assert_int_equal(read_delim(udata, "user,item,rating,timestamp", "tab", "no", 0, &x), DT_OK);
  assert_int_equal(x.n, 3);
  assert_string_equal(dt_strtab_get(&x.users, x.user[2]), "22");
  assert_string_equal(dt_strtab_get(&x.items, x.item[1]), "302");
  assert_int_equal(x.ts[0], 881250949);
  dt_interactions_free(&x);
  /* auto delimiter and auto header */
  assert_int_equal(read_delim(udata, "user,item,rating,timestamp", "auto", "auto", 0, &x), DT_OK);
  assert_int_equal(x.n, 3);
  dt_interactions_free(&x);
  const char *csv = "user_id,item_id,ts\r\nu1, i1 ,100\r\nu2,i1,200\r\n\r\n";
  assert_int_equal(read_delim(csv, "user,item,timestamp", "auto", "auto", 0, &x), DT_OK);
  assert_int_equal(x.n, 2);
  assert_string_equal(dt_strtab_get(&x.items, x.item[0]), "i1"); /* spaces trimmed */
  dt_interactions_free(&x);
  assert_int_equal(read_delim(csv, "user,item,timestamp", "comma", "yes", 0, &x), DT_OK);
  assert_int_equal(x.n, 2);
  dt_interactions_free(&x);
  /* header = no: the header line is a bad line */
  assert_int_equal(read_delim(csv, "user,item,timestamp", "comma", "no", 0, &x), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "data.csv:1:"));
  dt_interactions_free(&x);
  /* skip columns, rating filter */
  const char *five = "x,u1,i1,4.5,10\nx,u2,i2,1.0,20\n";
  dt_delimited_format f;
  assert_int_equal(dt_delimited_format_parse("skip,user,item,rating,timestamp", "comma", "no", &f), DT_OK);
  dt_read_opts o = {0};
  o.min_rating = 3.0;
  memset(&x, 0, sizeof x);
  dt_input in = mem("five.csv", five, strlen(five));
  assert_int_equal(dt_read_delimited(&in, &f, &o, &x, NULL), DT_OK);
  assert_int_equal(x.read, 2);
  assert_int_equal(x.n, 1);
  dt_interactions_free(&x);
}

static void delimited_gzip_file_on_disk(void **state) {
  (void)state;
  char path[] = "/tmp/dtrain_test_delimXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  const char *text = "u1,i1,1\nu1,i2,2\nu2,i1,3";
  assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
  assert_int_equal(gzclose(g), Z_OK);
  dt_delimited_format f;
  assert_int_equal(dt_delimited_format_parse("user,item,timestamp", "auto", "auto", &f), DT_OK);
  dt_read_opts o = {0};
  dt_interactions x = {0};
  dt_input in = {path, path, NULL, 0};
  dt_source_sum sum;
  assert_int_equal(dt_read_delimited(&in, &f, &o, &x, &sum), DT_OK);
  assert_int_equal(x.n, 3); /* the last line has no newline */
  FILE *fp = fopen(path, "rb");
  fseek(fp, 0, SEEK_END);
  assert_int_equal(sum.size, ftell(fp));
  fclose(fp);
  dt_interactions_free(&x);
  unlink(path);
  /* a missing file */
  dt_input none = {"/nonexistent/x.csv", "/nonexistent/x.csv", NULL, 0};
  assert_int_equal(dt_read_delimited(&none, &f, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "/nonexistent/x.csv"));
  dt_interactions_free(&x);
}

static void delimited_bad_lines(void **state) {
  (void)state;
  dt_interactions x;
  const char *cases[][2] = {
      {"u1,i1,100\nu2,i2\n", "expected 3 comma-separated fields"},
      {"u1,i1,100\nu2,i2,12x\n", "field 3 (timestamp) must be unix seconds (an integer) or an ISO-8601 time"},
      {"u1,i1,100\n,i2,5\n", "field 1 (user) must be a non-empty id"},
      {"u1,i1,100\nu2,i2,99999999999999999999999\n", "is out of range"},
      /* INT64_MIN was accepted (UBSan then saw a negation overflow in batch.c) */
      {"u1,i1,100\nu2,i2,-9223372036854775808\n", "\"-9223372036854775808\" is out of range"},
      {"u1,i1,100\nu2,i2,253402300800\n", "is out of range"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    assert_int_equal(read_delim(cases[k][0], "user,item,timestamp", "comma", "no", 0, &x), DT_EXIT_DATA);
    assert_non_null(strstr(dt_error_message(), "data.csv:2:"));
    assert_non_null(strstr(dt_error_message(), cases[k][1]));
    dt_interactions_free(&x);
    assert_int_equal(read_delim(cases[k][0], "user,item,timestamp", "comma", "no", 1, &x), DT_OK);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.skipped, 1);
    dt_interactions_free(&x);
  }
  /* a NUL byte */
  const char nul[] = "u1,i1,100\nu2,i\0,5\n";
  dt_delimited_format f;
  assert_int_equal(dt_delimited_format_parse("user,item,timestamp", "comma", "no", &f), DT_OK);
  dt_read_opts o = {0};
  memset(&x, 0, sizeof x);
  dt_input in = mem("nul.csv", nul, sizeof nul - 1);
  assert_int_equal(dt_read_delimited(&in, &f, &o, &x, NULL), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "nul.csv:2:"));
  dt_interactions_free(&x);
}

static void delimited_unknown_column_is_a_config_error(void **state) {
  (void)state;
  dt_delimited_format f;
  assert_int_equal(dt_delimited_format_parse("user,item,time", "comma", "no", &f), DT_EXIT_USAGE);
  assert_non_null(strstr(dt_error_message(), "data.columns"));
  assert_non_null(strstr(dt_error_message(), "unknown column \"time\""));
  assert_int_equal(dt_delimited_format_parse("user,item", "comma", "no", &f), DT_EXIT_USAGE);
  assert_int_equal(dt_delimited_format_parse("user,item,timestamp,user", "comma", "no", &f), DT_EXIT_USAGE);
  assert_int_equal(dt_delimited_format_parse("user, item ,timestamp", "ab", "no", &f), DT_EXIT_USAGE);
  assert_non_null(strstr(dt_error_message(), "data.delimiter"));
  assert_int_equal(dt_delimited_format_parse("user, item ,timestamp", "\"", "no", &f), DT_EXIT_USAGE);
  assert_int_equal(dt_delimited_format_parse("user, item ,timestamp", "semicolon", "no", &f), DT_OK);
  assert_int_equal(f.delimiter, ';');
  assert_int_equal(dt_delimited_format_parse("user, item ,timestamp", "#", "no", &f), DT_OK);
  assert_int_equal(f.delimiter, '#');
  assert_int_equal(dt_delimited_format_parse("user, item ,timestamp", "tab", "yes", &f), DT_OK);
  assert_int_equal(f.n_columns, 3);
  assert_int_equal(f.delimiter, '\t');
}

static void strtab_interns_many(void **state) {
  (void)state;
  dt_strtab t = {0};
  char buf[32];
  for (int i = 0; i < 100000; i++) {
    int n = snprintf(buf, sizeof buf, "id%d", i);
    assert_int_equal(dt_strtab_intern(&t, buf, (size_t)n), i);
  }
  for (int i = 0; i < 100000; i += 997) {
    int n = snprintf(buf, sizeof buf, "id%d", i);
    assert_int_equal(dt_strtab_find(&t, buf, (size_t)n), i);
    assert_string_equal(dt_strtab_get(&t, i), buf);
  }
  assert_int_equal(dt_strtab_find(&t, "id", 2), -1);
  assert_int_equal(dt_strtab_intern(&t, "", 0), 100000); /* the empty string is a string */
  dt_strtab_free(&t);
}

int main(void) {
  dt_log_set_level(DT_LOG_ERROR); /* skip-mode warnings are expected here */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(amazon_reviews_plain_and_gzip),
      cmocka_unit_test(amazon_reviews_rating_filter),
      cmocka_unit_test(amazon_reviews_bad_lines),
      cmocka_unit_test(amazon_nul_and_out_of_range_time_fail),
      cmocka_unit_test(empty_input_is_an_error),
      cmocka_unit_test(truncated_and_corrupt_gzip),
      cmocka_unit_test(amazon_meta_both_releases_first_asin_wins),
      cmocka_unit_test(delimited_with_and_without_header),
      cmocka_unit_test(delimited_gzip_file_on_disk),
      cmocka_unit_test(delimited_bad_lines),
      cmocka_unit_test(delimited_unknown_column_is_a_config_error),
      cmocka_unit_test(strtab_interns_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
