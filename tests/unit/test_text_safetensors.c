/* test_text_safetensors.c — the safetensors reader and writer: round trips
 * of every dtype, hostile headers, truncated files, sharded sets. Meant to
 * run clean under ASan + UBSan (see the brief in README/tests). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/safetensors.h"

static char dir[256];

static const char *pathf(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A file with header text hdr (its length in the first 8 bytes unless
 * len_override >= 0) and data bytes of value 0xAB. */
static void write_raw(const char *path, const char *hdr, size_t data_len, long long len_override) {
    FILE *f = fopen(path, "wb");
    uint64_t n = len_override >= 0 ? (uint64_t)len_override : strlen(hdr);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(hdr, 1, strlen(hdr), f);
    for (size_t i = 0; i < data_len; i++) fputc(0xAB, f);
    fclose(f);
}

/* Opening path must fail with status s and a message holding both the
 * file name and `want`. */
static void expect_fail(const char *path, sw_status s, const char *want) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *st = NULL;
    sw_status got = sw_st_open(&ctx, path, &st);
    CHECK_EQ_INT(got, s);
    CHECK(st == NULL);
    CHECK_CONTAINS(ctx.msg, path);
    CHECK_CONTAINS(ctx.msg, want);
    if (got == SW_OK) sw_st_close(st);
}

static void hdr_fail(const char *hdr, size_t data_len, sw_status s, const char *want) {
    const char *p = pathf("bad.safetensors");
    write_raw(p, hdr, data_len, -1);
    expect_fail(p, s, want);
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void) {
    static const char *const names[] = {"F32", "F16", "BF16", "I32", "U8", "I8", "BOOL", "I16", "U16",
                                        "U32", "I64", "U64", "F64", "F8_E4M3", "F8_E5M2"};
    enum { N = sizeof names / sizeof names[0] };
    sw_st_entry e[N + 3];
    unsigned char buf[N][64];
    memset(e, 0, sizeof e);
    for (int i = 0; i < N; i++) {
        int es = sw_st_dtype_size(names[i], NULL);
        CHECK(es > 0);
        for (int j = 0; j < 64; j++) buf[i][j] = (unsigned char)(i * 31 + j * 7);
        e[i].name = names[i]; /* one tensor per dtype, named by it */
        e[i].dtype_name = names[i];
        e[i].ndim = 2;
        e[i].shape[0] = 2;
        e[i].shape[1] = 32 / es;
        e[i].data = buf[i];
    }
    /* A stepwise tensor, a strided view of one, and an empty tensor. */
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *t, *v;
    int64_t shape[2] = {3, 4};
    CHECK_EQ_INT(sw_tensor_new(&ctx, &t, SW_F32, 2, shape, SW_DEV_CPU, SW_MEM_WORKSPACE), SW_OK);
    for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++) sw_tensor_set(&ctx, t, (int64_t[]){i, j}, (double)(i * 10 + j));
    CHECK_EQ_INT(sw_tensor_transpose(&ctx, &v, t, 0, 1), SW_OK);
    e[N] = (sw_st_entry){.name = "model.t", .tensor = t};
    e[N + 1] = (sw_st_entry){.name = "model.t_transposed", .tensor = v};
    e[N + 2] = (sw_st_entry){.name = "empty", .dtype_name = "F32", .ndim = 2, .shape = {0, 5}};
    const char *meta[] = {"format", "pt", "note", "héllo \"quoted\""};
    const char *p = pathf("rt.safetensors");
    CHECK_EQ_INT(sw_st_write(&ctx, p, N + 3, e, 2, meta), SW_OK);

    sw_st *st;
    CHECK_EQ_INT(sw_st_open(&ctx, p, &st), SW_OK);
    if (!st) return;
    CHECK_EQ_INT(sw_st_count(st), N + 3);
    for (int i = 0; i < N; i++) {
        const sw_st_tensor *r = sw_st_find(st, names[i]);
        CHECK(r != NULL);
        if (!r) continue;
        CHECK(!strcmp(r->dtype_name, names[i]));
        CHECK_EQ_INT(r->ndim, 2);
        CHECK_EQ_INT(r->nbytes, 64);
        CHECK(!memcmp(r->data, buf[i], 64));
        /* Written largest element first: every tensor is aligned. */
        CHECK_EQ_INT((uintptr_t)r->data % (uintptr_t)r->elem_bytes, 0);
    }
    const sw_st_tensor *r = sw_st_find(st, "model.t_transposed");
    CHECK(r && r->shape[0] == 4 && r->shape[1] == 3);
    if (r) {
        float f[12];
        memcpy(f, r->data, sizeof f);
        CHECK(f[0] == 0 && f[1] == 10 && f[2] == 20 && f[3] == 1 && f[11] == 23);
    }
    r = sw_st_find(st, "empty");
    CHECK(r && r->numel == 0 && r->nbytes == 0 && r->shape[1] == 5);
    CHECK(sw_st_find(st, "nope") == NULL);
    CHECK(!strcmp(sw_st_meta_get(st, "format"), "pt"));
    CHECK(!strcmp(sw_st_meta_get(st, "note"), "héllo \"quoted\""));
    CHECK_EQ_INT(sw_st_meta_count(st), 2);
    for (size_t i = 1; i < sw_st_count(st); i++) CHECK(strcmp(sw_st_at(st, i - 1)->name, sw_st_at(st, i)->name) < 0);

    /* Loading: native dtypes as they are, others converted. */
    sw_tensor *l;
    CHECK_EQ_INT(sw_st_load(&ctx, sw_st_find(st, "model.t"), SW_DEV_CPU, SW_MEM_WEIGHTS, &l), SW_OK);
    double d;
    sw_tensor_get(&ctx, l, (int64_t[]){2, 3}, &d);
    CHECK(d == 23 && l->dtype == SW_F32 && !strcmp(l->name, "model.t"));
    sw_tensor_free(l);
    CHECK_EQ_INT(sw_st_load(&ctx, sw_st_find(st, "F64"), SW_DEV_CPU, SW_MEM_WEIGHTS, &l), SW_OK);
    CHECK(l && l->dtype == SW_F32);
    sw_tensor_free(l);
    CHECK_EQ_INT(sw_st_load(&ctx, sw_st_find(st, "I64"), SW_DEV_CPU, SW_MEM_WEIGHTS, &l), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "does not fit in i32");
    CHECK_EQ_INT(sw_st_load(&ctx, sw_st_find(st, "F8_E4M3"), SW_DEV_CPU, SW_MEM_WEIGHTS, &l), SW_EUNSUPPORTED);
    CHECK_CONTAINS(ctx.msg, "F8_E4M3");
    sw_st_close(st);
    sw_tensor_free(v);
    sw_tensor_free(t);

    /* The header is padded with spaces to a multiple of 8. */
    FILE *f = fopen(p, "rb");
    unsigned char b8[8];
    CHECK(fread(b8, 1, 8, f) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b8[i];
    CHECK_EQ_INT(n % 8, 0);
    fclose(f);
}

static void test_write_errors(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    float x[4] = {0};
    sw_st_entry e[2] = {{.name = "a", .dtype_name = "F32", .ndim = 1, .shape = {4}, .data = x},
                        {.name = "a", .dtype_name = "F32", .ndim = 1, .shape = {4}, .data = x}};
    const char *p = pathf("w.safetensors");
    CHECK_EQ_INT(sw_st_write(&ctx, p, 2, e, 0, NULL), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "given twice");
    e[1].name = "b";
    e[1].dtype_name = "F33";
    CHECK_EQ_INT(sw_st_write(&ctx, p, 2, e, 0, NULL), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "unknown dtype 'F33'");
    sw_tensor *q;
    int64_t shape[1] = {64};
    sw_tensor_new(&ctx, &q, SW_Q8_0, 1, shape, SW_DEV_CPU, SW_MEM_WORKSPACE);
    e[1] = (sw_st_entry){.name = "q", .tensor = q};
    CHECK_EQ_INT(sw_st_write(&ctx, p, 2, e, 0, NULL), SW_EUNSUPPORTED);
    sw_tensor_free(q);
    /* A directory that does not exist: an error, and nothing left behind. */
    e[1] = (sw_st_entry){.name = "b", .dtype_name = "F32", .ndim = 1, .shape = {4}, .data = x};
    CHECK_EQ_INT(sw_st_write(&ctx, pathf("missing/w.safetensors"), 2, e, 0, NULL), SW_EIO);
    CHECK_CONTAINS(ctx.msg, "missing/w.safetensors");
    /* A failed overwrite keeps the old file and leaves no temporary. */
    CHECK_EQ_INT(sw_st_write(&ctx, p, 2, e, 0, NULL), SW_OK);
    e[1].name = "a";
    CHECK_EQ_INT(sw_st_write(&ctx, p, 2, e, 0, NULL), SW_EINVAL);
    sw_st *st;
    CHECK_EQ_INT(sw_st_open(&ctx, p, &st), SW_OK);
    CHECK(st && sw_st_find(st, "b"));
    sw_st_close(st);
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d))) CHECK(!strstr(de->d_name, ".tmp."));
    closedir(d);
}

/* ---------------------------------------------------------- hostile headers */

static void test_hostile(void) {
    const char *p = pathf("h.safetensors");
    write_raw(p, "{}", 0, 1000);
    expect_fail(p, SW_EFORMAT, "runs past the end of the file");
    write_raw(p, "{}", 0, 200000000);
    expect_fail(p, SW_EFORMAT, "over the limit");
    write_raw(p, "{}", 0, (long long)0x7fffffffffffffffLL);
    expect_fail(p, SW_EFORMAT, "over the limit");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_fail(p, SW_EFORMAT, "too short");
    expect_fail(pathf("does-not-exist.safetensors"), SW_EIO, "No such file");

    hdr_fail("[1, 2]", 0, SW_EFORMAT, "does not start with '{'");
    hdr_fail("{\"a\": ", 0, SW_EFORMAT, "not valid JSON");
    hdr_fail("{\"a\": 1} x", 0, SW_EFORMAT, "not valid JSON");
    hdr_fail("{\"a\": 1}", 0, SW_EFORMAT, "tensor 'a': the entry is not an object");
    hdr_fail("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT, "tensor 'a': no \"dtype\"");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT, "no \"shape\"");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, SW_EFORMAT, "no \"data_offsets\"");
    hdr_fail("{\"a\": {\"dtype\": \"F99\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT,
             "unknown dtype 'F99'");
    hdr_fail("{\"a\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT, "dtype is not a string");
    hdr_fail("{\"a\": {\"dtype\": \"F4\", \"shape\": [2], \"data_offsets\": [0, 1]}}", 1, SW_EUNSUPPORTED, "sub-byte");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT,
             "shape entry 1 is not a non-negative integer");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT, "shape entry 1");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
             SW_EUNSUPPORTED, "9 dimensions");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], \"data_offsets\": [0, 4]}}", 4,
             SW_EFORMAT, "is too large");
    hdr_fail("{\"a\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 4]}}", 4,
             SW_EFORMAT, "is too large");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 4]}}", 4,
             SW_EFORMAT, "not valid JSON");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [10, 4]}}", 12, SW_EFORMAT,
             "tensor 'a': data_offsets [10, 4] are reversed");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 4, SW_EFORMAT,
             "run past the end of the data (4 bytes)");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -4]}}", 4, SW_EFORMAT,
             "two non-negative integers");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, SW_EFORMAT,
             "two non-negative integers");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT,
             "hold 4 bytes, but F32 [2] needs 8");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [2, 6]}}", 6, SW_EFORMAT, "overlap");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, SW_EFORMAT,
             "bytes [0, 4) of the data belong to no tensor");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 9, SW_EFORMAT,
             "the last 5 bytes");
    hdr_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SW_EFORMAT, "not valid JSON");
    hdr_fail("{\"__metadata__\": {\"k\": 1}}", 0, SW_EFORMAT, "__metadata__ entry 'k' is not a string");
    hdr_fail("{\"__metadata__\": [1]}", 0, SW_EFORMAT, "__metadata__ is not an object");
    hdr_fail("{}", 3, SW_EFORMAT, "belongs to no tensor");

    /* Accepted: padding, empty tensors anywhere, an empty file body. */
    const char *ok = pathf("ok.safetensors");
    write_raw(ok, "{\"e\": {\"dtype\": \"BF16\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                  " \"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}     ", 4, -1);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *st;
    CHECK_EQ_INT(sw_st_open(&ctx, ok, &st), SW_OK);
    CHECK(st && sw_st_count(st) == 2 && sw_st_find(st, "a")->ndim == 0 && sw_st_find(st, "a")->numel == 1);
    sw_st_close(st);
}

/* Every prefix of a good file must fail cleanly (and never read past it). */
static void test_truncation(void) {
    const char *good = pathf("rt.safetensors"), *p = pathf("trunc.safetensors");
    FILE *f = fopen(good, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *all = malloc((size_t)size);
    CHECK(fread(all, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    int fails = 0;
    for (long len = 0; len < size; len += len < 600 ? 1 : 37) {
        FILE *g = fopen(p, "wb");
        fwrite(all, 1, (size_t)len, g);
        fclose(g);
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        sw_st *st = NULL;
        if (sw_st_open(&ctx, p, &st) == SW_OK || !strstr(ctx.msg, p)) fails++;
        sw_st_close(st);
    }
    CHECK_EQ_INT(fails, 0);
    free(all);
}

/* ---------------------------------------------------------------- sharded */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_sharded(void) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/model", dir);
    mkdir(sub, 0755);
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st_entry e1 = {.name = "a", .dtype_name = "F32", .ndim = 1, .shape = {2}, .data = a};
    sw_st_entry e2 = {.name = "b", .dtype_name = "F32", .ndim = 1, .shape = {3}, .data = b};
    const char *meta[] = {"format", "pt"};
    CHECK_EQ_INT(sw_st_write(&ctx, pathf("model/model-00001-of-00002.safetensors"), 1, &e1, 1, meta), SW_OK);
    CHECK_EQ_INT(sw_st_write(&ctx, pathf("model/model-00002-of-00002.safetensors"), 1, &e2, 0, NULL), SW_OK);
    const char *index = pathf("model/model.safetensors.index.json");
    write_text(index, "{\"metadata\": {\"total_size\": 20}, \"weight_map\": {"
                      "\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}}");
    sw_st *st;
    CHECK_EQ_INT(sw_st_open(&ctx, sub, &st), SW_OK);
    if (st) {
        CHECK_EQ_INT(sw_st_count(st), 2);
        CHECK(!memcmp(sw_st_find(st, "b")->data, b, sizeof b));
        CHECK_CONTAINS(sw_st_find(st, "b")->file, "model-00002-of-00002.safetensors");
        CHECK(!strcmp(sw_st_meta_get(st, "total_size"), "20"));
        CHECK(!strcmp(sw_st_meta_get(st, "format"), "pt"));
        sw_st_close(st);
    }
    CHECK_EQ_INT(sw_st_open(&ctx, index, &st), SW_OK);
    sw_st_close(st);

    write_text(index, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00003.safetensors\"}}");
    expect_fail(sub, SW_EIO, "model-00003.safetensors");
    CHECK_CONTAINS(ctx.msg, "");
    write_text(index, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00001-of-00002.safetensors\"}}");
    expect_fail(index, SW_EFORMAT, "tensor 'b' is mapped to model-00001-of-00002.safetensors, which does not hold it");
    write_text(index, "{\"weight_map\": {\"a\": \"../../etc/passwd\"}}");
    expect_fail(index, SW_EFORMAT, "not a file in");
    write_text(index, "{\"weight_map\": [1]}");
    expect_fail(index, SW_EFORMAT, "no \"weight_map\" object");
    write_text(index, "{\"weight_map\": ");
    expect_fail(index, SW_EFORMAT, "not valid JSON");
    /* The same tensor in two shards. */
    CHECK_EQ_INT(sw_st_write(&ctx, pathf("model/model-00002-of-00002.safetensors"), 1, &e1, 0, NULL), SW_OK);
    write_text(index, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"c\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(index, SW_EFORMAT, "tensor 'a' is in both");
    /* A shard that is itself broken names the index and the shard. */
    write_raw(pathf("model/model-00002-of-00002.safetensors"), "{", 0, -1);
    expect_fail(index, SW_EFORMAT, "model-00002-of-00002.safetensors: the header is not valid JSON");
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0755);
    expect_fail(empty, SW_EIO, "no model.safetensors or model.safetensors.index.json");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sw_test_st_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_round_trip();
    test_write_errors();
    test_hostile();
    test_truncation();
    test_sharded();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    CHECK_DONE();
}
