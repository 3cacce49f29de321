file(REMOVE_RECURSE
  "CMakeFiles/test_text_bnb.dir/unit/test_text_bnb.c.o"
  "CMakeFiles/test_text_bnb.dir/unit/test_text_bnb.c.o.d"
  "test_text_bnb"
  "test_text_bnb.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_text_bnb.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
