# Decides whether the CUDA backend is built. A CPU-only build never touches the toolkit.
# ASAP_CUDA_EMU=ON compiles the same kernels/cuda sources as host C++ against the project's CUDA
# emulator (kernels/cuda_emu): Device::cuda() then runs on the CPU, with no nvcc and no GPU.
option(ASAP_CUDA_EMU "Run the CUDA backend on the CPU through the CUDA emulator (no nvcc, no GPU)" OFF)
set(ASAP_WITH_CUDA OFF)
set(ASAP_WITH_CUDA_EMU OFF)
if(ASAP_CUDA_EMU)
  if(ASAP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ASAP_CUDA_EMU=ON and ASAP_CUDA=ON are exclusive: the emulator replaces nvcc")
  endif()
  set(ASAP_WITH_CUDA_EMU ON)
  message(STATUS "CUDA backend: emulated on the CPU (kernels/cuda_emu; cuDNN not emulated: im2col path)")
elseif(ASAP_CUDA STREQUAL "ON" OR ASAP_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(ASAP_WITH_CUDA ON)
  elseif(ASAP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ASAP_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

if(ASAP_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  # cuDNN: in the toolkit, or under CUDNN_ROOT (e.g. the nvidia-cudnn Python wheel's folder).
  set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "Folder holding include/cudnn.h and lib/libcudnn.so")
  find_path(CUDNN_INCLUDE_DIR cudnn.h
    HINTS ${CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES include)
  # The library must come from the same installation as the header (a wheel's cudnn.h with the
  # system's libcudnn is an ABI mismatch): look next to the header first, one folder per name
  # order (NAMES_PER_DIR), and only then elsewhere.
  if(CUDNN_INCLUDE_DIR)
    get_filename_component(CUDNN_PREFIX ${CUDNN_INCLUDE_DIR} DIRECTORY)
    find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 NAMES_PER_DIR
      HINTS ${CUDNN_PREFIX} PATH_SUFFIXES lib lib64 lib/x64 lib/x86_64-linux-gnu NO_DEFAULT_PATH)
  endif()
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 NAMES_PER_DIR
    HINTS ${CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES lib lib64 lib/x64)
  if(CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
    set(ASAP_WITH_CUDNN ON)
    message(STATUS "cuDNN: ${CUDNN_LIBRARY}")
  else()
    set(ASAP_WITH_CUDNN OFF)
    message(STATUS "cuDNN not found: general convs use im2col + cuBLAS (set CUDNN_ROOT to enable)")
  endif()
  message(STATUS "CUDA backend: ON (architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "CUDA backend: OFF")
endif()
