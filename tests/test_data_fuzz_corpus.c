/* Runs each fuzz target's entry point over its corpus in the normal build
 * (tests/fuzz/corpus/<target>/: hand-written seeds, the libFuzzer-minimised
 * corpus of the recorded runs, and any crash reproducers), so inputs
 * that once broke a reader stay covered without clang or libFuzzer. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/fsutil.h"

#define DT_FUZZ_NO_MAIN
#include "fuzz/fuzz_delimited.c"
#include "fuzz/fuzz_items.c"
#include "fuzz/fuzz_jsonl.c"

static int run_corpus(const char *target, int (*fn)(const uint8_t *, size_t)) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", DTRAIN_SOURCE_ROOT, target);
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(dt_read_file(path, &data, &len, DT_EXIT_DATA), DT_OK);
    fn((const uint8_t *)data, len); /* aborts on a broken contract */
    free(data);
    n++;
  }
  closedir(d);
  return n;
}

static void jsonl_corpus(void **state) {
  (void)state;
  assert_true(run_corpus("fuzz_jsonl", dt_fuzz_jsonl) >= 5);
}

static void delimited_corpus(void **state) {
  (void)state;
  assert_true(run_corpus("fuzz_delimited", dt_fuzz_delimited) >= 5);
}

static void items_corpus(void **state) {
  (void)state;
  assert_true(run_corpus("fuzz_items", dt_fuzz_items) >= 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(jsonl_corpus),
      cmocka_unit_test(delimited_corpus),
      cmocka_unit_test(items_corpus),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
