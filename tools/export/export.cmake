# Interop outputs (model.safetensors, ONNX, TensorBoard, alphas.jsonl) and their CLIs; included
# from tools/CMakeLists.txt after asap_runlib exists.
file(GLOB EXPORT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/export/*.cpp)
target_sources(asap_runlib PRIVATE ${EXPORT_SOURCES})
foreach(tool asap_export asap_predict)
  add_executable(${tool} ${CMAKE_SOURCE_DIR}/tools/${tool}_main.cpp)
  target_link_libraries(${tool} PRIVATE asap_runlib)
endforeach()
