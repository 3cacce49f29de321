/* graph.cu — CUDA graphs and timing events on a device's stream, for the
 * training engine (core/gpu_graph.c, core/gpu_profile.c; declared in
 * kernels/cuda_backend.h).
 *
 * Graphs. A training step of a small model is thousands of short kernels;
 * launching them one by one from the host leaves the GPU idle between them.
 * The engine records one step's launches into a graph with stream capture
 * and replays it with one launch. Capture is ThreadLocal: another thread's
 * CUDA calls are not disturbed, and a call of this thread that cannot be
 * captured (a synchronisation, an allocation, a copy to pageable host
 * memory) fails at once instead of being silently reordered. Whatever
 * happens inside, sw_cuda_capture_end ends the capture, so the stream is
 * usable again; the caller then decides whether to keep the graph.
 *
 * Events. The profiler brackets every op with two events on the stream and
 * reads their elapsed times after a sync. Events are plain handles here;
 * the profiler keeps a pool of them, so the steady state creates none.
 */
#include <stdio.h>
#include "common.cuh"
extern "C" {
#include "../gpu_ops.h" /* sw_cuda_stream; dtype.h inside has no C++ guard of its own */
}

static inline cudaStream_t stream_of(int dev) { return (cudaStream_t)sw_cuda_stream(dev); }

/* ---------------------------------------------------------------- graphs */

extern "C" sw_status sw_cuda_capture_begin(sw_ctx *ctx, int dev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t s = stream_of(dev);
    /* The legacy stream (the fallback when ours could not be made) cannot
     * be captured; say so instead of letting CUDA complain later. */
    if (!s) return sw_err(ctx, SW_EUNSUPPORTED, "cuda:%d: no stream of our own to capture", dev);
    SW_CUDA_CHECK(ctx, dev, cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    return SW_OK;
}

extern "C" sw_status sw_cuda_capture_end(sw_ctx *ctx, int dev, bool keep, void **exec) {
    *exec = NULL;
    cudaSetDevice(dev);
    cudaStream_t s = stream_of(dev);
    cudaGraph_t graph = NULL;
    /* Always end the capture, even when the caller gives up on it: a stream
     * left capturing rejects every later synchronisation. An invalidated
     * capture ends with an error and no graph. */
    cudaError_t e = cudaStreamEndCapture(s, &graph);
    if (e != cudaSuccess || !keep) {
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError(); /* capture errors are not sticky: clear them */
        if (!keep) return SW_OK;
        return sw_err(ctx, SW_EDEVICE, "cuda:%d: stream capture failed (%s)", dev, cudaGetErrorString(e));
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, graph, 0);
    cudaGraphDestroy(graph); /* the executable graph keeps what it needs */
    if (e != cudaSuccess) {
        cudaGetLastError();
        return sw_err(ctx, e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE,
                      "cuda:%d: graph instantiation failed (%s)", dev, cudaGetErrorString(e));
    }
    *exec = (void *)x;
    return SW_OK;
}

extern "C" sw_status sw_cuda_graph_launch(sw_ctx *ctx, int dev, void *exec) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    SW_CUDA_CHECK(ctx, dev, cudaGraphLaunch((cudaGraphExec_t)exec, stream_of(dev)));
    return SW_OK;
}

extern "C" void sw_cuda_graph_free(int dev, void *exec) {
    if (!exec) return;
    cudaSetDevice(dev);
    /* A launch still running keeps its own reference; destroying is safe. */
    cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

/* ---------------------------------------------------------------- events */

extern "C" sw_status sw_cuda_event_new(sw_ctx *ctx, int dev, void **ev) {
    *ev = NULL;
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaEvent_t e;
    SW_CUDA_CHECK(ctx, dev, cudaEventCreate(&e)); /* with timing: that is the point */
    *ev = (void *)e;
    return SW_OK;
}

extern "C" void sw_cuda_event_free(int dev, void *ev) {
    if (!ev) return;
    cudaSetDevice(dev);
    cudaEventDestroy((cudaEvent_t)ev);
}

extern "C" sw_status sw_cuda_event_record(sw_ctx *ctx, int dev, void *ev) {
    SW_CUDA_CHECK(ctx, dev, cudaEventRecord((cudaEvent_t)ev, stream_of(dev)));
    return SW_OK;
}

extern "C" sw_status sw_cuda_event_elapsed(sw_ctx *ctx, int dev, void *from, void *to, float *ms) {
    *ms = 0;
    SW_CUDA_CHECK(ctx, dev, cudaEventElapsedTime(ms, (cudaEvent_t)from, (cudaEvent_t)to));
    return SW_OK;
}
