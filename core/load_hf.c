/* load_hf.c — a model from a Hugging Face directory: config.json and
 * model.safetensors (or shards). Names follow transformers' Llama, Mistral,
 * Qwen2 and Qwen3 classes (model.layers.N.self_attn.q_proj.weight, ...).
 * HF keeps rotary halves apart, so rope_interleaved stays false.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"
#include "load.h"
#include "safetensors.h"

typedef struct hf {
    sw_st *st;
    const char *dir;
    sw_load_quant q;
} hf;

static const sw_st_tensor *need(sw_ctx *ctx, const hf *h, const char *name, int ndim, int64_t rows, int64_t cols) {
    const sw_st_tensor *t = sw_st_find(h->st, name);
    if (!t) {
        sw_err(ctx, SW_EFORMAT, "%s: tensor %s is missing", h->dir, name);
        return NULL;
    }
    bool ok = t->ndim == ndim && (ndim == 1 ? t->shape[0] == cols : t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        sw_err(ctx, SW_EFORMAT, "%s: tensor %s has %d dimension(s) (%lld, ...), expected (%lld%s%lld)", t->file, name,
               t->ndim, (long long)(t->ndim ? t->shape[0] : 0), (long long)(ndim == 1 ? cols : rows),
               ndim == 1 ? ")" : ", ", (long long)(ndim == 1 ? 0 : cols));
        if (ndim == 1) snprintf(ctx->msg, sizeof ctx->msg, "%s: tensor %s should be a vector of %lld", t->file, name, (long long)cols);
        return NULL;
    }
    if (t->dtype != SW_F32 && t->dtype != SW_F16 && t->dtype != SW_BF16) {
        sw_err(ctx, SW_EUNSUPPORTED, "%s: tensor %s is %s; weights must be F32, F16 or BF16", t->file, name, t->dtype_name);
        return NULL;
    }
    return t;
}

static sw_status vec(sw_ctx *ctx, const hf *h, sw_tensor **out, const char *name, int64_t n) {
    const sw_st_tensor *t = need(ctx, h, name, 1, 1, n);
    if (!t) return ctx->status;
    return sw_load_f32(ctx, out, t->data, t->dtype, 1, &n, name);
}

/* A bitsandbytes NF4 weight: kept as NF4 (the codes and the denested
 * absmax, bit-identical to what bitsandbytes computes with), or
 * dequantized when another storage was asked for. */
static sw_status bnb_linear(sw_ctx *ctx, const hf *h, sw_linear *l, const char *name, int64_t rows, int64_t cols,
                            sw_load_quant q) {
    sw_bnb_weight bw;
    if (sw_bnb_read(ctx, h->st, name, &bw)) return ctx->status;
    sw_status st = SW_OK;
    if (bw.out != rows || bw.in != cols) {
        st = sw_err(ctx, SW_EFORMAT, "%s: %s is quantized from (%lld, %lld), expected (%lld, %lld)", h->dir, name,
                    (long long)bw.out, (long long)bw.in, (long long)rows, (long long)cols);
    } else if (q == SW_LOAD_KEEP || q == SW_LOAD_NF4) {
        memset(l, 0, sizeof *l);
        int64_t cs[1] = {bw.n / 2}, as[1] = {bw.nblocks};
        if (sw_tensor_new(ctx, &l->w, SW_U8, 1, cs, SW_DEV_CPU, SW_MEM_WEIGHTS) ||
            sw_tensor_new(ctx, &l->absmax, SW_F32, 1, as, SW_DEV_CPU, SW_MEM_WEIGHTS)) {
            sw_tensor_free(l->w);
            l->w = NULL;
            st = ctx->status;
        } else {
            memcpy(sw_tensor_data(l->w), bw.codes, (size_t)(bw.n / 2));
            memcpy(sw_tensor_data(l->absmax), bw.absmax, sizeof(float) * (size_t)bw.nblocks);
            l->out = rows;
            l->in = cols;
            l->nf4 = true;
        }
    } else {
        float *w = malloc(sizeof(float) * (size_t)bw.n);
        if (!w) {
            st = sw_err(ctx, SW_ENOMEM, "host out of memory");
        } else {
            sw_bnb_dequant(&bw, w);
            st = sw_load_linear(ctx, l, w, SW_F32, rows, cols, q, name);
            free(w);
        }
    }
    sw_bnb_weight_free(&bw);
    return st;
}

/* Llama's attention_bias also gives o_proj a bias; Qwen2's does not. */
static bool has_bias(const hf *h, const char *name) { return sw_st_find(h->st, name) != NULL; }

static sw_status lin(sw_ctx *ctx, const hf *h, sw_linear *l, const char *prefix, int64_t rows, int64_t cols,
                     sw_load_quant q, bool bias) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", prefix);
    if (sw_bnb_is_quantized(h->st, n)) { /* a pre-quantized (bnb-4bit) checkpoint */
        if (bnb_linear(ctx, h, l, n, rows, cols, q)) return ctx->status;
    } else {
        const sw_st_tensor *t = need(ctx, h, n, 2, rows, cols);
        if (!t || sw_load_linear(ctx, l, t->data, t->dtype, rows, cols, q, n)) return ctx->status;
    }
    if (bias) {
        snprintf(n, sizeof n, "%s.bias", prefix);
        return vec(ctx, h, &l->b, n, rows);
    }
    return SW_OK;
}

sw_status sw_load_hf(sw_ctx *ctx, const char *dir, const sw_load_opts *o, sw_model **out) {
    *out = NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    sw_model_config cfg;
    if (sw_config_from_hf_json(ctx, p, &cfg)) return ctx->status;
    hf h = {NULL, dir, o->quant};
    if (sw_st_open(ctx, dir, &h.st)) return ctx->status;
    sw_model *m;
    if (sw_model_new(ctx, &cfg, &m)) {
        sw_st_close(h.st);
        return sw_err_prefix(ctx, "%s", p);
    }
    const sw_model_config *c = &m->cfg;
    const int64_t C = c->hidden, D = c->head_dim, FF = c->intermediate;
    const int64_t qd = c->n_heads * D, kvd = c->n_kv_heads * D;
    sw_load_quant eq = o->quant == SW_LOAD_NF4 ? SW_LOAD_KEEP : o->quant; /* embeddings never NF4 */
    char n[256];
    sw_linear e;
    const sw_st_tensor *emb = need(ctx, &h, "model.embed_tokens.weight", 2, c->vocab, C);
    if (!emb || sw_load_linear(ctx, &e, emb->data, emb->dtype, c->vocab, C, eq, "model.embed_tokens.weight")) goto fail;
    m->embed = e.w;
    if (vec(ctx, &h, &m->norm, "model.norm.weight", C)) goto fail;
    if (c->tie_embeddings || !sw_st_find(h.st, "lm_head.weight")) {
        m->lm_head.w = m->embed;
        m->lm_head.out = c->vocab;
        m->lm_head.in = C;
        m->cfg.tie_embeddings = true;
    } else if (lin(ctx, &h, &m->lm_head, "lm_head", c->vocab, C, eq, false)) {
        goto fail;
    }
    for (int64_t i = 0; i < c->n_layers; i++) {
        sw_layer *L = &m->layers[i];
#define NM(s) (snprintf(n, sizeof n, "model.layers.%lld." s, (long long)i), n)
        bool obias = has_bias(&h, NM("self_attn.o_proj.bias"));
        if (vec(ctx, &h, &L->attn_norm, NM("input_layernorm.weight"), C) ||
            vec(ctx, &h, &L->mlp_norm, NM("post_attention_layernorm.weight"), C) ||
            lin(ctx, &h, &L->q, NM("self_attn.q_proj"), qd, C, o->quant, c->qkv_bias) ||
            lin(ctx, &h, &L->k, NM("self_attn.k_proj"), kvd, C, o->quant, c->qkv_bias) ||
            lin(ctx, &h, &L->v, NM("self_attn.v_proj"), kvd, C, o->quant, c->qkv_bias) ||
            lin(ctx, &h, &L->o, NM("self_attn.o_proj"), C, qd, o->quant, obias) ||
            lin(ctx, &h, &L->gate, NM("mlp.gate_proj"), FF, C, o->quant, false) ||
            lin(ctx, &h, &L->up, NM("mlp.up_proj"), FF, C, o->quant, false) ||
            lin(ctx, &h, &L->down, NM("mlp.down_proj"), C, FF, o->quant, false))
            goto fail;
        if (c->qk_norm && (vec(ctx, &h, &L->q_norm, NM("self_attn.q_norm.weight"), D) ||
                           vec(ctx, &h, &L->k_norm, NM("self_attn.k_norm.weight"), D)))
            goto fail;
#undef NM
    }
    int64_t max_seq = o->max_seq > 0 ? o->max_seq : (c->max_pos < 2048 ? c->max_pos : 2048);
    if (sw_model_finish(ctx, m, max_seq)) goto fail;
    snprintf(m->source, sizeof m->source, "%s", dir);
    snprintf(m->quant, sizeof m->quant, "%s", m->layers[0].q.nf4 ? "nf4" : sw_dtype_name(m->layers[0].q.w->dtype));
    sw_st_close(h.st);
    *out = m;
    return SW_OK;
fail:
    sw_model_free(m);
    sw_st_close(h.st);
    return ctx->status;
}
