# Empty compiler generated dependencies file for swtext.
# This may be replaced when dependencies are built.
