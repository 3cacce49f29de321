file(REMOVE_RECURSE
  "CMakeFiles/swtext.dir/core/bnb.c.o"
  "CMakeFiles/swtext.dir/core/bnb.c.o.d"
  "CMakeFiles/swtext.dir/core/chat.c.o"
  "CMakeFiles/swtext.dir/core/chat.c.o.d"
  "CMakeFiles/swtext.dir/core/config.c.o"
  "CMakeFiles/swtext.dir/core/config.c.o.d"
  "CMakeFiles/swtext.dir/core/load.c.o"
  "CMakeFiles/swtext.dir/core/load.c.o.d"
  "CMakeFiles/swtext.dir/core/load_gguf.c.o"
  "CMakeFiles/swtext.dir/core/load_gguf.c.o.d"
  "CMakeFiles/swtext.dir/core/load_hf.c.o"
  "CMakeFiles/swtext.dir/core/load_hf.c.o.d"
  "CMakeFiles/swtext.dir/core/safetensors.c.o"
  "CMakeFiles/swtext.dir/core/safetensors.c.o.d"
  "CMakeFiles/swtext.dir/core/safetensors_write.c.o"
  "CMakeFiles/swtext.dir/core/safetensors_write.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer_bpe.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer_bpe.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer_gguf.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer_gguf.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer_json.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer_json.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer_steps.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer_steps.c.o.d"
  "CMakeFiles/swtext.dir/core/tokenizer_util.c.o"
  "CMakeFiles/swtext.dir/core/tokenizer_util.c.o.d"
  "libswtext.a"
  "libswtext.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/swtext.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
