# Data parallelism (docs/distributed.md), when the engine is built with MPI: the communicator,
# gradient-bucket and sync-BN unit tests as one process and as two ranks, and asap_run end to end
# under mpirun (equal to one process, rank 0 alone writes, a killed rank ends the job, resume).
# Not in sanitizer builds: Open MPI's start-up allocations trip LeakSanitizer, so .ci/run leaves
# these tests out of the ASan run, and building them there would only cost CI minutes.
if(NOT ASAP_MPI OR ASAP_SANITIZE)
  return()
endif()
find_program(ASAP_MPIRUN NAMES mpirun mpiexec)
add_executable(asap_dist_tests ${CMAKE_SOURCE_DIR}/tests/distributed/dist_test_main.cpp
               ${CMAKE_SOURCE_DIR}/tests/distributed/test_communicator.cpp
               ${CMAKE_SOURCE_DIR}/tests/distributed/test_sync_batch_norm.cpp
               ${CMAKE_SOURCE_DIR}/tests/distributed/test_launch.cpp
               ${CMAKE_SOURCE_DIR}/tests/distributed/test_nccl.cpp)
set_source_files_properties(${CMAKE_SOURCE_DIR}/tests/distributed/dist_test_main.cpp PROPERTIES COMPILE_OPTIONS "-O0")
target_link_libraries(asap_dist_tests PRIVATE asap_engine Catch2::Catch2)
add_test(NAME dist_unit_1rank COMMAND asap_dist_tests "~[nccl]")
set_tests_properties(dist_unit_1rank PROPERTIES LABELS dist TIMEOUT 120 ENVIRONMENT "OMP_NUM_THREADS=1")
if(ASAP_MPIRUN)
  # Root (CI) needs Open MPI's consent: .ci/run exports OMPI_ALLOW_RUN_AS_ROOT*, and the wrapper
  # adds --allow-run-as-root for a root shell without them (bash tools/test.sh as root).
  add_test(NAME dist_unit_2ranks COMMAND bash ${CMAKE_SOURCE_DIR}/tests/distributed/mpirun2.sh ${ASAP_MPIRUN}
           $<TARGET_FILE:asap_dist_tests> "~[nccl]")
  set_tests_properties(dist_unit_2ranks PROPERTIES LABELS dist TIMEOUT 120 ENVIRONMENT "OMP_NUM_THREADS=1")
  if(TARGET asap_run)
    add_test(NAME asap_run_mpi_e2e COMMAND bash ${CMAKE_SOURCE_DIR}/tests/distributed/asap_run_mpi_e2e.sh
             ${ASAP_MPIRUN} $<TARGET_FILE:asap_run>)
    set_tests_properties(asap_run_mpi_e2e PROPERTIES LABELS dist TIMEOUT 300 RUN_SERIAL TRUE)
  endif()
endif()
