# Empty dependencies file for test_cuda.
# This may be replaced when dependencies are built.
