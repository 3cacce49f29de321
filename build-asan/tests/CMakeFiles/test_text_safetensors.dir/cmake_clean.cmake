file(REMOVE_RECURSE
  "CMakeFiles/test_text_safetensors.dir/unit/test_text_safetensors.c.o"
  "CMakeFiles/test_text_safetensors.dir/unit/test_text_safetensors.c.o.d"
  "test_text_safetensors"
  "test_text_safetensors.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_text_safetensors.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
