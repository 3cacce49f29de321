/* model.h — a Llama-family decoder in memory, and its CPU forward pass.
 *
 * One struct covers Llama 2/3, SmolLM2, Mistral, Qwen2 and Qwen3: the
 * differences are flags in sw_model_config (biases, q/k norms, windows,
 * rope layout). Weights are tensors of any dtype the dequantizers read;
 * the forward works in float32 and dequantizes weights panel by panel, so a
 * Q4 or NF4 model never exists in memory as float32 all at once.
 *
 * The key/value cache holds positions [0, n_past); a forward call appends
 * T positions. If a call fails or is interrupted, n_past is unchanged, so
 * the model is exactly as before the call.
 */
#ifndef SW_MODEL_H
#define SW_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ctx.h"
#include "tensor.h"

/* y = x W^T + b, W stored (out, in). NF4 weights keep codes (u8, out*in/2)
 * and one float absmax per 64 elements. */
typedef struct sw_linear {
    sw_tensor *w;        /* (out, in): f32/f16/bf16, GGUF blocks, or NF4 codes */
    sw_tensor *absmax;   /* NF4 only: f32 (out*in/64) */
    sw_tensor *b;        /* optional f32 (out) */
    int64_t out, in;
    bool nf4;
} sw_linear;

typedef struct sw_layer {
    sw_tensor *attn_norm;          /* f32 (C) */
    sw_linear q, k, v, o;          /* (Hq*D, C), (Hkv*D, C), (Hkv*D, C), (C, Hq*D) */
    sw_tensor *q_norm, *k_norm;    /* Qwen3: f32 (D) */
    sw_tensor *mlp_norm;           /* f32 (C) */
    sw_linear gate, up, down;      /* (I, C), (I, C), (C, I) */
} sw_layer;

typedef struct sw_model {
    sw_model_config cfg;
    sw_tensor *embed;              /* (V, C), any dtype */
    sw_layer *layers;              /* cfg.n_layers */
    sw_tensor *norm;               /* f32 (C) */
    sw_linear lm_head;             /* w == embed when tied */
    sw_tensor *rope_freqs;         /* optional f32 (D/2): GGUF llama3 factors */
    float *inv_freq;               /* (D/2), after scaling */
    /* KV cache: per layer (max_seq, Hkv, D) f32. */
    sw_tensor **k_cache, **v_cache;
    int64_t max_seq;
    int64_t n_past;
    struct sw_lora *lora;          /* the active adapter, or NULL (not owned) */
    struct sw_gpu *gpu;            /* a device copy that trains there (owned), or NULL */
    sw_device device;
    char source[512];              /* the file or directory it came from */
    char quant[16];                /* "f32", "bf16", "nf4", "q4_1", ... (most weights) */
} sw_model;

/* An empty model for cfg (no tensors yet); loaders fill the weights and
 * then call sw_model_finish. */
sw_status sw_model_new(sw_ctx *ctx, const sw_model_config *cfg, sw_model **out);
/* Checks every tensor's presence and shape, computes the rope table and
 * allocates the KV cache for max_seq positions. */
sw_status sw_model_finish(sw_ctx *ctx, sw_model *m, int64_t max_seq);
void      sw_model_free(sw_model *m);

/* Run T tokens at positions n_past .. n_past+T-1 and append them to the
 * cache. logits: (T, V) when all_logits, else (1, V) for the last token;
 * may be NULL. Polls the interrupt flag between layers. */
sw_status sw_model_forward(sw_ctx *ctx, sw_model *m, const int32_t *ids, int64_t T,
                           float *logits, bool all_logits);
void      sw_model_reset(sw_model *m);   /* forget the cache (n_past = 0) */
/* Drop cached positions >= n (n <= n_past): for regenerating after a prompt. */
void      sw_model_truncate(sw_model *m, int64_t n);

/* Parameter counts: all, and in the embedding / head. */
int64_t   sw_model_n_params(const sw_model *m);
/* Bytes of the weights (as stored). */
size_t    sw_model_weight_bytes(const sw_model *m);

/* y (T, out) = x (T, in) W^T + b; dequantizes W in panels (workspace). */
sw_status sw_linear_forward(sw_ctx *ctx, float *y, const float *x, const sw_linear *l, int64_t T);
/* y (T, n) with row stride ldy = x (T, k) W^T for a row-major float32 W (n, k). */
void      sw_gemm_nt(float *y, int64_t ldy, const float *x, const float *w, int64_t T, int64_t n, int64_t k);
/* The linear of layer li, target t (sw_lora target index). */
sw_linear *sw_model_linear(sw_model *m, int64_t li, int t);
/* How many rows of a quantized weight to dequantize at a time. */
int64_t   sw_linear_panel_rows(const sw_linear *l);
/* Rows [r0, r0+n) of a linear's weight as float32 (n x in), any storage. */
void      sw_linear_rows(float *dst, const sw_linear *l, int64_t r0, int64_t n);
/* Row `row` of a (rows, cols) weight tensor of any dtype, as float32. */
void      sw_tensor_row_f32(float *dst, const sw_tensor *t, int64_t row);

#endif
