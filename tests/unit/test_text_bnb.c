/* test_text_bnb.c — NF4 and double quantization against what bitsandbytes
 * produced (tests/parity/fixtures, made by make_bnb_fixtures.py with bnb
 * 0.50.2 on the CPU), loading a bnb-4bit checkpoint, and refusing broken
 * quantization states. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/bnb.h"
#include "core/safetensors.h"
#include "kernels/ops.h"

static char fixtures[512], tmpdir[256];

static const char *fx(const char *name) {
    static char buf[2][600];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fixtures, name);
    return buf[k];
}

static const sw_st_tensor *need(const sw_st *st, const char *name) {
    const sw_st_tensor *t = sw_st_find(st, name);
    if (!t) {
        fprintf(stderr, "fixture lacks %s\n", name);
        exit(1);
    }
    return t;
}

static float *f32_of(const sw_st_tensor *t) { /* BF16 or F32 fixture data as floats */
    float *f = malloc((size_t)t->numel * sizeof *f);
    if (t->dtype == SW_F32) memcpy(f, t->data, t->nbytes);
    else sw_convert_cpu(f, SW_F32, t->data, t->dtype, t->numel);
    return f;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---------------------------------------------------- against bitsandbytes */

static void test_against_bnb(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *st;
    CHECK_EQ_INT(sw_st_open(&ctx, fx("bnb_nf4.safetensors"), &st), SW_OK);
    if (!st) return;
    const sw_st_tensor *in = need(st, "input");
    int64_t n = in->numel, nb = n / 64;
    float *x = f32_of(in);
    uint8_t *codes = malloc((size_t)n / 2);
    float *absmax = malloc((size_t)nb * sizeof(float));
    sw_nf4_quant_cpu(codes, absmax, x, n);
    const sw_st_tensor *bc = need(st, "plain.codes"), *ba = need(st, "plain.absmax");
    CHECK_EQ_INT(bc->nbytes, n / 2);
    CHECK(!memcmp(codes, bc->data, (size_t)n / 2));            /* every code, the zero block too */
    CHECK(!memcmp(absmax, ba->data, (size_t)nb * sizeof(float)));
    CHECK(!memcmp(need(st, "quant_map")->data, sw_nf4_table, sizeof sw_nf4_table));
    float map[256];
    sw_dynamic_map_signed(map);
    CHECK(!memcmp(need(st, "dynamic_map")->data, map, sizeof map));
    CHECK(!memcmp(need(st, "nested.nested_quant_map")->data, map, sizeof map));

    /* Double quantization. bnb's CPU 8-bit coder is a lookup-table
     * approximation of the CUDA kernel's nearest-entry search (ours): codes
     * may differ by one step on a few values, no more. */
    int64_t n2 = (nb + 255) / 256;
    uint8_t *q = malloc((size_t)nb);
    float *a2 = malloc((size_t)n2 * sizeof(float)), *scratch = malloc((size_t)nb * sizeof(float)), off;
    sw_nf4_double_quant_cpu(q, a2, &off, absmax, nb, scratch);
    float boff;
    memcpy(&boff, need(st, "nested.offset")->data, 4);
    CHECK(fabsf(off - boff) <= 2 * nextafterf(fabsf(boff), INFINITY) - 2 * fabsf(boff)); /* within an ulp or two */
    const uint8_t *bq = need(st, "nested.absmax")->data;
    int differ = 0, far = 0;
    for (int64_t i = 0; i < nb; i++) {
        differ += q[i] != bq[i];
        far += abs((int)q[i] - (int)bq[i]) > 1;
    }
    CHECK_EQ_INT(far, 0);
    CHECK(differ <= nb / 20);
    CHECK(!memcmp(a2, need(st, "nested.nested_absmax")->data, (size_t)n2 * sizeof(float)) || off != boff);

    /* Decoding bnb's own nested state gives bnb's own absmax, bit for bit. */
    float *den = malloc((size_t)nb * sizeof(float)), *bna = f32_of(need(st, "nested.nested_absmax"));
    sw_nf4_double_dequant_cpu(den, bq, bna, map, boff, nb);
    const float *bden = need(st, "nested.denested_absmax")->data;
    int same = 1;
    for (int64_t i = 0; i < nb; i++) same &= bits(den[i]) == bits(bden[i]);
    CHECK(same);
    /* Our own round trip stays within half a step of the 8-bit map, scaled. */
    sw_nf4_double_dequant_cpu(den, q, a2, NULL, off, nb);
    double worst = 0;
    for (int64_t i = 0; i < nb; i++) {
        double e = fabs(den[i] - absmax[i]) / a2[i / 256];
        if (e > worst) worst = e;
    }
    float gap = 0;
    for (int i = 1; i < 256; i++) gap = fmaxf(gap, map[i] - map[i - 1]);
    CHECK(worst <= 0.5 * gap + 1e-6);
    free(den);
    free(bna);
    free(q);
    free(a2);
    free(scratch);
    free(codes);
    free(absmax);
    free(x);
    sw_st_close(st);
}

/* Quantize-dequantize error: at most half the widest gap of the table. */
static void test_round_trip(void) {
    enum { N = 64 * 300 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), a[N / 64];
    uint8_t *c = malloc(N / 2);
    sw_randn_cpu(x, 7, 0, 0.02f, N);
    sw_nf4_quant_cpu(c, a, x, N);
    sw_nf4_dequant_cpu(y, c, a, N);
    double worst = 0, sq = 0, ref = 0;
    for (int i = 0; i < N; i++) {
        double e = fabs(x[i] - y[i]) / a[i / 64];
        if (e > worst) worst = e;
        sq += (x[i] - y[i]) * (double)(x[i] - y[i]);
        ref += (double)x[i] * x[i];
    }
    float gap = 0; /* the widest step of the table, -1 to -0.696 */
    for (int i = 1; i < 16; i++) gap = fmaxf(gap, sw_nf4_table[i] - sw_nf4_table[i - 1]);
    CHECK(worst <= 0.5 * gap + 1e-6);
    CHECK(sq / ref < 0.02); /* NF4 on normal weights: about 1% relative MSE */
    /* A block's largest magnitude is exact (code 0 or 15). */
    for (int b = 0; b < N / 64; b++) {
        float m = 0, got = 0;
        for (int i = 0; i < 64; i++)
            if (fabsf(x[b * 64 + i]) >= m) m = fabsf(x[b * 64 + i]), got = fabsf(y[b * 64 + i]);
        CHECK(m == got);
    }
    free(x);
    free(y);
    free(c);
}

/* ------------------------------------------------------- bnb-4bit checkpoint */

static void test_checkpoint(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *st, *ref;
    CHECK_EQ_INT(sw_st_open(&ctx, fx("tiny-llama-bnb4"), &st), SW_OK);
    CHECK_EQ_INT(sw_st_open(&ctx, fx("tiny-llama-bnb4-ref.safetensors"), &ref), SW_OK);
    if (!st || !ref) return;
    const char *names[] = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.gate_proj.weight"};
    for (int k = 0; k < 2; k++) {
        CHECK(sw_bnb_is_quantized(st, names[k]));
        sw_bnb_weight w;
        CHECK_EQ_INT(sw_bnb_read(&ctx, st, names[k], &w), SW_OK);
        CHECK_EQ_INT(w.nested, k == 1);
        CHECK_EQ_INT(w.out, k ? 384 : 64);
        CHECK_EQ_INT(w.in, 64);
        CHECK(!strcmp(w.orig_dtype, "bfloat16"));
        float *y = malloc((size_t)w.n * sizeof *y);
        sw_bnb_dequant(&w, y);
        const sw_st_tensor *r = need(ref, names[k]); /* bnb's dequantization, in bf16 */
        CHECK_EQ_INT(r->numel, w.n);
        uint16_t *mine = malloc((size_t)w.n * 2);
        sw_convert_cpu(mine, SW_BF16, y, SW_F32, w.n);
        CHECK(!memcmp(mine, r->data, (size_t)w.n * 2));
        free(mine);
        free(y);
        sw_bnb_weight_free(&w);
        sw_bnb_weight_free(&w);
    }
    CHECK(!sw_bnb_is_quantized(st, "model.norm.weight"));
    sw_bnb_weight w;
    CHECK_EQ_INT(sw_bnb_read(&ctx, st, "model.norm.weight", &w), SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "not a bitsandbytes 4-bit weight");

    /* As tensors: nf4 + absmax per row, or dequantized to bf16. */
    sw_tensor *t, *a;
    CHECK_EQ_INT(sw_bnb_load(&ctx, st, names[1], SW_NF4, SW_DEV_CPU, SW_MEM_WEIGHTS, &t, &a), SW_OK);
    CHECK(t && t->dtype == SW_NF4 && t->shape[0] == 384 && t->shape[1] == 64);
    CHECK(a && a->dtype == SW_F32 && a->shape[0] == 384 && a->shape[1] == 1);
    sw_tensor_free(t);
    sw_tensor_free(a);
    CHECK_EQ_INT(sw_bnb_load(&ctx, st, names[1], SW_BF16, SW_DEV_CPU, SW_MEM_WEIGHTS, &t, &a), SW_OK);
    CHECK(t && t->dtype == SW_BF16 && a == NULL);
    if (t) CHECK(!memcmp(sw_tensor_data(t), need(ref, names[1])->data, sw_tensor_nbytes(t)));
    sw_tensor_free(t);
    CHECK_EQ_INT(sw_bnb_load(&ctx, st, names[1], SW_I32, SW_DEV_CPU, SW_MEM_WEIGHTS, &t, &a), SW_EINVAL);
    sw_st_close(ref);

    /* ---- broken states: rewrite the gate_proj pieces with one thing wrong */
    const char *suffixes[] = {"", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                              ".quant_state.bitsandbytes__nf4"};
    enum { NS = 6 };
    const sw_st_tensor *piece[NS];
    char full[NS][200];
    for (int i = 0; i < NS; i++) {
        snprintf(full[i], sizeof full[i], "%s%s", names[1], suffixes[i]);
        piece[i] = need(st, full[i]);
    }
    struct { const char *state; int drop; int64_t absmax_len; sw_status s; const char *want; } cases[] = {
        {"{\"quant_type\": \"fp4\", \"blocksize\": 64, \"shape\": [384, 64]}", -1, 0, SW_EUNSUPPORTED,
         "quant_type 'fp4' is not supported"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 128, \"shape\": [384, 64], \"nested_blocksize\": 256,"
         " \"nested_offset\": 0.05}", -1, 0, SW_EUNSUPPORTED, "blocksize 128"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 128], \"nested_blocksize\": 256,"
         " \"nested_offset\": 0.05}", -1, 0, SW_EFORMAT, "packed weight is 12288 bytes, shape [384, 128] needs 24576"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 64], \"nested_blocksize\": 512,"
         " \"nested_offset\": 0.05}", -1, 0, SW_EUNSUPPORTED, "nested_blocksize 512"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 64]}", -1, 0, SW_EFORMAT,
         "absmax is U8 but the state lacks nested fields"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 64], \"nested_blocksize\": 256,"
         " \"nested_offset\": 0.05}", 3, 0, SW_EFORMAT, "nested fields"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 64], \"nested_blocksize\": 256,"
         " \"nested_offset\": 0.05}", -1, 100, SW_EFORMAT, "absmax has 100 values, the shape needs 384"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, -64]}", -1, 0, SW_EFORMAT,
         "shape entry 2 is not a positive size"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [1099511627776, 1099511627776]}", -1, 0,
         SW_EFORMAT, "too large"},
        {"not json", -1, 0, SW_EFORMAT, "quant_state is not valid JSON"},
        {"{\"quant_type\": \"nf4\"}", -1, 0, SW_EFORMAT, "needs quant_type, blocksize and shape"},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [384, 64], \"nested_blocksize\": 256,"
         " \"nested_offset\": 0.05}", 0, 0, SW_EFORMAT, "the packed weight itself is missing"},
    };
    char path[400];
    snprintf(path, sizeof path, "%s/broken.safetensors", tmpdir);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sw_st_entry e[NS];
        int k = 0;
        for (int i = 0; i < NS; i++) {
            if (i == cases[c].drop) continue;
            const sw_st_tensor *p = piece[i];
            e[k] = (sw_st_entry){.name = full[i], .dtype_name = p->dtype_name, .ndim = p->ndim, .data = p->data};
            memcpy(e[k].shape, p->shape, sizeof p->shape);
            if (i == 5) { /* the state */
                e[k].shape[0] = (int64_t)strlen(cases[c].state);
                e[k].data = cases[c].state;
            }
            if (i == 1 && cases[c].absmax_len) e[k].shape[0] = cases[c].absmax_len;
            k++;
        }
        CHECK_EQ_INT(sw_st_write(&ctx, path, (size_t)k, e, 0, NULL), SW_OK);
        sw_st *b;
        CHECK_EQ_INT(sw_st_open(&ctx, path, &b), SW_OK);
        if (!b) continue;
        sw_bnb_weight w2;
        sw_status s = sw_bnb_read(&ctx, b, names[1], &w2);
        CHECK_EQ_INT(s, cases[c].s);
        CHECK_CONTAINS(ctx.msg, names[1]);
        CHECK_CONTAINS(ctx.msg, cases[c].want);
        if (!s) sw_bnb_weight_free(&w2);
        sw_st_close(b);
    }
    unlink(path);
    sw_st_close(st);
}

int main(void) {
    /* The fixtures sit beside the parity tests: tests/unit/../parity/fixtures. */
    snprintf(fixtures, sizeof fixtures, "%s", __FILE__);
    char *slash = strrchr(fixtures, '/');
    if (slash) *slash = '\0';
    strncat(fixtures, "/../parity/fixtures", sizeof fixtures - strlen(fixtures) - 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_test_bnb_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_against_bnb();
    test_round_trip();
    test_checkpoint();
    rmdir(tmpdir);
    CHECK_DONE();
}
