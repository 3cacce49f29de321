/* test_backward.c — every training op's backward against central finite
 * differences, and the whole model's LoRA gradients on a tiny random
 * config (GQA, q/k norms, biases, sliding window, two packed samples).
 * Loss functions are random projections of the op outputs, computed in
 * double, so each check covers the full Jacobian, not one row of it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/lora.h"
#include "core/model.h"
#include "core/train.h"
#include "kernels/ops.h"

static float frand(uint64_t *s) { /* uniform in [-1, 1) */
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

static void fill(float *x, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * frand(&seed);
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* max |analytic - numeric| / max |numeric| over n inputs. */
static double rel_err(const float *ana, const double *num, int64_t n) {
    double e = 0, m = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs(ana[i] - num[i]));
        m = fmax(m, fabs(num[i]));
    }
    return e / m;
}

enum { T = 7, C = 16, H = 4, KV = 2, D = 8 };

static void test_rmsnorm(void) {
    float x[T * C], w[C], y[T * C], r[T], g[T * C], dx[T * C] = {0};
    double num[T * C];
    fill(x, T * C, 1, 1.0f);
    fill(w, C, 2, 1.0f);
    fill(g, T * C, 3, 1.0f);
    sw_rmsnorm_fwd_cpu(y, r, x, w, 1e-5f, T, C);
    sw_rmsnorm_bwd_cpu(dx, g, x, w, r, T, C);
    for (int i = 0; i < T * C; i++) {
        float keep = x[i], h = 1e-3f;
        x[i] = keep + h;
        sw_rmsnorm_fwd_cpu(y, r, x, w, 1e-5f, T, C);
        double up = dot(y, g, T * C);
        x[i] = keep - h;
        sw_rmsnorm_fwd_cpu(y, r, x, w, 1e-5f, T, C);
        num[i] = (up - dot(y, g, T * C)) / (2 * h);
        x[i] = keep;
    }
    CHECK(rel_err(dx, num, T * C) < 2e-3);
}

static void test_rope_and_swiglu(void) {
    float x[T * H * D], g[T * H * D], inv[D / 2];
    int32_t pos[T] = {0, 1, 2, 5, 0, 1, 9};
    fill(x, T * H * D, 4, 1.0f);
    fill(g, T * H * D, 5, 1.0f);
    for (int i = 0; i < D / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / D);
    for (int inter = 0; inter < 2; inter++) {
        /* rope is linear: d(g . R x)/dx = R^T g, so apply bwd to g and compare
         * with g . R e_i for every basis vector */
        float dg[T * H * D];
        memcpy(dg, g, sizeof dg);
        sw_rope_bwd_cpu(dg, pos, inv, inter, T, H, D);
        double num[T * H * D];
        for (int i = 0; i < T * H * D; i++) {
            float e[T * H * D] = {0};
            e[i] = 1.0f;
            sw_rope_cpu(e, pos, inv, inter, T, H, D);
            num[i] = dot(e, g, T * H * D);
        }
        CHECK(rel_err(dg, num, T * H * D) < 1e-5);
    }
    float gt[64], up[64], da[64], dgt[64], dup[64], a[64];
    fill(gt, 64, 6, 3.0f);
    fill(up, 64, 7, 1.0f);
    fill(da, 64, 8, 1.0f);
    sw_swiglu_bwd_cpu(dgt, dup, da, gt, up, 64);
    double ng[64], nu[64];
    for (int i = 0; i < 64; i++) {
        float keep = gt[i], h = 1e-3f;
        gt[i] = keep + h;
        sw_swiglu_cpu(a, gt, up, 64);
        double p = dot(a, da, 64);
        gt[i] = keep - h;
        sw_swiglu_cpu(a, gt, up, 64);
        ng[i] = (p - dot(a, da, 64)) / (2 * h);
        gt[i] = keep;
        keep = up[i];
        up[i] = keep + h;
        sw_swiglu_cpu(a, gt, up, 64);
        p = dot(a, da, 64);
        up[i] = keep - h;
        sw_swiglu_cpu(a, gt, up, 64);
        nu[i] = (p - dot(a, da, 64)) / (2 * h);
        up[i] = keep;
    }
    CHECK(rel_err(dgt, ng, 64) < 2e-3);
    CHECK(rel_err(dup, nu, 64) < 2e-3);
}

static void test_attention(void) {
    for (int window = 0; window <= 3; window += 3) {
        float q[T * H * D], k[T * KV * D], v[T * KV * D], out[T * H * D], lse[H * T], S[2 * T * T], g[T * H * D];
        float dq[T * H * D] = {0}, dk[T * KV * D] = {0}, dv[T * KV * D] = {0};
        fill(q, T * H * D, 9, 1.0f);
        fill(k, T * KV * D, 10, 1.0f);
        fill(v, T * KV * D, 11, 1.0f);
        fill(g, T * H * D, 12, 1.0f);
        sw_attention_fwd_cpu(out, lse, q, k, v, S, T, window, H, KV, D);
        sw_attention_bwd_cpu(dq, dk, dv, g, out, lse, q, k, v, S, T, window, H, KV, D);
        float *xs[3] = {q, k, v}, *ds[3] = {dq, dk, dv};
        int64_t ns[3] = {T * H * D, T * KV * D, T * KV * D};
        for (int w = 0; w < 3; w++) {
            double *num = malloc(sizeof(double) * (size_t)ns[w]);
            for (int64_t i = 0; i < ns[w]; i++) {
                float keep = xs[w][i], h = 1e-3f;
                xs[w][i] = keep + h;
                sw_attention_fwd_cpu(out, lse, q, k, v, S, T, window, H, KV, D);
                double p = dot(out, g, T * H * D);
                xs[w][i] = keep - h;
                sw_attention_fwd_cpu(out, lse, q, k, v, S, T, window, H, KV, D);
                num[i] = (p - dot(out, g, T * H * D)) / (2 * h);
                xs[w][i] = keep;
            }
            CHECK(rel_err(ds[w], num, ns[w]) < 3e-3);
            free(num);
        }
    }
}

/* A tiny model with every feature on, random weights. */
static sw_model *tiny_model(sw_ctx *ctx) {
    sw_model_config c = {0};
    c.arch = SW_ARCH_QWEN3;
    c.vocab = 32, c.hidden = C, c.intermediate = 24, c.n_layers = 2, c.n_heads = H, c.n_kv_heads = KV;
    c.head_dim = D, c.max_pos = 64, c.rope_theta = 10000, c.rms_eps = 1e-6;
    c.qkv_bias = true, c.qk_norm = true, c.sliding_window = 4, c.bos_id = -1, c.pad_id = -1;
    sw_model *m;
    if (sw_model_new(ctx, &c, &m)) return NULL;
    uint64_t seed = 100;
#define RT(t, ...)                                                                                   \
    do {                                                                                             \
        int64_t sh[] = {__VA_ARGS__};                                                                \
        sw_tensor_new(ctx, &(t), SW_F32, (int)(sizeof sh / sizeof sh[0]), sh, SW_DEV_CPU, SW_MEM_WEIGHTS); \
        fill(sw_tensor_data(t), sw_tensor_numel(t), seed++, 0.4f);                                  \
    } while (0)
#define LIN(l, o, i, bias)            \
    do {                              \
        RT((l).w, o, i);              \
        (l).out = o, (l).in = i;      \
        if (bias) RT((l).b, o);       \
    } while (0)
    RT(m->embed, 32, C);
    RT(m->norm, C);
    LIN(m->lm_head, 32, C, false);
    for (int i = 0; i < 2; i++) {
        sw_layer *L = &m->layers[i];
        RT(L->attn_norm, C);
        RT(L->mlp_norm, C);
        RT(L->q_norm, D);
        RT(L->k_norm, D);
        LIN(L->q, H * D, C, true);
        LIN(L->k, KV * D, C, true);
        LIN(L->v, KV * D, C, true);
        LIN(L->o, C, H * D, false);
        LIN(L->gate, 24, C, false);
        LIN(L->up, 24, C, false);
        LIN(L->down, C, 24, false);
    }
    sw_model_finish(ctx, m, 64);
    return m;
}

static void test_whole_model(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_model *m = tiny_model(&ctx);
    CHECK(m != NULL);
    if (!m) return;
    sw_lora_opts lo = {.r = 3, .alpha = 6, .targets = 0x7f, .init = SW_LORA_INIT_GAUSSIAN, .seed = 5};
    sw_lora *l;
    CHECK_EQ_INT(sw_lora_new(&ctx, m, &lo, &l), SW_OK);
    for (int64_t i = 0; i < 2; i++) /* B non-zero so dA is not zero */
        for (int t = 0; t < SW_LORA_NTARGETS; t++)
            fill(sw_tensor_data(l->pairs[i][t].B), sw_tensor_numel(l->pairs[i][t].B), 200 + i * 7 + t, 0.3f);
    m->lora = l;
    int32_t ids[11] = {3, 17, 5, 9, 30, 1, 4, 4, 22, 8, 13}, labels[11];
    for (int i = 0; i < 11; i++) labels[i] = i == 2 ? -100 : ids[i];
    int64_t starts[3] = {0, 6, 11};
    sw_seq_batch b = {ids, labels, NULL, 11, starts, 2};
    sw_train_opts to = {.backward = true, .loss_scale = 1.0f};
    double loss;
    int64_t n;
    sw_lora_zero_grad(l);
    CHECK_EQ_INT(sw_train_batch(&ctx, m, &b, &to, &loss, &n), SW_OK);
    CHECK_EQ_INT(n, 8); /* 5 + 4 next tokens, less the masked one */
    to.backward = false;
    double worst = 0;
    int checked = 0;
    for (int li = 0; li < 2; li++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++)
            for (int ab = 0; ab < 2; ab++) {
                sw_tensor *p = ab ? l->pairs[li][t].B : l->pairs[li][t].A, *g = ab ? l->pairs[li][t].gB : l->pairs[li][t].gA;
                float *x = sw_tensor_data(p), *gx = sw_tensor_data(g);
                for (int64_t i = 0; i < sw_tensor_numel(p); i += 5) { /* a sample of entries */
                    float keep = x[i], h = 2e-3f;
                    double lp, lm;
                    x[i] = keep + h;
                    sw_train_batch(&ctx, m, &b, &to, &lp, &n);
                    x[i] = keep - h;
                    sw_train_batch(&ctx, m, &b, &to, &lm, &n);
                    x[i] = keep;
                    double num = (lp - lm) / (2 * h);
                    worst = fmax(worst, fabs(num - gx[i]) / fmax(1e-2, fabs(num)));
                    checked++;
                }
            }
    fprintf(stderr, "whole model: %d LoRA entries, worst relative error %.3g\n", checked, worst);
    CHECK(checked > 100);
    CHECK(worst < 2e-2);
    /* checkpointing gives the same gradients */
    float *saved = malloc(sizeof(float) * 4096);
    sw_tensor *g0 = l->pairs[1][SW_LORA_DOWN].gA;
    sw_lora_zero_grad(l);
    to.backward = true;
    sw_train_batch(&ctx, m, &b, &to, &loss, &n);
    memcpy(saved, sw_tensor_data(g0), sw_tensor_nbytes(g0));
    sw_lora_zero_grad(l);
    to.checkpointing = true;
    sw_train_batch(&ctx, m, &b, &to, &loss, &n);
    CHECK(!memcmp(saved, sw_tensor_data(g0), sw_tensor_nbytes(g0)));
    free(saved);
    m->lora = NULL;
    sw_lora_free(l);
    sw_model_free(m);
}

int main(void) {
    test_rmsnorm();
    test_rope_and_swiglu();
    test_attention();
    test_whole_model();
    CHECK_DONE();
}
