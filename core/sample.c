/* sample.c — logits processors and the seeded draw (see sample.h). */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sw_status sw_sampler_init(sw_ctx *ctx, sw_sampler *s, const sw_sampler_opts *o, int64_t vocab) {
    memset(s, 0, sizeof *s);
    if (o->temperature < 0) return sw_err(ctx, SW_EINVAL, "temperature must be >= 0, got %g", o->temperature);
    if (o->top_k < 0) return sw_err(ctx, SW_EINVAL, "top_k must be >= 0, got %d", o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1)) return sw_err(ctx, SW_EINVAL, "top_p must be in (0, 1], got %g", o->top_p);
    if (!(o->min_p >= 0 && o->min_p <= 1)) return sw_err(ctx, SW_EINVAL, "min_p must be in [0, 1], got %g", o->min_p);
    if (!(o->repetition_penalty > 0))
        return sw_err(ctx, SW_EINVAL, "repetition_penalty must be > 0, got %g", o->repetition_penalty);
    s->o = *o;
    s->vocab = vocab;
    s->rng = o->seed ^ 0x5851f42d4c957f2dull;
    s->order = malloc(sizeof(int32_t) * (size_t)vocab);
    s->probs = malloc(sizeof(float) * (size_t)vocab);
    if (!s->order || !s->probs) {
        sw_sampler_free(s);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    return SW_OK;
}

void sw_sampler_free(sw_sampler *s) {
    free(s->order);
    free(s->probs);
    s->order = NULL;
    s->probs = NULL;
}

static uint64_t next_u64(uint64_t *x) { /* splitmix64 */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b) {
    float x = sort_logits[*(const int32_t *)a], y = sort_logits[*(const int32_t *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b; /* stable: lower id first */
}

int32_t sw_sample(sw_sampler *s, float *logits, const int32_t *history, int64_t n_history) {
    const int64_t V = s->vocab;
    const sw_sampler_opts *o = &s->o;
    if (o->repetition_penalty != 1.0f) {
        /* Each distinct token once (HF gathers, penalises, scatters); the
         * order buffer doubles as a seen-mark, cleared after. */
        for (int64_t i = 0; i < n_history; i++) {
            int32_t id = history[i];
            if (id < 0 || id >= V || s->order[id] == -1) continue;
            s->order[id] = -1;
            float l = logits[id];
            logits[id] = l < 0 ? l * o->repetition_penalty : l / o->repetition_penalty;
        }
        for (int64_t i = 0; i < n_history; i++)
            if (history[i] >= 0 && history[i] < V) s->order[history[i]] = 0;
    }
    if (o->temperature == 0) {
        int32_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = (int32_t)i;
        return best;
    }
    for (int64_t i = 0; i < V; i++) logits[i] /= o->temperature;
    /* Candidates sorted by logit: top-k cuts the list, top-p and min-p cut
     * by probability mass over what is left. */
    int64_t n = V;
    for (int64_t i = 0; i < V; i++) s->order[i] = (int32_t)i;
    sort_logits = logits;
    qsort(s->order, (size_t)V, sizeof(int32_t), by_logit_desc);
    if (o->top_k > 0 && o->top_k < n) n = o->top_k;
    float mx = logits[s->order[0]];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += s->probs[i] = expf(logits[s->order[i]] - mx);
    for (int64_t i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / sum);
    if (o->top_p < 1.0f) {
        double cum = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            cum += s->probs[i];
            if (cum >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (o->min_p > 0) {
        float cut = o->min_p * s->probs[0];
        int64_t keep = 1;
        while (keep < n && s->probs[keep] >= cut) keep++;
        n = keep;
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += s->probs[i];
    double r = (double)(next_u64(&s->rng) >> 11) / 9007199254740992.0 * total;
    for (int64_t i = 0; i < n; i++) {
        r -= s->probs[i];
        if (r < 0) return s->order[i];
    }
    return s->order[n - 1];
}
