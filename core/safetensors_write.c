/* safetensors_write.c — writing safetensors files, and copying a tensor out
 * of an opened file into a stepwise tensor (see safetensors.h).
 *
 * The writer lays tensors out as the reference library does (largest
 * element first, then by name) so every element lands aligned, pads the
 * header with spaces to a multiple of 8, and writes to a temporary file in
 * the destination's directory that is renamed over the destination only
 * once everything is on disk: a failure (or Ctrl-C) leaves no partial file.
 */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kernels/ops.h"
#include "interrupt.h"

/* ------------------------------------------------------------- loading */

static const char *st_name_of(sw_dtype t) {
    switch (t) {
    case SW_F32: return "F32";
    case SW_F16: return "F16";
    case SW_BF16: return "BF16";
    case SW_I32: return "I32";
    case SW_U8: return "U8";
    default: return NULL;
    }
}

/* Widen or narrow one element of a type stepwise lacks. Returns false when
 * an integer does not fit in i32. */
static bool convert_elem(const char *dn, const unsigned char *p, void *dst) {
    if (!strcmp(dn, "F64")) {
        double d;
        memcpy(&d, p, 8);
        float f = (float)d;
        memcpy(dst, &f, 4);
        return true;
    }
    if (!strcmp(dn, "BOOL")) {
        *(uint8_t *)dst = p[0] != 0;
        return true;
    }
    int64_t v;
    if (!strcmp(dn, "I8")) v = (int8_t)p[0];
    else if (!strcmp(dn, "I16")) { int16_t x; memcpy(&x, p, 2); v = x; }
    else if (!strcmp(dn, "U16")) { uint16_t x; memcpy(&x, p, 2); v = x; }
    else if (!strcmp(dn, "U32")) { uint32_t x; memcpy(&x, p, 4); v = x; }
    else if (!strcmp(dn, "I64")) { memcpy(&v, p, 8); }
    else { uint64_t x; memcpy(&x, p, 8); v = x > INT64_MAX ? INT64_MAX : (int64_t)x; }
    if (v < INT32_MIN || v > INT32_MAX) return false;
    int32_t w = (int32_t)v;
    memcpy(dst, &w, 4);
    return true;
}

static sw_dtype converted_dtype(const char *dn) {
    if (!strcmp(dn, "F64")) return SW_F32;
    if (!strcmp(dn, "BOOL")) return SW_U8;
    if (!strcmp(dn, "I8") || !strcmp(dn, "I16") || !strcmp(dn, "U16") || !strcmp(dn, "U32") ||
        !strcmp(dn, "I64") || !strcmp(dn, "U64"))
        return SW_I32;
    return SW_DTYPE_COUNT;
}

sw_status sw_st_load(sw_ctx *ctx, const sw_st_tensor *t, sw_device dev, sw_mem_cat cat, sw_tensor **out) {
    *out = NULL;
    sw_dtype dt = t->dtype != SW_DTYPE_COUNT ? t->dtype : converted_dtype(t->dtype_name);
    if (dt == SW_DTYPE_COUNT)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: tensor '%s': stepwise has no %s tensors", t->file, t->name,
                      t->dtype_name);
    if (t->ndim > SW_MAX_DIMS)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: tensor '%s' has %d dimensions; stepwise tensors have at most %d",
                      t->file, t->name, t->ndim, SW_MAX_DIMS);
    /* Build on the host (the map may be unaligned for the element type,
     * so bytes are copied, never read in place), then move. */
    sw_tensor *h;
    if (sw_tensor_new(ctx, &h, dt, t->ndim, t->shape, SW_DEV_CPU, dev == SW_DEV_CPU ? cat : SW_MEM_WORKSPACE))
        return sw_err_prefix(ctx, "%s: tensor '%s'", t->file, t->name);
    unsigned char *dst = sw_tensor_data(h);
    if (dt == t->dtype) {
        if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    } else {
        size_t ob = (size_t)sw_dtype_info_of(dt)->block_bytes;
        const unsigned char *src = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            if (!convert_elem(t->dtype_name, src + (size_t)i * (size_t)t->elem_bytes, dst + (size_t)i * ob)) {
                sw_tensor_free(h);
                return sw_err(ctx, SW_EINVAL, "%s: tensor '%s': element %lld of this %s tensor does not fit in i32",
                              t->file, t->name, (long long)i, t->dtype_name);
            }
        }
    }
    snprintf(h->name, sizeof h->name, "%s", t->name);
    if (dev == SW_DEV_CPU) {
        *out = h;
        return SW_OK;
    }
    sw_tensor *d;
    sw_status s = sw_tensor_new(ctx, &d, dt, t->ndim, t->shape, dev, cat);
    if (!s) s = sw_tensor_copy(ctx, d, h);
    sw_tensor_free(h);
    if (s) {
        sw_tensor_free(d);
        return sw_err_prefix(ctx, "%s: tensor '%s'", t->file, t->name);
    }
    snprintf(d->name, sizeof d->name, "%s", t->name);
    *out = d;
    return SW_OK;
}

/* ------------------------------------------------------------- writing */

typedef struct wentry {
    const sw_st_entry *e;
    const char *dn;
    int esize;
    int ndim;
    const int64_t *shape;
    size_t nbytes;
} wentry;

static int by_layout(const void *a, const void *b) {
    const wentry *x = a, *y = b;
    if (x->esize != y->esize) return y->esize - x->esize;
    return strcmp(x->e->name, y->e->name);
}

static sw_status check_entry(sw_ctx *ctx, const sw_st_entry *e, wentry *w) {
    if (!e->name) return sw_err(ctx, SW_EINVAL, "a tensor has no name");
    if (!strcmp(e->name, "__metadata__")) return sw_err(ctx, SW_EINVAL, "'__metadata__' cannot name a tensor");
    w->e = e;
    if (e->tensor) {
        w->dn = st_name_of(e->tensor->dtype);
        if (!w->dn)
            return sw_err(ctx, SW_EUNSUPPORTED, "tensor '%s': %s tensors have no safetensors dtype", e->name,
                          sw_dtype_name(e->tensor->dtype));
        w->esize = sw_st_dtype_size(w->dn, NULL);
        w->ndim = e->tensor->ndim;
        w->shape = e->tensor->shape;
    } else {
        w->dn = e->dtype_name;
        if (!w->dn || !(w->esize = sw_st_dtype_size(w->dn, NULL)))
            return sw_err(ctx, SW_EINVAL, "tensor '%s': unknown dtype '%s'", e->name, w->dn ? w->dn : "(none)");
        if (e->ndim < 0 || e->ndim > SW_ST_MAX_DIMS)
            return sw_err(ctx, SW_EINVAL, "tensor '%s': %d dimensions (0 to %d allowed)", e->name, e->ndim, SW_ST_MAX_DIMS);
        w->ndim = e->ndim;
        w->shape = e->shape;
    }
    uint64_t numel = 1;
    for (int i = 0; i < w->ndim; i++) {
        if (w->shape[i] < 0) return sw_err(ctx, SW_EINVAL, "tensor '%s': dimension %d is negative", e->name, i + 1);
        if (w->shape[i] && numel > (uint64_t)SIZE_MAX / 16 / (uint64_t)w->shape[i])
            return sw_err(ctx, SW_EINVAL, "tensor '%s': shape too large", e->name);
        numel *= (uint64_t)w->shape[i];
    }
    w->nbytes = (size_t)numel * (size_t)w->esize;
    if (!e->tensor && w->nbytes && !e->data) return sw_err(ctx, SW_EINVAL, "tensor '%s': no data", e->name);
    return SW_OK;
}

static sw_status write_all(sw_ctx *ctx, int fd, const void *p, size_t n, const char *tmp) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return sw_err(ctx, SW_EIO, "%s: write failed: %s", tmp, strerror(errno));
        }
        c += k;
        n -= (size_t)k;
    }
    return SW_OK;
}

static char *build_header(sw_ctx *ctx, const wentry *w, size_t n, size_t n_meta, const char *const *meta,
                          size_t *len) {
    json_t *root = json_object();
    bool ok = root != NULL;
    if (ok && n_meta) {
        json_t *m = json_object();
        ok = m && !json_object_set_new(root, "__metadata__", m);
        for (size_t i = 0; ok && i < n_meta; i++) ok = !json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1]));
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        ok = e && shape && offs;
        for (int d = 0; ok && d < w[i].ndim; d++) ok = !json_array_append_new(shape, json_integer(w[i].shape[d]));
        ok = ok && !json_array_append_new(offs, json_integer((json_int_t)off)) &&
             !json_array_append_new(offs, json_integer((json_int_t)(off + w[i].nbytes)));
        ok = ok && !json_object_set_new(e, "dtype", json_string(w[i].dn)) && !json_object_set(e, "shape", shape) &&
             !json_object_set(e, "data_offsets", offs) && !json_object_set(root, w[i].e->name, e);
        json_decref(shape);
        json_decref(offs);
        json_decref(e);
        off += w[i].nbytes;
    }
    char *s = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!s) {
        /* json_string() refuses invalid UTF-8, which is the likely cause. */
        sw_err(ctx, SW_EINVAL, "cannot build the header (names and metadata must be valid UTF-8)");
        return NULL;
    }
    size_t l = strlen(s), padded = (l + 7) / 8 * 8;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        sw_err(ctx, SW_ENOMEM, "host out of memory");
        return NULL;
    }
    memset(p + l, ' ', padded - l);
    p[padded] = '\0';
    *len = padded;
    return p;
}

static sw_status write_tensor(sw_ctx *ctx, int fd, const wentry *w, const char *tmp) {
    const sw_st_entry *e = w->e;
    if (!w->nbytes) return SW_OK;
    if (!e->tensor) return write_all(ctx, fd, e->data, w->nbytes, tmp);
    const sw_tensor *t = e->tensor;
    if (sw_tensor_device(t) == SW_DEV_CPU && sw_tensor_is_contiguous(t))
        return write_all(ctx, fd, sw_tensor_data(t), w->nbytes, tmp);
    sw_tensor *h; /* one tensor at a time through the host */
    if (sw_tensor_to(ctx, &h, t, SW_DEV_CPU, t->dtype)) return sw_err_prefix(ctx, "tensor '%s'", e->name);
    sw_status s = write_all(ctx, fd, sw_tensor_data(h), w->nbytes, tmp);
    sw_tensor_free(h);
    return s;
}

sw_status sw_st_write(sw_ctx *ctx, const char *path, size_t n, const sw_st_entry *entries, size_t n_meta,
                      const char *const *meta) {
    wentry *w = calloc(n ? n : 1, sizeof *w);
    char *hdr = NULL, *tmp = NULL;
    int fd = -1;
    sw_status s = SW_OK;
    if (!w) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    for (size_t i = 0; i < n_meta; i++)
        if (!meta[2 * i] || !meta[2 * i + 1]) {
            s = sw_err(ctx, SW_EINVAL, "%s: metadata entry %zu has no key or value", path, i + 1);
            goto done;
        }
    for (size_t i = 0; i < n; i++)
        if ((s = check_entry(ctx, &entries[i], &w[i]))) goto fail;
    qsort(w, n, sizeof *w, by_layout);
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (!strcmp(w[i].e->name, w[j].e->name)) {
                s = sw_err(ctx, SW_EINVAL, "tensor '%s' is given twice", w[i].e->name);
                goto fail;
            }
    size_t hlen;
    if (!(hdr = build_header(ctx, w, n, n_meta, meta, &hlen))) {
        s = ctx->status;
        goto fail;
    }
    if (hlen > SW_ST_MAX_HEADER) {
        s = sw_err(ctx, SW_EINVAL, "the header would be %zu bytes, over the format's limit", hlen);
        goto fail;
    }
    size_t pl = strlen(path);
    if (!(tmp = malloc(pl + 16))) {
        s = sw_err(ctx, SW_ENOMEM, "host out of memory");
        goto fail;
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        s = sw_err(ctx, SW_EIO, "cannot create a file beside it: %s", strerror(errno));
        free(tmp);
        tmp = NULL;
        goto fail;
    }
    fchmod(fd, 0644);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if ((s = write_all(ctx, fd, len8, 8, tmp)) || (s = write_all(ctx, fd, hdr, hlen, tmp))) goto fail;
    for (size_t i = 0; i < n; i++)
        if ((s = sw_interrupt_check(ctx)) || (s = write_tensor(ctx, fd, &w[i], tmp))) goto fail;
    if (fsync(fd) < 0) {
        s = sw_err(ctx, SW_EIO, "%s: cannot flush: %s", tmp, strerror(errno));
        goto fail;
    }
    int rc = close(fd);
    fd = -1;
    if (rc < 0) {
        s = sw_err(ctx, SW_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        s = sw_err(ctx, SW_EIO, "cannot rename %s to it: %s", tmp, strerror(errno));
        goto fail;
    }
    goto done;
fail:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    sw_err_prefix(ctx, "%s", path);
done:
    free(tmp);
    free(hdr);
    free(w);
    return s;
}
