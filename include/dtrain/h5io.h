/* h5io.h: the one HDF5 helper layer (prepared data sets and checkpoints):
 * checked reads and writes of 1-D datasets, string arrays, attributes and
 * row ranges of 1-D/2-D datasets, with messages naming the file and the
 * object. HDF5's own error printing is switched off; the innermost HDF5
 * message is appended to ours instead (for a failed read or write of the
 * file, the operating system's error, e.g. "No space left on device").
 *
 * Every dataset created here is chunked with HDF5's Fletcher-32 checksum
 * filter, so flipped bytes are a read error naming the dataset (files
 * written before, without the filter, read as before), and records no
 * object times, so the same content gives the same file bytes. HDF5's exit
 * handler is off (it crashes on a file whose close failed, e.g. on a full
 * disk): close every file with dt_h5_close_file.
 */
#ifndef DTRAIN_H5IO_H
#define DTRAIN_H5IO_H

#include <hdf5.h>
#include <stdint.h>

/* Turns off HDF5's automatic error printing (idempotent). */
void dt_h5_quiet(void);
/* The innermost message on HDF5's error stack ("" if none). */
const char *dt_h5_last_error(void);

/* Opens a prepared data set read-only after checking that it is an HDF5
 * file, opens, and has format version `version`. Fails with DT_EXIT_DATA
 * and a message saying what to do (re-run prep). */
int dt_h5_open_prepared(const char *path, int version, hid_t *file);

/* ---- writing ---- */
/* A group without object times. */
hid_t dt_h5_create_group(hid_t loc, const char *name);
/* H5Dclose of a dataset being written, checked (chunks are written out
 * here); ds < 0 is a no-op. */
int dt_h5_close_dataset(hid_t ds, const char *path, const char *name);
/* Flushes (when rc is DT_OK) and closes a file being written; returns rc,
 * or the first failure naming the file and the OS error. f < 0: returns rc. */
int dt_h5_close_file(hid_t f, const char *path, int rc);
int dt_h5_write_array(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, const void *data, int64_t n,
                      const char *path);
int dt_h5_write_i32(hid_t loc, const char *name, const int32_t *data, int64_t n, const char *path);
int dt_h5_write_i64(hid_t loc, const char *name, const int64_t *data, int64_t n, const char *path);
int dt_h5_write_f32(hid_t loc, const char *name, const float *data, int64_t n, const char *path);
/* Fixed-length strings (longest + 1 bytes, NUL-terminated). */
int dt_h5_write_strings(hid_t loc, const char *name, char *const *s, int64_t n, const char *path);
int dt_h5_write_attr_int(hid_t loc, const char *name, int64_t v, const char *path);
int dt_h5_write_attr_str(hid_t loc, const char *name, const char *v, const char *path);
int dt_h5_write_attr_f64(hid_t loc, const char *name, double v, const char *path);
/* Copies every attribute of object `src` to object `dst` (any type and
 * shape, variable-length strings included), except those named in `skip`
 * (NULL-terminated list; may be NULL). */
int dt_h5_copy_attrs(hid_t src, hid_t dst, const char *const *skip, const char *path);

/* ---- reading ---- */
/* Length of 1-D dataset `name`. */
int dt_h5_length(hid_t file, const char *name, int64_t *n, const char *path);
/* Reads 1-D dataset `name` of `expect` elements (-1: any; *n gets it) into
 * a new array. */
int dt_h5_read_array(hid_t file, const char *name, hid_t mem_type, size_t elem, int64_t expect, void **out, int64_t *n,
                     const char *path);
int dt_h5_read_strings(hid_t file, const char *name, int64_t expect, char ***out, const char *path);
int dt_h5_read_attr_int(hid_t loc, const char *name, int64_t *v, const char *path);
int dt_h5_read_attr_f64(hid_t loc, const char *name, double *v, const char *path);
/* The string attribute (fixed or variable length), malloc'd. */
int dt_h5_read_attr_str(hid_t loc, const char *name, char **v, const char *path);

/* ---- row ranges of 1-D [rows] or 2-D [rows, cols] datasets ---- */
/* Creates dataset `name` of file_type: [rows] when cols == 0, else [rows, cols]. */
int dt_h5_create_rows(hid_t loc, const char *name, hid_t file_type, int64_t rows, int64_t cols, hid_t *out,
                      const char *path);
/* Writes (reads) rows [row0, row0 + n) of dataset ds from (into) host
 * memory of mem_type, cols values per row. */
int dt_h5_write_rows(hid_t ds, hid_t mem_type, int64_t row0, int64_t n, int64_t cols, const void *buf, const char *path,
                     const char *name);
int dt_h5_read_rows(hid_t ds, hid_t mem_type, int64_t row0, int64_t n, int64_t cols, void *buf, const char *path,
                    const char *name);
/* Rank and dimensions (up to 4) of a dataset; -1 when unreadable. */
int dt_h5_shape(hid_t ds, int64_t dims[4]);

#endif
