/* test_gpu_layers.c — the engine's layer, loss and optimizer ops on a real
 * GPU (kernels/cuda/layers.cu, loss.cu, optim.cu) against the float32 CPU
 * references (kernels/ops.h, core/train.c's loss and dropout, core/optim.c's
 * update arithmetic) on the same bf16-rounded inputs.
 *
 * Outputs are poisoned with NaN bit patterns first, so an element a kernel
 * forgets to write shows up as a NaN error. Sizes include the odd ones that
 * take the scalar paths (C not a multiple of 8, misaligned pointers, T = 1).
 * One line per case: op, case, relative error ||out - ref|| / ||ref||, and
 * the tolerance (bf16 outputs 1e-2, f32 outputs 1e-5, optimizer 1e-6).
 * Exits 77 (ctest: skipped) without CUDA or a GPU. SW_GPU_TEST_SMALL=1 (set
 * by tests/gpu/run under compute-sanitizer) leaves out the largest sizes;
 * every kernel path, scalar and vector, still runs.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/check.h"
#include "kernels/ops.h"
/* gpu_ops.h's header comment names "kernels/cuda/" "*.cu", which -Wcomment flags */
#include "kernels/gpu_ops.h"
#ifdef SW_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

#ifndef SW_HAVE_CUDA
int main(void) {
    fprintf(stderr, "built without CUDA: skipped\n");
    return 77;
}
#else

#define TOL_BF16 1e-2
#define TOL_F32 1e-5
#define TOL_OPT 1e-6

static sw_ctx ctx;

/* ---------------------------------------------------------------- host */

static uint64_t rng_state = 0x5eed1234abcdULL;
static double urand(void) { /* [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float srand1(float scale) { return (float)((2.0 * urand() - 1.0) * scale); }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "host out of memory\n");
        exit(1);
    }
    return p;
}

/* n random bf16 values and their float32 values */
static uint16_t *rand_bf16(float *f, int64_t n, float scale) {
    uint16_t *h = xmalloc(sizeof(uint16_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        h[i] = sw_f32_to_bf16(srand1(scale));
        f[i] = sw_bf16_to_f32(h[i]);
    }
    return h;
}
static void bf16_to_f32(float *f, const uint16_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) f[i] = sw_bf16_to_f32(h[i]);
}
static void round_bf16(float *f, int64_t n) { /* what a bf16 store does */
    for (int64_t i = 0; i < n; i++) f[i] = sw_bf16_to_f32(sw_f32_to_bf16(f[i]));
}

/* ||out - ref|| / ||ref|| in double; NaN anywhere gives NaN. ref == 0 gives the absolute norm. */
static double relerr(const float *out, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)out[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (isnan(num)) return NAN;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void report(const char *op, const char *cs, double err, double tol) {
    fprintf(stderr, "%-14s %-40s relerr %.3e  (tol %.0e)%s\n", op, cs, err, tol, err <= tol ? "" : "  FAIL");
    CHECK(err <= tol); /* false for NaN */
}

/* -------------------------------------------------------------- device */

static void *dalloc(size_t bytes) {
    void *p = NULL;
    if (sw_cuda_malloc(&ctx, 0, bytes, &p)) {
        fprintf(stderr, "%s\n", ctx.msg);
        exit(1);
    }
    return p;
}
static void up(void *d, const void *h, size_t bytes) { CHECK_EQ_INT(sw_cuda_memcpy(&ctx, 0, d, -1, h, bytes, 0), SW_OK); }
static void down(void *h, const void *d, size_t bytes) {
    CHECK_EQ_INT(sw_cuda_sync(&ctx, 0), SW_OK); /* the ops run on the device's own stream */
    CHECK_EQ_INT(sw_cuda_memcpy(&ctx, -1, h, 0, d, bytes, 1), SW_OK);
}
static void poison(void *d, size_t bytes) { /* 0xff..: NaN as f32 and as bf16 */
    void *h = xmalloc(bytes);
    memset(h, 0xff, bytes);
    up(d, h, bytes);
    free(h);
}
static void *dup_to_dev(const void *h, size_t bytes) {
    void *d = dalloc(bytes);
    up(d, h, bytes);
    return d;
}
static void dfree(void *d) { sw_cuda_free(0, d); }

/* ------------------------------------------------------------- rmsnorm */

static void test_rmsnorm(int64_t T, int64_t C) {
    char cs[64];
    snprintf(cs, sizeof cs, "T=%lld C=%lld", (long long)T, (long long)C);
    const int64_t n = T * C;
    float *xf = xmalloc(4 * (size_t)n), *w = xmalloc(4 * (size_t)C), *yref = xmalloc(4 * (size_t)n);
    float *rref = xmalloc(4 * (size_t)T), *yf = xmalloc(4 * (size_t)n), *rg = xmalloc(4 * (size_t)T);
    uint16_t *xh = rand_bf16(xf, n, 2.0f), *yh = xmalloc(2 * (size_t)n);
    for (int64_t c = 0; c < C; c++) w[c] = 1.0f + srand1(0.5f);
    sw_rmsnorm_fwd_cpu(yref, rref, xf, w, 1e-6f, T, C);
    round_bf16(yref, n);

    void *dx = dup_to_dev(xh, 2 * (size_t)n), *dw = dup_to_dev(w, 4 * (size_t)C);
    void *dy = dalloc(2 * (size_t)n), *dr = dalloc(4 * (size_t)T);
    poison(dy, 2 * (size_t)n);
    poison(dr, 4 * (size_t)T);
    CHECK_EQ_INT(sw_rmsnorm_fwd_cuda(&ctx, 0, dy, dr, dx, dw, 1e-6f, T, C), SW_OK);
    down(yh, dy, 2 * (size_t)n);
    down(rg, dr, 4 * (size_t)T);
    bf16_to_f32(yf, yh, n);
    report("rmsnorm_fwd y", cs, relerr(yf, yref, n), TOL_BF16);
    report("rmsnorm_fwd rstd", cs, relerr(rg, rref, T), TOL_F32);

    /* backward, every dy/dx dtype pair; rstd from the reference forward */
    up(dr, rref, 4 * (size_t)T);
    float *dyf = xmalloc(4 * (size_t)n), *dx0 = xmalloc(4 * (size_t)n), *ref = xmalloc(4 * (size_t)n);
    float *got = xmalloc(4 * (size_t)n);
    uint16_t *dyh = rand_bf16(dyf, n, 1.0f), *dxh = xmalloc(2 * (size_t)n);
    for (int64_t i = 0; i < n; i++) dx0[i] = srand1(1.0f);
    void *ddy = dalloc(4 * (size_t)n), *ddx = dalloc(4 * (size_t)n);
    for (int k = 0; k < 4; k++) {
        sw_dtype dyt = k & 1 ? SW_BF16 : SW_F32, dxt = k & 2 ? SW_BF16 : SW_F32;
        char cs2[96];
        snprintf(cs2, sizeof cs2, "%s dy=%s dx=%s", cs, dyt == SW_F32 ? "f32" : "bf16", dxt == SW_F32 ? "f32+=" : "bf16");
        if (dyt == SW_F32) up(ddy, dyf, 4 * (size_t)n); /* dyf holds bf16 values: same data either way */
        else up(ddy, dyh, 2 * (size_t)n);
        if (dxt == SW_F32) {
            up(ddx, dx0, 4 * (size_t)n);
            memcpy(ref, dx0, 4 * (size_t)n);
        } else {
            poison(ddx, 2 * (size_t)n);
            memset(ref, 0, 4 * (size_t)n);
        }
        sw_rmsnorm_bwd_cpu(ref, dyf, xf, w, rref, T, C);
        CHECK_EQ_INT(sw_rmsnorm_bwd_cuda(&ctx, 0, ddx, dxt, ddy, dyt, dx, dw, dr, T, C), SW_OK);
        if (dxt == SW_F32) {
            down(got, ddx, 4 * (size_t)n);
            report("rmsnorm_bwd", cs2, relerr(got, ref, n), TOL_F32);
        } else {
            down(dxh, ddx, 2 * (size_t)n);
            bf16_to_f32(got, dxh, n);
            round_bf16(ref, n);
            report("rmsnorm_bwd", cs2, relerr(got, ref, n), TOL_BF16);
        }
    }
    dfree(dx), dfree(dw), dfree(dy), dfree(dr), dfree(ddy), dfree(ddx);
    free(xf), free(w), free(yref), free(rref), free(yf), free(rg), free(xh), free(yh);
    free(dyf), free(dx0), free(ref), free(got), free(dyh), free(dxh);
}

/* ---------------------------------------------------------------- rope */

static void test_rope(int64_t T, int64_t H, int64_t D, bool interleaved, bool inverse) {
    char cs[80];
    snprintf(cs, sizeof cs, "T=%lld H=%lld D=%lld %s%s", (long long)T, (long long)H, (long long)D,
             interleaved ? "interleaved" : "halves", inverse ? " inverse" : "");
    const int64_t n = T * H * D;
    float *xf = xmalloc(4 * (size_t)n), *got = xmalloc(4 * (size_t)n), *inv = xmalloc(4 * (size_t)(D / 2));
    int32_t *pos = xmalloc(4 * (size_t)T);
    uint16_t *xh = rand_bf16(xf, n, 1.0f);
    for (int64_t i = 0; i < D / 2; i++) inv[i] = (float)pow(10000.0, -2.0 * (double)i / (double)D);
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(urand() * 8192);
    void *dx = dup_to_dev(xh, 2 * (size_t)n), *dp = dup_to_dev(pos, 4 * (size_t)T);
    void *di = dup_to_dev(inv, 4 * (size_t)(D / 2));
    CHECK_EQ_INT(sw_rope_cuda(&ctx, 0, dx, dp, di, interleaved, inverse, T, H, D), SW_OK);
    if (inverse) sw_rope_bwd_cpu(xf, pos, inv, interleaved, T, H, D);
    else sw_rope_cpu(xf, pos, inv, interleaved, T, H, D);
    round_bf16(xf, n);
    down(xh, dx, 2 * (size_t)n);
    bf16_to_f32(got, xh, n);
    report("rope", cs, relerr(got, xf, n), TOL_BF16);
    dfree(dx), dfree(dp), dfree(di);
    free(xf), free(got), free(inv), free(pos), free(xh);
}

/* -------------------------------------------------------------- swiglu */

/* off: element offset of every device pointer (1 = misaligned: scalar path) */
static void test_swiglu(int64_t n, int off) {
    char cs[64];
    snprintf(cs, sizeof cs, "n=%lld%s", (long long)n, off ? " misaligned" : "");
    float *g = xmalloc(4 * (size_t)n), *u = xmalloc(4 * (size_t)n), *da = xmalloc(4 * (size_t)n);
    float *ref = xmalloc(4 * (size_t)n), *ref2 = xmalloc(4 * (size_t)n), *got = xmalloc(4 * (size_t)n);
    uint16_t *gh = rand_bf16(g, n, 4.0f), *uh = rand_bf16(u, n, 2.0f), *ah = rand_bf16(da, n, 1.0f);
    uint16_t *oh = xmalloc(2 * (size_t)n);
    size_t bytes = 2 * (size_t)(n + off);
    uint16_t *dg = dalloc(bytes), *du = dalloc(bytes), *dda = dalloc(bytes), *dout = dalloc(bytes), *dout2 = dalloc(bytes);
    up(dg + off, gh, 2 * (size_t)n);
    up(du + off, uh, 2 * (size_t)n);
    up(dda + off, ah, 2 * (size_t)n);
    poison(dout, bytes);
    poison(dout2, bytes);

    CHECK_EQ_INT(sw_swiglu_fwd_cuda(&ctx, 0, dout + off, dg + off, du + off, n), SW_OK);
    sw_swiglu_cpu(ref, g, u, n);
    round_bf16(ref, n);
    down(oh, dout + off, 2 * (size_t)n);
    bf16_to_f32(got, oh, n);
    report("swiglu_fwd", cs, relerr(got, ref, n), TOL_BF16);

    poison(dout, bytes);
    CHECK_EQ_INT(sw_swiglu_bwd_cuda(&ctx, 0, dout + off, dout2 + off, dda + off, dg + off, du + off, n), SW_OK);
    sw_swiglu_bwd_cpu(ref, ref2, da, g, u, n);
    round_bf16(ref, n);
    round_bf16(ref2, n);
    down(oh, dout + off, 2 * (size_t)n);
    bf16_to_f32(got, oh, n);
    report("swiglu_bwd dg", cs, relerr(got, ref, n), TOL_BF16);
    down(oh, dout2 + off, 2 * (size_t)n);
    bf16_to_f32(got, oh, n);
    report("swiglu_bwd du", cs, relerr(got, ref2, n), TOL_BF16);
    dfree(dg), dfree(du), dfree(dda), dfree(dout), dfree(dout2);
    free(g), free(u), free(da), free(ref), free(ref2), free(got), free(gh), free(uh), free(ah), free(oh);
}

/* ------------------------------------------------------ embed, add_bias */

static void test_embed(int64_t V, int64_t T, int64_t C) {
    char cs[64];
    snprintf(cs, sizeof cs, "V=%lld T=%lld C=%lld", (long long)V, (long long)T, (long long)C);
    float *tf = xmalloc(4 * (size_t)(V * C)), *ref = xmalloc(4 * (size_t)(T * C)), *got = xmalloc(4 * (size_t)(T * C));
    uint16_t *th = rand_bf16(tf, V * C, 1.0f), *oh = xmalloc(2 * (size_t)(T * C));
    int32_t *ids = xmalloc(4 * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        ids[t] = (int32_t)(urand() * (double)V);
        memcpy(ref + t * C, tf + ids[t] * C, 4 * (size_t)C);
    }
    void *dt = dup_to_dev(th, 2 * (size_t)(V * C)), *di = dup_to_dev(ids, 4 * (size_t)T), *dout = dalloc(2 * (size_t)(T * C));
    poison(dout, 2 * (size_t)(T * C));
    CHECK_EQ_INT(sw_embed_cuda(&ctx, 0, dout, dt, di, T, C), SW_OK);
    down(oh, dout, 2 * (size_t)(T * C));
    bf16_to_f32(got, oh, T * C);
    report("embed", cs, relerr(got, ref, T * C), 0.0); /* a copy: exact */
    dfree(dt), dfree(di), dfree(dout);
    free(tf), free(ref), free(got), free(th), free(oh), free(ids);
}

static void test_add_bias(int64_t T, int64_t N, int64_t ldy) {
    char cs[64];
    snprintf(cs, sizeof cs, "T=%lld N=%lld ldy=%lld", (long long)T, (long long)N, (long long)ldy);
    const int64_t n = T * ldy;
    float *yf = xmalloc(4 * (size_t)n), *b = xmalloc(4 * (size_t)N), *got = xmalloc(4 * (size_t)n);
    uint16_t *yh = rand_bf16(yf, n, 1.0f);
    for (int64_t i = 0; i < N; i++) b[i] = srand1(1.0f);
    void *dy = dup_to_dev(yh, 2 * (size_t)n), *db = dup_to_dev(b, 4 * (size_t)N);
    CHECK_EQ_INT(sw_add_bias_cuda(&ctx, 0, dy, db, T, N, ldy), SW_OK);
    for (int64_t t = 0; t < T; t++) /* columns N..ldy-1 must be left alone */
        for (int64_t c = 0; c < N; c++) yf[t * ldy + c] = sw_bf16_to_f32(sw_f32_to_bf16(yf[t * ldy + c] + b[c]));
    down(yh, dy, 2 * (size_t)n);
    bf16_to_f32(got, yh, n);
    report("add_bias", cs, relerr(got, yf, n), TOL_BF16);
    dfree(dy), dfree(db);
    free(yf), free(b), free(got), free(yh);
}

static void test_residual_add(int64_t T, int64_t N, int64_t ldy) {
    char cs[64];
    snprintf(cs, sizeof cs, "T=%lld N=%lld ldy=%lld", (long long)T, (long long)N, (long long)ldy);
    const int64_t n = T * ldy;
    float *yf = xmalloc(4 * (size_t)n), *x = xmalloc(4 * (size_t)(T * N)), *got = xmalloc(4 * (size_t)n);
    uint16_t *yh = rand_bf16(yf, n, 1.0f);
    /* small updates, as a layer adds to a larger residual: the sum must be
     * rounded once, from float32 */
    for (int64_t i = 0; i < T * N; i++) x[i] = srand1(1e-2f);
    void *dy = dup_to_dev(yh, 2 * (size_t)n), *dx = dup_to_dev(x, 4 * (size_t)(T * N));
    CHECK_EQ_INT(sw_residual_add_cuda(&ctx, 0, dy, dx, T, N, ldy), SW_OK);
    for (int64_t t = 0; t < T; t++) /* columns N..ldy-1 must be left alone */
        for (int64_t c = 0; c < N; c++)
            yf[t * ldy + c] = sw_bf16_to_f32(sw_f32_to_bf16(yf[t * ldy + c] + x[t * N + c]));
    down(yh, dy, 2 * (size_t)n);
    bf16_to_f32(got, yh, n);
    report("residual_add", cs, relerr(got, yf, n), 0.0); /* one rounding of the same float sum: exact */
    dfree(dy), dfree(dx);
    free(yf), free(x), free(got), free(yh);
}

/* ------------------------------------------------------------- dropout */

/* core/train.c's hash4, copied */
static uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ b * 0xbf58476d1ce4e5b9ull ^ c * 0x94d049bb133111ebull ^ d;
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    return x ^ (x >> 32);
}

/* out (bf16, or f32 with add) = [out +] dropout(x), element i standing for first + i */
static void test_dropout(int64_t n, float p, int off, sw_dtype out_t, bool add, uint64_t first) {
    char cs[96];
    snprintf(cs, sizeof cs, "n=%lld p=%g%s %s%s first=%llu", (long long)n, p, off ? " misaligned" : "",
             out_t == SW_F32 ? "f32" : "bf16", add ? " add" : "", (unsigned long long)first);
    const uint64_t seed = 1234, call = 7, which = 3 * 7 + 2;
    float *xf = xmalloc(4 * (size_t)n), *ref = xmalloc(4 * (size_t)n), *got = xmalloc(4 * (size_t)n);
    float *base = xmalloc(4 * (size_t)n);
    uint16_t *xh = rand_bf16(xf, n, 1.0f), *bh = rand_bf16(base, n, 1.0f), *oh = xmalloc(4 * (size_t)n);
    /* lora_input with dropout = (double)p */
    float keep = (float)(1.0 / (1.0 - (double)p));
    uint64_t cut = (uint64_t)((double)p * 18446744073709551615.0);
    int64_t zeros = 0, mism = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = hash4(seed, call, which, first + (uint64_t)i);
        float v = h < cut ? 0.0f : xf[i] * keep;
        ref[i] = out_t == SW_F32 ? (add ? base[i] + v : v) : sw_bf16_to_f32(sw_f32_to_bf16(add ? base[i] + v : v));
    }
    size_t es = out_t == SW_F32 ? 4 : 2;
    uint16_t *dx = dalloc(2 * (size_t)(n + off));
    char *dout = dalloc(es * (size_t)(n + off));
    up(dx + off, xh, 2 * (size_t)n);
    poison(dout, es * (size_t)(n + off));
    if (add) up(dout + es * (size_t)off, out_t == SW_F32 ? (void *)base : (void *)bh, es * (size_t)n);
    CHECK_EQ_INT(sw_dropout_cuda(&ctx, 0, dout + es * (size_t)off, out_t, add, dx + off, p, seed, call, which, first, n),
                 SW_OK);
    down(oh, dout + es * (size_t)off, es * (size_t)n);
    if (out_t == SW_F32) memcpy(got, oh, 4 * (size_t)n);
    else bf16_to_f32(got, oh, n);
    for (int64_t i = 0; i < n && !add; i++) {
        zeros += got[i] == 0.0f;
        mism += (got[i] == 0.0f) != (ref[i] == 0.0f);
    }
    report("dropout", cs, relerr(got, ref, n), out_t == SW_F32 ? 1e-6 : TOL_BF16);
    fprintf(stderr, "%-14s %-40s dropped %.4f of %lld, %lld mask mismatches\n", "dropout", cs,
            (double)zeros / (double)n, (long long)n, (long long)mism);
    CHECK_EQ_INT(mism, 0);
    dfree(dx), dfree(dout);
    free(xf), free(ref), free(got), free(xh), free(oh), free(base), free(bh);
}

/* ------------------------------------------------------- cross_entropy */

/* head_loss's arithmetic for one row (max, expf, double sum, log), with
 * the ignore rule of the CUDA op: target outside [0, V) -> 0, zero gradient. */
static float ce_ref_row(float *dl, const float *lg, int32_t y, float dscale, int64_t V) {
    if (y < 0 || y >= V) {
        for (int64_t v = 0; v < V; v++) dl[v] = 0.0f;
        return 0.0f;
    }
    float mx = lg[0];
    for (int64_t v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < V; v++) {
        float e = expf(lg[v] - mx);
        dl[v] = e;
        sum += e;
    }
    float k = (float)(dscale / sum);
    for (int64_t v = 0; v < V; v++) dl[v] *= k;
    dl[y] -= dscale;
    return (float)((double)mx + log(sum) - lg[y]);
}

static void test_ce(int64_t rows, int64_t V, bool grad, bool in_place, bool ignore_one) {
    char cs[80];
    snprintf(cs, sizeof cs, "rows=%lld V=%lld%s%s%s", (long long)rows, (long long)V, grad ? " grad" : "",
             in_place ? " in-place" : "", ignore_one ? " +ignored row" : "");
    const int64_t n = rows * V;
    const float dscale = 0.25f;
    float *lg = xmalloc(4 * (size_t)n), *dref = xmalloc(4 * (size_t)n), *got = xmalloc(4 * (size_t)n);
    float *lref = xmalloc(4 * (size_t)rows), *lgot = xmalloc(4 * (size_t)rows);
    int32_t *tg = xmalloc(4 * (size_t)rows);
    for (int64_t i = 0; i < n; i++) lg[i] = srand1(4.0f);
    for (int64_t r = 0; r < rows; r++) tg[r] = (int32_t)(urand() * (double)V);
    if (rows > 1) tg[rows - 1] = (int32_t)(V - 1); /* the last element of a row */
    if (ignore_one) tg[0] = -100;
    for (int64_t r = 0; r < rows; r++) lref[r] = ce_ref_row(dref + r * V, lg + r * V, tg[r], dscale, V);
    round_bf16(dref, n);

    float *dlg = dup_to_dev(lg, 4 * (size_t)n), *dloss = dalloc(4 * (size_t)rows);
    void *dt = dup_to_dev(tg, 4 * (size_t)rows);
    uint16_t *ddl = NULL;
    if (grad) {
        ddl = in_place ? (uint16_t *)dlg : dalloc(2 * (size_t)n);
        if (!in_place) poison(ddl, 2 * (size_t)n);
    }
    poison(dloss, 4 * (size_t)rows);
    CHECK_EQ_INT(sw_cross_entropy_cuda(&ctx, 0, dloss, ddl, dlg, dt, dscale, rows, V), SW_OK);
    down(lgot, dloss, 4 * (size_t)rows);
    report("cross_entropy", cs, relerr(lgot, lref, rows), TOL_F32);
    if (grad) {
        /* in place: row r at bf16 offset r * 2V (the first half of its float storage) */
        uint16_t *h = xmalloc(in_place ? 4 * (size_t)n : 2 * (size_t)n);
        down(h, ddl, in_place ? 4 * (size_t)n : 2 * (size_t)n);
        for (int64_t r = 0; r < rows; r++) bf16_to_f32(got + r * V, h + r * (in_place ? 2 * V : V), V);
        /* the softmax part apart from the -dscale spike, which would dominate the norm */
        float *tg_got = xmalloc(4 * (size_t)rows), *tg_ref = xmalloc(4 * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) {
            bool ok = tg[r] >= 0 && tg[r] < V;
            tg_got[r] = ok ? got[r * V + tg[r]] : 0.0f;
            tg_ref[r] = ok ? dref[r * V + tg[r]] : 0.0f;
            if (ok) got[r * V + tg[r]] = dref[r * V + tg[r]] = 0.0f;
        }
        report("cross_entropy dlogits", cs, relerr(got, dref, n), TOL_BF16);
        report("cross_entropy dlogits[tgt]", cs, relerr(tg_got, tg_ref, rows), TOL_BF16);
        free(h), free(tg_got), free(tg_ref);
        if (!in_place) dfree(ddl);
    }
    dfree(dlg), dfree(dloss), dfree(dt);
    free(lg), free(dref), free(got), free(lref), free(lgot), free(tg);
}

/* --------------------------------------------------------------- sumsq */

static void test_sumsq(int64_t n) {
    char cs[64];
    snprintf(cs, sizeof cs, "n=%lld", (long long)n);
    float *x = xmalloc(4 * (size_t)n);
    double ref = 0, got = NAN, again = NAN;
    for (int64_t i = 0; i < n; i++) {
        x[i] = srand1(3.0f);
        ref += (double)x[i] * x[i];
    }
    void *dx = dup_to_dev(x, 4 * (size_t)n);
    double *dout = dalloc(sizeof(double));
    poison(dout, sizeof(double));
    CHECK_EQ_INT(sw_sumsq_cuda(&ctx, 0, dout, dx, n), SW_OK);
    down(&got, dout, sizeof got);
    poison(dout, sizeof(double));
    CHECK_EQ_INT(sw_sumsq_cuda(&ctx, 0, dout, dx, n), SW_OK);
    down(&again, dout, sizeof again);
    double err = ref > 0 ? fabs(got - ref) / ref : fabs(got);
    report("sumsq", cs, err, 1e-10); /* double sums in another order */
    CHECK(!memcmp(&got, &again, sizeof got)); /* deterministic */
    dfree(dx), dfree(dout);
    free(x);
}

/* ------------------------------------------------------------ AdamW, SGD */

/* sw_optim_update's loops, copied, with g scaled first as sw_optim_clip does */
static void adamw_host(float *p, const float *g0, float *m, float *v, int64_t n, float gscale, double lr, double beta1,
                       double beta2, double eps_, double wd, int64_t step) {
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    float decay = (float)(1.0 - lr * wd), w1 = (float)(1.0 - beta1), b2 = (float)beta2, w2 = (float)(1.0 - beta2),
          step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)eps_;
    for (int64_t i = 0; i < n; i++) {
        float g = g0[i] * gscale;
        p[i] = p[i] * decay;
        m[i] = m[i] + w1 * (g - m[i]);
        v[i] = v[i] * b2 + w2 * (g * g);
        float denom = sqrtf(v[i]) / bc2s + eps;
        p[i] = p[i] + (-step_size) * (m[i] / denom);
    }
}

static void sgd_host(float *p, const float *g0, float *b, int64_t n, float gscale, double lr, double momentum, double wd_,
                     int64_t step) {
    float mu = (float)momentum, wd = (float)wd_, flr = (float)lr;
    for (int64_t i = 0; i < n; i++) {
        float g = g0[i] * gscale;
        float d = wd != 0 ? g + wd * p[i] : g;
        if (b) {
            b[i] = step == 1 ? d : b[i] * mu + d;
            d = b[i];
        }
        p[i] = p[i] - flr * d;
    }
}

static void test_adamw(int64_t n, int off) {
    char cs[64];
    const size_t bytes = 4 * (size_t)(n + off);
    float *p = xmalloc(4 * (size_t)n), *g = xmalloc(4 * (size_t)n), *m = xmalloc(4 * (size_t)n);
    float *v = xmalloc(4 * (size_t)n), *got = xmalloc(4 * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = srand1(0.1f), m[i] = 0, v[i] = 0;
    float *dp = dalloc(bytes), *dg = dalloc(bytes), *dm = dalloc(bytes), *dv = dalloc(bytes);
    up(dp + off, p, 4 * (size_t)n);
    up(dm + off, m, 4 * (size_t)n);
    up(dv + off, v, 4 * (size_t)n);
    for (int64_t step = 1; step <= 3; step++) {
        float gscale = step == 2 ? 0.37f : 1.0f;
        for (int64_t i = 0; i < n; i++) g[i] = srand1(1e-2f);
        up(dg + off, g, 4 * (size_t)n);
        adamw_host(p, g, m, v, n, gscale, 2e-4, 0.9, 0.999, 1e-8, 0.01, step);
        CHECK_EQ_INT(sw_adamw_cuda(&ctx, 0, dp + off, dg + off, dm + off, dv + off, n, gscale, 2e-4, 0.9, 0.999, 1e-8,
                                   0.01, step), SW_OK);
        snprintf(cs, sizeof cs, "n=%lld step %lld%s", (long long)n, (long long)step, off ? " misaligned" : "");
        down(got, dp + off, 4 * (size_t)n);
        report("adamw p", cs, relerr(got, p, n), TOL_OPT);
        down(got, dm + off, 4 * (size_t)n);
        report("adamw m", cs, relerr(got, m, n), TOL_OPT);
        down(got, dv + off, 4 * (size_t)n);
        report("adamw v", cs, relerr(got, v, n), TOL_OPT);
    }
    dfree(dp), dfree(dg), dfree(dm), dfree(dv);
    free(p), free(g), free(m), free(v), free(got);
}

static void test_sgd(int64_t n, double momentum, double wd) {
    char cs[80];
    float *p = xmalloc(4 * (size_t)n), *g = xmalloc(4 * (size_t)n), *b = xmalloc(4 * (size_t)n);
    float *got = xmalloc(4 * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = srand1(0.1f);
    float *dp = dup_to_dev(p, 4 * (size_t)n), *dg = dalloc(4 * (size_t)n), *db = NULL;
    if (momentum > 0) {
        db = dalloc(4 * (size_t)n);
        poison(db, 4 * (size_t)n); /* step 1 must not read it */
    }
    for (int64_t step = 1; step <= 3; step++) {
        float gscale = step == 3 ? 0.5f : 1.0f;
        for (int64_t i = 0; i < n; i++) g[i] = srand1(1.0f);
        up(dg, g, 4 * (size_t)n);
        sgd_host(p, g, momentum > 0 ? b : NULL, n, gscale, 0.05, momentum, wd, step);
        CHECK_EQ_INT(sw_sgd_cuda(&ctx, 0, dp, dg, db, n, gscale, 0.05, momentum, wd, step), SW_OK);
        snprintf(cs, sizeof cs, "n=%lld mu=%g wd=%g step %lld", (long long)n, momentum, wd, (long long)step);
        down(got, dp, 4 * (size_t)n);
        report("sgd p", cs, relerr(got, p, n), TOL_OPT);
        if (db) {
            down(got, db, 4 * (size_t)n);
            report("sgd buf", cs, relerr(got, b, n), TOL_OPT);
        }
    }
    dfree(dp), dfree(dg);
    if (db) dfree(db);
    free(p), free(g), free(b), free(got);
}

int main(void) {
    if (sw_cuda_device_count() == 0) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return 77;
    }
    sw_ctx_init(&ctx);
    char desc[160];
    if (sw_cuda_describe(&ctx, 0, desc, sizeof desc) == SW_OK) fprintf(stderr, "device: %s\n", desc);

    test_rmsnorm(1, 4096);
    test_rmsnorm(37, 896);
    test_rmsnorm(5, 1003); /* C % 8 != 0: scalar path */
    test_rmsnorm(3, 8192);

    const int64_t Ds[] = {16, 32, 64, 128};
    for (int d = 0; d < 4; d++)
        for (int il = 0; il < 2; il++)
            for (int inv = 0; inv < 2; inv++) test_rope(d == 0 ? 1 : 19, d == 3 ? 32 : 3, Ds[d], il, inv);
    test_rope(4, 1, 96, false, false);

    test_swiglu(1, 0);
    test_swiglu(7, 0);
    test_swiglu(8 * 4099 + 5, 0);
    test_swiglu(8 * 4099 + 5, 1);
    const bool small = getenv("SW_GPU_TEST_SMALL") != NULL;
    if (!small) test_swiglu(1 << 20, 0);

    test_embed(50, 9, 4096);
    test_embed(50, 1, 1001);
    test_embed(7, 13, 24);

    test_add_bias(5, 4096, 4096);
    test_add_bias(5, 1000, 1008); /* padded rows: columns past N untouched */
    test_add_bias(3, 1003, 1010);
    test_add_bias(1, 7, 7);

    test_residual_add(5, 4096, 4096);
    test_residual_add(37, 576, 576);
    test_residual_add(3, 1003, 1010); /* scalar path, padded rows untouched */
    test_residual_add(1, 7, 7);

    test_dropout(4096 * 3 + 5, 0.1f, 0, SW_BF16, false, 0);
    test_dropout(4096 * 3 + 5, 0.05f, 1, SW_BF16, false, 0);
    test_dropout(17, 0.5f, 0, SW_BF16, false, 0);
    test_dropout(4096 + 3, 0.1f, 0, SW_BF16, false, 5 * 4096); /* a later chunk of rows */
    test_dropout(4096 + 3, 0.1f, 1, SW_F32, true, 77);        /* the backward's dx += */
    test_dropout(4096 + 3, 0.2f, 0, SW_BF16, true, 0);

    test_ce(3, 151936, true, false, false);
    if (!small) test_ce(4, 151936, true, true, true);
    if (!small) test_ce(3, 151936, false, false, false);
    test_ce(5, 1001, true, false, true);   /* V % 4 != 0: scalar path */
    test_ce(5, 1001, true, true, false);   /* and in place */
    test_ce(1, 7, true, false, false);
    test_ce(64, 128, true, true, false);

    test_sumsq(0);
    test_sumsq(1);
    test_sumsq(1000003);
    if (!small) test_sumsq(40 << 20);

    test_adamw(100003, 0);
    test_adamw(1001, 1);
    test_sgd(100003, 0.9, 0.01);
    test_sgd(4097, 0.0, 0.0);
    test_sgd(33, 0.5, 0.0);

    CHECK_DONE();
}
#endif
