/* libFuzzer target: the delimited-text reader (plain or gzip; RFC 4180
 * quoting, ISO-8601 times). The first byte picks the column layout,
 * delimiter (auto, comma, tab, semicolon), header mode and on_error; the
 * rest is the file. Any input must give DT_OK or DT_EXIT_DATA with a
 * message, never a crash, a leak or undefined behaviour. The corpus
 * regression test includes this file with DT_FUZZ_NO_MAIN. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

int dt_fuzz_delimited(const uint8_t *data, size_t size);

int dt_fuzz_delimited(const uint8_t *data, size_t size) {
  static const char *columns[] = {"user,item,timestamp", "user,item,rating,timestamp", "skip,timestamp,item,user",
                                  "item,user,timestamp,rating,skip"};
  static const char *delims[] = {"auto", "comma", "tab", "semicolon"};
  static const char *headers[] = {"auto", "yes", "no", "auto"};
  dt_log_set_level(DT_LOG_ERROR);
  if (size == 0) return 0;
  uint8_t sel = data[0];
  dt_delimited_format f;
  if (dt_delimited_format_parse(columns[sel & 3], delims[(sel >> 2) & 3], headers[(sel >> 4) & 3], &f) != DT_OK)
    abort(); /* the layouts above are all valid */
  dt_read_opts o = {0};
  o.skip_bad = (sel >> 6) & 1;
  o.min_rating = (sel >> 7) ? 2.5 : 0.0;
  dt_input in = {"fuzz.csv", NULL, data + 1, size - 1};
  dt_interactions x = {0};
  dt_error_clear();
  int rc = dt_read_delimited(&in, &f, &o, &x, NULL);
  if (rc != DT_OK && (rc != DT_EXIT_DATA || !dt_error_message()[0])) abort();
  for (int64_t r = 0; r < x.n; r++)
    if (x.user[r] < 0 || x.user[r] >= x.users.n || x.item[r] < 0 || x.item[r] >= x.items.n) abort();
  dt_interactions_free(&x);
  return 0;
}

#ifndef DT_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return dt_fuzz_delimited(data, size); }
#endif
