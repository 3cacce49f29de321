/* bnb.h — bitsandbytes 4-bit ("bnb-4bit") linear weights in a safetensors
 * set, as transformers saves a model loaded with load_in_4bit.
 *
 * For a linear layer whose weight is "<w>" (e.g. "model.layers.0.mlp.
 * up_proj.weight"), a checkpoint holds (bitsandbytes' QuantState.as_dict
 * (packed=True)):
 *   <w>                                   packed codes: ceil(n/2) bytes, two
 *                                         per byte, first in the high nibble
 *                                         (U8 [n/2, 1]; another quant_storage
 *                                         dtype packs the same bytes)
 *   <w>.absmax                            F32 [n/64], or U8 [n/64] when nested
 *   <w>.quant_map                         F32 [16], the NF4 table
 *   <w>.nested_absmax, .nested_quant_map  F32 [ceil(n/64/256)], F32 [256]
 *   <w>.quant_state.bitsandbytes__nf4     U8: the bytes of a JSON object
 *       {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16",
 *        "shape": [out, in], "nested_blocksize": 256,
 *        "nested_dtype": "float32", "nested_offset": 0.0123}
 * n = out * in. Nested (double-quantized) absmax decodes as
 * nested_quant_map[q] * nested_absmax[i / 256] + nested_offset.
 * fp4 states (…bitsandbytes__fp4) are recognised and refused; so are block
 * sizes other than 64 / 256 and sizes that disagree with the shape.
 */
#ifndef SW_BNB_H
#define SW_BNB_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "safetensors.h"
#include "tensor.h"

typedef struct sw_bnb_weight {
    int64_t out, in;        /* the original weight's shape (rows, columns) */
    int64_t n;              /* out * in, a multiple of 64 */
    int64_t nblocks;        /* n / 64 */
    const uint8_t *codes;   /* n / 2 bytes, into the safetensors map */
    float *absmax;          /* nblocks floats, owned: denested when it was nested */
    bool nested;            /* the file held double-quantized absmax */
    char orig_dtype[16];    /* the "dtype" of the state: "bfloat16", "float16", ... */
} sw_bnb_weight;

/* Whether "<weight_name>.quant_state.bitsandbytes__*" is in the set. */
bool sw_bnb_is_quantized(const sw_st *st, const char *weight_name);

/* Read and check one quantized weight. On success *w owns its absmax;
 * release with sw_bnb_weight_free. The codes stay valid while st is open. */
sw_status sw_bnb_read(sw_ctx *ctx, const sw_st *st, const char *weight_name, sw_bnb_weight *w);
void      sw_bnb_weight_free(sw_bnb_weight *w);  /* zeroes *w; twice is fine */

/* dst: w->n floats, row-major (out, in). */
void sw_bnb_dequant(const sw_bnb_weight *w, float *dst);

/* One step for a loader: dtype SW_NF4 keeps the codes (*weight is nf4
 * [out, in], *absmax f32 [out, in / 64]; in must be a multiple of 64);
 * f32 / f16 / bf16 dequantize (*absmax is set to NULL; absmax may be NULL). */
sw_status sw_bnb_load(sw_ctx *ctx, const sw_st *st, const char *weight_name, sw_dtype dtype, sw_device dev,
                      sw_mem_cat cat, sw_tensor **weight, sw_tensor **absmax);

#endif
