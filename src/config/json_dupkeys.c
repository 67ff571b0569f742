/* json_dupkeys.c: a key given twice in one JSON object (json_dupkeys.h).
 *
 * A small scanner over text cJSON has already parsed: it tracks the open
 * objects and arrays, and in an object every string in key position (after
 * '{' or ',') is a key, decoded and compared with the object's earlier keys.
 */
#include "config/json_dupkeys.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"

typedef struct {
  char *key;
  int line;
} member;

typedef struct {
  int is_object;
  int expect_key; /* object: the next string is a key */
  char *name;     /* dotted path of this object or array ("" at the top) */
  member *members;
  int n, cap;
} frame;

static int hex4(const char *p, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return 0;
    *v = *v * 16 + (uint32_t)d;
  }
  return 1;
}

static char *put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

/* Decodes the JSON string starting at *pp (on its opening quote) into a new
 * buffer and moves *pp past the closing quote. */
static char *read_string(const char **pp) {
  const char *p = *pp + 1, *q = p;
  while (*q && *q != '"') q += (*q == '\\' && q[1]) ? 2 : 1;
  char *out = dt_xmalloc((size_t)(q - p) + 1), *o = out; /* decoding never lengthens */
  while (p < q) {
    if (*p != '\\') {
      *o++ = *p++;
      continue;
    }
    char e = p[1];
    p += 2;
    switch (e) {
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        uint32_t cp, lo;
        if (q - p < 4 || !hex4(p, &cp)) break;
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && q - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) &&
            lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        o = put_utf8(o, cp);
        break;
      }
      default: *o++ = e; break; /* \" \\ \/ */
    }
  }
  *o = '\0';
  *pp = *q ? q + 1 : q;
  return out;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = dt_xmalloc(n);
  snprintf(s, n, "%s%s%s", a, a[0] ? "." : "", b);
  return s;
}

static void free_frame(frame *f) {
  for (int i = 0; i < f->n; i++) free(f->members[i].key);
  free(f->members);
  free(f->name);
}

int dt_json_find_duplicate_key(const char *text, char *path, size_t path_size, int *first_line, int *second_line) {
  frame *stack = NULL;
  int depth = 0, cap = 0, line = 1, found = 0;
  const char *p = text;
  while (*p && !found) {
    char c = *p;
    frame *top = depth > 0 ? &stack[depth - 1] : NULL;
    if (c == '\n') {
      line++;
      p++;
    } else if (c == '{' || c == '[') {
      char *name = !top                           ? dt_xstrdup("")
                   : top->is_object && top->n > 0 ? join(top->name, top->members[top->n - 1].key)
                                                  : dt_xstrdup(top->name);
      if (depth == cap) {
        cap = cap ? 2 * cap : 8;
        stack = dt_xrealloc(stack, (size_t)cap * sizeof(frame));
      }
      stack[depth++] = (frame){c == '{', c == '{', name, NULL, 0, 0};
      p++;
    } else if (c == '}' || c == ']') {
      if (top) free_frame(&stack[--depth]);
      p++;
    } else if (c == ',') {
      if (top && top->is_object) top->expect_key = 1;
      p++;
    } else if (c == '"') {
      char *s = read_string(&p);
      if (!top || !top->is_object || !top->expect_key) {
        free(s);
        continue;
      }
      top->expect_key = 0;
      for (int i = 0; i < top->n && !found; i++)
        if (strcmp(top->members[i].key, s) == 0) {
          char *full = join(top->name, s);
          snprintf(path, path_size, "%s", full);
          free(full);
          *first_line = top->members[i].line;
          *second_line = line;
          found = 1;
        }
      if (found) {
        free(s);
        break;
      }
      if (top->n == top->cap) {
        top->cap = top->cap ? 2 * top->cap : 8;
        top->members = dt_xrealloc(top->members, (size_t)top->cap * sizeof(member));
      }
      top->members[top->n++] = (member){s, line};
    } else {
      p++;
    }
  }
  while (depth > 0) free_frame(&stack[--depth]);
  free(stack);
  return found;
}
