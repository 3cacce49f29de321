/* test_gpu_gemm.c — the engine's GEMM and weight decoders on a real GPU
 * against the CPU references (gpu_ops.h: gemm, dequant_bf16,
 * nf4_dequant_bf16, nf4_quant), then their speed on Llama-sized shapes.
 * Exits 77 (ctest: skipped) where the build has no CUDA or no GPU answers.
 *
 * GEMM: every ta/tb, odd sizes, padded leading dimensions, a misaligned
 * operand, alpha != 1, beta 0 (on a NaN-poisoned C, which must not be read)
 * and 1, for bf16->bf16, bf16->f32 and f32->f32; the reference is
 * sw_sgemm_cpu on the same (bf16-rounded) inputs. Tolerances on
 * ||C - ref|| / ||ref||: bf16 output 1e-2 (its own rounding is 2^-9 per
 * element), f32 output from bf16 inputs 1e-4 and f32 1e-5 (only summation
 * order differs: both accumulate in f32, no TF32). Padding between rows of
 * C must come back untouched.
 *
 * Decoders: exact equality of bit patterns with bf16(sw_dequant_cpu) /
 * bf16(sw_nf4_dequant_cpu) on random bytes (fp16 scale fields kept finite),
 * at aligned and misaligned addresses; NF4 quantization bit-exact in codes
 * and absmax on 1M normals plus blocks built to hit the edge cases.
 * SW_GPU_TEST_SMALL=1 (tests/gpu/run under compute-sanitizer) or
 * SW_TEST_NO_BENCH=1 skip the timings, whose shapes take minutes there. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/check.h"

#ifndef SW_HAVE_CUDA
int main(void) {
    fprintf(stderr, "built without CUDA: skipped\n");
    return 77;
}
#else

#include "kernels/cuda_backend.h"
/* gpu_ops.h's header comment names the .cu files with a glob, which -Wcomment
 * reads as a nested comment opener; harmless, silenced for that header. */
#include "kernels/gpu_ops.h"
#include "kernels/ops.h"

static sw_ctx ctx;
enum { DEV = 0 };

/* ---------------------------------------------------------- helpers */

static uint64_t rng = 0x1234567887654321ull;
static uint64_t next_u64(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0; }
static float normal(void) { return (float)(sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif())); }

static void *dmalloc(size_t bytes) {
    void *p = NULL;
    if (sw_cuda_malloc(&ctx, DEV, bytes, &p) != SW_OK) {
        fprintf(stderr, "device allocation of %zu bytes: %s\n", bytes, ctx.msg);
        exit(1);
    }
    return p;
}
static void up(void *d, const void *h, size_t bytes) { CHECK_EQ_INT(sw_cuda_memcpy(&ctx, DEV, d, -1, h, bytes, 0), SW_OK); }
static void down(void *h, const void *d, size_t bytes) { CHECK_EQ_INT(sw_cuda_memcpy(&ctx, -1, h, DEV, d, bytes, 1), SW_OK); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float round_bf16(float x) { return sw_bf16_to_f32(sw_f32_to_bf16(x)); }

/* ------------------------------------------------------------- GEMM */

typedef struct {
    bool ta, tb;
    int64_t M, N, K, pad; /* pad: extra elements per row of A, B and C */
    float alpha, beta;
    sw_dtype ab_t, c_t;
    int a_off; /* A starts this many elements into its buffer (misaligned) */
} gcase;

/* Stores n floats of a host matrix as t (bf16 or f32) into a byte buffer. */
static void pack(void *dst, const float *src, size_t n, sw_dtype t) {
    if (t == SW_F32) memcpy(dst, src, n * 4);
    else
        for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = sw_f32_to_bf16(src[i]);
}

static double worst[3]; /* largest relative error seen: bf16->bf16, bf16->f32, f32->f32 */

static void run_gemm_case(const gcase *c) {
    int64_t ar = c->ta ? c->K : c->M, ac = c->ta ? c->M : c->K; /* A as stored */
    int64_t br = c->tb ? c->N : c->K, bc = c->tb ? c->K : c->N;
    int64_t lda = ac + c->pad, ldb = bc + c->pad, ldc = c->N + c->pad;
    size_t na = (size_t)(ar * lda) + (size_t)c->a_off, nb = (size_t)(br * ldb), nc = (size_t)(c->M * ldc);
    size_t es_ab = c->ab_t == SW_F32 ? 4 : 2, es_c = c->c_t == SW_F32 ? 4 : 2;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *ref = malloc(nc * 4);
    /* Padding holds large values: any use of it would show in the error. */
    for (size_t i = 0; i < na; i++) A[i] = 1000.0f;
    for (size_t i = 0; i < nb; i++) B[i] = 1000.0f;
    for (int64_t i = 0; i < ar; i++)
        for (int64_t j = 0; j < ac; j++) A[(size_t)c->a_off + (size_t)(i * lda + j)] = normal();
    for (int64_t i = 0; i < br; i++)
        for (int64_t j = 0; j < bc; j++) B[i * ldb + j] = normal();
    for (size_t i = 0; i < nc; i++) C[i] = normal();
    if (c->ab_t == SW_BF16) {
        for (size_t i = 0; i < na; i++) A[i] = round_bf16(A[i]);
        for (size_t i = 0; i < nb; i++) B[i] = round_bf16(B[i]);
    }
    if (c->c_t == SW_BF16)
        for (size_t i = 0; i < nc; i++) C[i] = round_bf16(C[i]);

    uint8_t *hA = malloc(na * es_ab), *hB = malloc(nb * es_ab), *hC = malloc(nc * es_c), *hC0 = malloc(nc * es_c);
    pack(hA, A, na, c->ab_t);
    pack(hB, B, nb, c->ab_t);
    pack(hC, C, nc, c->c_t);
    if (c->beta == 0) /* poison the product area: beta 0 must not read it */
        for (int64_t i = 0; i < c->M; i++)
            for (int64_t j = 0; j < c->N; j++) {
                size_t k = (size_t)(i * ldc + j);
                if (c->c_t == SW_F32) ((uint32_t *)hC)[k] = 0x7fc00000u;
                else ((uint16_t *)hC)[k] = 0x7fc0u;
            }
    memcpy(hC0, hC, nc * es_c);
    void *dA = dmalloc(na * es_ab), *dB = dmalloc(nb * es_ab), *dC = dmalloc(nc * es_c);
    up(dA, hA, na * es_ab);
    up(dB, hB, nb * es_ab);
    up(dC, hC, nc * es_c);

    memcpy(ref, C, nc * 4);
    sw_sgemm_cpu(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A + c->a_off, lda, B, ldb, c->beta, ref, ldc);

    const void *dAv = (const uint8_t *)dA + (size_t)c->a_off * es_ab;
    CHECK_EQ_INT(sw_gemm_cuda(&ctx, DEV, c->ta, c->tb, c->M, c->N, c->K, c->alpha, dAv, c->ab_t, lda, dB, ldb,
                              c->beta, dC, c->c_t, ldc),
                 SW_OK);
    down(hC, dC, nc * es_c);

    double num = 0, den = 0;
    int bad_pad = 0, nan = 0;
    for (int64_t i = 0; i < c->M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            size_t k = (size_t)(i * ldc + j);
            if (j >= c->N) { /* padding: untouched */
                bad_pad += memcmp(hC + k * es_c, hC0 + k * es_c, es_c) != 0;
                continue;
            }
            double g = c->c_t == SW_F32 ? ((float *)hC)[k] : sw_bf16_to_f32(((uint16_t *)hC)[k]);
            nan += isnan(g);
            num += (g - ref[k]) * (g - ref[k]);
            den += (double)ref[k] * ref[k];
        }
    double rel = sqrt(num / (den > 0 ? den : 1));
    double tol = c->c_t == SW_BF16 ? 1e-2 : c->ab_t == SW_BF16 ? 1e-4 : 1e-5;
    bool ok = rel <= tol && !nan && !bad_pad;
    int w = c->c_t == SW_BF16 ? 0 : c->ab_t == SW_BF16 ? 1 : 2;
    if (rel > worst[w]) worst[w] = rel;
    if (!ok || getenv("SW_TEST_VERBOSE"))
        fprintf(stderr, "gemm ta=%d tb=%d M=%lld N=%lld K=%lld pad=%lld off=%d alpha=%g beta=%g %s->%s: rel %.3g "
                        "(tol %g) nan %d pad-changed %d\n",
                c->ta, c->tb, (long long)c->M, (long long)c->N, (long long)c->K, (long long)c->pad, c->a_off,
                c->alpha, c->beta, sw_dtype_name(c->ab_t), sw_dtype_name(c->c_t), rel, tol, nan, bad_pad);
    CHECK(ok);

    /* The same call again takes the cached plan and gives the same bits. */
    if (c->beta == 0) {
        uint8_t *again = malloc(nc * es_c);
        CHECK_EQ_INT(sw_gemm_cuda(&ctx, DEV, c->ta, c->tb, c->M, c->N, c->K, c->alpha, dAv, c->ab_t, lda, dB, ldb,
                                  c->beta, dC, c->c_t, ldc),
                     SW_OK);
        down(again, dC, nc * es_c);
        CHECK(!memcmp(again, hC, nc * es_c));
        free(again);
    }
    sw_cuda_free(DEV, dA);
    sw_cuda_free(DEV, dB);
    sw_cuda_free(DEV, dC);
    free(A), free(B), free(C), free(ref), free(hA), free(hB), free(hC), free(hC0);
}

static void test_gemm(void) {
    const sw_dtype types[3][2] = {{SW_BF16, SW_BF16}, {SW_BF16, SW_F32}, {SW_F32, SW_F32}};
    const int64_t shapes[][3] = {{37, 5, 129}, {5, 37, 3}, {130, 67, 257}, {256, 384, 512}};
    int ncase = 0;
    for (int ty = 0; ty < 3; ty++)
        for (int s = 0; s < 4; s++)
            for (int t = 0; t < 4; t++)
                for (int be = 0; be < 2; be++) {
                    gcase c = {.ta = t & 1, .tb = t >> 1, .M = shapes[s][0], .N = shapes[s][1], .K = shapes[s][2],
                               .pad = (s + t) % 3 == 0 ? 0 : 3 + s, .alpha = be ? -0.75f : 1.25f,
                               .beta = be ? 1.0f : 0.0f, .ab_t = types[ty][0], .c_t = types[ty][1],
                               .a_off = (s == 2 && be) ? 1 : 0};
                    run_gemm_case(&c);
                    ncase++;
                }
    /* K == 0: C = beta C. */
    gcase z = {.M = 7, .N = 9, .K = 0, .pad = 2, .alpha = 1, .beta = 0.5f, .ab_t = SW_BF16, .c_t = SW_F32};
    run_gemm_case(&z);
    z.beta = 0;
    z.c_t = SW_BF16;
    run_gemm_case(&z);
    fprintf(stderr, "gemm: %d cases against sw_sgemm_cpu; worst relative error bf16->bf16 %.2g (tol 1e-2), "
                    "bf16->f32 %.2g (1e-4), f32->f32 %.2g (1e-5)\n", ncase + 2, worst[0], worst[1], worst[2]);
    /* f32 inputs with a bf16 output are refused, not miscomputed. */
    CHECK_EQ_INT(sw_gemm_cuda(&ctx, DEV, false, false, 4, 4, 4, 1, NULL, SW_F32, 4, NULL, 4, 0, NULL, SW_BF16, 4),
                 SW_EUNSUPPORTED);
}

/* ---------------------------------------------------------- dequant */

/* Forces the fp16 at p to be finite (exponent field below 31). */
static void finite_half(uint8_t *p) {
    if ((p[1] & 0x7c) == 0x7c) p[1] &= (uint8_t)~0x40;
}

static void test_dequant(void) {
    const sw_dtype types[] = {SW_F32, SW_F16, SW_BF16, SW_Q8_0, SW_Q4_0, SW_Q4_1, SW_Q4_K, SW_Q5_K, SW_Q6_K};
    const int offs[][2] = {{0, 0}, {1, 1}, {4, 0}, {2, 8}}; /* source byte offset, destination element offset */
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        sw_dtype t = types[ti];
        const sw_dtype_info *di = sw_dtype_info_of(t);
        int64_t n = di->block == 1 ? 8 * 4099 + 5 : (int64_t)di->block * 4099; /* plain types: a tail too */
        size_t bytes = sw_dtype_row_bytes(t, n);
        uint8_t *src = malloc(bytes + 16);
        for (size_t i = 0; i < bytes; i++) src[i] = (uint8_t)next_u64();
        /* fp16 scale fields finite; random bytes elsewhere, the plain types'
         * NaN and inf included */
        for (int64_t b = 0; b < n / di->block; b++) {
            uint8_t *blk = src + b * di->block_bytes;
            switch (t) {
            case SW_Q8_0: case SW_Q4_0: finite_half(blk); break;
            case SW_Q4_1: case SW_Q4_K: case SW_Q5_K: finite_half(blk), finite_half(blk + 2); break;
            case SW_Q6_K: finite_half(blk + 208); break;
            default: break;
            }
        }
        float *f = malloc((size_t)n * 4);
        uint16_t *want = malloc((size_t)n * 2), *got = malloc((size_t)n * 2);
        sw_dequant_cpu(f, src, t, n);
        for (int64_t i = 0; i < n; i++) want[i] = sw_f32_to_bf16(f[i]);
        uint8_t *dsrc = dmalloc(bytes + 16);
        uint16_t *ddst = dmalloc((size_t)n * 2 + 32);
        for (size_t o = 0; o < sizeof offs / sizeof *offs; o++) {
            up(dsrc + offs[o][0], src, bytes);
            CHECK_EQ_INT(sw_cuda_memset0(&ctx, DEV, ddst, (size_t)n * 2 + 32), SW_OK);
            CHECK_EQ_INT(sw_dequant_bf16_cuda(&ctx, DEV, ddst + offs[o][1], dsrc + offs[o][0], t, n), SW_OK);
            down(got, ddst + offs[o][1], (size_t)n * 2);
            int64_t bad = -1;
            for (int64_t i = 0; i < n && bad < 0; i++)
                if (got[i] != want[i]) bad = i;
            if (bad >= 0)
                fprintf(stderr, "dequant %s (src+%d, dst+%d): element %lld is %04x, want %04x\n", di->name,
                        offs[o][0], offs[o][1], (long long)bad, got[bad], want[bad]);
            CHECK(bad < 0);
        }
        sw_cuda_free(DEV, dsrc);
        sw_cuda_free(DEV, ddst);
        free(src), free(f), free(want), free(got);
    }
    fprintf(stderr, "dequant: %zu types, exact\n", sizeof types / sizeof *types);
}

static void test_nf4(void) {
    enum { N = 1 << 20, NB = N / SW_NF4_BLOCK };
    /* Dequant: random codes, scales from |N(0,1)| with a few zeros. */
    uint8_t *codes = malloc(N / 2), *gcodes = malloc(N / 2);
    float *absmax = malloc(NB * 4), *gabsmax = malloc(NB * 4), *f = malloc((size_t)N * 4);
    uint16_t *want = malloc((size_t)N * 2), *got = malloc((size_t)N * 2);
    for (int i = 0; i < N / 2; i++) codes[i] = (uint8_t)next_u64();
    for (int i = 0; i < NB; i++) absmax[i] = i % 97 == 0 ? 0.0f : fabsf(normal()) * 0.05f;
    sw_nf4_dequant_cpu(f, codes, absmax, N);
    for (int i = 0; i < N; i++) want[i] = sw_f32_to_bf16(f[i]);
    uint8_t *dcodes = dmalloc(N / 2 + 4);
    float *dabsmax = dmalloc(NB * 4), *dsrc = dmalloc((size_t)N * 4 + 16);
    uint16_t *ddst = dmalloc((size_t)N * 2 + 16);
    for (int o = 0; o < 2; o++) { /* aligned, then codes and dst off their natural alignment */
        up(dcodes + o, codes, N / 2);
        up(dabsmax, absmax, NB * 4);
        CHECK_EQ_INT(sw_nf4_dequant_bf16_cuda(&ctx, DEV, ddst + o, dcodes + o, dabsmax, N), SW_OK);
        down(got, ddst + o, (size_t)N * 2);
        CHECK(!memcmp(got, want, (size_t)N * 2));
    }

    /* Quant: 1M normals, then edge blocks overwritten at the front. */
    float *x = f;
    for (int i = 0; i < N; i++) x[i] = normal() * 0.02f;
    float mid[15];
    for (int i = 0; i < 15; i++) mid[i] = (sw_nf4_table[i] + sw_nf4_table[i + 1]) * 0.5f;
    float *blk = x;
    for (int i = 0; i < 64; i++) blk[i] = 0.0f; /* all zero: codes 7 */
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = i == 0 ? 1.0f : (i & 1 ? -1 : 1) * mid[i % 15]; /* exact ties */
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = (i % 15 - 7) * 0.1f; /* repeated values, -0 included below */
    blk[3] = -0.0f;
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = normal();
    blk[5] = INFINITY; /* absmax inf: 1/inf = 0, finite -> code 7, inf * 0 = NaN -> code 0 */
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = normal();
    blk[9] = NAN; /* NaN: ignored by the max, code 0 */
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = normal() * 1e-39f; /* subnormal absmax: 1/m overflows */
    blk += 64;
    for (int i = 0; i < 64; i++) blk[i] = NAN; /* all NaN: absmax 0, codes 7 */
    sw_nf4_quant_cpu(codes, absmax, x, N);
    for (int o = 0; o < 2; o++) { /* aligned, then src 4 bytes and codes 1 byte off */
        up((uint8_t *)dsrc + 4 * o, x, (size_t)N * 4);
        CHECK_EQ_INT(sw_cuda_memset0(&ctx, DEV, dcodes, N / 2 + 4), SW_OK);
        CHECK_EQ_INT(sw_nf4_quant_cuda(&ctx, DEV, dcodes + o, dabsmax, (const float *)((uint8_t *)dsrc + 4 * o), N),
                     SW_OK);
        down(gcodes, dcodes + o, N / 2);
        down(gabsmax, dabsmax, NB * 4);
        int64_t bc = -1, ba = -1;
        for (int i = 0; i < N / 2 && bc < 0; i++)
            if (gcodes[i] != codes[i]) bc = i;
        for (int i = 0; i < NB && ba < 0; i++)
            if (memcmp(&gabsmax[i], &absmax[i], 4)) ba = i;
        if (bc >= 0) fprintf(stderr, "nf4 quant: code byte %lld is %02x, want %02x\n", (long long)bc, gcodes[bc], codes[bc]);
        if (ba >= 0) fprintf(stderr, "nf4 quant: absmax %lld is %a, want %a\n", (long long)ba, gabsmax[ba], absmax[ba]);
        CHECK(bc < 0 && ba < 0);
    }
    fprintf(stderr, "nf4: dequant and quant of %d values, exact\n", N);
    sw_cuda_free(DEV, dcodes);
    sw_cuda_free(DEV, dabsmax);
    sw_cuda_free(DEV, dsrc);
    sw_cuda_free(DEV, ddst);
    free(codes), free(gcodes), free(absmax), free(gabsmax), free(f), free(want), free(got);
}

/* ------------------------------------------------------------ speed */

static void bench(void) {
    /* A Llama-3-8B MLP down projection over 8192 tokens: (8192 x 14336) by
     * (14336 x 4096), in the three layouts of forward, input gradient and
     * weight gradient. Random data: zeros run faster than real weights.
     * Host timing over 10 queued calls, after 2 warm-ups (plan creation). */
    const int64_t M = 8192, N = 4096, K = 14336;
    size_t big = (size_t)(M > N ? M : N) * (size_t)K;
    float *tmp = dmalloc(big * 4);
    uint16_t *A = dmalloc((size_t)M * K * 2), *B = dmalloc((size_t)N * K * 2), *C = dmalloc((size_t)M * N * 2);
    CHECK_EQ_INT(sw_randn_cuda(&ctx, tmp, 1, 0, 1.0f, (int64_t)big, DEV), SW_OK);
    CHECK_EQ_INT(sw_convert_cuda(&ctx, A, SW_BF16, tmp, SW_F32, M * K, DEV), SW_OK);
    CHECK_EQ_INT(sw_convert_cuda(&ctx, B, SW_BF16, tmp, SW_F32, N * K, DEV), SW_OK);
    /* The fourth is the engine's gradient accumulation: f32 C, beta 1. */
    float *C32 = dmalloc((size_t)M * N * 4);
    CHECK_EQ_INT(sw_cuda_memset0(&ctx, DEV, C32, (size_t)M * N * 4), SW_OK);
    const struct { bool ta, tb; float beta; sw_dtype c_t; const char *what; } lay[] = {
        {false, true, 0, SW_BF16, "x W^T (fwd)"},
        {false, false, 0, SW_BF16, "dy W (dx)"},
        {true, false, 0, SW_BF16, "dy^T x (dW)"},
        {true, false, 1, SW_F32, "dW += f32"}};
    for (int l = 0; l < 4; l++) {
        /* shapes kept at M x N x K: C (M,N) from A (M,K) or (K,M), B (N,K) or (K,N) */
        int64_t lda = lay[l].ta ? M : K, ldb = lay[l].tb ? K : N;
        void *Cl = lay[l].c_t == SW_F32 ? (void *)C32 : (void *)C;
        const int reps = 10;
        for (int r = 0; r < 2; r++)
            sw_gemm_cuda(&ctx, DEV, lay[l].ta, lay[l].tb, M, N, K, 1, A, SW_BF16, lda, B, ldb, lay[l].beta, Cl,
                         lay[l].c_t, N);
        sw_cuda_sync(&ctx, DEV);
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            CHECK_EQ_INT(sw_gemm_cuda(&ctx, DEV, lay[l].ta, lay[l].tb, M, N, K, 1, A, SW_BF16, lda, B, ldb,
                                      lay[l].beta, Cl, lay[l].c_t, N),
                         SW_OK);
        CHECK_EQ_INT(sw_cuda_sync(&ctx, DEV), SW_OK);
        double dt = (now_s() - t0) / reps;
        fprintf(stderr, "timing: gemm bf16 %lldx%lldx%lld %-12s %.3f ms, %.0f TFLOP/s\n", (long long)M, (long long)N,
                (long long)K, lay[l].what, dt * 1e3, 2.0 * M * N * K / dt / 1e12);
    }
    sw_cuda_free(DEV, C32);
    sw_cuda_free(DEV, A);
    sw_cuda_free(DEV, B);
    sw_cuda_free(DEV, C);

    /* Decoding one 14336 x 4096 weight: NF4, then q4_k and q8_0 (random
     * bytes; the timing does not depend on the values). GB/s counts bytes
     * read plus bytes written. */
    const int64_t n = 14336 * 4096;
    uint16_t *out = dmalloc((size_t)n * 2);
    /* tmp's bytes [0, 1.07n) hold any of the encodings, [n, 1.07n) the NF4
     * absmax, [2n, 6n) the quantizer's f32 input. */
    uint8_t *w = (uint8_t *)tmp;
    float *am = (float *)(w + n);
    const struct { sw_dtype t; const char *name; } dq[] = {{SW_NF4, "nf4"}, {SW_Q4_K, "q4_k"}, {SW_Q8_0, "q8_0"},
                                                            {SW_Q6_K, "q6_k"}};
    for (int k = 0; k < 4; k++) {
        double in_bytes = dq[k].t == SW_NF4 ? n / 2.0 + n / 16.0 : (double)sw_dtype_row_bytes(dq[k].t, n);
        if (dq[k].t == SW_NF4) /* finite scales so the decoder does ordinary work */
            CHECK_EQ_INT(sw_fill_cuda(&ctx, am, SW_F32, 0.01, n / 64, DEV), SW_OK);
        const int reps = 20;
        double t0 = 0;
        for (int r = -2; r < reps; r++) {
            if (r == 0) {
                sw_cuda_sync(&ctx, DEV);
                t0 = now_s();
            }
            sw_status st = dq[k].t == SW_NF4 ? sw_nf4_dequant_bf16_cuda(&ctx, DEV, out, w, am, n)
                                            : sw_dequant_bf16_cuda(&ctx, DEV, out, w, dq[k].t, n);
            CHECK_EQ_INT(st, SW_OK);
        }
        CHECK_EQ_INT(sw_cuda_sync(&ctx, DEV), SW_OK);
        double dt = (now_s() - t0) / reps;
        fprintf(stderr, "timing: dequant %-5s 14336x4096 -> bf16 %.1f us, %.0f GB/s\n", dq[k].name, dt * 1e6,
                (in_bytes + 2.0 * n) / dt / 1e9);
    }
    {
        const int reps = 10;
        double t0 = 0;
        for (int r = -2; r < reps; r++) {
            if (r == 0) {
                sw_cuda_sync(&ctx, DEV);
                t0 = now_s();
            }
            CHECK_EQ_INT(sw_nf4_quant_cuda(&ctx, DEV, (uint8_t *)out, am, tmp + n / 2, n), SW_OK);
        }
        CHECK_EQ_INT(sw_cuda_sync(&ctx, DEV), SW_OK);
        double dt = (now_s() - t0) / reps;
        fprintf(stderr, "timing: nf4 quant 14336x4096 f32 %.1f us, %.0f GB/s\n", dt * 1e6,
                (4.0 * n + n / 2.0 + n / 16.0) / dt / 1e9);
    }
    sw_cuda_free(DEV, out);
    sw_cuda_free(DEV, tmp);
}

int main(void) {
    if (sw_cuda_device_count() == 0) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return 77;
    }
    sw_ctx_init(&ctx);
    char desc[160];
    if (sw_cuda_describe(&ctx, DEV, desc, sizeof desc) == SW_OK) fprintf(stderr, "device: %s\n", desc);
    test_gemm();
    test_dequant();
    test_nf4();
    if (!getenv("SW_TEST_NO_BENCH") && !getenv("SW_GPU_TEST_SMALL")) bench();
    CHECK_DONE();
}
#endif
