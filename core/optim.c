/* optim.c — AdamW and SGD over an adapter's tensors (see optim.h).
 *
 * The arithmetic follows torch's single-tensor implementations in float32:
 * AdamW decays the parameter first (p *= 1 - lr*wd), moves m by lerp,
 * v by mul + addcmul, and applies p -= step_size * m / (sqrt(v)/sqrt(bc2) + eps).
 */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_status sw_optim_new(sw_ctx *ctx, sw_lora *l, const sw_optim_opts *o, sw_optim **out) {
    *out = NULL;
    if (o->kind == SW_OPTIM_ADAMW && (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0)))
        return sw_err(ctx, SW_EINVAL, "adamw: betas must be in [0, 1) and eps > 0");
    if (o->weight_decay < 0) return sw_err(ctx, SW_EINVAL, "weight_decay must be >= 0");
    if (o->kind == SW_OPTIM_SGD && o->momentum < 0) return sw_err(ctx, SW_EINVAL, "momentum must be >= 0");
    sw_optim *opt = calloc(1, sizeof *opt);
    if (!opt) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    opt->o = *o;
    int64_t cap = l->n_layers * SW_LORA_NTARGETS * 2;
    opt->param = calloc((size_t)cap, sizeof(sw_tensor *));
    opt->grad = calloc((size_t)cap, sizeof(sw_tensor *));
    opt->m = calloc((size_t)cap, sizeof(sw_tensor *));
    opt->v = calloc((size_t)cap, sizeof(sw_tensor *));
    opt->names = calloc((size_t)cap, sizeof *opt->names);
    if (!opt->param || !opt->grad || !opt->m || !opt->v || !opt->names) {
        sw_optim_free(opt);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    for (int64_t i = 0; i < l->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            sw_lora_pair *p = &l->pairs[i][t];
            if (!p->A) continue;
            for (int k = 0; k < 2; k++) {
                int64_t j = opt->n++;
                opt->param[j] = k ? p->B : p->A;
                opt->grad[j] = k ? p->gB : p->gA;
                snprintf(opt->names[j], sizeof opt->names[j], "layers.%lld.%s.lora_%c", (long long)i,
                         sw_lora_target_names[t], k ? 'B' : 'A');
                bool need_m = o->kind == SW_OPTIM_ADAMW || o->momentum > 0;
                if ((need_m && sw_tensor_new(ctx, &opt->m[j], SW_F32, opt->param[j]->ndim, opt->param[j]->shape,
                                             SW_DEV_CPU, SW_MEM_OPTIMIZER)) ||
                    (o->kind == SW_OPTIM_ADAMW && sw_tensor_new(ctx, &opt->v[j], SW_F32, opt->param[j]->ndim,
                                                                opt->param[j]->shape, SW_DEV_CPU, SW_MEM_OPTIMIZER))) {
                    sw_optim_free(opt);
                    return sw_err_prefix(ctx, "optimizer state");
                }
            }
        }
    *out = opt;
    return SW_OK;
}

void sw_optim_free(sw_optim *opt) {
    if (!opt) return;
    for (int64_t j = 0; j < opt->n; j++) {
        sw_tensor_free(opt->m[j]);
        sw_tensor_free(opt->v[j]);
    }
    free(opt->param);
    free(opt->grad);
    free(opt->m);
    free(opt->v);
    free(opt->names);
    free(opt);
}

double sw_optim_grad_norm(const sw_optim *opt) {
    /* torch: the norm of the per-tensor norms */
    double total = 0;
    for (int64_t j = 0; j < opt->n; j++) {
        const float *g = sw_tensor_data(opt->grad[j]);
        double s = 0;
        for (int64_t i = 0; i < sw_tensor_numel(opt->grad[j]); i++) s += (double)g[i] * g[i];
        total += s;
    }
    return sqrt(total);
}

void sw_optim_clip(sw_optim *opt, double max_norm, double norm) {
    if (max_norm <= 0) return;
    float coef = (float)(max_norm / (norm + 1e-6));
    if (coef >= 1.0f) return;
    for (int64_t j = 0; j < opt->n; j++) {
        float *g = sw_tensor_data(opt->grad[j]);
        for (int64_t i = 0; i < sw_tensor_numel(opt->grad[j]); i++) g[i] *= coef;
    }
}

int64_t sw_optim_first_nonfinite(const sw_optim *opt) {
    for (int64_t j = 0; j < opt->n; j++) {
        const float *g = sw_tensor_data(opt->grad[j]);
        for (int64_t i = 0; i < sw_tensor_numel(opt->grad[j]); i++)
            if (!isfinite(g[i])) return j;
    }
    return -1;
}

void sw_optim_update(sw_optim *opt, double lr) {
    const sw_optim_opts *o = &opt->o;
    opt->step++;
    if (o->kind == SW_OPTIM_ADAMW) {
        double bc1 = 1.0 - pow(o->beta1, (double)opt->step), bc2 = 1.0 - pow(o->beta2, (double)opt->step);
        float decay = (float)(1.0 - lr * o->weight_decay), w1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2,
              w2 = (float)(1.0 - o->beta2), step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
        for (int64_t j = 0; j < opt->n; j++) {
            float *p = sw_tensor_data(opt->param[j]), *g = sw_tensor_data(opt->grad[j]);
            float *m = sw_tensor_data(opt->m[j]), *v = sw_tensor_data(opt->v[j]);
            for (int64_t i = 0; i < sw_tensor_numel(opt->param[j]); i++) {
                p[i] = p[i] * decay;
                m[i] = m[i] + w1 * (g[i] - m[i]);
                v[i] = v[i] * b2 + w2 * (g[i] * g[i]);
                float denom = sqrtf(v[i]) / bc2s + eps;
                p[i] = p[i] + (-step_size) * (m[i] / denom);
            }
        }
    } else { /* SGD: d = g + wd p; buf = mu buf + d (first step: buf = d); p -= lr buf */
        float mu = (float)o->momentum, wd = (float)o->weight_decay, flr = (float)lr;
        for (int64_t j = 0; j < opt->n; j++) {
            float *p = sw_tensor_data(opt->param[j]), *g = sw_tensor_data(opt->grad[j]);
            float *b = opt->m[j] ? sw_tensor_data(opt->m[j]) : NULL;
            for (int64_t i = 0; i < sw_tensor_numel(opt->param[j]); i++) {
                float d = wd != 0 ? g[i] + wd * p[i] : g[i];
                if (b) {
                    b[i] = opt->step == 1 ? d : b[i] * mu + d;
                    d = b[i];
                }
                p[i] = p[i] - flr * d;
            }
        }
    }
}

double sw_schedule_factor(sw_schedule s, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    switch (s) {
    case SW_SCHED_LINEAR: {
        double rest = (double)(total - warmup);
        return rest > 0 ? fmax(0.0, (double)(total - step) / rest) : 0.0;
    }
    case SW_SCHED_COSINE: {
        double rest = (double)(total - warmup);
        double progress = rest > 0 ? (double)(step - warmup) / rest : 1.0;
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * progress)));
    }
    default:
        return 1.0;
    }
}
