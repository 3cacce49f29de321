file(REMOVE_RECURSE
  "CMakeFiles/test_gguf_hostile.dir/unit/test_gguf_hostile.c.o"
  "CMakeFiles/test_gguf_hostile.dir/unit/test_gguf_hostile.c.o.d"
  "test_gguf_hostile"
  "test_gguf_hostile.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_gguf_hostile.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
