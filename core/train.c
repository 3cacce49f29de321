/* train.c — forward with saved activations, and the backward pass, for
 * LoRA training on the CPU (see train.h).
 *
 * Per layer the forward keeps what the backward reads (the "cache"):
 * inputs of both norms and their rstd, q/k/v after rotation (and before
 * the q/k norms for Qwen3), attention output and log-sum-exp, the MLP's
 * gate and up, and each adapter's x A^T. With checkpointing only the
 * layer inputs are kept and one cache is refilled per layer during the
 * backward. The backward walks the layers in reverse:
 *   MLP:        down -> SwiGLU -> gate, up -> norm
 *   attention:  o -> attention -> rotary (-> q/k norms) -> q, k, v -> norm
 * adding into the residual gradient; frozen weights pass gradients through
 * (dx += dy W, dequantized panel by panel), adapters also collect dA, dB.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"
#include "interrupt.h"
#include "lora.h"

typedef struct lcache {
    float *x_in, *h1, *r1, *qraw, *kraw, *rq, *rk, *q, *k, *v, *lse, *att, *x_mid, *h2, *r2, *g, *u;
    float *lu[SW_LORA_NTARGETS]; /* dropout(x) A^T of each adapted projection */
} lcache;

typedef struct run {
    sw_ctx *ctx;
    sw_model *m;
    const sw_seq_batch *b;
    const int64_t *starts;   /* n_seqs + 1 */
    int n_seqs;
    const int32_t *pos;
    int64_t T, C, D, Hq, Hkv, QD, KVD, FF, maxlen;
    const sw_lora *lora;     /* NULL when no adapter is active */
    uint64_t drop_call;      /* dropout stream of this batch */
    bool train;              /* dropout only while training */
    float *S;                /* attention scratch: 2 * maxlen^2 */
    float *tmp;              /* T * max(in, out) */
    float *tmp2;             /* T * max(in, out) */
    float *lora_u;           /* T * r */
} run;

static size_t cache_floats(const run *R) {
    size_t T = (size_t)R->T, C = (size_t)R->C, QD = (size_t)R->QD, KVD = (size_t)R->KVD, FF = (size_t)R->FF;
    size_t n = 4 * T * C + 3 * T + 2 * T * QD + 2 * T * KVD + T * (size_t)R->Hq + 2 * T * FF;
    if (R->m->cfg.qk_norm) n += T * QD + T * KVD + T * (size_t)(R->Hq + R->Hkv);
    if (R->lora) n += SW_LORA_NTARGETS * T * (size_t)R->lora->r;
    return n;
}

static void cache_carve(const run *R, lcache *c, float *p) {
    size_t T = (size_t)R->T, C = (size_t)R->C, QD = (size_t)R->QD, KVD = (size_t)R->KVD, FF = (size_t)R->FF;
    memset(c, 0, sizeof *c);
#define TAKE(f, n) (c->f = p, p += (n))
    TAKE(x_in, T * C); TAKE(h1, T * C); TAKE(r1, T); TAKE(q, T * QD); TAKE(k, T * KVD); TAKE(v, T * KVD);
    TAKE(lse, T * (size_t)R->Hq); TAKE(att, T * QD); TAKE(x_mid, T * C); TAKE(h2, T * C); TAKE(r2, T);
    TAKE(g, T * FF); TAKE(u, T * FF);
    if (R->m->cfg.qk_norm) {
        TAKE(qraw, T * QD); TAKE(kraw, T * KVD); TAKE(rq, T * (size_t)R->Hq); TAKE(rk, T * (size_t)R->Hkv);
    }
    if (R->lora)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) TAKE(lu[t], T * (size_t)R->lora->r);
#undef TAKE
}

/* ------------------------------------------------------------- dropout */


/* x_d = dropout(x) for the adapter branch; the mask is a pure function of
 * (seed, batch, layer, target, element), so the backward regenerates it. */
static const float *lora_input(const run *R, const float *x, int64_t li, int t, int64_t in) {
    const sw_lora *lo = R->lora;
    if (lo->dropout <= 0 || !R->train) return x;
    float keep = (float)(1.0 / (1.0 - lo->dropout));
    uint64_t cut = (uint64_t)(lo->dropout * 18446744073709551615.0);
    for (int64_t i = 0; i < R->T * in; i++) {
        uint64_t h = sw_hash4(lo->seed, R->drop_call, (uint64_t)(li * SW_LORA_NTARGETS + t), (uint64_t)i);
        R->tmp2[i] = h < cut ? 0.0f : x[i] * keep;
    }
    return R->tmp2;
}

/* -------------------------------------------------------------- forward */

/* y = x W^T (+ b) + scale * (x_d A^T) B^T; keeps x_d A^T in c->lu[t]. */
static sw_status proj_fwd(const run *R, lcache *c, float *y, const float *x, int64_t li, int t) {
    sw_linear *l = sw_model_linear(R->m, li, t);
    if (sw_linear_forward(R->ctx, y, x, l, R->T)) return R->ctx->status;
    if (!R->lora || !R->lora->pairs[li][t].A) return SW_OK;
    const sw_lora_pair *p = &R->lora->pairs[li][t];
    int r = R->lora->r;
    const float *xd = lora_input(R, x, li, t, l->in);
    sw_sgemm_cpu(false, true, R->T, r, l->in, 1.0f, xd, l->in, sw_tensor_data(p->A), l->in, 0.0f, c->lu[t], r);
    sw_sgemm_cpu(false, true, R->T, l->out, r, R->lora->scale, c->lu[t], r, sw_tensor_data(p->B), r, 1.0f, y, l->out);
    return SW_OK;
}

static int64_t seq_window(const run *R, int64_t li) {
    const sw_model_config *c = &R->m->cfg;
    return c->sliding_window > 0 && li >= c->max_window_layers ? c->sliding_window : 0;
}

/* One layer: x_out = layer(c->x_in), filling the cache. */
static sw_status layer_fwd(const run *R, lcache *c, int64_t li, float *x_out) {
    const sw_model_config *cfg = &R->m->cfg;
    const sw_layer *L = &R->m->layers[li];
    const int64_t T = R->T, C = R->C, D = R->D;
    float eps = (float)cfg->rms_eps;
    sw_rmsnorm_fwd_cpu(c->h1, c->r1, c->x_in, sw_tensor_data(L->attn_norm), eps, T, C);
    if (proj_fwd(R, c, c->q, c->h1, li, SW_LORA_Q) || proj_fwd(R, c, c->k, c->h1, li, SW_LORA_K) ||
        proj_fwd(R, c, c->v, c->h1, li, SW_LORA_V))
        return R->ctx->status;
    if (cfg->qk_norm) {
        memcpy(c->qraw, c->q, sizeof(float) * (size_t)(T * R->QD));
        memcpy(c->kraw, c->k, sizeof(float) * (size_t)(T * R->KVD));
        sw_rmsnorm_fwd_cpu(c->q, c->rq, c->qraw, sw_tensor_data(L->q_norm), eps, T * R->Hq, D);
        sw_rmsnorm_fwd_cpu(c->k, c->rk, c->kraw, sw_tensor_data(L->k_norm), eps, T * R->Hkv, D);
    }
    sw_rope_cpu(c->q, R->pos, R->m->inv_freq, cfg->rope_interleaved, T, R->Hq, D);
    sw_rope_cpu(c->k, R->pos, R->m->inv_freq, cfg->rope_interleaved, T, R->Hkv, D);
    for (int s = 0; s < R->n_seqs; s++) {
        int64_t a = R->starts[s], len = R->starts[s + 1] - a;
        if (len <= 0) continue;
        sw_attention_fwd_cpu(c->att + a * R->QD, c->lse + a * R->Hq, c->q + a * R->QD, c->k + a * R->KVD,
                             c->v + a * R->KVD, R->S, len, seq_window(R, li), R->Hq, R->Hkv, D);
    }
    if (proj_fwd(R, c, R->tmp, c->att, li, SW_LORA_O)) return R->ctx->status;
    for (int64_t i = 0; i < T * C; i++) c->x_mid[i] = c->x_in[i] + R->tmp[i];
    sw_rmsnorm_fwd_cpu(c->h2, c->r2, c->x_mid, sw_tensor_data(L->mlp_norm), eps, T, C);
    if (proj_fwd(R, c, c->g, c->h2, li, SW_LORA_GATE) || proj_fwd(R, c, c->u, c->h2, li, SW_LORA_UP))
        return R->ctx->status;
    float *a = R->tmp; /* (T, FF): silu(g) * u, the down projection's input */
    sw_swiglu_cpu(a, c->g, c->u, T * R->FF);
    float *d = x_out; /* reuse x_out for down(a), then add the residual */
    if (proj_fwd(R, c, d, a, li, SW_LORA_DOWN)) return R->ctx->status;
    for (int64_t i = 0; i < T * C; i++) x_out[i] += c->x_mid[i];
    return SW_OK;
}

/* ------------------------------------------------------------- backward */

/* dx (T, in) += dy W through the frozen weight, panel by panel. */
static sw_status frozen_bwd(const run *R, float *dx, const float *dy, const sw_linear *l, int64_t T) {
    const int64_t out = l->out, in = l->in;
    if (!l->nf4 && l->w->dtype == SW_F32 && sw_tensor_is_contiguous(l->w)) {
        sw_sgemm_cpu(false, false, T, in, out, 1.0f, dy, out, sw_tensor_data(l->w), in, 1.0f, dx, in);
        return SW_OK;
    }
    int64_t P = sw_linear_panel_rows(l);
    size_t bytes = sizeof(float) * (size_t)(P * in);
    float *panel = sw_mem_alloc(R->ctx, SW_DEV_CPU, SW_MEM_WORKSPACE, bytes);
    if (!panel) return R->ctx->status;
    for (int64_t r0 = 0; r0 < out; r0 += P) {
        int64_t n = out - r0 < P ? out - r0 : P;
        sw_linear_rows(panel, l, r0, n);
        sw_sgemm_cpu(false, false, T, in, n, 1.0f, dy + r0, out, panel, in, 1.0f, dx, in);
    }
    sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, panel, bytes);
    return SW_OK;
}

/* Backward of proj_fwd: dx += dy W + adapter path; dA, dB accumulate. */
static sw_status proj_bwd(const run *R, const lcache *c, float *dx, const float *dy, const float *x, int64_t li,
                          int t) {
    sw_linear *l = sw_model_linear(R->m, li, t);
    if (frozen_bwd(R, dx, dy, l, R->T)) return R->ctx->status;
    if (!R->lora || !R->lora->pairs[li][t].A) return SW_OK;
    const sw_lora *lo = R->lora;
    const sw_lora_pair *p = &lo->pairs[li][t];
    const int64_t T = R->T, r = lo->r, in = l->in, out = l->out;
    float *du = R->lora_u;
    /* dB += s dy^T u;  du = s dy B;  dA += du^T x_d;  dx += (du A) * mask */
    sw_sgemm_cpu(true, false, out, r, T, lo->scale, dy, out, c->lu[t], r, 1.0f, sw_tensor_data(p->gB), r);
    sw_sgemm_cpu(false, false, T, r, out, lo->scale, dy, out, sw_tensor_data(p->B), r, 0.0f, du, r);
    const float *xd = lora_input(R, x, li, t, in);
    sw_sgemm_cpu(true, false, r, in, T, 1.0f, du, r, xd, in, 1.0f, sw_tensor_data(p->gA), in);
    if (lo->dropout <= 0) {
        sw_sgemm_cpu(false, false, T, in, r, 1.0f, du, r, sw_tensor_data(p->A), in, 1.0f, dx, in);
    } else {
        /* x_d = x * mask * keep, so d x = (du A) * mask * keep = (du A) * x_d / x
         * where x != 0; recompute the mask instead of dividing. */
        sw_sgemm_cpu(false, false, T, in, r, 1.0f, du, r, sw_tensor_data(p->A), in, 0.0f, R->tmp2, in);
        float keep = (float)(1.0 / (1.0 - lo->dropout));
        uint64_t cut = (uint64_t)(lo->dropout * 18446744073709551615.0);
        for (int64_t i = 0; i < T * in; i++) {
            uint64_t h = sw_hash4(lo->seed, R->drop_call, (uint64_t)(li * SW_LORA_NTARGETS + t), (uint64_t)i);
            if (h >= cut) dx[i] += R->tmp2[i] * keep;
        }
    }
    return SW_OK;
}

typedef struct grads { float *dx, *dmid, *dh, *dq, *dk, *dv, *datt, *da, *dg, *du; } grads;

/* dres: gradient into the layer's output residual; on return, into its input. */
static sw_status layer_bwd(const run *R, const lcache *c, int64_t li, float *dres, const grads *G) {
    const sw_model_config *cfg = &R->m->cfg;
    const sw_layer *L = &R->m->layers[li];
    const int64_t T = R->T, C = R->C, D = R->D, FF = R->FF;
    sw_ctx *ctx = R->ctx;
    /* MLP: dres feeds down's output */
    float *a = R->tmp;
    sw_swiglu_cpu(a, c->g, c->u, T * FF);
    memset(G->da, 0, sizeof(float) * (size_t)(T * FF));
    if (proj_bwd(R, c, G->da, dres, a, li, SW_LORA_DOWN)) return ctx->status;
    sw_swiglu_bwd_cpu(G->dg, G->du, G->da, c->g, c->u, T * FF);
    memset(G->dh, 0, sizeof(float) * (size_t)(T * C));
    if (proj_bwd(R, c, G->dh, G->dg, c->h2, li, SW_LORA_GATE) || proj_bwd(R, c, G->dh, G->du, c->h2, li, SW_LORA_UP))
        return ctx->status;
    /* dmid = dres + norm'(dh) */
    memcpy(G->dmid, dres, sizeof(float) * (size_t)(T * C));
    sw_rmsnorm_bwd_cpu(G->dmid, G->dh, c->x_mid, sw_tensor_data(L->mlp_norm), c->r2, T, C);
    /* attention: dmid feeds o's output */
    memset(G->datt, 0, sizeof(float) * (size_t)(T * R->QD));
    if (proj_bwd(R, c, G->datt, G->dmid, c->att, li, SW_LORA_O)) return ctx->status;
    memset(G->dq, 0, sizeof(float) * (size_t)(T * R->QD));
    memset(G->dk, 0, sizeof(float) * (size_t)(T * R->KVD));
    memset(G->dv, 0, sizeof(float) * (size_t)(T * R->KVD));
    for (int s = 0; s < R->n_seqs; s++) {
        int64_t st = R->starts[s], len = R->starts[s + 1] - st;
        if (len <= 0) continue;
        sw_attention_bwd_cpu(G->dq + st * R->QD, G->dk + st * R->KVD, G->dv + st * R->KVD, G->datt + st * R->QD,
                             c->att + st * R->QD, c->lse + st * R->Hq, c->q + st * R->QD, c->k + st * R->KVD,
                             c->v + st * R->KVD, R->S, len, seq_window(R, li), R->Hq, R->Hkv, D);
    }
    sw_rope_bwd_cpu(G->dq, R->pos, R->m->inv_freq, cfg->rope_interleaved, T, R->Hq, D);
    sw_rope_bwd_cpu(G->dk, R->pos, R->m->inv_freq, cfg->rope_interleaved, T, R->Hkv, D);
    const float *dq = G->dq, *dk = G->dk;
    if (cfg->qk_norm) { /* back through the per-head norms, into tmp buffers */
        float *dqr = R->tmp, *dkr = R->tmp2;
        memset(dqr, 0, sizeof(float) * (size_t)(T * R->QD));
        memset(dkr, 0, sizeof(float) * (size_t)(T * R->KVD));
        sw_rmsnorm_bwd_cpu(dqr, G->dq, c->qraw, sw_tensor_data(L->q_norm), c->rq, T * R->Hq, D);
        sw_rmsnorm_bwd_cpu(dkr, G->dk, c->kraw, sw_tensor_data(L->k_norm), c->rk, T * R->Hkv, D);
        memcpy(G->dq, dqr, sizeof(float) * (size_t)(T * R->QD));
        memcpy(G->dk, dkr, sizeof(float) * (size_t)(T * R->KVD));
    }
    memset(G->dh, 0, sizeof(float) * (size_t)(T * C));
    if (proj_bwd(R, c, G->dh, dq, c->h1, li, SW_LORA_Q) || proj_bwd(R, c, G->dh, dk, c->h1, li, SW_LORA_K) ||
        proj_bwd(R, c, G->dh, G->dv, c->h1, li, SW_LORA_V))
        return ctx->status;
    memcpy(dres, G->dmid, sizeof(float) * (size_t)(T * C));
    sw_rmsnorm_bwd_cpu(dres, G->dh, c->x_in, sw_tensor_data(L->attn_norm), c->r1, T, C);
    return SW_OK;
}

/* --------------------------------------------------------- head and loss */

#define HEAD_CHUNK 64

/* Cross-entropy over the trained rows of hf (T, C) in chunks; dhf gets the
 * gradient of loss_scale * loss (when backward). */
static sw_status head_loss(const run *R, const float *hf, float *dhf, const int32_t *tgt, float loss_scale, bool backward,
                           double *loss_sum, int64_t *n_trained) {
    sw_model *m = R->m;
    const int64_t C = R->C, V = m->cfg.vocab;
    size_t bytes = sizeof(float) * (size_t)(HEAD_CHUNK * (V + 2 * C));
    float *buf = sw_mem_alloc(R->ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, bytes);
    if (!buf) return R->ctx->status;
    float *logits = buf, *hsel = logits + HEAD_CHUNK * V, *dsel = hsel + HEAD_CHUNK * C;
    int64_t rows[HEAD_CHUNK];
    sw_status st = SW_OK;
    double loss = 0;
    int64_t count = 0;
    for (int64_t t0 = 0; t0 < R->T && !st;) {
        int n = 0;
        for (; t0 < R->T && n < HEAD_CHUNK; t0++)
            if (tgt[t0] >= 0) rows[n++] = t0;
        if (!n) break;
        for (int i = 0; i < n; i++) memcpy(hsel + i * C, hf + rows[i] * C, sizeof(float) * (size_t)C);
        if ((st = sw_linear_forward(R->ctx, logits, hsel, &m->lm_head, n))) break;
        for (int i = 0; i < n; i++) {
            float *lg = logits + i * V;
            float mx = lg[0];
            for (int64_t v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            /* One pass of expf; the sum in double keeps a 50k-term sum exact
             * enough, the softmax reuses the exponentials. */
            int32_t y = tgt[rows[i]];
            float ly = lg[y];
            double sum = 0;
            for (int64_t v = 0; v < V; v++) {
                float e = expf(lg[v] - mx);
                lg[v] = e;
                sum += e;
            }
            loss += (double)mx + log(sum) - ly;
            if (backward) { /* d/dlogits = softmax - onehot, scaled */
                float k = (float)(loss_scale / sum);
                for (int64_t v = 0; v < V; v++) lg[v] *= k;
                lg[y] -= loss_scale;
            }
        }
        count += n;
        if (backward) {
            memset(dsel, 0, sizeof(float) * (size_t)(n * C));
            if ((st = frozen_bwd(R, dsel, logits, &m->lm_head, n))) break;
            for (int i = 0; i < n; i++)
                for (int64_t c2 = 0; c2 < C; c2++) dhf[rows[i] * C + c2] += dsel[i * C + c2];
        }
    }
    sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, buf, bytes);
    *loss_sum = loss;
    *n_trained = count;
    return st;
}

/* ------------------------------------------------------------ one batch */

sw_status sw_seq_batch_check(sw_ctx *ctx, const sw_model_config *cfg, const sw_seq_batch *b, int64_t one[2],
                             const int64_t **starts_out, int *n_seqs_out, int64_t *maxlen) {
    const int64_t T = b->T;
    if (T <= 0) return sw_err(ctx, SW_EINVAL, "train: empty batch");
    if (T > INT32_MAX / 2) return sw_err(ctx, SW_EINVAL, "train: %lld tokens in one batch is too many", (long long)T);
    one[0] = 0, one[1] = T;
    const int64_t *starts = b->starts ? b->starts : one;
    int n_seqs = b->starts ? b->n_seqs : 1;
    *maxlen = 0;
    for (int s = 0; s < n_seqs; s++) {
        int64_t len = starts[s + 1] - starts[s];
        if (len < 0 || starts[s] < 0 || starts[s + 1] > T)
            return sw_err(ctx, SW_EINVAL, "train: sample %d has bad bounds [%lld, %lld)", s + 1, (long long)starts[s],
                          (long long)starts[s + 1]);
        if (len > *maxlen) *maxlen = len;
    }
    if (starts[0] != 0 || starts[n_seqs] != T) return sw_err(ctx, SW_EINVAL, "train: samples do not cover the row");
    for (int64_t t = 0; t < T; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= cfg->vocab)
            return sw_err(ctx, SW_EINVAL, "train: token id %d at %lld is outside the vocabulary", b->ids[t], (long long)t);
        if (b->labels && b->labels[t] != -100 && (b->labels[t] < 0 || b->labels[t] >= cfg->vocab))
            return sw_err(ctx, SW_EINVAL, "train: label %d at %lld is outside the vocabulary", b->labels[t], (long long)t);
    }
    *starts_out = starts;
    *n_seqs_out = n_seqs;
    return SW_OK;
}

void sw_seq_batch_targets(const sw_seq_batch *b, const int64_t *starts, int n_seqs, int32_t *pos, int32_t *tgt) {
    for (int s = 0; s < n_seqs; s++)
        for (int64_t t = starts[s]; t < starts[s + 1]; t++) {
            pos[t] = b->pos ? b->pos[t] : (int32_t)(t - starts[s]);
            int32_t y = t + 1 < starts[s + 1] ? (b->labels ? b->labels[t + 1] : b->ids[t + 1]) : -100;
            tgt[t] = y == -100 ? -1 : y;
        }
}

sw_status sw_train_batch(sw_ctx *ctx, sw_model *m, const sw_seq_batch *b, const sw_train_opts *o, double *loss_sum,
                         int64_t *n_trained) {
    const sw_model_config *cfg = &m->cfg;
    const int64_t T = b->T;
    *loss_sum = 0;
    *n_trained = 0;
    int64_t one[2], maxlen;
    const int64_t *starts;
    int n_seqs;
    if (sw_seq_batch_check(ctx, cfg, b, one, &starts, &n_seqs, &maxlen)) return ctx->status;
    run R = {.ctx = ctx, .m = m, .b = b, .starts = starts, .n_seqs = n_seqs, .T = T, .C = cfg->hidden,
             .D = cfg->head_dim, .Hq = cfg->n_heads, .Hkv = cfg->n_kv_heads, .FF = cfg->intermediate, .maxlen = maxlen};
    R.QD = R.Hq * R.D;
    R.KVD = R.Hkv * R.D;
    R.lora = m->lora;
    if (R.lora) R.drop_call = m->lora->dropout_calls;
    const bool backward = o->backward;
    R.train = backward;
    const bool ckpt = o->checkpointing && backward;
    const int64_t L = cfg->n_layers;
    int64_t wide = R.C > R.QD ? R.C : R.QD;
    if (R.FF > wide) wide = R.FF;

    /* Every buffer of the call in one accounted block. */
    size_t per = cache_floats(&R), n_caches = backward ? (ckpt ? 1 : (size_t)L) : 1;
    size_t f_inputs = ckpt ? (size_t)(L * T * R.C) : 0;
    size_t f_scratch = 2 * (size_t)(maxlen * maxlen) + 2 * (size_t)(T * wide) + (size_t)(T * (R.lora ? R.lora->r : 1));
    size_t f_grads = backward ? (size_t)(3 * T * R.C + 2 * T * R.QD + 2 * T * R.KVD + 3 * T * R.FF + T * R.C) : 0;
    size_t f_misc = 3 * (size_t)(T * R.C) + (size_t)T;
    size_t floats = per * n_caches + f_inputs + f_scratch + f_grads + f_misc;
    size_t bytes = floats * sizeof(float) + (size_t)(2 * T) * sizeof(int32_t);
    float *blk = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, bytes);
    if (!blk) return sw_err_prefix(ctx, "train: activations for %lld tokens", (long long)T);
    float *p = blk;
    float *caches = p; p += per * n_caches;
    float *inputs = p; p += f_inputs;
    R.S = p; p += 2 * (size_t)(maxlen * maxlen);
    R.tmp = p; p += (size_t)(T * wide);
    R.tmp2 = p; p += (size_t)(T * wide);
    R.lora_u = p; p += (size_t)(T * (R.lora ? R.lora->r : 1));
    grads G = {0};
    float *dres = NULL;
    if (backward) {
        G.dmid = p; p += T * R.C;
        G.dh = p; p += T * R.C;
        dres = p; p += T * R.C;
        G.dq = p; p += T * R.QD;
        G.datt = p; p += T * R.QD;
        G.dk = p; p += T * R.KVD;
        G.dv = p; p += T * R.KVD;
        G.da = p; p += T * R.FF;
        G.dg = p; p += T * R.FF;
        G.du = p; p += T * R.FF;
        G.dx = p; p += T * R.C;
    }
    float *x = p; p += T * R.C;       /* the residual stream */
    float *hf = p; p += T * R.C;      /* final norm output */
    float *xL = p; p += T * R.C;      /* final norm input */
    float *rf = p; p += T;
    int32_t *pos = (int32_t *)p, *tgt = pos + T;
    sw_seq_batch_targets(b, starts, n_seqs, pos, tgt);
    R.pos = pos;

    sw_status st = SW_OK;
    for (int64_t t = 0; t < T; t++) sw_tensor_row_f32(x + t * R.C, m->embed, b->ids[t]);
    lcache c;
    for (int64_t li = 0; li < L && !st; li++) {
        cache_carve(&R, &c, caches + (backward && !ckpt ? (size_t)li * per : 0));
        memcpy(c.x_in, x, sizeof(float) * (size_t)(T * R.C));
        if (ckpt) memcpy(inputs + (size_t)(li * T * R.C), x, sizeof(float) * (size_t)(T * R.C));
        st = layer_fwd(&R, &c, li, x);
        if (!st) st = sw_interrupt_check(ctx);
    }
    if (!st) {
        memcpy(xL, x, sizeof(float) * (size_t)(T * R.C));
        sw_rmsnorm_fwd_cpu(hf, rf, xL, sw_tensor_data(m->norm), (float)cfg->rms_eps, T, R.C);
        if (o->logits) st = sw_linear_forward(ctx, o->logits, hf, &m->lm_head, T);
    }
    if (!st) {
        float *dhf = backward ? G.dh : NULL;
        if (backward) memset(dhf, 0, sizeof(float) * (size_t)(T * R.C));
        st = head_loss(&R, hf, dhf, tgt, o->loss_scale, backward, loss_sum, n_trained);
        if (!st && backward) {
            memset(dres, 0, sizeof(float) * (size_t)(T * R.C));
            sw_rmsnorm_bwd_cpu(dres, dhf, xL, sw_tensor_data(m->norm), rf, T, R.C);
        }
    }
    for (int64_t li = L - 1; backward && !st && li >= 0; li--) {
        if (ckpt) { /* recompute this layer's cache from its saved input */
            cache_carve(&R, &c, caches);
            memcpy(c.x_in, inputs + (size_t)(li * T * R.C), sizeof(float) * (size_t)(T * R.C));
            st = layer_fwd(&R, &c, li, G.dx); /* output unused: G.dx is scratch here */
        } else {
            cache_carve(&R, &c, caches + (size_t)li * per);
        }
        if (!st) st = layer_bwd(&R, &c, li, dres, &G);
        if (!st) st = sw_interrupt_check(ctx);
    }
    if (R.lora && backward) m->lora->dropout_calls++;
    sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, blk, bytes);
    return st;
}
