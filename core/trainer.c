/* trainer.c — the SFT loop behind sw.trainer (see trainer.h). */
#include "trainer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "dist.h"
#include "gpu.h"
#include "interrupt.h"
#include "safetensors.h"
#include "train.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int world_of(const sw_trainer *tr) { return tr->o.dist ? sw_dist_world(tr->o.dist) : 1; }

static sw_batch_opts batch_opts(const sw_trainer *tr) {
    sw_batch_opts b = {tr->o.batch, tr->o.packing, tr->o.shuffle, tr->o.seed};
    return b;
}

/* Every rank starts from rank 0's adapter (the seeded init gives the same
 * one anyway; this makes it so even when a rank's adapter was changed). */
static sw_status dist_sync_params(sw_ctx *ctx, sw_trainer *tr) {
    if (sw_dist_sync_params(ctx, tr->m->gpu, tr->o.dist)) return ctx->status;
    /* ZeRO-1: this rank keeps the moments of its slice only */
    if (tr->o.zero1 && sw_dist_shard_optim(ctx, tr->m->gpu, tr->o.dist)) return ctx->status;
    return sw_gpu_download(ctx, tr->m->gpu, tr->lora, false);
}

sw_status sw_trainer_new(sw_ctx *ctx, sw_model *m, const sw_dataset *ds, const sw_trainer_opts *o, sw_trainer **out) {
    *out = NULL;
    if (!m->lora) return sw_err(ctx, SW_ESTATE, "trainer: the model has no active adapter (model:lora{...})");
    if (o->batch <= 0 || o->accum <= 0) return sw_err(ctx, SW_EINVAL, "trainer: batch and accum must be positive");
    if (!(o->lr > 0)) return sw_err(ctx, SW_EINVAL, "trainer: lr must be positive, got %g", o->lr);
    if (o->max_steps <= 0 && !(o->epochs > 0)) return sw_err(ctx, SW_EINVAL, "trainer: give max_steps or epochs");
    if (sw_dataset_count(ds) == 0) return sw_err(ctx, SW_EINVAL, "trainer: the dataset is empty");
    if (o->dist && !m->gpu)
        return sw_err(ctx, SW_EINVAL, "trainer: gpus > 1 needs the model on a device (device = \"cuda\" or \"emulate\")");
    if (o->zero1 && !o->dist) return sw_err(ctx, SW_EINVAL, "trainer: zero = 1 shards the optimizer over several gpus; give gpus");
    sw_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    tr->m = m;
    tr->lora = m->lora;
    tr->ds = ds;
    tr->o = *o;
    /* Count one epoch's batches (packing decides how many rows it takes). */
    sw_data_cursor c = {0, 0};
    sw_batch_opts bo = batch_opts(tr);
    while (c.epoch == 0) {
        sw_batch b = {0};
        if (sw_dataset_batch(ctx, ds, &bo, &c, &b)) {
            free(tr);
            return ctx->status;
        }
        sw_batch_free(&b);
        tr->batches_per_epoch++;
    }
    /* a step reads accum micro-batches per rank */
    int64_t per_step = o->accum * world_of(tr);
    int64_t steps_per_epoch = (tr->batches_per_epoch + per_step - 1) / per_step;
    tr->total_steps = o->max_steps > 0 ? o->max_steps : (int64_t)ceil(o->epochs * (double)steps_per_epoch);
    if (tr->o.warmup_steps <= 0 && o->warmup_ratio > 0)
        tr->o.warmup_steps = (int64_t)ceil(o->warmup_ratio * (double)tr->total_steps);
    if (sw_optim_new(ctx, tr->lora, &o->optim, &tr->opt)) {
        free(tr);
        return ctx->status;
    }
    if (m->gpu && sw_gpu_set_lora(ctx, m->gpu, tr->lora)) {
        sw_optim_free(tr->opt);
        free(tr);
        return sw_err_prefix(ctx, "trainer");
    }
    if (o->dist && dist_sync_params(ctx, tr)) {
        sw_optim_free(tr->opt);
        free(tr);
        return sw_err_prefix(ctx, "trainer");
    }
    *out = tr;
    return SW_OK;
}

void sw_trainer_free(sw_trainer *tr) {
    if (!tr) return;
    sw_optim_free(tr->opt);
    free(tr);
}

/* A whole micro-batch as one packed sequence: every row's samples back to
 * back, padding dropped. Attention stays within each sample, so this is the
 * same computation as row by row, but each frozen weight is read (and, for
 * quantized bases, dequantized) once per micro-batch instead of once per row. */
typedef struct flat {
    int32_t *ids, *labels, *pos;
    int64_t *starts;
    int64_t T;
    int n;
} flat;

static sw_status flatten(sw_ctx *ctx, const sw_batch *b, flat *f) {
    memset(f, 0, sizeof *f);
    int64_t T = 0, n = 0;
    for (int64_t r = 0; r < b->rows; r++) {
        T += b->offsets[b->row_start[r + 1] - 1];
        n += b->row_start[r + 1] - b->row_start[r] - 1;
    }
    f->ids = malloc(sizeof(int32_t) * (size_t)(3 * T + 1));
    f->starts = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!f->ids || !f->starts) {
        free(f->ids);
        free(f->starts);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    f->labels = f->ids + T;
    f->pos = f->labels + T;
    int64_t t = 0;
    int k = 0;
    for (int64_t r = 0; r < b->rows; r++) {
        int64_t first = b->row_start[r], last = b->row_start[r + 1];
        for (int64_t j = first; j < last - 1; j++) {
            f->starts[k++] = t + b->offsets[j] - b->offsets[first];
        }
        int64_t len = b->offsets[last - 1];
        memcpy(f->ids + t, b->ids + r * b->len, sizeof(int32_t) * (size_t)len);
        memcpy(f->labels + t, b->labels + r * b->len, sizeof(int32_t) * (size_t)len);
        memcpy(f->pos + t, b->positions + r * b->len, sizeof(int32_t) * (size_t)len);
        t += len;
    }
    f->starts[k] = t;
    f->T = t;
    f->n = k;
    return SW_OK;
}

static void flat_free(flat *f) {
    free(f->ids);
    free(f->starts);
}

/* One micro-batch where the model trains: its GPU copy, or the CPU. */
static sw_status micro_batch(sw_ctx *ctx, sw_model *m, const sw_seq_batch *s, const sw_train_opts *to, double *ls,
                             int64_t *n) {
    if (m->gpu && sw_gpu_mirrors(m->gpu, m->lora)) { /* the device holds this adapter */
        /* the dropout stream advances per training batch, as in core/train.c */
        sw_train_opts o = *to;
        o.dropout_call = m->lora->dropout_calls;
        sw_status st = sw_gpu_train_batch(ctx, m->gpu, s, &o, ls, n);
        if (!st && o.backward) m->lora->dropout_calls++;
        return st;
    }
    return sw_train_batch(ctx, m, s, to, ls, n);
}

/* The GPU side of a step: make sure the device trains this trainer's
 * adapter (another trainer may have used the model since), zero its
 * gradients. */
static sw_status gpu_begin(sw_ctx *ctx, sw_trainer *tr) {
    sw_gpu *g = tr->m->gpu;
    if (!sw_gpu_mirrors(g, tr->lora) &&
        (sw_gpu_set_lora(ctx, g, tr->lora) || sw_gpu_upload_optim(ctx, g, tr->opt) ||
         (tr->o.zero1 && sw_dist_shard_optim(ctx, g, tr->o.dist))))
        return ctx->status;
    return sw_gpu_zero_grad(ctx, g);
}

/* This rank's share of a data-parallel step: micro-batches rank, rank +
 * world, ... of the n read (round robin, dist.h), flattened, then the
 * engine's bucketed all-reduce. Loss and count come back summed over ranks. */
static sw_status dist_grads(sw_ctx *ctx, sw_trainer *tr, const sw_batch *bs, int64_t n, const sw_train_opts *to,
                            double *loss_sum, int64_t *counted, int *bad_micro) {
    sw_dist *d = tr->o.dist;
    const int rank = sw_dist_rank(d), world = sw_dist_world(d);
    const int mine = (int)tr->o.accum;
    flat *f = calloc((size_t)mine, sizeof *f);
    sw_seq_batch *mb = calloc((size_t)mine, sizeof *mb);
    sw_status st = f && mb ? SW_OK : sw_err(ctx, SW_ENOMEM, "host out of memory");
    int made = 0;
    /* LoRA dropout: micro-batch j draws the stream one GPU would give it,
     * the adapter's count plus the non-empty micro-batches before it */
    uint64_t *calls = calloc((size_t)mine + 1, sizeof *calls), before = 0;
    if (!calls && !st) st = sw_err(ctx, SW_ENOMEM, "host out of memory");
    for (int64_t j = 0; !st && j < n; j++) {
        if (j % world == rank && j / world < mine) calls[j / world] = tr->lora->dropout_calls + before;
        before += bs[j].n_tokens > 0;
    }
    for (int k = 0; k < mine && !st; k++) {
        int64_t j = rank + (int64_t)k * world;
        if (j >= n) break;
        if ((st = flatten(ctx, &bs[j], &f[k]))) break;
        made = k + 1;
        mb[k] = (sw_seq_batch){f[k].ids, f[k].labels, f[k].pos, f[k].T, f[k].starts, f[k].n};
    }
    sw_dist_step_opts so = {.bucket_bytes = tr->o.bucket_bytes, .zero1 = tr->o.zero1};
    so.dropout_calls = calls;
    if (!st) st = sw_dist_grads(ctx, tr->m->gpu, d, &so, mb, mine, to, loss_sum, counted, bad_micro);
    else sw_dist_abort(d); /* the others would wait for this rank's gradients */
    if (!st) tr->lora->dropout_calls += before; /* every rank, as one GPU would */
    free(calls);
    for (int k = 0; k < made; k++) flat_free(&f[k]);
    free(f);
    free(mb);
    return st;
}

sw_status sw_trainer_step(sw_ctx *ctx, sw_trainer *tr, sw_step_stats *out) {
    memset(out, 0, sizeof *out);
    if (tr->m->lora != tr->lora)
        return sw_err(ctx, SW_ESTATE, "trainer: the model's active adapter changed since the trainer was made");
    double t0 = now_s();
    /* Ranks must take the same step: one that failed alone (or was
     * interrupted later than the others) would sit a step apart. Cheap to
     * ask: one small sum. */
    if (tr->o.dist) {
        double v[2] = {(double)tr->step, (double)tr->cursor.index + 1e6 * (double)tr->cursor.epoch};
        const int w = sw_dist_world(tr->o.dist);
        if (sw_dist_sum_host(ctx, tr->o.dist, v, 2)) return sw_err_prefix(ctx, "trainer");
        if (v[0] != (double)tr->step * w || v[1] != w * ((double)tr->cursor.index + 1e6 * (double)tr->cursor.epoch))
            return sw_err(ctx, SW_ESTATE, "trainer: the ranks are at different steps (this one at %lld); make the "
                                          "trainer again on every rank, or sw.resume a checkpoint",
                          (long long)tr->step);
    }
    sw_data_cursor cur = tr->cursor;
    sw_batch_opts bo = batch_opts(tr);
    /* every rank reads the whole step (all ranks' micro-batches), so each
     * knows the global token count the loss is normalised by */
    const int64_t n_mb = tr->o.accum * world_of(tr);
    sw_batch *bs = calloc((size_t)n_mb, sizeof *bs);
    if (!bs) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    sw_status st = SW_OK;
    int64_t trained = 0, tokens = 0;
    for (int64_t k = 0; k < n_mb && !st; k++) {
        st = sw_dataset_batch(ctx, tr->ds, &bo, &cur, &bs[k]);
        trained += bs[k].n_trained;
        tokens += bs[k].n_tokens;
    }
    double loss_sum = 0;
    int64_t counted = 0;
    int bad_micro = -1;
    sw_gpu *g = tr->m->gpu;
    if (!st && g && (st = gpu_begin(ctx, tr)) && tr->o.dist) sw_dist_abort(tr->o.dist);
    if (!st) {
        if (!g) sw_lora_zero_grad(tr->lora);
        float scale = trained ? 1.0f / (float)trained : 0.0f;
        sw_train_opts to = {.backward = true, .checkpointing = tr->o.checkpointing, .offload = tr->o.offload, .loss_scale = scale};
        if (tr->o.dist) st = dist_grads(ctx, tr, bs, n_mb, &to, &loss_sum, &counted, &bad_micro);
        for (int64_t k = 0; !tr->o.dist && k < tr->o.accum && !st; k++) {
            flat f;
            if ((st = flatten(ctx, &bs[k], &f))) break;
            if (f.T > 0) {
                sw_seq_batch s = {f.ids, f.labels, f.pos, f.T, f.starts, f.n};
                double ls;
                int64_t n;
                st = micro_batch(ctx, tr->m, &s, &to, &ls, &n);
                if (!st && !isfinite(ls) && bad_micro < 0) bad_micro = (int)k;
                loss_sum += ls;
                counted += n;
            }
            flat_free(&f);
        }
    }
    for (int64_t k = 0; k < n_mb; k++) sw_batch_free(&bs[k]);
    free(bs);
    if (st) return st; /* cursor, adapter and optimizer untouched */

    out->step = tr->step + 1;
    out->loss = counted ? loss_sum / (double)counted : NAN;
    out->tokens = tokens;
    out->trained = counted;
    out->lr = tr->o.lr * sw_schedule_factor(tr->o.schedule, tr->step, tr->o.warmup_steps, tr->total_steps);
    int64_t bad = -1;
    if (g) { /* the norm on the device; gradients come to the host only to name a bad one */
        if ((st = sw_gpu_grad_norm(ctx, g, &out->grad_norm))) return st;
        if (!isfinite(out->grad_norm)) {
            if ((st = sw_gpu_download(ctx, g, tr->lora, true))) return st;
            bad = sw_optim_first_nonfinite(tr->opt);
        }
    } else {
        out->grad_norm = sw_optim_grad_norm(tr->opt);
        bad = sw_optim_first_nonfinite(tr->opt);
    }
    if (bad_micro >= 0 || bad >= 0 || !isfinite(out->loss)) {
        out->skipped = true;
        if (bad_micro >= 0)
            snprintf(out->why, sizeof out->why, "step %lld: the loss of micro-batch %d is not finite%s%s",
                     (long long)out->step, bad_micro + 1, bad >= 0 ? "; first non-finite gradient: " : "",
                     bad >= 0 ? tr->opt->names[bad] : "");
        else
            snprintf(out->why, sizeof out->why, "step %lld: the gradient of %s is not finite", (long long)out->step,
                     bad >= 0 ? tr->opt->names[bad] : "?");
    } else if (g) { /* clip by scaling inside the update, then keep the host adapter current */
        double mx = tr->o.max_grad_norm;
        float coef = mx > 0 ? (float)(mx / (out->grad_norm + 1e-6)) : 1.0f;
        float gs = coef < 1.0f ? coef : 1.0f;
        if (tr->o.dist) {
            sw_dist_step_opts so = {.bucket_bytes = tr->o.bucket_bytes, .zero1 = tr->o.zero1};
            st = sw_dist_update(ctx, g, tr->o.dist, &so, &tr->o.optim, out->lr, gs);
        } else {
            st = sw_gpu_optim_update(ctx, g, &tr->o.optim, out->lr, gs);
        }
        if (st) return st;
        tr->opt->step = sw_gpu_optim_step(g);
        if ((st = sw_gpu_download(ctx, g, tr->lora, false))) return st;
    } else {
        sw_optim_clip(tr->opt, tr->o.max_grad_norm, out->grad_norm);
        sw_optim_update(tr->opt, out->lr);
    }
    tr->cursor = cur;
    tr->step++;
    out->seconds = now_s() - t0;
    out->tokens_per_s = out->seconds > 0 ? (double)tokens / out->seconds : 0;
    sw_mem_stats ms;
    sw_mem_get(g ? sw_gpu_device(g) : SW_DEV_CPU, &ms);
    out->mem_now = ms.total_now;
    out->mem_peak = ms.total_peak[SW_PEAK_CELL];
    return SW_OK;
}

sw_status sw_trainer_eval(sw_ctx *ctx, sw_model *m, const sw_dataset *ds, int64_t batch, double *loss, int64_t *n) {
    sw_data_cursor cur = {0, 0};
    sw_batch_opts bo = {batch > 0 ? batch : 1, false, false, 0};
    double sum = 0;
    int64_t count = 0;
    sw_status st = SW_OK;
    while (!st && cur.epoch == 0) {
        sw_batch b = {0};
        if ((st = sw_dataset_batch(ctx, ds, &bo, &cur, &b))) break;
        flat f;
        if (!(st = flatten(ctx, &b, &f)) && f.T > 0) {
            sw_seq_batch s = {f.ids, f.labels, f.pos, f.T, f.starts, f.n};
            sw_train_opts to = {.backward = false};
            double ls;
            int64_t k;
            st = micro_batch(ctx, m, &s, &to, &ls, &k);
            sum += ls;
            count += k;
        }
        if (!st) flat_free(&f);
        sw_batch_free(&b);
    }
    if (st) return st;
    *loss = count ? sum / (double)count : NAN;
    *n = count;
    return SW_OK;
}
