// emu_runtime.cpp: the CPU emulator's side of CUDA (see emu.h): the fiber
// scheduler that runs a launch's threads, and stand-ins for the CUDA
// runtime and cuBLAS calls the backend's host code makes, so that the whole
// CUDA backend (host C files + kernels) runs, and is tested, on a machine
// without a GPU.
//
// Stand-ins behave as the documented API does where dtrain relies on it, and
// check more than it: device memory is tracked, so a copy or memset that
// leaves an allocation, or a free of a pointer that is not one, fails with
// an error instead of corrupting memory; new allocations are filled with
// 0xff bytes (NaN as float), so a result never written shows up. Streams are
// synchronous. cuBLAS's SGEMM (and its strided-batched form, one SGEMM per
// entry) is CBLAS in column-major order, with operands
// rounded to TF32 when the handle's math mode asks for it.
//
// DTK_EMU_NO_DEVICE=1 in the environment makes cudaGetDeviceCount fail as
// it does on a machine without a driver; DTK_EMU_SCHEDULE (forward, reverse,
// shuffle) picks the order in which a block's threads run between barriers.
// Fibers switch with _setjmp/_longjmp between stacks, which glibc's
// fortified longjmp (_FORTIFY_SOURCE, on by default on some distributions)
// would take for a corrupt jump.
#undef _FORTIFY_SOURCE
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ucontext.h>

#include <map>
#include <vector>

#include "emu.h"

#if defined(__SANITIZE_ADDRESS__)
#define DTK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DTK_EMU_ASAN 1
#endif
#endif
#if defined(DTK_EMU_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace dtk_emu {

uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;

namespace {

enum fiber_state { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

// A thread slot of the block. Its fiber is made once (ucontext, on a stack
// of its own) and then runs every block's thread of that slot in turn:
// fiber_main loops over bodies. Switches save and restore registers only
// (_setjmp/_longjmp): swapcontext also saves the signal mask (a system call)
// and the FPU environment, which made switching the emulator's main cost.
struct fiber {
  jmp_buf regs;    // where the fiber waits (in yield)
  ucontext_t ctx;  // its first entry only
  char *stack;
  bool started;
  fiber_state state;
  uint3 idx;
};

constexpr size_t kStack = 256 * 1024;
constexpr int kMaxThreads = 1024;

jmp_buf g_sched;  // where the scheduler waits (in resume)
fiber g_fibers[kMaxThreads];
int g_nthreads, g_current;
const char *g_kernel;
grid_body g_body;
void *g_ctx;
cudaError_t g_last_error = cudaSuccess;
uint64_t g_lanes[kMaxThreads / 32][32];

#if defined(DTK_EMU_ASAN)
// AddressSanitizer follows the stack switches: the scheduler's fake stack
// while a fiber runs, and the scheduler's stack bounds for switching back.
void *g_fake_stack;
const void *g_sched_bottom;
size_t g_sched_size;
#endif

[[noreturn]] void die(const char *what) {
  fprintf(stderr, "CUDA emulator: kernel %s, block (%u,%u,%u): %s\n", g_kernel, block_idx.x, block_idx.y, block_idx.z,
          what);
  abort();
}

// Switches from the scheduler into fiber i and back. Not inlined: locals
// of a caller must not live across _setjmp, which returns "twice".
__attribute__((noinline)) void resume(int i) {
  fiber &f = g_fibers[i];
  g_current = i;
  thread_idx = f.idx;
#if defined(DTK_EMU_ASAN)
  __sanitizer_start_switch_fiber(&g_fake_stack, f.stack, kStack);
#endif
  if (!_setjmp(g_sched)) {
    if (!f.started) {
      f.started = true;
      setcontext(&f.ctx); /* the fiber's first entry: fiber_main */
    }
    _longjmp(f.regs, 1);
  }
#if defined(DTK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(g_fake_stack, nullptr, nullptr);
#endif
}

// From a fiber back to the scheduler; returns when the scheduler resumes it.
__attribute__((noinline)) void yield() {
  fiber &f = g_fibers[g_current];
#if defined(DTK_EMU_ASAN)
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, g_sched_bottom, g_sched_size);
#endif
  if (!_setjmp(f.regs)) _longjmp(g_sched, 1);
#if defined(DTK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, &g_sched_bottom, &g_sched_size);
#endif
}

// A fiber's life: one body per block that uses its slot, forever.
void fiber_main() {
#if defined(DTK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_sched_bottom, &g_sched_size);
#endif
  for (;;) {
    g_body(g_ctx);
    g_fibers[g_current].state = DONE;
    yield();
  }
}

// The order in which runnable threads get to run between two barriers:
// any order is a valid CUDA schedule, and a kernel that misses a barrier
// gives different results under different orders. DTK_EMU_SCHEDULE =
// forward (the default), reverse, or shuffle (a new permutation per pass).
int schedule_order(int i) {
  static int mode = -1;
  static uint64_t lcg = 0x9e3779b97f4a7c15ull;
  static int perm[kMaxThreads];
  if (mode < 0) {
    const char *m = getenv("DTK_EMU_SCHEDULE");
    mode = !m ? 0 : !strcmp(m, "reverse") ? 1 : !strcmp(m, "shuffle") ? 2 : 0;
  }
  if (mode == 0) return i;
  if (mode == 1) return g_nthreads - 1 - i;
  if (i == 0) {
    for (int t = 0; t < g_nthreads; t++) perm[t] = t;
    for (int t = g_nthreads - 1; t > 0; t--) {
      lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
      const int j = (int)((lcg >> 33) % (uint64_t)(t + 1));
      const int tmp = perm[t];
      perm[t] = perm[j];
      perm[j] = tmp;
    }
  }
  return perm[i];
}

// Thread t of the block: its slot's fiber, made on first use (getcontext
// returns "twice", hence a function of its own).
__attribute__((noinline)) void init_fiber(int t) {
  fiber &f = g_fibers[t];
  if (!f.stack) {
    f.stack = static_cast<char *>(malloc(kStack));
    if (!f.stack) die("out of memory for fiber stacks");
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_main, 0);
  }
  f.state = RUNNABLE;
  f.idx.x = (unsigned)t % block_dim.x;
  f.idx.y = ((unsigned)t / block_dim.x) % block_dim.y;
  f.idx.z = (unsigned)t / (block_dim.x * block_dim.y);
}

// Runs one block's threads until all are done, releasing barriers when
// every live thread (of the block, or of the warp) has reached them.
void run_block() {
  for (int t = 0; t < g_nthreads; t++) init_fiber(t);
  for (;;) {
    bool ran = false;
    for (int i = 0; i < g_nthreads; i++) {
      const int t = schedule_order(i);
      if (g_fibers[t].state == RUNNABLE) {
        resume(t);
        ran = true;
      }
    }
    int live = 0, at_block = 0;
    for (int t = 0; t < g_nthreads; t++) {
      live += g_fibers[t].state != DONE;
      at_block += g_fibers[t].state == AT_BLOCK_BARRIER;
    }
    if (live == 0) return;
    if (at_block > 0 && at_block == live) {
      for (int t = 0; t < g_nthreads; t++)
        if (g_fibers[t].state == AT_BLOCK_BARRIER) g_fibers[t].state = RUNNABLE;
      continue;
    }
    bool released = false;
    for (int w = 0; w * 32 < g_nthreads; w++) {
      int lanes_live = 0, lanes_waiting = 0;
      for (int t = w * 32; t < g_nthreads && t < w * 32 + 32; t++) {
        lanes_live += g_fibers[t].state != DONE;
        lanes_waiting += g_fibers[t].state == AT_WARP_BARRIER;
      }
      if (lanes_waiting > 0 && lanes_waiting == lanes_live) {
        for (int t = w * 32; t < g_nthreads && t < w * 32 + 32; t++)
          if (g_fibers[t].state == AT_WARP_BARRIER) g_fibers[t].state = RUNNABLE;
        released = true;
      }
    }
    if (!released && !ran)
      die("deadlock: threads wait at a barrier (__syncthreads or a warp shuffle) that other live threads never "
          "reach");
  }
}

}  // namespace

void block_barrier() {
  g_fibers[g_current].state = AT_BLOCK_BARRIER;
  yield();
}

void warp_exchange(const void *in, void *out, int bytes, unsigned mask, int lane_xor) {
  const int t = g_current, w = t / 32, lane = t % 32;
  if (mask != 0xffffffffu) die("warp shuffle with a partial mask (not used by dtrain's kernels)");
  if ((w + 1) * 32 > g_nthreads) die("full-warp shuffle in a block whose last warp is partial");
  memcpy(&g_lanes[w][lane], in, (size_t)bytes);
  g_fibers[t].state = AT_WARP_BARRIER;
  yield();
  // Every lane of the warp has written its value; one that had exited
  // would have made the release impossible (deadlock above).
  for (int l = w * 32; l < w * 32 + 32; l++)
    if (g_fibers[l].state == DONE) die("a lane left the kernel before a full-warp shuffle");
  memcpy(out, &g_lanes[w][lane ^ lane_xor], (size_t)bytes);
  g_fibers[t].state = AT_WARP_BARRIER;  // nobody overwrites the slots until all have read
  yield();
}

void run_grid(dim3 grid, dim3 block, const char *kernel, grid_body body, void *ctx) {
  const uint64_t threads = (uint64_t)block.x * block.y * block.z;
  if (threads == 0 || threads > kMaxThreads || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) {
    g_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  g_kernel = kernel;
  g_body = body;
  g_ctx = ctx;
  g_nthreads = (int)threads;
  grid_dim = grid;
  block_dim = block;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        block_idx.x = x;
        block_idx.y = y;
        block_idx.z = z;
        run_block();
      }
}

}  // namespace dtk_emu

/* ---- the CUDA runtime ---- */

namespace {

std::map<uintptr_t, size_t> g_device;  // device allocations: start -> bytes
std::map<uintptr_t, size_t> g_pinned;
size_t g_device_bytes;
const size_t kDeviceMemory = (size_t)16 << 30;  // what the emulated GPU "has"
int g_stream_tag;

// Whether [p, p + bytes) lies inside one allocation of `m`.
bool inside(const std::map<uintptr_t, size_t> &m, const void *p, size_t bytes) {
  uintptr_t a = (uintptr_t)p;
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}

cudaError_t fail(cudaError_t e, const char *what) {
  fprintf(stderr, "CUDA emulator: %s\n", what);
  return e;
}

// DTK_EMU_NO_DEVICE=1: behave as the runtime does without a driver.
bool no_device() {
  const char *no = getenv("DTK_EMU_NO_DEVICE");
  return no && strcmp(no, "1") == 0;
}

}  // namespace

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
  if (no_device()) return cudaErrorInsufficientDriver;
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "dtrain CPU emulator");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->totalGlobalMem = kDeviceMemory;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (no_device()) return cudaErrorInsufficientDriver;
  return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
  (void)flags;
  *stream = (cudaStream_t)&g_stream_tag;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  (void)stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  (void)stream;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  if (no_device()) return cudaErrorInsufficientDriver;
  if (bytes == 0 || g_device_bytes + bytes > kDeviceMemory) return cudaErrorMemoryAllocation;
  void *q = malloc(bytes);
  if (!q) return cudaErrorMemoryAllocation;
  memset(q, 0xff, bytes);
  g_device[(uintptr_t)q] = bytes;
  g_device_bytes += bytes;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  auto it = g_device.find((uintptr_t)p);
  if (it == g_device.end()) return fail(cudaErrorInvalidValue, "cudaFree of a pointer that is no allocation");
  g_device_bytes -= it->second;
  g_device.erase(it);
  free(p);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) {
  if (no_device()) return cudaErrorInsufficientDriver;
  void *q = malloc(bytes ? bytes : 1);
  if (!q) return cudaErrorMemoryAllocation;
  g_pinned[(uintptr_t)q] = bytes ? bytes : 1;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
  auto it = g_pinned.find((uintptr_t)p);
  if (it == g_pinned.end()) return fail(cudaErrorInvalidValue, "cudaFreeHost of a pointer that is no allocation");
  g_pinned.erase(it);
  free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s) {
  (void)s;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (src_dev && !inside(g_device, src, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the source is not inside one device allocation");
  if (dst_dev && !inside(g_device, dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the destination is not inside one device allocation");
  if (!src_dev && inside(g_device, src, 1))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: a host source that is device memory");
  if (!dst_dev && inside(g_device, dst, 1))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: a host destination that is device memory");
  memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
  (void)s;
  if (!inside(g_device, p, bytes)) return fail(cudaErrorInvalidValue, "cudaMemsetAsync outside a device allocation");
  memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int value, size_t width, size_t height, cudaStream_t s) {
  (void)s;
  if (width > pitch) return cudaErrorInvalidValue;
  for (size_t r = 0; r < height; r++) {
    char *row = (char *)p + r * pitch;
    if (!inside(g_device, row, width)) return fail(cudaErrorInvalidValue, "cudaMemset2DAsync outside an allocation");
    memset(row, value, width);
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  *free_bytes = kDeviceMemory - g_device_bytes;
  *total = kDeviceMemory;
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = dtk_emu::g_last_error;
  dtk_emu::g_last_error = cudaSuccess;
  return e;
}

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaError (emulated)";
  }
}

const char *cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorInsufficientDriver ? "CUDA driver version is insufficient for CUDA runtime version (emulated)"
                                          : "emulated CUDA error";
}

/* ---- cuBLAS ---- */

struct cublasContext {
  cublasMath_t math;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
  *h = new cublasContext{CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  (void)h;
  (void)s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *ws, size_t bytes) {
  (void)h;
  return inside(g_device, ws, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t mode) {
  (void)h;
  return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}
const char *cublasGetStatusName(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS         ? "CUBLAS_STATUS_SUCCESS"
         : s == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE"
                                            : "CUBLAS_STATUS_(emulated)";
}
const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

}  // extern "C"

namespace {

// Round to TF32 (10 explicit mantissa bits), nearest-even, as the tensor
// cores read float operands.
float to_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
  float y;
  memcpy(&y, &u, 4);
  return y;
}

// A column-major operand of `rows` x `cols` with leading dimension ld,
// copied and rounded to TF32.
std::vector<float> tf32_copy(const float *a, int rows, int cols, int ld) {
  std::vector<float> out((size_t)ld * (size_t)cols);
  for (int c = 0; c < cols; c++)
    for (int r = 0; r < rows; r++) out[(size_t)c * ld + r] = to_tf32(a[(size_t)c * ld + r]);
  return out;
}

bool device_matrix(const float *p, int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return true;
  return inside(g_device, p, ((size_t)(cols - 1) * ld + rows) * sizeof(float));
}

}  // namespace

extern "C" {

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                              float *c, int ldc) {
  const bool tra = ta != CUBLAS_OP_N, trb = tb != CUBLAS_OP_N;
  const int a_rows = tra ? k : m, a_cols = tra ? m : k, b_rows = trb ? n : k, b_cols = trb ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
      ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (!device_matrix(a, a_rows, a_cols, lda) || !device_matrix(b, b_rows, b_cols, ldb) ||
      !device_matrix(c, m, n, ldc)) {
    fprintf(stderr, "CUDA emulator: cublasSgemm operand outside a device allocation\n");
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const CBLAS_TRANSPOSE cta = tra ? CblasTrans : CblasNoTrans, ctb = trb ? CblasTrans : CblasNoTrans;
  if (h->math == CUBLAS_TF32_TENSOR_OP_MATH) {
    std::vector<float> a32 = tf32_copy(a, a_rows, a_cols, lda), b32 = tf32_copy(b, b_rows, b_cols, ldb);
    cblas_sgemm(CblasColMajor, cta, ctb, m, n, k, *alpha, a32.data(), lda, b32.data(), ldb, *beta, c, ldc);
  } else {
    cblas_sgemm(CblasColMajor, cta, ctb, m, n, k, *alpha, a, lda, b, ldb, *beta, c, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}

// One SGEMM per batch entry, each operand at its stride (a batch entry's
// operand outside a device allocation fails as cublasSgemm does).
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *a, int lda, long long int stride_a,
                                         const float *b, int ldb, long long int stride_b, const float *beta, float *c,
                                         int ldc, long long int stride_c, int batch) {
  if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  for (int i = 0; i < batch; i++) {
    cublasStatus_t st = cublasSgemm_v2(h, ta, tb, m, n, k, alpha, a + (long long)i * stride_a, lda,
                                       b + (long long)i * stride_b, ldb, beta, c + (long long)i * stride_c, ldc);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgeam(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           const float *alpha, const float *a, int lda, const float *beta, const float *b, int ldb,
                           float *c, int ldc) {
  (void)h;
  if (ta != CUBLAS_OP_N || tb != CUBLAS_OP_N) return CUBLAS_STATUS_NOT_SUPPORTED;  // not used by dtrain
  if (m < 0 || n < 0 || lda < (m > 1 ? m : 1) || ldb < (m > 1 ? m : 1) || ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((c == a && lda != ldc) || (c == b && ldb != ldc)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!device_matrix(a, m, n, lda) || !device_matrix(b, m, n, ldb) || !device_matrix(c, m, n, ldc))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++)
      c[(size_t)j * ldc + i] = *alpha * a[(size_t)j * lda + i] + *beta * b[(size_t)j * ldb + i];
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
