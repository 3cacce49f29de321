file(REMOVE_RECURSE
  "CMakeFiles/test_mem.dir/unit/test_mem.c.o"
  "CMakeFiles/test_mem.dir/unit/test_mem.c.o.d"
  "test_mem"
  "test_mem.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_mem.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
