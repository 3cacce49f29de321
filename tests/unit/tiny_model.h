/* tiny_model.h — a tiny random Llama (3 layers, tied embeddings) and a
 * seeded fill, shared by the data-parallel tests (tests/unit/test_dist.c,
 * tests/gpu/test_nccl.c). Test code only: static functions in a header. */
#ifndef SW_TEST_TINY_MODEL_H
#define SW_TEST_TINY_MODEL_H

#include <stdint.h>
#include <stdlib.h>

#include "core/model.h"
#include "core/tensor.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

static void fill(float *x, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * frand(&seed);
}

enum { V = 64, C = 64, FF = 48, NL = 3, H = 4, KV = 2, D = 16 }; /* D: a head size the CUDA attention has */

static sw_model *tiny_model(sw_ctx *ctx) {
    sw_model_config c = {0};
    c.arch = SW_ARCH_LLAMA;
    c.vocab = V, c.hidden = C, c.intermediate = FF, c.n_layers = NL, c.n_heads = H, c.n_kv_heads = KV;
    c.head_dim = D, c.max_pos = 64, c.rope_theta = 10000, c.rms_eps = 1e-6, c.bos_id = -1, c.pad_id = -1;
    c.tie_embeddings = true;
    sw_model *m;
    if (sw_model_new(ctx, &c, &m)) return NULL;
    uint64_t seed = 100;
#define RT(t, sc, ...)                                                                                   \
    do {                                                                                                 \
        int64_t sh[] = {__VA_ARGS__};                                                                    \
        sw_tensor_new(ctx, &(t), SW_F32, (int)(sizeof sh / sizeof sh[0]), sh, SW_DEV_CPU, SW_MEM_WEIGHTS); \
        fill(sw_tensor_data(t), sw_tensor_numel(t), seed++, sc);                                        \
    } while (0)
    RT(m->embed, 1.0f, V, C);
    RT(m->norm, 1.0f, C);
    m->lm_head.w = m->embed, m->lm_head.out = V, m->lm_head.in = C;
    for (int i = 0; i < NL; i++) {
        sw_layer *L = &m->layers[i];
        RT(L->attn_norm, 1.0f, C);
        RT(L->mlp_norm, 1.0f, C);
        sw_linear *lin[7] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        int64_t shp[7][2] = {{H * D, C}, {KV * D, C}, {KV * D, C}, {C, H * D}, {FF, C}, {FF, C}, {C, FF}};
        for (int t = 0; t < 7; t++) {
            lin[t]->out = shp[t][0], lin[t]->in = shp[t][1];
            RT(lin[t]->w, 0.12f, shp[t][0], shp[t][1]);
        }
    }
#undef RT
    if (sw_model_finish(ctx, m, 64)) {
        sw_model_free(m);
        return NULL;
    }
    return m;
}

#endif
