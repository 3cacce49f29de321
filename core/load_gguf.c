/* load_gguf.c — a model from a GGUF file (llama.cpp's format).
 *
 * llama.cpp names tensors blk.N.attn_q.weight etc. and stores, for the
 * "llama" architecture, q and k rows permuted so that rotary pairs are
 * adjacent (ggml's "normal" rope); Qwen2/Qwen3 files keep HF's halves
 * layout (ggml's "neox" rope). rope_interleaved records which.
 */
#include <stdio.h>
#include <string.h>

#include "load.h"

static bool gget_int(const sw_gguf *g, const char *arch, const char *key, int64_t *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return sw_gguf_get_int(g, k, out);
}

static bool gget_float(const sw_gguf *g, const char *arch, const char *key, double *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return sw_gguf_get_float(g, k, out);
}

sw_status sw_config_from_gguf(sw_ctx *ctx, const sw_gguf *g, sw_model_config *c) {
    const char *path = sw_gguf_path(g);
    memset(c, 0, sizeof *c);
    const char *an;
    size_t alen;
    if (!sw_gguf_get_str(g, "general.architecture", &an, &alen))
        return sw_err(ctx, SW_EFORMAT, "%s: general.architecture is missing", path);
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(alen < 63 ? alen : 63), an);
    if (!sw_arch_from_name(arch, &c->arch))
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: architecture '%s' is not supported (llama, mistral, qwen2, qwen3 are)", path, arch);
    static const char *const required[] = {"block_count", "embedding_length", "feed_forward_length",
                                           "attention.head_count"};
    int64_t *dst[] = {&c->n_layers, &c->hidden, &c->intermediate, &c->n_heads};
    for (int i = 0; i < 4; i++)
        if (!gget_int(g, arch, required[i], dst[i]))
            return sw_err(ctx, SW_EFORMAT, "%s: %s.%s is missing", path, arch, required[i]);
    if (!gget_int(g, arch, "attention.head_count_kv", &c->n_kv_heads)) c->n_kv_heads = c->n_heads;
    if (c->n_heads <= 0) return sw_err(ctx, SW_EFORMAT, "%s: %s.attention.head_count is %lld", path, arch, (long long)c->n_heads);
    if (!gget_int(g, arch, "attention.key_length", &c->head_dim)) c->head_dim = c->hidden / c->n_heads;
    if (!gget_int(g, arch, "context_length", &c->max_pos)) c->max_pos = 2048;
    if (!gget_float(g, arch, "rope.freq_base", &c->rope_theta)) c->rope_theta = 10000.0;
    if (!gget_float(g, arch, "attention.layer_norm_rms_epsilon", &c->rms_eps)) c->rms_eps = 1e-5;
    if (!gget_int(g, arch, "attention.sliding_window", &c->sliding_window)) c->sliding_window = 0;
    char k[128];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    const char *st;
    size_t sl;
    if (sw_gguf_get_str(g, k, &st, &sl) && sl == 6 && !memcmp(st, "linear", 6)) {
        c->rope_scaling = SW_ROPE_LINEAR;
        if (!gget_float(g, arch, "rope.scaling.factor", &c->rope_factor) || c->rope_factor <= 0)
            return sw_err(ctx, SW_EFORMAT, "%s: linear rope scaling without a positive factor", path);
    }
    /* Llama 3.1 files carry the scaled frequencies as the rope_freqs tensor. */
    const sw_gguf_tensor *emb = sw_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return sw_err(ctx, SW_EFORMAT, "%s: tensor token_embd.weight is missing", path);
    if (!gget_int(g, arch, "vocab_size", &c->vocab)) c->vocab = emb->ne[1];
    c->rope_interleaved = c->arch == SW_ARCH_LLAMA || c->arch == SW_ARCH_MISTRAL;
    c->tie_embeddings = sw_gguf_find_tensor(g, "output.weight") == NULL;
    c->qkv_bias = sw_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = sw_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
    int64_t v;
    c->bos_id = sw_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v) ? (int32_t)v : -1;
    c->pad_id = sw_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &v) ? (int32_t)v : -1;
    if (sw_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v)) c->eos_ids[c->n_eos++] = (int32_t)v;
    if (sw_gguf_get_int(g, "tokenizer.ggml.eot_token_id", &v) && (c->n_eos == 0 || c->eos_ids[0] != v))
        c->eos_ids[c->n_eos++] = (int32_t)v;
    return SW_OK;
}

/* The tensor `name`, checked to be (rows, cols) in stepwise's order. */
static const sw_gguf_tensor *need(sw_ctx *ctx, const sw_gguf *g, const char *name, int64_t rows, int64_t cols) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) {
        sw_err(ctx, SW_EFORMAT, "%s: tensor %s is missing", sw_gguf_path(g), name);
        return NULL;
    }
    int64_t r = t->ndim >= 2 ? t->ne[1] : 1;
    if (t->ne[0] != cols || r != rows || t->ndim > 2) {
        sw_err(ctx, SW_EFORMAT, "%s: tensor %s has shape (%lld, %lld), expected (%lld, %lld)", sw_gguf_path(g), name,
               (long long)r, (long long)t->ne[0], (long long)rows, (long long)cols);
        return NULL;
    }
    if (t->dtype == SW_DTYPE_COUNT) {
        sw_err(ctx, SW_EUNSUPPORTED, "%s: tensor %s has ggml type %u, which stepwise cannot read", sw_gguf_path(g),
               name, t->ggml_type);
        return NULL;
    }
    return t;
}

static sw_status vec(sw_ctx *ctx, const sw_gguf *g, sw_tensor **out, const char *name, int64_t n) {
    const sw_gguf_tensor *t = need(ctx, g, name, 1, n);
    if (!t) return ctx->status;
    return sw_load_f32(ctx, out, t->data, t->dtype, 1, &n, name);
}

static sw_status lin(sw_ctx *ctx, const sw_gguf *g, sw_linear *l, const char *name, int64_t rows, int64_t cols,
                     sw_load_quant q, const char *bias) {
    const sw_gguf_tensor *t = need(ctx, g, name, rows, cols);
    if (!t || sw_load_linear(ctx, l, t->data, t->dtype, rows, cols, q, name)) return ctx->status;
    if (bias) return vec(ctx, g, &l->b, bias, rows);
    return SW_OK;
}

sw_status sw_load_gguf(sw_ctx *ctx, const sw_gguf *g, const sw_load_opts *o, sw_model **out) {
    *out = NULL;
    sw_model_config cfg;
    if (sw_config_from_gguf(ctx, g, &cfg)) return ctx->status;
    sw_model *m;
    if (sw_model_new(ctx, &cfg, &m)) return sw_err_prefix(ctx, "%s", sw_gguf_path(g));
    const sw_model_config *c = &m->cfg;
    const int64_t C = c->hidden, D = c->head_dim, FF = c->intermediate;
    const int64_t qd = c->n_heads * D, kvd = c->n_kv_heads * D;
    char n[96], b[96];
    sw_status st = SW_OK;
    /* The embedding keeps its stored type unless f32/bf16/f16 was asked:
     * it is a lookup table, and quantizing it to NF4 is not done (QLoRA). */
    sw_load_quant eq = o->quant == SW_LOAD_NF4 ? SW_LOAD_KEEP : o->quant;
    const sw_gguf_tensor *emb = need(ctx, g, "token_embd.weight", c->vocab, C);
    sw_linear tmp;
    if (!emb || sw_load_linear(ctx, &tmp, emb->data, emb->dtype, c->vocab, C, eq, "token_embd.weight")) goto fail;
    m->embed = tmp.w;
    if (vec(ctx, g, &m->norm, "output_norm.weight", C)) goto fail;
    if (c->tie_embeddings) {
        m->lm_head.w = m->embed;
        m->lm_head.out = c->vocab;
        m->lm_head.in = C;
    } else if (lin(ctx, g, &m->lm_head, "output.weight", c->vocab, C, eq, NULL)) {
        goto fail;
    }
    const sw_gguf_tensor *rf = sw_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf && vec(ctx, g, &m->rope_freqs, "rope_freqs.weight", D / 2)) goto fail;
    for (int64_t i = 0; i < c->n_layers; i++) {
        sw_layer *L = &m->layers[i];
#define NM(s) (snprintf(n, sizeof n, "blk.%lld." s ".weight", (long long)i), n)
#define BN(s) (c->qkv_bias ? (snprintf(b, sizeof b, "blk.%lld." s ".bias", (long long)i), b) : NULL)
        if (vec(ctx, g, &L->attn_norm, NM("attn_norm"), C) || vec(ctx, g, &L->mlp_norm, NM("ffn_norm"), C) ||
            lin(ctx, g, &L->q, NM("attn_q"), qd, C, o->quant, BN("attn_q")) ||
            lin(ctx, g, &L->k, NM("attn_k"), kvd, C, o->quant, BN("attn_k")) ||
            lin(ctx, g, &L->v, NM("attn_v"), kvd, C, o->quant, BN("attn_v")) ||
            lin(ctx, g, &L->o, NM("attn_output"), C, qd, o->quant, NULL) ||
            lin(ctx, g, &L->gate, NM("ffn_gate"), FF, C, o->quant, NULL) ||
            lin(ctx, g, &L->up, NM("ffn_up"), FF, C, o->quant, NULL) ||
            lin(ctx, g, &L->down, NM("ffn_down"), C, FF, o->quant, NULL))
            goto fail;
        if (c->qk_norm && (vec(ctx, g, &L->q_norm, NM("attn_q_norm"), D) || vec(ctx, g, &L->k_norm, NM("attn_k_norm"), D)))
            goto fail;
#undef NM
#undef BN
    }
    int64_t max_seq = o->max_seq > 0 ? o->max_seq : (c->max_pos < 2048 ? c->max_pos : 2048);
    if (sw_model_finish(ctx, m, max_seq)) goto fail;
    snprintf(m->source, sizeof m->source, "%s", sw_gguf_path(g));
    snprintf(m->quant, sizeof m->quant, "%s",
             m->layers[0].q.nf4 ? "nf4" : sw_dtype_name(m->layers[0].q.w->dtype));
    *out = m;
    return st;
fail:
    sw_model_free(m);
    return ctx->status;
}
