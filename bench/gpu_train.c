/* gpu_train.c — LoRA training steps on the GPU for the shapes of
 * ANCHORS.md, with random weights made on the device (nothing read from
 * disk), the same recipe as bench/hf_peft_baseline.py: r = 16 on all seven
 * projections, AdamW, clipping at 0.3, random tokens, every token trained.
 *
 *   bench_gpu_train --shape llama3-8b --batch 4 --seq 2048 --weights nf4 --ckpt 1 [--steps 6 --warm 2]
 *   bench_gpu_train --gemm            (the measured bf16 GEMM rate, for MFU)
 *   bench_gpu_train --shape llama3-8b --batch 1 --seq 131072 --weights nf4 --ckpt 1 --offload 1 --steps 1 --warm 0
 *   bench_gpu_train --max-context --shape llama3-8b --weights nf4 --limit-gib 80 [--offload 1]
 *   bench_gpu_train --profile 1       (per-op times of the timed steps: a table on stderr,
 *                                      "profile" in the JSON; no CUDA graphs while profiling)
 *   bench_gpu_train --graphs 0|1      (CUDA graphs of the step; default: on unless
 *                                      STEPWISE_CUDA_GRAPHS=0)
 *   bench_gpu_train --emulate 1 --shape tiny --batch 2 --seq 64 --profile 1
 *                                     (the harness on the emulated device: no GPU needed)
 *
 * Prints one JSON object per run on stdout: median step time, tokens/s,
 * peak device memory (the accounting allocator's peak and the driver's
 * view), and FLOPs per token of the step.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/device.h"
#include "core/gpu.h"
#include "core/interrupt.h"
#include "core/gpu_profile.h"
#include "core/lora.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/optim.h"
#include "kernels/gpu_ops.h"
#include "kernels/ops.h"
#include "shapes.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double gib(size_t b) { return (double)b / (double)(1ull << 30); }

static size_t peak_accounted(sw_device d) {
    sw_mem_stats s;
    sw_mem_get(d, &s);
    return s.total_peak[SW_PEAK_SESSION];
}

/* FLOPs of one trained token: forward 2P, activation gradients 2P, one more
 * forward when recomputing, for the projections and the head; attention's
 * two products per causal pair, backward 2.5 forwards. */
static double flops_per_token(const sw_model_config *c, int64_t seq, int ckpt) {
    double C = (double)c->hidden, D = (double)c->head_dim, Hq = (double)c->n_heads, Hkv = (double)c->n_kv_heads;
    double P = (double)c->n_layers * (C * Hq * D * 2 + C * Hkv * D * 2 + 3 * C * (double)c->intermediate);
    double head = C * (double)c->vocab;
    double attn_fwd = (double)c->n_layers * 4.0 * ((double)seq / 2.0) * Hq * D;
    return (4.0 + 2.0 * ckpt) * P + 4.0 * head + attn_fwd * (1.0 + 2.5 + ckpt);
}

static int gemm_rate(sw_ctx *ctx) {
    int64_t n = 8192;
    sw_device d = SW_DEV_CUDA(0);
    size_t bytes = sizeof(sw_bf16) * (size_t)(n * n);
    void *a = sw_mem_alloc(ctx, d, SW_MEM_WORKSPACE, bytes), *b = sw_mem_alloc(ctx, d, SW_MEM_WORKSPACE, bytes),
         *c = sw_mem_alloc(ctx, d, SW_MEM_WORKSPACE, bytes);
    float *f = sw_mem_alloc(ctx, d, SW_MEM_WORKSPACE, sizeof(float) * (size_t)(n * n));
    if (!a || !b || !c || !f) return fprintf(stderr, "%s\n", ctx->msg), 1;
    sw_randn_cuda(ctx, f, 1, 0, 1.0f, n * n, 0);
    sw_dequant_bf16_cuda(ctx, 0, a, f, SW_F32, n * n);
    sw_randn_cuda(ctx, f, 2, 0, 1.0f, n * n, 0);
    sw_dequant_bf16_cuda(ctx, 0, b, f, SW_F32, n * n);
    for (int i = 0; i < 3; i++) sw_gemm_cuda(ctx, 0, false, true, n, n, n, 1.0f, a, SW_BF16, n, b, n, 0.0f, c, SW_BF16, n);
    sw_device_sync(ctx, d);
    double t0 = now();
    int reps = 10;
    for (int i = 0; i < reps; i++) sw_gemm_cuda(ctx, 0, false, true, n, n, n, 1.0f, a, SW_BF16, n, b, n, 0.0f, c, SW_BF16, n);
    if (sw_device_sync(ctx, d)) return fprintf(stderr, "%s\n", ctx->msg), 1;
    double dt = (now() - t0) / reps;
    printf("{\"gemm_bf16_tflops\": %.1f, \"n\": %lld}\n", 2.0 * n * n * n / dt / 1e12, (long long)n);
    return 0;
}

typedef struct result {
    double step_s, tok_s, loss, peak_acc, peak_drv;
    sw_gpu_graph_stats graphs;
    char why[256]; /* graphs.why points here: the engine is gone by then */
    int ok;
} result;

/* graphs: -1 the engine's default, else off/on. prof: times the steps after
 * the warm-up when given. */
static int emulate; /* --emulate: the engine on the host (SW_GPU_EMULATE) */

static result run(sw_ctx *ctx, const sw_model_config *cfg, int64_t batch, int64_t seq, int nf4, int ckpt, int offload,
                  int steps, int warm, int quiet, int graphs, sw_gpu_prof *prof) {
    result R = {0};
    sw_device d = emulate ? SW_DEV_CPU : SW_DEV_CUDA(0);
    size_t free0, total;
    sw_device_meminfo(ctx, d, &free0, &total);
    sw_mem_reset_peak(d, 0);
    sw_gpu_opts go = {.weights = nf4 ? SW_GPU_W_NF4 : SW_GPU_W_BF16, .seed = 1,
                      .graphs = graphs < 0 ? SW_GPU_GRAPHS_AUTO : graphs ? SW_GPU_GRAPHS_ON : SW_GPU_GRAPHS_OFF};
    sw_gpu *g = NULL;
    sw_model *host = NULL;
    sw_lora *l = NULL;
    int64_t T = batch * seq;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)(batch + 1));
    if (sw_gpu_new_random(ctx, cfg, emulate ? SW_GPU_EMULATE : 0, &go, &g) || sw_model_new(ctx, cfg, &host)) goto fail;
    sw_lora_opts lo = {.r = 16, .alpha = 16, .targets = 0x7f, .init = SW_LORA_INIT_PEFT, .seed = 3407};
    if (sw_lora_new(ctx, host, &lo, &l) || sw_gpu_set_lora(ctx, g, l)) goto fail;
    /* like the HF script: the peak counts from here (model made, optimizer ready), not the random init */
    sw_mem_reset_peak(d, 0);
    uint64_t s = 12345;
    for (int64_t i = 0; i < T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)cfg->vocab);
    }
    for (int64_t b = 0; b <= batch; b++) starts[b] = b * seq;
    sw_seq_batch sb = {ids, NULL, NULL, T, starts, (int)batch};
    sw_train_opts to = {.backward = true, .checkpointing = ckpt != 0, .offload = offload != 0,
                        .loss_scale = 1.0f / (float)(T - batch)};
    sw_optim_opts oo = {.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    double *times = calloc((size_t)steps, sizeof(double));
    for (int i = 0; i < steps + warm; i++) {
        if (prof && i == warm && sw_gpu_prof_attach(ctx, g, prof)) goto fail;
        double t0 = now(), loss, norm;
        int64_t n;
        if (sw_gpu_zero_grad(ctx, g) || sw_gpu_train_batch(ctx, g, &sb, &to, &loss, &n) ||
            sw_gpu_grad_norm(ctx, g, &norm))
            goto fail;
        float coef = (float)(0.3 / (norm + 1e-6));
        if (sw_gpu_optim_update(ctx, g, &oo, 2e-4, coef < 1 ? coef : 1.0f) || sw_device_sync(ctx, d)) goto fail;
        if (i >= warm) times[i - warm] = now() - t0;
        if (prof && i >= warm && sw_gpu_prof_collect(ctx, prof, times[i - warm])) goto fail;
        R.loss = loss / (double)n;
        if (!quiet) fprintf(stderr, "  step %d: %.3f s, loss %.4f, grad norm %.3f\n", i, now() - t0, R.loss, norm);
    }
    for (int i = 0; i < steps; i++) /* median */
        for (int j = i + 1; j < steps; j++)
            if (times[j] < times[i]) {
                double t = times[i];
                times[i] = times[j], times[j] = t;
            }
    if (prof) sw_gpu_prof_detach(g);
    sw_gpu_graph_info(g, &R.graphs);
    snprintf(R.why, sizeof R.why, "%s", R.graphs.why);
    R.graphs.why = R.why;
    R.step_s = times[steps / 2];
    free(times);
    R.tok_s = (double)T / R.step_s;
    R.peak_acc = gib(peak_accounted(d));
    size_t free1;
    sw_device_meminfo(ctx, d, &free1, &total);
    R.peak_drv = gib(free0 - free1); /* in use at the end: the engine keeps its buffers */
    R.ok = 1;
fail:
    if (!R.ok) fprintf(stderr, "error: %s\n", ctx->msg);
    if (g) sw_gpu_free(g);
    if (l) sw_lora_free(l);
    if (host) sw_model_free(host);
    free(ids);
    free(starts);
    return R;
}

/* Does a batch-1 step of len tokens get its memory within the limit? Every
 * buffer of a step is taken when it starts (the activations in one block,
 * the offloaded checkpoints pinned on the host), so the step is stopped by
 * an interrupt after its first layer: SW_EINTR = it fits, SW_ENOMEM = not.
 * The full step at such lengths takes many minutes (attention is quadratic),
 * longer than a device call may run; a real step at a shorter length is run
 * separately (run()). */
static int probe(sw_ctx *ctx, sw_gpu *g, const sw_model_config *cfg, int64_t len, int offload, double *peak) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)len);
    if (!ids) return -1;
    for (int64_t i = 0; i < len; i++) ids[i] = (int32_t)((i * 7919) % cfg->vocab);
    int64_t starts[2] = {0, len};
    sw_seq_batch sb = {ids, NULL, NULL, len, starts, 1};
    sw_train_opts to = {.backward = true, .checkpointing = true, .offload = offload != 0, .loss_scale = 1e-6f};
    double loss;
    int64_t n;
    sw_mem_reset_peak(SW_DEV_CUDA(0), 0);
    sw_interrupt_raise();
    sw_status st = sw_gpu_train_batch(ctx, g, &sb, &to, &loss, &n);
    sw_interrupt_clear();
    sw_device_sync(ctx, SW_DEV_CUDA(0));
    *peak = gib(peak_accounted(SW_DEV_CUDA(0)));
    free(ids);
    if (st == SW_EINTR) return 1;
    fprintf(stderr, "  %lld tokens: %s\n", (long long)len, ctx->msg);
    return st == SW_ENOMEM ? 0 : -1;
}

static int max_context(sw_ctx *ctx, const sw_model_config *cfg, const char *shape, const char *weights, int nf4,
                       int offload, double limit_gib) {
    sw_mem_set_limit(ctx, SW_DEV_CUDA(0), (size_t)(limit_gib * (double)(1ull << 30)));
    sw_gpu_opts go = {.weights = nf4 ? SW_GPU_W_NF4 : SW_GPU_W_BF16, .seed = 1};
    sw_gpu *g = NULL;
    sw_model *host = NULL;
    sw_lora *l = NULL;
    sw_lora_opts lo = {.r = 16, .alpha = 16, .targets = 0x7f, .init = SW_LORA_INIT_PEFT, .seed = 3407};
    if (sw_gpu_new_random(ctx, cfg, 0, &go, &g) || sw_model_new(ctx, cfg, &host) || sw_lora_new(ctx, host, &lo, &l) ||
        sw_gpu_set_lora(ctx, g, l)) {
        fprintf(stderr, "error: %s\n", ctx->msg);
        return 1;
    }
    int64_t lo_len = 0, hi_len = 0, len = 16384;
    double peak = 0, best_peak = 0;
    for (;;) { /* double until it does not fit, then bisect to 4096 tokens */
        int r = probe(ctx, g, cfg, len, offload, &peak);
        fprintf(stderr, "context %lld: %s (peak %.2f GiB)\n", (long long)len, r > 0 ? "fits" : "does not fit", peak);
        if (r < 0) return 1;
        if (!r) {
            hi_len = len;
            break;
        }
        lo_len = len, best_peak = peak;
        len *= 2;
    }
    while (hi_len - lo_len > 4096) {
        int64_t mid = (lo_len + hi_len) / 2 / 4096 * 4096;
        int r = probe(ctx, g, cfg, mid, offload, &peak);
        fprintf(stderr, "context %lld: %s (peak %.2f GiB)\n", (long long)mid, r > 0 ? "fits" : "does not fit", peak);
        if (r < 0) return 1;
        if (r) lo_len = mid, best_peak = peak;
        else hi_len = mid;
    }
    printf("{\"shape\": \"%s\", \"weights\": \"%s\", \"offload\": %s, \"max_context_allocated\": %lld, "
           "\"peak_gib\": %.2f, \"limit_gib\": %.0f, \"weights_gib\": %.2f}\n",
           shape, weights, offload ? "true" : "false", (long long)lo_len, best_peak, limit_gib,
           gib(sw_gpu_weight_bytes(g)));
    sw_gpu_free(g);
    sw_lora_free(l);
    sw_model_free(host);
    return 0;
}

int main(int argc, char **argv) {
    const char *shape = "smollm2-135m", *weights = "bf16";
    int64_t batch = 8, seq = 2048;
    int ckpt = 0, offload = 0, steps = 6, warm = 2, do_gemm = 0, max_ctx = 0, profile = 0, graphs = -1;
    double limit_gib = 80;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--shape")) shape = v, i++;
        else if (!strcmp(a, "--batch")) batch = atoll(v), i++;
        else if (!strcmp(a, "--seq")) seq = atoll(v), i++;
        else if (!strcmp(a, "--weights")) weights = v, i++;
        else if (!strcmp(a, "--ckpt")) ckpt = atoi(v), i++;
        else if (!strcmp(a, "--offload")) offload = atoi(v), i++;
        else if (!strcmp(a, "--steps")) steps = atoi(v), i++;
        else if (!strcmp(a, "--warm")) warm = atoi(v), i++;
        else if (!strcmp(a, "--limit-gib")) limit_gib = atof(v), i++;
        else if (!strcmp(a, "--profile")) profile = atoi(v), i++;
        else if (!strcmp(a, "--graphs")) graphs = atoi(v) != 0, i++;
        else if (!strcmp(a, "--emulate")) emulate = atoi(v), i++;
        else if (!strcmp(a, "--gemm")) do_gemm = 1;
        else if (!strcmp(a, "--max-context")) max_ctx = 1;
        else return fprintf(stderr, "bench_gpu_train: unknown argument %s\n", a), 2;
    }
    if (profile) graphs = 0; /* profiling times single launches: no graphs, in the warm-up either */
    if (!emulate && sw_device_cuda_count() < 1) return fprintf(stderr, "bench_gpu_train: no CUDA device\n"), 77;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (do_gemm) return gemm_rate(&ctx);
    sw_model_config cfg;
    if (shape_config(shape, &cfg)) return fprintf(stderr, "bench_gpu_train: unknown shape %s\n", shape), 2;
    int nf4 = !strcmp(weights, "nf4");
    if (max_ctx) return max_context(&ctx, &cfg, shape, weights, nf4, offload, limit_gib);
    sw_gpu_prof *prof = NULL;
    if (profile && sw_gpu_prof_new(&ctx, &prof)) return fprintf(stderr, "%s\n", ctx.msg), 1;
    result r = run(&ctx, &cfg, batch, seq, nf4, ckpt, offload, steps, warm, 0, graphs, prof);
    if (!r.ok) {
        sw_gpu_prof_free(prof);
        return 1;
    }
    if (r.graphs.failed) fprintf(stderr, "CUDA graphs turned off: %s\n", r.graphs.why);
    printf("{\"shape\": \"%s\", \"weights\": \"%s\", \"bs\": %lld, \"seq\": %lld, \"ckpt\": %s, \"offload\": %s, \"step_s\": %.4f, "
           "\"tok_s\": %.1f, \"peak_gib\": %.2f, \"driver_gib\": %.2f, \"gflop_per_token\": %.2f, \"loss\": %.4f, "
           "\"graphs\": %s, \"graphs_recorded\": %lld, \"graphs_replayed\": %lld, \"graphs_failed\": %lld",
           shape, weights, (long long)batch, (long long)seq, ckpt ? "true" : "false", offload ? "true" : "false", r.step_s, r.tok_s, r.peak_acc,
           r.peak_drv, flops_per_token(&cfg, seq, ckpt) / 1e9, r.loss, r.graphs.enabled ? "true" : "false",
           (long long)r.graphs.captured, (long long)r.graphs.replayed, (long long)r.graphs.failed);
    if (prof) {
        printf(", \"profile\": ");
        sw_gpu_prof_json(prof, stdout);
        sw_gpu_prof_print(prof, stderr);
        sw_gpu_prof_free(prof);
    }
    printf("}\n");
    return 0;
}
