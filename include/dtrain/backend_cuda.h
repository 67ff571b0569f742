/* backend_cuda.h: what other modules may know about the CUDA backend beyond
 * the op table of backend.h.
 *
 * The CUDA backend runs every op in order on one stream of its own, on the
 * device it was created for (dt_backend_cuda_create in backend.h). The comm
 * module orders its NCCL all-reduce after that stream with events, on a
 * stream of its own, and stages sparse exchanges through pinned host memory
 * from dt_cuda_host_alloc.
 *
 * Threading: one dt_backend is used by one host thread at a time (ops share
 * the backend's scratch buffers). Each op makes the backend's device current
 * on the calling thread first.
 *
 * Every function here exists in every build: without CUDA compiled in, the
 * stream is NULL and the host allocator is plain malloc, so callers need no
 * #ifdef.
 */
#ifndef DTRAIN_BACKEND_CUDA_H
#define DTRAIN_BACKEND_CUDA_H

#include <stddef.h>

#include "dtrain/backend.h"

/* The cudaStream_t the backend's ops run on, as a void * so that this header
 * needs no CUDA headers; NULL when `be` is not a CUDA backend. The stream is
 * owned by the backend and lives until be->destroy. */
void *dt_backend_cuda_stream(dt_backend *be);

/* The CUDA device ordinal of a CUDA backend, -1 for any other backend. */
int dt_backend_cuda_device(dt_backend *be);

/* Pinned (page-locked) host memory for staging transfers: *out gets `bytes`
 * bytes (at least 1), or the call fails with DT_EXIT_RUNTIME and a message
 * naming the CUDA error. Release with dt_cuda_host_free, never free(). In a
 * build without CUDA this is malloc. Pinned memory is a scarce system
 * resource: allocate staging buffers once and reuse them. */
int dt_cuda_host_alloc(size_t bytes, void **out);
/* Releases memory from dt_cuda_host_alloc (NULL is ignored). */
void dt_cuda_host_free(void *p);

/* Device memory in use and total on the backend's device, in bytes
 * (cudaMemGetInfo); DT_EXIT_RUNTIME for a non-CUDA backend. */
int dt_backend_cuda_mem_info(dt_backend *be, size_t *used_bytes, size_t *total_bytes);

#endif
