/* gpu_train.c — one LoRA training forward/backward on the device (gpu.h).
 *
 * The same walk as core/train.c, in bf16 with float32 accumulation:
 *   forward   embed -> per layer: norm -> q,k,v (+LoRA) [-> q/k norms] ->
 *             rotary -> flash attention -> o (+LoRA, added onto the residual
 *             by the GEMM itself, beta = 1) -> norm -> gate, up (+LoRA) ->
 *             SwiGLU -> down (+LoRA, onto the residual) -> final norm ->
 *             head and cross-entropy over chunks of rows, so the logits of
 *             the whole batch never exist.
 *   backward  the layers in reverse; frozen weights pass activation
 *             gradients (dequantized one matrix at a time when quantized),
 *             adapters add dA and dB into the flat float32 gradient array.
 * Residual gradients are float32; the gradients feeding GEMMs are bf16.
 * With checkpointing only each layer's input is kept; the backward
 * recomputes one layer at a time (skipping the frozen down projection,
 * whose output the backward does not read).
 * Activation buffers stay allocated between calls of the same size.
 */
#include <stdlib.h>
#include <string.h>

#include "gpu_graph.h"
#include "gpu_internal.h"
#include "interrupt.h"

typedef struct gcache {
    sw_bf16 *h1, *q, *k, *v, *qraw, *kraw, *att, *x_mid, *h2, *g, *u, *U[GG_COUNT];
    float *r1, *rq, *rk, *lse, *r2;
} gcache;

typedef struct eng {
    sw_ctx *ctx;
    sw_gpu *g;
    const sw_gpu_ops *ops;
    int dev;
    int64_t T, C, D, Hq, Hkv, QD, KVD, FF, V, maxlen, chunk;
    int n_seqs;
    int64_t maxw[GG_COUNT];  /* widest stacked group, in columns (targets * r) */
    bool backward, ckpt;
    int ck_layout;           /* gpu_ckpt.c: where the layer inputs live */
    int64_t mlp_rows;        /* the MLP runs over row chunks of this size (g, u, a are that big) */
    int64_t row0;            /* first row of the call this (view of the) engine covers */
    bool drop;               /* LoRA dropout in this call (training with p > 0) */
    uint64_t drop_call;
    sw_bf16 *xd;             /* dropout(x) of one target, then (dU A) of one target */
    /* carved from g->act */
    sw_bf16 *inputs, *a, *hf; /* inputs: the checkpoint slots */
    gcache *caches;
    int n_caches;
    float *rf, *loss, *logits;
    int32_t *ids, *pos, *tgt, *cu;
    float *dres, *dh;
    sw_bf16 *dres_b, *datt, *dq, *dk, *dv, *dqr, *dkr, *dU;
    void *ws;
} eng;

#define CK(call)                                                                                                      \
    do {                                                                                                              \
        if (call) return E->ctx->status;                                                                              \
    } while (0)

/* -------------------------------------------------------------- buffers */

typedef struct carver {
    char *base;
    size_t off;
} carver;

static void *take(carver *c, size_t bytes) {
    size_t o = (c->off + 255) & ~(size_t)255;
    c->off = o + bytes;
    return c->base ? c->base + o : NULL;
}

#define BF(n) (sizeof(sw_bf16) * (size_t)(n))
#define FL(n) (sizeof(float) * (size_t)(n))

static void carve_cache(eng *E, carver *cv, gcache *c) {
    const int64_t T = E->T;
    memset(c, 0, sizeof *c);
    c->h1 = take(cv, BF(T * E->C));
    c->q = take(cv, BF(T * E->QD));
    c->k = take(cv, BF(T * E->KVD));
    c->v = take(cv, BF(T * E->KVD));
    c->att = take(cv, BF(T * E->QD));
    c->x_mid = take(cv, BF(T * E->C));
    c->h2 = take(cv, BF(T * E->C));
    c->g = take(cv, BF(E->mlp_rows * E->FF));
    c->u = take(cv, BF(E->mlp_rows * E->FF));
    c->r1 = take(cv, FL(T));
    c->r2 = take(cv, FL(T));
    c->lse = take(cv, FL(T * E->Hq));
    if (E->g->cfg.qk_norm) {
        c->qraw = take(cv, BF(T * E->QD));
        c->kraw = take(cv, BF(T * E->KVD));
        c->rq = take(cv, FL(T * E->Hq));
        c->rk = take(cv, FL(T * E->Hkv));
    }
    for (int k = 0; k < GG_COUNT; k++)
        if (E->maxw[k]) c->U[k] = take(cv, BF(T * E->maxw[k]));
}

/* Lay every buffer of the call out over one block (base NULL: just size it). */
static size_t carve(eng *E, char *base) {
    carver cv = {base, 0};
    const int64_t T = E->T, L = E->g->cfg.n_layers;
    E->inputs = take(&cv, BF((int64_t)sw_ckpt_device_slots(E->ck_layout, L + 1) * T * E->C));
    for (int i = 0; i < E->n_caches; i++) carve_cache(E, &cv, &E->caches[i]);
    E->a = take(&cv, BF(E->mlp_rows * E->FF));
    E->hf = take(&cv, BF(T * E->C));
    E->rf = take(&cv, FL(T));
    E->loss = take(&cv, FL(T));
    E->logits = take(&cv, FL(E->chunk * E->V));
    E->ids = take(&cv, sizeof(int32_t) * (size_t)T);
    E->pos = take(&cv, sizeof(int32_t) * (size_t)T);
    E->tgt = take(&cv, sizeof(int32_t) * (size_t)T);
    E->cu = take(&cv, sizeof(int32_t) * (size_t)(E->n_seqs + 1));
    E->dh = take(&cv, FL(T * E->C)); /* gradients into the norms; in the forward, residual_fwd's float32 sums */
    if (E->backward) {
        E->dres = take(&cv, FL(T * E->C));
        E->dres_b = take(&cv, BF(T * E->C));
        E->datt = take(&cv, BF(T * E->QD));
        E->dq = take(&cv, BF(T * E->QD));
        E->dk = take(&cv, BF(T * E->KVD));
        E->dv = take(&cv, BF(T * E->KVD));
        if (E->g->cfg.qk_norm) {
            E->dqr = take(&cv, BF(T * E->QD));
            E->dkr = take(&cv, BF(T * E->KVD));
        }
        int64_t w = 1;
        for (int k = 0; k < GG_COUNT; k++) w = E->maxw[k] > w ? E->maxw[k] : w;
        E->dU = take(&cv, BF(T * w));
#ifdef SW_HAVE_CUDA
        if (E->dev != SW_GPU_EMULATE) E->ws = take(&cv, sw_attn_bwd_ws_bytes(T, E->Hq, E->Hkv, E->D));
#endif
    }
    if (E->drop) { /* the widest adapter input: (T, C or QD), or a chunk of (rows, FF) */
        int64_t wide = T * (E->C > E->QD ? E->C : E->QD);
        E->xd = take(&cv, BF(wide > E->mlp_rows * E->FF ? wide : E->mlp_rows * E->FF));
    }
    return cv.off;
}

void sw_gpu_set_mlp_rows(sw_gpu *g, int64_t rows) { g->mlp_rows = rows; }

void sw_gpu_free_activations(sw_gpu *g) {
    sw_ckpt_free(g);
    if (g->act) sw_gpu_release(g, SW_MEM_ACTIVATIONS, g->act, g->act_bytes);
    g->act = NULL;
    g->act_bytes = 0;
}

/* ------------------------------------------------------------ pieces */

static int64_t window_of(const eng *E, int64_t li) {
    const sw_model_config *c = &E->g->cfg;
    return c->sliding_window > 0 && li >= c->max_window_layers ? c->sliding_window : 0;
}

static sw_status gemm(eng *E, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *A,
                      int64_t lda, const void *B, int64_t ldb, float beta, void *C, sw_dtype ct, int64_t ldc) {
    return E->ops->gemm(E->ctx, E->dev, ta, tb, M, N, K, alpha, A, SW_BF16, lda, B, ldb, beta, C, ct, ldc);
}

/* y (T, out) = x W^T (+ b), or y += x W^T when accumulate. */
static sw_status frozen_fwd(eng *E, sw_bf16 *y, const sw_bf16 *x, const gweight *w, bool accumulate) {
    const sw_bf16 *W;
    CK(sw_gpu_weight(E->ctx, E->g, w, &W));
    CK(gemm(E, false, true, E->T, w->out, w->in, 1.0f, x, w->in, W, w->in, accumulate ? 1.0f : 0.0f, y, SW_BF16, w->out));
    if (w->b) CK(E->ops->add_bias(E->ctx, E->dev, y, w->b, E->T, w->out, w->out));
    return SW_OK;
}

/* dx (T, in) = dy W, or += when accumulate; dx bf16 or float32. */
static sw_status frozen_bwd(eng *E, void *dx, sw_dtype dx_t, const sw_bf16 *dy, const gweight *w, bool accumulate) {
    const sw_bf16 *W;
    CK(sw_gpu_weight(E->ctx, E->g, w, &W));
    return gemm(E, false, false, E->T, w->in, w->out, 1.0f, dy, w->out, W, w->in, accumulate ? 1.0f : 0.0f, dx, dx_t,
                w->in);
}

static const glora_layer *lora_of(const eng *E, int64_t li) { return E->g->has_lora ? &E->g->ll[li] : NULL; }

/* x_d = dropout(x) for target t of layer li into E->xd (core/train.c's
 * lora_input: the mask is a pure function of the element's place in the
 * whole call, so a chunk of rows passes where it starts). */
static sw_status drop_input(eng *E, int64_t li, int t, const sw_bf16 *x, int64_t in) {
    return E->ops->dropout(E->ctx, E->dev, E->xd, SW_BF16, false, x, E->g->dropout, E->g->drop_seed, E->drop_call,
                           (uint64_t)(li * SW_LORA_NTARGETS + t), (uint64_t)(E->row0 * in), E->T * in);
}

/* U_k (T, n r) = x A_k^T for the stacked As of group k; with dropout each
 * target sees its own mask, so each gets its own GEMM. */
static sw_status lora_group_fwd(eng *E, const gcache *c, int64_t li, int k, const sw_bf16 *x, int64_t in) {
    const glora_layer *L = lora_of(E, li);
    if (!L || !L->nt[k]) return SW_OK;
    const int64_t r = E->g->r, w = L->nt[k] * r;
    if (!E->drop)
        return gemm(E, false, true, E->T, w, in, 1.0f, x, in, E->g->pb + L->offA[k], in, 0.0f, c->U[k], SW_BF16, w);
    for (int t = 0; t < SW_LORA_NTARGETS; t++) {
        if (sw_gpu_group_of[t] != k || L->slot[t] < 0) continue;
        const int64_t s = L->slot[t] * r;
        CK(drop_input(E, li, t, x, in));
        CK(gemm(E, false, true, E->T, r, in, 1.0f, E->xd, in, E->g->pb + L->offA[k] + s * in, in, 0.0f, c->U[k] + s,
                SW_BF16, w));
    }
    return SW_OK;
}

/* y (T, out, stride ldy; bf16 or float32) = scale U_t B_t^T + beta y */
static sw_status lora_out(eng *E, const gcache *c, int64_t li, int t, void *y, sw_dtype yt, int64_t ldy, float beta) {
    const glora_layer *L = lora_of(E, li);
    if (!L || L->slot[t] < 0) return SW_OK;
    int k = sw_gpu_group_of[t];
    int64_t r = E->g->r, w = L->nt[k] * r, out = E->g->layers[li].lin[t].out;
    return gemm(E, false, true, E->T, out, r, E->g->scale, c->U[k] + L->slot[t] * r, w, E->g->pb + L->offB[t], r, beta,
                y, yt, ldy);
}

/* An adapter's term must reach the bf16 activations through one rounding
 * of a float32 sum. Rounded separately, a term below half a bf16 step of
 * what it is added to vanishes: early in training, while B is small, all of
 * it, so the forward would not see the updates the backward asked for.
 *
 * y (T, out) = x W_t^T + scale U_t B_t^T: the adapter's term goes in first
 * and the frozen GEMM accumulates onto it in float32. */
static sw_status proj_fwd(eng *E, const gcache *c, int64_t li, int t, sw_bf16 *y, const sw_bf16 *x) {
    const glora_layer *L = lora_of(E, li);
    const gweight *w = &E->g->layers[li].lin[t];
    bool lora = L && L->slot[t] >= 0;
    if (lora) CK(lora_out(E, c, li, t, y, SW_BF16, w->out, 0.0f));
    return frozen_fwd(E, y, x, w, lora);
}

/* y (T, C), the residual stream, += x W_t^T + scale U_t B_t^T: both terms
 * summed in float32 in E->dh (free during the forward, and before a
 * recomputed layer's backward writes it), then added in one rounding. The
 * residual is much larger than one layer's update, so adding the terms to
 * it one after the other would lose far more of the adapter's. */
static sw_status residual_fwd(eng *E, const gcache *c, int64_t li, int t, sw_bf16 *y, const sw_bf16 *x) {
    const glora_layer *L = lora_of(E, li);
    const gweight *w = &E->g->layers[li].lin[t];
    if (!L || L->slot[t] < 0) return frozen_fwd(E, y, x, w, true);
    const sw_bf16 *W;
    CK(sw_gpu_weight(E->ctx, E->g, w, &W));
    CK(lora_out(E, c, li, t, E->dh, SW_F32, w->out, 0.0f));
    CK(gemm(E, false, true, E->T, w->out, w->in, 1.0f, x, w->in, W, w->in, 1.0f, E->dh, SW_F32, w->out));
    CK(E->ops->residual_add(E->ctx, E->dev, y, E->dh, E->T, w->out, w->out));
    if (w->b) CK(E->ops->add_bias(E->ctx, E->dev, y, w->b, E->T, w->out, w->out));
    return SW_OK;
}

/* dB_t += s dy^T U_t;  dU_t = s dy B_t  (dy: T x out, stride ldy) */
static sw_status lora_bwd_b(eng *E, const gcache *c, int64_t li, int t, const sw_bf16 *dy, int64_t ldy) {
    const glora_layer *L = lora_of(E, li);
    if (!L || L->slot[t] < 0) return SW_OK;
    sw_gpu *g = E->g;
    int k = sw_gpu_group_of[t];
    int64_t r = g->r, w = L->nt[k] * r, out = g->layers[li].lin[t].out, s = L->slot[t] * r;
    CK(gemm(E, true, false, out, r, E->T, g->scale, dy, ldy, c->U[k] + s, w, 1.0f, g->gr + L->offB[t], SW_F32, r));
    return gemm(E, false, false, E->T, r, out, g->scale, dy, ldy, g->pb + L->offB[t], r, 0.0f, E->dU + s, SW_BF16, w);
}

/* dA_k += dU^T x  (the whole group at once; per target with dropout, whose
 * masked input is made again) */
static sw_status lora_grad_a(eng *E, int64_t li, int k, const sw_bf16 *x, int64_t in) {
    const glora_layer *L = lora_of(E, li);
    if (!L || !L->nt[k]) return SW_OK;
    const int64_t r = E->g->r, w = L->nt[k] * r;
    if (!E->drop)
        return gemm(E, true, false, w, in, E->T, 1.0f, E->dU, w, x, in, 1.0f, E->g->gr + L->offA[k], SW_F32, in);
    for (int t = 0; t < SW_LORA_NTARGETS; t++) {
        if (sw_gpu_group_of[t] != k || L->slot[t] < 0) continue;
        const int64_t s = L->slot[t] * r;
        CK(drop_input(E, li, t, x, in));
        CK(gemm(E, true, false, r, in, E->T, 1.0f, E->dU + s, w, E->xd, in, 1.0f, E->g->gr + L->offA[k] + s * in,
                SW_F32, in));
    }
    return SW_OK;
}

/* dx += dU A_k; with dropout dx += mask * keep * (dU_t A_t) per target */
static sw_status lora_dx(eng *E, int64_t li, int k, int64_t in, void *dx, sw_dtype dx_t) {
    const glora_layer *L = lora_of(E, li);
    if (!L || !L->nt[k]) return SW_OK;
    const int64_t r = E->g->r, w = L->nt[k] * r;
    if (!E->drop)
        return gemm(E, false, false, E->T, in, w, 1.0f, E->dU, w, E->g->pb + L->offA[k], in, 1.0f, dx, dx_t, in);
    for (int t = 0; t < SW_LORA_NTARGETS; t++) {
        if (sw_gpu_group_of[t] != k || L->slot[t] < 0) continue;
        const int64_t s = L->slot[t] * r;
        CK(gemm(E, false, false, E->T, in, r, 1.0f, E->dU + s, w, E->g->pb + L->offA[k] + s * in, in, 0.0f, E->xd,
                SW_BF16, in));
        CK(E->ops->dropout(E->ctx, E->dev, dx, dx_t, true, E->xd, E->g->dropout, E->g->drop_seed, E->drop_call,
                           (uint64_t)(li * SW_LORA_NTARGETS + t), (uint64_t)(E->row0 * in), E->T * in));
    }
    return SW_OK;
}

/* ----------------------------------------------------------------- MLP */

/* E and c over rows [t0, t0 + mlp_rows) of the call: the per-token buffers
 * the MLP reads or writes start at row t0; g, u and a hold one chunk and are
 * used from their start. Everything the helpers above do then applies to
 * the chunk, so long contexts never hold (T, FF) activations. */
static void rows_view(const eng *E, const gcache *c, int64_t li, int64_t t0, eng *V, gcache *cv) {
    const int64_t C = E->C;
    *V = *E;
    *cv = *c;
    V->T = E->T - t0 < E->mlp_rows ? E->T - t0 : E->mlp_rows;
    V->row0 = E->row0 + t0;
    V->dh = E->dh + t0 * C;
    if (E->dres_b) V->dres_b = E->dres_b + t0 * C;
    cv->h2 = c->h2 + t0 * C;
    const glora_layer *L = lora_of(E, li);
    for (int k = GG_GU; L && k <= GG_DOWN; k++)
        if (L->nt[k]) cv->U[k] = c->U[k] + t0 * L->nt[k] * E->g->r;
}

/* g, u (with their adapters), a = SwiGLU(g, u) and the down adapter's x A^T */
static sw_status mlp_up(eng *E, const gcache *c, int64_t li) {
    CK(proj_fwd(E, c, li, SW_LORA_GATE, c->g, c->h2));
    CK(proj_fwd(E, c, li, SW_LORA_UP, c->u, c->h2));
    CK(E->ops->swiglu_fwd(E->ctx, E->dev, E->a, c->g, c->u, E->T * E->FF));
    return lora_group_fwd(E, c, li, GG_DOWN, E->a, E->FF);
}

/* The MLP's backward over a chunk: E->dres_b is the output's gradient;
 * adds the input norm's output gradient into E->dh and the adapters'. */
static sw_status mlp_bwd(eng *E, const gcache *c, int64_t li) {
    const glayer *G = &E->g->layers[li];
    const int64_t C = E->C, FF = E->FF;
    /* with recompute g and u are redone here; else they were kept, and only
     * a (shared scratch) is redone */
    if (E->ckpt) CK(mlp_up(E, c, li));
    else CK(E->ops->swiglu_fwd(E->ctx, E->dev, E->a, c->g, c->u, E->T * FF));
    CK(lora_bwd_b(E, c, li, SW_LORA_DOWN, E->dres_b, C));
    CK(lora_grad_a(E, li, GG_DOWN, E->a, FF)); /* dA reads a; then a's buffer becomes da */
    sw_bf16 *da = E->a;
    CK(frozen_bwd(E, da, SW_BF16, E->dres_b, &G->lin[SW_LORA_DOWN], false));
    CK(lora_dx(E, li, GG_DOWN, FF, da, SW_BF16));
    /* dg, du overwrite g, u (the kernel reads each element before writing
     * it, and nothing reads g or u after): two (T, FF) buffers less */
    sw_bf16 *dg = c->g, *du = c->u;
    CK(E->ops->swiglu_bwd(E->ctx, E->dev, dg, du, da, c->g, c->u, E->T * FF));
    CK(lora_bwd_b(E, c, li, SW_LORA_GATE, dg, FF));
    CK(lora_bwd_b(E, c, li, SW_LORA_UP, du, FF));
    CK(frozen_bwd(E, E->dh, SW_F32, dg, &G->lin[SW_LORA_GATE], false));
    CK(frozen_bwd(E, E->dh, SW_F32, du, &G->lin[SW_LORA_UP], true));
    CK(lora_grad_a(E, li, GG_GU, c->h2, C));
    return lora_dx(E, li, GG_GU, C, E->dh, SW_F32);
}

/* -------------------------------------------------------------- layers */

static sw_status layer_fwd(eng *E, const gcache *c, int64_t li, bool recompute) {
    sw_gpu *g = E->g;
    const sw_model_config *cfg = &g->cfg;
    const glayer *G = &g->layers[li];
    const sw_gpu_ops *op = E->ops;
    const int64_t T = E->T, C = E->C, D = E->D;
    const float eps = (float)cfg->rms_eps;
    const sw_bf16 *x_in = sw_ckpt_at(g, li);
    CK(op->rmsnorm_fwd(E->ctx, E->dev, c->h1, c->r1, x_in, G->attn_norm, eps, T, C));
    CK(lora_group_fwd(E, c, li, GG_QKV, c->h1, C));
    sw_bf16 *qd = cfg->qk_norm ? c->qraw : c->q, *kd = cfg->qk_norm ? c->kraw : c->k;
    CK(proj_fwd(E, c, li, SW_LORA_Q, qd, c->h1));
    CK(proj_fwd(E, c, li, SW_LORA_K, kd, c->h1));
    CK(proj_fwd(E, c, li, SW_LORA_V, c->v, c->h1));
    if (cfg->qk_norm) {
        CK(op->rmsnorm_fwd(E->ctx, E->dev, c->q, c->rq, c->qraw, G->q_norm, eps, T * E->Hq, D));
        CK(op->rmsnorm_fwd(E->ctx, E->dev, c->k, c->rk, c->kraw, G->k_norm, eps, T * E->Hkv, D));
    }
    CK(op->rope(E->ctx, E->dev, c->q, E->pos, g->inv_freq, cfg->rope_interleaved, false, T, E->Hq, D));
    CK(op->rope(E->ctx, E->dev, c->k, E->pos, g->inv_freq, cfg->rope_interleaved, false, T, E->Hkv, D));
    CK(op->attn_fwd(E->ctx, E->dev, c->att, c->lse, c->q, c->k, c->v, E->cu, E->n_seqs, E->maxlen, T,
                    window_of(E, li), E->Hq, E->Hkv, D));
    CK(sw_gpu_copy(E->ctx, g, c->x_mid, x_in, BF(T * C)));
    CK(lora_group_fwd(E, c, li, GG_O, c->att, E->QD));
    CK(residual_fwd(E, c, li, SW_LORA_O, c->x_mid, c->att));
    CK(op->rmsnorm_fwd(E->ctx, E->dev, c->h2, c->r2, c->x_mid, G->mlp_norm, eps, T, C));
    CK(lora_group_fwd(E, c, li, GG_GU, c->h2, C));
    /* recompute: the MLP is redone chunk by chunk inside layer_bwd, and the
     * layer's output is already saved */
    if (recompute) return SW_OK;
    CK(sw_ckpt_before_write(E->ctx, g, li + 1));
    sw_bf16 *x_out = sw_ckpt_at(g, li + 1);
    CK(sw_gpu_copy(E->ctx, g, x_out, c->x_mid, BF(T * C)));
    for (int64_t t0 = 0; t0 < T; t0 += E->mlp_rows) {
        eng V;
        gcache cv;
        rows_view(E, c, li, t0, &V, &cv);
        CK(mlp_up(&V, &cv, li));
        CK(residual_fwd(&V, &cv, li, SW_LORA_DOWN, x_out + t0 * C, V.a));
    }
    return sw_ckpt_after_write(E->ctx, g, li + 1);
}

/* E->dres: gradient of the layer's output; on return, of its input. */
static sw_status layer_bwd(eng *E, const gcache *c, int64_t li) {
    sw_gpu *g = E->g;
    const sw_model_config *cfg = &g->cfg;
    const glayer *G = &g->layers[li];
    const sw_gpu_ops *op = E->ops;
    sw_ctx *ctx = E->ctx;
    const int64_t T = E->T, C = E->C, D = E->D;
    const sw_bf16 *x_in = sw_ckpt_at(g, li);
    CK(op->dequant_bf16(ctx, E->dev, E->dres_b, E->dres, SW_F32, T * C));
    for (int64_t t0 = 0; t0 < T; t0 += E->mlp_rows) {
        eng V;
        gcache cv;
        rows_view(E, c, li, t0, &V, &cv);
        CK(mlp_bwd(&V, &cv, li));
    }
    /* the residual gradient is only read as dres_b above: the norm's
     * gradient accumulates into it in place, here and at the end */
    CK(op->rmsnorm_bwd(ctx, E->dev, E->dres, SW_F32, E->dh, SW_F32, c->x_mid, G->mlp_norm, c->r2, T, C));
    /* attention: o */
    CK(op->dequant_bf16(ctx, E->dev, E->dres_b, E->dres, SW_F32, T * C));
    CK(lora_bwd_b(E, c, li, SW_LORA_O, E->dres_b, C));
    CK(frozen_bwd(E, E->datt, SW_BF16, E->dres_b, &G->lin[SW_LORA_O], false));
    CK(lora_grad_a(E, li, GG_O, c->att, E->QD));
    CK(lora_dx(E, li, GG_O, E->QD, E->datt, SW_BF16));
    CK(op->attn_bwd(ctx, E->dev, E->dq, E->dk, E->dv, E->datt, c->att, c->lse, c->q, c->k, c->v, E->cu, E->n_seqs,
                    E->maxlen, T, window_of(E, li), E->Hq, E->Hkv, D, E->ws));
    CK(op->rope(ctx, E->dev, E->dq, E->pos, g->inv_freq, cfg->rope_interleaved, true, T, E->Hq, D));
    CK(op->rope(ctx, E->dev, E->dk, E->pos, g->inv_freq, cfg->rope_interleaved, true, T, E->Hkv, D));
    sw_bf16 *dq = E->dq, *dk = E->dk;
    if (cfg->qk_norm) {
        CK(op->rmsnorm_bwd(ctx, E->dev, E->dqr, SW_BF16, E->dq, SW_BF16, c->qraw, G->q_norm, c->rq, T * E->Hq, D));
        CK(op->rmsnorm_bwd(ctx, E->dev, E->dkr, SW_BF16, E->dk, SW_BF16, c->kraw, G->k_norm, c->rk, T * E->Hkv, D));
        dq = E->dqr;
        dk = E->dkr;
    }
    /* q, k, v */
    CK(lora_bwd_b(E, c, li, SW_LORA_Q, dq, E->QD));
    CK(lora_bwd_b(E, c, li, SW_LORA_K, dk, E->KVD));
    CK(lora_bwd_b(E, c, li, SW_LORA_V, E->dv, E->KVD));
    CK(frozen_bwd(E, E->dh, SW_F32, dq, &G->lin[SW_LORA_Q], false));
    CK(frozen_bwd(E, E->dh, SW_F32, dk, &G->lin[SW_LORA_K], true));
    CK(frozen_bwd(E, E->dh, SW_F32, E->dv, &G->lin[SW_LORA_V], true));
    CK(lora_grad_a(E, li, GG_QKV, c->h1, C));
    CK(lora_dx(E, li, GG_QKV, C, E->dh, SW_F32));
    return op->rmsnorm_bwd(ctx, E->dev, E->dres, SW_F32, E->dh, SW_F32, x_in, G->attn_norm, c->r1, T, C);
}

/* --------------------------------------------------------- head and loss */

static sw_status head(eng *E, const int32_t *tgt, const sw_train_opts *o) {
    sw_gpu *g = E->g;
    sw_ctx *ctx = E->ctx;
    const int64_t T = E->T, C = E->C, V = E->V, L = g->cfg.n_layers;
    const sw_bf16 *xL = sw_ckpt_at(g, L);
    CK(E->ops->rmsnorm_fwd(ctx, E->dev, E->hf, E->rf, xL, g->norm, (float)g->cfg.rms_eps, T, C));
    CK(sw_gpu_zero(ctx, g, E->loss, FL(T)));
    if (E->backward) CK(sw_gpu_zero(ctx, g, E->dh, FL(T * C)));
    for (int64_t t0 = 0; t0 < T; t0 += E->chunk) {
        int64_t n = T - t0 < E->chunk ? T - t0 : E->chunk, trained = 0;
        for (int64_t t = t0; t < t0 + n; t++) trained += tgt[t] >= 0;
        if (!trained && !o->logits) continue;
        CK(gemm(E, false, true, n, V, C, 1.0f, E->hf + t0 * C, C, g->head, C, 0.0f, E->logits, SW_F32, V));
        if (o->logits) CK(sw_gpu_fetch(ctx, g, o->logits + t0 * V, E->logits, FL(n * V)));
        if (!trained) continue;
        sw_bf16 *dl = E->backward ? (sw_bf16 *)E->logits : NULL; /* in place: row r at logits + r V */
        CK(E->ops->cross_entropy(ctx, E->dev, E->loss + t0, dl, E->logits, E->tgt + t0, o->loss_scale, n, V));
        if (E->backward)
            CK(gemm(E, false, false, n, C, V, 1.0f, dl, 2 * V, g->head, C, 0.0f, E->dh + t0 * C, SW_F32, C));
    }
    if (!E->backward) return SW_OK;
    CK(sw_gpu_zero(ctx, g, E->dres, FL(T * C)));
    return E->ops->rmsnorm_bwd(ctx, E->dev, E->dres, SW_F32, E->dh, SW_F32, xL, g->norm, E->rf, T, C);
}

/* ------------------------------------------------------------ one batch */

typedef struct step_args {
    eng *E;
    const int32_t *tgt;
    const sw_train_opts *o;
} step_args;

/* The step after the batch's uploads and before its losses come back:
 * device work only, so gpu_graph.c may record it into a CUDA graph. */
static sw_status enqueue_step(void *arg) {
    const step_args *a = arg;
    eng *E = a->E;
    sw_ctx *ctx = E->ctx;
    gcache *caches = E->caches;
    const int64_t L = E->g->cfg.n_layers;
    sw_gpu *g = E->g;
    sw_ckpt_begin(g); /* a step run again after a failed capture starts afresh */
    sw_status st = sw_ckpt_before_write(ctx, g, 0);
    if (!st) st = E->ops->embed(ctx, E->dev, sw_ckpt_at(g, 0), g->embed, E->ids, E->T, E->C);
    if (!st) st = sw_ckpt_after_write(ctx, g, 0);
    for (int64_t li = 0; li < L && !st; li++) {
        st = layer_fwd(E, &caches[E->n_caches > 1 ? li : 0], li, false);
        if (!st) st = sw_interrupt_check(ctx);
    }
    if (!st) st = head(E, a->tgt, a->o);
    for (int64_t li = L - 1; E->backward && !st && li >= 0; li--) {
        const gcache *c = &caches[E->n_caches > 1 ? li : 0];
        st = sw_ckpt_need(ctx, g, li);
        if (!st) st = sw_ckpt_prefetch(ctx, g, li - 1); /* overlaps this layer */
        if (E->ckpt && !st) st = layer_fwd(E, c, li, true);
        if (!st) st = layer_bwd(E, c, li);
        if (!st && a->o->layer_done) st = a->o->layer_done(a->o->layer_arg, li);
        if (!st) st = sw_interrupt_check(ctx);
    }
    return st;
}

#define LOGIT_CHUNK_BYTES ((size_t)256 << 20)
#define MLP_ROWS 16384 /* (rows, FF) bf16 x 3 buffers: 1.3 GiB at Llama-3-8B's FF */

sw_status sw_gpu_train_batch(sw_ctx *ctx, sw_gpu *g, const sw_seq_batch *b, const sw_train_opts *o, double *loss_sum,
                             int64_t *n_trained) {
    const sw_model_config *cfg = &g->cfg;
    const int64_t T = b->T;
    *loss_sum = 0;
    *n_trained = 0;
    int64_t one[2], maxlen;
    const int64_t *starts;
    int n_seqs;
    if (sw_seq_batch_check(ctx, cfg, b, one, &starts, &n_seqs, &maxlen)) return ctx->status;
    eng E0 = {.ctx = ctx, .g = g, .ops = g->ops, .dev = g->dev, .T = T, .C = cfg->hidden, .D = cfg->head_dim,
              .Hq = cfg->n_heads, .Hkv = cfg->n_kv_heads, .FF = cfg->intermediate, .V = cfg->vocab, .n_seqs = n_seqs};
    eng *E = &E0;
    E->maxlen = maxlen;
    E->QD = E->Hq * E->D;
    E->KVD = E->Hkv * E->D;
    E->backward = o->backward;
    if (E->backward && !g->has_lora) return sw_err(ctx, SW_EINVAL, "train: no adapter on the device to train");
    E->ckpt = o->checkpointing && E->backward;
    E->ck_layout = !E->backward ? SW_CKPT_RING : E->ckpt && o->offload ? SW_CKPT_OFFLOAD : SW_CKPT_ALL;
    E->drop = E->backward && g->has_lora && g->dropout > 0; /* dropout only while training, as the CPU */
    E->drop_call = o->dropout_call;
    const int64_t L = cfg->n_layers;
    E->chunk = (int64_t)(LOGIT_CHUNK_BYTES / (sizeof(float) * (size_t)E->V));
    if (E->chunk < 1) E->chunk = 1;
    if (E->chunk > T) E->chunk = T;
    for (int64_t li = 0; g->has_lora && li < L; li++)
        for (int k = 0; k < GG_COUNT; k++)
            if (g->ll[li].nt[k] * g->r > E->maxw[k]) E->maxw[k] = g->ll[li].nt[k] * g->r;
    E->n_caches = E->backward && !E->ckpt ? (int)L : 1;
    /* Without recompute the backward reads every layer's g and u: no
     * chunks. Otherwise chunks of at most MLP_ROWS, balanced. */
    E->mlp_rows = T;
    if (E->n_caches == 1) {
        int64_t most = g->mlp_rows > 0 ? g->mlp_rows : MLP_ROWS, n = (T + most - 1) / most;
        E->mlp_rows = (T + n - 1) / n;
    }
    gcache *caches = calloc((size_t)E->n_caches, sizeof *caches);
    int32_t *host = malloc(sizeof(int32_t) * (size_t)(3 * T + n_seqs + 1));
    if (!caches || !host) {
        free(caches);
        free(host);
        return sw_err(ctx, SW_ENOMEM, "train: host buffers");
    }
    E->caches = caches;
    size_t need = carve(E, NULL);
    sw_status st = SW_OK;
    if (g->act && g->act_bytes < need) sw_gpu_free_activations(g);
    if (!g->act) {
        if ((g->act = sw_gpu_alloc(ctx, g, SW_MEM_ACTIVATIONS, need))) g->act_bytes = need;
        else st = sw_err_prefix(ctx, "train: activations for %lld tokens", (long long)T);
    }
    int32_t *pos = host, *tgt = host + T, *cu = host + 2 * T;
    if (!st) {
        carve(E, g->act);
        st = sw_ckpt_setup(ctx, g, E->ck_layout, L + 1, BF(T * E->C), E->inputs);
    }
    if (!st) {
        sw_seq_batch_targets(b, starts, n_seqs, pos, tgt);
        for (int s = 0; s <= n_seqs; s++) cu[s] = (int32_t)starts[s];
        if (!(st = sw_gpu_upload(ctx, g, E->ids, b->ids, sizeof(int32_t) * (size_t)T)) &&
            !(st = sw_gpu_upload(ctx, g, E->pos, pos, sizeof(int32_t) * (size_t)T)) &&
            !(st = sw_gpu_upload(ctx, g, E->tgt, tgt, sizeof(int32_t) * (size_t)T)))
            st = sw_gpu_upload(ctx, g, E->cu, cu, sizeof(int32_t) * (size_t)(n_seqs + 1));
    }
    if (!st) {
        step_args a = {E, tgt, o};
        sw_gpu_step_shape sh = {.T = T, .maxlen = maxlen, .chunk = E->chunk, .n_seqs = n_seqs,
                                .backward = E->backward, .ckpt = E->ckpt, .loss_scale = o->loss_scale, .tgt = tgt,
                                .mlp_rows = E->mlp_rows};
        /* with logits asked for, the head copies them to the host mid-step;
         * offloaded checkpoints use a second stream; dropout's stream moves
         * every call (a launch argument); a layer hook launches collectives
         * on another stream: no graph for any of them */
        st = o->logits || o->layer_done || E->ck_layout == SW_CKPT_OFFLOAD || E->drop ? enqueue_step(&a)
                                                         : sw_gpu_graph_step(ctx, g, &sh, enqueue_step, &a);
    }
    /* the per-row losses come back once, at the end */
    float *rows = st ? NULL : malloc(sizeof(float) * (size_t)T);
    if (!st && !rows) st = sw_err(ctx, SW_ENOMEM, "train: losses");
    if (!st) st = sw_gpu_fetch(ctx, g, rows, E->loss, FL(T));
    if (!st) {
        double sum = 0;
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++)
            if (tgt[t] >= 0) sum += rows[t], n++;
        *loss_sum = sum;
        *n_trained = n;
    }
    free(rows);
    free(host);
    free(caches);
    if (st) sw_gpu_free_activations(g); /* a failed call keeps nothing */
    return st;
}
