/* dtype.h — element types, including quantized block formats.
 *
 * Plain types (f32, f16, bf16, i32) are addressed element by element.
 * Quantized types are opaque runs of blocks: a row of n elements takes
 * n / block elements-per-block blocks of block_bytes each, so only the
 * innermost dimension is packed and it must be a multiple of the block.
 * The layouts are those of GGUF (q*_0, q*_1, q*_K) and bitsandbytes (nf4);
 * the readers and dequantizers arrive with the file formats.
 */
#ifndef SW_DTYPE_H
#define SW_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sw_dtype {
    SW_F32 = 0,
    SW_F16,
    SW_BF16,
    SW_I32,
    SW_U8,   /* raw bytes: bitsandbytes packs NF4 codes as uint8 */
    SW_Q8_0,
    SW_Q4_0,
    SW_Q4_1,
    SW_Q4_K,
    SW_Q5_K,
    SW_Q6_K,
    SW_NF4,
    SW_DTYPE_COUNT
} sw_dtype;

typedef struct sw_dtype_info {
    const char *name;
    int block;        /* elements per block (1 for plain types) */
    int block_bytes;  /* bytes per block */
    bool quantized;
    bool floating;    /* f32/f16/bf16: values convert freely */
} sw_dtype_info;

/* NULL for an out-of-range value. */
const sw_dtype_info *sw_dtype_info_of(sw_dtype t);
const char *sw_dtype_name(sw_dtype t);
/* Returns false when name is not a dtype. */
bool sw_dtype_from_name(const char *name, sw_dtype *out);
/* Bytes taken by one row of n elements, or 0 when n is not a whole number of blocks. */
size_t sw_dtype_row_bytes(sw_dtype t, int64_t n);

#endif
