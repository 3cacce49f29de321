# Empty compiler generated dependencies file for test_gguf_hostile.
# This may be replaced when dependencies are built.
