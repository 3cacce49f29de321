/* common.cuh — error checking shared by the CUDA files.
 *
 * SW_CUDA_CHECK turns a failed runtime call into a status with file:line in
 * ctx. A sticky error (the CUDA context is corrupted, e.g. after an illegal
 * address) cannot be recovered in-process: we remember it per device and
 * every later call on that device reports it instead of misbehaving.
 */
#ifndef SW_CUDA_COMMON_CUH
#define SW_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include "../cuda_backend.h"

extern "C" sw_status sw_cuda_fail(sw_ctx *ctx, int dev, cudaError_t e, const char *what,
                                  const char *file, int line);
extern "C" sw_status sw_cuda_usable(sw_ctx *ctx, int dev);

#define SW_CUDA_CHECK(ctx, dev, call)                                          \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess)                                                 \
            return sw_cuda_fail((ctx), (dev), e_, #call, __FILE__, __LINE__);  \
    } while (0)

/* Grid size for n elements at `threads` per block, capped: kernels loop. */
static inline unsigned sw_cuda_blocks(long long n, int threads) {
    long long b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 16) b = 65535LL * 16;
    return (unsigned)b;
}

#endif
