/* side.cu — a second stream per device for copies that overlap the ops.
 *
 * The training engine can keep its checkpointed layer inputs in pinned host
 * memory (core/gpu_ckpt.c). Those copies must not wait behind the layer
 * that runs meanwhile, so they go to a side stream; events order them
 * against the op stream (sw_cuda_stream) in both directions:
 *   sw_cuda_side_copy   the side stream first waits for everything queued on
 *                       the op stream so far (the data is written, or the
 *                       slot's previous reader is done), copies, and
 *                       records `done`;
 *   sw_cuda_wait_event  the op stream waits for `done` before it reads the
 *                       copied data or overwrites its source.
 * The host never waits, so a whole step still queues ahead of the GPU.
 */
#include <mutex>
#include "common.cuh"
extern "C" {
#include "../gpu_ops.h"
}

#define SW_SIDE_MAX 8
static cudaStream_t side[SW_SIDE_MAX];
static cudaEvent_t fence[SW_SIDE_MAX]; /* "the op stream got this far", reused per copy */
static std::once_flag side_once[SW_SIDE_MAX];
static bool side_ok[SW_SIDE_MAX];

static sw_status side_of(sw_ctx *ctx, int dev, cudaStream_t *s) {
    if (dev < 0 || dev >= SW_SIDE_MAX) return sw_err(ctx, SW_EINVAL, "cuda:%d: no such device", dev);
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    std::call_once(side_once[dev], [dev] {
        int prev = 0;
        cudaGetDevice(&prev);
        side_ok[dev] = cudaSetDevice(dev) == cudaSuccess &&
                       cudaStreamCreateWithFlags(&side[dev], cudaStreamNonBlocking) == cudaSuccess &&
                       cudaEventCreateWithFlags(&fence[dev], cudaEventDisableTiming) == cudaSuccess;
        if (!side_ok[dev]) cudaGetLastError();
        cudaSetDevice(prev);
    });
    if (!side_ok[dev]) return sw_err(ctx, SW_EDEVICE, "cuda:%d: could not create the copy stream", dev);
    *s = side[dev];
    return SW_OK;
}

extern "C" sw_status sw_cuda_pin(sw_ctx *ctx, int dev, void *host, size_t bytes) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    /* Registering memory the allocator already accounted keeps the host
     * accounting in one place (core/mem.c); only the page locking is ours. */
    SW_CUDA_CHECK(ctx, dev, cudaHostRegister(host, bytes, cudaHostRegisterDefault));
    return SW_OK;
}

extern "C" void sw_cuda_unpin(int dev, void *host) {
    if (!host) return;
    cudaSetDevice(dev);
    /* copies in flight may still read or write it */
    if (dev >= 0 && dev < SW_SIDE_MAX && side_ok[dev]) cudaStreamSynchronize(side[dev]);
    cudaHostUnregister(host);
    cudaGetLastError();
}

/* Without timing: these only order streams, which is cheaper. Freed with
 * sw_cuda_event_free (graph.cu). */
extern "C" sw_status sw_cuda_sync_event_new(sw_ctx *ctx, int dev, void **ev) {
    *ev = NULL;
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaEvent_t e;
    SW_CUDA_CHECK(ctx, dev, cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    *ev = (void *)e;
    return SW_OK;
}

extern "C" sw_status sw_cuda_side_copy(sw_ctx *ctx, int dev, void *dst, const void *src, size_t bytes, void *done) {
    cudaStream_t s;
    if (side_of(ctx, dev, &s)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t ops = (cudaStream_t)sw_cuda_stream(dev);
    /* cudaStreamWaitEvent takes the event's state at this call, so the one
     * fence per device can be recorded again by the next copy at once. */
    SW_CUDA_CHECK(ctx, dev, cudaEventRecord(fence[dev], ops));
    SW_CUDA_CHECK(ctx, dev, cudaStreamWaitEvent(s, fence[dev], 0));
    SW_CUDA_CHECK(ctx, dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    SW_CUDA_CHECK(ctx, dev, cudaEventRecord((cudaEvent_t)done, s));
    return SW_OK;
}

extern "C" sw_status sw_cuda_wait_event(sw_ctx *ctx, int dev, void *ev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    SW_CUDA_CHECK(ctx, dev, cudaStreamWaitEvent((cudaStream_t)sw_cuda_stream(dev), (cudaEvent_t)ev, 0));
    return SW_OK;
}
