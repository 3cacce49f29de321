/* gpu_internal.h — the device engine's state, shared by core/gpu_*.c. */
#ifndef SW_GPU_INTERNAL_H
#define SW_GPU_INTERNAL_H

#include "../kernels/gpu_ops.h"
#include "device.h"
#include "gpu.h"
#include "mem.h"

enum { GW_BF16 = 0, GW_NF4, GW_BLOCKS };

struct sw_gpu_graph_cache; /* core/gpu_graph.c */
struct sw_gpu_prof;   /* core/gpu_profile.c */

/* A frozen projection on the device. */
typedef struct gweight {
    int kind;
    void *w;           /* bf16 (out, in), NF4 codes (out*in/2 bytes) or GGUF blocks */
    float *absmax;     /* NF4: out*in/64 */
    sw_dtype t;        /* GW_BLOCKS: the block type */
    float *b;          /* bias (out) or NULL */
    int64_t out, in;
    size_t wbytes;
} gweight;

typedef struct glayer {
    float *attn_norm, *mlp_norm, *q_norm, *k_norm;
    gweight lin[SW_LORA_NTARGETS];
} glayer;

/* Projections that read the same input share one x A^T GEMM. */
enum { GG_QKV = 0, GG_O, GG_GU, GG_DOWN, GG_COUNT };
extern const int sw_gpu_group_of[SW_LORA_NTARGETS];

/* Where one layer's adapter lives in the flat arrays. */
typedef struct glora_layer {
    int64_t offA[GG_COUNT];            /* first A of the group (stacked rows), -1 if none */
    int nt[GG_COUNT];                  /* targets present in the group */
    int slot[SW_LORA_NTARGETS];        /* index inside its group, -1 if not adapted */
    int64_t offB[SW_LORA_NTARGETS];    /* B (out, r), -1 if not adapted */
} glora_layer;

/* Where a call keeps the layer inputs (core/gpu_ckpt.c). */
enum { SW_CKPT_ALL = 0, SW_CKPT_RING, SW_CKPT_OFFLOAD };
typedef struct gckpt {
    int layout;
    int64_t n;             /* checkpoints: layers + 1 */
    size_t bytes;          /* one checkpoint (T, C) bf16 */
    sw_bf16 *dev_slots;    /* carved from the activations */
    int64_t occupant[2];   /* ring layouts: which checkpoint each slot holds */
    char *host;            /* offload: n checkpoints, pinned, kept between calls */
    size_t host_bytes;
    void **saved, **loaded; /* per checkpoint CUDA events */
    char *state;
    int64_t n_events;
} gckpt;

struct sw_gpu {
    sw_model_config cfg;
    const sw_gpu_ops *ops;
    int dev;                /* CUDA index or SW_GPU_EMULATE */
    sw_device mdev;         /* where sw_mem accounts it */
    sw_bf16 *embed, *head;  /* head == embed when tied */
    float *norm, *inv_freq;
    glayer *layers;
    sw_bf16 *wbuf;          /* dequantized weight scratch: the largest projection */
    int64_t wbuf_elems;
    size_t weight_bytes;

    /* adapter */
    bool has_lora;
    const sw_lora *mirror;    /* the host adapter uploaded last */
    int r;
    float scale;
    float dropout;            /* LoRA dropout p (0: none) and the adapter's seed for its masks */
    uint64_t drop_seed;
    glora_layer *ll;
    int64_t n_param;
    float *p, *gr, *m1, *m2;  /* params, gradients, optimizer state (m2: AdamW's v) */
    int64_t opt_lo, opt_hi;   /* m1, m2 hold elements [opt_lo, opt_hi) of the flat array: all of
                               * it, or this rank's ZeRO-1 slice (sw_gpu_shard_optim) */
    sw_bf16 *pb;              /* bf16 mirror of p, refreshed after each update */
    double *sumsq;            /* one double: the gradient norm's reduction lands here */
    int64_t step;

    /* activations kept between calls, sized for cap_T tokens */
    void *act;
    size_t act_bytes;
    int64_t cap_T, cap_len;
    bool cap_bwd, cap_ckpt;
    gckpt ck;
    int64_t mlp_rows;       /* row chunk of the MLP with recompute; 0: the default */

    /* recorded steps (gpu_graph.c) and the profiler attached (gpu_profile.c);
     * ops is then the profiler's table and the profiler keeps the real one */
    bool graphs_on;
    struct sw_gpu_graph_cache *graphs;
    struct sw_gpu_prof *prof;
};

/* Memory helpers on the engine's device (accounted by category). */
void     *sw_gpu_alloc(sw_ctx *ctx, sw_gpu *g, sw_mem_cat c, size_t bytes);
void      sw_gpu_release(sw_gpu *g, sw_mem_cat c, void *p, size_t bytes);
sw_status sw_gpu_upload(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes);
sw_status sw_gpu_fetch(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes);
sw_status sw_gpu_copy(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes);
sw_status sw_gpu_zero(sw_ctx *ctx, sw_gpu *g, void *p, size_t bytes);
sw_status sw_gpu_sync(sw_ctx *ctx, sw_gpu *g);

/* The bf16 (out, in) matrix of a projection: itself, or dequantized into
 * g->wbuf (valid until the next call). */
sw_status sw_gpu_weight(sw_ctx *ctx, sw_gpu *g, const gweight *w, const sw_bf16 **out);

void sw_gpu_free_activations(sw_gpu *g);

/* Checkpoints (gpu_ckpt.c): the device slots a layout needs, set-up per
 * call, the device address of checkpoint i, and the hooks the engine calls
 * around writing and reading them. */
size_t    sw_ckpt_device_slots(int layout, int64_t n);
sw_status sw_ckpt_setup(sw_ctx *ctx, sw_gpu *g, int layout, int64_t n, size_t bytes, sw_bf16 *slots);
void      sw_ckpt_begin(sw_gpu *g); /* at the start of each step */
sw_bf16  *sw_ckpt_at(const sw_gpu *g, int64_t i);
sw_status sw_ckpt_before_write(sw_ctx *ctx, sw_gpu *g, int64_t i);
sw_status sw_ckpt_after_write(sw_ctx *ctx, sw_gpu *g, int64_t i);
sw_status sw_ckpt_prefetch(sw_ctx *ctx, sw_gpu *g, int64_t i);
sw_status sw_ckpt_need(sw_ctx *ctx, sw_gpu *g, int64_t i);
void      sw_ckpt_free(sw_gpu *g);
/* Timing of the engine's own copies (gpu_profile.c): begin returns a token
 * for end, -1 when no profiler is attached (end then does nothing). */
enum { GP_COPY = 0, GP_ZERO, GP_UPLOAD, GP_FETCH };
int  sw_gpu_prof_begin(sw_gpu *g, int what);
void sw_gpu_prof_end(sw_gpu *g, int token);
/* The engine is going away: forget it (its profiler may live on). */
void sw_gpu_prof_forget(sw_gpu *g);

#endif
