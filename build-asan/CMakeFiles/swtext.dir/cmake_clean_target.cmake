file(REMOVE_RECURSE
  "libswtext.a"
)
