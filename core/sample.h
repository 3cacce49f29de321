/* sample.h — choosing the next token from logits.
 *
 * The processors run in Hugging Face generate()'s order: repetition
 * penalty, temperature, top-k, top-p, min-p, then a draw from a seeded
 * generator (or the argmax when temperature is 0). The same seed and the
 * same logits give the same token on every run.
 */
#ifndef SW_SAMPLE_H
#define SW_SAMPLE_H

#include <stdint.h>

#include "ctx.h"

typedef struct sw_sampler_opts {
    float temperature;          /* 0: greedy */
    int top_k;                  /* 0: off */
    float top_p;                /* 1: off */
    float min_p;                /* 0: off */
    float repetition_penalty;   /* 1: off; HF semantics (divide positive logits) */
    uint64_t seed;
} sw_sampler_opts;

typedef struct sw_sampler {
    sw_sampler_opts o;
    uint64_t rng;
    int64_t vocab;
    int32_t *order;             /* scratch: candidate ids */
    float *probs;               /* scratch */
} sw_sampler;

sw_status sw_sampler_init(sw_ctx *ctx, sw_sampler *s, const sw_sampler_opts *o, int64_t vocab);
void      sw_sampler_free(sw_sampler *s);
/* logits (vocab) are modified. history: the ids seen so far (prompt +
 * generated) for the repetition penalty. */
int32_t   sw_sample(sw_sampler *s, float *logits, const int32_t *history, int64_t n_history);

#endif
