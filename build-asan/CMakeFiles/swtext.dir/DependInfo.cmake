
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/core/bnb.c" "CMakeFiles/swtext.dir/core/bnb.c.o" "gcc" "CMakeFiles/swtext.dir/core/bnb.c.o.d"
  "/work/main/core/chat.c" "CMakeFiles/swtext.dir/core/chat.c.o" "gcc" "CMakeFiles/swtext.dir/core/chat.c.o.d"
  "/work/main/core/config.c" "CMakeFiles/swtext.dir/core/config.c.o" "gcc" "CMakeFiles/swtext.dir/core/config.c.o.d"
  "/work/main/core/load.c" "CMakeFiles/swtext.dir/core/load.c.o" "gcc" "CMakeFiles/swtext.dir/core/load.c.o.d"
  "/work/main/core/load_gguf.c" "CMakeFiles/swtext.dir/core/load_gguf.c.o" "gcc" "CMakeFiles/swtext.dir/core/load_gguf.c.o.d"
  "/work/main/core/load_hf.c" "CMakeFiles/swtext.dir/core/load_hf.c.o" "gcc" "CMakeFiles/swtext.dir/core/load_hf.c.o.d"
  "/work/main/core/safetensors.c" "CMakeFiles/swtext.dir/core/safetensors.c.o" "gcc" "CMakeFiles/swtext.dir/core/safetensors.c.o.d"
  "/work/main/core/safetensors_write.c" "CMakeFiles/swtext.dir/core/safetensors_write.c.o" "gcc" "CMakeFiles/swtext.dir/core/safetensors_write.c.o.d"
  "/work/main/core/tokenizer.c" "CMakeFiles/swtext.dir/core/tokenizer.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer.c.o.d"
  "/work/main/core/tokenizer_bpe.c" "CMakeFiles/swtext.dir/core/tokenizer_bpe.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer_bpe.c.o.d"
  "/work/main/core/tokenizer_gguf.c" "CMakeFiles/swtext.dir/core/tokenizer_gguf.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer_gguf.c.o.d"
  "/work/main/core/tokenizer_json.c" "CMakeFiles/swtext.dir/core/tokenizer_json.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer_json.c.o.d"
  "/work/main/core/tokenizer_steps.c" "CMakeFiles/swtext.dir/core/tokenizer_steps.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer_steps.c.o.d"
  "/work/main/core/tokenizer_util.c" "CMakeFiles/swtext.dir/core/tokenizer_util.c.o" "gcc" "CMakeFiles/swtext.dir/core/tokenizer_util.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-asan/CMakeFiles/swcore.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
