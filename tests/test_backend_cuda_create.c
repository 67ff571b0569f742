/* Creating the CUDA backend: without a usable device (or without CUDA
 * compiled in) it fails with exit code 4 and a message that says what the
 * CUDA error was and what to do; with a device it comes up with its stream,
 * memory ops and TF32 switch working. Each test skips the half that does not
 * apply to the machine it runs on, so this file runs everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dtrain/backend.h"
#include "dtrain/backend_cuda.h"
#include "dtrain/error.h"

static int device_count(void) {
  char why[512] = "";
  int n = dt_backend_cuda_device_count(why, sizeof why);
  if (n == 0) printf("no usable CUDA device: %s\n", why);
  return n;
}

static void test_create_without_device_fails_with_exit_4(void **state) {
  (void)state;
  if (device_count() > 0) skip();
  dt_error_clear();
  dt_backend *be = (dt_backend *)0x1;
  int rc = dt_backend_cuda_create(0, 0, &be);
  const char *msg = dt_error_message();
  printf("message: %s\n", msg);
  assert_int_equal(rc, DT_EXIT_RUNTIME);
  assert_null(be);
  /* Says which backend failed, why, and what to do instead. */
  assert_non_null(strstr(msg, "backend \"cuda\""));
  assert_non_null(strstr(msg, "backend.name = \"cpu\""));
#if defined(DTRAIN_HAVE_CUDA) || defined(DTRAIN_CUDA_EMU)
  /* The CUDA error itself, by name (cudaErrorInsufficientDriver on a machine
   * without a driver, cudaErrorNoDevice with a driver but no GPU), or the
   * architecture a GPU too old for this build has. */
  assert_true(strstr(msg, "cudaGetDeviceCount failed with cudaError") || strstr(msg, "sees no device") ||
              strstr(msg, "compute capability"));
  if (!strstr(msg, "compute capability")) assert_non_null(strstr(msg, "nvidia-smi"));
#else
  assert_non_null(strstr(msg, "built without CUDA"));
  assert_non_null(strstr(msg, "-DDTRAIN_CUDA=ON"));
#endif
}

static void test_device_count_gives_a_reason_when_zero(void **state) {
  (void)state;
  char why[512] = "";
  int n = dt_backend_cuda_device_count(why, sizeof why);
  assert_true(n >= 0);
  if (n > 0) skip();
  assert_true(strlen(why) > 10);
  /* A NULL buffer is allowed. */
  assert_int_equal(dt_backend_cuda_device_count(NULL, 0), 0);
}

static void test_helpers_on_other_backends(void **state) {
  (void)state;
  dt_backend fake;
  memset(&fake, 0, sizeof fake);
  fake.name = "cpu";
  assert_null(dt_backend_cuda_stream(&fake));
  assert_null(dt_backend_cuda_stream(NULL));
  assert_int_equal(dt_backend_cuda_device(&fake), -1);
  size_t used = 0, total = 0;
  assert_int_equal(dt_backend_cuda_mem_info(&fake, &used, &total), DT_EXIT_RUNTIME);
}

static void test_host_alloc(void **state) {
  (void)state;
  void *p = NULL;
  int rc = dt_cuda_host_alloc(1 << 16, &p);
#if defined(DTRAIN_HAVE_CUDA) || defined(DTRAIN_CUDA_EMU)
  if (device_count() == 0) {
    /* Pinned memory needs a driver: the failure names the CUDA call. */
    printf("message: %s\n", dt_error_message());
    assert_int_equal(rc, DT_EXIT_RUNTIME);
    assert_null(p);
    assert_non_null(strstr(dt_error_message(), "cudaMallocHost"));
    return;
  }
#endif
  assert_int_equal(rc, 0);
  assert_non_null(p);
  memset(p, 0xab, 1 << 16);
  dt_cuda_host_free(p);
  dt_cuda_host_free(NULL);
}

static void test_create_on_a_device(void **state) {
  (void)state;
  int n = device_count();
  if (n == 0) skip();
  for (int tf32 = 0; tf32 <= 1; tf32++) {
    dt_backend *be = NULL;
    int rc = dt_backend_cuda_create(0, tf32, &be);
    if (rc) printf("create failed: %s\n", dt_error_message());
    assert_int_equal(rc, 0);
    assert_string_equal(be->name, "cuda");
    assert_non_null(dt_backend_cuda_stream(be));
    assert_int_equal(dt_backend_cuda_device(be), 0);
    size_t used = 0, total = 0;
    assert_int_equal(dt_backend_cuda_mem_info(be, &used, &total), 0);
    assert_true(total > 0 && used <= total);

    /* Round trip through device memory, with copy and zero. */
    float host[1000], back[1000];
    for (int i = 0; i < 1000; i++) host[i] = (float)i * 0.5f - 7.0f;
    float *a = be->alloc(be, sizeof host), *b = be->alloc(be, sizeof host);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(be->upload(be, a, host, sizeof host), 0);
    assert_int_equal(be->copy(be, b, a, sizeof host), 0);
    assert_int_equal(be->download(be, back, b, sizeof host), 0);
    assert_memory_equal(host, back, sizeof host);
    assert_int_equal(be->zero(be, b, 10 * sizeof(float)), 0);
    assert_int_equal(be->sync(be), 0);
    assert_int_equal(be->download(be, back, b, sizeof host), 0);
    for (int i = 0; i < 10; i++) assert_true(back[i] == 0.0f);
    assert_true(back[10] == host[10]);
    be->free(be, a);
    be->free(be, b);

    /* An impossible allocation fails with a message instead of crashing. */
    dt_error_clear();
    void *huge = be->alloc(be, (size_t)1 << 50);
    assert_null(huge);
    assert_non_null(strstr(dt_error_message(), "cudaMalloc"));
    be->destroy(be);
  }

  /* A device ordinal past the last one fails with exit code 4. */
  dt_backend *be = NULL;
  assert_int_equal(dt_backend_cuda_create(n + 7, 0, &be), DT_EXIT_RUNTIME);
  assert_null(be);
  assert_non_null(strstr(dt_error_message(), "visible"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_without_device_fails_with_exit_4),
      cmocka_unit_test(test_device_count_gives_a_reason_when_zero),
      cmocka_unit_test(test_helpers_on_other_backends),
      cmocka_unit_test(test_host_alloc),
      cmocka_unit_test(test_create_on_a_device),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
