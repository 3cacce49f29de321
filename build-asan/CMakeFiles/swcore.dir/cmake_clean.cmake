file(REMOVE_RECURSE
  "CMakeFiles/swcore.dir/core/ctx.c.o"
  "CMakeFiles/swcore.dir/core/ctx.c.o.d"
  "CMakeFiles/swcore.dir/core/device.c.o"
  "CMakeFiles/swcore.dir/core/device.c.o.d"
  "CMakeFiles/swcore.dir/core/dtype.c.o"
  "CMakeFiles/swcore.dir/core/dtype.c.o.d"
  "CMakeFiles/swcore.dir/core/forward.c.o"
  "CMakeFiles/swcore.dir/core/forward.c.o.d"
  "CMakeFiles/swcore.dir/core/gguf.c.o"
  "CMakeFiles/swcore.dir/core/gguf.c.o.d"
  "CMakeFiles/swcore.dir/core/interrupt.c.o"
  "CMakeFiles/swcore.dir/core/interrupt.c.o.d"
  "CMakeFiles/swcore.dir/core/mem.c.o"
  "CMakeFiles/swcore.dir/core/mem.c.o.d"
  "CMakeFiles/swcore.dir/core/model.c.o"
  "CMakeFiles/swcore.dir/core/model.c.o.d"
  "CMakeFiles/swcore.dir/core/sample.c.o"
  "CMakeFiles/swcore.dir/core/sample.c.o.d"
  "CMakeFiles/swcore.dir/core/tensor.c.o"
  "CMakeFiles/swcore.dir/core/tensor.c.o.d"
  "CMakeFiles/swcore.dir/kernels/cpu/convert.c.o"
  "CMakeFiles/swcore.dir/kernels/cpu/convert.c.o.d"
  "CMakeFiles/swcore.dir/kernels/cpu/dequant.c.o"
  "CMakeFiles/swcore.dir/kernels/cpu/dequant.c.o.d"
  "CMakeFiles/swcore.dir/kernels/cpu/layers.c.o"
  "CMakeFiles/swcore.dir/kernels/cpu/layers.c.o.d"
  "CMakeFiles/swcore.dir/kernels/cpu/nf4.c.o"
  "CMakeFiles/swcore.dir/kernels/cpu/nf4.c.o.d"
  "CMakeFiles/swcore.dir/kernels/cpu/qmatvec.c.o"
  "CMakeFiles/swcore.dir/kernels/cpu/qmatvec.c.o.d"
  "libswcore.a"
  "libswcore.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/swcore.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
