# Empty dependencies file for test_ctx.
# This may be replaced when dependencies are built.
