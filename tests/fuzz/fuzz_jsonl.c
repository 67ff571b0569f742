/* libFuzzer target: the JSON-lines reader (plain or gzip) for Amazon
 * reviews and metadata, under data.on_error = fail and skip. Any input must
 * give DT_OK or DT_EXIT_DATA with a message, never a crash, a leak or
 * undefined behaviour. The corpus regression test (test_data_fuzz_corpus.c)
 * includes this file with DT_FUZZ_NO_MAIN and runs dt_fuzz_jsonl over
 * tests/fuzz/corpus/fuzz_jsonl/ in the normal build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

int dt_fuzz_jsonl(const uint8_t *data, size_t size);

static void fuzz_check(int rc) {
  /* readers fail only with a data error (and always say why) */
  if (rc != DT_OK && (rc != DT_EXIT_DATA || !dt_error_message()[0])) abort();
}

int dt_fuzz_jsonl(const uint8_t *data, size_t size) {
  dt_log_set_level(DT_LOG_ERROR);
  dt_input in = {"fuzz.json", NULL, data, size};
  for (int skip = 0; skip < 2; skip++) {
    dt_read_opts o = {0};
    o.skip_bad = skip;
    o.keep_text = skip;
    o.min_rating = skip ? 3.0 : 0.0;
    dt_interactions x = {0};
    dt_source_sum sum;
    dt_error_clear();
    fuzz_check(dt_read_amazon_reviews(&in, &o, &x, &sum));
    if (x.n > 0 && (x.user[x.n - 1] < 0 || x.user[x.n - 1] >= x.users.n)) abort();
    dt_interactions_free(&x);
  }
  dt_strtab items = {0};
  dt_strtab_intern(&items, "I1", 2);
  dt_strtab_intern(&items, "B001", 4);
  dt_read_opts o = {0};
  o.skip_bad = 1;
  char **text = NULL;
  int64_t found = 0;
  dt_error_clear();
  int rc = dt_read_amazon_meta(&in, &o, &items, &text, &found, NULL);
  fuzz_check(rc);
  if (rc == DT_OK) {
    for (int64_t i = 0; i < items.n; i++) free(text[i]);
    free(text);
  }
  dt_strtab_free(&items);
  return 0;
}

#ifndef DT_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return dt_fuzz_jsonl(data, size); }
#endif
