# asap_bench (BENCHMARK.md search-step benchmark); included from tools/CMakeLists.txt.
add_executable(asap_bench ${CMAKE_SOURCE_DIR}/tools/asap_bench.cpp)
target_link_libraries(asap_bench PRIVATE asap_nas asap_engine OpenMP::OpenMP_CXX)
