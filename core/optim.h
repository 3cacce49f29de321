/* optim.h — optimizers, learning-rate schedules and gradient clipping for
 * an adapter's parameters, matching torch.optim and transformers'
 * schedulers step for step.
 *
 * State (AdamW's m and v, SGD's momentum) is float32, charged to
 * "optimizer". A step whose gradients hold a NaN or an infinity changes
 * nothing and names the first offending tensor.
 */
#ifndef SW_OPTIM_H
#define SW_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "lora.h"

typedef enum sw_optim_kind { SW_OPTIM_ADAMW = 0, SW_OPTIM_SGD } sw_optim_kind;
typedef enum sw_schedule { SW_SCHED_CONSTANT = 0, SW_SCHED_LINEAR, SW_SCHED_COSINE } sw_schedule;

typedef struct sw_optim_opts {
    sw_optim_kind kind;
    double beta1, beta2, eps;   /* AdamW: torch defaults 0.9, 0.999, 1e-8 */
    double weight_decay;        /* decoupled (AdamW); added to the gradient for SGD, as torch does */
    double momentum;            /* SGD */
} sw_optim_opts;

typedef struct sw_optim {
    sw_optim_opts o;
    int64_t step;               /* updates applied so far */
    int64_t n;                  /* parameter tensors: 2 per adapted projection */
    sw_tensor **param, **grad;  /* borrowed from the adapter */
    sw_tensor **m, **v;         /* owned state (v: AdamW only) */
    char (*names)[96];
} sw_optim;

sw_status sw_optim_new(sw_ctx *ctx, sw_lora *l, const sw_optim_opts *o, sw_optim **out);
void      sw_optim_free(sw_optim *opt);

/* Global L2 norm of the gradients (as torch.nn.utils.clip_grad_norm_). */
double    sw_optim_grad_norm(const sw_optim *opt);
/* Scale gradients so their norm is at most max_norm (no-op when max_norm <= 0). */
void      sw_optim_clip(sw_optim *opt, double max_norm, double norm);
/* Index of the first tensor with a non-finite gradient, or -1. */
int64_t   sw_optim_first_nonfinite(const sw_optim *opt);
/* One update with learning rate lr; gradients are left as they are. */
void      sw_optim_update(sw_optim *opt, double lr);

/* transformers' schedulers: the multiplier of the base lr after `step`
 * scheduler steps (the first update uses step 0). */
double    sw_schedule_factor(sw_schedule s, int64_t step, int64_t warmup, int64_t total);

#endif
