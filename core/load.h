/* load.h — building an sw_model from files: GGUF, or an HF directory
 * (config.json + safetensors, plain or bitsandbytes NF4).
 *
 * Loading either returns a complete model or nothing: on any error every
 * allocation is released and the message names the file and the tensor.
 */
#ifndef SW_LOAD_H
#define SW_LOAD_H

#include "gguf.h"
#include "model.h"

typedef enum sw_load_quant {
    SW_LOAD_KEEP = 0,  /* weights as stored (GGUF blocks stay blocks) */
    SW_LOAD_F32,
    SW_LOAD_BF16,
    SW_LOAD_F16,
    SW_LOAD_NF4,       /* projections to bitsandbytes NF4; embeddings as stored */
} sw_load_quant;

typedef struct sw_load_opts {
    sw_load_quant quant;
    int64_t max_seq;   /* 0: min(the model's context, 2048) */
} sw_load_opts;

bool sw_load_quant_from_name(const char *s, sw_load_quant *out);

/* The model config from a GGUF's metadata. */
sw_status sw_config_from_gguf(sw_ctx *ctx, const sw_gguf *g, sw_model_config *out);
sw_status sw_load_gguf(sw_ctx *ctx, const sw_gguf *g, const sw_load_opts *o, sw_model **out);

/* An HF model directory: config.json + safetensors (plain, or NF4
 * weights saved by bitsandbytes). */
sw_status sw_load_hf(sw_ctx *ctx, const char *dir, const sw_load_opts *o, sw_model **out);

/* A weight matrix (rows, cols) from raw data of type src_t into a linear
 * layer of the requested storage. */
sw_status sw_load_linear(sw_ctx *ctx, sw_linear *l, const void *src, sw_dtype src_t, int64_t rows,
                         int64_t cols, sw_load_quant q, const char *name);
/* A tensor (any shape) converted to f32: norms, biases. */
sw_status sw_load_f32(sw_ctx *ctx, sw_tensor **out, const void *src, sw_dtype src_t, int ndim,
                      const int64_t *shape, const char *name);

#endif
