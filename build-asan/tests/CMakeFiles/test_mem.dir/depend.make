# Empty dependencies file for test_mem.
# This may be replaced when dependencies are built.
