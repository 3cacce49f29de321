/* gpu_graph.h — CUDA graphs of the engine's training step (gpu_graph.c),
 * seen from the step driver in core/gpu_train.c.
 *
 * The driver uploads a batch's ids, positions, targets and sample bounds,
 * then hands the rest of the step (embedding, layers, head and loss,
 * backward: device work only, no host reads) to sw_gpu_graph_step as a
 * function. That runs it directly, or records it into a graph, or replays
 * the graph recorded for the same shape. A graph bakes in every launch's
 * arguments, so the key holds everything that reaches them: the shape
 * below, the activation block, the adapter's arrays, its rank and scale.
 * Values the kernels read from device memory (ids, positions, targets,
 * sample bounds, weights, adapter parameters) may change between replays.
 */
#ifndef SW_GPU_GRAPH_H
#define SW_GPU_GRAPH_H

#include "gpu_internal.h"

typedef struct sw_gpu_step_shape {
    int64_t T, maxlen;
    int64_t chunk;          /* head rows per chunk */
    int n_seqs;
    bool backward, ckpt;
    float loss_scale;       /* the cross-entropy's gradient scale, a launch argument */
    const int32_t *tgt;     /* host targets (T): a head chunk with none trained is skipped */
    int64_t mlp_rows;       /* the MLP's row chunk */
} sw_gpu_step_shape;

typedef sw_status (*sw_gpu_enqueue_fn)(void *arg);

/* Run enqueue(arg) (which reports errors in ctx) directly or as a graph.
 * A capture that fails turns graphs off for this engine and the step runs
 * directly, so the caller sees the direct path's result either way. */
sw_status sw_gpu_graph_step(sw_ctx *ctx, sw_gpu *g, const sw_gpu_step_shape *s, sw_gpu_enqueue_fn enqueue, void *arg);

/* Forget every recorded graph (the adapter was replaced; the engine is freed). */
void sw_gpu_graphs_clear(sw_gpu *g);
void sw_gpu_graphs_free(sw_gpu *g);
/* Whether opts and the environment turn graphs on for a device. */
bool sw_gpu_graphs_default(int dev, sw_gpu_graphs o);

#endif
