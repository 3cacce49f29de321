/* tensor.h — n-dimensional arrays on a device, with views.
 *
 * Shapes are written outermost first, as in PyTorch: a (rows, cols) matrix
 * has shape {rows, cols}. Strides are in bytes (so views can step over
 * quantized rows). For quantized dtypes the innermost dimension is packed
 * blocks: its size must be a multiple of the block, and views may not cut
 * or transpose it.
 *
 * Storage is a reference-counted buffer charged to one memory category on
 * one device; a view shares its parent's buffer, so freeing the parent first
 * is safe and the bytes are released with the last tensor that uses them.
 */
#ifndef SW_TENSOR_H
#define SW_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include "ctx.h"
#include "device.h"
#include "dtype.h"
#include "mem.h"

#define SW_MAX_DIMS 4

typedef struct sw_buffer sw_buffer; /* opaque: device memory + refcount */

typedef struct sw_tensor {
    sw_dtype dtype;
    int ndim;                       /* 0 (a scalar) .. SW_MAX_DIMS */
    int64_t shape[SW_MAX_DIMS];
    int64_t stride[SW_MAX_DIMS];    /* bytes; innermost of a quantized tensor: 0 */
    size_t offset;                  /* bytes from the start of the buffer */
    sw_buffer *buf;
    char name[64];
} sw_tensor;

/* A new, contiguous, zero-filled tensor. */
sw_status sw_tensor_new(sw_ctx *ctx, sw_tensor **out, sw_dtype dtype, int ndim,
                        const int64_t *shape, sw_device dev, sw_mem_cat cat);
/* Releases the tensor and, if it was the last user, its buffer. NULL is fine. */
void sw_tensor_free(sw_tensor *t);

/* Views share storage. narrow: elements [start, start+len) of dimension dim. */
sw_status sw_tensor_narrow(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int dim,
                           int64_t start, int64_t len);
sw_status sw_tensor_transpose(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int d0, int d1);
/* Contiguous tensors only; one entry of shape may be -1 (inferred). */
sw_status sw_tensor_reshape(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int ndim,
                            const int64_t *shape);

int64_t   sw_tensor_numel(const sw_tensor *t);
size_t    sw_tensor_nbytes(const sw_tensor *t);   /* if it were contiguous */
bool      sw_tensor_is_contiguous(const sw_tensor *t);
void     *sw_tensor_data(const sw_tensor *t);     /* first element, on its device */
sw_device sw_tensor_device(const sw_tensor *t);
sw_mem_cat sw_tensor_category(const sw_tensor *t);
/* Tensors (views included) sharing this tensor's buffer, itself included. */
int       sw_tensor_buffer_users(const sw_tensor *t);

/* dst = src converted, same shape; any devices, f32/f16/bf16/i32 freely,
 * quantized only to the same dtype. Nothing is written if it fails. */
sw_status sw_tensor_copy(sw_ctx *ctx, sw_tensor *dst, const sw_tensor *src);
/* A new tensor on dev with dtype (category kept). */
sw_status sw_tensor_to(sw_ctx *ctx, sw_tensor **out, const sw_tensor *src, sw_device dev,
                       sw_dtype dtype);
sw_status sw_tensor_fill(sw_ctx *ctx, sw_tensor *t, double v);
/* N(0,1) * scale; floating dtypes; the same numbers on every device. */
sw_status sw_tensor_randn(sw_ctx *ctx, sw_tensor *t, uint64_t seed, double scale);
/* One element by index (any device; slow off the host: for display and tests). */
sw_status sw_tensor_get(sw_ctx *ctx, const sw_tensor *t, const int64_t *idx, double *out);
sw_status sw_tensor_set(sw_ctx *ctx, sw_tensor *t, const int64_t *idx, double v);

/* "f32[2, 3] cpu workspace" */
const char *sw_tensor_describe(const sw_tensor *t, char *buf, size_t n);

#endif
