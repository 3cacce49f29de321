/* trainer.h — supervised fine-tuning of an adapter, one optimizer step at a
 * time: batches from a dataset, gradient accumulation, clipping, the
 * optimizer and the learning-rate schedule, evaluation, and checkpoints.
 *
 * A step either completes or changes nothing: the data cursor, the
 * adapter and the optimizer move only once every micro-batch has run, so an
 * interrupted or failed step can simply be run again. A step whose loss or
 * gradients are not finite consumes its data but skips the update, and
 * says where the first non-finite value appeared.
 */
#ifndef SW_TRAINER_H
#define SW_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "data.h"
#include "lora.h"
#include "model.h"
#include "optim.h"

typedef struct sw_trainer_opts {
    int64_t batch;          /* rows per micro-batch */
    int64_t accum;          /* micro-batches per optimizer step */
    double lr;
    sw_schedule schedule;
    int64_t warmup_steps;   /* or, when 0, warmup_ratio of the total */
    double warmup_ratio;
    sw_optim_opts optim;
    double max_grad_norm;   /* <= 0: no clipping */
    int64_t max_steps;      /* > 0 overrides epochs */
    double epochs;
    uint64_t seed;
    bool packing, shuffle, checkpointing;
    bool offload;           /* checkpointing = "offload": layer inputs in pinned host memory (device engine) */
    /* Data parallel (core/dist.h): this process is one rank of dist
     * (borrowed; NULL: one device). Each step then reads accum * world
     * micro-batches of the one-device stream and this rank trains numbers
     * rank, rank + world, ...; see dist.h for the arithmetic. Needs the
     * device engine (m->gpu). zero1: the update is sharded over the ranks. */
    struct sw_dist *dist;
    bool zero1;
    size_t bucket_bytes;    /* gradient all-reduce buckets; 0: 8 MiB */
} sw_trainer_opts;

typedef struct sw_step_stats {
    int64_t step;           /* 1-based */
    double loss;            /* mean over the step's trained tokens */
    double lr;              /* the rate this update used */
    double grad_norm;       /* before clipping */
    int64_t tokens, trained;
    double seconds, tokens_per_s;
    size_t mem_now, mem_peak;
    bool skipped;           /* non-finite: no update */
    char why[256];
} sw_step_stats;

typedef struct sw_trainer {
    sw_model *m;
    sw_lora *lora;          /* borrowed: the model's active adapter when created */
    const sw_dataset *ds;
    sw_trainer_opts o;
    sw_optim *opt;
    sw_data_cursor cursor;
    int64_t step;           /* optimizer steps taken */
    int64_t total_steps;    /* for the schedule */
    int64_t batches_per_epoch;
} sw_trainer;

sw_status sw_trainer_new(sw_ctx *ctx, sw_model *m, const sw_dataset *ds, const sw_trainer_opts *o, sw_trainer **out);
void      sw_trainer_free(sw_trainer *tr);
sw_status sw_trainer_step(sw_ctx *ctx, sw_trainer *tr, sw_step_stats *out);
/* Mean loss over every trained token of a dataset (no gradients). */
sw_status sw_trainer_eval(sw_ctx *ctx, sw_model *m, const sw_dataset *ds, int64_t batch, double *loss, int64_t *n);

/* A checkpoint directory: the adapter (PEFT format), the optimizer state
 * and trainer.json (step, cursor, options, dropout stream). Written beside
 * the target and renamed into place, so a crash leaves the previous one. */
sw_status sw_trainer_save(sw_ctx *ctx, const sw_trainer *tr, const char *dir);
/* Restores step, cursor, optimizer state and adapter weights from dir into a
 * trainer built with the same options (as sw.resume does). */
sw_status sw_trainer_restore(sw_ctx *ctx, sw_trainer *tr, const char *dir);

#endif
