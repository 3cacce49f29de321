# Empty dependencies file for test_text_config.
# This may be replaced when dependencies are built.
