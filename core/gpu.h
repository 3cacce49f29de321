/* gpu.h — LoRA training on a device: the model's frozen weights, the
 * active adapter, its gradients and optimizer state live in device memory,
 * and a training step runs there in bf16 with float32 accumulation.
 *
 * The engine is written once against the op table of kernels/gpu_ops.h:
 * on a CUDA device it uses the CUDA kernels; with dev = SW_GPU_EMULATE it
 * runs the same orchestration on host memory through the emulated ops, which
 * is how it is tested on a machine without a GPU (tests/unit/test_gpu_emu.c).
 *
 * What lives where:
 *   weights      bf16, or NF4 codes + float absmax, or GGUF blocks as stored;
 *                quantized weights are dequantized one matrix at a time into a
 *                scratch buffer right before their GEMM, never a whole layer.
 *   adapter      all A and B in one flat float32 array (the optimizer's unit),
 *                a bf16 mirror for the GEMMs, gradients and AdamW state flat too.
 *                The A matrices of projections that share an input (q/k/v,
 *                gate/up) sit next to each other, so x A^T is one GEMM.
 *   activations  bf16 per layer (or only each layer's input with recompute),
 *                statistics and the residual gradient float32.
 * The host sw_lora stays the adapter users see; sw_gpu_download copies the
 * device's parameters (and gradients) back into it.
 */
#ifndef SW_GPU_H
#define SW_GPU_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "device.h"
#include "lora.h"
#include "model.h"
#include "optim.h"
#include "train.h"

#define SW_GPU_EMULATE (-1)

typedef enum sw_gpu_weights {
    SW_GPU_W_AS_STORED = 0, /* bf16 for float weights; NF4 and GGUF blocks stay packed */
    SW_GPU_W_BF16,          /* everything dequantized to bf16 once */
    SW_GPU_W_NF4            /* float weights quantized to NF4 on the device */
} sw_gpu_weights;

/* CUDA graphs for the training step (core/gpu_graph.c): the second call of
 * a batch shape records the step's launches into a graph, later calls of
 * that shape replay it with one launch. AUTO: on for a CUDA device unless
 * the environment says STEPWISE_CUDA_GRAPHS=0. The emulated device has none. */
typedef enum sw_gpu_graphs {
    SW_GPU_GRAPHS_AUTO = 0,
    SW_GPU_GRAPHS_ON,
    SW_GPU_GRAPHS_OFF
} sw_gpu_graphs;

typedef struct sw_gpu_opts {
    sw_gpu_weights weights;
    uint64_t seed;          /* random weights only */
    sw_gpu_graphs graphs;
} sw_gpu_opts;

typedef struct sw_gpu sw_gpu;

/* A device copy of m's weights (m keeps its own). dev: CUDA index or
 * SW_GPU_EMULATE. */
sw_status sw_gpu_new(sw_ctx *ctx, const sw_model *m, int dev, const sw_gpu_opts *o, sw_gpu **out);
/* A model of config cfg with random weights made on the device (benchmarks
 * of real shapes: nothing is read from disk). Norms are 1, weights N(0, 0.02). */
sw_status sw_gpu_new_random(sw_ctx *ctx, const sw_model_config *cfg, int dev, const sw_gpu_opts *o, sw_gpu **out);
void      sw_gpu_free(sw_gpu *g);

/* Upload l (parameters; gradients and optimizer state start at zero) and
 * make it the adapter trained by sw_gpu_train_batch. l must fit the model. */
sw_status sw_gpu_set_lora(sw_ctx *ctx, sw_gpu *g, const sw_lora *l);
/* Copy the device's parameters into l's tensors (and the gradients into
 * l's gradient tensors when grads). */
sw_status sw_gpu_download(sw_ctx *ctx, sw_gpu *g, sw_lora *l, bool grads);

/* Same contract as sw_train_batch (train.h): loss_scale * gradients are
 * ADDED to the device gradients. */
sw_status sw_gpu_train_batch(sw_ctx *ctx, sw_gpu *g, const sw_seq_batch *b, const sw_train_opts *o, double *loss_sum,
                             int64_t *n_trained);
sw_status sw_gpu_zero_grad(sw_ctx *ctx, sw_gpu *g);
/* With recompute (and without backward) the MLP runs over chunks of at most
 * this many rows (0: the default, 16384); tests use small ones. */
void sw_gpu_set_mlp_rows(sw_gpu *g, int64_t rows);
/* Global L2 norm of the gradients (non-finite when any gradient is). */
sw_status sw_gpu_grad_norm(sw_ctx *ctx, sw_gpu *g, double *norm);
/* One optimizer update (torch's arithmetic as core/optim.c) with the
 * gradients multiplied by gscale (clipping); step counts updates from 1. */
sw_status sw_gpu_optim_update(sw_ctx *ctx, sw_gpu *g, const sw_optim_opts *o, double lr, float gscale);
/* The same update on the slice [lo, hi) of the flat arrays only (ZeRO-1:
 * each rank updates its own slice); the step count still advances. The
 * bf16 copy the GEMMs read is NOT refreshed: call sw_gpu_params_changed once
 * every slice is in place. */
sw_status sw_gpu_optim_update_range(sw_ctx *ctx, sw_gpu *g, const sw_optim_opts *o, double lr, float gscale,
                                    int64_t lo, int64_t hi);
sw_status sw_gpu_params_changed(sw_ctx *ctx, sw_gpu *g);
/* Keep the optimizer's moments only for [lo, hi) (ZeRO-1: this rank's
 * slice; [0, n_param) = all again, the part not held before at zero). Later
 * updates must stay inside; moving the state to a host optimizer needs all. */
sw_status sw_gpu_shard_optim(sw_ctx *ctx, sw_gpu *g, int64_t lo, int64_t hi);
/* Layer li's slice [lo, hi) of the flat parameter/gradient arrays, and their
 * length (data-parallel buckets, core/dist_engine.c). */
void      sw_gpu_layer_span(const sw_gpu *g, int64_t li, int64_t *lo, int64_t *hi);
int64_t   sw_gpu_n_param(const sw_gpu *g);
/* Whether the device holds l (the adapter last given to sw_gpu_set_lora). */
bool      sw_gpu_mirrors(const sw_gpu *g, const sw_lora *l);
/* The optimizer's moments between the device and a host sw_optim made for
 * the same adapter (saving and resuming a trainer); the step count too. */
sw_status sw_gpu_download_optim(sw_ctx *ctx, sw_gpu *g, sw_optim *opt);
sw_status sw_gpu_upload_optim(sw_ctx *ctx, sw_gpu *g, const sw_optim *opt);
/* Updates applied so far (for resuming: set from the host optimizer). */
int64_t   sw_gpu_optim_step(const sw_gpu *g);

/* Turn CUDA graphs on or off for later steps (off frees the recorded ones;
 * on also retries after a capture that failed). No effect when emulated. */
void      sw_gpu_set_graphs(sw_gpu *g, bool on);
/* Whether steps may use graphs now, and what they did so far: graphs
 * recorded, steps replayed from one, captures that failed (the step then ran
 * directly and graphs stay off; why: the last failure's message or ""). */
typedef struct sw_gpu_graph_stats {
    bool enabled;
    int64_t captured, replayed, failed;
    const char *why;
} sw_gpu_graph_stats;
void      sw_gpu_graph_info(const sw_gpu *g, sw_gpu_graph_stats *s);

/* Where it lives (SW_DEV_CPU when emulated). */
sw_device sw_gpu_device(const sw_gpu *g);
/* Bytes of the device copy's weights. */
size_t    sw_gpu_weight_bytes(const sw_gpu *g);
const sw_model_config *sw_gpu_config(const sw_gpu *g);

#endif
