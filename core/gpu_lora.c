/* gpu_lora.c — the adapter and its optimizer on the device (see gpu.h).
 *
 * Every A and B of the adapter sits in one flat float32 array, so clipping
 * and AdamW are one kernel each over all adapter tensors, and the gradient
 * norm one reduction. Inside a layer the A matrices of a group of
 * projections that read the same input (q/k/v; gate/up) are stacked, so the
 * forward's x A^T and the backward's dA and dx are one GEMM per group.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"
#include "gpu_graph.h"
#include "gpu_internal.h"

const int sw_gpu_group_of[SW_LORA_NTARGETS] = {GG_QKV, GG_QKV, GG_QKV, GG_O, GG_GU, GG_GU, GG_DOWN};

static void target_shape(const sw_gpu *g, int t, int64_t *out, int64_t *in) {
    const glayer *G = &g->layers[0];
    *out = G->lin[t].out;
    *in = G->lin[t].in;
}

static void free_lora(sw_gpu *g) {
    /* recorded steps point at these arrays and follow this layout */
    sw_gpu_graphs_clear(g);
    size_t n = sizeof(float) * (size_t)g->n_param, no = sizeof(float) * (size_t)(g->opt_hi - g->opt_lo);
    sw_gpu_release(g, SW_MEM_ADAPTERS, g->p, n);
    sw_gpu_release(g, SW_MEM_ADAPTERS, g->pb, sizeof(sw_bf16) * (size_t)g->n_param);
    sw_gpu_release(g, SW_MEM_GRADIENTS, g->gr, n);
    sw_gpu_release(g, SW_MEM_OPTIMIZER, g->m1, no);
    sw_gpu_release(g, SW_MEM_OPTIMIZER, g->m2, no);
    g->opt_lo = g->opt_hi = 0;
    sw_gpu_release(g, SW_MEM_WORKSPACE, g->sumsq, sizeof(double));
    free(g->ll);
    g->p = g->gr = g->m1 = g->m2 = NULL;
    g->pb = NULL;
    g->sumsq = NULL;
    g->ll = NULL;
    g->n_param = 0;
    g->has_lora = false;
    g->mirror = NULL;
    g->step = 0;
}

/* Lay the adapter out: per layer, each group's A rows stacked, then the Bs. */
static int64_t layout(const sw_gpu *g, const sw_lora *l, glora_layer *ll) {
    int64_t off = 0, r = l->r;
    for (int64_t li = 0; li < g->cfg.n_layers; li++) {
        glora_layer *L = &ll[li];
        for (int k = 0; k < GG_COUNT; k++) L->offA[k] = -1, L->nt[k] = 0;
        for (int t = 0; t < SW_LORA_NTARGETS; t++) L->slot[t] = -1, L->offB[t] = -1;
        for (int k = 0; k < GG_COUNT; k++)
            for (int t = 0; t < SW_LORA_NTARGETS; t++) {
                if (sw_gpu_group_of[t] != k || !l->pairs[li][t].A) continue;
                int64_t out, in;
                target_shape(g, t, &out, &in);
                if (L->offA[k] < 0) L->offA[k] = off;
                L->slot[t] = L->nt[k]++;
                off += r * in;
            }
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            if (!l->pairs[li][t].A) continue;
            int64_t out, in;
            target_shape(g, t, &out, &in);
            L->offB[t] = off;
            off += out * r;
        }
    }
    return off;
}

static int64_t offA_of(const sw_gpu *g, int64_t li, int t) {
    const glora_layer *L = &g->ll[li];
    int64_t out, in;
    target_shape(g, t, &out, &in);
    return L->offA[sw_gpu_group_of[t]] + (int64_t)L->slot[t] * g->r * in;
}

/* Copy between the host adapter's tensors and a flat host array. */
static void host_flat(const sw_gpu *g, const sw_lora *l, float *flat, bool to_flat, bool grads) {
    for (int64_t li = 0; li < g->cfg.n_layers; li++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            const sw_lora_pair *pr = &l->pairs[li][t];
            if (!pr->A) continue;
            int64_t out, in;
            target_shape(g, t, &out, &in);
            float *A = sw_tensor_data(grads ? pr->gA : pr->A), *B = sw_tensor_data(grads ? pr->gB : pr->B);
            float *fa = flat + offA_of(g, li, t), *fb = flat + g->ll[li].offB[t];
            size_t na = sizeof(float) * (size_t)(g->r * in), nb = sizeof(float) * (size_t)(out * g->r);
            if (to_flat) memcpy(fa, A, na), memcpy(fb, B, nb);
            else memcpy(A, fa, na), memcpy(B, fb, nb);
        }
}

static sw_status refresh_bf16(sw_ctx *ctx, sw_gpu *g) {
    return g->ops->dequant_bf16(ctx, g->dev, g->pb, g->p, SW_F32, g->n_param);
}

sw_status sw_gpu_set_lora(sw_ctx *ctx, sw_gpu *g, const sw_lora *l) {
    free_lora(g);
    if (!l) return SW_OK;
    if (l->n_layers != g->cfg.n_layers)
        return sw_err(ctx, SW_EINVAL, "gpu: the adapter has %lld layers, the model %lld", (long long)l->n_layers,
                      (long long)g->cfg.n_layers);
    if (l->dropout < 0 || l->dropout >= 1)
        return sw_err(ctx, SW_EINVAL, "gpu: LoRA dropout %g is outside [0, 1)", l->dropout);
    g->ll = calloc((size_t)g->cfg.n_layers, sizeof *g->ll);
    if (!g->ll) return sw_err(ctx, SW_ENOMEM, "gpu: adapter layout");
    g->r = l->r;
    g->scale = l->scale;
    g->dropout = (float)l->dropout;
    g->drop_seed = l->seed;
    g->n_param = layout(g, l, g->ll);
    g->opt_lo = 0, g->opt_hi = g->n_param; /* free_lora releases what this allocates */
    size_t n = sizeof(float) * (size_t)g->n_param;
    float *host = malloc(n ? n : 1);
    sw_status st = host ? SW_OK : sw_err(ctx, SW_ENOMEM, "gpu: adapter upload");
    if (!st && (!(g->p = sw_gpu_alloc(ctx, g, SW_MEM_ADAPTERS, n)) ||
                !(g->pb = sw_gpu_alloc(ctx, g, SW_MEM_ADAPTERS, sizeof(sw_bf16) * (size_t)g->n_param)) ||
                !(g->gr = sw_gpu_alloc(ctx, g, SW_MEM_GRADIENTS, n)) ||
                !(g->m1 = sw_gpu_alloc(ctx, g, SW_MEM_OPTIMIZER, n)) ||
                !(g->m2 = sw_gpu_alloc(ctx, g, SW_MEM_OPTIMIZER, n)) ||
                !(g->sumsq = sw_gpu_alloc(ctx, g, SW_MEM_WORKSPACE, sizeof(double)))))
        st = ctx->status;
    if (!st) {
        host_flat(g, l, host, true, false);
        st = sw_gpu_upload(ctx, g, g->p, host, n);
    }
    if (!st) st = sw_gpu_zero(ctx, g, g->gr, n);
    if (!st) st = sw_gpu_zero(ctx, g, g->m1, n);
    if (!st) st = sw_gpu_zero(ctx, g, g->m2, n);
    if (!st) st = refresh_bf16(ctx, g);
    if (!st) st = sw_gpu_sync(ctx, g);
    free(host);
    if (st) {
        free_lora(g);
        return ctx->status;
    }
    g->has_lora = true;
    g->mirror = l;
    return SW_OK;
}

sw_status sw_gpu_download(sw_ctx *ctx, sw_gpu *g, sw_lora *l, bool grads) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "gpu: no adapter on the device");
    size_t n = sizeof(float) * (size_t)g->n_param;
    float *host = malloc(n ? n : 1);
    if (!host) return sw_err(ctx, SW_ENOMEM, "gpu: adapter download");
    sw_status st = sw_gpu_fetch(ctx, g, host, g->p, n);
    if (!st) host_flat(g, l, host, false, false);
    if (!st && grads && !(st = sw_gpu_fetch(ctx, g, host, g->gr, n))) host_flat(g, l, host, false, true);
    free(host);
    return st;
}

sw_status sw_gpu_zero_grad(sw_ctx *ctx, sw_gpu *g) {
    return g->has_lora ? sw_gpu_zero(ctx, g, g->gr, sizeof(float) * (size_t)g->n_param) : SW_OK;
}

sw_status sw_gpu_grad_norm(sw_ctx *ctx, sw_gpu *g, double *norm) {
    *norm = 0;
    if (!g->has_lora) return SW_OK;
    double s = 0;
    sw_status st = g->ops->sumsq(ctx, g->dev, g->sumsq, g->gr, g->n_param);
    if (!st) st = sw_gpu_fetch(ctx, g, &s, g->sumsq, sizeof s);
    *norm = sqrt(s);
    return st;
}

sw_status sw_gpu_optim_update(sw_ctx *ctx, sw_gpu *g, const sw_optim_opts *o, double lr, float gscale) {
    if (sw_gpu_optim_update_range(ctx, g, o, lr, gscale, 0, g->n_param)) return ctx->status;
    return refresh_bf16(ctx, g);
}

/* AdamW and SGD are elementwise, so a slice updated alone gets the bits the
 * whole-array update would give it (ZeRO-1 relies on this). */
sw_status sw_gpu_optim_update_range(sw_ctx *ctx, sw_gpu *g, const sw_optim_opts *o, double lr, float gscale,
                                    int64_t lo, int64_t hi) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "gpu: no adapter on the device");
    if (lo < g->opt_lo || hi > g->opt_hi || lo > hi)
        return sw_err(ctx, SW_EINVAL, "gpu: update range [%lld, %lld) outside the optimizer's [%lld, %lld)",
                      (long long)lo, (long long)hi, (long long)g->opt_lo, (long long)g->opt_hi);
    int64_t step = g->step + 1, n = hi - lo, mo = lo - g->opt_lo; /* where lo sits in m1, m2 */
    sw_status st = SW_OK;
    if (n > 0 && o->kind == SW_OPTIM_ADAMW)
        st = g->ops->adamw(ctx, g->dev, g->p + lo, g->gr + lo, g->m1 + mo, g->m2 + mo, n, gscale, lr, o->beta1,
                           o->beta2, o->eps, o->weight_decay, step);
    else if (n > 0)
        st = g->ops->sgd(ctx, g->dev, g->p + lo, g->gr + lo, o->momentum != 0 ? g->m1 + mo : NULL, n, gscale, lr,
                         o->momentum, o->weight_decay, step);
    if (!st) g->step = step;
    return st;
}

/* New moment arrays for [lo, hi): what the old range shares with it is
 * copied, the rest starts at zero (a gather fills it in). Made before the
 * old ones go, so a failure leaves the engine as it was. */
sw_status sw_gpu_shard_optim(sw_ctx *ctx, sw_gpu *g, int64_t lo, int64_t hi) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "gpu: no adapter on the device");
    if (lo < 0 || hi > g->n_param || lo > hi)
        return sw_err(ctx, SW_EINVAL, "gpu: optimizer slice [%lld, %lld) outside the %lld parameters", (long long)lo,
                      (long long)hi, (long long)g->n_param);
    if (lo == g->opt_lo && hi == g->opt_hi) return SW_OK;
    size_t nb = sizeof(float) * (size_t)(hi - lo), ob = sizeof(float) * (size_t)(g->opt_hi - g->opt_lo);
    float *n1 = sw_gpu_alloc(ctx, g, SW_MEM_OPTIMIZER, nb), *n2 = n1 ? sw_gpu_alloc(ctx, g, SW_MEM_OPTIMIZER, nb) : NULL;
    sw_status st = n1 && n2 ? SW_OK : ctx->status;
    if (!st) st = sw_gpu_zero(ctx, g, n1, nb);
    if (!st) st = sw_gpu_zero(ctx, g, n2, nb);
    int64_t a = lo > g->opt_lo ? lo : g->opt_lo, b = hi < g->opt_hi ? hi : g->opt_hi;
    if (!st && b > a) st = sw_gpu_copy(ctx, g, n1 + (a - lo), g->m1 + (a - g->opt_lo), sizeof(float) * (size_t)(b - a));
    if (!st && b > a) st = sw_gpu_copy(ctx, g, n2 + (a - lo), g->m2 + (a - g->opt_lo), sizeof(float) * (size_t)(b - a));
    if (!st) st = sw_gpu_sync(ctx, g);
    if (st) {
        sw_gpu_release(g, SW_MEM_OPTIMIZER, n1, nb);
        sw_gpu_release(g, SW_MEM_OPTIMIZER, n2, nb);
        return st;
    }
    sw_gpu_release(g, SW_MEM_OPTIMIZER, g->m1, ob);
    sw_gpu_release(g, SW_MEM_OPTIMIZER, g->m2, ob);
    g->m1 = n1, g->m2 = n2;
    g->opt_lo = lo, g->opt_hi = hi;
    return SW_OK;
}

sw_status sw_gpu_params_changed(sw_ctx *ctx, sw_gpu *g) { return g->has_lora ? refresh_bf16(ctx, g) : SW_OK; }

/* Where layer li's parameters begin: each layer's As and Bs follow the
 * previous layer's (layout above), its stacked As first; a layer without
 * adapted projections begins where the next one does. */
static int64_t layer_start(const sw_gpu *g, int64_t li) {
    for (int64_t l = li; l < g->cfg.n_layers; l++) {
        int64_t first = -1;
        for (int k = 0; k < GG_COUNT; k++)
            if (g->ll[l].offA[k] >= 0 && (first < 0 || g->ll[l].offA[k] < first)) first = g->ll[l].offA[k];
        if (first >= 0) return first;
    }
    return g->n_param;
}

void sw_gpu_layer_span(const sw_gpu *g, int64_t li, int64_t *lo, int64_t *hi) {
    if (!g->has_lora) {
        *lo = *hi = 0;
        return;
    }
    *lo = layer_start(g, li);
    *hi = layer_start(g, li + 1);
}

int64_t sw_gpu_optim_step(const sw_gpu *g) { return g->step; }
int64_t sw_gpu_n_param(const sw_gpu *g) { return g->has_lora ? g->n_param : 0; }

bool sw_gpu_mirrors(const sw_gpu *g, const sw_lora *l) { return g && l && g->has_lora && g->mirror == l; }

/* opt->m[j], opt->v[j] follow the adapter's (layer, target, A then B) order,
 * the same walk as host_flat, so a flat array maps onto them in sequence. */
static void optim_flat(const sw_gpu *g, sw_tensor **ts, float *flat, bool to_flat) {
    int64_t j = 0;
    for (int64_t li = 0; li < g->cfg.n_layers; li++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            if (g->ll[li].slot[t] < 0) continue;
            int64_t out, in;
            target_shape(g, t, &out, &in);
            int64_t off[2] = {offA_of(g, li, t), g->ll[li].offB[t]}, n[2] = {g->r * in, out * g->r};
            for (int k = 0; k < 2; k++, j++) {
                if (!ts[j]) continue;
                float *d = sw_tensor_data(ts[j]);
                size_t b = sizeof(float) * (size_t)n[k];
                if (to_flat) memcpy(flat + off[k], d, b);
                else memcpy(d, flat + off[k], b);
            }
        }
}

static sw_status optim_move(sw_ctx *ctx, sw_gpu *g, sw_optim *opt, bool down) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "gpu: no adapter on the device");
    if (g->opt_lo != 0 || g->opt_hi != g->n_param)
        return sw_err(ctx, SW_ESTATE, "gpu: the optimizer state is sharded (ZeRO-1): gather it first");
    size_t n = sizeof(float) * (size_t)g->n_param;
    float *host = calloc(1, n ? n : 1);
    if (!host) return sw_err(ctx, SW_ENOMEM, "gpu: optimizer state");
    sw_status st = SW_OK;
    sw_tensor **ts[2] = {opt->m, opt->v};
    float *dv[2] = {g->m1, g->m2};
    for (int k = 0; k < 2 && !st; k++) {
        if (down) {
            if (!(st = sw_gpu_fetch(ctx, g, host, dv[k], n))) optim_flat(g, ts[k], host, false);
        } else {
            memset(host, 0, n);
            optim_flat(g, ts[k], host, true);
            st = sw_gpu_upload(ctx, g, dv[k], host, n);
        }
    }
    free(host);
    if (!st && !down) g->step = opt->step;
    return st;
}

sw_status sw_gpu_download_optim(sw_ctx *ctx, sw_gpu *g, sw_optim *opt) { return optim_move(ctx, g, opt, true); }
sw_status sw_gpu_upload_optim(sw_ctx *ctx, sw_gpu *g, const sw_optim *opt) {
    return optim_move(ctx, g, (sw_optim *)opt, false);
}
