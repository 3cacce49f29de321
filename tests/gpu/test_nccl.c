/* test_nccl.c — the NCCL communicator with one rank on GPU 0, and the
 * engine's data-parallel step through it against the plain step.
 *
 * Only one GPU is lent to this project, so this is what runs of the NCCL
 * path: ncclCommInitRank with world 1 (NCCL_NVLS_ENABLE forced to 0),
 * every collective on device memory, and two optimizer steps of a tiny
 * random Llama where the gradients go through the bucketed all-reduce on
 * NCCL's own stream (a bucket per layer, overlapped with the backward) and
 * the update is replicated or ZeRO-1 — equal to the engine's plain steps.
 * With one rank the sums are copies, so the results must match to float32
 * rounding (graphs off for the reference too: a hooked step runs without
 * them). Needs only swcore. Exits 77 without a GPU or without NCCL.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/check.h"
#include "../unit/tiny_model.h"
#include "core/device.h"
#include "core/dist.h"
#include "core/gpu.h"
#include "core/gpu_internal.h"
#include "core/lora.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rel(const float *x, const float *ref, int64_t n) {
    double e = 0, r = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return sqrt(e / r);
}

/* collectives on a device buffer: with one rank every one is the identity */
static void test_collectives(sw_ctx *ctx, sw_dist *d, sw_gpu *g) {
    enum { N = 1 << 20 };
    float *h = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    fill(h, N, 3, 1.0f);
    float *dv = sw_gpu_alloc(ctx, g, SW_MEM_WORKSPACE, sizeof(float) * N);
    CHECK(dv != NULL);
    CHECK_EQ_INT(sw_gpu_upload(ctx, g, dv, h, sizeof(float) * N), SW_OK);
    CHECK_EQ_INT(sw_dist_all_reduce(ctx, d, dv, N), SW_OK);
    CHECK_EQ_INT(sw_dist_wait(ctx, d), SW_OK);
    sw_status ag = sw_dist_all_gather(ctx, d, dv, N);
    if (ag) fprintf(stderr, "all-gather: %s\n", ctx->msg); /* the message says which NCCL call */
    CHECK_EQ_INT(ag, SW_OK);
    CHECK_EQ_INT(sw_dist_broadcast(ctx, d, dv, sizeof(float) * N, 0), SW_OK);
    CHECK_EQ_INT(sw_gpu_fetch(ctx, g, back, dv, sizeof(float) * N), SW_OK);
    CHECK(!memcmp(h, back, sizeof(float) * N));
    double v[3] = {1.5, 2, -3};
    CHECK_EQ_INT(sw_dist_sum_host(ctx, d, v, 3), SW_OK);
    CHECK(v[0] == 1.5 && v[1] == 2 && v[2] == -3);
    CHECK_EQ_INT(sw_dist_barrier(ctx, d), SW_OK);
    CHECK_EQ_INT(sw_dist_broadcast(ctx, d, dv, 4, 3), SW_EINVAL); /* root outside the world */
    CHECK_CONTAINS(ctx->msg, "root");
    sw_gpu_release(g, SW_MEM_WORKSPACE, dv, sizeof(float) * N);
    free(h);
    free(back);
}

enum { NMB = 3, T0 = 40 };

typedef struct run_out {
    double loss[2], norm[2];
    int64_t count[2];
    float *p, *gr;
    double seconds;
} run_out;

/* Two optimizer steps of NMB micro-batches: plainly (d NULL) or through
 * the communicator. */
static void two_steps(sw_ctx *ctx, sw_gpu *g, sw_dist *d, bool zero1, const sw_seq_batch *mb, float scale,
                      run_out *o) {
    int64_t np = sw_gpu_n_param(g);
    o->p = malloc(sizeof(float) * (size_t)np);
    o->gr = malloc(sizeof(float) * (size_t)np);
    sw_optim_opts oo = {.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    sw_train_opts to = {.backward = true, .loss_scale = scale};
    if (d && zero1) CHECK_EQ_INT(sw_dist_shard_optim(ctx, g, d), SW_OK); /* one rank: its slice is all */
    double t0 = now_s();
    for (int s = 0; s < 2; s++) {
        CHECK_EQ_INT(sw_gpu_zero_grad(ctx, g), SW_OK);
        o->loss[s] = 0, o->count[s] = 0;
        if (d) {
            int buckets = 0, bad;
            sw_dist_step_opts so = {.bucket_bytes = 1, .zero1 = zero1, .buckets = &buckets};
            CHECK_EQ_INT(sw_dist_grads(ctx, g, d, &so, mb, NMB, &to, &o->loss[s], &o->count[s], &bad), SW_OK);
            CHECK_EQ_INT(buckets, g->cfg.n_layers);
            CHECK_EQ_INT(bad, -1);
        } else {
            for (int k = 0; k < NMB; k++) {
                double ls;
                int64_t c;
                CHECK_EQ_INT(sw_gpu_train_batch(ctx, g, &mb[k], &to, &ls, &c), SW_OK);
                o->loss[s] += ls, o->count[s] += c;
            }
        }
        CHECK_EQ_INT(sw_gpu_grad_norm(ctx, g, &o->norm[s]), SW_OK);
        if (s == 1) CHECK_EQ_INT(sw_gpu_fetch(ctx, g, o->gr, g->gr, sizeof(float) * (size_t)np), SW_OK);
        float coef = (float)(0.5 / (o->norm[s] + 1e-6)); /* clip, as the trainer would with max_grad_norm 0.5 */
        if (coef > 1) coef = 1;
        if (d) CHECK_EQ_INT(sw_dist_update(ctx, g, d, &(sw_dist_step_opts){.zero1 = zero1}, &oo, 1e-2, coef), SW_OK);
        else CHECK_EQ_INT(sw_gpu_optim_update(ctx, g, &oo, 1e-2, coef), SW_OK);
    }
    if (d && zero1) CHECK_EQ_INT(sw_dist_gather_optim(ctx, g, d), SW_OK);
    CHECK_EQ_INT(sw_gpu_fetch(ctx, g, o->p, g->p, sizeof(float) * (size_t)np), SW_OK);
    o->seconds = now_s() - t0;
}

int main(void) {
    if (!sw_device_cuda_built() || sw_device_cuda_count() == 0) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return 77;
    }
    char why[256];
    if (!sw_dist_nccl_available(why, sizeof why)) {
        fprintf(stderr, "no NCCL: %s: skipped\n", why);
        return 77;
    }
    fprintf(stderr, "%s\n", why);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    uint8_t id[SW_DIST_ID_BYTES];
    sw_dist *d = NULL;
    CHECK_EQ_INT(sw_dist_nccl_id(&ctx, id), SW_OK);
    CHECK_EQ_INT(sw_dist_nccl_new(&ctx, id, 0, 1, 0, &d), SW_OK);
    if (!d) {
        fprintf(stderr, "nccl: %s\n", ctx.msg);
        CHECK_DONE();
    }
    const char *nvls = getenv("NCCL_NVLS_ENABLE");
    CHECK(nvls && !strcmp(nvls, "0"));
    CHECK_EQ_INT(sw_dist_world(d), 1);
    CHECK(!strcmp(sw_dist_backend(d), "nccl"));
    /* refusals name the field */
    sw_dist *bad = NULL;
    CHECK_EQ_INT(sw_dist_nccl_new(&ctx, id, 2, 2, 0, &bad), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "rank");

    sw_model *m = tiny_model(&ctx);
    CHECK(m != NULL);
    if (!m) CHECK_DONE();
    sw_lora_opts lo = {.r = 4, .alpha = 8, .targets = 0x7f, .init = SW_LORA_INIT_GAUSSIAN, .seed = 5};
    sw_lora *l;
    CHECK_EQ_INT(sw_lora_new(&ctx, m, &lo, &l), SW_OK);
    for (int64_t i = 0; i < NL; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++)
            fill(sw_tensor_data(l->pairs[i][t].B), sw_tensor_numel(l->pairs[i][t].B), 200 + i * 7 + t, 0.3f);
    m->lora = l;

    /* three engines on GPU 0: plain, NCCL replicated, NCCL ZeRO-1 */
    sw_gpu_opts go = {.weights = SW_GPU_W_AS_STORED, .graphs = SW_GPU_GRAPHS_OFF};
    sw_gpu *g[3] = {0};
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_INT(sw_gpu_new(&ctx, m, 0, &go, &g[k]), SW_OK);
        CHECK_EQ_INT(sw_gpu_set_lora(&ctx, g[k], l), SW_OK);
    }
    test_collectives(&ctx, d, g[1]);
    CHECK_EQ_INT(sw_dist_sync_params(&ctx, g[1], d), SW_OK);

    static int32_t ids[NMB][T0], labels[NMB][T0];
    static int64_t starts[NMB][3];
    sw_seq_batch mb[NMB];
    uint64_t s = 11;
    int64_t trained = 0;
    for (int k = 0; k < NMB; k++) {
        int64_t T = T0 - 7 * k;
        for (int i = 0; i < T; i++) {
            ids[k][i] = (int32_t)((frand(&s) + 1) * 0.5 * V) % V;
            labels[k][i] = i % 6 == 2 ? -100 : ids[k][i];
        }
        starts[k][0] = 0, starts[k][1] = T / 2, starts[k][2] = T;
        mb[k] = (sw_seq_batch){ids[k], labels[k], NULL, T, starts[k], 2};
        for (int i = 1; i < T; i++) trained += labels[k][i] != -100 && i != T / 2;
    }
    float scale = 1.0f / (float)trained;
    run_out ref, rep, z1;
    two_steps(&ctx, g[0], NULL, false, mb, scale, &ref);
    two_steps(&ctx, g[1], d, false, mb, scale, &rep);
    two_steps(&ctx, g[2], d, true, mb, scale, &z1);
    int64_t np = sw_gpu_n_param(g[0]);
    run_out *runs[2] = {&rep, &z1};
    const char *names[2] = {"nccl replicated", "nccl zero1"};
    for (int k = 0; k < 2; k++) {
        run_out *o = runs[k];
        for (int st = 0; st < 2; st++) {
            CHECK_EQ_INT(o->count[st], ref.count[st]);
            CHECK(fabs(o->loss[st] - ref.loss[st]) <= 1e-6 * fabs(ref.loss[st]));
            CHECK(fabs(o->norm[st] - ref.norm[st]) <= 1e-6 * ref.norm[st]);
        }
        double eg = rel(o->gr, ref.gr, np), ep = rel(o->p, ref.p, np);
        bool exact = !memcmp(o->p, ref.p, sizeof(float) * (size_t)np);
        fprintf(stderr, "%s: loss %.6f (plain %.6f), grads rel %.2g, params rel %.2g%s, %.1f ms (plain %.1f ms)\n",
                names[k], o->loss[1] / (double)o->count[1], ref.loss[1] / (double)ref.count[1], eg, ep,
                exact ? " (bit-exact)" : "", o->seconds * 1e3, ref.seconds * 1e3);
        CHECK(eg <= 1e-6);
        CHECK(ep <= 1e-6);
    }
    /* after an abort the communicator refuses work instead of hanging */
    sw_dist_abort(d);
    CHECK_EQ_INT(sw_dist_barrier(&ctx, d), SW_ESTATE);
    CHECK_CONTAINS(ctx.msg, "aborted");
    for (int k = 0; k < 3; k++) sw_gpu_free(g[k]);
    free(ref.p), free(ref.gr), free(rep.p), free(rep.gr), free(z1.p), free(z1.gr);
    sw_dist_free(d);
    m->lora = NULL;
    sw_lora_free(l);
    sw_model_free(m);
    CHECK_DONE();
}
