/* ckpt_internal.h: what the checkpoint module's files share (not public).
 *
 * ckpt.c            checkpoints: atomic writes by rank 0, validated reads
 * ckpt_inference.c  the /inference group: write, read, check
 * ckpt_export.c     dtrain export: parameters + inference data, no optimizer state
 */
#ifndef DTRAIN_CKPT_INTERNAL_H
#define DTRAIN_CKPT_INTERNAL_H

#include <hdf5.h>

#include "dtrain/ckpt.h"

/* Writes `inf` as /inference into the open file (`path` names it in messages). */
int dt_ckpt_write_inference(hid_t file, const dt_ckpt_inference *inf, const char *path);
/* 1 when the open file is an export (root attribute kind = "export"). */
int dt_ckpt_is_export_file(hid_t file);

#endif
