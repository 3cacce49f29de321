/* stream_tmp.cu — TEMPORARY stand-in for sw_cuda_stream until runtime.cu
 * gains the real per-device stream. Weak, so the real definition wins as
 * soon as it is linked in; returns the legacy default stream (0). Delete
 * this file once runtime.cu defines sw_cuda_stream. */
#include <cuda_runtime.h>
#include "../gpu_ops.h"

extern "C" __attribute__((weak)) void *sw_cuda_stream(int dev) {
    (void)dev;
    return (void *)(cudaStream_t)0;
}
