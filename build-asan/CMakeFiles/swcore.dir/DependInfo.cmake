
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/core/ctx.c" "CMakeFiles/swcore.dir/core/ctx.c.o" "gcc" "CMakeFiles/swcore.dir/core/ctx.c.o.d"
  "/work/main/core/device.c" "CMakeFiles/swcore.dir/core/device.c.o" "gcc" "CMakeFiles/swcore.dir/core/device.c.o.d"
  "/work/main/core/dtype.c" "CMakeFiles/swcore.dir/core/dtype.c.o" "gcc" "CMakeFiles/swcore.dir/core/dtype.c.o.d"
  "/work/main/core/forward.c" "CMakeFiles/swcore.dir/core/forward.c.o" "gcc" "CMakeFiles/swcore.dir/core/forward.c.o.d"
  "/work/main/core/gguf.c" "CMakeFiles/swcore.dir/core/gguf.c.o" "gcc" "CMakeFiles/swcore.dir/core/gguf.c.o.d"
  "/work/main/core/interrupt.c" "CMakeFiles/swcore.dir/core/interrupt.c.o" "gcc" "CMakeFiles/swcore.dir/core/interrupt.c.o.d"
  "/work/main/core/mem.c" "CMakeFiles/swcore.dir/core/mem.c.o" "gcc" "CMakeFiles/swcore.dir/core/mem.c.o.d"
  "/work/main/core/model.c" "CMakeFiles/swcore.dir/core/model.c.o" "gcc" "CMakeFiles/swcore.dir/core/model.c.o.d"
  "/work/main/core/sample.c" "CMakeFiles/swcore.dir/core/sample.c.o" "gcc" "CMakeFiles/swcore.dir/core/sample.c.o.d"
  "/work/main/core/tensor.c" "CMakeFiles/swcore.dir/core/tensor.c.o" "gcc" "CMakeFiles/swcore.dir/core/tensor.c.o.d"
  "/work/main/kernels/cpu/convert.c" "CMakeFiles/swcore.dir/kernels/cpu/convert.c.o" "gcc" "CMakeFiles/swcore.dir/kernels/cpu/convert.c.o.d"
  "/work/main/kernels/cpu/dequant.c" "CMakeFiles/swcore.dir/kernels/cpu/dequant.c.o" "gcc" "CMakeFiles/swcore.dir/kernels/cpu/dequant.c.o.d"
  "/work/main/kernels/cpu/layers.c" "CMakeFiles/swcore.dir/kernels/cpu/layers.c.o" "gcc" "CMakeFiles/swcore.dir/kernels/cpu/layers.c.o.d"
  "/work/main/kernels/cpu/nf4.c" "CMakeFiles/swcore.dir/kernels/cpu/nf4.c.o" "gcc" "CMakeFiles/swcore.dir/kernels/cpu/nf4.c.o.d"
  "/work/main/kernels/cpu/qmatvec.c" "CMakeFiles/swcore.dir/kernels/cpu/qmatvec.c.o" "gcc" "CMakeFiles/swcore.dir/kernels/cpu/qmatvec.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
