/* gpu_model.c — the frozen model on a device (see gpu.h): uploading a host
 * model's weights in the storage chosen, random weights of a real shape for
 * benchmarks, and dequantizing one projection right before its GEMM.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"
#include "gpu_graph.h"
#include "gpu_internal.h"

/* ------------------------------------------------------------ memory */

void *sw_gpu_alloc(sw_ctx *ctx, sw_gpu *g, sw_mem_cat c, size_t bytes) {
    return sw_mem_alloc(ctx, g->mdev, c, bytes ? bytes : 16);
}

void sw_gpu_release(sw_gpu *g, sw_mem_cat c, void *p, size_t bytes) {
    if (p) sw_mem_free(g->mdev, c, p, bytes ? bytes : 16);
}

/* The engine's copies and memsets, timed when a profiler is attached. */
static sw_status move(sw_ctx *ctx, sw_gpu *g, int what, sw_device dd, void *dst, sw_device sd, const void *src,
                      size_t bytes) {
    if (!bytes) return SW_OK;
    int tok = sw_gpu_prof_begin(g, what);
    sw_status st = what == GP_ZERO ? sw_device_memset0(ctx, dd, dst, bytes)
                                   : sw_device_memcpy(ctx, dd, dst, sd, src, bytes);
    sw_gpu_prof_end(g, tok);
    return st;
}

sw_status sw_gpu_upload(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes) {
    return move(ctx, g, GP_UPLOAD, g->mdev, dst, SW_DEV_CPU, src, bytes);
}

sw_status sw_gpu_fetch(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes) {
    return move(ctx, g, GP_FETCH, SW_DEV_CPU, dst, g->mdev, src, bytes);
}

sw_status sw_gpu_copy(sw_ctx *ctx, sw_gpu *g, void *dst, const void *src, size_t bytes) {
    return move(ctx, g, GP_COPY, g->mdev, dst, g->mdev, src, bytes);
}

sw_status sw_gpu_zero(sw_ctx *ctx, sw_gpu *g, void *p, size_t bytes) {
    return move(ctx, g, GP_ZERO, g->mdev, p, g->mdev, NULL, bytes);
}

sw_status sw_gpu_sync(sw_ctx *ctx, sw_gpu *g) { return sw_device_sync(ctx, g->mdev); }

/* ------------------------------------------------------------ weights */

static size_t weight_bytes_of(int kind, sw_dtype t, int64_t out, int64_t in) {
    if (kind == GW_NF4) return (size_t)(out * in / 2);
    if (kind == GW_BLOCKS) return (size_t)out * sw_dtype_row_bytes(t, in);
    return sizeof(sw_bf16) * (size_t)(out * in);
}

static void gweight_free(sw_gpu *g, gweight *w) {
    sw_gpu_release(g, SW_MEM_WEIGHTS, w->w, w->wbytes);
    if (w->absmax) sw_gpu_release(g, SW_MEM_WEIGHTS, w->absmax, sizeof(float) * (size_t)(w->out * w->in / 64));
    if (w->b) sw_gpu_release(g, SW_MEM_WEIGHTS, w->b, sizeof(float) * (size_t)w->out);
    memset(w, 0, sizeof *w);
}

static sw_status gweight_alloc(sw_ctx *ctx, sw_gpu *g, gweight *w, int kind, sw_dtype t, int64_t out, int64_t in) {
    w->kind = kind;
    w->t = t;
    w->out = out;
    w->in = in;
    w->wbytes = weight_bytes_of(kind, t, out, in);
    if (!(w->w = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, w->wbytes))) return ctx->status;
    if (kind == GW_NF4 && !(w->absmax = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, sizeof(float) * (size_t)(out * in / 64))))
        return ctx->status;
    g->weight_bytes += w->wbytes + (kind == GW_NF4 ? sizeof(float) * (size_t)(out * in / 64) : 0);
    if (kind != GW_BF16 && out * in > g->wbuf_elems) g->wbuf_elems = out * in;
    return SW_OK;
}

/* A float32 (rows, in) host panel into rows [r0, r0+n) of a bf16 or NF4 weight. */
static sw_status store_panel(sw_ctx *ctx, sw_gpu *g, gweight *w, const float *panel, int64_t r0, int64_t n,
                             sw_bf16 *hb, float *dtmp) {
    int64_t ne = n * w->in, e0 = r0 * w->in;
    if (w->kind == GW_BF16) {
        for (int64_t i = 0; i < ne; i++) hb[i] = sw_f32_to_bf16(panel[i]);
        return sw_gpu_upload(ctx, g, (sw_bf16 *)w->w + e0, hb, sizeof(sw_bf16) * (size_t)ne);
    }
    /* NF4: blocks of 64 never straddle panels because panels are whole rows
     * and in is a multiple of 64 (checked by the caller). */
    if (sw_gpu_upload(ctx, g, dtmp, panel, sizeof(float) * (size_t)ne)) return ctx->status;
    return g->ops->nf4_quant(ctx, g->dev, (uint8_t *)w->w + e0 / 2, w->absmax + e0 / 64, dtmp, ne);
}

#define PANEL_ELEMS (1 << 22)

static sw_status upload_linear(sw_ctx *ctx, sw_gpu *g, gweight *w, const sw_linear *l, sw_gpu_weights mode) {
    const sw_dtype t = l->w->dtype;
    bool blocks = !l->nf4 && sw_dtype_info_of(t)->quantized;
    int kind = GW_BF16;
    if (mode == SW_GPU_W_NF4 || (mode == SW_GPU_W_AS_STORED && l->nf4)) kind = GW_NF4;
    else if (mode == SW_GPU_W_AS_STORED && blocks) kind = GW_BLOCKS;
    if (kind == GW_NF4 && l->in % 64)
        return sw_err(ctx, SW_EINVAL, "gpu: NF4 needs rows that are a multiple of 64 elements (this one has %lld)",
                      (long long)l->in);
    if (gweight_alloc(ctx, g, w, kind, t, l->out, l->in)) return ctx->status;
    if (l->b) {
        if (!(w->b = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, sizeof(float) * (size_t)l->out))) return ctx->status;
        if (sw_gpu_upload(ctx, g, w->b, sw_tensor_data(l->b), sizeof(float) * (size_t)l->out)) return ctx->status;
    }
    if (kind == GW_NF4 && l->nf4) { /* the same codes the CPU path uses */
        if (sw_gpu_upload(ctx, g, w->w, sw_tensor_data(l->w), w->wbytes)) return ctx->status;
        return sw_gpu_upload(ctx, g, w->absmax, sw_tensor_data(l->absmax), sizeof(float) * (size_t)(l->out * l->in / 64));
    }
    if (kind == GW_BLOCKS) return sw_gpu_upload(ctx, g, w->w, sw_tensor_data(l->w), w->wbytes);
    int64_t rows = PANEL_ELEMS / l->in > 0 ? PANEL_ELEMS / l->in : 1;
    if (rows > l->out) rows = l->out;
    float *panel = malloc(sizeof(float) * (size_t)(rows * l->in));
    sw_bf16 *hb = malloc(sizeof(sw_bf16) * (size_t)(rows * l->in));
    float *dtmp = kind == GW_NF4 ? sw_gpu_alloc(ctx, g, SW_MEM_WORKSPACE, sizeof(float) * (size_t)(rows * l->in)) : NULL;
    sw_status st = SW_OK;
    if (!panel || !hb) st = sw_err(ctx, SW_ENOMEM, "gpu: upload panel");
    else if (kind == GW_NF4 && !dtmp) st = ctx->status;
    for (int64_t r0 = 0; r0 < l->out && !st; r0 += rows) {
        int64_t n = l->out - r0 < rows ? l->out - r0 : rows;
        sw_linear_rows(panel, l, r0, n);
        st = store_panel(ctx, g, w, panel, r0, n, hb, dtmp);
        if (!st && dtmp) st = sw_gpu_sync(ctx, g); /* dtmp is reused by the next panel */
    }
    if (dtmp) sw_gpu_release(g, SW_MEM_WORKSPACE, dtmp, sizeof(float) * (size_t)(rows * l->in));
    free(panel);
    free(hb);
    return st;
}

/* A (V, C) host tensor of any dtype as a bf16 device table. */
static sw_status upload_table(sw_ctx *ctx, sw_gpu *g, sw_bf16 **out, const sw_tensor *t, int64_t V, int64_t C) {
    size_t bytes = sizeof(sw_bf16) * (size_t)(V * C);
    if (!(*out = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, bytes))) return ctx->status;
    g->weight_bytes += bytes;
    int64_t rows = PANEL_ELEMS / C > 0 ? PANEL_ELEMS / C : 1;
    float *row = malloc(sizeof(float) * (size_t)C);
    sw_bf16 *hb = malloc(sizeof(sw_bf16) * (size_t)(rows * C));
    sw_status st = row && hb ? SW_OK : sw_err(ctx, SW_ENOMEM, "gpu: upload table");
    for (int64_t r0 = 0; r0 < V && !st; r0 += rows) {
        int64_t n = V - r0 < rows ? V - r0 : rows;
        for (int64_t r = 0; r < n; r++) {
            sw_tensor_row_f32(row, t, r0 + r);
            for (int64_t c = 0; c < C; c++) hb[r * C + c] = sw_f32_to_bf16(row[c]);
        }
        st = sw_gpu_upload(ctx, g, *out + r0 * C, hb, sizeof(sw_bf16) * (size_t)(n * C));
    }
    free(row);
    free(hb);
    return st;
}

static sw_status upload_f32(sw_ctx *ctx, sw_gpu *g, float **out, const float *src, int64_t n) {
    if (!(*out = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, sizeof(float) * (size_t)n))) return ctx->status;
    return sw_gpu_upload(ctx, g, *out, src, sizeof(float) * (size_t)n);
}

static sw_status gpu_shell(sw_ctx *ctx, const sw_model_config *cfg, int dev, const sw_gpu_opts *o, sw_gpu **out) {
    *out = NULL;
    if (dev != SW_GPU_EMULATE) {
#ifdef SW_HAVE_CUDA
        if (!sw_device_available(SW_DEV_CUDA(dev)))
            return sw_err(ctx, SW_EINVAL, "gpu: no CUDA device %d (this machine has %d)", dev, sw_device_cuda_count());
#else
        return sw_err(ctx, SW_EINVAL, "gpu: this build has no CUDA backend (nvcc was not found when it was built)");
#endif
    }
    if (cfg->head_dim % 2 || cfg->n_heads % cfg->n_kv_heads)
        return sw_err(ctx, SW_EINVAL, "gpu: unsupported head layout");
    /* the CUDA attention kernels are built for these head sizes: say so at
     * load rather than at the first step */
    int64_t D = cfg->head_dim;
    if (dev != SW_GPU_EMULATE && D != 16 && D != 32 && D != 64 && D != 128)
        return sw_err(ctx, SW_EUNSUPPORTED, "gpu: head dim %lld is not supported on CUDA (16, 32, 64 or 128)",
                      (long long)D);
    sw_gpu *g = calloc(1, sizeof *g);
    if (!g || !(g->layers = calloc((size_t)cfg->n_layers, sizeof *g->layers))) {
        free(g);
        return sw_err(ctx, SW_ENOMEM, "gpu: model state");
    }
    g->cfg = *cfg;
    g->dev = dev;
    g->mdev = dev == SW_GPU_EMULATE ? SW_DEV_CPU : SW_DEV_CUDA(dev);
#ifdef SW_HAVE_CUDA
    g->ops = dev == SW_GPU_EMULATE ? &sw_gpu_ops_emu : &sw_gpu_ops_cuda;
#else
    g->ops = &sw_gpu_ops_emu;
#endif
    g->graphs_on = sw_gpu_graphs_default(dev, o->graphs);
    *out = g;
    return SW_OK;
}

static sw_status finish_scratch(sw_ctx *ctx, sw_gpu *g) {
    if (g->wbuf_elems && !(g->wbuf = sw_gpu_alloc(ctx, g, SW_MEM_WORKSPACE, sizeof(sw_bf16) * (size_t)g->wbuf_elems)))
        return ctx->status;
    return sw_gpu_sync(ctx, g);
}

sw_status sw_gpu_new(sw_ctx *ctx, const sw_model *m, int dev, const sw_gpu_opts *o, sw_gpu **out) {
    const sw_model_config *cfg = &m->cfg;
    sw_gpu_opts dflt = {0};
    if (!o) o = &dflt;
    sw_gpu *g;
    if (gpu_shell(ctx, cfg, dev, o, &g)) return ctx->status;
    const int64_t C = cfg->hidden, D = cfg->head_dim;
    sw_status st = upload_table(ctx, g, &g->embed, m->embed, cfg->vocab, C);
    if (!st) {
        if (m->lm_head.w == m->embed) g->head = g->embed;
        else st = upload_table(ctx, g, &g->head, m->lm_head.w, cfg->vocab, C);
    }
    if (!st) st = upload_f32(ctx, g, &g->norm, sw_tensor_data(m->norm), C);
    if (!st) st = upload_f32(ctx, g, &g->inv_freq, m->inv_freq, D / 2);
    for (int64_t li = 0; li < cfg->n_layers && !st; li++) {
        const sw_layer *L = &m->layers[li];
        glayer *G = &g->layers[li];
        st = upload_f32(ctx, g, &G->attn_norm, sw_tensor_data(L->attn_norm), C);
        if (!st) st = upload_f32(ctx, g, &G->mlp_norm, sw_tensor_data(L->mlp_norm), C);
        if (!st && cfg->qk_norm) st = upload_f32(ctx, g, &G->q_norm, sw_tensor_data(L->q_norm), D);
        if (!st && cfg->qk_norm) st = upload_f32(ctx, g, &G->k_norm, sw_tensor_data(L->k_norm), D);
        for (int t = 0; t < SW_LORA_NTARGETS && !st; t++)
            st = upload_linear(ctx, g, &G->lin[t], sw_model_linear((sw_model *)m, li, t), o->weights);
    }
    if (!st) st = finish_scratch(ctx, g);
    if (st) {
        sw_err_prefix(ctx, "gpu: loading the model onto %s", dev == SW_GPU_EMULATE ? "the emulated device" : "the GPU");
        sw_gpu_free(g);
        return ctx->status;
    }
    *out = g;
    return SW_OK;
}

/* ------------------------------------------------------- random weights */

static sw_status random_f32(sw_ctx *ctx, sw_gpu *g, float *dst, uint64_t seed, uint64_t off, float scale, int64_t n) {
#ifdef SW_HAVE_CUDA
    if (g->dev != SW_GPU_EMULATE) return sw_randn_cuda(ctx, dst, seed, off, scale, n, g->dev);
#endif
    (void)ctx;
    (void)g;
    sw_randn_cpu(dst, seed, off, scale, n);
    return SW_OK;
}

static sw_status random_linear(sw_ctx *ctx, sw_gpu *g, gweight *w, int64_t out, int64_t in, bool nf4, uint64_t seed,
                               float *tmp) {
    if (gweight_alloc(ctx, g, w, nf4 ? GW_NF4 : GW_BF16, nf4 ? SW_NF4 : SW_BF16, out, in)) return ctx->status;
    if (random_f32(ctx, g, tmp, seed, 0, 0.02f, out * in)) return ctx->status;
    if (nf4) return g->ops->nf4_quant(ctx, g->dev, w->w, w->absmax, tmp, out * in);
    return g->ops->dequant_bf16(ctx, g->dev, w->w, tmp, SW_F32, out * in);
}

/* A random bf16 (V, C) table, through tmp (float32, V*C). */
static sw_status random_table(sw_ctx *ctx, sw_gpu *g, sw_bf16 **out, uint64_t seed, int64_t n, float *tmp) {
    if (!(*out = sw_gpu_alloc(ctx, g, SW_MEM_WEIGHTS, sizeof(sw_bf16) * (size_t)n))) return ctx->status;
    g->weight_bytes += sizeof(sw_bf16) * (size_t)n;
    if (random_f32(ctx, g, tmp, seed, 0, 0.02f, n)) return ctx->status;
    return g->ops->dequant_bf16(ctx, g->dev, *out, tmp, SW_F32, n);
}

static sw_status fill_f32(sw_ctx *ctx, sw_gpu *g, float **out, const float *host, float v, int64_t n) {
    float *h = malloc(sizeof(float) * (size_t)n);
    if (!h) return sw_err(ctx, SW_ENOMEM, "gpu: fill");
    for (int64_t i = 0; i < n; i++) h[i] = host ? host[i] : v;
    sw_status st = upload_f32(ctx, g, out, h, n);
    free(h);
    return st;
}

sw_status sw_gpu_new_random(sw_ctx *ctx, const sw_model_config *cfg, int dev, const sw_gpu_opts *o, sw_gpu **out) {
    sw_gpu_opts dflt = {0};
    if (!o) o = &dflt;
    sw_gpu *g;
    if (gpu_shell(ctx, cfg, dev, o, &g)) return ctx->status;
    const int64_t C = cfg->hidden, D = cfg->head_dim, V = cfg->vocab, FF = cfg->intermediate;
    const int64_t QD = cfg->n_heads * D, KVD = cfg->n_kv_heads * D;
    bool nf4 = o->weights == SW_GPU_W_NF4;
    int64_t biggest = V * C > FF * C ? V * C : FF * C;
    if (QD * C > biggest) biggest = QD * C;
    size_t tmp_bytes = sizeof(float) * (size_t)biggest;
    float *tmp = sw_gpu_alloc(ctx, g, SW_MEM_WORKSPACE, tmp_bytes);
    float *freq = malloc(sizeof(float) * (size_t)(D / 2));
    sw_status st = tmp && freq ? SW_OK : (tmp ? sw_err(ctx, SW_ENOMEM, "gpu: rope table") : ctx->status);
    for (int64_t i = 0; freq && i < D / 2; i++) freq[i] = (float)(1.0 / pow(cfg->rope_theta, (double)(2 * i) / (double)D));
    uint64_t seed = o->seed;
    if (!st) st = random_table(ctx, g, &g->embed, seed++, V * C, tmp);
    if (!st && !cfg->tie_embeddings) /* tmp is reused: the stream orders it */
        st = random_table(ctx, g, &g->head, seed++, V * C, tmp);
    if (!st && cfg->tie_embeddings) g->head = g->embed;
    if (!st) st = fill_f32(ctx, g, &g->norm, NULL, 1.0f, C);
    if (!st) st = fill_f32(ctx, g, &g->inv_freq, freq, 0, D / 2);
    for (int64_t li = 0; li < cfg->n_layers && !st; li++) {
        glayer *G = &g->layers[li];
        int64_t shp[SW_LORA_NTARGETS][2] = {{QD, C}, {KVD, C}, {KVD, C}, {C, QD}, {FF, C}, {FF, C}, {C, FF}};
        st = fill_f32(ctx, g, &G->attn_norm, NULL, 1.0f, C);
        if (!st) st = fill_f32(ctx, g, &G->mlp_norm, NULL, 1.0f, C);
        if (!st && cfg->qk_norm) st = fill_f32(ctx, g, &G->q_norm, NULL, 1.0f, D);
        if (!st && cfg->qk_norm) st = fill_f32(ctx, g, &G->k_norm, NULL, 1.0f, D);
        for (int t = 0; t < SW_LORA_NTARGETS && !st; t++) {
            st = random_linear(ctx, g, &G->lin[t], shp[t][0], shp[t][1], nf4, seed++, tmp);
            if (!st && cfg->qkv_bias && t <= SW_LORA_V) st = fill_f32(ctx, g, &G->lin[t].b, NULL, 0.0f, shp[t][0]);
            if (!st) st = sw_gpu_sync(ctx, g); /* tmp is reused */
        }
    }
    free(freq);
    if (tmp) sw_gpu_release(g, SW_MEM_WORKSPACE, tmp, tmp_bytes);
    if (!st) st = finish_scratch(ctx, g);
    if (st) {
        sw_gpu_free(g);
        return ctx->status;
    }
    *out = g;
    return SW_OK;
}

void sw_gpu_free(sw_gpu *g) {
    if (!g) return;
    sw_gpu_prof_forget(g);
    sw_gpu_graphs_free(g);
    sw_gpu_free_activations(g);
    const sw_model_config *cfg = &g->cfg;
    const int64_t C = cfg->hidden, D = cfg->head_dim, V = cfg->vocab;
    if (g->head && g->head != g->embed) sw_gpu_release(g, SW_MEM_WEIGHTS, g->head, sizeof(sw_bf16) * (size_t)(V * C));
    sw_gpu_release(g, SW_MEM_WEIGHTS, g->embed, sizeof(sw_bf16) * (size_t)(V * C));
    sw_gpu_release(g, SW_MEM_WEIGHTS, g->norm, sizeof(float) * (size_t)C);
    sw_gpu_release(g, SW_MEM_WEIGHTS, g->inv_freq, sizeof(float) * (size_t)(D / 2));
    for (int64_t li = 0; g->layers && li < cfg->n_layers; li++) {
        glayer *G = &g->layers[li];
        sw_gpu_release(g, SW_MEM_WEIGHTS, G->attn_norm, sizeof(float) * (size_t)C);
        sw_gpu_release(g, SW_MEM_WEIGHTS, G->mlp_norm, sizeof(float) * (size_t)C);
        sw_gpu_release(g, SW_MEM_WEIGHTS, G->q_norm, sizeof(float) * (size_t)D);
        sw_gpu_release(g, SW_MEM_WEIGHTS, G->k_norm, sizeof(float) * (size_t)D);
        for (int t = 0; t < SW_LORA_NTARGETS; t++) gweight_free(g, &G->lin[t]);
    }
    sw_gpu_release(g, SW_MEM_WORKSPACE, g->wbuf, sizeof(sw_bf16) * (size_t)g->wbuf_elems);
    sw_gpu_set_lora(NULL, g, NULL);
    free(g->layers);
    free(g);
}

sw_status sw_gpu_weight(sw_ctx *ctx, sw_gpu *g, const gweight *w, const sw_bf16 **out) {
    if (w->kind == GW_BF16) {
        *out = w->w;
        return SW_OK;
    }
    *out = g->wbuf;
    if (w->kind == GW_NF4) return g->ops->nf4_dequant_bf16(ctx, g->dev, g->wbuf, w->w, w->absmax, w->out * w->in);
    return g->ops->dequant_bf16(ctx, g->dev, g->wbuf, w->w, w->t, w->out * w->in);
}

size_t sw_gpu_weight_bytes(const sw_gpu *g) { return g->weight_bytes; }
sw_device sw_gpu_device(const sw_gpu *g) { return g->mdev; }
const sw_model_config *sw_gpu_config(const sw_gpu *g) { return &g->cfg; }
