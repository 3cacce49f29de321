/* test_dist.c — data-parallel pieces on the CPU: the local communicator
 * (sum order, gather of uneven slices, broadcast, a failed or missing rank
 * turning into an error instead of a hang), the ZeRO-1 shard partition, and
 * the engine's data-parallel step on the emulated device with 1, 2, 3 and 4
 * ranks as threads against one engine running every micro-batch itself.
 *
 * The arithmetic under test (core/dist.h): rank r trains micro-batches r,
 * r + N, ...; loss_scale is 1 / (trained tokens of the whole step); the
 * gradients are summed over ranks (rank order), so N ranks with accum a are
 * one rank with accum a N up to float32 rounding of the sum order (exact
 * when each rank has one micro-batch: the engine then adds in the same
 * order). Buckets change when reduction starts, never the values; ZeRO-1's
 * sliced update gives the replicated update's bits.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "core/dist.h"
#include "core/gpu_internal.h"
#include "core/gpu.h"
#include "core/lora.h"
#include "core/model.h"
#include "core/train.h"
#include "tiny_model.h"

/* ---------------------------------------------------------------- helpers */

static double rel(const float *x, const float *ref, int64_t n) {
    double e = 0, r = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return sqrt(e / r);
}

typedef struct rank_job {
    sw_dist *d;
    void *(*fn)(struct rank_job *);
    void *arg;
    sw_status st;
    char msg[1024];
} rank_job;

static void *trampoline(void *p) {
    rank_job *j = p;
    return j->fn(j);
}

/* Which backend run_ranks joins the threads with: the local one, or the
 * pipe one over socketpairs (as the launcher's processes use it). */
static bool use_pipe;
static int pipe_fds[8][2];

static void make_group(sw_ctx *ctx, int world, double timeout, sw_dist **ds) {
    if (!use_pipe) {
        CHECK_EQ_INT(sw_dist_local_group(ctx, world, timeout, ds), SW_OK);
        return;
    }
    int root[8] = {0};
    for (int r = 1; r < world; r++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pipe_fds[r]) == 0);
        root[r] = pipe_fds[r][0];
    }
    CHECK_EQ_INT(sw_dist_pipe_new(ctx, 0, world, root, timeout, &ds[0]), SW_OK);
    for (int r = 1; r < world; r++) CHECK_EQ_INT(sw_dist_pipe_new(ctx, r, world, &pipe_fds[r][1], timeout, &ds[r]), SW_OK);
}

static void close_group(int world) {
    for (int r = 1; use_pipe && r < world; r++) close(pipe_fds[r][0]), close(pipe_fds[r][1]);
}

/* Run fn on every rank of a fresh group, one thread each. */
static void run_ranks(int world, double timeout, void *(*fn)(rank_job *), void *arg, rank_job *jobs) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_dist *ds[8];
    make_group(&ctx, world, timeout, ds);
    pthread_t th[8];
    for (int r = 0; r < world; r++) {
        jobs[r] = (rank_job){.d = ds[r], .fn = fn, .arg = arg};
        pthread_create(&th[r], NULL, trampoline, &jobs[r]);
    }
    for (int r = 0; r < world; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < world; r++) sw_dist_free(ds[r]);
    close_group(world);
}

/* --------------------------------------------------------- collectives */

enum { NV = 1001 };
static float inputs[8][NV];

static void *coll_rank(rank_job *j) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    int r = sw_dist_rank(j->d), w = sw_dist_world(j->d);
    float *buf = malloc(sizeof(float) * NV);
    memcpy(buf, inputs[r], sizeof(float) * NV);
    sw_status st = sw_dist_all_reduce(&ctx, j->d, buf, NV);
    /* the documented order: rank 0's value, then + rank 1's, ... */
    int exact = 1;
    for (int i = 0; i < NV; i++) {
        float s = inputs[0][i];
        for (int q = 1; q < w; q++) s += inputs[q][i];
        if (memcmp(&s, &buf[i], sizeof s)) exact = 0;
    }
    double hv[2] = {r + 0.5, 1};
    if (!st) st = sw_dist_sum_host(&ctx, j->d, hv, 2);
    if (!st && (hv[1] != w || hv[0] != w * (w - 1) / 2.0 + 0.5 * w)) exact = 0;
    /* gather: each rank fills only its own slice */
    for (int i = 0; i < NV; i++) buf[i] = -1;
    int64_t lo, hi;
    sw_dist_shard(NV, r, w, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) buf[i] = (float)(i * 3);
    if (!st) st = sw_dist_all_gather(&ctx, j->d, buf, NV);
    for (int i = 0; i < NV; i++)
        if (buf[i] != (float)(i * 3)) exact = 0;
    char word[16];
    snprintf(word, sizeof word, "rank%d", r);
    if (!st) st = sw_dist_broadcast(&ctx, j->d, word, sizeof word, w - 1);
    char want[16];
    snprintf(want, sizeof want, "rank%d", w - 1);
    if (strcmp(word, want)) exact = 0;
    if (!st) st = sw_dist_barrier(&ctx, j->d);
    j->st = st ? st : exact ? SW_OK : SW_EINVAL;
    snprintf(j->msg, sizeof j->msg, "%s", st ? ctx.msg : exact ? "" : "values differ");
    free(buf);
    return NULL;
}

static void test_collectives(void) {
    uint64_t s = 1;
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < NV; i++) inputs[r][i] = frand(&s) * (i % 7 == 0 ? 1e4f : 1.0f); /* order matters */
    for (int w = 1; w <= 4; w++) {
        rank_job jobs[8];
        run_ranks(w, 30, coll_rank, NULL, jobs);
        for (int r = 0; r < w; r++) {
            if (jobs[r].st) fprintf(stderr, "world %d rank %d: %s\n", w, r, jobs[r].msg);
            CHECK_EQ_INT(jobs[r].st, SW_OK);
        }
    }
    /* the shard partition: contiguous, covering, sizes within one */
    for (int64_t n = 0; n < 40; n++)
        for (int w = 1; w <= 5; w++) {
            int64_t next = 0, mn = n, mx = 0;
            for (int r = 0; r < w; r++) {
                int64_t lo, hi;
                sw_dist_shard(n, r, w, &lo, &hi);
                CHECK_EQ_INT(lo, next);
                next = hi;
                if (hi - lo < mn) mn = hi - lo;
                if (hi - lo > mx) mx = hi - lo;
            }
            CHECK_EQ_INT(next, n);
            CHECK(mx - mn <= 1);
        }
}

/* A rank that fails says so (abort); one that never comes times out. */
static void *failing_rank(rank_job *j) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    float x[4] = {1, 2, 3, 4};
    int mode = *(int *)j->arg;
    if (sw_dist_rank(j->d) == 1) {
        if (mode == 0) sw_dist_abort(j->d);
        j->st = SW_OK;
        return NULL; /* never joins the collective */
    }
    j->st = sw_dist_all_reduce(&ctx, j->d, x, 4);
    snprintf(j->msg, sizeof j->msg, "%s", ctx.msg);
    return NULL;
}

static void test_failures(void) {
    for (int mode = 0; mode < 2; mode++) {
        rank_job jobs[3];
        /* an abort wakes the others at once, so its deadline can be long: a
         * short one could pass first on a loaded machine and the waiters
         * would report a timeout instead of the failure */
        run_ranks(3, mode == 0 ? 60.0 : 0.5, failing_rank, &mode, jobs);
        for (int r = 0; r < 3; r += 2) {
            CHECK_EQ_INT(jobs[r].st, SW_ESTATE);
            CHECK_CONTAINS(jobs[r].msg, mode == 0 ? "rank 1 failed" : "waited");
        }
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_dist *d[1];
    CHECK_EQ_INT(sw_dist_local_group(&ctx, 0, 1, d), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "world");
    char why[256];
    bool have = sw_dist_nccl_available(why, sizeof why);
    fprintf(stderr, "nccl: %s (%s)\n", have ? "available" : "not available", why);
}

/* ------------------------------------------------- the engine's step */

enum { MAXMB = 8, MAXT = 40 };

typedef struct eng_case {
    int world, accum;
    bool zero1;
    size_t bucket;
    sw_seq_batch mb[MAXMB];   /* the step's micro-batches, global order */
    float scale;
    sw_gpu *g[8];
    double loss[8], norm[8];
    int64_t count[8];
    int buckets[8];
    float *p[8], *gr[8], *m1[8];
    int64_t held[8];          /* moments this rank held during the step */
    int64_t np;
} eng_case;

static void *eng_rank(rank_job *j) {
    eng_case *E = j->arg;
    int r = sw_dist_rank(j->d);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gpu *g = E->g[r];
    sw_seq_batch mine[MAXMB];
    for (int k = 0; k < E->accum; k++) mine[k] = E->mb[r + k * E->world];
    sw_train_opts to = {.backward = true, .loss_scale = E->scale};
    sw_dist_step_opts so = {.bucket_bytes = E->bucket, .zero1 = E->zero1, .buckets = &E->buckets[r]};
    int bad;
    sw_status st = sw_gpu_zero_grad(&ctx, g);
    if (!st && E->zero1) st = sw_dist_shard_optim(&ctx, g, j->d); /* 1/world of the moments */
    E->held[r] = g->opt_hi - g->opt_lo;
    if (!st) st = sw_dist_grads(&ctx, g, j->d, &so, mine, E->accum, &to, &E->loss[r], &E->count[r], &bad);
    if (!st) memcpy(E->gr[r], g->gr, sizeof(float) * (size_t)E->np); /* emulated: host memory */
    if (!st) st = sw_gpu_grad_norm(&ctx, g, &E->norm[r]);
    sw_optim_opts oo = {.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    if (!st) st = sw_dist_update(&ctx, g, j->d, &so, &oo, 1e-2, 1.0f);
    if (!st) memcpy(E->p[r], g->p, sizeof(float) * (size_t)E->np);
    if (!st && E->zero1) st = sw_dist_gather_optim(&ctx, g, j->d); /* whole again, as a save needs */
    if (!st) memcpy(E->m1[r], g->m1, sizeof(float) * (size_t)E->np);
    j->st = st;
    snprintf(j->msg, sizeof j->msg, "%s", ctx.msg);
    return NULL;
}

/* The same step on one engine, every micro-batch in order. */
static float *ref_m1;

static void reference(sw_ctx *ctx, sw_gpu *g, eng_case *E, int n_mb, double *loss, int64_t *count, float *gr,
                      float *p, double *norm) {
    sw_train_opts to = {.backward = true, .loss_scale = E->scale};
    *loss = 0, *count = 0;
    CHECK_EQ_INT(sw_gpu_zero_grad(ctx, g), SW_OK);
    for (int k = 0; k < n_mb; k++) {
        if (E->mb[k].T == 0) continue;
        double ls;
        int64_t c;
        CHECK_EQ_INT(sw_gpu_train_batch(ctx, g, &E->mb[k], &to, &ls, &c), SW_OK);
        *loss += ls, *count += c;
    }
    memcpy(gr, g->gr, sizeof(float) * (size_t)E->np);
    CHECK_EQ_INT(sw_gpu_grad_norm(ctx, g, norm), SW_OK);
    sw_optim_opts oo = {.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    CHECK_EQ_INT(sw_gpu_optim_update(ctx, g, &oo, 1e-2, 1.0f), SW_OK);
    memcpy(p, g->p, sizeof(float) * (size_t)E->np);
    memcpy(ref_m1, g->m1, sizeof(float) * (size_t)E->np);
}

static void engine_case(sw_model *m, sw_lora *l, int world, int accum, bool zero1, size_t bucket, int empty_mb) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    static eng_case E;
    memset(&E, 0, sizeof E);
    E.world = world, E.accum = accum, E.zero1 = zero1, E.bucket = bucket;
    int n_mb = world * accum;
    static int32_t ids[MAXMB][MAXT], labels[MAXMB][MAXT];
    static int64_t starts[MAXMB][3];
    int64_t trained = 0;
    uint64_t s = 77;
    for (int k = 0; k < n_mb; k++) {
        int64_t T = k == empty_mb ? 0 : 12 + (k * 7) % 20;
        for (int i = 0; i < T; i++) {
            ids[k][i] = (int32_t)((frand(&s) + 1) * 0.5 * V) % V;
            labels[k][i] = i % 5 == 1 ? -100 : ids[k][i];
        }
        starts[k][0] = 0, starts[k][1] = T / 3, starts[k][2] = T;
        E.mb[k] = (sw_seq_batch){ids[k], labels[k], NULL, T, starts[k], 2};
        for (int i = 1; i < T; i++) trained += labels[k][i] != -100 && i != T / 3;
    }
    E.scale = 1.0f / (float)trained;
    sw_gpu_opts go = {.weights = SW_GPU_W_AS_STORED};
    sw_gpu *ref;
    CHECK_EQ_INT(sw_gpu_new(&ctx, m, SW_GPU_EMULATE, &go, &ref), SW_OK);
    CHECK_EQ_INT(sw_gpu_set_lora(&ctx, ref, l), SW_OK);
    E.np = sw_gpu_n_param(ref);
    float *rgr = malloc(sizeof(float) * (size_t)E.np), *rp = malloc(sizeof(float) * (size_t)E.np);
    ref_m1 = malloc(sizeof(float) * (size_t)E.np);
    double rloss, rnorm;
    int64_t rcount;
    reference(&ctx, ref, &E, n_mb, &rloss, &rcount, rgr, rp, &rnorm);
    CHECK_EQ_INT(rcount, trained);
    for (int r = 0; r < world; r++) {
        CHECK_EQ_INT(sw_gpu_new(&ctx, m, SW_GPU_EMULATE, &go, &E.g[r]), SW_OK);
        CHECK_EQ_INT(sw_gpu_set_lora(&ctx, E.g[r], l), SW_OK);
        E.p[r] = malloc(sizeof(float) * (size_t)E.np);
        E.gr[r] = malloc(sizeof(float) * (size_t)E.np);
        E.m1[r] = malloc(sizeof(float) * (size_t)E.np);
    }
    rank_job jobs[8];
    run_ranks(world, 60, eng_rank, &E, jobs);
    /* one micro-batch per rank: the engine adds in rank order too, exactly */
    double tol = accum == 1 ? 0 : 1e-6;
    for (int r = 0; r < world; r++) {
        if (jobs[r].st) fprintf(stderr, "engine world %d rank %d: %s\n", world, r, jobs[r].msg);
        CHECK_EQ_INT(jobs[r].st, SW_OK);
        CHECK_EQ_INT(E.count[r], trained);
        double el = fabs(E.loss[r] - rloss) / fabs(rloss), eg = rel(E.gr[r], rgr, E.np), ep = rel(E.p[r], rp, E.np);
        if (el > tol || eg > tol || ep > tol)
            fprintf(stderr, "world %d accum %d zero1 %d rank %d: loss %.3g grads %.3g params %.3g\n", world, accum,
                    zero1, r, el, eg, ep);
        CHECK(el <= tol + 1e-12);
        CHECK(eg <= tol);
        CHECK(ep <= tol);
        CHECK(rel(E.m1[r], ref_m1, E.np) <= tol); /* ZeRO-1's gathered moments too */
        int64_t lo, hi;
        sw_dist_shard(E.np, r, world, &lo, &hi);
        CHECK_EQ_INT(E.held[r], zero1 ? hi - lo : E.np);
        CHECK(fabs(E.norm[r] - rnorm) <= tol * rnorm + 1e-12);
        /* every rank ends with the same bits */
        CHECK(!memcmp(E.p[r], E.p[0], sizeof(float) * (size_t)E.np));
        CHECK(!memcmp(E.gr[r], E.gr[0], sizeof(float) * (size_t)E.np));
        CHECK_EQ_INT(E.buckets[r], E.buckets[0]);
        /* 1 byte: a bucket per layer; the default: one bucket for this tiny adapter */
        CHECK_EQ_INT(E.buckets[r], bucket == 1 ? NL : 1);
    }
    for (int r = 0; r < world; r++) {
        sw_gpu_free(E.g[r]);
        free(E.p[r]);
        free(E.gr[r]);
        free(E.m1[r]);
    }
    free(ref_m1);
    sw_gpu_free(ref);
    free(rgr);
    free(rp);
}

static void test_engine(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_model *m = tiny_model(&ctx);
    CHECK(m != NULL);
    if (!m) return;
    sw_lora_opts lo = {.r = 4, .alpha = 8, .targets = 0x7f, .init = SW_LORA_INIT_GAUSSIAN, .seed = 5};
    sw_lora *l;
    CHECK_EQ_INT(sw_lora_new(&ctx, m, &lo, &l), SW_OK);
    for (int64_t i = 0; i < NL; i++) /* B non-zero so every gradient is */
        for (int t = 0; t < SW_LORA_NTARGETS; t++)
            fill(sw_tensor_data(l->pairs[i][t].B), sw_tensor_numel(l->pairs[i][t].B), 200 + i * 7 + t, 0.3f);
    m->lora = l;
    for (int world = 1; world <= 4; world++) {
        engine_case(m, l, world, 1, false, 1, -1);
        engine_case(m, l, world, 1, true, 0, -1);
        engine_case(m, l, world, 2, world % 2 == 0, world == 3 ? 1 : 0, -1);
    }
    /* a rank with nothing to train still cuts the same buckets */
    engine_case(m, l, 3, 1, false, 1, 2);
    engine_case(m, l, 2, 2, true, 1, 3);
    m->lora = NULL;
    sw_lora_free(l);
    sw_model_free(m);
}

int main(void) {
    test_collectives();
    test_failures();
    test_engine();
    /* the same over the pipe backend (what the launcher's processes use);
     * its failures are messages on the sockets, tested through the launcher */
    use_pipe = true;
    test_collectives();
    test_engine();
    CHECK_DONE();
}
