/* gpu_ckpt.c — where a training call keeps the layer inputs (gpu_internal.h).
 *
 * Checkpoint i is the input of layer i (i = L: of the final norm). Three
 * layouts, chosen per call by sw_gpu_train_batch:
 *   all      L + 1 device slots — the backward without recompute reads
 *            every layer's input, and with recompute this is the fast path;
 *   ring     2 device slots, nothing kept — a forward only needs the input
 *            of the layer it runs and the output it writes;
 *   offload  2 device slots plus every checkpoint in pinned host memory:
 *            a layer's output goes to the host on the side stream while
 *            the next layer runs, and in the backward the input of layer
 *            i - 1 comes back while layer i's backward runs. Device memory
 *            for checkpoints no longer grows with the depth, which is what
 *            limits the context length with recompute on.
 * Slot i % 2 holds checkpoint i in the ring layouts. The events make the op
 * stream wait only where a slot is overwritten or read before its copy
 * landed; the host never waits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#ifdef SW_HAVE_CUDA
#include "../kernels/cuda_backend.h"
#endif

#define RING 2

static bool on_cuda(const sw_gpu *g) { return g->dev != SW_GPU_EMULATE; }

static void events_free(sw_gpu *g) {
    gckpt *k = &g->ck;
#ifdef SW_HAVE_CUDA
    for (int64_t i = 0; k->saved && i < k->n_events; i++) {
        sw_cuda_event_free(g->dev, k->saved[i]);
        sw_cuda_event_free(g->dev, k->loaded[i]);
    }
#endif
    free(k->saved);
    free(k->loaded);
    free(k->state);
    k->saved = k->loaded = NULL;
    k->state = NULL;
    k->n_events = 0;
}

void sw_ckpt_free(sw_gpu *g) {
    gckpt *k = &g->ck;
    if (k->host) {
#ifdef SW_HAVE_CUDA
        if (on_cuda(g)) sw_cuda_unpin(g->dev, k->host);
#endif
        sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, k->host, k->host_bytes);
    }
    k->host = NULL;
    k->host_bytes = 0;
    events_free(g);
}

size_t sw_ckpt_device_slots(int layout, int64_t n) { return layout == SW_CKPT_ALL ? (size_t)n : RING; }

sw_status sw_ckpt_setup(sw_ctx *ctx, sw_gpu *g, int layout, int64_t n, size_t bytes, sw_bf16 *slots) {
    gckpt *k = &g->ck;
    k->layout = layout;
    k->n = n;
    k->bytes = bytes;
    k->dev_slots = slots;
    if (layout != SW_CKPT_OFFLOAD) return SW_OK;
    size_t need = bytes * (size_t)n;
    if (k->host && k->host_bytes < need) sw_ckpt_free(g);
    if (!k->host) {
        /* Page-locking more than the machine has gets the process killed
         * rather than an error: ask first, leaving a margin for the rest. */
        size_t avail = 0, total = 0;
        if (sw_device_meminfo(ctx, SW_DEV_CPU, &avail, &total) == SW_OK && avail && need > avail / 10 * 9)
            return sw_err(ctx, SW_ENOMEM,
                          "train: offloaded checkpoints need %.1f GiB of host memory, %.1f GiB is available",
                          need / 1073741824.0, avail / 1073741824.0);
        /* Accounted as host activations, so the cell report shows where the
         * checkpoints went; page-locked so the copies run at full speed and
         * asynchronously. */
        if (!(k->host = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, need)))
            return sw_err_prefix(ctx, "train: offloaded checkpoints (%lld layers)", (long long)n);
        k->host_bytes = need;
#ifdef SW_HAVE_CUDA
        if (on_cuda(g) && sw_cuda_pin(ctx, g->dev, k->host, need)) {
            sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, k->host, need);
            k->host = NULL;
            k->host_bytes = 0;
            /* a resource limit like any other out-of-memory */
            char why[sizeof ctx->msg];
            memcpy(why, ctx->msg, sizeof why);
            return sw_err(ctx, SW_ENOMEM, "train: pinning %.1f GiB of host memory for offloaded checkpoints: %s",
                          need / 1073741824.0, why);
        }
#endif
    }
    if (k->n_events < n) {
        events_free(g);
        k->saved = calloc((size_t)n, sizeof(void *));
        k->loaded = calloc((size_t)n, sizeof(void *));
        k->state = calloc((size_t)n, 1);
        if (!k->saved || !k->loaded || !k->state) {
            events_free(g);
            return sw_err(ctx, SW_ENOMEM, "train: checkpoint events");
        }
        k->n_events = n;
#ifdef SW_HAVE_CUDA
        for (int64_t i = 0; on_cuda(g) && i < n; i++)
            if (sw_cuda_sync_event_new(ctx, g->dev, &k->saved[i]) || sw_cuda_sync_event_new(ctx, g->dev, &k->loaded[i])) {
                events_free(g);
                return ctx->status;
            }
#endif
    }
    return SW_OK;
}

void sw_ckpt_begin(sw_gpu *g) {
    gckpt *k = &g->ck;
    for (int s = 0; s < RING; s++) k->occupant[s] = -1;
    if (k->state) memset(k->state, 0, (size_t)k->n_events);
}

sw_bf16 *sw_ckpt_at(const sw_gpu *g, int64_t i) {
    const gckpt *k = &g->ck;
    int64_t s = k->layout == SW_CKPT_ALL ? i : i % RING;
    return (sw_bf16 *)((char *)k->dev_slots + (size_t)s * k->bytes);
}

static char *host_of(const gckpt *k, int64_t i) { return k->host + (size_t)i * k->bytes; }

/* A copy on the side stream (CUDA), or at once (emulated: nothing overlaps). */
static sw_status side_copy(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, void *done) {
#ifdef SW_HAVE_CUDA
    if (on_cuda(g)) return sw_cuda_side_copy(ctx, g->dev, dst, src, g->ck.bytes, done);
#endif
    (void)done;
    memcpy(dst, src, g->ck.bytes);
    return SW_OK;
}

static sw_status wait(sw_ctx *ctx, sw_gpu *g, void *ev) {
#ifdef SW_HAVE_CUDA
    if (on_cuda(g)) return sw_cuda_wait_event(ctx, g->dev, ev);
#endif
    (void)ctx, (void)ev;
    return SW_OK;
}

enum { ST_NONE = 0, ST_SAVING = 1, ST_LOADING = 2 };

sw_status sw_ckpt_before_write(sw_ctx *ctx, sw_gpu *g, int64_t i) {
    gckpt *k = &g->ck;
    if (k->layout == SW_CKPT_ALL) return SW_OK;
    int64_t s = i % RING, old = k->occupant[s];
    k->occupant[s] = i;
    /* the slot's previous checkpoint must be on the host before it is overwritten */
    if (k->layout == SW_CKPT_OFFLOAD && old >= 0 && (k->state[old] & ST_SAVING)) return wait(ctx, g, k->saved[old]);
    return SW_OK;
}

sw_status sw_ckpt_after_write(sw_ctx *ctx, sw_gpu *g, int64_t i) {
    gckpt *k = &g->ck;
    /* The last two stay in their slots for the head and the first backward
     * layer, so only the ones that will be overwritten travel. */
    if (k->layout != SW_CKPT_OFFLOAD || i >= k->n - RING) return SW_OK;
    k->state[i] |= ST_SAVING;
    return side_copy(ctx, g, host_of(k, i), sw_ckpt_at(g, i), k->saved[i]);
}

sw_status sw_ckpt_prefetch(sw_ctx *ctx, sw_gpu *g, int64_t i) {
    gckpt *k = &g->ck;
    if (k->layout != SW_CKPT_OFFLOAD || i < 0 || k->occupant[i % RING] == i) return SW_OK;
    /* The slot's occupant (i + 2) was read by a backward already queued;
     * the side copy waits for the op stream's queued work. */
    k->occupant[i % RING] = i;
    k->state[i] |= ST_LOADING;
    return side_copy(ctx, g, sw_ckpt_at(g, i), host_of(k, i), k->loaded[i]);
}

sw_status sw_ckpt_need(sw_ctx *ctx, sw_gpu *g, int64_t i) {
    gckpt *k = &g->ck;
    if (k->layout != SW_CKPT_OFFLOAD) return SW_OK;
    if (k->occupant[i % RING] != i && sw_ckpt_prefetch(ctx, g, i)) return ctx->status;
    if (k->state[i] & ST_LOADING) {
        k->state[i] &= (char)~ST_LOADING;
        return wait(ctx, g, k->loaded[i]);
    }
    return SW_OK;
}
