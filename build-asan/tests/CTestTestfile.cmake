# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build-asan/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[unit.test_ctx]=] "/work/main/build-asan/tests/test_ctx")
set_tests_properties([=[unit.test_ctx]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_gguf_hostile]=] "/work/main/build-asan/tests/test_gguf_hostile")
set_tests_properties([=[unit.test_gguf_hostile]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_mem]=] "/work/main/build-asan/tests/test_mem")
set_tests_properties([=[unit.test_mem]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_tensor]=] "/work/main/build-asan/tests/test_tensor")
set_tests_properties([=[unit.test_tensor]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_text_bnb]=] "/work/main/build-asan/tests/test_text_bnb")
set_tests_properties([=[unit.test_text_bnb]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_text_config]=] "/work/main/build-asan/tests/test_text_config")
set_tests_properties([=[unit.test_text_config]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_text_safetensors]=] "/work/main/build-asan/tests/test_text_safetensors")
set_tests_properties([=[unit.test_text_safetensors]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[unit.test_text_tokenizer]=] "/work/main/build-asan/tests/test_text_tokenizer")
set_tests_properties([=[unit.test_text_tokenizer]=] PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;16;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[gpu.test_cuda]=] "/work/main/build-asan/tests/test_cuda")
set_tests_properties([=[gpu.test_cuda]=] PROPERTIES  LABELS "gpu" SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;24;add_test;/work/main/tests/CMakeLists.txt;0;")
