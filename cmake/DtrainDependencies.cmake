# Finds dtrain's dependencies. Each missing one stops the configure step with
# a message naming the Debian package that provides it.
#
# Sets: DTRAIN_DEP_TARGETS (libraries for dtrain_core), DTRAIN_DEP_DEFINES,
# DTRAIN_HAVE_MPI, DTRAIN_HAVE_CUDA, DTRAIN_HAVE_NCCL.

set(DTRAIN_DEP_TARGETS "")
set(DTRAIN_DEP_DEFINES "")

function(dtrain_missing what package)
  message(FATAL_ERROR "dtrain needs ${what}, which was not found. "
    "On Debian/Ubuntu: apt-get install ${package} (or run tools/setup.sh, which installs everything).")
endfunction()

# zlib
find_package(ZLIB)
if(NOT ZLIB_FOUND)
  dtrain_missing("zlib" "zlib1g-dev")
endif()
list(APPEND DTRAIN_DEP_TARGETS ZLIB::ZLIB)

# cJSON (its CMake config defines the target `cjson`; headers under <cjson/cJSON.h>)
find_package(cJSON QUIET)
if(cJSON_FOUND AND TARGET cjson)
  list(APPEND DTRAIN_DEP_TARGETS cjson)
else()
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(CJSON QUIET IMPORTED_TARGET libcjson)
  endif()
  if(NOT CJSON_FOUND)
    dtrain_missing("cJSON" "libcjson-dev")
  endif()
  list(APPEND DTRAIN_DEP_TARGETS PkgConfig::CJSON)
endif()

# HDF5 (C library; Debian's serial flavour)
find_package(HDF5 COMPONENTS C)
if(NOT HDF5_FOUND)
  dtrain_missing("HDF5 (C)" "libhdf5-dev")
endif()
if(TARGET hdf5::hdf5)
  list(APPEND DTRAIN_DEP_TARGETS hdf5::hdf5)
else()
  add_library(dtrain_hdf5 INTERFACE)
  target_include_directories(dtrain_hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(dtrain_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
  target_compile_definitions(dtrain_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
  list(APPEND DTRAIN_DEP_TARGETS dtrain_hdf5)
endif()

# CBLAS (OpenBLAS) for the CPU backend. The OpenMP build of OpenBLAS is
# preferred: its GEMMs then share the CPU backend's OpenMP thread pool, where
# the pthread build keeps a second pool whose threads spin against OpenMP's
# (measured: two thirds of a training step's time spinning on 2 cores).
find_library(DTRAIN_OPENBLAS_OPENMP openblas PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp
  /usr/lib/aarch64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
if(DTRAIN_OPENBLAS_OPENMP)
  set(BLAS_FOUND TRUE)
  set(BLAS_LIBRARIES ${DTRAIN_OPENBLAS_OPENMP})
  message(STATUS "CBLAS: OpenBLAS (OpenMP build) ${DTRAIN_OPENBLAS_OPENMP}")
else()
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS)
  if(BLAS_FOUND)
    message(STATUS "CBLAS: ${BLAS_LIBRARIES} (install libopenblas-openmp-dev for one shared thread pool)")
  endif()
endif()
find_path(DTRAIN_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread openblas-pthread)
if(NOT BLAS_FOUND OR NOT DTRAIN_CBLAS_INCLUDE)
  dtrain_missing("a CBLAS (OpenBLAS)" "libopenblas-dev")
endif()
add_library(dtrain_cblas INTERFACE)
target_include_directories(dtrain_cblas INTERFACE ${DTRAIN_CBLAS_INCLUDE})
target_link_libraries(dtrain_cblas INTERFACE ${BLAS_LIBRARIES})
list(APPEND DTRAIN_DEP_TARGETS dtrain_cblas)

# OpenMP: the CPU backend's one thread pool. Its loops run over rows in
# parallel, and gemm splits C over the same threads with OpenBLAS running
# single-threaded inside each (two pools would fight over the cores).
find_package(OpenMP COMPONENTS C)
if(NOT OpenMP_C_FOUND)
  dtrain_missing("OpenMP for C" "libgomp1 (part of gcc)")
endif()
list(APPEND DTRAIN_DEP_TARGETS OpenMP::OpenMP_C)

# Random123 (header-only counter-based RNG; identical in C and CUDA)
find_path(DTRAIN_RANDOM123_INCLUDE Random123/philox.h)
if(NOT DTRAIN_RANDOM123_INCLUDE)
  dtrain_missing("Random123" "librandom123-dev")
endif()
add_library(dtrain_random123 INTERFACE)
target_include_directories(dtrain_random123 INTERFACE ${DTRAIN_RANDOM123_INCLUDE})
list(APPEND DTRAIN_DEP_TARGETS dtrain_random123)

# MPI: AUTO | ON | OFF
set(DTRAIN_HAVE_MPI OFF)
if(NOT DTRAIN_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS C)
  if(MPI_C_FOUND)
    set(DTRAIN_HAVE_MPI ON)
    list(APPEND DTRAIN_DEP_TARGETS MPI::MPI_C)
    list(APPEND DTRAIN_DEP_DEFINES DTRAIN_HAVE_MPI=1)
  elseif(DTRAIN_MPI STREQUAL "ON")
    dtrain_missing("MPI (DTRAIN_MPI=ON)" "libopenmpi-dev openmpi-bin")
  else()
    message(STATUS "MPI not found: building the single-process version (DTRAIN_MPI=AUTO)")
  endif()
endif()

# CUDA: AUTO | ON | OFF. cudart + cuBLAS required for the backend, NCCL optional.
set(DTRAIN_HAVE_CUDA OFF)
set(DTRAIN_HAVE_NCCL OFF)
if(NOT DTRAIN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND AND TARGET CUDA::cublas)
      set(DTRAIN_HAVE_CUDA ON)
      list(APPEND DTRAIN_DEP_DEFINES DTRAIN_HAVE_CUDA=1)
      # Never link CUDA::cuda_driver: only a stub libcuda exists on machines
      # without a GPU, and a binary needing libcuda.so.1 would not start there.
      list(APPEND DTRAIN_DEP_TARGETS CUDA::cudart CUDA::cublas)
      find_path(DTRAIN_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include)
      find_library(DTRAIN_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64)
      if(DTRAIN_NCCL_INCLUDE AND DTRAIN_NCCL_LIBRARY)
        set(DTRAIN_HAVE_NCCL ON)
        add_library(dtrain_nccl INTERFACE)
        target_include_directories(dtrain_nccl INTERFACE ${DTRAIN_NCCL_INCLUDE})
        target_link_libraries(dtrain_nccl INTERFACE ${DTRAIN_NCCL_LIBRARY})
        list(APPEND DTRAIN_DEP_TARGETS dtrain_nccl)
        list(APPEND DTRAIN_DEP_DEFINES DTRAIN_HAVE_NCCL=1)
      else()
        message(STATUS "NCCL not found: the CUDA backend will all-reduce over MPI through host memory")
      endif()
    elseif(DTRAIN_CUDA STREQUAL "ON")
      message(FATAL_ERROR "DTRAIN_CUDA=ON but the CUDA Toolkit (cudart, cuBLAS) was not found. Install the CUDA Toolkit or configure with -DDTRAIN_CUDA=OFF.")
    endif()
  elseif(DTRAIN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "DTRAIN_CUDA=ON but no CUDA compiler (nvcc) was found. Put nvcc on PATH, set CMAKE_CUDA_COMPILER, or configure with -DDTRAIN_CUDA=OFF.")
  else()
    message(STATUS "nvcc not found: building without the CUDA backend (DTRAIN_CUDA=AUTO)")
  endif()
endif()
