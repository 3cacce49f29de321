/* model.c — the Llama-family model: construction, checks, the KV cache and
 * the CPU forward pass (see model.h). The forward reads top to bottom as the
 * architecture: embed, N x [norm, attention, residual, norm, SwiGLU MLP,
 * residual], norm, head. */
#include "model.h"
#include "gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SW_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../kernels/ops.h"
#include "interrupt.h"

/* ------------------------------------------------------------- lifetime */

sw_status sw_model_new(sw_ctx *ctx, const sw_model_config *cfg, sw_model **out) {
    *out = NULL;
    const sw_model_config *c = cfg;
    if (c->n_layers <= 0 || c->n_layers > 1024 || c->hidden <= 0 || c->vocab <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->intermediate <= 0)
        return sw_err(ctx, SW_EINVAL, "model config: sizes must be positive (layers %lld, hidden %lld, vocab %lld, heads %lld/%lld, head_dim %lld)",
                      (long long)c->n_layers, (long long)c->hidden, (long long)c->vocab, (long long)c->n_heads,
                      (long long)c->n_kv_heads, (long long)c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return sw_err(ctx, SW_EINVAL, "model config: %lld attention heads do not divide into %lld kv heads",
                      (long long)c->n_heads, (long long)c->n_kv_heads);
    if (c->head_dim % 2) return sw_err(ctx, SW_EINVAL, "model config: head_dim %lld is odd", (long long)c->head_dim);
    sw_model *m = calloc(1, sizeof *m);
    if (!m) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    m->cfg = *cfg;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->k_cache = calloc((size_t)c->n_layers, sizeof *m->k_cache);
    m->v_cache = calloc((size_t)c->n_layers, sizeof *m->v_cache);
    m->inv_freq = calloc((size_t)(c->head_dim / 2), sizeof(float));
    if (!m->layers || !m->k_cache || !m->v_cache || !m->inv_freq) {
        sw_model_free(m);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    m->device = SW_DEV_CPU;
    *out = m;
    return SW_OK;
}

static void linear_free(sw_linear *l, const sw_tensor *keep) {
    if (l->w != keep) sw_tensor_free(l->w);
    sw_tensor_free(l->absmax);
    sw_tensor_free(l->b);
    memset(l, 0, sizeof *l);
}

void sw_model_free(sw_model *m) {
    if (m) sw_gpu_free(m->gpu);
    if (!m) return;
    for (int64_t i = 0; m->layers && i < m->cfg.n_layers; i++) {
        sw_layer *L = &m->layers[i];
        sw_tensor_free(L->attn_norm);
        sw_tensor_free(L->mlp_norm);
        sw_tensor_free(L->q_norm);
        sw_tensor_free(L->k_norm);
        linear_free(&L->q, NULL);
        linear_free(&L->k, NULL);
        linear_free(&L->v, NULL);
        linear_free(&L->o, NULL);
        linear_free(&L->gate, NULL);
        linear_free(&L->up, NULL);
        linear_free(&L->down, NULL);
        if (m->k_cache) sw_tensor_free(m->k_cache[i]);
        if (m->v_cache) sw_tensor_free(m->v_cache[i]);
    }
    linear_free(&m->lm_head, m->embed); /* tied: the embedding is freed below */
    sw_tensor_free(m->embed);
    sw_tensor_free(m->norm);
    sw_tensor_free(m->rope_freqs);
    free(m->layers);
    free(m->k_cache);
    free(m->v_cache);
    free(m->inv_freq);
    free(m);
}

/* ---------------------------------------------------------------- checks */

static sw_status need_vec(sw_ctx *ctx, const sw_tensor *t, int64_t n, const char *what, int64_t layer) {
    if (!t) return sw_err(ctx, SW_EFORMAT, "layer %lld: %s is missing", (long long)layer, what);
    if (t->dtype != SW_F32 || t->ndim != 1 || t->shape[0] != n)
        return sw_err(ctx, SW_EFORMAT, "layer %lld: %s should be f32[%lld], got %s[%lld%s]", (long long)layer, what,
                      (long long)n, sw_dtype_name(t->dtype), (long long)(t->ndim ? t->shape[0] : 0),
                      t->ndim > 1 ? ", ..." : "");
    return SW_OK;
}

static sw_status need_linear(sw_ctx *ctx, sw_linear *l, int64_t out, int64_t in, bool bias, const char *what,
                             int64_t layer) {
    if (!l->w) return sw_err(ctx, SW_EFORMAT, "layer %lld: %s weight is missing", (long long)layer, what);
    if (l->out != out || l->in != in)
        return sw_err(ctx, SW_EFORMAT, "layer %lld: %s weight is (%lld, %lld), expected (%lld, %lld)", (long long)layer,
                      what, (long long)l->out, (long long)l->in, (long long)out, (long long)in);
    if (l->nf4 && (!l->absmax || (out * in) % 64))
        return sw_err(ctx, SW_EFORMAT, "layer %lld: %s NF4 weight lacks its absmax", (long long)layer, what);
    if (bias && !l->b) return sw_err(ctx, SW_EFORMAT, "layer %lld: %s bias is missing", (long long)layer, what);
    if (l->b && (l->b->dtype != SW_F32 || sw_tensor_numel(l->b) != out))
        return sw_err(ctx, SW_EFORMAT, "layer %lld: %s bias should be f32[%lld]", (long long)layer, what, (long long)out);
    return SW_OK;
}

/* HF's rope frequencies, with Llama 3 / linear scaling, or GGUF's factors. */
static void rope_table(sw_model *m) {
    const sw_model_config *c = &m->cfg;
    int64_t half = c->head_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        float f = (float)(1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim));
        if (c->rope_scaling == SW_ROPE_LINEAR) f = f / (float)c->rope_factor;
        if (c->rope_scaling == SW_ROPE_LLAMA3) {
            double lo_wl = (double)c->rope_orig_max_pos / c->rope_low_freq_factor;
            double hi_wl = (double)c->rope_orig_max_pos / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f;
            if (wl > lo_wl) {
                f = f / (float)c->rope_factor;
            } else if (wl >= hi_wl) { /* between the two: blend */
                double smooth = ((double)c->rope_orig_max_pos / wl - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (float)((1.0 - smooth) * f / c->rope_factor + smooth * f);
            }
        }
        if (m->rope_freqs) f = f / ((const float *)sw_tensor_data(m->rope_freqs))[i];
        m->inv_freq[i] = f;
    }
}

sw_status sw_model_finish(sw_ctx *ctx, sw_model *m, int64_t max_seq) {
    const sw_model_config *c = &m->cfg;
    const int64_t C = c->hidden, D = c->head_dim, FF = c->intermediate;
    const int64_t qd = c->n_heads * D, kvd = c->n_kv_heads * D;
    if (!m->embed || m->embed->ndim != 2 || m->embed->shape[0] != c->vocab || m->embed->shape[1] != C)
        return sw_err(ctx, SW_EFORMAT, "the token embedding should be (%lld, %lld)", (long long)c->vocab, (long long)C);
    if (need_vec(ctx, m->norm, C, "final norm", c->n_layers)) return ctx->status;
    if (need_linear(ctx, &m->lm_head, c->vocab, C, false, "lm_head", c->n_layers)) return ctx->status;
    for (int64_t i = 0; i < c->n_layers; i++) {
        sw_layer *L = &m->layers[i];
        if (need_vec(ctx, L->attn_norm, C, "attention norm", i) || need_vec(ctx, L->mlp_norm, C, "mlp norm", i) ||
            need_linear(ctx, &L->q, qd, C, c->qkv_bias, "q_proj", i) ||
            need_linear(ctx, &L->k, kvd, C, c->qkv_bias, "k_proj", i) ||
            need_linear(ctx, &L->v, kvd, C, c->qkv_bias, "v_proj", i) ||
            need_linear(ctx, &L->o, C, qd, false, "o_proj", i) ||
            need_linear(ctx, &L->gate, FF, C, false, "gate_proj", i) ||
            need_linear(ctx, &L->up, FF, C, false, "up_proj", i) ||
            need_linear(ctx, &L->down, C, FF, false, "down_proj", i))
            return ctx->status;
        if (c->qk_norm && (need_vec(ctx, L->q_norm, D, "q_norm", i) || need_vec(ctx, L->k_norm, D, "k_norm", i)))
            return ctx->status;
    }
    if (m->rope_freqs && (m->rope_freqs->dtype != SW_F32 || sw_tensor_numel(m->rope_freqs) != D / 2))
        return sw_err(ctx, SW_EFORMAT, "rope_freqs should be f32[%lld]", (long long)(D / 2));
    if (max_seq <= 0) return sw_err(ctx, SW_EINVAL, "max_seq must be positive");
    rope_table(m);
    /* The cache is allocated up front: its size is what the user chose. */
    for (int64_t i = 0; i < c->n_layers; i++) {
        int64_t shape[3] = {max_seq, c->n_kv_heads, D};
        if (sw_tensor_new(ctx, &m->k_cache[i], SW_F32, 3, shape, m->device, SW_MEM_KV_CACHE) ||
            sw_tensor_new(ctx, &m->v_cache[i], SW_F32, 3, shape, m->device, SW_MEM_KV_CACHE)) {
            for (int64_t j = 0; j <= i; j++) {
                sw_tensor_free(m->k_cache[j]);
                sw_tensor_free(m->v_cache[j]);
                m->k_cache[j] = m->v_cache[j] = NULL;
            }
            return sw_err_prefix(ctx, "KV cache for %lld positions", (long long)max_seq);
        }
    }
    m->max_seq = max_seq;
    m->n_past = 0;
    return SW_OK;
}

void sw_model_reset(sw_model *m) { m->n_past = 0; }
void sw_model_truncate(sw_model *m, int64_t n) {
    if (n >= 0 && n < m->n_past) m->n_past = n;
}

static int64_t linear_params(const sw_linear *l) { return l->w ? l->out * l->in + (l->b ? l->out : 0) : 0; }

int64_t sw_model_n_params(const sw_model *m) {
    const sw_model_config *c = &m->cfg;
    int64_t n = sw_tensor_numel(m->embed) + c->hidden;
    if (m->lm_head.w != m->embed) n += linear_params(&m->lm_head);
    for (int64_t i = 0; i < c->n_layers; i++) {
        const sw_layer *L = &m->layers[i];
        n += 2 * c->hidden + linear_params(&L->q) + linear_params(&L->k) + linear_params(&L->v) +
             linear_params(&L->o) + linear_params(&L->gate) + linear_params(&L->up) + linear_params(&L->down);
        if (L->q_norm) n += 2 * c->head_dim;
    }
    return n;
}

static size_t tbytes(const sw_tensor *t) { return t ? sw_tensor_nbytes(t) : 0; }
static size_t lbytes(const sw_linear *l) { return tbytes(l->w) + tbytes(l->absmax) + tbytes(l->b); }

size_t sw_model_weight_bytes(const sw_model *m) {
    size_t n = tbytes(m->embed) + tbytes(m->norm) + tbytes(m->rope_freqs);
    if (m->lm_head.w != m->embed) n += lbytes(&m->lm_head);
    for (int64_t i = 0; i < m->cfg.n_layers; i++) {
        const sw_layer *L = &m->layers[i];
        n += tbytes(L->attn_norm) + tbytes(L->mlp_norm) + tbytes(L->q_norm) + tbytes(L->k_norm) + lbytes(&L->q) +
             lbytes(&L->k) + lbytes(&L->v) + lbytes(&L->o) + lbytes(&L->gate) + lbytes(&L->up) + lbytes(&L->down);
    }
    return n;
}
