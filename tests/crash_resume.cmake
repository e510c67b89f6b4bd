# Crash safety of asap_run (tests/test_crash_resume.py): SIGKILL at random moments, --resume until
# done, same genotype/accuracy/metrics as an uninterrupted run; plus resource-error exits.
# Included from tests/CMakeLists.txt; needs the asap_run target and python3 (about 1-2 minutes).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET asap_run AND Python3_Interpreter_FOUND)
  add_test(NAME crash_resume
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/test_crash_resume.py $<TARGET_FILE:asap_run>)
  set_tests_properties(crash_resume PROPERTIES TIMEOUT 400 LABELS "crash;slow"
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=passive")
endif()
