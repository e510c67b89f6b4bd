# CPU conv kernel benchmark (Google Benchmark from Debian's libbenchmark-dev).
# Include from benchmarks/CMakeLists.txt: include(${CMAKE_CURRENT_LIST_DIR}/cpu_conv_bench.cmake)
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(cpu_conv_bench ${CMAKE_CURRENT_LIST_DIR}/cpu_conv_bench.cpp)
  target_link_libraries(cpu_conv_bench PRIVATE asap_engine benchmark::benchmark)
else()
  message(STATUS "Google Benchmark not found: cpu_conv_bench is skipped")
endif()
