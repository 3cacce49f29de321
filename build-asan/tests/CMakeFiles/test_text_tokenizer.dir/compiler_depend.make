# Empty compiler generated dependencies file for test_text_tokenizer.
# This may be replaced when dependencies are built.
