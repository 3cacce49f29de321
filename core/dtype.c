/* dtype.c — the dtype table. Block sizes follow GGUF (ggml's type table) and
 * bitsandbytes NF4 (64 four-bit codes per block, absmax stored apart, so a
 * block's payload is 32 bytes). */
#include "dtype.h"

#include <string.h>

static const sw_dtype_info table[SW_DTYPE_COUNT] = {
    [SW_F32]  = {"f32", 1, 4, false, true},
    [SW_F16]  = {"f16", 1, 2, false, true},
    [SW_BF16] = {"bf16", 1, 2, false, true},
    [SW_I32]  = {"i32", 1, 4, false, false},
    [SW_U8]   = {"u8", 1, 1, false, false},
    [SW_Q8_0] = {"q8_0", 32, 34, true, false},   /* f16 scale + 32 x i8 */
    [SW_Q4_0] = {"q4_0", 32, 18, true, false},   /* f16 scale + 16 bytes of nibbles */
    [SW_Q4_1] = {"q4_1", 32, 20, true, false},   /* f16 scale, f16 min + nibbles */
    [SW_Q4_K] = {"q4_k", 256, 144, true, false},
    [SW_Q5_K] = {"q5_k", 256, 176, true, false},
    [SW_Q6_K] = {"q6_k", 256, 210, true, false},
    [SW_NF4]  = {"nf4", 64, 32, true, false},
};

const sw_dtype_info *sw_dtype_info_of(sw_dtype t) {
    if ((unsigned)t >= SW_DTYPE_COUNT) return NULL;
    return &table[t];
}

const char *sw_dtype_name(sw_dtype t) {
    const sw_dtype_info *i = sw_dtype_info_of(t);
    return i ? i->name : "?";
}

bool sw_dtype_from_name(const char *name, sw_dtype *out) {
    for (int i = 0; i < SW_DTYPE_COUNT; i++) {
        if (strcmp(name, table[i].name) == 0) {
            *out = (sw_dtype)i;
            return true;
        }
    }
    /* The spellings torch users type. */
    if (!strcmp(name, "float32") || !strcmp(name, "float")) { *out = SW_F32; return true; }
    if (!strcmp(name, "float16") || !strcmp(name, "half")) { *out = SW_F16; return true; }
    if (!strcmp(name, "bfloat16")) { *out = SW_BF16; return true; }
    if (!strcmp(name, "int32")) { *out = SW_I32; return true; }
    if (!strcmp(name, "uint8")) { *out = SW_U8; return true; }
    return false;
}

size_t sw_dtype_row_bytes(sw_dtype t, int64_t n) {
    const sw_dtype_info *i = sw_dtype_info_of(t);
    if (!i || n < 0 || n % i->block) return 0;
    return (size_t)(n / i->block) * (size_t)i->block_bytes;
}
