/* linereader.c: plain or gzip lines, streamed (linereader.h). */
#include "data/linereader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/error.h"
#include "dtrain/log.h"

enum { RAW_CHUNK = 1 << 18, TEXT_MIN_SPACE = 1 << 14 };
/* Files this large get a progress line. */
#define PROGRESS_MIN_BYTES ((int64_t)64 << 20)

/* Reads more raw bytes so that at least `need` are available, unless the
 * source ends first. Returns 0 or an error code. */
static int raw_want(dt_linereader *lr, size_t need) {
  if (lr->in_len - lr->in_pos >= need || lr->raw_eof) return DT_OK;
  if (lr->in_pos > 0) {
    memmove(lr->in, lr->in + lr->in_pos, lr->in_len - lr->in_pos);
    lr->in_len -= lr->in_pos;
    lr->in_pos = 0;
  }
  while (lr->in_len < need && !lr->raw_eof) {
    size_t room = lr->in_cap - lr->in_len, got;
    if (lr->f) {
      got = fread(lr->in + lr->in_len, 1, room, lr->f);
      if (got < room) {
        if (ferror(lr->f)) return dt_fail(DT_EXIT_DATA, "error reading %s: %s", lr->name, strerror(errno));
        lr->raw_eof = 1;
      }
    } else {
      got = lr->mem_size - lr->mem_pos < room ? lr->mem_size - lr->mem_pos : room;
      memcpy(lr->in + lr->in_len, lr->mem + lr->mem_pos, got);
      lr->mem_pos += got;
      if (lr->mem_pos == lr->mem_size) lr->raw_eof = 1;
    }
    lr->raw_crc = (uint32_t)crc32(lr->raw_crc, lr->in + lr->in_len, (uInt)got);
    lr->raw_bytes += (int64_t)got;
    lr->in_len += got;
  }
  if (lr->progress_on) dt_progress_update(&lr->prog, lr->raw_bytes >> 20, NULL);
  return DT_OK;
}

/* A broken stream: an error, or under skip_bad a warning after which the
 * text simply ends. `partial`: the break is inside the data (truncated or
 * corrupt), so a last line without its newline is incomplete; after a
 * complete gzip member (trailing garbage) it is a whole line. */
static int stream_broken(dt_linereader *lr, const char *what, int partial) {
  /* the line being assembled is the one after the last complete one */
  int64_t at = lr->line_no + 1;
  for (size_t p = lr->buf_pos; p < lr->buf_len; p++)
    if (lr->buf[p] == '\n') at++;
  if (!lr->skip_bad)
    return dt_fail(DT_EXIT_DATA,
                   "%s:%lld: %s (the file is damaged or incomplete: fetch it again, or set "
                   "data.on_error=skip to use the lines before this point)",
                   lr->name, (long long)at, what);
  dt_log_warn("%s:%lld: %s; using the lines before it (data.on_error=skip)", lr->name, (long long)at, what);
  lr->broken = partial;
  lr->text_eof = 1;
  return DT_OK;
}

/* Appends more decompressed text to buf (there is room for TEXT_MIN_SPACE
 * bytes), or sets text_eof. Returns 0 or an error code. */
static int fill_text(dt_linereader *lr) {
  size_t start = lr->buf_len;
  while (lr->buf_len == start && !lr->text_eof) {
    if (!lr->gz) {
      DT_TRY(raw_want(lr, 1));
      size_t n = lr->in_len - lr->in_pos, room = lr->buf_cap - lr->buf_len;
      if (n == 0) {
        lr->text_eof = 1;
        break;
      }
      if (n > room) n = room;
      memcpy(lr->buf + lr->buf_len, lr->in + lr->in_pos, n);
      lr->in_pos += n;
      lr->buf_len += n;
      continue;
    }
    if (lr->member_end) {
      /* After a member: another member, zero padding, or the end. */
      DT_TRY(raw_want(lr, 2));
      size_t n = lr->in_len - lr->in_pos;
      if (n == 0) {
        lr->text_eof = 1;
        break;
      }
      const unsigned char *p = lr->in + lr->in_pos;
      if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        if (inflateReset(&lr->zs) != Z_OK) return dt_fail(DT_EXIT_RUNTIME, "zlib inflateReset failed on %s", lr->name);
        lr->member_end = 0;
        continue;
      }
      size_t z = 0;
      while (z < n && p[z] == 0) z++;
      if (z == 0) return stream_broken(lr, "unexpected bytes after the end of the gzip stream", 0);
      lr->in_pos += z; /* zero padding some tools append: ignored */
      continue;
    }
    DT_TRY(raw_want(lr, 1));
    lr->zs.next_in = lr->in + lr->in_pos;
    lr->zs.avail_in = (uInt)(lr->in_len - lr->in_pos);
    lr->zs.next_out = (Bytef *)lr->buf + lr->buf_len;
    lr->zs.avail_out = (uInt)(lr->buf_cap - lr->buf_len);
    int ret = inflate(&lr->zs, Z_NO_FLUSH);
    lr->in_pos = lr->in_len - lr->zs.avail_in;
    lr->buf_len = lr->buf_cap - lr->zs.avail_out;
    if (ret == Z_STREAM_END) {
      lr->member_end = 1;
    } else if (ret == Z_BUF_ERROR || (ret == Z_OK && lr->zs.avail_in == 0)) {
      /* inflate wants more input */
      if (lr->in_pos == lr->in_len && lr->raw_eof && lr->buf_len == start)
        return stream_broken(lr, "the gzip stream is truncated", 1);
    } else if (ret != Z_OK) {
      char what[256];
      snprintf(what, sizeof what, "corrupt gzip data (zlib: %s)", lr->zs.msg ? lr->zs.msg : "error");
      return stream_broken(lr, what, 1);
    }
  }
  return DT_OK;
}

int dt_lr_open(dt_linereader *lr, const dt_input *in, int skip_bad, int progress, const char *label) {
  memset(lr, 0, sizeof *lr);
  lr->name = in->name ? in->name : (in->path ? in->path : "<input>");
  lr->skip_bad = skip_bad;
  lr->raw_crc = (uint32_t)crc32(0L, Z_NULL, 0);
  if (in->path) {
    lr->f = fopen(in->path, "rb");
    if (!lr->f)
      return dt_fail(DT_EXIT_DATA,
                     "cannot open %s: %s (check data.reviews / data.meta; relative paths are "
                     "resolved against the working directory)",
                     in->path, strerror(errno));
    struct stat st;
    if (fstat(fileno(lr->f), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        fclose(lr->f);
        lr->f = NULL;
        return dt_fail(DT_EXIT_DATA, "%s is a directory, not a data file", in->path);
      }
      lr->file_size = (int64_t)st.st_size;
    }
  } else {
    lr->mem = in->data;
    lr->mem_size = in->size;
    lr->file_size = (int64_t)in->size;
    if (in->size == 0) lr->raw_eof = 1;
  }
  /* small in-memory inputs (tests, fuzzing) get small buffers */
  lr->in_cap = !in->path && in->size < RAW_CHUNK ? (in->size < 64 ? 64 : in->size) : RAW_CHUNK;
  lr->in = dt_xmalloc(lr->in_cap);
  lr->buf_cap = in->path ? (size_t)1 << 20 : 2 * TEXT_MIN_SPACE;
  lr->buf = dt_xmalloc(lr->buf_cap);
  int rc = raw_want(lr, 2);
  if (rc != DT_OK) {
    dt_lr_close(lr);
    return rc;
  }
  if (lr->in_len >= 2 && lr->in[0] == 0x1f && lr->in[1] == 0x8b) {
    lr->gz = 1;
    /* 16 + MAX_WBITS: gzip wrapper only, so a non-gzip stream is an error */
    if (inflateInit2(&lr->zs, 16 + MAX_WBITS) != Z_OK) {
      dt_lr_close(lr);
      return dt_fail(DT_EXIT_RUNTIME, "zlib inflateInit2 failed for %s", lr->name);
    }
    lr->zs_ready = 1;
  }
  if (progress && lr->file_size >= PROGRESS_MIN_BYTES) {
    lr->progress_on = 1;
    dt_progress_begin(&lr->prog, label ? label : "reading", lr->file_size >> 20, "MB");
  }
  return DT_OK;
}

/* Hands out buf[from, to) as the next line, dropping a trailing '\r'. */
static int emit(dt_linereader *lr, size_t from, size_t to, const char **line, size_t *len) {
  lr->line_no++;
  *line = lr->buf + from;
  *len = to - from;
  if (*len > 0 && lr->buf[to - 1] == '\r') (*len)--;
  return 1;
}

int dt_lr_next(dt_linereader *lr, const char **line, size_t *len) {
  for (;;) {
    char *nl = lr->scan < lr->buf_len ? memchr(lr->buf + lr->scan, '\n', lr->buf_len - lr->scan) : NULL;
    if (nl) {
      size_t from = lr->buf_pos, to = (size_t)(nl - lr->buf);
      lr->buf_pos = lr->scan = to + 1;
      if (lr->discarding) {
        lr->discarding = 0;
        continue;
      }
      return emit(lr, from, to, line, len);
    }
    lr->scan = lr->buf_len;
    if (lr->text_eof) {
      if (lr->discarding || lr->buf_pos == lr->buf_len) {
        lr->buf_pos = lr->buf_len;
        return 0;
      }
      if (lr->broken) {
        /* an incomplete line at the break: not data */
        lr->tail_skipped = 1;
        lr->buf_pos = lr->buf_len;
        return 0;
      }
      size_t from = lr->buf_pos;
      lr->buf_pos = lr->buf_len;
      return emit(lr, from, lr->buf_len, line, len);
    }
    /* Need more text: drop what was handed out, then make room. */
    if (lr->discarding) {
      lr->buf_pos = lr->buf_len = lr->scan = 0;
    } else if (lr->buf_pos > 0) {
      memmove(lr->buf, lr->buf + lr->buf_pos, lr->buf_len - lr->buf_pos);
      lr->buf_len -= lr->buf_pos;
      lr->scan -= lr->buf_pos;
      lr->buf_pos = 0;
    }
    if (lr->buf_len > DT_LR_MAX_LINE) {
      lr->line_no++;
      lr->buf_pos = lr->buf_len = lr->scan = 0;
      if (!lr->skip_bad)
        return dt_fail(DT_EXIT_DATA, "%s:%lld: line longer than %zu MiB (not a JSON-lines or delimited text file?)",
                       lr->name, (long long)lr->line_no, DT_LR_MAX_LINE >> 20);
      lr->discarding = 1;
      return DT_LR_LONG_LINE;
    }
    if (lr->buf_cap - lr->buf_len < TEXT_MIN_SPACE) {
      lr->buf_cap *= 2;
      lr->buf = dt_xrealloc(lr->buf, lr->buf_cap);
    }
    DT_TRY(fill_text(lr));
  }
}

void dt_lr_sum(const dt_linereader *lr, dt_source_sum *sum) {
  sum->size = lr->raw_bytes;
  sum->crc32 = lr->raw_crc;
}

void dt_lr_close(dt_linereader *lr) {
  if (lr->progress_on) {
    dt_progress_end(&lr->prog, lr->raw_bytes >> 20, NULL);
    lr->progress_on = 0;
  }
  if (lr->zs_ready) inflateEnd(&lr->zs);
  lr->zs_ready = 0;
  if (lr->f) fclose(lr->f);
  lr->f = NULL;
  free(lr->in);
  free(lr->buf);
  lr->in = NULL;
  lr->buf = NULL;
}
