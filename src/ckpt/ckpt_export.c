/* ckpt_export.c: dtrain export (ckpt.h's dt_ckpt_export): a checkpoint's
 * parameters, /state attributes and inference data without the optimizer
 * state, written atomically; what serving needs and nothing it does not. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt_internal.h"
#include "dtrain/error.h"
#include "dtrain/fsutil.h"
#include "dtrain/h5io.h"

/* Floats per chunk when a parameter is copied. */
enum { COPY_FLOATS = 1 << 22 };

/* A checkpoint or export dtrain wrote: an HDF5 file with format_version
 * and config at the root and a /params group. */
static int is_dtrain_model_file(const char *path) {
  dt_h5_quiet();
  if (H5Fis_hdf5(path) <= 0) return 0;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 0;
  int is = H5Aexists(f, "format_version") > 0 && H5Aexists(f, "config") > 0 && H5Lexists(f, "params", H5P_DEFAULT) > 0;
  H5Fclose(f);
  return is;
}

/* dst may be written: nothing is there, or a checkpoint/export of dtrain's,
 * or (force) a regular file; never a directory, never src itself. */
static int check_destination(const char *src, const char *dst, int force) {
  struct stat ss, ds;
  if (stat(dst, &ds) != 0) {
    if (errno == ENOENT) return DT_OK;
    return dt_fail(DT_EXIT_DATA, "export: cannot inspect -o %s: %s", dst, strerror(errno));
  }
  if (stat(src, &ss) == 0 && ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino)
    return dt_fail(DT_EXIT_USAGE, "export: -o %s is the checkpoint itself; name another file", dst);
  if (S_ISDIR(ds.st_mode))
    return dt_fail(DT_EXIT_DATA, "export: -o %s is a directory; name the file to write, e.g. %s/model.h5", dst, dst);
  if (!S_ISREG(ds.st_mode))
    return dt_fail(DT_EXIT_DATA, "export: -o %s exists and is not a regular file: not replaced", dst);
  if (force || is_dtrain_model_file(dst)) return DT_OK;
  return dt_fail(DT_EXIT_DATA,
                 "export: -o %s exists and is not a checkpoint or export dtrain wrote: left as it is (name another "
                 "file, or add --force to replace it)",
                 dst);
}

/* ---- /params ------------------------------------------------------------------------ */

/* The names of a group's links, in name order (caller frees each and the list). */
static int link_names(hid_t g, const char *src, char ***out, int *n_out) {
  H5G_info_t gi;
  if (H5Gget_info(g, &gi) < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s: cannot list /params", src);
  char **names = dt_xcalloc(gi.nlinks ? gi.nlinks : 1, sizeof(char *));
  int rc = DT_OK, n = 0;
  for (hsize_t i = 0; i < gi.nlinks && !rc; i++) {
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
    if (len < 0) {
      rc = dt_fail(DT_EXIT_DATA, "checkpoint %s: cannot list /params", src);
      break;
    }
    names[n] = dt_xmalloc((size_t)len + 1);
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, names[n], (size_t)len + 1, H5P_DEFAULT);
    n++;
  }
  *out = names;
  *n_out = n;
  return rc;
}

/* Copies one float parameter [rows] or [rows, cols] in chunks of rows. */
static int copy_param(hid_t g_in, hid_t g_out, const char *name, const char *src, const char *tmp) {
  hid_t in = H5Dopen2(g_in, name, H5P_DEFAULT);
  if (in < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s: cannot open /params/%s", src, name);
  int64_t d[4];
  int nd = dt_h5_shape(in, d);
  hid_t t = H5Dget_type(in);
  int is_float = t >= 0 && H5Tget_class(t) == H5T_FLOAT;
  if (t >= 0) H5Tclose(t);
  if ((nd != 1 && nd != 2) || !is_float) {
    H5Dclose(in);
    return dt_fail(DT_EXIT_DATA, "checkpoint %s: /params/%s is not a 1-D or 2-D float array", src, name);
  }
  const int64_t rows = d[0], cols = nd == 2 ? d[1] : 1;
  hid_t out = -1;
  int rc = dt_h5_create_rows(g_out, name, H5T_IEEE_F32LE, rows, nd == 2 ? cols : 0, &out, tmp);
  int64_t step = cols > 0 && cols < COPY_FLOATS ? COPY_FLOATS / cols : 1;
  float *buf =
      dt_xmalloc((size_t)(step < rows ? step : (rows > 0 ? rows : 1)) * (size_t)(cols > 0 ? cols : 1) * sizeof(float));
  for (int64_t r0 = 0; r0 < rows && !rc; r0 += step) {
    int64_t n = rows - r0 < step ? rows - r0 : step;
    rc = dt_h5_read_rows(in, H5T_NATIVE_FLOAT, r0, n, cols, buf, src, name);
    if (!rc) rc = dt_h5_write_rows(out, H5T_NATIVE_FLOAT, r0, n, cols, buf, tmp, name);
  }
  free(buf);
  if (out >= 0) H5Dclose(out);
  H5Dclose(in);
  return rc;
}

static int copy_params(hid_t in, hid_t out, const char *src, const char *tmp) {
  hid_t g_in = H5Gopen2(in, "params", H5P_DEFAULT);
  if (g_in < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s has no /params group", src);
  hid_t g_out = H5Gcreate2(out, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  char **names = NULL;
  int n = 0;
  int rc = g_out < 0 ? dt_fail(DT_EXIT_RUNTIME, "export %s: cannot create /params (HDF5)", tmp) : DT_OK;
  if (!rc) rc = link_names(g_in, src, &names, &n);
  for (int i = 0; i < n && !rc; i++) rc = copy_param(g_in, g_out, names[i], src, tmp);
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  if (g_out >= 0) H5Gclose(g_out);
  H5Gclose(g_in);
  return rc;
}

/* ---- the file --------------------------------------------------------------------- */

/* The root's attributes (the source's, marked as an export) and /state's. */
static int copy_attributes(hid_t in, hid_t out, const char *src, const char *tmp) {
  static const char *const own[] = {"kind", "exported_from", "exported", NULL};
  DT_TRY(dt_h5_copy_attrs(in, out, own, tmp));
  char when[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (dt_h5_write_attr_str(out, "kind", "export", tmp) || dt_h5_write_attr_str(out, "exported_from", src, tmp) ||
      dt_h5_write_attr_str(out, "exported", when, tmp))
    return dt_fail(DT_EXIT_RUNTIME, "export %s: writing the root attributes failed", tmp);
  hid_t s_in = H5Gopen2(in, "state", H5P_DEFAULT);
  if (s_in < 0) return dt_fail(DT_EXIT_DATA, "checkpoint %s has no /state group", src);
  hid_t s_out = H5Gcreate2(out, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = s_out < 0 ? dt_fail(DT_EXIT_RUNTIME, "export %s: cannot create /state (HDF5)", tmp)
                     : dt_h5_copy_attrs(s_in, s_out, NULL, tmp);
  if (s_out >= 0) H5Gclose(s_out);
  H5Gclose(s_in);
  return rc;
}

static int write_export(const char *src, const char *tmp, const dt_ckpt_inference *inf) {
  dt_h5_quiet();
  hid_t in = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (in < 0) return dt_fail(DT_EXIT_DATA, "cannot open checkpoint %s", src);
  hid_t out = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  int rc = out < 0
               ? dt_fail(DT_EXIT_RUNTIME, "export: cannot create %s (HDF5): check the directory and disk space", tmp)
               : DT_OK;
  if (!rc) rc = copy_attributes(in, out, src, tmp);
  if (!rc) rc = copy_params(in, out, src, tmp);
  H5Fclose(in);
  if (!rc) rc = dt_ckpt_write_inference(out, inf, tmp);
  if (out >= 0) {
    if (!rc && H5Fflush(out, H5F_SCOPE_GLOBAL) < 0) rc = dt_fail(DT_EXIT_RUNTIME, "export %s: H5Fflush failed", tmp);
    if (H5Fclose(out) < 0 && !rc) rc = dt_fail(DT_EXIT_RUNTIME, "export %s: H5Fclose failed", tmp);
  }
  return rc;
}

/* The temporary file's bytes, then the rename, then the directory. */
static int commit(const char *tmp, const char *dst) {
  int rc = DT_OK;
  int fd = open(tmp, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) rc = dt_fail(DT_EXIT_RUNTIME, "cannot fsync %s: %s", tmp, strerror(errno));
  if (fd >= 0) close(fd);
  if (!rc && rename(tmp, dst) != 0)
    rc = dt_fail(DT_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
  if (!rc) rc = dt_fsync_parent_dir(dst);
  return rc;
}

int dt_ckpt_export(const char *src, const char *dst, const dt_ckpt_inference *inf, int force) {
  int has = 0;
  DT_TRY(dt_ckpt_probe(src, &has, NULL));
  DT_TRY(check_destination(src, dst, force));
  dt_ckpt_inference own;
  memset(&own, 0, sizeof own);
  if (has) {
    DT_TRY(dt_ckpt_read_inference(src, &own));
    inf = &own;
  } else if (!inf) {
    return dt_fail(DT_EXIT_DATA, "checkpoint %s has no inference data and none was given (internal error)", src);
  }
  size_t n = strlen(dst) + 32;
  char *tmp = dt_xmalloc(n);
  snprintf(tmp, n, "%s.tmp.%ld", dst, (long)getpid());
  int rc = write_export(src, tmp, inf);
  if (!rc) rc = commit(tmp, dst);
  if (rc) unlink(tmp);
  free(tmp);
  dt_ckpt_inference_free(&own);
  return rc;
}
