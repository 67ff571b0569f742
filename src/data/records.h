/* records.h (internal to src/data): delimited records over a line reader.
 *
 * A record is one line, or several when a quoted field holds line breaks
 * (RFC 4180). Fields are split at the delimiter; a field that starts with
 * a double quote runs to the matching quote ("" inside is one "), may hold
 * delimiters and line breaks, and may be followed only by spaces before the
 * next delimiter. Spaces around fields are dropped; with the space
 * delimiter a run of spaces is one separator. An unquoted field keeps any
 * quote inside it as is. Lines that are blank outside quotes are skipped.
 *
 * The fields are decoded into the reader's buffer and stay valid until the
 * next call.
 */
#ifndef DTRAIN_DATA_RECORDS_H
#define DTRAIN_DATA_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "data/linereader.h"

typedef struct {
  const char *p;
  size_t n;
} dt_field;

typedef struct {
  dt_linereader *lr;
  char delim;       /* the delimiter; DT_DELIM_AUTO until the first record decides */
  int64_t line_no;  /* first line of the record last returned */
  dt_field *fields; /* of the record last returned */
  int n_fields, fields_cap;
  char *buf; /* decoded field bytes */
  size_t len, cap;
  size_t *starts; /* field offsets into buf while decoding */
} dt_records;

/* Return values of dt_records_next besides 1 (a record), 0 (the end) and
 * error codes: a malformed record (why is set; the caller reports it at
 * line_no) and an over-long line (DT_LR_LONG_LINE, already counted by no one). */
enum { DT_REC_BAD = -2 };

void dt_records_init(dt_records *r, dt_linereader *lr, char delim);
int dt_records_next(dt_records *r, char *why, size_t why_n);
void dt_records_free(dt_records *r);
/* "comma", "tab", "semicolon", ... or "'x'" for messages. */
const char *dt_delimiter_name(char delim, char buf[8]);

#endif
