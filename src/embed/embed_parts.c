/* embed_parts.c: a table's per-row arrays as checkpoint parts (embed.h):
 * which array a part is, its width, and moving its rows to and from host
 * memory (gathered from the owners when the table is sharded). */
#include <stdlib.h>

#include "dtrain/error.h"
#include "embed/embed_internal.h"

static const char *const part_names[DT_TABLE_N_PARTS] = {"data", "m", "v", "acc", "row_step"};

void dt_table_part_describe(const dt_table *tb, dt_table_part part, dt_table_part_info *out) {
  out->name = part_names[part];
  out->is_int64 = part == DT_TABLE_PART_ROW_STEP;
  out->cols = part <= DT_TABLE_PART_ADAM_V ? tb->dim : 1;
  out->row_bytes = out->is_int64 ? sizeof(int64_t) : (size_t)out->cols * sizeof(float);
}

/* The part's backend array (rows this rank holds). */
static void *part_base(const dt_table *tb, dt_table_part part) {
  switch (part) {
    case DT_TABLE_PART_ROWS: return tb->data;
    case DT_TABLE_PART_ADAM_M: return tb->m;
    case DT_TABLE_PART_ADAM_V: return tb->v;
    case DT_TABLE_PART_ADAGRAD_ACC: return tb->acc;
    default: return tb->row_step;
  }
}

int dt_table_part_download(const dt_table *tb, dt_table_part part, int64_t local_row0, int64_t n, void *host) {
  dt_table_part_info pi;
  dt_table_part_describe(tb, part, &pi);
  const char *base = part_base(tb, part);
  return tb->be->download(tb->be, host, base + (size_t)local_row0 * pi.row_bytes, (size_t)n * pi.row_bytes);
}

int dt_table_part_upload(dt_table *tb, dt_table_part part, int64_t local_row0, int64_t n, const void *host) {
  dt_table_part_info pi;
  dt_table_part_describe(tb, part, &pi);
  char *base = part_base(tb, part);
  return tb->be->upload(tb->be, base + (size_t)local_row0 * pi.row_bytes, host, (size_t)n * pi.row_bytes);
}

typedef struct {
  const dt_table *tb;
  dt_table_part part;
  dt_table_sink_fn sink;
  void *ctx;
} part_io;

/* dt_comm_fill_fn on an owner: rows [row0, row0 + n) of its block. */
static int read_local(void *ctx, int64_t row0, int64_t n, int width, float *rows_host) {
  part_io *io = ctx;
  (void)width;
  return dt_table_part_download(io->tb, io->part, row0, n, rows_host);
}

/* dt_comm_consume_fn on rank 0. */
static int to_sink(void *ctx, int64_t row0, int64_t n, int width, const float *rows_host) {
  part_io *io = ctx;
  (void)width;
  return io->sink(io->ctx, row0, n, rows_host);
}

int dt_table_part_gather(const dt_table *tb, dt_table_part part, int64_t max_rows, dt_table_sink_fn sink, void *ctx) {
  dt_table_part_info pi;
  dt_table_part_describe(tb, part, &pi);
  part_io io = {tb, part, sink, ctx};
  if (tb->sharded) {
    /* the gather moves rows of `width` floats: an int64 row step is two */
    int width = (int)(pi.row_bytes / sizeof(float));
    return dt_comm_sharded_gather_part(tb->comm, tb->comm_id, width, max_rows, read_local, &io, to_sink, &io);
  }
  if (tb->comm && dt_comm_rank(tb->comm) != 0) return DT_OK; /* rank 0 holds it whole */
  char *buf = dt_xmalloc((size_t)max_rows * pi.row_bytes);
  int rc = DT_OK;
  for (int64_t r0 = 0; r0 < tb->rows && !rc; r0 += max_rows) {
    int64_t n = tb->rows - r0 < max_rows ? tb->rows - r0 : max_rows;
    rc = dt_table_part_download(tb, part, r0, n, buf);
    if (!rc) rc = sink(ctx, r0, n, buf);
  }
  free(buf);
  return rc;
}
