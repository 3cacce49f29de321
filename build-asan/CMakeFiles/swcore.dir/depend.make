# Empty dependencies file for swcore.
# This may be replaced when dependencies are built.
