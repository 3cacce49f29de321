/* test_tensor.c — tensors on the host: shapes, views, copies, conversions,
 * and that failures change nothing (values and memory accounting). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/tensor.h"
#include "kernels/ops.h"

static size_t host_now(void) {
    sw_mem_stats s;
    sw_mem_get(SW_DEV_CPU, &s);
    return s.total_now;
}

static float f32_at(sw_tensor *t, int64_t i, int64_t j) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    int64_t idx[2] = {i, j};
    double v = NAN;
    sw_tensor_get(&ctx, t, idx, &v);
    return (float)v;
}

static void test_conversions(void) {
    /* Bit patterns from the IEEE 754 binary16 and bfloat16 definitions. */
    CHECK_EQ_INT(sw_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(sw_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(sw_f32_to_f16(65504.0f), 0x7bff);       /* largest finite */
    CHECK_EQ_INT(sw_f32_to_f16(65520.0f), 0x7c00);       /* rounds to inf */
    CHECK_EQ_INT(sw_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
    CHECK_EQ_INT(sw_f32_to_f16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
    CHECK_EQ_INT(sw_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie -> even (0) */
    CHECK_EQ_INT(sw_f32_to_f16(ldexpf(3, -26)), 0x0001); /* above the tie */
    CHECK_EQ_INT(sw_f32_to_f16(0.1f), 0x2e66);
    CHECK_EQ_INT(sw_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie -> even */
    CHECK_EQ_INT(sw_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02); /* tie -> even (up) */
    uint16_t nan16 = sw_f32_to_f16(NAN);
    CHECK((nan16 & 0x7c00) == 0x7c00 && (nan16 & 0x3ff));
    CHECK(sw_f16_to_f32(0x3c00) == 1.0f);
    CHECK(sw_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(sw_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(sw_f16_to_f32(0xfc00)) && sw_f16_to_f32(0xfc00) < 0);

    CHECK_EQ_INT(sw_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(sw_f32_to_bf16(3.14159265f), 0x4049);
    CHECK_EQ_INT(sw_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80); /* tie -> even */
    CHECK_EQ_INT(sw_f32_to_bf16(1.0f + ldexpf(3, -8)), 0x3f82); /* tie -> even (up) */
    CHECK_EQ_INT(sw_f32_to_bf16(-0.0f), 0x8000);
    uint16_t nanb = sw_f32_to_bf16(NAN);
    CHECK((nanb & 0x7f80) == 0x7f80 && (nanb & 0x7f));
    CHECK(sw_bf16_to_f32(0x4049) == 3.140625f);

    /* Every f16 value survives f16 -> f32 -> f16. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaNs */
        if (sw_f32_to_f16(sw_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_views(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    size_t base = host_now();
    sw_tensor *t;
    int64_t shape[2] = {3, 4};
    CHECK_EQ_INT(sw_tensor_new(&ctx, &t, SW_F32, 2, shape, SW_DEV_CPU, SW_MEM_ACTIVATIONS), SW_OK);
    CHECK_EQ_INT(host_now() - base, 48);
    CHECK_EQ_INT(sw_tensor_numel(t), 12);
    CHECK_EQ_INT(t->stride[0], 16);
    CHECK_EQ_INT(t->stride[1], 4);
    CHECK(sw_tensor_is_contiguous(t));
    CHECK(f32_at(t, 2, 3) == 0.0f); /* born zeroed */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            int64_t idx[2] = {i, j};
            sw_tensor_set(&ctx, t, idx, 10 * i + j);
        }

    sw_tensor *tt, *row, *col;
    CHECK_EQ_INT(sw_tensor_transpose(&ctx, &tt, t, 0, 1), SW_OK);
    CHECK_EQ_INT(tt->shape[0], 4);
    CHECK(!sw_tensor_is_contiguous(tt));
    CHECK(f32_at(tt, 3, 2) == 23.0f);
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &row, t, 0, 1, 2), SW_OK);
    CHECK(f32_at(row, 0, 0) == 10.0f);
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &col, t, 1, 2, 1), SW_OK);
    CHECK(f32_at(col, 2, 0) == 22.0f);
    CHECK_EQ_INT(sw_tensor_buffer_users(t), 4);
    CHECK_EQ_INT(host_now() - base, 48); /* views cost no tensor memory */

    /* Strided copy into a contiguous tensor = materialised transpose. */
    sw_tensor *m;
    CHECK_EQ_INT(sw_tensor_to(&ctx, &m, tt, SW_DEV_CPU, SW_BF16), SW_OK);
    CHECK(sw_tensor_is_contiguous(m));
    CHECK(f32_at(m, 1, 2) == 21.0f);
    CHECK_EQ_INT(host_now() - base, 48 + 24);

    /* Reshape needs contiguity; -1 infers. */
    sw_tensor *r;
    CHECK_EQ_INT(sw_tensor_reshape(&ctx, &r, tt, 1, (int64_t[]){12}), SW_EINVAL);
    CHECK_EQ_INT(sw_tensor_reshape(&ctx, &r, t, 2, (int64_t[]){-1, 6}), SW_OK);
    CHECK_EQ_INT(r->shape[0], 2);
    CHECK(f32_at(r, 1, 0) == 12.0f);
    sw_tensor *r2;
    CHECK_EQ_INT(sw_tensor_reshape(&ctx, &r2, t, 2, (int64_t[]){5, -1}), SW_EINVAL);
    CHECK(r2 == NULL);
    CHECK_CONTAINS(ctx.msg, "cannot infer");

    /* Out-of-range views fail with a message. */
    sw_tensor *bad;
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &bad, t, 0, 2, 2), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "outside dimension 1");
    CHECK(bad == NULL);
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &bad, t, 5, 0, 1), SW_EINVAL);

    /* Free the parent first: the views keep the buffer alive. */
    sw_tensor_free(t);
    CHECK(f32_at(row, 0, 3) == 13.0f);
    CHECK_EQ_INT(host_now() - base, 48 + 24);
    sw_tensor_free(tt);
    sw_tensor_free(row);
    sw_tensor_free(r);
    CHECK_EQ_INT(host_now() - base, 48 + 24);
    sw_tensor_free(col); /* last user: the buffer goes */
    CHECK_EQ_INT(host_now() - base, 24);
    sw_tensor_free(m);
    sw_tensor_free(NULL);
    CHECK_EQ_INT(host_now(), base);
}

static void test_failures_change_nothing(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    size_t base = host_now();
    sw_tensor *a, *b, *out;
    CHECK_EQ_INT(sw_tensor_new(&ctx, &a, SW_F32, 2, (int64_t[]){2, 2}, SW_DEV_CPU, SW_MEM_DATA), SW_OK);
    CHECK_EQ_INT(sw_tensor_new(&ctx, &b, SW_F32, 2, (int64_t[]){2, 3}, SW_DEV_CPU, SW_MEM_DATA), SW_OK);
    sw_tensor_fill(&ctx, a, 7);
    CHECK_EQ_INT(sw_tensor_copy(&ctx, a, b), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "shapes differ");
    CHECK(f32_at(a, 1, 1) == 7.0f);

    /* Out of memory under a limit: error, no tensor, no bytes charged. */
    size_t before = host_now();
    sw_mem_set_limit(&ctx, SW_DEV_CPU, before + 100);
    CHECK_EQ_INT(sw_tensor_new(&ctx, &out, SW_F32, 1, (int64_t[]){1000}, SW_DEV_CPU, SW_MEM_WEIGHTS), SW_ENOMEM);
    CHECK(out == NULL);
    CHECK_EQ_INT(host_now(), before);
    CHECK_EQ_INT(sw_tensor_to(&ctx, &out, b, SW_DEV_CPU, SW_F32), SW_OK); /* 24 bytes fit */
    sw_tensor_free(out);
    /* fill on a strided view needs a temporary: if that fails, dst is untouched. */
    sw_tensor *tv;
    sw_tensor_transpose(&ctx, &tv, a, 0, 1);
    sw_mem_set_limit(&ctx, SW_DEV_CPU, host_now() + 8);
    CHECK_EQ_INT(sw_tensor_fill(&ctx, tv, 1), SW_ENOMEM);
    CHECK(f32_at(a, 0, 1) == 7.0f);
    sw_mem_set_limit(&ctx, SW_DEV_CPU, 0);
    CHECK_EQ_INT(sw_tensor_fill(&ctx, tv, 1), SW_OK);
    CHECK(f32_at(a, 0, 1) == 1.0f);
    sw_tensor_free(tv);

    /* Bad shapes and indices. */
    CHECK_EQ_INT(sw_tensor_new(&ctx, &out, SW_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, SW_DEV_CPU, SW_MEM_DATA), SW_EINVAL);
    CHECK_EQ_INT(sw_tensor_new(&ctx, &out, SW_F32, 1, (int64_t[]){-3}, SW_DEV_CPU, SW_MEM_DATA), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "negative");
    CHECK_EQ_INT(sw_tensor_new(&ctx, &out, SW_F32, 2, (int64_t[]){INT64_MAX / 2, 4}, SW_DEV_CPU, SW_MEM_DATA), SW_EINVAL);
    double v;
    CHECK_EQ_INT(sw_tensor_get(&ctx, a, (int64_t[]){2, 0}, &v), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "out of range");
    /* A GPU that is not there. */
    CHECK(sw_tensor_new(&ctx, &out, SW_F32, 1, (int64_t[]){4}, SW_DEV_CUDA(7), SW_MEM_DATA) == SW_EDEVICE);
    sw_tensor_free(a);
    sw_tensor_free(b);
    CHECK_EQ_INT(host_now(), base);
}

static void test_quantized(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *q, *v;
    /* q4_0: 32 elements in 18 bytes. */
    CHECK_EQ_INT(sw_tensor_new(&ctx, &q, SW_Q4_0, 2, (int64_t[]){3, 64}, SW_DEV_CPU, SW_MEM_WEIGHTS), SW_OK);
    CHECK_EQ_INT(sw_tensor_nbytes(q), 3 * 2 * 18);
    CHECK_EQ_INT(q->stride[0], 36);
    CHECK_EQ_INT(sw_tensor_new(&ctx, &v, SW_Q4_K, 1, (int64_t[]){100}, SW_DEV_CPU, SW_MEM_WEIGHTS), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "multiple of 256");
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &v, q, 0, 1, 2), SW_OK); /* whole rows: fine */
    CHECK_EQ_INT(v->offset, 36);
    sw_tensor_free(v);
    CHECK_EQ_INT(sw_tensor_narrow(&ctx, &v, q, 1, 0, 32), SW_EINVAL); /* inside a row */
    CHECK_EQ_INT(sw_tensor_transpose(&ctx, &v, q, 0, 1), SW_EINVAL);
    CHECK_EQ_INT(sw_tensor_fill(&ctx, q, 1.0), SW_EUNSUPPORTED);
    sw_tensor *f;
    sw_tensor_new(&ctx, &f, SW_F32, 2, (int64_t[]){3, 64}, SW_DEV_CPU, SW_MEM_WEIGHTS);
    CHECK_EQ_INT(sw_tensor_copy(&ctx, f, q), SW_EUNSUPPORTED);
    CHECK_CONTAINS(ctx.msg, "quantizer");
    /* Same-type copies move raw blocks, also through a strided row view. */
    unsigned char *raw = sw_tensor_data(q);
    for (size_t i = 0; i < sw_tensor_nbytes(q); i++) raw[i] = (unsigned char)i;
    sw_tensor *q2, *rows;
    sw_tensor_narrow(&ctx, &rows, q, 0, 1, 2);
    CHECK_EQ_INT(sw_tensor_to(&ctx, &q2, rows, SW_DEV_CPU, SW_Q4_0), SW_OK);
    CHECK(!memcmp(sw_tensor_data(q2), raw + 36, 72));
    sw_tensor_free(q2);
    sw_tensor_free(rows);
    sw_tensor_free(f);
    sw_tensor_free(q);
}

static void test_random(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    enum { N = 200000 };
    sw_tensor *a, *b, *c;
    sw_tensor_new(&ctx, &a, SW_F32, 1, (int64_t[]){N}, SW_DEV_CPU, SW_MEM_DATA);
    sw_tensor_new(&ctx, &b, SW_F32, 1, (int64_t[]){N}, SW_DEV_CPU, SW_MEM_DATA);
    sw_tensor_new(&ctx, &c, SW_BF16, 1, (int64_t[]){N}, SW_DEV_CPU, SW_MEM_DATA);
    sw_tensor_randn(&ctx, a, 42, 1.0);
    sw_tensor_randn(&ctx, b, 42, 1.0);
    CHECK(!memcmp(sw_tensor_data(a), sw_tensor_data(b), N * 4)); /* reproducible */
    sw_tensor_randn(&ctx, b, 43, 1.0);
    CHECK(memcmp(sw_tensor_data(a), sw_tensor_data(b), N * 4) != 0);
    double s = 0, s2 = 0, s4 = 0;
    const float *x = sw_tensor_data(a);
    for (int i = 0; i < N; i++) {
        s += x[i];
        s2 += x[i] * x[i];
        s4 += (double)x[i] * x[i] * x[i] * x[i];
    }
    double mean = s / N, var = s2 / N - mean * mean, kurt = s4 / N / (var * var);
    /* Standard errors at N=2e5: mean 0.0022, var 0.0032, kurtosis ~0.011. */
    CHECK(fabs(mean) < 0.011);
    CHECK(fabs(var - 1) < 0.016);
    CHECK(fabs(kurt - 3) < 0.06);
    /* A slice of the stream is the same as the stream's slice. */
    float part[10];
    sw_randn_cpu(part, 42, 1000, 1.0f, 10);
    CHECK(!memcmp(part, x + 1000, sizeof part));
    /* bf16 randn = f32 randn rounded. */
    sw_tensor_randn(&ctx, c, 42, 2.0);
    const uint16_t *y = sw_tensor_data(c);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += y[i] != sw_f32_to_bf16(2.0f * x[i]);
    CHECK_EQ_INT(bad, 0);
    sw_tensor_free(a);
    sw_tensor_free(b);
    sw_tensor_free(c);
}

int main(void) {
    test_conversions();
    test_views();
    test_failures_change_nothing();
    test_quantized();
    test_random();
    CHECK_DONE();
}
