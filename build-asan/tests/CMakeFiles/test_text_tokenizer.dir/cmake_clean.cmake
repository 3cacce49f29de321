file(REMOVE_RECURSE
  "CMakeFiles/test_text_tokenizer.dir/unit/test_text_tokenizer.c.o"
  "CMakeFiles/test_text_tokenizer.dir/unit/test_text_tokenizer.c.o.d"
  "test_text_tokenizer"
  "test_text_tokenizer.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_text_tokenizer.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
