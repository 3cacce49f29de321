/* tensor.c — tensors, views and copies (see tensor.h).
 *
 * The copy routine is the one place data crosses devices or dtypes. Its
 * fast path is a contiguous same-device conversion (one op call); anything
 * else is staged through host memory, which is slow but simple and correct,
 * and keeps the rule that nothing is written to dst until every allocation
 * it needs has succeeded.
 */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"

struct sw_buffer {
    sw_device dev;
    sw_mem_cat cat;
    size_t bytes;
    void *data;
    int refs;
};

/* ---------------------------------------------------------------- shapes */

static sw_status check_shape(sw_ctx *ctx, sw_dtype dtype, int ndim, const int64_t *shape,
                             size_t *nbytes) {
    const sw_dtype_info *di = sw_dtype_info_of(dtype);
    if (!di) return sw_err(ctx, SW_EINVAL, "unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > SW_MAX_DIMS)
        return sw_err(ctx, SW_EINVAL, "tensors have 0 to %d dimensions, not %d", SW_MAX_DIMS, ndim);
    if (di->quantized && ndim == 0)
        return sw_err(ctx, SW_EINVAL, "a %s tensor needs at least one dimension", di->name);
    size_t elems = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return sw_err(ctx, SW_EINVAL, "dimension %d has negative size %lld", i + 1, (long long)shape[i]);
        if (shape[i] && elems > SIZE_MAX / (size_t)shape[i] / 8)
            return sw_err(ctx, SW_EINVAL, "tensor of that shape is too large");
        elems *= (size_t)shape[i];
    }
    if (di->quantized && shape[ndim - 1] % di->block)
        return sw_err(ctx, SW_EINVAL, "%s packs %d elements per block: the last dimension (%lld) must be a multiple of %d",
                      di->name, di->block, (long long)shape[ndim - 1], di->block);
    *nbytes = elems / (size_t)di->block * (size_t)di->block_bytes;
    return SW_OK;
}

static void contiguous_strides(sw_dtype dtype, int ndim, const int64_t *shape, int64_t *stride) {
    const sw_dtype_info *di = sw_dtype_info_of(dtype);
    if (ndim == 0) return;
    int64_t s;
    if (di->quantized) {
        stride[ndim - 1] = 0;
        s = (int64_t)sw_dtype_row_bytes(dtype, shape[ndim - 1]);
    } else {
        stride[ndim - 1] = di->block_bytes;
        s = di->block_bytes * shape[ndim - 1];
    }
    for (int i = ndim - 2; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

int64_t sw_tensor_numel(const sw_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t sw_tensor_nbytes(const sw_tensor *t) {
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    return (size_t)sw_tensor_numel(t) / (size_t)di->block * (size_t)di->block_bytes;
}

bool sw_tensor_is_contiguous(const sw_tensor *t) {
    int64_t want[SW_MAX_DIMS];
    contiguous_strides(t->dtype, t->ndim, t->shape, want);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > 1 && t->stride[i] != want[i]) return false;
    return true;
}

/* Bytes from the first element to one past the last, for a strided tensor. */
static size_t span_bytes(const sw_tensor *t) {
    if (sw_tensor_numel(t) == 0) return 0;
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    size_t end = di->quantized ? sw_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1])
                               : (size_t)di->block_bytes;
    int last = di->quantized ? t->ndim - 1 : t->ndim;
    for (int i = 0; i < last; i++) end += (size_t)(t->shape[i] - 1) * (size_t)t->stride[i];
    return end;
}

void *sw_tensor_data(const sw_tensor *t) { return (char *)t->buf->data + t->offset; }
sw_device sw_tensor_device(const sw_tensor *t) { return t->buf->dev; }
sw_mem_cat sw_tensor_category(const sw_tensor *t) { return t->buf->cat; }
int sw_tensor_buffer_users(const sw_tensor *t) { return t->buf->refs; }

/* --------------------------------------------------------- life and views */

sw_status sw_tensor_new(sw_ctx *ctx, sw_tensor **out, sw_dtype dtype, int ndim,
                        const int64_t *shape, sw_device dev, sw_mem_cat cat) {
    *out = NULL;
    size_t nbytes;
    if (check_shape(ctx, dtype, ndim, shape, &nbytes)) return ctx->status;
    if ((unsigned)cat >= SW_MEM_CAT_COUNT) return sw_err(ctx, SW_EINVAL, "unknown memory category %d", (int)cat);
    sw_tensor *t = calloc(1, sizeof *t);
    sw_buffer *b = calloc(1, sizeof *b);
    if (!t || !b) {
        free(t);
        free(b);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    b->data = sw_mem_alloc(ctx, dev, cat, nbytes);
    if (!b->data) {
        free(t);
        free(b);
        return ctx->status;
    }
    b->dev = dev;
    b->cat = cat;
    b->bytes = nbytes;
    b->refs = 1;
    if (sw_device_memset0(ctx, dev, b->data, nbytes)) {
        sw_mem_free(dev, cat, b->data, nbytes);
        free(t);
        free(b);
        return ctx->status;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    contiguous_strides(dtype, ndim, shape, t->stride);
    t->buf = b;
    *out = t;
    return SW_OK;
}

void sw_tensor_free(sw_tensor *t) {
    if (!t) return;
    sw_buffer *b = t->buf;
    if (b && --b->refs == 0) {
        sw_mem_free(b->dev, b->cat, b->data, b->bytes);
        free(b);
    }
    free(t);
}

static sw_status view_of(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t) {
    sw_tensor *v = malloc(sizeof *v);
    if (!v) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    *v = *t;
    v->buf->refs++;
    *out = v;
    return SW_OK;
}

static sw_status check_dim(sw_ctx *ctx, const sw_tensor *t, int dim) {
    if (dim < 0 || dim >= t->ndim)
        return sw_err(ctx, SW_EINVAL, "dimension %d out of range for a %d-d tensor", dim + 1, t->ndim);
    return SW_OK;
}

sw_status sw_tensor_narrow(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int dim,
                           int64_t start, int64_t len) {
    *out = NULL;
    if (check_dim(ctx, t, dim)) return ctx->status;
    if (start < 0 || len < 0 || start + len > t->shape[dim])
        return sw_err(ctx, SW_EINVAL, "range [%lld, %lld) is outside dimension %d of size %lld",
                      (long long)start, (long long)(start + len), dim + 1, (long long)t->shape[dim]);
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (di->quantized && dim == t->ndim - 1)
        return sw_err(ctx, SW_EINVAL, "cannot cut inside the packed rows of a %s tensor", di->name);
    if (view_of(ctx, out, t)) return ctx->status;
    (*out)->offset += (size_t)(start * t->stride[dim]);
    (*out)->shape[dim] = len;
    return SW_OK;
}

sw_status sw_tensor_transpose(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int d0, int d1) {
    *out = NULL;
    if (check_dim(ctx, t, d0) || check_dim(ctx, t, d1)) return ctx->status;
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (di->quantized && (d0 == t->ndim - 1 || d1 == t->ndim - 1) && d0 != d1)
        return sw_err(ctx, SW_EINVAL, "cannot transpose the packed dimension of a %s tensor", di->name);
    if (view_of(ctx, out, t)) return ctx->status;
    sw_tensor *v = *out;
    int64_t s = v->shape[d0]; v->shape[d0] = v->shape[d1]; v->shape[d1] = s;
    s = v->stride[d0]; v->stride[d0] = v->stride[d1]; v->stride[d1] = s;
    return SW_OK;
}

sw_status sw_tensor_reshape(sw_ctx *ctx, sw_tensor **out, const sw_tensor *t, int ndim,
                            const int64_t *shape) {
    *out = NULL;
    if (ndim < 0 || ndim > SW_MAX_DIMS)
        return sw_err(ctx, SW_EINVAL, "tensors have 0 to %d dimensions, not %d", SW_MAX_DIMS, ndim);
    int64_t s[SW_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) return sw_err(ctx, SW_EINVAL, "reshape: only one dimension may be -1");
            infer = i;
        } else if (s[i] < 0) {
            return sw_err(ctx, SW_EINVAL, "reshape: dimension %d has negative size", i + 1);
        } else {
            known *= s[i];
        }
    }
    int64_t n = sw_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known) return sw_err(ctx, SW_EINVAL, "reshape: cannot infer a size for %lld elements", (long long)n);
        s[infer] = n / known;
        known *= s[infer];
    }
    if (known != n)
        return sw_err(ctx, SW_EINVAL, "reshape: %lld elements cannot take a shape of %lld", (long long)n, (long long)known);
    if (!sw_tensor_is_contiguous(t))
        return sw_err(ctx, SW_EINVAL, "reshape needs a contiguous tensor (copy it first)");
    size_t nbytes;
    if (check_shape(ctx, t->dtype, ndim, s, &nbytes)) return ctx->status;
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (di->quantized && s[ndim - 1] != t->shape[t->ndim - 1] && (s[ndim - 1] % di->block))
        return sw_err(ctx, SW_EINVAL, "reshape would split a %s block", di->name);
    if (view_of(ctx, out, t)) return ctx->status;
    (*out)->ndim = ndim;
    memcpy((*out)->shape, s, sizeof(int64_t) * (size_t)ndim);
    contiguous_strides(t->dtype, ndim, s, (*out)->stride);
    return SW_OK;
}

/* ---------------------------------------------------------------- copies */

/* Visit every innermost unit (an element, or a packed row for quantized
 * dtypes) of two same-shape host tensors in row-major order. */
static void host_strided_copy(const sw_tensor *dst, void *dbase, const sw_tensor *src,
                              const void *sbase) {
    const sw_dtype_info *di = sw_dtype_info_of(src->dtype);
    int outer = di->quantized ? src->ndim - 1 : src->ndim;
    size_t unit_src = di->quantized ? sw_dtype_row_bytes(src->dtype, src->shape[src->ndim - 1]) : 1;
    int64_t count = 1;
    for (int i = 0; i < outer; i++) count *= src->shape[i];
    int64_t idx[SW_MAX_DIMS] = {0};
    for (int64_t k = 0; k < count; k++) {
        const char *sp = (const char *)sbase;
        char *dp = (char *)dbase;
        for (int i = 0; i < outer; i++) {
            sp += idx[i] * src->stride[i];
            dp += idx[i] * dst->stride[i];
        }
        if (di->quantized) memcpy(dp, sp, unit_src);
        else sw_convert_cpu(dp, dst->dtype, sp, src->dtype, 1);
        for (int i = outer - 1; i >= 0; i--) {
            if (++idx[i] < src->shape[i]) break;
            idx[i] = 0;
        }
    }
}

/* A host tensor with t's shape and strides over a private copy of t's span:
 * how strided device tensors are read. Caller frees *host_mem. */
static sw_status host_span(sw_ctx *ctx, const sw_tensor *t, sw_tensor *view, void **host_mem,
                           size_t *span) {
    *span = span_bytes(t);
    *host_mem = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_WORKSPACE, *span);
    if (!*host_mem) return ctx->status;
    if (sw_device_memcpy(ctx, SW_DEV_CPU, *host_mem, sw_tensor_device(t), sw_tensor_data(t), *span)) {
        sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, *host_mem, *span);
        *host_mem = NULL;
        return ctx->status;
    }
    *view = *t;
    return SW_OK;
}

sw_status sw_tensor_copy(sw_ctx *ctx, sw_tensor *dst, const sw_tensor *src) {
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)src->ndim)) {
        char a[96], b[96];
        return sw_err(ctx, SW_EINVAL, "copy: shapes differ (%s vs %s)", sw_tensor_describe(dst, a, sizeof a),
                      sw_tensor_describe(src, b, sizeof b));
    }
    const sw_dtype_info *sd = sw_dtype_info_of(src->dtype), *dd = sw_dtype_info_of(dst->dtype);
    if ((sd->quantized || dd->quantized) && src->dtype != dst->dtype)
        return sw_err(ctx, SW_EUNSUPPORTED, "copy: %s to %s needs a (de)quantizer", sd->name, dd->name);
    if (sw_tensor_numel(src) == 0) return SW_OK;
    sw_device ddev = sw_tensor_device(dst), sdev = sw_tensor_device(src);
    bool dc = sw_tensor_is_contiguous(dst), sc = sw_tensor_is_contiguous(src);
    int64_t n = sw_tensor_numel(src);

    if (ddev == sdev && dc && sc) { /* fast path: one op on the device */
        if (src->dtype == dst->dtype)
            return sw_device_memcpy(ctx, ddev, sw_tensor_data(dst), sdev, sw_tensor_data(src), sw_tensor_nbytes(src));
        if (ddev == SW_DEV_CPU) {
            sw_convert_cpu(sw_tensor_data(dst), dst->dtype, sw_tensor_data(src), src->dtype, n);
            return SW_OK;
        }
#ifdef SW_HAVE_CUDA
        return sw_convert_cuda(ctx, sw_tensor_data(dst), dst->dtype, sw_tensor_data(src), src->dtype, n,
                               sw_device_cuda_index(ddev));
#else
        return sw_err(ctx, SW_EDEVICE, "copy: no CUDA backend");
#endif
    }
    if (ddev == SW_DEV_CPU && sdev == SW_DEV_CPU) {
        /* memmove semantics are not promised for overlapping strided views. */
        host_strided_copy(dst, sw_tensor_data(dst), src, sw_tensor_data(src));
        return SW_OK;
    }
    if (dc && sc && src->dtype == dst->dtype) /* across devices, as is */
        return sw_device_memcpy(ctx, ddev, sw_tensor_data(dst), sdev, sw_tensor_data(src), sw_tensor_nbytes(src));

    /* General case: gather src to the host, convert/arrange into dst's
     * layout on the host, then write dst's span back in one copy. */
    sw_status st = SW_OK;
    sw_tensor sv, dv;
    void *smem = NULL, *dmem = NULL;
    size_t sspan = 0, dspan = 0;
    if (sdev == SW_DEV_CPU) {
        sv = *src;
    } else if ((st = host_span(ctx, src, &sv, &smem, &sspan))) {
        return st;
    }
    if ((st = host_span(ctx, dst, &dv, &dmem, &dspan))) goto done;
    host_strided_copy(&dv, dmem, &sv, smem ? smem : sw_tensor_data(src));
    st = sw_device_memcpy(ctx, ddev, sw_tensor_data(dst), SW_DEV_CPU, dmem, dspan);
done:
    sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, smem, sspan);
    sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, dmem, dspan);
    return st;
}

sw_status sw_tensor_to(sw_ctx *ctx, sw_tensor **out, const sw_tensor *src, sw_device dev,
                       sw_dtype dtype) {
    sw_tensor *t;
    if (sw_tensor_new(ctx, &t, dtype, src->ndim, src->shape, dev, sw_tensor_category(src))) return ctx->status;
    if (sw_tensor_copy(ctx, t, src)) {
        sw_tensor_free(t);
        *out = NULL;
        return ctx->status;
    }
    snprintf(t->name, sizeof t->name, "%s", src->name);
    *out = t;
    return SW_OK;
}

/* Produce values in a contiguous temporary of the same shape and device,
 * then copy: one route for every layout, and dst is untouched on failure. */
static sw_status via_temp(sw_ctx *ctx, sw_tensor *t, sw_dtype tmp_dtype, double v, uint64_t seed,
                          bool randn) {
    sw_tensor *tmp;
    sw_device dev = sw_tensor_device(t);
    if (sw_tensor_new(ctx, &tmp, tmp_dtype, t->ndim, t->shape, dev, SW_MEM_WORKSPACE)) return ctx->status;
    int64_t n = sw_tensor_numel(t);
    sw_status st = SW_OK;
    if (dev == SW_DEV_CPU) {
        if (randn) sw_randn_cpu(sw_tensor_data(tmp), seed, 0, (float)v, n);
        else sw_fill_cpu(sw_tensor_data(tmp), tmp_dtype, v, n);
    } else {
#ifdef SW_HAVE_CUDA
        int di = sw_device_cuda_index(dev);
        st = randn ? sw_randn_cuda(ctx, sw_tensor_data(tmp), seed, 0, (float)v, n, di)
                   : sw_fill_cuda(ctx, sw_tensor_data(tmp), tmp_dtype, v, n, di);
#else
        st = sw_err(ctx, SW_EDEVICE, "no CUDA backend");
#endif
    }
    if (!st) st = sw_tensor_copy(ctx, t, tmp);
    sw_tensor_free(tmp);
    return st;
}

sw_status sw_tensor_fill(sw_ctx *ctx, sw_tensor *t, double v) {
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (di->quantized) return sw_err(ctx, SW_EUNSUPPORTED, "fill: %s tensors are written by a quantizer", di->name);
    if (sw_tensor_is_contiguous(t)) {
        int64_t n = sw_tensor_numel(t);
        if (sw_tensor_device(t) == SW_DEV_CPU) {
            sw_fill_cpu(sw_tensor_data(t), t->dtype, v, n);
            return SW_OK;
        }
#ifdef SW_HAVE_CUDA
        return sw_fill_cuda(ctx, sw_tensor_data(t), t->dtype, v, n, sw_device_cuda_index(sw_tensor_device(t)));
#endif
    }
    return via_temp(ctx, t, t->dtype, v, 0, false);
}

sw_status sw_tensor_randn(sw_ctx *ctx, sw_tensor *t, uint64_t seed, double scale) {
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (!di->floating) return sw_err(ctx, SW_EINVAL, "randn: needs a floating dtype, not %s", di->name);
    return via_temp(ctx, t, SW_F32, scale, seed, true);
}

static sw_status element_at(sw_ctx *ctx, const sw_tensor *t, const int64_t *idx, char **p) {
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    if (di->quantized) return sw_err(ctx, SW_EUNSUPPORTED, "cannot index a %s tensor element by element", di->name);
    char *q = sw_tensor_data(t);
    for (int i = 0; i < t->ndim; i++) {
        if (idx[i] < 0 || idx[i] >= t->shape[i])
            return sw_err(ctx, SW_EINVAL, "index %lld is out of range for dimension %d of size %lld",
                          (long long)idx[i] + 1, i + 1, (long long)t->shape[i]);
        q += idx[i] * t->stride[i];
    }
    *p = q;
    return SW_OK;
}

sw_status sw_tensor_get(sw_ctx *ctx, const sw_tensor *t, const int64_t *idx, double *out) {
    char *p;
    if (element_at(ctx, t, idx, &p)) return ctx->status;
    unsigned char raw[8];
    size_t eb = (size_t)sw_dtype_info_of(t->dtype)->block_bytes;
    if (sw_device_memcpy(ctx, SW_DEV_CPU, raw, sw_tensor_device(t), p, eb)) return ctx->status;
    if (t->dtype == SW_I32) {
        int32_t v;
        memcpy(&v, raw, 4);
        *out = v;
    } else {
        float f;
        sw_convert_cpu(&f, SW_F32, raw, t->dtype, 1);
        *out = f;
    }
    return SW_OK;
}

sw_status sw_tensor_set(sw_ctx *ctx, sw_tensor *t, const int64_t *idx, double v) {
    char *p;
    if (element_at(ctx, t, idx, &p)) return ctx->status;
    unsigned char raw[8];
    sw_fill_cpu(raw, t->dtype, v, 1);
    size_t eb = (size_t)sw_dtype_info_of(t->dtype)->block_bytes;
    return sw_device_memcpy(ctx, sw_tensor_device(t), p, SW_DEV_CPU, raw, eb);
}

const char *sw_tensor_describe(const sw_tensor *t, char *buf, size_t n) {
    char shape[80] = "", dev[SW_DEVICE_NAME_MAX];
    size_t k = 0;
    for (int i = 0; i < t->ndim && k < sizeof shape; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    snprintf(buf, n, "%s[%s] %s %s", sw_dtype_name(t->dtype), shape,
             sw_device_name(sw_tensor_device(t), dev, sizeof dev), sw_mem_cat_name(sw_tensor_category(t)));
    return buf;
}
