/* forward.c — the CPU forward pass of sw_model (see model.h).
 *
 * Activations are float32 in one workspace block per call, charged to
 * "activations"; weights are dequantized panel by panel into "workspace".
 * The cache length n_past moves only when the whole call succeeds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef SW_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../kernels/ops.h"
#include "interrupt.h"
#include "lora.h"
#include "model.h"

void sw_tensor_row_f32(float *dst, const sw_tensor *t, int64_t row) {
    int64_t cols = t->shape[t->ndim - 1];
    const char *p = (const char *)sw_tensor_data(t) + row * t->stride[0];
    sw_dequant_cpu(dst, p, t->dtype, cols);
}

/* Rows [r0, r0+n) of a linear weight as float32 (n x in). */
void sw_linear_rows(float *dst, const sw_linear *l, int64_t r0, int64_t n) {
    if (l->nf4) {
        const uint8_t *codes = (const uint8_t *)sw_tensor_data(l->w) + r0 * l->in / 2;
        const float *absmax = (const float *)sw_tensor_data(l->absmax) + r0 * l->in / 64;
        sw_nf4_dequant_cpu(dst, codes, absmax, n * l->in);
        return;
    }
    for (int64_t r = 0; r < n; r++) sw_tensor_row_f32(dst + r * l->in, l->w, r0 + r);
}

/* Panels of ~1 MiB of float32: big enough for an efficient GEMM, small
 * enough to stay in cache next to x. 64 rows at least, so NF4 panels start
 * on a whole block. */
int64_t sw_linear_panel_rows(const sw_linear *l) {
    int64_t P = (256 * 1024) / l->in;
    if (P < 64) P = 64;
    return P > l->out ? l->out : P;
}

/* y (T, n) with row stride ldy = x (T, k) . W^T, W (n, k) row-major. */
void sw_gemm_nt(float *y, int64_t ldy, const float *x, const float *w, int64_t T, int64_t n, int64_t k) {
#ifdef SW_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)n, (int)k, 1.0f, x, (int)k, w, (int)k, 0.0f, y,
                (int)ldy);
#else
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0;
            for (int64_t i = 0; i < k; i++) s += x[t * k + i] * w[j * k + i];
            y[t * ldy + j] = s;
        }
#endif
}

/* Few rows of x (decoding): read each weight once, straight from its
 * stored blocks, instead of materialising float32 panels. */
static bool use_matvec(const sw_linear *l, int64_t T) {
    if (T > 4) return false;
    if (l->nf4) return true;
    sw_dtype t = l->w->dtype;
    if (t == SW_F32 || !sw_tensor_is_contiguous(l->w)) return false; /* BLAS does float32 well */
    return t == SW_Q4_0 || t == SW_Q4_1 || t == SW_Q8_0 || l->in <= 8192;
}

sw_status sw_linear_forward(sw_ctx *ctx, float *y, const float *x, const sw_linear *l, int64_t T) {
    const int64_t out = l->out, in = l->in;
    if (use_matvec(l, T)) {
        for (int64_t t = 0; t < T; t++) {
            if (l->nf4) sw_nf4_matvec_cpu(y + t * out, x + t * in, sw_tensor_data(l->w), sw_tensor_data(l->absmax), out, in);
            else sw_qmatvec_cpu(y + t * out, x + t * in, sw_tensor_data(l->w), l->w->dtype, l->w->stride[0], out, in);
        }
    } else if (!l->nf4 && l->w->dtype == SW_F32 && sw_tensor_is_contiguous(l->w)) {
        sw_gemm_nt(y, out, x, sw_tensor_data(l->w), T, out, in);
    } else {
        int64_t P = sw_linear_panel_rows(l);
        size_t bytes = (size_t)(P * in) * sizeof(float);
        float *panel = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_WORKSPACE, bytes);
        if (!panel) return ctx->status;
        for (int64_t r0 = 0; r0 < out; r0 += P) {
            int64_t n = out - r0 < P ? out - r0 : P;
            sw_linear_rows(panel, l, r0, n);
            sw_gemm_nt(y + r0, out, x, panel, T, n, in);
        }
        sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, panel, bytes);
    }
    if (l->b) {
        const float *b = sw_tensor_data(l->b);
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < out; j++) y[t * out + j] += b[j];
    }
    return SW_OK;
}

sw_linear *sw_model_linear(sw_model *m, int64_t li, int t) {
    sw_layer *L = &m->layers[li];
    sw_linear *ls[SW_LORA_NTARGETS] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return ls[t];
}

/* y += scale * (x A^T) B^T for the active adapter on (layer, target). */
static sw_status lora_add(sw_ctx *ctx, float *y, const float *x, const sw_model *m, int64_t li, int t, int64_t T,
                          int64_t out, int64_t in) {
    const sw_lora *lo = m->lora;
    if (!lo || !lo->pairs[li][t].A) return SW_OK;
    const sw_lora_pair *p = &lo->pairs[li][t];
    size_t bytes = sizeof(float) * (size_t)(T * lo->r + T * out);
    float *u = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_WORKSPACE, bytes);
    if (!u) return ctx->status;
    float *d = u + T * lo->r;
    sw_gemm_nt(u, lo->r, x, sw_tensor_data(p->A), T, lo->r, in);
    sw_gemm_nt(d, out, u, sw_tensor_data(p->B), T, out, lo->r);
    for (int64_t i = 0; i < T * out; i++) y[i] += lo->scale * d[i];
    sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, u, bytes);
    return SW_OK;
}

/* A projection with its adapter. */
static sw_status proj(sw_ctx *ctx, float *y, const float *x, sw_model *m, int64_t li, int t, int64_t T) {
    const sw_linear *l = sw_model_linear(m, li, t);
    if (sw_linear_forward(ctx, y, x, l, T)) return ctx->status;
    return lora_add(ctx, y, x, m, li, t, T, l->out, l->in);
}

static void add_into(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

sw_status sw_model_forward(sw_ctx *ctx, sw_model *m, const int32_t *ids, int64_t T, float *logits, bool all_logits) {
    const sw_model_config *c = &m->cfg;
    const int64_t C = c->hidden, D = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads, FF = c->intermediate;
    const int64_t pos0 = m->n_past;
    if (T <= 0) return sw_err(ctx, SW_EINVAL, "forward: no tokens");
    if (pos0 + T > m->max_seq)
        return sw_err(ctx, SW_EINVAL, "forward: %lld + %lld tokens exceed the context of %lld (max_seq)",
                      (long long)pos0, (long long)T, (long long)m->max_seq);
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab)
            return sw_err(ctx, SW_EINVAL, "forward: token id %d at position %lld is outside the vocabulary (%lld)", ids[t],
                          (long long)t + 1, (long long)c->vocab);

    /* One activation block: x h q k v att g u, plus positions and scores. */
    const int64_t n_x = T * C, n_q = T * Hq * D, n_kv = T * Hkv * D, n_i = T * FF;
    const int64_t floats = 2 * n_x + 2 * n_q + 2 * n_kv + 2 * n_i + (pos0 + T);
    size_t bytes = (size_t)floats * sizeof(float) + (size_t)T * sizeof(int32_t);
    float *buf = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, bytes);
    if (!buf) return ctx->status;
    float *x = buf, *h = x + n_x, *q = h + n_x, *att = q + n_q, *k = att + n_q, *v = k + n_kv, *g = v + n_kv,
          *u = g + n_i, *scores = u + n_i;
    int32_t *pos = (int32_t *)(scores + pos0 + T);
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(pos0 + t);
    sw_status st = SW_OK;

    for (int64_t t = 0; t < T; t++) sw_tensor_row_f32(x + t * C, m->embed, ids[t]);

    for (int64_t li = 0; li < c->n_layers && !st; li++) {
        const sw_layer *L = &m->layers[li];
        /* attention */
        sw_rmsnorm_cpu(h, x, sw_tensor_data(L->attn_norm), (float)c->rms_eps, T, C);
        if ((st = proj(ctx, q, h, m, li, SW_LORA_Q, T)) || (st = proj(ctx, k, h, m, li, SW_LORA_K, T)) ||
            (st = proj(ctx, v, h, m, li, SW_LORA_V, T)))
            break;
        if (c->qk_norm) {
            sw_rmsnorm_cpu(q, q, sw_tensor_data(L->q_norm), (float)c->rms_eps, T * Hq, D);
            sw_rmsnorm_cpu(k, k, sw_tensor_data(L->k_norm), (float)c->rms_eps, T * Hkv, D);
        }
        sw_rope_cpu(q, pos, m->inv_freq, c->rope_interleaved, T, Hq, D);
        sw_rope_cpu(k, pos, m->inv_freq, c->rope_interleaved, T, Hkv, D);
        float *kc = sw_tensor_data(m->k_cache[li]), *vc = sw_tensor_data(m->v_cache[li]);
        memcpy(kc + pos0 * Hkv * D, k, sizeof(float) * (size_t)n_kv);
        memcpy(vc + pos0 * Hkv * D, v, sizeof(float) * (size_t)n_kv);
        bool windowed = c->sliding_window > 0 && li >= c->max_window_layers;
        sw_attention_cpu(att, q, kc, vc, scores, pos0, windowed ? c->sliding_window : 0, T, Hq, Hkv, D);
        if ((st = proj(ctx, h, att, m, li, SW_LORA_O, T))) break;
        add_into(x, h, n_x);
        /* MLP */
        sw_rmsnorm_cpu(h, x, sw_tensor_data(L->mlp_norm), (float)c->rms_eps, T, C);
        if ((st = proj(ctx, g, h, m, li, SW_LORA_GATE, T)) || (st = proj(ctx, u, h, m, li, SW_LORA_UP, T))) break;
        sw_swiglu_cpu(g, g, u, n_i);
        if ((st = proj(ctx, h, g, m, li, SW_LORA_DOWN, T))) break;
        add_into(x, h, n_x);
        st = sw_interrupt_check(ctx);
    }
    if (!st && logits) {
        int64_t first = all_logits ? 0 : T - 1, n = T - first;
        sw_rmsnorm_cpu(h, x + first * C, sw_tensor_data(m->norm), (float)c->rms_eps, n, C);
        st = sw_linear_forward(ctx, logits, h, &m->lm_head, n);
    }
    sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, buf, bytes);
    if (!st) m->n_past = pos0 + T;
    return st;
}
