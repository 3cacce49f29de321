file(REMOVE_RECURSE
  "CMakeFiles/test_ctx.dir/unit/test_ctx.c.o"
  "CMakeFiles/test_ctx.dir/unit/test_ctx.c.o.d"
  "test_ctx"
  "test_ctx.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ctx.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
