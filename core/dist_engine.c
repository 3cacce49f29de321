/* dist_engine.c — the device engine's side of a data-parallel step
 * (dist.h): per-layer buckets of the gradient all-reduce, the summed loss,
 * and the replicated or ZeRO-1 update.
 *
 * Buckets: the flat gradient array holds layer 0's adapter first, layer
 * L-1's last, and the backward finishes layers from L-1 down to 0. So the
 * gradients that are final always form a suffix [pend_lo, n) of the array;
 * [done_lo, n) of it is already being reduced. When the final but
 * unreduced part [pend_lo, done_lo) reaches bucket_bytes, it is handed to
 * the communicator, which (NCCL) runs it on its own stream while the engine
 * goes on with earlier layers. Only the step's last micro-batch reduces:
 * the earlier ones only accumulate (as DDP's no_sync).
 */
#include <math.h>
#include <stdlib.h>

#include "dist_impl.h"
#include "gpu_internal.h"

#define DEFAULT_BUCKET_BYTES ((size_t)8 << 20)

typedef struct bucketer {
    sw_ctx *ctx;
    sw_gpu *g;
    sw_dist *d;
    size_t bucket_bytes;
    int64_t done_lo, pend_lo;
    int launched;
} bucketer;

/* The communicator moves the engine's own memory: host for the emulated
 * device (local backend), CUDA for a GPU (NCCL). */
static sw_status fits(sw_ctx *ctx, const sw_gpu *g, const sw_dist *d) {
    bool dev_mem = g->dev != SW_GPU_EMULATE;
    if (d->ops->device_memory != dev_mem)
        return sw_err(ctx, SW_EINVAL, "dist: the %s communicator cannot move the %s engine's memory", d->ops->name,
                      dev_mem ? "CUDA" : "emulated");
    return SW_OK;
}

static sw_status flush(bucketer *B) {
    if (B->pend_lo < B->done_lo) {
        if (sw_dist_all_reduce(B->ctx, B->d, B->g->gr + B->pend_lo, B->done_lo - B->pend_lo)) return B->ctx->status;
        B->launched++;
    }
    B->done_lo = B->pend_lo;
    return SW_OK;
}

static sw_status on_layer(void *arg, int64_t li) {
    bucketer *B = arg;
    int64_t lo, hi;
    sw_gpu_layer_span(B->g, li, &lo, &hi);
    if (lo < B->pend_lo) B->pend_lo = lo;
    if ((size_t)(B->done_lo - B->pend_lo) * sizeof(float) >= B->bucket_bytes) return flush(B);
    return SW_OK;
}

sw_status sw_dist_grads(sw_ctx *ctx, sw_gpu *g, sw_dist *d, const sw_dist_step_opts *so, const sw_seq_batch *mb,
                        int n, const sw_train_opts *o, double *loss_sum, int64_t *n_trained, int *bad_micro) {
    *loss_sum = 0;
    *n_trained = 0;
    *bad_micro = -1;
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "dist: no adapter on the device to train");
    if (fits(ctx, g, d)) return ctx->status;
    const int world = d->world;
    bucketer B = {ctx, g, d, so && so->bucket_bytes ? so->bucket_bytes : DEFAULT_BUCKET_BYTES, g->n_param,
                  g->n_param, 0};
    double loss = 0;
    int64_t count = 0;
    int bad = -1;
    sw_status st = SW_OK;
    bool hooked = false;
    for (int k = 0; k < n && !st; k++) {
        if (mb[k].T == 0) continue; /* nothing of this rank's in that micro-batch */
        sw_train_opts to = *o;
        bool last = k == n - 1;
        to.layer_done = last ? on_layer : NULL;
        to.layer_arg = last ? &B : NULL;
        if (so && so->dropout_calls) to.dropout_call = so->dropout_calls[k];
        double ls;
        int64_t c;
        st = sw_gpu_train_batch(ctx, g, &mb[k], &to, &ls, &c);
        hooked = last;
        if (!st && !isfinite(ls) && bad < 0) bad = k;
        loss += ls;
        count += c;
    }
    /* Every rank must issue the same collectives in the same order. Bucket
     * bounds depend only on the layout and bucket_bytes, so a rank whose
     * last micro-batch was empty walks the layers now and cuts the same
     * buckets; then whatever the hooks left is reduced. */
    for (int64_t li = g->cfg.n_layers - 1; !st && !hooked && li >= 0; li--) st = on_layer(&B, li);
    B.pend_lo = 0;
    if (!st) st = flush(&B);
    if (!st) st = sw_dist_wait(ctx, d);
    /* losses, counts and which micro-batch went bad, summed over ranks; one
     * slot per rank for the last, so the first bad one is known everywhere */
    double *v = st ? NULL : calloc((size_t)(2 + world), sizeof *v);
    if (!st && !v) st = sw_err(ctx, SW_ENOMEM, "host out of memory");
    if (!st) {
        v[0] = loss;
        v[1] = (double)count;
        v[2 + d->rank] = bad >= 0 ? (double)(d->rank + bad * world + 1) : 0;
        st = sw_dist_sum_host(ctx, d, v, 2 + world);
    }
    if (!st) {
        *loss_sum = v[0];
        *n_trained = (int64_t)v[1];
        for (int r = 0; r < world; r++)
            if (v[2 + r] > 0 && (*bad_micro < 0 || v[2 + r] - 1 < *bad_micro)) *bad_micro = (int)v[2 + r] - 1;
    }
    free(v);
    if (so && so->buckets) *so->buckets = B.launched;
    if (st) sw_dist_abort(d); /* the other ranks would wait for this one */
    return st;
}

sw_status sw_dist_update(sw_ctx *ctx, sw_gpu *g, sw_dist *d, const sw_dist_step_opts *so, const sw_optim_opts *oo,
                         double lr, float gscale) {
    int64_t lo = 0, hi = g->n_param;
    bool zero1 = so && so->zero1;
    if (zero1) sw_dist_shard(g->n_param, d->rank, d->world, &lo, &hi);
    sw_status st = sw_gpu_optim_update_range(ctx, g, oo, lr, gscale, lo, hi);
    if (!st && zero1) st = sw_dist_all_gather(ctx, d, g->p, g->n_param);
    if (!st) st = sw_gpu_params_changed(ctx, g);
    if (st) sw_dist_abort(d);
    return st;
}

sw_status sw_dist_sync_params(sw_ctx *ctx, sw_gpu *g, sw_dist *d) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "dist: no adapter on the device");
    if (fits(ctx, g, d)) return ctx->status;
    sw_status st = sw_dist_broadcast(ctx, d, g->p, sizeof(float) * (size_t)g->n_param, 0);
    if (!st) st = sw_gpu_params_changed(ctx, g);
    if (!st) st = sw_gpu_sync(ctx, g);
    if (st) sw_dist_abort(d);
    return st;
}

sw_status sw_dist_shard_optim(sw_ctx *ctx, sw_gpu *g, sw_dist *d) {
    int64_t lo, hi;
    sw_dist_shard(g->n_param, d->rank, d->world, &lo, &hi);
    return sw_gpu_shard_optim(ctx, g, lo, hi);
}

/* Back to whole arrays (this rank's slice copied in), then every slice
 * from its rank. Not a failure of the others if this rank runs out of
 * memory here: it aborts, so they do not wait for it. */
sw_status sw_dist_gather_optim(sw_ctx *ctx, sw_gpu *g, sw_dist *d) {
    if (!g->has_lora) return sw_err(ctx, SW_EINVAL, "dist: no adapter on the device");
    if (sw_gpu_shard_optim(ctx, g, 0, g->n_param)) {
        sw_dist_abort(d);
        return ctx->status;
    }
    sw_status st = sw_dist_all_gather(ctx, d, g->m1, g->n_param);
    if (!st) st = sw_dist_all_gather(ctx, d, g->m2, g->n_param);
    if (!st) st = sw_dist_wait(ctx, d);
    if (st) sw_dist_abort(d);
    return st;
}
