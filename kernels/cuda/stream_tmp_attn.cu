/* stream_tmp_attn.cu — TEMPORARY stand-in for sw_cuda_stream until
 * runtime.cu defines it (another change adds the per-device streams). Weak,
 * so the real definition wins as soon as it exists; delete this file then.
 * Returns the legacy default stream (0), which orders the attention kernels
 * with every synchronous copy the tests make. */
#include "common.cuh"

extern "C" {
#include "../gpu_ops.h"
}

extern "C" __attribute__((weak)) void *sw_cuda_stream(int dev) {
    (void)dev;
    return 0;
}
