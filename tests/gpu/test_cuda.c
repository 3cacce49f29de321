/* test_cuda.c — the CUDA backend against its CPU twins, on a real GPU.
 * Exits 77 (ctest: skipped) where the build has no CUDA or no GPU answers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../unit/check.h"
#include "core/tensor.h"
#include "kernels/ops.h"

static size_t dev_now(sw_device d) {
    sw_mem_stats s;
    sw_mem_get(d, &s);
    return s.total_now;
}

int main(void) {
    if (!sw_device_cuda_built() || sw_device_cuda_count() == 0) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return 77;
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    const sw_device g = SW_DEV_CUDA(0);
    char desc[160];
    fprintf(stderr, "device: %s\n", sw_device_describe(g, desc, sizeof desc));
    enum { N = 1 << 20 };

    /* Accounting: bytes on the GPU by category, back to zero on free. */
    sw_tensor *h, *d, *d16, *back;
    CHECK_EQ_INT(sw_tensor_new(&ctx, &h, SW_F32, 2, (int64_t[]){1024, 1024}, SW_DEV_CPU, SW_MEM_DATA), SW_OK);
    sw_tensor_randn(&ctx, h, 5, 1.0);
    CHECK_EQ_INT(sw_tensor_to(&ctx, &d, h, g, SW_F32), SW_OK);
    CHECK_EQ_INT(dev_now(g), (int64_t)N * 4);
    sw_mem_stats s;
    sw_mem_get(g, &s);
    CHECK_EQ_INT(s.now[SW_MEM_DATA], (int64_t)N * 4);

    /* Round trip is exact; conversions on the GPU equal the CPU's. */
    CHECK_EQ_INT(sw_tensor_to(&ctx, &back, d, SW_DEV_CPU, SW_F32), SW_OK);
    CHECK(!memcmp(sw_tensor_data(back), sw_tensor_data(h), (size_t)N * 4));
    sw_tensor_free(back);
    for (int k = 0; k < 2; k++) {
        sw_dtype dt = k ? SW_F16 : SW_BF16;
        sw_tensor *cpu_c, *gpu_c;
        CHECK_EQ_INT(sw_tensor_to(&ctx, &d16, d, g, dt), SW_OK); /* converted on the GPU */
        CHECK_EQ_INT(sw_tensor_to(&ctx, &gpu_c, d16, SW_DEV_CPU, dt), SW_OK);
        CHECK_EQ_INT(sw_tensor_to(&ctx, &cpu_c, h, SW_DEV_CPU, dt), SW_OK);
        CHECK(!memcmp(sw_tensor_data(gpu_c), sw_tensor_data(cpu_c), (size_t)N * 2));
        sw_tensor_free(gpu_c);
        sw_tensor_free(cpu_c);
        sw_tensor_free(d16);
    }

    /* randn: the same stream on both devices (double math; allow 1 ulp-ish). */
    sw_tensor *gr, *grh;
    sw_tensor_new(&ctx, &gr, SW_F32, 1, (int64_t[]){N}, g, SW_MEM_WORKSPACE);
    CHECK_EQ_INT(sw_tensor_randn(&ctx, gr, 5, 1.0), SW_OK);
    sw_tensor_to(&ctx, &grh, gr, SW_DEV_CPU, SW_F32);
    const float *a = sw_tensor_data(grh), *b = sw_tensor_data(h);
    double maxerr = 0;
    for (int i = 0; i < N; i++) maxerr = fmax(maxerr, fabs((double)a[i] - b[i]));
    fprintf(stderr, "randn cuda vs cpu: max abs diff %.3g\n", maxerr);
    CHECK(maxerr < 1e-5);
    sw_tensor_free(grh);
    sw_tensor_free(gr);

    /* Strided views on the GPU copy through the general path. */
    sw_tensor *dt_, *dtc, *ht, *htc;
    sw_tensor_transpose(&ctx, &dt_, d, 0, 1);
    CHECK_EQ_INT(sw_tensor_to(&ctx, &dtc, dt_, SW_DEV_CPU, SW_F32), SW_OK);
    sw_tensor_transpose(&ctx, &ht, h, 0, 1);
    sw_tensor_to(&ctx, &htc, ht, SW_DEV_CPU, SW_F32);
    CHECK(!memcmp(sw_tensor_data(dtc), sw_tensor_data(htc), (size_t)N * 4));
    sw_tensor_fill(&ctx, dt_, 2.5);
    int64_t idx[2] = {7, 3};
    double v;
    sw_tensor_get(&ctx, d, idx, &v);
    CHECK(v == 2.5);
    sw_tensor_free(dt_);
    sw_tensor_free(dtc);
    sw_tensor_free(ht);
    sw_tensor_free(htc);

    /* Out of memory on the GPU: a status, no crash, nothing charged. */
    size_t before = dev_now(g);
    sw_tensor *huge;
    CHECK_EQ_INT(sw_tensor_new(&ctx, &huge, SW_F32, 2, (int64_t[]){1 << 20, 1 << 20}, g, SW_MEM_WEIGHTS), SW_ENOMEM);
    fprintf(stderr, "oom message: %s\n", ctx.msg);
    CHECK_EQ_INT(dev_now(g), before);
    sw_tensor *ok;
    CHECK_EQ_INT(sw_tensor_new(&ctx, &ok, SW_F32, 1, (int64_t[]){16}, g, SW_MEM_WEIGHTS), SW_OK); /* still usable */
    sw_tensor_free(ok);

    sw_tensor_free(d);
    sw_tensor_free(h);
    CHECK_EQ_INT(dev_now(g), 0);
    CHECK_DONE();
}
