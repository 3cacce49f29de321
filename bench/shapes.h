/* shapes.h — the model shapes the GPU benchmarks run (bench/gpu_train.c,
 * bench/dist_scaling.c): real configurations, random weights. Bench code
 * only: a static function in a header so both use one list. */
#ifndef SW_BENCH_SHAPES_H
#define SW_BENCH_SHAPES_H

#include <string.h>

#include "core/model.h"

static int shape_config(const char *name, sw_model_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = SW_ARCH_LLAMA;
    c->max_pos = 1 << 20;
    c->rms_eps = 1e-6;
    c->bos_id = c->pad_id = -1;
    if (!strcmp(name, "tiny")) { /* for --emulate: checks the harness, measures nothing */
        c->hidden = 64, c->intermediate = 128, c->n_layers = 2, c->n_heads = 4, c->n_kv_heads = 2;
        c->vocab = 96, c->tie_embeddings = true, c->rope_theta = 10000;
    } else if (!strcmp(name, "smollm2-135m")) {
        c->hidden = 576, c->intermediate = 1536, c->n_layers = 30, c->n_heads = 9, c->n_kv_heads = 3;
        c->vocab = 49152, c->tie_embeddings = true, c->rope_theta = 100000;
    } else if (!strcmp(name, "qwen2.5-1.5b-like")) {
        c->hidden = 1536, c->intermediate = 8960, c->n_layers = 28, c->n_heads = 12, c->n_kv_heads = 2;
        c->vocab = 151936, c->tie_embeddings = true, c->rope_theta = 1000000;
    } else if (!strcmp(name, "llama3-8b")) {
        c->hidden = 4096, c->intermediate = 14336, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 8;
        c->vocab = 128256, c->tie_embeddings = false, c->rope_theta = 500000;
    } else {
        return -1;
    }
    c->head_dim = c->hidden / c->n_heads;
    return 0;
}

#endif
