/* test_gpu_profile.c — the engine's per-op profiler (core/gpu_profile.h)
 * on a tiny random model: the wrapper changes no result, the counts follow
 * the step's structure (attention once per layer forward, once more with
 * recompute; one dequantization per frozen GEMM of NF4 weights; two head
 * GEMMs per chunk), times are sane, and attach/detach behave.
 *
 * Runs on the emulated device everywhere (host clock) and on CUDA 0 when
 * present (events).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/device.h"
#include "core/gpu.h"
#include "core/gpu_profile.h"
#include "core/lora.h"
#include "core/model.h"

enum { NL = 2, T = 23 };

static void tiny_config(sw_model_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = SW_ARCH_LLAMA;
    c->vocab = 96, c->hidden = 64, c->intermediate = 128, c->n_layers = NL, c->n_heads = 4, c->n_kv_heads = 2;
    c->head_dim = 16, c->max_pos = 64, c->rope_theta = 10000, c->rms_eps = 1e-6;
    c->bos_id = c->pad_id = -1;
    c->tie_embeddings = true;
}

static int64_t calls_of(const sw_gpu_prof *p, const char *name) {
    double ms;
    int64_t n;
    sw_gpu_prof_get(p, name, &ms, &n);
    CHECK(ms >= 0);
    return n;
}

/* zero_grad + one checkpointed step; the loss and the gradient norm */
static void step(sw_ctx *ctx, sw_gpu *g, const sw_seq_batch *b, double *loss, double *norm) {
    sw_train_opts to = {.backward = true, .checkpointing = true, .loss_scale = 0.05f};
    int64_t n;
    CHECK_EQ_INT(sw_gpu_zero_grad(ctx, g), SW_OK);
    CHECK_EQ_INT(sw_gpu_train_batch(ctx, g, b, &to, loss, &n), SW_OK);
    CHECK_EQ_INT(sw_gpu_grad_norm(ctx, g, norm), SW_OK);
}

static void run_case(int dev) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_model_config cfg;
    tiny_config(&cfg);
    sw_gpu_opts go = {.weights = SW_GPU_W_NF4, .seed = 7};
    sw_gpu *g = NULL;
    sw_model *host = NULL;
    sw_lora *l = NULL;
    CHECK_EQ_INT(sw_gpu_new_random(&ctx, &cfg, dev, &go, &g), SW_OK);
    CHECK_EQ_INT(sw_model_new(&ctx, &cfg, &host), SW_OK);
    sw_lora_opts lo = {.r = 4, .alpha = 8, .targets = 0x7f, .init = SW_LORA_INIT_GAUSSIAN, .seed = 5};
    CHECK_EQ_INT(sw_lora_new(&ctx, host, &lo, &l), SW_OK);
    if (!g || !l) return;
    for (int64_t i = 0; i < NL; i++) /* B non-zero so every gradient flows */
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            float *B = sw_tensor_data(l->pairs[i][t].B);
            for (int64_t k = 0; k < sw_tensor_numel(l->pairs[i][t].B); k++)
                B[k] = 0.01f * (float)((k * 7 + t) % 11 - 5);
        }
    CHECK_EQ_INT(sw_gpu_set_lora(&ctx, g, l), SW_OK);
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (i * 37 + 11) % 96;
    int64_t starts[4] = {0, 9, 10, T};
    sw_seq_batch b = {ids, NULL, NULL, T, starts, 3};

    double loss0, norm0, loss1, norm1;
    step(&ctx, g, &b, &loss0, &norm0);

    sw_gpu_prof *p, *p2;
    CHECK_EQ_INT(sw_gpu_prof_new(&ctx, &p), SW_OK);
    CHECK_EQ_INT(sw_gpu_prof_new(&ctx, &p2), SW_OK);
    CHECK_EQ_INT(sw_gpu_prof_attach(&ctx, g, p), SW_OK);
    CHECK(sw_gpu_prof_attach(&ctx, g, p2) != SW_OK); /* one profiler per engine */
    sw_gpu_graph_stats gs;
    sw_gpu_graph_info(g, &gs);
    CHECK(!gs.enabled); /* profiling records no graphs */

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    step(&ctx, g, &b, &loss1, &norm1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK_EQ_INT(sw_gpu_prof_collect(&ctx, p, wall), SW_OK);
    sw_gpu_prof_detach(g);

    /* the wrapper is transparent: the same step gives the same numbers */
    CHECK(loss1 == loss0);
    CHECK(norm1 == norm0);

    /* the counts follow the step's structure */
    CHECK_EQ_INT(calls_of(p, "attn_fwd"), NL * 2); /* forward + recompute */
    CHECK_EQ_INT(calls_of(p, "attn_bwd"), NL);
    CHECK_EQ_INT(calls_of(p, "embed"), 1);
    CHECK_EQ_INT(calls_of(p, "cross_entropy"), 1); /* one chunk of T rows */
    CHECK_EQ_INT(calls_of(p, "gemm.head"), 2);     /* logits, then the gradient back */
    int64_t frozen = calls_of(p, "gemm.frozen");
    CHECK(frozen >= NL * 7 * 2); /* 7 projections forward and backward, at least */
    CHECK_EQ_INT(calls_of(p, "dequant.nf4"), frozen);
    CHECK(calls_of(p, "gemm.lora") >= NL * 7 * 3); /* out, dB, dU per target at least */
    CHECK(calls_of(p, "to_bf16.f32") >= NL);        /* the residual gradient cast for the GEMMs */
    CHECK_EQ_INT(calls_of(p, "sumsq"), 1);
    CHECK(calls_of(p, "upload") >= 4); /* ids, positions, targets, sample bounds */
    CHECK(calls_of(p, "fetch") >= 2);  /* the losses, the gradient norm */
    CHECK(calls_of(p, "zero") >= 1);
    double ms;
    int64_t n;
    CHECK(!sw_gpu_prof_get(p, "adamw", &ms, &n)); /* not called in these steps */
    CHECK(!sw_gpu_prof_get(p, "no such op", &ms, &n));

    sw_gpu_prof_summary s;
    sw_gpu_prof_summary_of(p, &s);
    CHECK_EQ_INT(s.steps, 1);
    CHECK(s.busy_ms > 0);
    CHECK(s.span_ms >= 0);
    CHECK(s.wall_ms > 0);
    CHECK(s.busy_ms <= s.wall_ms * 1.01 + 0.05); /* the ops ran inside the step */

    /* detached: the engine runs its own table again and p hears nothing */
    int64_t before = calls_of(p, "attn_fwd");
    double loss2, norm2;
    step(&ctx, g, &b, &loss2, &norm2);
    CHECK(loss2 == loss0);
    CHECK_EQ_INT(calls_of(p, "attn_fwd"), before);

    /* the reports name the ops */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        sw_gpu_prof_json(p, f);
        fputc('\n', f);
        sw_gpu_prof_print(p, f);
        fclose(f);
        CHECK_CONTAINS(buf, "\"attn_fwd\": {\"ms\": ");
        CHECK_CONTAINS(buf, "\"busy_pct\"");
        CHECK_CONTAINS(buf, "gemm.lora");
        if (getenv("SW_TEST_VERBOSE")) fprintf(stderr, "%s\n", buf);
        free(buf);
    }

    /* a second engine's profiler on the same device is refused while p is attached */
    CHECK_EQ_INT(sw_gpu_prof_attach(&ctx, g, p), SW_OK);
    sw_gpu *g2 = NULL;
    if (!sw_gpu_new_random(&ctx, &cfg, dev, &go, &g2)) {
        CHECK(sw_gpu_prof_attach(&ctx, g2, p2) != SW_OK);
        sw_gpu_free(g2);
    }
    sw_gpu_free(g); /* detaches p */
    sw_gpu_prof_free(p);
    sw_gpu_prof_free(p2);
    sw_lora_free(l);
    sw_model_free(host);
    fprintf(stderr, "%-8s profile: %lld frozen GEMMs, busy %.2f of %.2f ms\n",
            dev == SW_GPU_EMULATE ? "emulated" : "cuda", (long long)frozen, s.busy_ms, s.wall_ms);
}

int main(void) {
    run_case(SW_GPU_EMULATE);
    if (sw_device_cuda_count() > 0) run_case(0);
    CHECK_DONE();
}
