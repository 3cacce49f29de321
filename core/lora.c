/* lora.c — creating and freeing LoRA adapters (see lora.h).
 *
 * Initialisation follows PEFT: A ~ kaiming_uniform(a = sqrt(5)), i.e.
 * U(-1/sqrt(in), 1/sqrt(in)), and B = 0, so a fresh adapter changes
 * nothing; "gaussian" draws A ~ N(0, 1/r). Draws come from our counter-based
 * generator (kernels/cpu/convert.c), seeded per adapter, layer and target,
 * so the same seed gives the same adapter on every machine.
 */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ops.h"
#include "model.h"

const char *const sw_lora_target_names[SW_LORA_NTARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"};

void sw_lora_target_shape(const sw_model *m, int target, int64_t *out, int64_t *in) {
    const sw_model_config *c = &m->cfg;
    int64_t C = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, FF = c->intermediate;
    static const int rows_cols[SW_LORA_NTARGETS][2] = {{0, 1}, {2, 1}, {2, 1}, {1, 0}, {3, 1}, {3, 1}, {1, 3}};
    int64_t dims[4] = {qd, C, kvd, FF};
    *out = dims[rows_cols[target][0]];
    *in = dims[rows_cols[target][1]];
}

/* Uniform in [-1, 1) from the counter-based stream: two normals are not
 * what kaiming_uniform draws, so derive uniforms from the same hash. */
static float uniform_pm1(uint64_t seed, uint64_t i) {
    uint64_t x = seed ^ (i * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (float)((double)(x >> 11) / 4503599627370496.0 - 1.0);
}

sw_status sw_lora_new(sw_ctx *ctx, const sw_model *m, const sw_lora_opts *o, sw_lora **out) {
    *out = NULL;
    if (o->r <= 0 || o->r > 4096) return sw_err(ctx, SW_EINVAL, "lora: r must be in 1..4096, got %d", o->r);
    if (!(o->alpha > 0)) return sw_err(ctx, SW_EINVAL, "lora: alpha must be positive, got %g", o->alpha);
    if (!(o->dropout >= 0 && o->dropout < 1)) return sw_err(ctx, SW_EINVAL, "lora: dropout must be in [0, 1), got %g", o->dropout);
    if (!o->targets) return sw_err(ctx, SW_EINVAL, "lora: no target projections");
    sw_lora *l = calloc(1, sizeof *l);
    if (!l) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    l->n_layers = m->cfg.n_layers;
    l->pairs = calloc((size_t)l->n_layers, sizeof *l->pairs);
    if (!l->pairs) {
        free(l);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    snprintf(l->name, sizeof l->name, "%s", o->name && *o->name ? o->name : "default");
    l->r = o->r;
    l->alpha = o->alpha;
    l->dropout = o->dropout;
    l->rslora = o->rslora;
    l->targets = o->targets;
    l->seed = o->seed;
    l->scale = (float)(o->rslora ? o->alpha / sqrt((double)o->r) : o->alpha / o->r);
    for (int64_t i = 0; i < l->n_layers; i++) {
        if (o->layers && !o->layers[i]) continue;
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            if (!(o->targets & (1u << t))) continue;
            int64_t rows, cols;
            sw_lora_target_shape(m, t, &rows, &cols);
            sw_lora_pair *p = &l->pairs[i][t];
            int64_t sa[2] = {o->r, cols}, sb[2] = {rows, o->r};
            if (sw_tensor_new(ctx, &p->A, SW_F32, 2, sa, SW_DEV_CPU, SW_MEM_ADAPTERS) ||
                sw_tensor_new(ctx, &p->B, SW_F32, 2, sb, SW_DEV_CPU, SW_MEM_ADAPTERS) ||
                sw_tensor_new(ctx, &p->gA, SW_F32, 2, sa, SW_DEV_CPU, SW_MEM_GRADIENTS) ||
                sw_tensor_new(ctx, &p->gB, SW_F32, 2, sb, SW_DEV_CPU, SW_MEM_GRADIENTS)) {
                sw_lora_free(l);
                return sw_err_prefix(ctx, "lora");
            }
            float *a = sw_tensor_data(p->A);
            uint64_t stream = o->seed * 1000003ull + (uint64_t)(i * SW_LORA_NTARGETS + t);
            int64_t n = o->r * cols;
            if (o->init == SW_LORA_INIT_GAUSSIAN) {
                sw_randn_cpu(a, stream, 0, (float)(1.0 / o->r), n);
            } else if (o->init == SW_LORA_INIT_PEFT) {
                float bound = (float)(1.0 / sqrt((double)cols));
                for (int64_t k = 0; k < n; k++) a[k] = bound * uniform_pm1(stream, (uint64_t)k);
            }
            /* B stays zero: a new adapter leaves the model's outputs as they were. */
        }
    }
    *out = l;
    return SW_OK;
}

void sw_lora_free(sw_lora *l) {
    if (!l) return;
    for (int64_t i = 0; l->pairs && i < l->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            sw_lora_pair *p = &l->pairs[i][t];
            sw_tensor_free(p->A);
            sw_tensor_free(p->B);
            sw_tensor_free(p->gA);
            sw_tensor_free(p->gB);
        }
    free(l->pairs);
    free(l);
}

void sw_lora_zero_grad(sw_lora *l) {
    for (int64_t i = 0; i < l->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            sw_lora_pair *p = &l->pairs[i][t];
            if (!p->A) continue;
            memset(sw_tensor_data(p->gA), 0, sw_tensor_nbytes(p->gA));
            memset(sw_tensor_data(p->gB), 0, sw_tensor_nbytes(p->gB));
        }
}

int64_t sw_lora_n_params(const sw_lora *l) {
    int64_t n = 0;
    for (int64_t i = 0; i < l->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++)
            if (l->pairs[i][t].A) n += sw_tensor_numel(l->pairs[i][t].A) + sw_tensor_numel(l->pairs[i][t].B);
    return n;
}
