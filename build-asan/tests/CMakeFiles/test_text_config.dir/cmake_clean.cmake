file(REMOVE_RECURSE
  "CMakeFiles/test_text_config.dir/unit/test_text_config.c.o"
  "CMakeFiles/test_text_config.dir/unit/test_text_config.c.o.d"
  "test_text_config"
  "test_text_config.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_text_config.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
