/* h5io.c: checked HDF5 I/O helpers (h5io.h). */
#include "dtrain/h5io.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/error.h"

/* HDF5 1.10 crashes (SIGSEGV in H5F__close_cb) when its exit handler closes
 * a file whose H5Fclose failed, e.g. on a full disk. dtrain closes every
 * file it opens itself, so HDF5's exit handler has nothing to do: turn it
 * off before the library starts (a constructor runs before main). */
__attribute__((constructor)) static void h5_no_atexit(void) { H5dont_atexit(); }

void dt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static char g_h5_msg[512];

/* The operating system's error in a message of HDF5's file drivers ("...,
 * errno = 28, error message = 'No space left on device', ..."): the OS
 * text alone, which is what the user needs; else HDF5's message. */
static void set_message(const char *desc) {
  const char *e = strstr(desc, "errno = ");
  int err = e ? atoi(e + 8) : 0;
  if (err > 0) {
    const char *what = strstr(desc, "write") ? "write" : strstr(desc, "read") ? "read" : "I/O";
    snprintf(g_h5_msg, sizeof g_h5_msg, "%s failed: %s", what, strerror(err));
  } else if (strstr(desc, "Fletcher32")) {
    snprintf(g_h5_msg, sizeof g_h5_msg, "checksum mismatch, the file is damaged: %s", desc);
  } else {
    snprintf(g_h5_msg, sizeof g_h5_msg, "%s", desc);
  }
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  (void)data;
  /* walked upward: n = 0 is the innermost call, where the error was found */
  if (n == 0 && e->desc) set_message(e->desc);
  return 0;
}

const char *dt_h5_last_error(void) {
  g_h5_msg[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, NULL);
  return g_h5_msg;
}

/* Callers capture HDF5's message (dt_h5_last_error) right after the failing
 * call: any later HDF5 call, even a close, clears the error stack. */
static int h5_fail(int code, const char *path, const char *what, const char *name) {
  const char *detail = g_h5_msg;
  return dt_fail(code, "%s: cannot %s %s%s%s%s", path, what, name, detail[0] ? " (HDF5: " : "", detail,
                 detail[0] ? ")" : "");
}

int dt_h5_open_prepared(const char *path, int version, hid_t *file) {
  dt_h5_quiet();
  struct stat st;
  if (stat(path, &st) != 0)
    return dt_fail(DT_EXIT_DATA, "prepared data set %s does not exist: run `dtrain prep` with the same config first",
                   path);
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0)
    return dt_fail(
        DT_EXIT_DATA,
        "%s is not an HDF5 file (or is truncated before its header): point data.output at a prepared data set, "
        "or move the file away and run `dtrain prep`",
        path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    const char *detail = dt_h5_last_error();
    return dt_fail(DT_EXIT_DATA,
                   "cannot open the prepared data set %s: it is truncated or damaged (HDF5: %s); move it away and run "
                   "`dtrain prep` to rebuild it",
                   path, detail[0] ? detail : "open failed");
  }
  int64_t v = -1;
  if (!H5Aexists(f, "format_version") || dt_h5_read_attr_int(f, "format_version", &v, path) != DT_OK) {
    H5Fclose(f);
    return dt_fail(DT_EXIT_DATA, "%s is not a dtrain prepared data set (no format_version attribute)", path);
  }
  if (v != version) {
    H5Fclose(f);
    return dt_fail(DT_EXIT_DATA,
                   "%s has prepared-data format version %lld, this dtrain reads version %d: re-run `dtrain prep "
                   "--force` to rebuild it",
                   path, (long long)v, version);
  }
  *file = f;
  return DT_OK;
}

/* ---- writing ---- */

/* A chunk of about 1 MiB (the default chunk cache holds one whole). */
enum { CHUNK_BYTES = 1 << 20 };

/* Every dataset dtrain writes: chunked, with HDF5's Fletcher-32 checksum
 * per chunk (a damaged file is a read error naming the dataset), and no
 * object times (the same content gives the same bytes, so a file's CRC-32
 * identifies its content). An empty dataset has no chunk to check and
 * stays contiguous. */
static hid_t dataset_props(int ndim, const hsize_t *dims, size_t elem) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) return -1;
  hsize_t row = ndim > 1 ? dims[1] : 1;
  hsize_t row_bytes = row * (elem ? elem : 1);
  int ok = H5Pset_obj_track_times(dcpl, 0) >= 0;
  if (ok && dims[0] > 0 && row > 0) {
    hsize_t rows = CHUNK_BYTES / (row_bytes ? row_bytes : 1);
    if (rows < 1) rows = 1;
    if (rows > dims[0]) rows = dims[0];
    hsize_t chunk[2] = {rows, row};
    ok = H5Pset_chunk(dcpl, ndim, chunk) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
  }
  if (!ok) {
    H5Pclose(dcpl);
    return -1;
  }
  return dcpl;
}

static hid_t create_dataset(hid_t loc, const char *name, hid_t file_type, int ndim, const hsize_t *dims) {
  hid_t space = H5Screate_simple(ndim, dims, NULL);
  hid_t dcpl = space < 0 ? -1 : dataset_props(ndim, dims, H5Tget_size(file_type));
  hid_t ds = dcpl < 0 ? -1 : H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (ds < 0) dt_h5_last_error();
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return ds;
}

hid_t dt_h5_create_group(hid_t loc, const char *name) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl < 0) return -1;
  hid_t g = H5Pset_obj_track_times(gcpl, 0) < 0 ? -1 : H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  return g;
}

int dt_h5_close_dataset(hid_t ds, const char *path, const char *name) {
  if (ds < 0) return DT_OK;
  if (H5Dclose(ds) >= 0) return DT_OK;
  dt_h5_last_error();
  return h5_fail(DT_EXIT_RUNTIME, path, "finish writing dataset", name);
}

int dt_h5_close_file(hid_t f, const char *path, int rc) {
  if (f < 0) return rc;
  if (rc == DT_OK && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) {
    dt_h5_last_error();
    rc = h5_fail(DT_EXIT_RUNTIME, path, "write", "the file's metadata");
  }
  if (H5Fclose(f) < 0 && rc == DT_OK) {
    dt_h5_last_error();
    rc = h5_fail(DT_EXIT_RUNTIME, path, "close", "the file");
  }
  return rc;
}

/* Creates the groups on the way to `name` ("/a/b/c" creates /a and /a/b). */
static int ensure_groups(hid_t loc, const char *name, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", name);
  for (char *s = buf + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    htri_t ex = H5Lexists(loc, buf, H5P_DEFAULT);
    if (ex < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_RUNTIME, path, "look up group", buf);
    if (!ex) {
      hid_t g = dt_h5_create_group(loc, buf);
      if (g < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_RUNTIME, path, "create group", buf);
      H5Gclose(g);
    }
    *s = '/';
  }
  return DT_OK;
}

int dt_h5_write_array(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, const void *data, int64_t n,
                      const char *path) {
  DT_TRY(ensure_groups(loc, name, path));
  hsize_t dims[1] = {(hsize_t)n};
  hid_t ds = create_dataset(loc, name, file_type, 1, dims);
  if (ds < 0) return h5_fail(DT_EXIT_RUNTIME, path, "create dataset", name);
  herr_t st = n > 0 ? H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
  if (st < 0) {
    dt_h5_last_error();
    H5Dclose(ds);
    return h5_fail(DT_EXIT_RUNTIME, path, "write dataset", name);
  }
  return dt_h5_close_dataset(ds, path, name);
}

int dt_h5_write_i32(hid_t loc, const char *name, const int32_t *data, int64_t n, const char *path) {
  return dt_h5_write_array(loc, name, H5T_NATIVE_INT32, H5T_STD_I32LE, data, n, path);
}
int dt_h5_write_i64(hid_t loc, const char *name, const int64_t *data, int64_t n, const char *path) {
  return dt_h5_write_array(loc, name, H5T_NATIVE_INT64, H5T_STD_I64LE, data, n, path);
}
int dt_h5_write_f32(hid_t loc, const char *name, const float *data, int64_t n, const char *path) {
  return dt_h5_write_array(loc, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, data, n, path);
}

static hid_t fixed_string_type(size_t size) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

int dt_h5_write_strings(hid_t loc, const char *name, char *const *s, int64_t n, const char *path) {
  size_t width = 1;
  for (int64_t i = 0; i < n; i++) {
    size_t l = strlen(s[i]) + 1;
    if (l > width) width = l;
  }
  char *buf = dt_xcalloc((size_t)(n ? n : 1), width);
  for (int64_t i = 0; i < n; i++) memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
  hid_t t = fixed_string_type(width);
  if (t < 0) {
    dt_h5_last_error();
    free(buf);
    return h5_fail(DT_EXIT_RUNTIME, path, "make a string type for", name);
  }
  int rc = dt_h5_write_array(loc, name, t, t, buf, n, path);
  H5Tclose(t);
  free(buf);
  return rc;
}

int dt_h5_write_attr_int(hid_t loc, const char *name, int64_t v, const char *path) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t st = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &v);
  if (st < 0) dt_h5_last_error();
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  if (st < 0) return h5_fail(DT_EXIT_RUNTIME, path, "write attribute", name);
  return DT_OK;
}

int dt_h5_write_attr_str(hid_t loc, const char *name, const char *v, const char *path) {
  size_t len = strlen(v);
  hid_t t = fixed_string_type(len + 1);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = t < 0 || space < 0 ? -1 : H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t st = a < 0 ? -1 : H5Awrite(a, t, v);
  if (st < 0) dt_h5_last_error();
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  if (t >= 0) H5Tclose(t);
  if (st < 0) return h5_fail(DT_EXIT_RUNTIME, path, "write attribute", name);
  return DT_OK;
}

int dt_h5_write_attr_f64(hid_t loc, const char *name, double v, const char *path) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t st = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  if (st < 0) dt_h5_last_error();
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  if (st < 0) return h5_fail(DT_EXIT_RUNTIME, path, "write attribute", name);
  return DT_OK;
}

typedef struct {
  hid_t dst;
  const char *const *skip;
  const char *path;
  int rc;
} copy_attrs_ctx;

static herr_t copy_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  copy_attrs_ctx *c = data;
  for (const char *const *s = c->skip; s && *s; s++)
    if (!strcmp(*s, name)) return 0;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t type = a < 0 ? -1 : H5Aget_type(a), space = a < 0 ? -1 : H5Aget_space(a);
  hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
  size_t size = type < 0 ? 0 : H5Tget_size(type);
  void *buf = n >= 0 && size > 0 ? dt_xcalloc((size_t)(n > 0 ? n : 1), size) : NULL;
  int ok = buf && H5Aread(a, type, buf) >= 0;
  int vlen = ok && (H5Tis_variable_str(type) > 0 || H5Tdetect_class(type, H5T_VLEN) > 0);
  hid_t b = ok ? H5Acreate2(c->dst, name, type, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int written = b >= 0 && H5Awrite(b, type, buf) >= 0;
  if (!written) dt_h5_last_error();
  if (vlen) H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
  free(buf);
  if (b >= 0) H5Aclose(b);
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  if (a >= 0) H5Aclose(a);
  if (!written) {
    c->rc = h5_fail(DT_EXIT_RUNTIME, c->path, "copy attribute", name);
    return -1;
  }
  return 0;
}

int dt_h5_copy_attrs(hid_t src, hid_t dst, const char *const *skip, const char *path) {
  copy_attrs_ctx c = {dst, skip, path, DT_OK};
  hsize_t idx = 0;
  if (H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr_cb, &c) < 0 && c.rc == DT_OK) {
    dt_h5_last_error();
    c.rc = h5_fail(DT_EXIT_RUNTIME, path, "list the attributes of", "an object");
  }
  return c.rc;
}

/* ---- reading ---- */

int dt_h5_length(hid_t file, const char *name, int64_t *n, const char *path) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_DATA, path, "open dataset", name);
  hid_t space = H5Dget_space(ds);
  int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  hsize_t dims[1] = {0};
  if (rank == 1) H5Sget_simple_extent_dims(space, dims, NULL);
  if (space >= 0) H5Sclose(space);
  H5Dclose(ds);
  if (rank != 1) return dt_fail(DT_EXIT_DATA, "%s: dataset %s is not one-dimensional (a damaged file?)", path, name);
  *n = (int64_t)dims[0];
  return DT_OK;
}

int dt_h5_read_array(hid_t file, const char *name, hid_t mem_type, size_t elem, int64_t expect, void **out,
                     int64_t *n_out, const char *path) {
  int64_t n = 0;
  DT_TRY(dt_h5_length(file, name, &n, path));
  if (expect >= 0 && n != expect)
    return dt_fail(DT_EXIT_DATA,
                   "%s: dataset %s has %lld elements, expected %lld (a damaged or inconsistent file: "
                   "re-run `dtrain prep --force`)",
                   path, name, (long long)n, (long long)expect);
  void *buf = dt_xmalloc((size_t)(n ? n : 1) * elem);
  if (n > 0) {
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (st < 0) dt_h5_last_error();
    if (ds >= 0) H5Dclose(ds);
    if (st < 0) {
      free(buf);
      return h5_fail(DT_EXIT_DATA, path, "read dataset", name);
    }
  }
  *out = buf;
  if (n_out) *n_out = n;
  return DT_OK;
}

int dt_h5_read_strings(hid_t file, const char *name, int64_t expect, char ***out, const char *path) {
  int64_t n = 0;
  DT_TRY(dt_h5_length(file, name, &n, path));
  if (expect >= 0 && n != expect)
    return dt_fail(DT_EXIT_DATA, "%s: dataset %s has %lld strings, expected %lld", path, name, (long long)n,
                   (long long)expect);
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_DATA, path, "open dataset", name);
  hid_t ft = H5Dget_type(ds);
  size_t width = ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0 ? 0 : H5Tget_size(ft);
  if (ft >= 0) H5Tclose(ft);
  if (width == 0) {
    H5Dclose(ds);
    return dt_fail(DT_EXIT_DATA, "%s: dataset %s is not a fixed-length string array", path, name);
  }
  hid_t mt = fixed_string_type(width);
  char *buf = dt_xmalloc((size_t)(n ? n : 1) * width);
  herr_t st = n > 0 && mt >= 0 ? H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : (mt < 0 ? -1 : 0);
  if (st < 0) dt_h5_last_error();
  if (mt >= 0) H5Tclose(mt);
  H5Dclose(ds);
  if (st < 0) {
    free(buf);
    return h5_fail(DT_EXIT_DATA, path, "read dataset", name);
  }
  char **s = dt_xmalloc((size_t)(n ? n : 1) * sizeof(char *));
  for (int64_t i = 0; i < n; i++) {
    const char *p = buf + (size_t)i * width;
    size_t l = strnlen(p, width);
    s[i] = dt_xmalloc(l + 1);
    memcpy(s[i], p, l);
    s[i][l] = '\0';
  }
  free(buf);
  *out = s;
  return DT_OK;
}

/* A scalar attribute as mem_type. */
static int read_attr(hid_t loc, const char *name, hid_t mem_type, void *v, const char *path) {
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_DATA, path, "open attribute", name);
  herr_t st = H5Aread(a, mem_type, v);
  if (st < 0) dt_h5_last_error();
  H5Aclose(a);
  if (st < 0) return h5_fail(DT_EXIT_DATA, path, "read attribute", name);
  return DT_OK;
}

int dt_h5_read_attr_int(hid_t loc, const char *name, int64_t *v, const char *path) {
  return read_attr(loc, name, H5T_NATIVE_INT64, v, path);
}

int dt_h5_read_attr_f64(hid_t loc, const char *name, double *v, const char *path) {
  return read_attr(loc, name, H5T_NATIVE_DOUBLE, v, path);
}

/* A variable-length string attribute (character set cset, e.g. UTF-8 as
 * h5py writes), malloc'd into *v. */
static herr_t read_attr_vlen_str(hid_t a, H5T_cset_t cset, char **v) {
  char *s = NULL;
  hid_t mt = H5Tcopy(H5T_C_S1);
  herr_t st = mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, cset) < 0 ? -1 : H5Aread(a, mt, &s);
  if (st >= 0) *v = dt_xstrdup(s ? s : "");
  if (s) H5free_memory(s);
  if (mt >= 0) H5Tclose(mt);
  return st;
}

int dt_h5_read_attr_str(hid_t loc, const char *name, char **v, const char *path) {
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return (void)dt_h5_last_error(), h5_fail(DT_EXIT_DATA, path, "open attribute", name);
  hid_t ft = H5Aget_type(a);
  int is_str = ft >= 0 && H5Tget_class(ft) == H5T_STRING;
  int vlen = is_str && H5Tis_variable_str(ft) > 0;
  size_t width = is_str && !vlen ? H5Tget_size(ft) : 0;
  H5T_cset_t cset = is_str ? H5Tget_cset(ft) : H5T_CSET_ASCII;
  if (cset < 0) cset = H5T_CSET_ASCII;
  if (ft >= 0) H5Tclose(ft);
  if (!vlen && width == 0) {
    H5Aclose(a);
    return dt_fail(DT_EXIT_DATA, "%s: attribute %s is not a string", path, name);
  }
  herr_t st;
  if (vlen) {
    st = read_attr_vlen_str(a, cset, v);
  } else {
    /* one byte more than stored: a NULL-padded string (h5py's) of full
     * width keeps its last character */
    hid_t mt = fixed_string_type(width + 1);
    char *buf = dt_xcalloc(width + 1, 1);
    st = mt < 0 || H5Tset_cset(mt, cset) < 0 ? -1 : H5Aread(a, mt, buf);
    if (mt >= 0) H5Tclose(mt);
    if (st < 0)
      free(buf);
    else
      *v = buf;
  }
  if (st < 0) dt_h5_last_error();
  H5Aclose(a);
  if (st < 0) return h5_fail(DT_EXIT_DATA, path, "read attribute", name);
  return DT_OK;
}

/* ---- row ranges ---- */

int dt_h5_create_rows(hid_t loc, const char *name, hid_t file_type, int64_t rows, int64_t cols, hid_t *out,
                      const char *path) {
  hsize_t d[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t ds = create_dataset(loc, name, file_type, cols > 0 ? 2 : 1, d);
  if (ds < 0) return h5_fail(DT_EXIT_RUNTIME, path, "create dataset", name);
  *out = ds;
  return DT_OK;
}

static int transfer_rows(hid_t ds, hid_t mem_type, int64_t row0, int64_t n, int64_t cols, void *buf, int write) {
  if (n == 0) return 0;
  hid_t fs = H5Dget_space(ds);
  int ndim = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
  int ok = ndim >= 1 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0;
  hid_t ms = ok ? H5Screate_simple(ndim, count, NULL) : -1;
  ok =
      ok && ms >= 0 &&
      (write ? H5Dwrite(ds, mem_type, ms, fs, H5P_DEFAULT, buf) : H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, buf)) >= 0;
  if (!ok) dt_h5_last_error();
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return ok ? 0 : -1;
}

int dt_h5_write_rows(hid_t ds, hid_t mem_type, int64_t row0, int64_t n, int64_t cols, const void *buf, const char *path,
                     const char *name) {
  if (transfer_rows(ds, mem_type, row0, n, cols, (void *)buf, 1) == 0) return DT_OK;
  return h5_fail(DT_EXIT_RUNTIME, path, "write rows of", name);
}

int dt_h5_read_rows(hid_t ds, hid_t mem_type, int64_t row0, int64_t n, int64_t cols, void *buf, const char *path,
                    const char *name) {
  if (transfer_rows(ds, mem_type, row0, n, cols, buf, 0) == 0) return DT_OK;
  return h5_fail(DT_EXIT_DATA, path, "read rows of", name);
}

int dt_h5_shape(hid_t ds, int64_t dims[4]) {
  hid_t sp = H5Dget_space(ds);
  hsize_t d[4] = {0, 0, 0, 0};
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (nd >= 1 && nd <= 4) H5Sget_simple_extent_dims(sp, d, NULL);
  if (sp >= 0) H5Sclose(sp);
  for (int i = 0; i < 4; i++) dims[i] = (int64_t)d[i];
  return nd;
}
