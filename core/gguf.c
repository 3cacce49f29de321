/* gguf.c — the GGUF reader (see gguf.h for the file layout).
 *
 * The whole file is mapped read-only and parsed once, front to back, by a
 * cursor that refuses to step past the end: every length, count and offset
 * read from the file is compared with the bytes left before it is used to
 * allocate, to index or to read. Values stay in the map; the reader keeps
 * only NUL-terminated copies of keys and tensor names, per-element offsets
 * for string arrays (so a 50,000-token vocabulary is indexed in O(1)), and
 * two hash tables for lookups by name.
 *
 * Choices worth knowing:
 *   - v2 and v3 share one layout (v3 only allowed big-endian files, which
 *     this little-endian reader rejects through the version check).
 *   - Arrays of arrays are rejected: no model in the wild uses them and
 *     their element offsets would need a tree.
 *   - Tensor types known to ggml but not to stepwise (q5_0, iq2_xxs, ...)
 *     open, with dtype SW_DTYPE_COUNT, so such files can still be inspected;
 *     a type number ggml does not define is an error, since its size, and so
 *     where the tensor's data ends, cannot be known.
 *   - Duplicate keys and duplicate tensor names are errors (a lookup by name
 *     would silently pick one), as are keys and names that are not UTF-8 or
 *     hold a NUL byte (they could not round-trip through a C string).
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interrupt.h"
#include "tensor.h"
#include "../kernels/ops.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define MSG_NAME_MAX 80 /* names quoted in messages are cut to this many bytes */

/* ---------------------------------------------------------------- types */

/* ggml's tensor types: number -> (name, elements per block, bytes per block).
 * Gaps are numbers ggml retired; they are unknown types here. */
typedef struct ggml_type_info {
    const char *name;
    int block, bytes;
    sw_dtype dtype; /* SW_DTYPE_COUNT: stepwise cannot decode it */
} ggml_type_info;

#define NO SW_DTYPE_COUNT
static const ggml_type_info ggml_types[] = {
    [0] = {"f32", 1, 4, SW_F32},          [1] = {"f16", 1, 2, SW_F16},
    [2] = {"q4_0", 32, 18, SW_Q4_0},      [3] = {"q4_1", 32, 20, SW_Q4_1},
    [6] = {"q5_0", 32, 22, NO},           [7] = {"q5_1", 32, 24, NO},
    [8] = {"q8_0", 32, 34, SW_Q8_0},      [9] = {"q8_1", 32, 40, NO},
    [10] = {"q2_k", 256, 84, NO},         [11] = {"q3_k", 256, 110, NO},
    [12] = {"q4_k", 256, 144, SW_Q4_K},   [13] = {"q5_k", 256, 176, SW_Q5_K},
    [14] = {"q6_k", 256, 210, SW_Q6_K},   [15] = {"q8_k", 256, 292, NO},
    [16] = {"iq2_xxs", 256, 66, NO},      [17] = {"iq2_xs", 256, 74, NO},
    [18] = {"iq3_xxs", 256, 98, NO},      [19] = {"iq1_s", 256, 50, NO},
    [20] = {"iq4_nl", 32, 18, NO},        [21] = {"iq3_s", 256, 110, NO},
    [22] = {"iq2_s", 256, 82, NO},        [23] = {"iq4_xs", 256, 136, NO},
    [24] = {"i8", 1, 1, NO},              [25] = {"i16", 1, 2, NO},
    [26] = {"i32", 1, 4, NO},             [27] = {"i64", 1, 8, NO},
    [28] = {"f64", 1, 8, NO},             [29] = {"iq1_m", 256, 56, NO},
    [30] = {"bf16", 1, 2, SW_BF16},       [34] = {"tq1_0", 256, 54, NO},
    [35] = {"tq2_0", 256, 66, NO},        [39] = {"mxfp4", 32, 17, NO},
    [40] = {"nvfp4", 64, 36, NO},         [41] = {"q1_0", 128, 18, NO},
};
#undef NO
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

static const ggml_type_info *ggml_type(uint32_t t) {
    if (t >= N_GGML_TYPES || !ggml_types[t].name) return NULL;
    return &ggml_types[t];
}

const char *sw_gguf_ggml_type_name(uint32_t t) {
    const ggml_type_info *g = ggml_type(t);
    return g ? g->name : NULL;
}

static const char *const value_type_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

const char *sw_gguf_type_name(sw_gguf_type t) {
    if ((unsigned)t > SW_GGUF_F64) return "?";
    return value_type_names[t];
}

/* Bytes of one scalar value; 0 for strings, arrays and unknown types. */
static int scalar_size(uint32_t t) {
    switch (t) {
    case SW_GGUF_U8: case SW_GGUF_I8: case SW_GGUF_BOOL: return 1;
    case SW_GGUF_U16: case SW_GGUF_I16: return 2;
    case SW_GGUF_U32: case SW_GGUF_I32: case SW_GGUF_F32: return 4;
    case SW_GGUF_U64: case SW_GGUF_I64: case SW_GGUF_F64: return 8;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- the reader */

typedef struct kv {
    char *key;             /* NUL-terminated copy */
    sw_gguf_type type;
    sw_gguf_type elem;     /* arrays: element type */
    uint64_t n;            /* string: length; array: element count */
    const uint8_t *p;      /* the value (string bytes, array elements) in the map */
    uint64_t *str_at;      /* string arrays: offset from p of each element's bytes */
} kv;

struct sw_gguf {
    char *path;
    uint32_t version, alignment;
    const uint8_t *map;
    size_t size;
    bool mapped;            /* false: a caller's buffer (sw_gguf_open_buffer) */
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    kv *kvs;
    sw_gguf_tensor *tensors;
    int64_t *kv_hash, *t_hash; /* open addressing: index + 1, 0 = empty */
    size_t kv_cap, t_cap;
};

/* The parse cursor. `where` names the item being read, for messages. */
typedef struct rd {
    sw_gguf *g;
    sw_ctx *ctx;
    uint64_t pos;
    char where[MSG_NAME_MAX + 32];
} rd;

static sw_status fail(rd *r, sw_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static sw_status fail(rd *r, sw_status s, const char *fmt, ...) {
    char msg[SW_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->where[0]) return sw_err(r->ctx, s, "%s: %s: %s", r->g->path, r->where, msg);
    return sw_err(r->ctx, s, "%s: %s", r->g->path, msg);
}

static uint64_t left(const rd *r) { return (uint64_t)r->g->size - r->pos; }

/* n bytes at the cursor, or an error naming `what` when fewer are left. */
static const uint8_t *take(rd *r, uint64_t n, const char *what) {
    if (n > left(r)) {
        fail(r, SW_EFORMAT, "%s (%llu bytes at offset %llu) runs past the end of the file (%zu bytes)",
             what, (unsigned long long)n, (unsigned long long)r->pos, r->g->size);
        return NULL;
    }
    const uint8_t *p = r->g->map + r->pos;
    r->pos += n;
    return p;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static bool rd_u32(rd *r, uint32_t *v, const char *what) {
    const uint8_t *p = take(r, 4, what);
    if (p) *v = (uint32_t)le(p, 4);
    return p != NULL;
}

static bool rd_u64(rd *r, uint64_t *v, const char *what) {
    const uint8_t *p = take(r, 8, what);
    if (p) *v = le(p, 8);
    return p != NULL;
}

/* A string: u64 length, then the bytes (not NUL-terminated). */
static bool rd_str(rd *r, const uint8_t **s, uint64_t *len, const char *what) {
    char w[64];
    snprintf(w, sizeof w, "the length of %s", what);
    if (!rd_u64(r, len, w)) return false;
    *s = take(r, *len, what);
    return *s != NULL;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF)
 * and no NUL. Returns the offset of the first bad byte, or -1. */
static int64_t bad_utf8(const uint8_t *s, uint64_t n) {
    uint64_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        int len;
        uint32_t cp, min;
        if (c == 0) return (int64_t)i;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return (int64_t)i;
        if ((uint64_t)len > n - i) return (int64_t)i;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return (int64_t)i;
        i += (uint64_t)len;
    }
    return -1;
}

/* A key or tensor name: valid UTF-8, copied out with a NUL. */
static char *rd_name(rd *r, const char *what) {
    const uint8_t *s;
    uint64_t n;
    if (!rd_str(r, &s, &n, what)) return NULL;
    int64_t bad = bad_utf8(s, n);
    if (bad >= 0) {
        fail(r, SW_EFORMAT, "%s is not valid UTF-8 (byte 0x%02x at position %lld)", what, s[bad],
             (long long)bad);
        return NULL;
    }
    char *c = malloc((size_t)n + 1); /* n <= the file size, so this cannot wrap */
    if (!c) {
        fail(r, SW_ENOMEM, "out of memory for %s (%llu bytes)", what, (unsigned long long)n);
        return NULL;
    }
    memcpy(c, s, (size_t)n);
    c[n] = '\0';
    return c;
}

/* ---------------------------------------------------------------- hash tables */

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Table sized for n entries at most half full. NULL on allocation failure. */
static int64_t *hash_new(int64_t n, size_t *cap) {
    size_t c = 8;
    while (c < (size_t)n * 2) c *= 2;
    *cap = c;
    return calloc(c, sizeof(int64_t));
}

/* Finds name (whose index would be `i` if inserted); inserts when absent.
 * Returns the index already holding name, or -1 after inserting. */
typedef const char *(*name_of_fn)(const sw_gguf *g, int64_t i);
static int64_t hash_put(const sw_gguf *g, int64_t *tab, size_t cap, name_of_fn name_of,
                        const char *name, int64_t i) {
    for (size_t h = hash(name) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (!tab[h]) {
            tab[h] = i + 1;
            return -1;
        }
        if (!strcmp(name_of(g, tab[h] - 1), name)) return tab[h] - 1;
    }
}

static int64_t hash_get(const sw_gguf *g, const int64_t *tab, size_t cap, name_of_fn name_of,
                        const char *name) {
    if (!tab || !name) return -1;
    for (size_t h = hash(name) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (!tab[h]) return -1;
        if (!strcmp(name_of(g, tab[h] - 1), name)) return tab[h] - 1;
    }
}

static const char *kv_name(const sw_gguf *g, int64_t i) { return g->kvs[i].key; }
static const char *tensor_name(const sw_gguf *g, int64_t i) { return g->tensors[i].name; }

/* ---------------------------------------------------------------- parsing */

/* One metadata value of type t into e (e->key already set). */
static sw_status read_value(rd *r, kv *e, uint32_t t) {
    if (t > SW_GGUF_F64) return fail(r, SW_EFORMAT, "unknown value type %u", t);
    e->type = (sw_gguf_type)t;
    if (t == SW_GGUF_STRING) {
        if (!rd_str(r, &e->p, &e->n, "the string value")) return r->ctx->status;
        return SW_OK;
    }
    if (t != SW_GGUF_ARRAY) {
        e->n = 1;
        e->p = take(r, (uint64_t)scalar_size(t), "the value");
        return e->p ? SW_OK : r->ctx->status;
    }
    uint32_t et;
    if (!rd_u32(r, &et, "the array element type")) return r->ctx->status;
    if (et == SW_GGUF_ARRAY) return fail(r, SW_EFORMAT, "arrays of arrays are not supported");
    if (et > SW_GGUF_F64) return fail(r, SW_EFORMAT, "unknown array element type %u", et);
    e->elem = (sw_gguf_type)et;
    if (!rd_u64(r, &e->n, "the array length")) return r->ctx->status;
    if (et != SW_GGUF_STRING) {
        uint64_t sz = (uint64_t)scalar_size(et);
        if (e->n > left(r) / sz)
            return fail(r, SW_EFORMAT, "array of %llu %s values at offset %llu runs past the end of the file (%zu bytes)",
                        (unsigned long long)e->n, sw_gguf_type_name(e->elem), (unsigned long long)r->pos,
                        r->g->size);
        e->p = take(r, e->n * sz, "the array");
        return SW_OK;
    }
    /* Each string takes at least its 8-byte length: bound the count first. */
    if (e->n > left(r) / 8)
        return fail(r, SW_EFORMAT, "array of %llu strings at offset %llu runs past the end of the file (%zu bytes)",
                    (unsigned long long)e->n, (unsigned long long)r->pos, r->g->size);
    e->p = r->g->map + r->pos;
    if (e->n) {
        e->str_at = malloc((size_t)e->n * sizeof *e->str_at);
        if (!e->str_at) return fail(r, SW_ENOMEM, "out of memory indexing %llu strings", (unsigned long long)e->n);
    }
    for (uint64_t j = 0; j < e->n; j++) {
        const uint8_t *s;
        uint64_t len;
        char what[48];
        snprintf(what, sizeof what, "array string %llu", (unsigned long long)j);
        if (!rd_str(r, &s, &len, what)) return r->ctx->status;
        e->str_at[j] = (uint64_t)(s - e->p);
    }
    return SW_OK;
}

static sw_status read_kvs(rd *r, uint64_t n_kv) {
    sw_gguf *g = r->g;
    /* A pair takes at least 13 bytes: key length, value type, one byte of value. */
    if (n_kv > left(r) / 13)
        return fail(r, SW_EFORMAT, "kv_count %llu is more than the %llu bytes left could hold",
                    (unsigned long long)n_kv, (unsigned long long)left(r));
    g->kvs = calloc((size_t)n_kv + 1, sizeof *g->kvs);
    g->kv_hash = hash_new((int64_t)n_kv, &g->kv_cap);
    if (!g->kvs || !g->kv_hash) return fail(r, SW_ENOMEM, "out of memory for %llu keys", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        kv *e = &g->kvs[i];
        snprintf(r->where, sizeof r->where, "key #%llu", (unsigned long long)i);
        if (!(e->key = rd_name(r, "the key"))) return r->ctx->status;
        g->n_kv = (int64_t)i + 1; /* from here on close() frees it */
        snprintf(r->where, sizeof r->where, "key '%.*s'", MSG_NAME_MAX, e->key);
        if (hash_put(g, g->kv_hash, g->kv_cap, kv_name, e->key, (int64_t)i) >= 0)
            return fail(r, SW_EFORMAT, "duplicate key");
        uint32_t t;
        if (!rd_u32(r, &t, "the value type")) return r->ctx->status;
        if (read_value(r, e, t)) return r->ctx->status;
    }
    return SW_OK;
}

static sw_status read_alignment(rd *r) {
    sw_gguf *g = r->g;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = sw_gguf_find_key(g, "general.alignment");
    if (i < 0) return SW_OK;
    snprintf(r->where, sizeof r->where, "key 'general.alignment'");
    const kv *e = &g->kvs[i];
    if (e->type != SW_GGUF_U32) return fail(r, SW_EFORMAT, "must be a u32, not %s", sw_gguf_type_name(e->type));
    uint32_t a = (uint32_t)le(e->p, 4);
    if (a == 0 || (a & (a - 1))) return fail(r, SW_EFORMAT, "alignment %u is not a power of two", a);
    g->alignment = a;
    return SW_OK;
}

static sw_status read_tensor_info(rd *r, sw_gguf_tensor *t, uint64_t i) {
    snprintf(r->where, sizeof r->where, "tensor #%llu", (unsigned long long)i);
    char *name = rd_name(r, "the tensor name");
    if (!name) return r->ctx->status;
    t->name = name;
    r->g->n_tensors = (int64_t)i + 1; /* from here on close() frees it */
    snprintf(r->where, sizeof r->where, "tensor '%.*s'", MSG_NAME_MAX, name);
    if (hash_put(r->g, r->g->t_hash, r->g->t_cap, tensor_name, name, (int64_t)i) >= 0)
        return fail(r, SW_EFORMAT, "duplicate tensor name");
    uint32_t nd;
    if (!rd_u32(r, &nd, "n_dims")) return r->ctx->status;
    if (nd < 1 || nd > 4) return fail(r, SW_EFORMAT, "n_dims is %u, not 1 to 4", nd);
    t->ndim = (int)nd;
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t ne;
        if (!rd_u64(r, &ne, "a dimension")) return r->ctx->status;
        if (ne > INT64_MAX || (ne && numel > INT64_MAX / (int64_t)ne))
            return fail(r, SW_EFORMAT, "dimension %d (ne[%d] = %llu) makes the element count overflow", d + 1, d,
                        (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        numel *= (int64_t)ne;
    }
    for (int d = t->ndim; d < 4; d++) t->ne[d] = 1;
    if (!rd_u32(r, &t->ggml_type, "the ggml type")) return r->ctx->status;
    const ggml_type_info *gt = ggml_type(t->ggml_type);
    if (!gt) return fail(r, SW_EFORMAT, "unknown ggml type %u", t->ggml_type);
    t->dtype = gt->dtype;
    if (t->ne[0] % gt->block)
        return fail(r, SW_EFORMAT, "row length ne[0] = %lld is not a multiple of the %s block (%d)",
                    (long long)t->ne[0], gt->name, gt->block);
    uint64_t blocks = (uint64_t)(numel / gt->block);
    if (blocks > r->g->size / (uint64_t)gt->bytes) /* cheaper than overflow tests, and as strict */
        return fail(r, SW_EFORMAT, "%lld %s elements need more bytes than the whole file (%zu)", (long long)numel,
                    gt->name, r->g->size);
    t->nbytes = (size_t)(blocks * (uint64_t)gt->bytes);
    if (!rd_u64(r, &t->offset, "the data offset")) return r->ctx->status;
    return SW_OK;
}

static sw_status read_tensors(rd *r, uint64_t n_t) {
    sw_gguf *g = r->g;
    /* An info takes at least 32 bytes: name length, n_dims, one ne, type, offset. */
    if (n_t > left(r) / 32)
        return fail(r, SW_EFORMAT, "tensor_count %llu is more than the %llu bytes left could hold",
                    (unsigned long long)n_t, (unsigned long long)left(r));
    g->tensors = calloc((size_t)n_t + 1, sizeof *g->tensors);
    g->t_hash = hash_new((int64_t)n_t, &g->t_cap);
    if (!g->tensors || !g->t_hash) return fail(r, SW_ENOMEM, "out of memory for %llu tensors", (unsigned long long)n_t);
    for (uint64_t i = 0; i < n_t; i++)
        if (read_tensor_info(r, &g->tensors[i], i)) return r->ctx->status;
    r->where[0] = '\0';
    uint64_t a = g->alignment;
    g->data_offset = (r->pos + a - 1) / a * a; /* pos <= size < 2^63: no wrap */
    for (int64_t i = 0; i < g->n_tensors; i++) {
        sw_gguf_tensor *t = &g->tensors[i];
        snprintf(r->where, sizeof r->where, "tensor '%.*s'", MSG_NAME_MAX, t->name);
        if (t->offset % a)
            return fail(r, SW_EFORMAT, "data offset %llu is not a multiple of the alignment (%llu)",
                        (unsigned long long)t->offset, (unsigned long long)a);
        if (g->data_offset > g->size || t->offset > g->size - g->data_offset ||
            t->nbytes > g->size - g->data_offset - t->offset)
            return fail(r, SW_EFORMAT, "data offset %llu + %zu bytes is past the end of the file (%zu bytes, data from %llu)",
                        (unsigned long long)t->offset, t->nbytes, g->size, (unsigned long long)g->data_offset);
        t->data = g->map + g->data_offset + t->offset;
    }
    return SW_OK;
}

static sw_status parse(rd *r) {
    sw_gguf *g = r->g;
    const uint8_t *m;
    if (g->size < 24)
        return fail(r, SW_EFORMAT, "%zu bytes is too short for a GGUF header (24 bytes)", g->size);
    m = take(r, 4, "the magic");
    if (memcmp(m, "GGUF", 4))
        return fail(r, SW_EFORMAT, "not a GGUF file (it starts with %02x %02x %02x %02x, not 'GGUF')", m[0], m[1],
                    m[2], m[3]);
    rd_u32(r, &g->version, "the version");
    if (g->version != 2 && g->version != 3)
        return fail(r, SW_EFORMAT, "GGUF version %u is not supported (only 2 and 3%s)", g->version,
                    g->version > 0xffff ? "; a big-endian file?" : "");
    uint64_t n_t, n_kv;
    rd_u64(r, &n_t, "tensor_count");
    rd_u64(r, &n_kv, "kv_count");
    /* Bound tensor_count now too, so a huge one is named as such even when the keys run out first. */
    if (n_t > left(r) / 32)
        return fail(r, SW_EFORMAT, "tensor_count %llu is more than the %llu bytes left could hold",
                    (unsigned long long)n_t, (unsigned long long)left(r));
    if (read_kvs(r, n_kv)) return r->ctx->status;
    r->where[0] = '\0';
    if (read_alignment(r)) return r->ctx->status;
    r->where[0] = '\0';
    return read_tensors(r, n_t);
}

sw_status sw_gguf_open(sw_ctx *ctx, const char *path, sw_gguf **out) {
    *out = NULL;
    sw_gguf *g = calloc(1, sizeof *g);
    char *p = strdup(path);
    if (!g || !p) {
        free(g);
        free(p);
        return sw_err(ctx, SW_ENOMEM, "%s: out of memory", path);
    }
    g->path = p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sw_err(ctx, SW_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        sw_err(ctx, SW_EIO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        sw_err(ctx, SW_EIO, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        close(fd);
        goto fail;
    }
    g->size = (size_t)st.st_size;
    if (g->size >= 24) { /* mmap of 0 bytes fails; short files fail in parse() */
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            sw_err(ctx, SW_EIO, "%s: cannot map %zu bytes: %s", path, g->size, strerror(errno));
            close(fd);
            goto fail;
        }
        g->map = m;
        g->mapped = true;
    }
    close(fd);
    rd r = {.g = g, .ctx = ctx};
    if (parse(&r)) goto fail;
    *out = g;
    return SW_OK;
fail:
    {
        sw_status s = ctx->status;
        sw_gguf_close(g);
        return s;
    }
}

sw_status sw_gguf_open_buffer(sw_ctx *ctx, const char *name, const void *data, size_t size, sw_gguf **out) {
    *out = NULL;
    sw_gguf *g = calloc(1, sizeof *g);
    char *p = strdup(name);
    if (!g || !p) {
        free(g);
        free(p);
        return sw_err(ctx, SW_ENOMEM, "%s: out of memory", name);
    }
    g->path = p;
    g->map = data;
    g->size = size;
    rd r = {.g = g, .ctx = ctx};
    if (parse(&r)) {
        sw_gguf_close(g);
        return ctx->status;
    }
    *out = g;
    return SW_OK;
}

void sw_gguf_close(sw_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].str_at);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_hash);
    free(g->t_hash);
    if (g->mapped) munmap((void *)g->map, g->size);
    free(g->path);
    free(g);
}

/* ---------------------------------------------------------------- metadata */

const char *sw_gguf_path(const sw_gguf *g) { return g->path; }
uint32_t sw_gguf_version(const sw_gguf *g) { return g->version; }
uint32_t sw_gguf_alignment(const sw_gguf *g) { return g->alignment; }
uint64_t sw_gguf_data_offset(const sw_gguf *g) { return g->data_offset; }
int64_t sw_gguf_n_kv(const sw_gguf *g) { return g->n_kv; }

int64_t sw_gguf_find_key(const sw_gguf *g, const char *key) {
    return hash_get(g, g->kv_hash, g->kv_cap, kv_name, key);
}

const char *sw_gguf_key(const sw_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kvs[i].key : NULL;
}

sw_gguf_type sw_gguf_kv_type(const sw_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kvs[i].type : (sw_gguf_type)-1;
}

static const kv *find(const sw_gguf *g, const char *key) {
    int64_t i = sw_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

/* A scalar integer of type t at p, sign-extended; false for non-integers. */
static bool int_at(uint32_t t, const uint8_t *p, int64_t *out, bool *is_u64_big) {
    *is_u64_big = false;
    switch (t) {
    case SW_GGUF_U8: case SW_GGUF_U16: case SW_GGUF_U32:
        *out = (int64_t)le(p, scalar_size(t));
        return true;
    case SW_GGUF_I8: *out = (int8_t)p[0]; return true;
    case SW_GGUF_I16: *out = (int16_t)(uint16_t)le(p, 2); return true;
    case SW_GGUF_I32: *out = (int32_t)(uint32_t)le(p, 4); return true;
    case SW_GGUF_I64: *out = (int64_t)le(p, 8); return true;
    case SW_GGUF_U64: {
        uint64_t v = le(p, 8);
        *is_u64_big = v > INT64_MAX;
        *out = (int64_t)(v & INT64_MAX);
        return true;
    }
    default: return false;
    }
}

bool sw_gguf_get_int(const sw_gguf *g, const char *key, int64_t *out) {
    const kv *e = find(g, key);
    int64_t v;
    bool big;
    if (!e || !int_at(e->type, e->p, &v, &big) || big) return false;
    *out = v;
    return true;
}

bool sw_gguf_get_float(const sw_gguf *g, const char *key, double *out) {
    const kv *e = find(g, key);
    if (!e) return false;
    int64_t v;
    bool big;
    if (e->type == SW_GGUF_F32) {
        uint32_t u = (uint32_t)le(e->p, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
    } else if (e->type == SW_GGUF_F64) {
        uint64_t u = le(e->p, 8);
        memcpy(out, &u, 8);
    } else if (int_at(e->type, e->p, &v, &big)) {
        *out = big ? (double)le(e->p, 8) : (double)v;
    } else {
        return false;
    }
    return true;
}

bool sw_gguf_get_bool(const sw_gguf *g, const char *key, bool *out) {
    const kv *e = find(g, key);
    if (!e || e->type != SW_GGUF_BOOL) return false;
    *out = e->p[0] != 0;
    return true;
}

bool sw_gguf_get_str(const sw_gguf *g, const char *key, const char **s, size_t *len) {
    const kv *e = find(g, key);
    if (!e || e->type != SW_GGUF_STRING) return false;
    *s = (const char *)e->p;
    *len = (size_t)e->n;
    return true;
}

bool sw_gguf_get_arr(const sw_gguf *g, const char *key, sw_gguf_type *elem, int64_t *n) {
    const kv *e = find(g, key);
    if (!e || e->type != SW_GGUF_ARRAY) return false;
    *elem = e->elem;
    *n = (int64_t)e->n;
    return true;
}

bool sw_gguf_arr_str(const sw_gguf *g, const char *key, int64_t j, const char **s, size_t *len) {
    const kv *e = find(g, key);
    if (!e || e->type != SW_GGUF_ARRAY || e->elem != SW_GGUF_STRING || j < 0 || (uint64_t)j >= e->n) return false;
    const uint8_t *p = e->p + e->str_at[j];
    *s = (const char *)p;
    *len = (size_t)le(p - 8, 8);
    return true;
}

const void *sw_gguf_arr_data(const sw_gguf *g, const char *key) {
    const kv *e = find(g, key);
    if (!e || e->type != SW_GGUF_ARRAY || e->elem == SW_GGUF_STRING) return NULL;
    return e->p;
}

/* ---------------------------------------------------------------- tensors */

int64_t sw_gguf_n_tensors(const sw_gguf *g) { return g->n_tensors; }

const sw_gguf_tensor *sw_gguf_tensor_at(const sw_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const sw_gguf_tensor *sw_gguf_find_tensor(const sw_gguf *g, const char *name) {
    int64_t i = hash_get(g, g->t_hash, g->t_cap, tensor_name, name);
    return i < 0 ? NULL : &g->tensors[i];
}

sw_status sw_gguf_load(sw_ctx *ctx, const sw_gguf *g, const sw_gguf_tensor *t, sw_dtype dtype,
                       sw_mem_cat cat, sw_tensor **out) {
    *out = NULL;
    const char *tn = sw_gguf_ggml_type_name(t->ggml_type);
    if (t->dtype == SW_DTYPE_COUNT)
        return sw_err(ctx, SW_EUNSUPPORTED,
                      "%s: tensor '%s': stepwise cannot decode ggml type %s (it reads f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k and q6_k)",
                      g->path, t->name, tn);
    if (dtype != SW_F32 && dtype != t->dtype)
        return sw_err(ctx, SW_EINVAL, "%s: tensor '%s' loads as f32 or as its own type %s, not %s", g->path,
                      t->name, tn, sw_dtype_name(dtype));
    int64_t shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d]; /* outermost first */
    sw_tensor *x;
    if (sw_tensor_new(ctx, &x, dtype, t->ndim, shape, SW_DEV_CPU, cat))
        return sw_err_prefix(ctx, "%s: tensor '%s'", g->path, t->name);
    snprintf(x->name, sizeof x->name, "%s", t->name);
    if (dtype != SW_F32 || t->dtype == SW_F32) {
        memcpy(sw_tensor_data(x), t->data, t->nbytes);
        *out = x;
        return SW_OK;
    }
    /* Whole rows at a time, about a million elements per step, checking for
     * Ctrl-C in between: a large embedding takes a noticeable moment. */
    const sw_dtype_info *di = sw_dtype_info_of(t->dtype);
    int64_t row = t->ne[0], rows = row ? sw_tensor_numel(x) / row : 0;
    int64_t step = row ? (1 << 20) / row + 1 : 1;
    size_t row_bytes = (size_t)(row / di->block) * (size_t)di->block_bytes;
    float *dst = sw_tensor_data(x);
    const uint8_t *src = t->data;
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        if (sw_interrupt_check(ctx)) {
            sw_tensor_free(x);
            return ctx->status;
        }
        int64_t nr = rows - r0 < step ? rows - r0 : step;
        sw_dequant_cpu(dst + r0 * row, src + (size_t)r0 * row_bytes, t->dtype, nr * row);
    }
    *out = x;
    return SW_OK;
}
