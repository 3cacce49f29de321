# Empty compiler generated dependencies file for test_text_bnb.
# This may be replaced when dependencies are built.
