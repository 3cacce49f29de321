/* bnb.c — reading bitsandbytes 4-bit weights out of a safetensors set (the
 * layout is in bnb.h). Every piece is checked against the shape the packed
 * state declares before any of it is read, so a truncated or mismatched
 * state is an error naming the tensor, never an out-of-bounds read.
 */
#include "bnb.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"

#define QS_SUFFIX ".quant_state.bitsandbytes__"
#define QS_MAX_BYTES 65536 /* a packed state is ~200 bytes of JSON */

static const sw_st_tensor *find_sub(const sw_st *st, const char *w, const char *suffix) {
    char key[1024];
    if ((size_t)snprintf(key, sizeof key, "%s%s", w, suffix) >= sizeof key) return NULL;
    return sw_st_find(st, key);
}

bool sw_bnb_is_quantized(const sw_st *st, const char *weight_name) {
    return find_sub(st, weight_name, QS_SUFFIX "nf4") || find_sub(st, weight_name, QS_SUFFIX "fp4");
}

void sw_bnb_weight_free(sw_bnb_weight *w) {
    if (!w) return;
    free(w->absmax);
    memset(w, 0, sizeof *w);
}

/* A float32 tensor of exactly n elements, or an error naming it. */
static sw_status want_f32(sw_ctx *ctx, const sw_st_tensor *t, const char *w, const char *what, int64_t n) {
    if (!t) return sw_err(ctx, SW_EFORMAT, "%s: bitsandbytes state has no %s", w, what);
    if (t->dtype != SW_F32)
        return sw_err(ctx, SW_EFORMAT, "%s: %s is %s, expected F32", w, what, t->dtype_name);
    if (t->numel != n)
        return sw_err(ctx, SW_EFORMAT, "%s: %s has %lld values, the shape needs %lld", w, what, (long long)t->numel,
                      (long long)n);
    return SW_OK;
}

static void read_f32(float *dst, const sw_st_tensor *t) { memcpy(dst, t->data, (size_t)t->numel * 4); }

typedef struct qstate {
    int64_t shape[4];
    int ndim;
    int64_t blocksize, nested_blocksize;
    double nested_offset;
    bool has_nested;
    char dtype[16];
} qstate;

static sw_status parse_state(sw_ctx *ctx, const sw_st_tensor *t, const char *w, qstate *q) {
    if (t->dtype != SW_U8 || t->nbytes > QS_MAX_BYTES)
        return sw_err(ctx, SW_EFORMAT, "%s: quant_state is not a short U8 tensor of JSON bytes", w);
    json_error_t jerr;
    json_t *root = json_loadb(t->data, t->nbytes, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return sw_err(ctx, SW_EFORMAT, "%s: quant_state is not valid JSON: %s", w, jerr.text);
    sw_status s = SW_OK;
    memset(q, 0, sizeof *q);
    json_t *qt = json_object_get(root, "quant_type"), *bs = json_object_get(root, "blocksize"),
           *sh = json_object_get(root, "shape"), *dt = json_object_get(root, "dtype");
    if (!json_is_object(root) || !json_is_string(qt) || !json_is_integer(bs) || !json_is_array(sh)) {
        s = sw_err(ctx, SW_EFORMAT, "%s: quant_state needs quant_type, blocksize and shape", w);
        goto done;
    }
    if (strcmp(json_string_value(qt), "nf4")) {
        s = sw_err(ctx, SW_EUNSUPPORTED, "%s: quant_type '%s' is not supported (nf4 is)", w, json_string_value(qt));
        goto done;
    }
    q->blocksize = json_integer_value(bs);
    snprintf(q->dtype, sizeof q->dtype, "%s", json_is_string(dt) ? json_string_value(dt) : "");
    size_t nd = json_array_size(sh);
    if (nd < 1 || nd > 4) {
        s = sw_err(ctx, SW_EFORMAT, "%s: quant_state shape has %zu dimensions", w, nd);
        goto done;
    }
    q->ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > ((json_int_t)1 << 40)) {
            s = sw_err(ctx, SW_EFORMAT, "%s: quant_state shape entry %zu is not a positive size", w, i + 1);
            goto done;
        }
        q->shape[i] = json_integer_value(d);
    }
    json_t *nb = json_object_get(root, "nested_blocksize"), *no = json_object_get(root, "nested_offset");
    q->has_nested = nb || no;
    if (q->has_nested) {
        if (!json_is_integer(nb) || !json_is_number(no)) {
            s = sw_err(ctx, SW_EFORMAT, "%s: quant_state has nested fields but not an integer nested_blocksize "
                       "and a numeric nested_offset", w);
            goto done;
        }
        q->nested_blocksize = json_integer_value(nb);
        q->nested_offset = json_number_value(no);
    }
done:
    json_decref(root);
    return s;
}

sw_status sw_bnb_read(sw_ctx *ctx, const sw_st *st, const char *w, sw_bnb_weight *out) {
    memset(out, 0, sizeof *out);
    const sw_st_tensor *qs = find_sub(st, w, QS_SUFFIX "nf4");
    if (!qs) {
        if (find_sub(st, w, QS_SUFFIX "fp4"))
            return sw_err(ctx, SW_EUNSUPPORTED, "%s: bitsandbytes fp4 weights are not supported (nf4 is)", w);
        return sw_err(ctx, SW_EFORMAT, "%s: not a bitsandbytes 4-bit weight (no %s%s)", w, w, QS_SUFFIX "nf4");
    }
    qstate q;
    if (parse_state(ctx, qs, w, &q)) return ctx->status;
    if (q.blocksize != SW_NF4_BLOCK)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: blocksize %lld is not supported (64 is)", w, (long long)q.blocksize);
    int64_t n = 1;
    for (int i = 0; i < q.ndim; i++) {
        if (n > INT64_MAX / 4 / q.shape[i]) return sw_err(ctx, SW_EFORMAT, "%s: quant_state shape is too large", w);
        n *= q.shape[i];
    }
    if (n % SW_NF4_BLOCK)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: %lld elements is not a whole number of 64-blocks", w, (long long)n);
    int64_t nblocks = n / SW_NF4_BLOCK;

    const sw_st_tensor *codes = sw_st_find(st, w);
    if (!codes) return sw_err(ctx, SW_EFORMAT, "%s: the packed weight itself is missing", w);
    if (codes->nbytes != (size_t)(n / 2))
        return sw_err(ctx, SW_EFORMAT, "%s: packed weight is %zu bytes, shape [%lld, %lld] needs %lld", w,
                      codes->nbytes, (long long)q.shape[0], (long long)(n / q.shape[0]), (long long)(n / 2));
    const sw_st_tensor *am = find_sub(st, w, ".absmax"), *qm = find_sub(st, w, ".quant_map");
    if (qm) {
        if (want_f32(ctx, qm, w, "quant_map", 16)) return ctx->status;
        float map[16];
        read_f32(map, qm);
        if (memcmp(map, sw_nf4_table, sizeof map))
            return sw_err(ctx, SW_EUNSUPPORTED, "%s: quant_map is not the NF4 table", w);
    }
    const sw_st_tensor *na = find_sub(st, w, ".nested_absmax"), *nm = find_sub(st, w, ".nested_quant_map");
    bool nested = am && am->dtype == SW_U8;
    if (nested != q.has_nested || (nested && (!na || !nm)) || (!nested && (na || nm)))
        return sw_err(ctx, SW_EFORMAT, "%s: absmax is %s but the state %s nested fields", w,
                      am ? am->dtype_name : "missing", q.has_nested ? "has" : "lacks");
    if (!am) return sw_err(ctx, SW_EFORMAT, "%s: bitsandbytes state has no absmax", w);
    if (nested) {
        if (q.nested_blocksize != SW_NF4_NESTED_BLOCK)
            return sw_err(ctx, SW_EUNSUPPORTED, "%s: nested_blocksize %lld is not supported (256 is)", w,
                          (long long)q.nested_blocksize);
        if (am->numel != nblocks)
            return sw_err(ctx, SW_EFORMAT, "%s: absmax has %lld values, the shape needs %lld", w,
                          (long long)am->numel, (long long)nblocks);
        int64_t n2 = (nblocks + SW_NF4_NESTED_BLOCK - 1) / SW_NF4_NESTED_BLOCK;
        if (want_f32(ctx, na, w, "nested_absmax", n2) || want_f32(ctx, nm, w, "nested_quant_map", 256))
            return ctx->status;
    } else if (want_f32(ctx, am, w, "absmax", nblocks)) {
        return ctx->status;
    }

    float *absmax = malloc((size_t)nblocks * sizeof(float));
    if (!absmax) return sw_err(ctx, SW_ENOMEM, "%s: host out of memory", w);
    if (nested) {
        int64_t n2 = na->numel;
        float map[256], *a2 = malloc((size_t)n2 * sizeof(float));
        if (!a2) {
            free(absmax);
            return sw_err(ctx, SW_ENOMEM, "%s: host out of memory", w);
        }
        read_f32(map, nm);
        read_f32(a2, na);
        /* bnb turns the offset into a float32 tensor before adding it. */
        sw_nf4_double_dequant_cpu(absmax, am->data, a2, map, (float)q.nested_offset, nblocks);
        free(a2);
    } else {
        read_f32(absmax, am);
    }
    out->out = q.shape[0];
    out->in = n / q.shape[0];
    out->n = n;
    out->nblocks = nblocks;
    out->codes = codes->data;
    out->absmax = absmax;
    out->nested = nested;
    snprintf(out->orig_dtype, sizeof out->orig_dtype, "%s", q.dtype);
    return SW_OK;
}

void sw_bnb_dequant(const sw_bnb_weight *w, float *dst) { sw_nf4_dequant_cpu(dst, w->codes, w->absmax, w->n); }

sw_status sw_bnb_load(sw_ctx *ctx, const sw_st *st, const char *name, sw_dtype dtype, sw_device dev,
                      sw_mem_cat cat, sw_tensor **weight, sw_tensor **absmax) {
    *weight = NULL;
    if (absmax) *absmax = NULL;
    if (dtype != SW_NF4 && !sw_dtype_info_of(dtype)->floating)
        return sw_err(ctx, SW_EINVAL, "%s: a bitsandbytes weight loads as nf4, f32, f16 or bf16, not %s", name,
                      sw_dtype_name(dtype));
    if (dtype == SW_NF4 && !absmax) return sw_err(ctx, SW_EINVAL, "%s: keeping nf4 needs somewhere for absmax", name);
    sw_bnb_weight w;
    if (sw_bnb_read(ctx, st, name, &w)) return ctx->status;
    sw_status s = SW_OK;
    sw_tensor *hw = NULL, *ha = NULL;
    int64_t shape[2] = {w.out, w.in};
    if (dtype == SW_NF4) {
        if (w.in % SW_NF4_BLOCK) {
            s = sw_err(ctx, SW_EUNSUPPORTED, "%s: rows of %lld do not hold whole 64-blocks; load it dequantized",
                       name, (long long)w.in);
            goto done;
        }
        int64_t ashape[2] = {w.out, w.in / SW_NF4_BLOCK};
        if ((s = sw_tensor_new(ctx, &hw, SW_NF4, 2, shape, SW_DEV_CPU, cat)) ||
            (s = sw_tensor_new(ctx, &ha, SW_F32, 2, ashape, SW_DEV_CPU, cat)))
            goto done;
        memcpy(sw_tensor_data(hw), w.codes, (size_t)(w.n / 2));
        memcpy(sw_tensor_data(ha), w.absmax, (size_t)w.nblocks * sizeof(float));
    } else {
        if ((s = sw_tensor_new(ctx, &ha, SW_F32, 2, shape, SW_DEV_CPU, SW_MEM_WORKSPACE))) goto done;
        sw_bnb_dequant(&w, sw_tensor_data(ha));
        if (dtype == SW_F32 && dev == SW_DEV_CPU && cat == SW_MEM_WORKSPACE) {
            hw = ha; /* already what was asked for */
            ha = NULL;
        } else {
            sw_tensor *t;
            if ((s = sw_tensor_new(ctx, &t, dtype, 2, shape, SW_DEV_CPU, cat))) goto done;
            sw_tensor_copy(ctx, t, ha); /* host to host: cannot fail */
            hw = t;
            sw_tensor_free(ha);
            ha = NULL;
        }
    }
    if (dev != SW_DEV_CPU) { /* move both, or neither */
        sw_tensor *dw = NULL, *da = NULL;
        if ((s = sw_tensor_to(ctx, &dw, hw, dev, hw->dtype)) || (ha && (s = sw_tensor_to(ctx, &da, ha, dev, SW_F32)))) {
            sw_tensor_free(dw);
            goto done;
        }
        sw_tensor_free(hw);
        sw_tensor_free(ha);
        hw = dw;
        ha = da;
    }
    snprintf(hw->name, sizeof hw->name, "%s", name);
    if (ha) snprintf(ha->name, sizeof ha->name, "%s.absmax", name);
    *weight = hw;
    if (absmax) *absmax = ha;
    hw = ha = NULL;
done:
    sw_tensor_free(hw);
    sw_tensor_free(ha);
    sw_bnb_weight_free(&w);
    return s;
}
