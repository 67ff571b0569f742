// launch.cu: the sync-debug switch read by every launch wrapper
// (dtk::after_launch). On in a build configured with
// -DDTRAIN_CUDA_SYNC_DEBUG=ON; otherwise off until dtk_set_sync_debug(1),
// so that one build can run its tests synchronised and its benchmarks not.
#include "common.cuh"

namespace {

#if defined(DTRAIN_CUDA_SYNC_DEBUG)
constexpr int kBuiltIn = 1;
#else
constexpr int kBuiltIn = 0;
#endif

int g_sync_debug = kBuiltIn;

}  // namespace

extern "C" {

int dtk_sync_debug(void) { return g_sync_debug; }

void dtk_set_sync_debug(int on) { g_sync_debug = on || kBuiltIn; }

}  // extern "C"
