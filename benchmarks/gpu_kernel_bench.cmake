# GPU kernel timing harness (CUDA builds only). Include from benchmarks/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/gpu_kernel_bench.cmake)
if(ASAP_WITH_CUDA)
  add_executable(gpu_kernel_bench ${CMAKE_CURRENT_LIST_DIR}/gpu_kernel_bench.cu)
  target_link_libraries(gpu_kernel_bench PRIVATE asap_engine CUDA::cudart)
endif()
