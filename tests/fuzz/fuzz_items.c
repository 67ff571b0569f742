/* libFuzzer target: the item-file reader (data.items: a header naming item
 * and text, RFC 4180 records). The first byte picks the delimiter (auto,
 * comma, tab, ';') and on_error; the rest is the file. The items looked up
 * are "i1".."i4". Any input must give DT_OK (every text set) or
 * DT_EXIT_DATA with a message, never a crash, a leak or undefined
 * behaviour. The corpus regression test includes this file with
 * DT_FUZZ_NO_MAIN. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/readers.h"

int dt_fuzz_items(const uint8_t *data, size_t size);

int dt_fuzz_items(const uint8_t *data, size_t size) {
  static const char delims[] = {DT_DELIM_AUTO, ',', '\t', ';'};
  dt_log_set_level(DT_LOG_ERROR);
  if (size == 0) return 0;
  uint8_t sel = data[0];
  dt_strtab items = {0};
  for (int i = 1; i <= 4; i++) {
    char id[4] = {'i', (char)('0' + i), 0, 0};
    dt_strtab_intern(&items, id, 2);
  }
  dt_read_opts o = {0};
  o.skip_bad = (sel >> 2) & 1;
  dt_input in = {"fuzz_items.csv", NULL, data + 1, size - 1};
  char **text = NULL;
  int64_t found = -1;
  dt_error_clear();
  int rc = dt_read_item_file(&in, delims[sel & 3], &o, &items, &text, &found, NULL);
  if (rc != DT_OK && (rc != DT_EXIT_DATA || !dt_error_message()[0])) abort();
  if (rc == DT_OK) {
    if (found < 0 || found > items.n) abort();
    for (int64_t i = 0; i < items.n; i++) {
      if (!text[i]) abort();
      free(text[i]);
    }
    free(text);
  }
  dt_strtab_free(&items);
  return 0;
}

#ifndef DT_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return dt_fuzz_items(data, size); }
#endif
