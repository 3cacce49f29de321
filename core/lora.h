/* lora.h — LoRA adapters on a model's projections.
 *
 * For a targeted projection W (out, in), the adapter adds
 *     y += scale * (dropout(x) A^T) B^T,   A (r, in), B (out, r)
 * with scale = alpha / r (or alpha / sqrt(r) with rsLoRA), as PEFT does.
 * A, B and their gradients are float32, charged to "adapters" and
 * "gradients". The base weights are never touched.
 */
#ifndef SW_LORA_H
#define SW_LORA_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "tensor.h"

enum { SW_LORA_Q, SW_LORA_K, SW_LORA_V, SW_LORA_O, SW_LORA_GATE, SW_LORA_UP, SW_LORA_DOWN, SW_LORA_NTARGETS };
extern const char *const sw_lora_target_names[SW_LORA_NTARGETS]; /* "q_proj", ... */

typedef struct sw_lora_pair {
    sw_tensor *A, *B;      /* NULL when this projection is not targeted */
    sw_tensor *gA, *gB;    /* gradients, same shapes */
} sw_lora_pair;

typedef enum sw_lora_init { SW_LORA_INIT_PEFT = 0, SW_LORA_INIT_GAUSSIAN, SW_LORA_INIT_ZERO_A } sw_lora_init;

typedef struct sw_lora_opts {
    int r;
    double alpha;
    double dropout;
    bool rslora;
    unsigned targets;      /* bit i = sw_lora_target_names[i] */
    const bool *layers;    /* n_layers flags, or NULL for every layer */
    sw_lora_init init;
    uint64_t seed;
    const char *name;
} sw_lora_opts;

typedef struct sw_lora {
    char name[64];
    int r;
    double alpha, dropout;
    float scale;
    bool rslora;
    unsigned targets;
    int64_t n_layers;
    sw_lora_pair (*pairs)[SW_LORA_NTARGETS]; /* [layer][target] */
    uint64_t seed;
    uint64_t dropout_calls;  /* advances the dropout stream each training forward */
} sw_lora;

struct sw_model;
sw_status sw_lora_new(sw_ctx *ctx, const struct sw_model *m, const sw_lora_opts *o, sw_lora **out);
void      sw_lora_free(sw_lora *l);
void      sw_lora_zero_grad(sw_lora *l);
int64_t   sw_lora_n_params(const sw_lora *l);
/* The projection's (out, in) for a target on a model. */
void      sw_lora_target_shape(const struct sw_model *m, int target, int64_t *out, int64_t *in);

#endif
