file(REMOVE_RECURSE
  "libswcore.a"
)
