// ops_table.cu — the CUDA backend's op table for the device engine (gpu_ops.h).
#include "../gpu_ops.h"

#define SW_GPU_ENTRY(name, args) sw_##name##_cuda,
extern "C" const sw_gpu_ops sw_gpu_ops_cuda = {SW_GPU_OPS(SW_GPU_ENTRY)};
#undef SW_GPU_ENTRY
