/* dist_scaling.c — data-parallel scaling of LoRA training: N processes, one
 * per GPU, each training its own batch of the same shape, gradients summed
 * over NCCL (bucketed, overlapped with the backward; core/dist_engine.c),
 * AdamW replicated or ZeRO-1. Scaling efficiency = tokens/s per GPU on N
 * GPUs / tokens/s of the same run on one (bench/dist_scaling.sh runs the
 * series and computes it).
 *
 *   bench_dist_scaling --gpus 4 --shape llama3-8b --batch 4 --seq 2048 --weights nf4 --ckpt 1
 *                      [--steps 6 --warm 2 --zero 1 --bucket-mb 8 --plain 1]
 *   bench_dist_scaling --emulate 1 --gpus 2 --shape tiny --batch 1 --seq 32 --steps 1 --warm 0
 *                      (the harness on the CPU: ranks joined by the pipe communicator)
 *
 * --plain 1 with --gpus 1: no communicator at all (the engine's own step),
 * to see what the one-rank NCCL path costs. Ranks are forked before anything
 * touches CUDA (a CUDA context does not survive fork); rank 0 makes NCCL's
 * unique id and sends it to the others over socketpairs. Prints one JSON
 * object (rank 0): the slowest rank's median step, tokens/s in all and per GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/device.h"
#include "core/dist.h"
#include "core/gpu.h"
#include "core/lora.h"
#include "core/model.h"
#include "shapes.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct args {
    const char *shape, *weights;
    int gpus, emulate, ckpt, steps, warm, zero, plain;
    int64_t batch, seq;
    double bucket_mb;
} args;

/* One rank's whole run; returns 0 on success. fds: pipe sockets (dist.h). */
static int rank_main(const args *a, int rank, const int *fds) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_model_config cfg;
    shape_config(a->shape, &cfg);
    sw_dist *d = NULL;
    sw_gpu *g = NULL;
    sw_model *host = NULL;
    sw_lora *l = NULL;
    int64_t T = a->batch * a->seq;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)(a->batch + 1));
    double *times = calloc((size_t)(a->steps > 0 ? a->steps : 1), sizeof(double));
    int rc = 1;
    int dev = a->emulate ? SW_GPU_EMULATE : rank;
    if (!a->emulate && rank >= sw_device_cuda_count()) {
        fprintf(stderr, "rank %d: only %d CUDA devices\n", rank, sw_device_cuda_count());
        goto out;
    }
    if (!a->plain) {
        if (a->emulate) {
            if (sw_dist_pipe_new(&ctx, rank, a->gpus, fds, 600, &d)) goto fail;
        } else {
            uint8_t id[SW_DIST_ID_BYTES];
            if (rank == 0) {
                if (sw_dist_nccl_id(&ctx, id)) goto fail;
                for (int r = 1; r < a->gpus; r++)
                    if (sw_dist_msg_send(&ctx, fds[r], 'I', id, sizeof id)) goto fail;
            } else {
                char tag;
                void *buf;
                size_t len;
                if (sw_dist_msg_recv(&ctx, fds[0], &tag, &buf, &len, 600)) goto fail;
                memcpy(id, buf, len == sizeof id ? sizeof id : 0);
                free(buf);
            }
            if (sw_dist_nccl_new(&ctx, id, rank, a->gpus, rank, &d)) goto fail;
        }
    }
    sw_gpu_opts go = {.weights = !strcmp(a->weights, "nf4") ? SW_GPU_W_NF4 : SW_GPU_W_BF16, .seed = 1};
    if (sw_gpu_new_random(&ctx, &cfg, dev, &go, &g) || sw_model_new(&ctx, &cfg, &host)) goto fail;
    sw_lora_opts lo = {.r = 16, .alpha = 16, .targets = 0x7f, .init = SW_LORA_INIT_PEFT, .seed = 3407};
    if (sw_lora_new(&ctx, host, &lo, &l) || sw_gpu_set_lora(&ctx, g, l)) goto fail;
    uint64_t s = 12345 + (uint64_t)rank * 7919; /* each rank its own tokens */
    for (int64_t i = 0; i < T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab);
    }
    for (int64_t b = 0; b <= a->batch; b++) starts[b] = b * a->seq;
    sw_seq_batch sb = {ids, NULL, NULL, T, starts, (int)a->batch};
    /* every token trained on every rank: the global count is known */
    sw_train_opts to = {.backward = true, .checkpointing = a->ckpt != 0,
                        .loss_scale = 1.0f / (float)((T - a->batch) * a->gpus)};
    sw_optim_opts oo = {.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    sw_dist_step_opts so = {.bucket_bytes = (size_t)(a->bucket_mb * 1048576.0), .zero1 = a->zero != 0};
    double loss = 0;
    for (int i = 0; i < a->steps + a->warm; i++) {
        double t0 = now(), ls, norm;
        int64_t n;
        int bad;
        if (sw_gpu_zero_grad(&ctx, g)) goto fail;
        if (d ? sw_dist_grads(&ctx, g, d, &so, &sb, 1, &to, &ls, &n, &bad) : sw_gpu_train_batch(&ctx, g, &sb, &to, &ls, &n))
            goto fail;
        if (sw_gpu_grad_norm(&ctx, g, &norm)) goto fail;
        float coef = (float)(0.3 / (norm + 1e-6));
        if (coef > 1) coef = 1;
        if (d ? sw_dist_update(&ctx, g, d, &so, &oo, 2e-4, coef) : sw_gpu_optim_update(&ctx, g, &oo, 2e-4, coef)) goto fail;
        if (sw_device_sync(&ctx, sw_gpu_device(g))) goto fail;
        if (i >= a->warm) times[i - a->warm] = now() - t0;
        loss = ls / (double)n;
    }
    for (int i = 0; i < a->steps; i++) /* median */
        for (int j = i + 1; j < a->steps; j++)
            if (times[j] < times[i]) {
                double t = times[i];
                times[i] = times[j], times[j] = t;
            }
    double med = a->steps > 0 ? times[a->steps / 2] : 0;
    /* the slowest rank sets the pace: each rank's median in its own slot */
    double *all = calloc((size_t)a->gpus, sizeof(double));
    all[rank] = med;
    if (d && sw_dist_sum_host(&ctx, d, all, a->gpus)) goto fail;
    double slowest = 0;
    for (int r = 0; r < a->gpus; r++) slowest = all[r] > slowest ? all[r] : slowest;
    free(all);
    if (rank == 0) {
        double tok = (double)T * a->gpus / slowest;
        printf("{\"shape\": \"%s\", \"weights\": \"%s\", \"gpus\": %d, \"backend\": \"%s\", \"zero1\": %s, \"bs_per_gpu\": %lld, "
               "\"seq\": %lld, \"ckpt\": %s, \"step_s\": %.4f, \"tok_s\": %.1f, \"tok_s_per_gpu\": %.1f, \"loss\": %.4f}\n",
               a->shape, a->weights, a->gpus, d ? sw_dist_backend(d) : "none", a->zero ? "true" : "false",
               (long long)a->batch, (long long)a->seq, a->ckpt ? "true" : "false", slowest, tok, tok / a->gpus, loss);
        fflush(stdout);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "rank %d: %s\n", rank, ctx.msg);
    sw_dist_abort(d);
out:
    sw_gpu_free(g);
    sw_lora_free(l);
    sw_model_free(host);
    sw_dist_free(d);
    free(ids);
    free(starts);
    free(times);
    return rc;
}

int main(int argc, char **argv) {
    args a = {.shape = "smollm2-135m", .weights = "bf16", .gpus = 1, .steps = 6, .warm = 2, .batch = 4, .seq = 2048,
              .bucket_mb = 0};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(k, "--shape")) a.shape = v, i++;
        else if (!strcmp(k, "--weights")) a.weights = v, i++;
        else if (!strcmp(k, "--gpus")) a.gpus = atoi(v), i++;
        else if (!strcmp(k, "--batch")) a.batch = atoll(v), i++;
        else if (!strcmp(k, "--seq")) a.seq = atoll(v), i++;
        else if (!strcmp(k, "--ckpt")) a.ckpt = atoi(v), i++;
        else if (!strcmp(k, "--steps")) a.steps = atoi(v), i++;
        else if (!strcmp(k, "--warm")) a.warm = atoi(v), i++;
        else if (!strcmp(k, "--zero")) a.zero = atoi(v), i++;
        else if (!strcmp(k, "--plain")) a.plain = atoi(v), i++;
        else if (!strcmp(k, "--bucket-mb")) a.bucket_mb = atof(v), i++;
        else if (!strcmp(k, "--emulate")) a.emulate = atoi(v), i++;
        else return fprintf(stderr, "bench_dist_scaling: unknown argument %s\n", k), 2;
    }
    sw_model_config cfg;
    if (shape_config(a.shape, &cfg)) return fprintf(stderr, "bench_dist_scaling: unknown shape %s\n", a.shape), 2;
    if (a.gpus < 1 || a.gpus > 64 || a.batch < 1 || a.seq < 2 || a.steps < 1 || a.warm < 0)
        return fprintf(stderr, "bench_dist_scaling: --gpus 1..64, --batch >= 1, --seq >= 2, --steps >= 1\n"), 2;
    if (a.plain && a.gpus != 1) return fprintf(stderr, "bench_dist_scaling: --plain 1 is for --gpus 1\n"), 2;
    char why[256];
    if (!a.emulate && !a.plain && !sw_dist_nccl_available(why, sizeof why))
        return fprintf(stderr, "bench_dist_scaling: %s\n", why), 77;
    /* ranks 1.. are forked before anything touches CUDA */
    int fds0[64] = {0}, pids[64] = {0};
    for (int r = 1; r < a.gpus; r++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return perror("socketpair"), 1;
        pid_t pid = fork();
        if (pid < 0) return perror("fork"), 1;
        if (pid == 0) {
            close(sv[0]);
            for (int q = 1; q < r; q++) close(fds0[q]);
            _exit(rank_main(&a, r, &sv[1]));
        }
        close(sv[1]);
        fds0[r] = sv[0];
        pids[r] = pid;
    }
    int rc = rank_main(&a, 0, fds0);
    for (int r = 1; r < a.gpus; r++) {
        int status = 0;
        close(fds0[r]);
        waitpid(pids[r], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) rc = 1;
    }
    return rc;
}
