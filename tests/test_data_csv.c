/* Delimited input as users bring it: timestamps (unix seconds and
 * ISO-8601 with offsets, the accepted range), RFC 4180 quoting (delimiters,
 * doubled quotes and line breaks inside fields, errors at the record's
 * first line), any one-character delimiter, and the item file (data.items)
 * with its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

static dt_input mem(const char *name, const char *text) {
  dt_input in = {name, NULL, (const unsigned char *)text, strlen(text)};
  return in;
}

static int64_t ts_ok(const char *s) {
  int64_t t = 0;
  if (dt_parse_timestamp(s, strlen(s), &t) != DT_TS_OK) {
    print_error("'%s' was not read as a timestamp\n", s);
    fail();
  }
  return t;
}

static int ts_status(const char *s) {
  int64_t t = 0;
  return dt_parse_timestamp(s, strlen(s), &t);
}

static void timestamps_unix_and_iso8601(void **state) {
  (void)state;
  assert_int_equal(ts_ok("1709294400"), 1709294400);
  assert_int_equal(ts_ok("-1"), -1);
  assert_int_equal(ts_ok("+5"), 5);
  assert_int_equal(ts_ok("2024-03-01T12:00:00Z"), 1709294400);
  assert_int_equal(ts_ok("2024-03-01t12:00:00z"), 1709294400);
  assert_int_equal(ts_ok("2024-03-01T13:00:00+01:00"), 1709294400);
  assert_int_equal(ts_ok("2024-03-01T07:00:00-0500"), 1709294400);
  assert_int_equal(ts_ok("2024-03-01T13:00+01"), 1709294400);
  assert_int_equal(ts_ok("2024-03-01T12:00:00.999Z"), 1709294400); /* the fraction is dropped */
  assert_int_equal(ts_ok("2024-03-01 12:00:00"), 1709294400);      /* no zone: UTC */
  assert_int_equal(ts_ok("2024-03-01"), 1709251200);
  assert_int_equal(ts_ok("2000-02-29"), 951782400);
  assert_int_equal(ts_ok("1969-12-31T23:59:59Z"), -1);
  assert_int_equal(ts_ok("0001-01-01T00:00:00Z"), DT_TS_MIN);
  assert_int_equal(ts_ok("9999-12-31T23:59:59Z"), DT_TS_MAX);
  const char *bad[] = {"",
                       "-",
                       "12a",
                       "2024-3-01",
                       "2024-13-01",
                       "2023-02-29",
                       "1900-02-29",
                       "2024-03-01Z",
                       "2024-03-01T25:00:00Z",
                       "2024-03-01T12",
                       "2024-03-01T12:00:00X",
                       "2024-03-01T12:00:00+1",
                       "2024-03-01T12:00:00.Z",
                       "1.5"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    if (ts_status(bad[k]) != DT_TS_BAD) {
      print_error("'%s' should not be a timestamp\n", bad[k]);
      fail();
    }
  /* outside 0001..9999, INT64_MIN among them */
  const char *far[] = {"-9223372036854775808", "9223372036854775807", "99999999999999999999",     "253402300800",
                       "-62135596801",         "0000-12-31",          "0001-01-01T00:00:00+00:01"};
  for (size_t k = 0; k < sizeof far / sizeof far[0]; k++)
    if (ts_status(far[k]) != DT_TS_RANGE) {
      print_error("'%s' should be out of range\n", far[k]);
      fail();
    }
}

static int read_csv(const char *text, const char *columns, const char *delim, int skip, dt_interactions *x) {
  dt_delimited_format f;
  int rc = dt_delimited_format_parse(columns, delim, "auto", &f);
  if (rc != DT_OK) return rc;
  dt_read_opts o = {0};
  o.skip_bad = skip;
  memset(x, 0, sizeof *x);
  dt_input in = mem("q.csv", text);
  return dt_read_delimited(&in, &f, &o, x, NULL);
}

static void quoted_fields_per_rfc4180(void **state) {
  (void)state;
  dt_interactions x;
  const char *csv =
      "user,item,time\n"
      "\"u,1\",\"the \"\"best\"\" item\",2024-03-01T12:00:00Z\n"
      "  \"u2\"  , i2 ,1709294400\n"
      "u3,\"two\nlines\",5\n" /* a line break inside a field: the record spans lines 4-5 */
      "u4,ab\"c,6\n";         /* a quote inside an unquoted field is kept */
  assert_int_equal(read_csv(csv, "user,item,timestamp", "auto", 0, &x), DT_OK);
  assert_int_equal(x.n, 4);
  assert_string_equal(dt_strtab_get(&x.users, x.user[0]), "u,1");
  assert_string_equal(dt_strtab_get(&x.items, x.item[0]), "the \"best\" item");
  assert_int_equal(x.ts[0], 1709294400);
  assert_string_equal(dt_strtab_get(&x.users, x.user[1]), "u2");
  assert_string_equal(dt_strtab_get(&x.items, x.item[1]), "i2");
  assert_string_equal(dt_strtab_get(&x.items, x.item[2]), "two\nlines");
  assert_string_equal(dt_strtab_get(&x.items, x.item[3]), "ab\"c");
  dt_interactions_free(&x);
  /* an empty quoted field is an empty id */
  assert_int_equal(read_csv("u1,i1,1\n\"\",i2,2\n", "user,item,timestamp", "comma", 0, &x), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "q.csv:2: field 1 (user) must be a non-empty id"));
  dt_interactions_free(&x);
}

/* A bad record is named by its first line; reading goes on after it under skip. */
static void quoting_errors_name_the_first_line(void **state) {
  (void)state;
  dt_interactions x;
  struct {
    const char *text, *where, *what;
    int64_t kept;
  } cases[] = {
      {"u1,i1,1\nu2,\"i2\" x,2\nu3,i3,3\n", "q.csv:2:", "text after its closing quote", 2},
      {"u1,\"a\nb\",1\nu2,i2,2x\nu3,i3,3\n", "q.csv:3:", "field 3 (timestamp)", 2},
      {"u1,i1,1\nu2,\"never closed,2\nu3,i3,3\n", "q.csv:2:", "is never closed", 1},
      {"u1,i1,1\nu2,i2,-9223372036854775808\n", "q.csv:2:", "out of range", 1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    assert_int_equal(read_csv(cases[k].text, "user,item,timestamp", "comma", 0, &x), DT_EXIT_DATA);
    if (!strstr(dt_error_message(), cases[k].where) || !strstr(dt_error_message(), cases[k].what)) {
      print_error("case %zu: '%s' lacks '%s' / '%s'\n", k, dt_error_message(), cases[k].where, cases[k].what);
      fail();
    }
    dt_interactions_free(&x);
    assert_int_equal(read_csv(cases[k].text, "user,item,timestamp", "comma", 1, &x), DT_OK);
    assert_int_equal(x.n, cases[k].kept);
    assert_int_equal(x.skipped, 1);
    dt_interactions_free(&x);
  }
}

static void any_one_character_delimiter(void **state) {
  (void)state;
  dt_interactions x;
  struct {
    const char *text, *delim;
  } cases[] = {
      {"u1;i1;1\nu2;\"i;2\";2\n", "semicolon"},    {"u1;i1;1\nu2;\"i;2\";2\n", "auto"},
      {"u1|i1|1\nu2|\"i;2\"|2\n", "pipe"},         {"u1|i1|1\nu2|\"i;2\"|2\n", "auto"},
      {"u1 i1  1\n  u2   \"i;2\" 2  \n", "space"}, {"u1#i1#1\nu2#\"i;2\"#2\n", "#"},
      {"u1\ti1\t1\nu2\t\"i;2\"\t2\n", "tab"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    if (read_csv(cases[k].text, "user,item,timestamp", cases[k].delim, 0, &x) != DT_OK) {
      print_error("case %zu (%s): %s\n", k, cases[k].delim, dt_error_message());
      fail();
    }
    assert_int_equal(x.n, 2);
    assert_string_equal(dt_strtab_get(&x.items, x.item[1]), "i;2");
    assert_int_equal(x.ts[1], 2);
    dt_interactions_free(&x);
  }
  /* the wrong delimiter: named in the message */
  assert_int_equal(read_csv("u1;i1;1\n", "user,item,timestamp", "comma", 0, &x), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "expected 3 comma-separated fields"));
  dt_interactions_free(&x);
  char d;
  assert_int_equal(dt_delimiter_parse("ab", &d), DT_EXIT_USAGE);
  assert_int_equal(dt_delimiter_parse("\n", &d), DT_EXIT_USAGE);
  assert_int_equal(dt_delimiter_parse(":", &d), DT_OK);
  assert_int_equal(d, ':');
}

static int read_items(const char *text, const char *name, char delim, dt_strtab *items, char ***t, int64_t *found) {
  dt_read_opts o = {0};
  dt_input in = mem(name, text);
  return dt_read_item_file(&in, delim, &o, items, t, found, NULL);
}

static void item_file_with_header(void **state) {
  (void)state;
  dt_strtab items = {0};
  dt_strtab_intern(&items, "i1", 2);
  dt_strtab_intern(&items, "i2", 2);
  dt_strtab_intern(&items, "i3", 2);
  char **t = NULL;
  int64_t found = 0;
  const char *csv =
      "Brand,ITEM,price,text,category\n"
      "Acme,i2,3.50,\"A kettle, \"\"steel\"\"\",Kitchen > Kettles\n"
      "Bolt,i9,1.00,not in the data,Tools\n"
      ",i1,2,\"two\nlines\",\n"
      "Acme,i2,3.50,a repeated row loses,Kitchen\n";
  assert_int_equal(read_items(csv, "items.csv", DT_DELIM_AUTO, &items, &t, &found), DT_OK);
  assert_int_equal(found, 2);
  assert_string_equal(t[0], "two\nlines");
  assert_string_equal(t[1], "A kettle, \"steel\" Kitchen > Kettles Acme");
  assert_string_equal(t[2], "");
  for (int i = 0; i < 3; i++) free(t[i]);
  free(t);
  /* TSV, detected from the header */
  assert_int_equal(read_items("item\ttext\ni3\tred, round\n", "items.tsv", DT_DELIM_AUTO, &items, &t, &found), DT_OK);
  assert_int_equal(found, 1);
  assert_string_equal(t[2], "red, round");
  for (int i = 0; i < 3; i++) free(t[i]);
  free(t);
  /* no header naming item and text */
  assert_int_equal(read_items("i1,some text\ni2,more\n", "nohead.csv", ',', &items, &t, &found), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "nohead.csv:1: an item file (data.items) starts with a header"));
  assert_int_equal(read_items("item,title\ni1,x\n", "title.csv", ',', &items, &t, &found), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "\"title\""));
  /* a row with another field count, a header alone */
  assert_int_equal(read_items("item,text\ni1,a\ni2,b,c\n", "rows.csv", ',', &items, &t, &found), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "rows.csv:3: expected 2 comma-separated fields like the header"));
  assert_int_equal(read_items("item,text\n", "head.csv", ',', &items, &t, &found), DT_EXIT_DATA);
  assert_non_null(strstr(dt_error_message(), "only the header"));
  dt_strtab_free(&items);
}

int main(void) {
  dt_log_set_level(DT_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timestamps_unix_and_iso8601),
      cmocka_unit_test(quoted_fields_per_rfc4180),
      cmocka_unit_test(quoting_errors_name_the_first_line),
      cmocka_unit_test(any_one_character_delimiter),
      cmocka_unit_test(item_file_with_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
