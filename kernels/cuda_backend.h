/* cuda_backend.h — the CUDA runtime seen from C (kernels/cuda/runtime.cu).
 *
 * Only core/device.c, the engine's graph cache and profiler (core/gpu_graph.c,
 * core/gpu_profile.c) and kernels/ call these, and only when the build
 * defines SW_HAVE_CUDA. Every function turns a CUDA error into a status with
 * file:line in ctx; a sticky error (the context is lost) marks the device
 * unusable and every later call on it says so.
 */
#ifndef SW_CUDA_BACKEND_H
#define SW_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include "../core/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

int       sw_cuda_device_count(void);
sw_status sw_cuda_describe(sw_ctx *ctx, int dev, char *buf, size_t n);
sw_status sw_cuda_meminfo(sw_ctx *ctx, int dev, size_t *free_b, size_t *total_b);
sw_status sw_cuda_malloc(sw_ctx *ctx, int dev, size_t bytes, void **out);
void      sw_cuda_free(int dev, void *p);
/* kind: 0 host->device, 1 device->host, 2 device->device (same or peer). */
sw_status sw_cuda_memcpy(sw_ctx *ctx, int dst_dev, void *dst, int src_dev,
                         const void *src, size_t bytes, int kind);
sw_status sw_cuda_memset0(sw_ctx *ctx, int dev, void *p, size_t bytes);
sw_status sw_cuda_sync(sw_ctx *ctx, int dev);

/* Graphs of the device's stream (kernels/cuda/graph.cu). Between begin and
 * end, work put on the stream by this thread is recorded, not run. end
 * always ends the capture; with keep it instantiates the graph into *exec
 * (an error when the capture was invalidated), without it discards it. */
sw_status sw_cuda_capture_begin(sw_ctx *ctx, int dev);
sw_status sw_cuda_capture_end(sw_ctx *ctx, int dev, bool keep, void **exec);
sw_status sw_cuda_graph_launch(sw_ctx *ctx, int dev, void *exec);
void      sw_cuda_graph_free(int dev, void *exec);

/* Timing events recorded on the device's stream; elapsed is valid once both
 * have completed (after a sync). */
sw_status sw_cuda_event_new(sw_ctx *ctx, int dev, void **ev);
void      sw_cuda_event_free(int dev, void *ev);
sw_status sw_cuda_event_record(sw_ctx *ctx, int dev, void *ev);
sw_status sw_cuda_event_elapsed(sw_ctx *ctx, int dev, void *from, void *to, float *ms);

#ifdef __cplusplus
}
#endif
#endif
