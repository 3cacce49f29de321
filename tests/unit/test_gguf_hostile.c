/* test_gguf_hostile.c — the GGUF reader on a small valid file and on every
 * way we could think of to break it.
 *
 * The valid file is built here byte by byte, remembering where each field
 * sits, so each hostile case is "the valid file with one field changed".
 * Every broken file must fail to open with a status, a message naming the
 * file, *out left NULL and nothing leaked. Each case is tried as a file
 * and as an exact-size heap buffer, so under AddressSanitizer any read past
 * the end is caught:
 *   cmake -S . -B build-asan -DSW_CUDA=OFF -DSW_FRONTENDS=OFF \
 *         -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
 *   cmake --build build-asan -j2 --target test_gguf_hostile && build-asan/tests/test_gguf_hostile
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/gguf.h"
#include "kernels/ops.h"

/* ---- building the valid file ---------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_le(buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

static void put_str(buf *b, const char *s) {
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

/* Where the fields that the cases change sit in the valid file. */
static struct {
    size_t arch_key, arch_len, dup_key, align_type, align_val, u32arr_elem, u32arr_count, strarr_count,
        f32_type, t0_name, t1_name, t0_ndims, t0_ne, t0_type, t1_ne0, t1_type, t1_offset, data;
} at;

static const float t0_vals[8] = {1, -2, 3.5f, 0, -0.25f, 6, 7, 8};

static buf build_valid(void) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_le(&b, 3, 4);
    put_le(&b, 2, 8); /* tensor_count */
    put_le(&b, 7, 8); /* kv_count */

    at.arch_key = b.n + 8;
    put_str(&b, "general.architecture");
    put_le(&b, SW_GGUF_STRING, 4);
    at.arch_len = b.n;
    put_str(&b, "llama");

    put_str(&b, "general.alignment");
    at.align_type = b.n;
    put_le(&b, SW_GGUF_U32, 4);
    at.align_val = b.n;
    put_le(&b, 32, 4);

    put_str(&b, "test.aaa");
    at.f32_type = b.n;
    put_le(&b, SW_GGUF_F32, 4);
    float f = 0.5f;
    put(&b, &f, 4);

    at.dup_key = b.n + 8; /* "test.bbb": patched to "test.aaa" for a duplicate */
    put_str(&b, "test.bbb");
    put_le(&b, SW_GGUF_I64, 4);
    put_le(&b, (uint64_t)-5, 8);

    put_str(&b, "test.u32s");
    put_le(&b, SW_GGUF_ARRAY, 4);
    at.u32arr_elem = b.n;
    put_le(&b, SW_GGUF_U32, 4);
    at.u32arr_count = b.n;
    put_le(&b, 3, 8);
    for (int i = 0; i < 3; i++) put_le(&b, 10u + (unsigned)i, 4);

    put_str(&b, "test.strs");
    put_le(&b, SW_GGUF_ARRAY, 4);
    put_le(&b, SW_GGUF_STRING, 4);
    at.strarr_count = b.n;
    put_le(&b, 3, 8);
    put_str(&b, "one");
    put_str(&b, "");
    put_str(&b, "thr\xc3\xa9\xc3\xa9");

    put_str(&b, "test.flag");
    put_le(&b, SW_GGUF_BOOL, 4);
    put_le(&b, 1, 1);

    /* tensor 0: "a.weight" f32, ne {4, 2}, at 0; tensor 1: "b.weight" q8_0, ne {32, 2}, at 32 */
    at.t0_name = b.n + 8;
    put_str(&b, "a.weight");
    at.t0_ndims = b.n;
    put_le(&b, 2, 4);
    at.t0_ne = b.n;
    put_le(&b, 4, 8);
    put_le(&b, 2, 8);
    at.t0_type = b.n;
    put_le(&b, 0, 4);
    put_le(&b, 0, 8);

    at.t1_name = b.n + 8;
    put_str(&b, "b.weight");
    put_le(&b, 2, 4);
    at.t1_ne0 = b.n;
    put_le(&b, 32, 8);
    put_le(&b, 2, 8);
    at.t1_type = b.n;
    put_le(&b, 8, 4); /* q8_0 */
    at.t1_offset = b.n;
    put_le(&b, 32, 8);

    while (b.n % 32) put_le(&b, 0, 1);
    at.data = b.n;
    put(&b, t0_vals, sizeof t0_vals);
    for (int blk = 0; blk < 2; blk++) { /* d = 0.5 (f16 0x3800), q = i - 16 */
        put_le(&b, 0x3800, 2);
        for (int i = 0; i < 32; i++) put_le(&b, (uint8_t)(int8_t)(i - 16 + blk), 1);
    }
    return b; /* ends exactly where b.weight's data ends: any truncation cuts it */
}

/* ---- helpers --------------------------------------------------------------- */

static char dir[64], path[96];
static int n_hostile;

static void write_file(const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* p must not open; `want` must appear in the message (NULL: any). */
static void expect_fail_path(const char *p, const char *want, const char *line) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gguf *g = (sw_gguf *)&ctx; /* any non-NULL: open must reset it */
    sw_status s = sw_gguf_open(&ctx, p, &g);
    n_hostile++;
    CHECK(s != SW_OK);
    CHECK(g == NULL);
    CHECK_CONTAINS(ctx.msg, p);
    if (want && !strstr(ctx.msg, want)) fprintf(stderr, "  (the case at line %s)\n", line);
    if (want) CHECK_CONTAINS(ctx.msg, want);
    if (s == SW_OK) sw_gguf_close(g);
}

/* Both ways in: as a file (mmap) and as a heap copy of exactly n bytes, so
 * AddressSanitizer sees any read past the end. */
static void expect_fail_bytes(const uint8_t *p, size_t n, const char *want, const char *line) {
    write_file(p, n);
    expect_fail_path(path, want, line);
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gguf *g = (sw_gguf *)&ctx;
    CHECK(sw_gguf_open_buffer(&ctx, "buffer.gguf", copy, n, &g) != SW_OK);
    CHECK(g == NULL);
    CHECK_CONTAINS(ctx.msg, "buffer.gguf: ");
    if (want) CHECK_CONTAINS(ctx.msg, want);
    free(copy);
}

static void patch_le(buf *b, size_t off, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b->p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* Copy the valid file, change n bytes at off to v, expect failure. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define BAD(off, v, width, want)                               \
    do {                                                       \
        buf c_ = {0};                                          \
        put(&c_, valid.p, valid.n);                            \
        patch_le(&c_, (off), (uint64_t)(v), (width));          \
        expect_fail_bytes(c_.p, c_.n, (want), STR(__LINE__));  \
        free(c_.p);                                            \
    } while (0)
#define BAD_BYTES(off, s, want)                                \
    do {                                                       \
        buf c_ = {0};                                          \
        put(&c_, valid.p, valid.n);                            \
        memcpy(c_.p + (off), (s), sizeof(s) - 1);              \
        expect_fail_bytes(c_.p, c_.n, (want), STR(__LINE__));  \
        free(c_.p);                                            \
    } while (0)

/* ---- the valid file reads back as written ---------------------------------- */

static void check_valid(const buf *valid) {
    write_file(valid->p, valid->n);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gguf *g;
    CHECK_EQ_INT(sw_gguf_open(&ctx, path, &g), SW_OK);
    if (!g) {
        fprintf(stderr, "%s\n", ctx.msg);
        return;
    }
    CHECK_EQ_INT(sw_gguf_version(g), 3);
    sw_gguf *g2;
    CHECK_EQ_INT(sw_gguf_open_buffer(&ctx, "valid.gguf", valid->p, valid->n, &g2), SW_OK);
    CHECK(g2 && sw_gguf_n_tensors(g2) == 2 && sw_gguf_find_tensor(g2, "b.weight")->data == valid->p + at.data + 32);
    sw_gguf_close(g2);
    CHECK_EQ_INT(sw_gguf_n_kv(g), 7);
    CHECK_EQ_INT(sw_gguf_alignment(g), 32);
    CHECK_EQ_INT(sw_gguf_data_offset(g), at.data);
    CHECK(!strcmp(sw_gguf_key(g, 2), "test.aaa"));
    CHECK_EQ_INT(sw_gguf_kv_type(g, 4), SW_GGUF_ARRAY);
    CHECK_EQ_INT(sw_gguf_find_key(g, "test.flag"), 6);
    CHECK_EQ_INT(sw_gguf_find_key(g, "test.nope"), -1);
    const char *s;
    size_t len;
    CHECK(sw_gguf_get_str(g, "general.architecture", &s, &len) && len == 5 && !memcmp(s, "llama", 5));
    int64_t i64;
    double d;
    bool b;
    CHECK(sw_gguf_get_int(g, "test.bbb", &i64) && i64 == -5);
    CHECK(sw_gguf_get_int(g, "general.alignment", &i64) && i64 == 32);
    CHECK(!sw_gguf_get_int(g, "test.aaa", &i64));        /* a float is not an int */
    CHECK(sw_gguf_get_float(g, "test.aaa", &d) && d == 0.5);
    CHECK(sw_gguf_get_float(g, "test.bbb", &d) && d == -5);
    CHECK(sw_gguf_get_bool(g, "test.flag", &b) && b);
    CHECK(!sw_gguf_get_str(g, "test.flag", &s, &len));
    sw_gguf_type et;
    int64_t n;
    CHECK(sw_gguf_get_arr(g, "test.u32s", &et, &n) && et == SW_GGUF_U32 && n == 3);
    const uint8_t *u = sw_gguf_arr_data(g, "test.u32s");
    CHECK(u && u[0] == 10 && u[4] == 11 && u[8] == 12);
    CHECK(sw_gguf_get_arr(g, "test.strs", &et, &n) && et == SW_GGUF_STRING && n == 3);
    CHECK(sw_gguf_arr_data(g, "test.strs") == NULL);
    CHECK(sw_gguf_arr_str(g, "test.strs", 0, &s, &len) && len == 3 && !memcmp(s, "one", 3));
    CHECK(sw_gguf_arr_str(g, "test.strs", 1, &s, &len) && len == 0);
    CHECK(sw_gguf_arr_str(g, "test.strs", 2, &s, &len) && len == 7 && !memcmp(s, "thr\xc3\xa9\xc3\xa9", 7));
    CHECK(!sw_gguf_arr_str(g, "test.strs", 3, &s, &len));
    CHECK(!sw_gguf_arr_str(g, "test.strs", -1, &s, &len));

    CHECK_EQ_INT(sw_gguf_n_tensors(g), 2);
    const sw_gguf_tensor *a = sw_gguf_find_tensor(g, "a.weight"), *bt = sw_gguf_find_tensor(g, "b.weight");
    CHECK(a && bt && a == sw_gguf_tensor_at(g, 0) && !sw_gguf_find_tensor(g, "c.weight"));
    if (a && bt) {
        CHECK(a->ndim == 2 && a->ne[0] == 4 && a->ne[1] == 2 && a->dtype == SW_F32 && a->nbytes == 32);
        CHECK(bt->dtype == SW_Q8_0 && bt->nbytes == 68 && bt->offset == 32);
        sw_tensor *x;
        CHECK_EQ_INT(sw_gguf_load(&ctx, g, bt, SW_F32, SW_MEM_WORKSPACE, &x), SW_OK);
        if (x) {
            CHECK(x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 32 && !strcmp(x->name, "b.weight"));
            const float *v = sw_tensor_data(x);
            CHECK(v[0] == -8.0f && v[31] == 7.5f && v[32] == -7.5f && v[63] == 8.0f);
            sw_tensor_free(x);
        }
        CHECK_EQ_INT(sw_gguf_load(&ctx, g, a, SW_F32, SW_MEM_WORKSPACE, &x), SW_OK);
        if (x) {
            CHECK(!memcmp(sw_tensor_data(x), t0_vals, sizeof t0_vals));
            sw_tensor_free(x);
        }
        CHECK_EQ_INT(sw_gguf_load(&ctx, g, a, SW_BF16, SW_MEM_WORKSPACE, &x), SW_EINVAL);
        CHECK(x == NULL);
        CHECK_CONTAINS(ctx.msg, "loads as f32 or as its own type f32, not bf16");
    }
    sw_gguf_close(g);
    sw_gguf_close(NULL);
}

/* A type ggml defines that stepwise does not decode (q5_0) opens; loading fails. */
static void check_unsupported_type(const buf *valid) {
    buf c = {0};
    put(&c, valid->p, valid->n);
    patch_le(&c, at.t1_type, 6, 4);
    write_file(c.p, c.n);
    free(c.p);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gguf *g;
    CHECK_EQ_INT(sw_gguf_open(&ctx, path, &g), SW_OK);
    if (!g) return;
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, "b.weight");
    CHECK(t->dtype == SW_DTYPE_COUNT && t->ggml_type == 6 && t->nbytes == 44);
    CHECK(!strcmp(sw_gguf_ggml_type_name(t->ggml_type), "q5_0"));
    sw_tensor *x;
    CHECK_EQ_INT(sw_gguf_load(&ctx, g, t, SW_F32, SW_MEM_WORKSPACE, &x), SW_EUNSUPPORTED);
    CHECK(x == NULL);
    CHECK_CONTAINS(ctx.msg, path);
    CHECK_CONTAINS(ctx.msg, "tensor 'b.weight': stepwise cannot decode ggml type q5_0");
    sw_gguf_close(g);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sw_gguf_hostile_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    buf valid = build_valid();
    check_valid(&valid);
    check_unsupported_type(&valid);

    /* Every truncation, from the empty file to one byte short. */
    for (size_t n = 0; n < valid.n; n++) expect_fail_bytes(valid.p, n, NULL, "truncation");
    int truncations = n_hostile;

    /* header */
    BAD(0, 'G' | 'G' << 8 | 'M' << 16 | 'L' << 24, 4, "not a GGUF file");
    BAD(4, 1, 4, "GGUF version 1 is not supported");
    BAD(4, 4, 4, "GGUF version 4 is not supported");
    BAD(4, 0x03000000, 4, "big-endian");
    BAD(8, (uint64_t)1 << 62, 8, "tensor_count 4611686018427387904");
    BAD(8, UINT64_MAX, 8, "tensor_count");
    BAD(8, 3, 8, "tensor #2");                          /* one more than there is */
    BAD(16, (uint64_t)1 << 62, 8, "kv_count 4611686018427387904");
    BAD(16, UINT64_MAX, 8, "kv_count");
    BAD(16, 8, 8, "tensor #0");     /* "a.weight" reads as key #7, the infos after it as garbage */
    /* keys and values */
    BAD(at.arch_key - 8, (uint64_t)1 << 63, 8, "the key");
    BAD(at.arch_key - 8, valid.n, 8, "runs past the end of the file");
    BAD(at.arch_len, (uint64_t)1 << 63, 8, "key 'general.architecture': the string value");
    BAD(at.arch_len, UINT64_MAX, 8, "the string value");
    BAD(at.arch_len, valid.n - at.arch_len - 8 + 1, 8, "runs past the end of the file");
    BAD(at.u32arr_count, (uint64_t)1 << 62, 8, "array of 4611686018427387904 u32 values");
    BAD(at.u32arr_count, UINT64_MAX, 8, "u32 values");
    BAD(at.strarr_count, (uint64_t)1 << 61, 8, "array of 2305843009213693952 strings");
    BAD(at.strarr_count, UINT64_MAX, 8, "strings");
    BAD(at.strarr_count, 1000, 8, "key 'test.strs'");
    BAD(at.f32_type, 13, 4, "key 'test.aaa': unknown value type 13");
    BAD(at.f32_type, 0x80000000u, 4, "unknown value type");
    BAD(at.u32arr_elem, SW_GGUF_ARRAY, 4, "arrays of arrays are not supported");
    BAD(at.u32arr_elem, 99, 4, "unknown array element type 99");
    BAD_BYTES(at.arch_key, "\xff", "key #0: the key is not valid UTF-8 (byte 0xff at position 0)");
    BAD_BYTES(at.arch_key + 3, "\xc0\xaf", "not valid UTF-8");      /* overlong '/' */
    BAD_BYTES(at.arch_key + 3, "\xed\xa0\x80", "not valid UTF-8");  /* a surrogate */
    BAD_BYTES(at.arch_key + 3, "\xf4\x90\x80\x80", "not valid UTF-8");  /* past U+10FFFF */
    BAD_BYTES(at.arch_key + 19, "\xe2", "not valid UTF-8");         /* cut sequence at the end */
    BAD_BYTES(at.arch_key + 3, "\0", "not valid UTF-8 (byte 0x00 at position 3)");
    BAD_BYTES(at.dup_key, "test.aaa", "key 'test.aaa': duplicate key");
    /* alignment */
    BAD(at.align_val, 0, 4, "alignment 0 is not a power of two");
    BAD(at.align_val, 3, 4, "alignment 3 is not a power of two");
    BAD(at.align_val, 0x80000001u, 4, "not a power of two");
    BAD(at.align_type, SW_GGUF_I32, 4, "'general.alignment': must be a u32, not i32");
    BAD(at.align_val, 64, 4, "tensor 'b.weight': data offset 32 is not a multiple of the alignment (64)");
    /* tensor infos */
    BAD_BYTES(at.t0_name, "\xfe", "tensor #0: the tensor name is not valid UTF-8");
    BAD_BYTES(at.t1_name + 2, "\x80", "tensor #1: the tensor name is not valid UTF-8");
    BAD_BYTES(at.t1_name, "a", "tensor 'a.weight': duplicate tensor name");
    BAD(at.t0_name - 8, (uint64_t)1 << 62, 8, "tensor #0: the tensor name");
    BAD(at.t0_ndims, 0, 4, "tensor 'a.weight': n_dims is 0, not 1 to 4");
    BAD(at.t0_ndims, 5, 4, "n_dims is 5");
    BAD(at.t0_ndims, UINT32_MAX, 4, "n_dims is 4294967295");
    BAD(at.t0_ne, (uint64_t)1 << 63, 8, "makes the element count overflow");
    BAD(at.t0_ne, UINT64_MAX, 8, "makes the element count overflow");
    {
        buf c = {0};
        put(&c, valid.p, valid.n);
        patch_le(&c, at.t0_ne, (uint64_t)1 << 40, 8);
        patch_le(&c, at.t0_ne + 8, (uint64_t)1 << 40, 8);
        expect_fail_bytes(c.p, c.n, "dimension 2 (ne[1] = 1099511627776) makes the element count overflow", "ne");
        free(c.p);
    }
    BAD(at.t0_ne, (uint64_t)1 << 61, 8, "need more bytes than the whole file");
    BAD(at.t1_ne0, 33, 8, "row length ne[0] = 33 is not a multiple of the q8_0 block (32)");
    BAD(at.t0_type, 99, 4, "tensor 'a.weight': unknown ggml type 99");
    BAD(at.t0_type, 4, 4, "unknown ggml type 4");                    /* retired by ggml */
    BAD(at.t0_type, UINT32_MAX, 4, "unknown ggml type 4294967295");
    BAD(at.t1_type, 0, 4, "past the end of the file");               /* 64 f32 = 256 bytes */
    /* tensor data */
    BAD(at.t1_offset, 33, 8, "tensor 'b.weight': data offset 33 is not a multiple of the alignment (32)");
    BAD(at.t1_offset, 64, 8, "tensor 'b.weight': data offset 64 + 68 bytes is past the end of the file");
    BAD(at.t1_offset, (uint64_t)1 << 62, 8, "is past the end of the file");
    BAD(at.t1_offset, UINT64_MAX - 31, 8, "is past the end of the file");   /* would wrap */
    /* not files at all */
    expect_fail_path(dir, "is a directory", "dir");
    char missing[sizeof path + 8];
    snprintf(missing, sizeof missing, "%s.absent", path);
    expect_fail_path(missing, "cannot open", "missing");

    fprintf(stderr, "%d hostile cases (%d truncations, %d edited files or bad paths), all rejected\n", n_hostile, truncations,
            n_hostile - truncations);
    free(valid.p);
    unlink(path);
    rmdir(dir);
    CHECK_DONE();
}
