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
#include "interrupt.h"
#include "safetensors.h"
#include "train.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sw_batch_opts batch_opts(const sw_trainer *tr) {
    sw_batch_opts b = {tr->o.batch, tr->o.packing, tr->o.shuffle, tr->o.seed};
    return b;
}

sw_status sw_trainer_new(sw_ctx *ctx, sw_model *m, const sw_dataset *ds, const sw_trainer_opts *o, sw_trainer **out) {
    *out = NULL;
    if (!m->lora) return sw_err(ctx, SW_ESTATE, "trainer: the model has no active adapter (model:lora{...})");
    if (o->batch <= 0 || o->accum <= 0) return sw_err(ctx, SW_EINVAL, "trainer: batch and accum must be positive");
    if (!(o->lr > 0)) return sw_err(ctx, SW_EINVAL, "trainer: lr must be positive, got %g", o->lr);
    if (o->max_steps <= 0 && !(o->epochs > 0)) return sw_err(ctx, SW_EINVAL, "trainer: give max_steps or epochs");
    if (sw_dataset_count(ds) == 0) return sw_err(ctx, SW_EINVAL, "trainer: the dataset is empty");
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
    int64_t steps_per_epoch = (tr->batches_per_epoch + o->accum - 1) / o->accum;
    tr->total_steps = o->max_steps > 0 ? o->max_steps : (int64_t)ceil(o->epochs * (double)steps_per_epoch);
    if (tr->o.warmup_steps <= 0 && o->warmup_ratio > 0)
        tr->o.warmup_steps = (int64_t)ceil(o->warmup_ratio * (double)tr->total_steps);
    if (sw_optim_new(ctx, tr->lora, &o->optim, &tr->opt)) {
        free(tr);
        return ctx->status;
    }
    *out = tr;
    return SW_OK;
}

void sw_trainer_free(sw_trainer *tr) {
    if (!tr) return;
    sw_optim_free(tr->opt);
    free(tr);
}

/* Row r of a batch as a packed sequence (padding left out). */
static void row_view(const sw_batch *b, int64_t r, sw_seq_batch *s, int64_t *starts) {
    int64_t first = b->row_start[r], last = b->row_start[r + 1];
    int n = (int)(last - first - 1);
    for (int j = 0; j <= n; j++) starts[j] = b->offsets[first + j];
    s->ids = b->ids + r * b->len;
    s->labels = b->labels + r * b->len;
    s->pos = b->positions + r * b->len;
    s->T = starts[n];
    s->starts = starts;
    s->n_seqs = n;
}

static int64_t max_samples_per_row(const sw_batch *b) {
    int64_t mx = 1;
    for (int64_t r = 0; r < b->rows; r++)
        if (b->row_start[r + 1] - b->row_start[r] > mx) mx = b->row_start[r + 1] - b->row_start[r];
    return mx;
}

sw_status sw_trainer_step(sw_ctx *ctx, sw_trainer *tr, sw_step_stats *out) {
    memset(out, 0, sizeof *out);
    if (tr->m->lora != tr->lora)
        return sw_err(ctx, SW_ESTATE, "trainer: the model's active adapter changed since the trainer was made");
    double t0 = now_s();
    sw_data_cursor cur = tr->cursor;
    sw_batch_opts bo = batch_opts(tr);
    sw_batch *bs = calloc((size_t)tr->o.accum, sizeof *bs);
    if (!bs) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    sw_status st = SW_OK;
    int64_t trained = 0, tokens = 0;
    for (int64_t k = 0; k < tr->o.accum && !st; k++) {
        st = sw_dataset_batch(ctx, tr->ds, &bo, &cur, &bs[k]);
        trained += bs[k].n_trained;
        tokens += bs[k].n_tokens;
    }
    double loss_sum = 0;
    int64_t counted = 0;
    int bad_micro = -1;
    if (!st) {
        sw_lora_zero_grad(tr->lora);
        float scale = trained ? 1.0f / (float)trained : 0.0f;
        sw_train_opts to = {true, tr->o.checkpointing, scale, NULL};
        for (int64_t k = 0; k < tr->o.accum && !st; k++) {
            int64_t *starts = malloc(sizeof(int64_t) * (size_t)(max_samples_per_row(&bs[k]) + 1));
            if (!starts) {
                st = sw_err(ctx, SW_ENOMEM, "host out of memory");
                break;
            }
            for (int64_t r = 0; r < bs[k].rows && !st; r++) {
                sw_seq_batch s;
                row_view(&bs[k], r, &s, starts);
                if (s.T <= 0) continue;
                double ls;
                int64_t n;
                st = sw_train_batch(ctx, tr->m, &s, &to, &ls, &n);
                if (!st && !isfinite(ls) && bad_micro < 0) bad_micro = (int)k;
                loss_sum += ls;
                counted += n;
            }
            free(starts);
        }
    }
    for (int64_t k = 0; k < tr->o.accum; k++) sw_batch_free(&bs[k]);
    free(bs);
    if (st) return st; /* cursor, adapter and optimizer untouched */

    out->step = tr->step + 1;
    out->loss = counted ? loss_sum / (double)counted : NAN;
    out->tokens = tokens;
    out->trained = counted;
    out->lr = tr->o.lr * sw_schedule_factor(tr->o.schedule, tr->step, tr->o.warmup_steps, tr->total_steps);
    out->grad_norm = sw_optim_grad_norm(tr->opt);
    int64_t bad = sw_optim_first_nonfinite(tr->opt);
    if (bad_micro >= 0 || bad >= 0 || !isfinite(out->loss)) {
        out->skipped = true;
        if (bad_micro >= 0)
            snprintf(out->why, sizeof out->why, "step %lld: the loss of micro-batch %d is not finite%s%s",
                     (long long)out->step, bad_micro + 1, bad >= 0 ? "; first non-finite gradient: " : "",
                     bad >= 0 ? tr->opt->names[bad] : "");
        else
            snprintf(out->why, sizeof out->why, "step %lld: the gradient of %s is not finite", (long long)out->step,
                     bad >= 0 ? tr->opt->names[bad] : "?");
    } else {
        sw_optim_clip(tr->opt, tr->o.max_grad_norm, out->grad_norm);
        sw_optim_update(tr->opt, out->lr);
    }
    tr->cursor = cur;
    tr->step++;
    out->seconds = now_s() - t0;
    out->tokens_per_s = out->seconds > 0 ? (double)tokens / out->seconds : 0;
    sw_mem_stats ms;
    sw_mem_get(SW_DEV_CPU, &ms);
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
        int64_t starts[2];
        for (int64_t r = 0; r < b.rows && !st; r++) {
            sw_seq_batch s = {b.ids + r * b.len, b.labels + r * b.len, b.positions + r * b.len, 0, starts, 1};
            starts[0] = 0;
            starts[1] = b.offsets[b.row_start[r] + 1];
            s.T = starts[1];
            if (s.T <= 0) continue;
            sw_train_opts to = {false, false, 0, NULL};
            double ls;
            int64_t k;
            st = sw_train_batch(ctx, m, &s, &to, &ls, &k);
            sum += ls;
            count += k;
        }
        sw_batch_free(&b);
    }
    if (st) return st;
    *loss = count ? sum / (double)count : NAN;
    *n = count;
    return SW_OK;
}
