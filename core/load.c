/* load.c — turning stored weights into model tensors, and GGUF models.
 *
 * Weights are copied out of the (mmapped) file into accounted tensors, so
 * the file can be closed and memory reports show what the model holds.
 * Conversion happens row by row through float32: any stored type can
 * become any supported storage without a full-size float32 copy.
 */
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"

bool sw_load_quant_from_name(const char *s, sw_load_quant *out) {
    static const struct { const char *n; sw_load_quant q; } names[] = {
        {"keep", SW_LOAD_KEEP}, {"f32", SW_LOAD_F32}, {"bf16", SW_LOAD_BF16},
        {"f16", SW_LOAD_F16},   {"nf4", SW_LOAD_NF4}, {"none", SW_LOAD_KEEP}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].n)) {
            *out = names[i].q;
            return true;
        }
    return false;
}

static sw_dtype target_dtype(sw_load_quant q, sw_dtype src) {
    switch (q) {
    case SW_LOAD_F32: return SW_F32;
    case SW_LOAD_BF16: return SW_BF16;
    case SW_LOAD_F16: return SW_F16;
    default: return src;
    }
}

sw_status sw_load_linear(sw_ctx *ctx, sw_linear *l, const void *src, sw_dtype src_t, int64_t rows,
                         int64_t cols, sw_load_quant q, const char *name) {
    memset(l, 0, sizeof *l);
    size_t row_bytes = sw_dtype_row_bytes(src_t, cols);
    if (!row_bytes) return sw_err(ctx, SW_EFORMAT, "%s: %lld columns do not fill %s blocks", name, (long long)cols, sw_dtype_name(src_t));
    l->out = rows;
    l->in = cols;
    if (q == SW_LOAD_NF4) {
        if ((rows * cols) % 64)
            return sw_err(ctx, SW_EINVAL, "%s: NF4 needs a multiple of 64 elements, (%lld, %lld) is not", name,
                          (long long)rows, (long long)cols);
        int64_t n = rows * cols;
        int64_t cshape[1] = {n / 2}, ashape[1] = {n / 64};
        float *row = malloc(sizeof(float) * (size_t)cols * 64);
        if (!row) return sw_err(ctx, SW_ENOMEM, "host out of memory");
        if (sw_tensor_new(ctx, &l->w, SW_U8, 1, cshape, SW_DEV_CPU, SW_MEM_WEIGHTS) ||
            sw_tensor_new(ctx, &l->absmax, SW_F32, 1, ashape, SW_DEV_CPU, SW_MEM_WEIGHTS)) {
            free(row);
            sw_tensor_free(l->w);
            memset(l, 0, sizeof *l);
            return sw_err_prefix(ctx, "%s", name);
        }
        /* 64 rows at a time: always a whole number of 64-element blocks. */
        uint8_t *codes = sw_tensor_data(l->w);
        float *absmax = sw_tensor_data(l->absmax);
        for (int64_t r0 = 0; r0 < rows; r0 += 64) {
            int64_t nr = rows - r0 < 64 ? rows - r0 : 64;
            for (int64_t r = 0; r < nr; r++)
                sw_dequant_cpu(row + r * cols, (const char *)src + (size_t)(r0 + r) * row_bytes, src_t, cols);
            int64_t e0 = r0 * cols, ne = nr * cols; /* ne % 64 == 0 unless last chunk, and n % 64 == 0 */
            sw_nf4_quant_cpu(codes + e0 / 2, absmax + e0 / 64, row, ne);
        }
        free(row);
        /* bitsandbytes' double quantization (compress_statistics=True):
         * the absmax goes through 8 bits and back, so the weights are the
         * very values a QLoRA model computes with. */
        int64_t nb = n / 64;
        uint8_t *qa = malloc((size_t)nb);
        float *a2 = malloc(sizeof(float) * (size_t)((nb + 255) / 256)), *scratch = malloc(sizeof(float) * (size_t)nb);
        if (!qa || !a2 || !scratch) {
            free(qa), free(a2), free(scratch);
            sw_tensor_free(l->w);
            sw_tensor_free(l->absmax);
            memset(l, 0, sizeof *l);
            return sw_err(ctx, SW_ENOMEM, "host out of memory");
        }
        float offset;
        sw_nf4_double_quant_cpu(qa, a2, &offset, absmax, nb, scratch);
        sw_nf4_double_dequant_cpu(absmax, qa, a2, NULL, offset, nb);
        free(qa), free(a2), free(scratch);
        l->nf4 = true;
        return SW_OK;
    }
    sw_dtype dt = target_dtype(q, src_t);
    int64_t shape[2] = {rows, cols};
    if (sw_tensor_new(ctx, &l->w, dt, 2, shape, SW_DEV_CPU, SW_MEM_WEIGHTS)) return sw_err_prefix(ctx, "%s", name);
    if (dt == src_t) {
        memcpy(sw_tensor_data(l->w), src, row_bytes * (size_t)rows);
        return SW_OK;
    }
    float *row = malloc(sizeof(float) * (size_t)cols);
    if (!row) {
        sw_tensor_free(l->w);
        l->w = NULL;
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    char *dst = sw_tensor_data(l->w);
    size_t drow = sw_dtype_row_bytes(dt, cols);
    for (int64_t r = 0; r < rows; r++) {
        sw_dequant_cpu(row, (const char *)src + (size_t)r * row_bytes, src_t, cols);
        sw_convert_cpu(dst + (size_t)r * drow, dt, row, SW_F32, cols);
    }
    free(row);
    return SW_OK;
}

sw_status sw_load_f32(sw_ctx *ctx, sw_tensor **out, const void *src, sw_dtype src_t, int ndim,
                      const int64_t *shape, const char *name) {
    if (sw_tensor_new(ctx, out, SW_F32, ndim, shape, SW_DEV_CPU, SW_MEM_WEIGHTS)) return sw_err_prefix(ctx, "%s", name);
    sw_dequant_cpu(sw_tensor_data(*out), src, src_t, sw_tensor_numel(*out));
    return SW_OK;
}
