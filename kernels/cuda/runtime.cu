/* runtime.cu — the CUDA runtime behind kernels/cuda_backend.h.
 *
 * Plain cudaMalloc (never managed memory); the accounting lives in
 * core/mem.c.
 *
 * Every op, copy and memset of a device runs on that device's one stream
 * (sw_cuda_stream), so they are ordered among themselves without host
 * waits, and the training engine can queue a whole step ahead of the GPU.
 * The stream is non-blocking: nothing we launch may go to the legacy default
 * stream, which would no longer order with it. What the callers rely on is
 * kept: a copy to host memory has landed when sw_cuda_memcpy returns (the
 * core's tensors are handed back to Lua between calls), and a host source
 * may be reused at once (all host memory here is pageable, which CUDA stages
 * before cudaMemcpyAsync returns; a pinned source would need a sync).
 */
#include <mutex>
#include <stdio.h>
#include <string.h>
#include "common.cuh"
extern "C" {
#include "../gpu_ops.h" /* dtype.h inside has no C++ guard of its own */
}

#define SW_CUDA_MAX 8
static bool sticky[SW_CUDA_MAX];
static char sticky_msg[SW_CUDA_MAX][256];

/* One stream per device, made on first use. call_once makes it safe for
 * threads that race to the first op; a device whose stream cannot be made
 * (out of memory at start-up) falls back to the legacy stream, which is
 * still correct, only serialising. */
static cudaStream_t streams[SW_CUDA_MAX];
static std::once_flag stream_once[SW_CUDA_MAX];

extern "C" void *sw_cuda_stream(int dev) {
    if (dev < 0 || dev >= SW_CUDA_MAX) return NULL;
    std::call_once(stream_once[dev], [dev] {
        int prev = 0;
        cudaGetDevice(&prev);
        if (cudaSetDevice(dev) == cudaSuccess &&
            cudaStreamCreateWithFlags(&streams[dev], cudaStreamNonBlocking) != cudaSuccess) {
            streams[dev] = NULL;
            cudaGetLastError();
        }
        cudaSetDevice(prev);
    });
    return (void *)streams[dev];
}

static inline cudaStream_t stream_of(int dev) { return (cudaStream_t)sw_cuda_stream(dev); }

extern "C" sw_status sw_cuda_fail(sw_ctx *ctx, int dev, cudaError_t e, const char *what,
                                  const char *file, int line) {
    /* Errors that poison the context: nothing on this device works after. */
    bool is_sticky = e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure ||
                     e == cudaErrorHardwareStackError || e == cudaErrorIllegalInstruction ||
                     e == cudaErrorMisalignedAddress || e == cudaErrorInvalidPc ||
                     e == cudaErrorECCUncorrectable;
    sw_status st = e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE;
    if (e == cudaErrorMemoryAllocation) cudaGetLastError(); /* not sticky: clear it */
    sw_err(ctx, st, "cuda:%d: %s (%s) at %s:%d", dev, cudaGetErrorString(e), what, file, line);
    if (is_sticky && dev >= 0 && dev < SW_CUDA_MAX) {
        sticky[dev] = true;
        snprintf(sticky_msg[dev], sizeof sticky_msg[dev], "%.200s", ctx ? ctx->msg : cudaGetErrorString(e));
    }
    return st;
}

extern "C" sw_status sw_cuda_usable(sw_ctx *ctx, int dev) {
    if (dev >= 0 && dev < SW_CUDA_MAX && sticky[dev])
        return sw_err(ctx, SW_EDEVICE,
                      "cuda:%d is unusable after an earlier fatal error (%s); restart stepwise",
                      dev, sticky_msg[dev]);
    return SW_OK;
}

extern "C" int sw_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver / no GPU: not an error for us */
        return 0;
    }
    return n;
}

extern "C" sw_status sw_cuda_describe(sw_ctx *ctx, int dev, char *buf, size_t n) {
    cudaDeviceProp p;
    SW_CUDA_CHECK(ctx, dev, cudaGetDeviceProperties(&p, dev));
    snprintf(buf, n, "%s, sm_%d%d, %.1f GiB", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return SW_OK;
}

extern "C" sw_status sw_cuda_meminfo(sw_ctx *ctx, int dev, size_t *free_b, size_t *total_b) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    SW_CUDA_CHECK(ctx, dev, cudaMemGetInfo(free_b, total_b));
    return SW_OK;
}

extern "C" sw_status sw_cuda_malloc(sw_ctx *ctx, int dev, size_t bytes, void **out) {
    *out = NULL;
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    /* cudaMalloc(0) returns NULL; give zero-size tensors a real pointer. */
    SW_CUDA_CHECK(ctx, dev, cudaMalloc(out, bytes ? bytes : 256));
    return SW_OK;
}

extern "C" void sw_cuda_free(int dev, void *p) {
    if (!p) return;
    cudaSetDevice(dev);
    /* Work still queued may use p. cudaFree waits for the device anyway, but
     * saying so keeps the order explicit. */
    cudaStreamSynchronize(stream_of(dev));
    cudaFree(p);
}

extern "C" sw_status sw_cuda_memcpy(sw_ctx *ctx, int dst_dev, void *dst, int src_dev,
                                    const void *src, size_t bytes, int kind) {
    int dev = kind == 0 ? dst_dev : src_dev;
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t s = stream_of(dev);
    if (kind == 2 && dst_dev != src_dev) {
        /* Between devices: the destination's stream may still read dst, and
         * its later work must see the copy; both streams wait (rare path). */
        if (sw_cuda_usable(ctx, dst_dev)) return ctx->status;
        SW_CUDA_CHECK(ctx, dst_dev, cudaStreamSynchronize(stream_of(dst_dev)));
        SW_CUDA_CHECK(ctx, dev, cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, bytes, s));
        SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(s));
        return SW_OK;
    }
    SW_CUDA_CHECK(ctx, dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    /* To the host: the caller reads dst as soon as we return. */
    if (kind == 1) SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(s));
    return SW_OK;
}

extern "C" sw_status sw_cuda_memset0(sw_ctx *ctx, int dev, void *p, size_t bytes) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    SW_CUDA_CHECK(ctx, dev, cudaMemsetAsync(p, 0, bytes, stream_of(dev)));
    return SW_OK;
}

extern "C" sw_status sw_cuda_sync(sw_ctx *ctx, int dev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(stream_of(dev)));
    return SW_OK;
}
