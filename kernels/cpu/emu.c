/* emu.c — the device engine's ops on host memory (see gpu_ops.h).
 *
 * Each op converts its bf16 operands to float32, calls the CPU reference
 * op, and rounds the result back to bf16 where the CUDA op stores bf16. The
 * engine (core/gpu_*.c) is written once against sw_gpu_ops; with this table
 * it runs on any machine, so its orchestration is tested against the CPU
 * training path without a GPU, and tests/gpu compares the CUDA table with
 * this one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../gpu_ops.h"
#include "../ops.h"
#include "../../core/lora.h"

#define DEV_UNUSED (void)dev

static float *f32buf(sw_ctx *ctx, int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) sw_err(ctx, SW_ENOMEM, "emulated device: %lld floats of scratch", (long long)n);
    return p;
}

static void to_f32(float *dst, const sw_bf16 *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = sw_bf16_to_f32(src[i]);
}

static void to_bf16(sw_bf16 *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = sw_f32_to_bf16(src[i]);
}

/* A stored matrix of `rows` rows, `cols` used columns, leading dimension ld,
 * of type t, as float32 with the same leading dimension. */
static float *matrix_f32(sw_ctx *ctx, const void *src, sw_dtype t, int64_t rows, int64_t cols, int64_t ld) {
    float *d = f32buf(ctx, rows * ld);
    if (!d) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        if (t == SW_F32) memcpy(d + r * ld, (const float *)src + r * ld, sizeof(float) * (size_t)cols);
        else to_f32(d + r * ld, (const sw_bf16 *)src + r * ld, cols);
    }
    return d;
}

sw_status sw_gemm_emu(sw_ctx *ctx, int dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const void *A, sw_dtype ab_t, int64_t lda, const void *B, int64_t ldb, float beta, void *C,
                      sw_dtype c_t, int64_t ldc) {
    DEV_UNUSED;
    float *a = matrix_f32(ctx, A, ab_t, ta ? K : M, ta ? M : K, lda);
    float *b = a ? matrix_f32(ctx, B, ab_t, tb ? N : K, tb ? K : N, ldb) : NULL;
    float *c = b ? (c_t == SW_F32 ? C : matrix_f32(ctx, C, c_t, M, N, ldc)) : NULL;
    if (!c) {
        free(a);
        free(b);
        return ctx->status;
    }
    if (beta == 0.0f) /* like BLAS: C is not read, so poison in it does not leak */
        for (int64_t r = 0; r < M; r++) memset(c + r * ldc, 0, sizeof(float) * (size_t)N);
    sw_sgemm_cpu(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    if (c_t != SW_F32) {
        for (int64_t r = 0; r < M; r++) to_bf16((sw_bf16 *)C + r * ldc, c + r * ldc, N);
        free(c);
    }
    free(a);
    free(b);
    return SW_OK;
}

sw_status sw_dequant_bf16_emu(sw_ctx *ctx, int dev, sw_bf16 *dst, const void *src, sw_dtype t, int64_t n) {
    DEV_UNUSED;
    float *f = f32buf(ctx, n);
    if (!f) return ctx->status;
    sw_dequant_cpu(f, src, t, n);
    to_bf16(dst, f, n);
    free(f);
    return SW_OK;
}

sw_status sw_nf4_dequant_bf16_emu(sw_ctx *ctx, int dev, sw_bf16 *dst, const uint8_t *codes, const float *absmax,
                                  int64_t n) {
    DEV_UNUSED;
    float *f = f32buf(ctx, n);
    if (!f) return ctx->status;
    sw_nf4_dequant_cpu(f, codes, absmax, n);
    to_bf16(dst, f, n);
    free(f);
    return SW_OK;
}

sw_status sw_nf4_quant_emu(sw_ctx *ctx, int dev, uint8_t *codes, float *absmax, const float *src, int64_t n) {
    (void)ctx;
    DEV_UNUSED;
    sw_nf4_quant_cpu(codes, absmax, src, n);
    return SW_OK;
}

sw_status sw_rmsnorm_fwd_emu(sw_ctx *ctx, int dev, sw_bf16 *y, float *rstd, const sw_bf16 *x, const float *w,
                             float eps, int64_t T, int64_t C) {
    DEV_UNUSED;
    float *f = f32buf(ctx, 2 * T * C);
    if (!f) return ctx->status;
    to_f32(f, x, T * C);
    sw_rmsnorm_fwd_cpu(f + T * C, rstd, f, w, eps, T, C);
    to_bf16(y, f + T * C, T * C);
    free(f);
    return SW_OK;
}

sw_status sw_rmsnorm_bwd_emu(sw_ctx *ctx, int dev, void *dx, sw_dtype dx_t, const void *dy, sw_dtype dy_t,
                             const sw_bf16 *x, const float *w, const float *rstd, int64_t T, int64_t C) {
    DEV_UNUSED;
    int64_t n = T * C;
    float *f = f32buf(ctx, 3 * n);
    if (!f) return ctx->status;
    float *xf = f, *dyf = f + n, *dxf = f + 2 * n;
    to_f32(xf, x, n);
    if (dy_t == SW_F32) memcpy(dyf, dy, sizeof(float) * (size_t)n);
    else to_f32(dyf, dy, n);
    if (dx_t == SW_F32) {
        sw_rmsnorm_bwd_cpu(dx, dyf, xf, w, rstd, T, C);
    } else {
        memset(dxf, 0, sizeof(float) * (size_t)n);
        sw_rmsnorm_bwd_cpu(dxf, dyf, xf, w, rstd, T, C);
        to_bf16(dx, dxf, n);
    }
    free(f);
    return SW_OK;
}

sw_status sw_rope_emu(sw_ctx *ctx, int dev, sw_bf16 *x, const int32_t *pos, const float *inv_freq, bool interleaved,
                      bool inverse, int64_t T, int64_t H, int64_t D) {
    DEV_UNUSED;
    int64_t n = T * H * D;
    float *f = f32buf(ctx, n);
    if (!f) return ctx->status;
    to_f32(f, x, n);
    if (inverse) sw_rope_bwd_cpu(f, pos, inv_freq, interleaved, T, H, D);
    else sw_rope_cpu(f, pos, inv_freq, interleaved, T, H, D);
    to_bf16(x, f, n);
    free(f);
    return SW_OK;
}

sw_status sw_swiglu_fwd_emu(sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *g, const sw_bf16 *u, int64_t n) {
    DEV_UNUSED;
    float *f = f32buf(ctx, 3 * n);
    if (!f) return ctx->status;
    to_f32(f, g, n);
    to_f32(f + n, u, n);
    sw_swiglu_cpu(f + 2 * n, f, f + n, n);
    to_bf16(out, f + 2 * n, n);
    free(f);
    return SW_OK;
}

sw_status sw_swiglu_bwd_emu(sw_ctx *ctx, int dev, sw_bf16 *dg, sw_bf16 *du, const sw_bf16 *da, const sw_bf16 *g,
                            const sw_bf16 *u, int64_t n) {
    DEV_UNUSED;
    float *f = f32buf(ctx, 5 * n);
    if (!f) return ctx->status;
    to_f32(f, da, n);
    to_f32(f + n, g, n);
    to_f32(f + 2 * n, u, n);
    sw_swiglu_bwd_cpu(f + 3 * n, f + 4 * n, f, f + n, f + 2 * n, n);
    to_bf16(dg, f + 3 * n, n);
    to_bf16(du, f + 4 * n, n);
    free(f);
    return SW_OK;
}

sw_status sw_embed_emu(sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *table, const int32_t *ids, int64_t T,
                       int64_t C) {
    (void)ctx;
    DEV_UNUSED;
    for (int64_t t = 0; t < T; t++) memcpy(out + t * C, table + (int64_t)ids[t] * C, sizeof(sw_bf16) * (size_t)C);
    return SW_OK;
}

/* y (T, N, stride ldy) += row t of x at x + t * xs (xs = 0: a bias) */
static void add_rows(sw_bf16 *y, const float *x, int64_t xs, int64_t T, int64_t N, int64_t ldy) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < N; j++)
            y[t * ldy + j] = sw_f32_to_bf16(sw_bf16_to_f32(y[t * ldy + j]) + x[t * xs + j]);
}

sw_status sw_add_bias_emu(sw_ctx *ctx, int dev, sw_bf16 *y, const float *b, int64_t T, int64_t N, int64_t ldy) {
    (void)ctx;
    DEV_UNUSED;
    add_rows(y, b, 0, T, N, ldy);
    return SW_OK;
}

sw_status sw_residual_add_emu(sw_ctx *ctx, int dev, sw_bf16 *y, const float *x, int64_t T, int64_t N, int64_t ldy) {
    (void)ctx;
    DEV_UNUSED;
    add_rows(y, x, N, T, N, ldy);
    return SW_OK;
}

sw_status sw_dropout_emu(sw_ctx *ctx, int dev, void *out, sw_dtype out_t, bool add, const sw_bf16 *x, float p,
                         uint64_t seed, uint64_t call, uint64_t which, uint64_t first, int64_t n) {
    DEV_UNUSED;
    if (out_t != SW_BF16 && out_t != SW_F32) return sw_err(ctx, SW_EINVAL, "dropout: out must be bf16 or f32");
    float keep = (float)(1.0 / (1.0 - p));
    uint64_t cut = (uint64_t)(p * 18446744073709551615.0);
    for (int64_t i = 0; i < n; i++) {
        float v = sw_hash4(seed, call, which, first + (uint64_t)i) < cut ? 0.0f : sw_bf16_to_f32(x[i]) * keep;
        if (out_t == SW_F32) {
            float *o = (float *)out + i;
            *o = add ? *o + v : v;
        } else {
            sw_bf16 *o = (sw_bf16 *)out + i;
            *o = sw_f32_to_bf16(add ? sw_bf16_to_f32(*o) + v : v);
        }
    }
    return SW_OK;
}

sw_status sw_cross_entropy_emu(sw_ctx *ctx, int dev, float *loss, sw_bf16 *dlogits, const float *logits,
                               const int32_t *target, float dscale, int64_t rows, int64_t V) {
    DEV_UNUSED;
    float *e = f32buf(ctx, V);
    if (!e) return ctx->status;
    for (int64_t r = 0; r < rows; r++) {
        const float *lg = logits + r * V;
        int32_t y = target[r];
        float mx = lg[0];
        for (int64_t v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
        double sum = 0;
        for (int64_t v = 0; v < V; v++) sum += (e[v] = expf(lg[v] - mx));
        loss[r] = y < 0 ? 0.0f : (float)((double)mx + log(sum) - lg[y]);
        if (!dlogits) continue;
        /* aliasing layout: row r's bf16 gradient lives at the start of row r's float storage */
        sw_bf16 *d = dlogits == (const void *)logits ? (sw_bf16 *)(logits + r * V) : dlogits + r * V;
        float k = (float)(dscale / sum);
        for (int64_t v = 0; v < V; v++) {
            float g = y < 0 ? 0.0f : e[v] * k - (v == y ? dscale : 0.0f);
            d[v] = sw_f32_to_bf16(g);
        }
    }
    free(e);
    return SW_OK;
}

sw_status sw_sumsq_emu(sw_ctx *ctx, int dev, double *out, const float *x, int64_t n) {
    (void)ctx;
    DEV_UNUSED;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    *out = s;
    return SW_OK;
}

/* The arithmetic of core/optim.c, element by element, with g scaled first. */
sw_status sw_adamw_emu(sw_ctx *ctx, int dev, float *p, const float *g, float *m, float *v, int64_t n, float gscale,
                       double lr, double beta1, double beta2, double eps, double wd, int64_t step) {
    (void)ctx;
    DEV_UNUSED;
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    float decay = (float)(1.0 - lr * wd), w1 = (float)(1.0 - beta1), b2 = (float)beta2, w2 = (float)(1.0 - beta2),
          step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), e = (float)eps;
    for (int64_t i = 0; i < n; i++) {
        float gi = gscale == 1.0f ? g[i] : g[i] * gscale;
        p[i] = p[i] * decay;
        m[i] = m[i] + w1 * (gi - m[i]);
        v[i] = v[i] * b2 + w2 * (gi * gi);
        float denom = sqrtf(v[i]) / bc2s + e;
        p[i] = p[i] + (-step_size) * (m[i] / denom);
    }
    return SW_OK;
}

sw_status sw_sgd_emu(sw_ctx *ctx, int dev, float *p, const float *g, float *buf, int64_t n, float gscale, double lr,
                     double momentum, double wd, int64_t step) {
    (void)ctx;
    DEV_UNUSED;
    float mu = (float)momentum, fwd = (float)wd, flr = (float)lr;
    for (int64_t i = 0; i < n; i++) {
        float gi = gscale == 1.0f ? g[i] : g[i] * gscale;
        float d = fwd != 0 ? gi + fwd * p[i] : gi;
        if (buf) {
            buf[i] = step == 1 ? d : buf[i] * mu + d;
            d = buf[i];
        }
        p[i] = p[i] - flr * d;
    }
    return SW_OK;
}

/* ---- attention: the CPU reference one sample at a time; lse (Hq, T) here
 * against (Hq, len) per sample there. */

static sw_status attn_unpack(sw_ctx *ctx, float **f, const sw_bf16 *q, const sw_bf16 *k, const sw_bf16 *v,
                             int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t extra) {
    int64_t nq = T * Hq * D, nk = T * Hkv * D;
    *f = f32buf(ctx, nq + 2 * nk + extra);
    if (!*f) return ctx->status;
    to_f32(*f, q, nq);
    to_f32(*f + nq, k, nk);
    to_f32(*f + nq + nk, v, nk);
    return SW_OK;
}

sw_status sw_attn_fwd_emu(sw_ctx *ctx, int dev, sw_bf16 *out, float *lse, const sw_bf16 *q, const sw_bf16 *k,
                          const sw_bf16 *v, const int32_t *cu, int n_seqs, int64_t max_len, int64_t T, int64_t window,
                          int64_t Hq, int64_t Hkv, int64_t D) {
    DEV_UNUSED;
    int64_t nq = T * Hq * D, nk = T * Hkv * D;
    float *f;
    if (attn_unpack(ctx, &f, q, k, v, T, Hq, Hkv, D, nq + Hq * max_len + 2 * max_len * max_len)) return ctx->status;
    float *qf = f, *kf = f + nq, *vf = kf + nk, *of = vf + nk, *l = of + nq, *S = l + Hq * max_len;
    for (int s = 0; s < n_seqs; s++) {
        int64_t a = cu[s], len = cu[s + 1] - a;
        if (len <= 0) continue;
        sw_attention_fwd_cpu(of + a * Hq * D, l, qf + a * Hq * D, kf + a * Hkv * D, vf + a * Hkv * D, S, len, window,
                             Hq, Hkv, D);
        for (int64_t h = 0; h < Hq; h++) memcpy(lse + h * T + a, l + h * len, sizeof(float) * (size_t)len);
    }
    to_bf16(out, of, nq);
    free(f);
    return SW_OK;
}

sw_status sw_attn_bwd_emu(sw_ctx *ctx, int dev, sw_bf16 *dq, sw_bf16 *dk, sw_bf16 *dv, const sw_bf16 *dout,
                          const sw_bf16 *out, const float *lse, const sw_bf16 *q, const sw_bf16 *k, const sw_bf16 *v,
                          const int32_t *cu, int n_seqs, int64_t max_len, int64_t T, int64_t window, int64_t Hq,
                          int64_t Hkv, int64_t D, void *ws) {
    DEV_UNUSED;
    (void)ws;
    int64_t nq = T * Hq * D, nk = T * Hkv * D;
    float *f;
    if (attn_unpack(ctx, &f, q, k, v, T, Hq, Hkv, D, 3 * nq + 2 * nk + Hq * max_len + 2 * max_len * max_len))
        return ctx->status;
    float *qf = f, *kf = f + nq, *vf = kf + nk, *of = vf + nk, *dof = of + nq, *dqf = dof + nq, *dkf = dqf + nq,
          *dvf = dkf + nk, *l = dvf + nk, *S = l + Hq * max_len;
    to_f32(of, out, nq);
    to_f32(dof, dout, nq);
    memset(dqf, 0, sizeof(float) * (size_t)(nq + 2 * nk));
    for (int s = 0; s < n_seqs; s++) {
        int64_t a = cu[s], len = cu[s + 1] - a;
        if (len <= 0) continue;
        for (int64_t h = 0; h < Hq; h++) memcpy(l + h * len, lse + h * T + a, sizeof(float) * (size_t)len);
        sw_attention_bwd_cpu(dqf + a * Hq * D, dkf + a * Hkv * D, dvf + a * Hkv * D, dof + a * Hq * D,
                             of + a * Hq * D, l, qf + a * Hq * D, kf + a * Hkv * D, vf + a * Hkv * D, S, len, window,
                             Hq, Hkv, D);
    }
    to_bf16(dq, dqf, nq);
    to_bf16(dk, dkf, nk);
    to_bf16(dv, dvf, nk);
    free(f);
    return SW_OK;
}

#define SW_GPU_ENTRY(name, args) .name = sw_##name##_emu,
const sw_gpu_ops sw_gpu_ops_emu = {SW_GPU_OPS(SW_GPU_ENTRY)};
#undef SW_GPU_ENTRY
