# Interop tests (docs/interop.md): PyTorch weights, ONNX export, TensorBoard events, alphas.jsonl.
# Each script exits 77 when its Python package is missing, which CTest reports as SKIPPED;
# .ci/run installs the packages so that CI runs them all.
if(TARGET asap_run AND TARGET asap_predict)
  add_test(NAME export_torch COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_export_torch.py
           $<TARGET_FILE:asap_run> $<TARGET_FILE:asap_predict>)
  set_tests_properties(export_torch PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=2")
endif()
if(TARGET asap_run AND TARGET asap_predict AND TARGET asap_export)
  add_test(NAME export_onnx COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_export_onnx.py
           $<TARGET_FILE:asap_run> $<TARGET_FILE:asap_predict> $<TARGET_FILE:asap_export>)
  set_tests_properties(export_onnx PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                       ENVIRONMENT "OMP_NUM_THREADS=2;ASAP_ONNX_VENV=${CMAKE_SOURCE_DIR}/build-onnx-venv")
endif()
if(TARGET asap_run)
  add_test(NAME export_tensorboard COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_export_tensorboard.py
           $<TARGET_FILE:asap_run>)
  set_tests_properties(export_tensorboard PROPERTIES TIMEOUT 600
                       ENVIRONMENT "OMP_NUM_THREADS=2;ASAP_ONNX_VENV=${CMAKE_SOURCE_DIR}/build-onnx-venv")
endif()
