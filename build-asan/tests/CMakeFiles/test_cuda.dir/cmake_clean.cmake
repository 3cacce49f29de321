file(REMOVE_RECURSE
  "CMakeFiles/test_cuda.dir/gpu/test_cuda.c.o"
  "CMakeFiles/test_cuda.dir/gpu/test_cuda.c.o.d"
  "test_cuda"
  "test_cuda.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_cuda.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
