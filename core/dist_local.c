/* dist_local.c — the "local" communicator: ranks are threads of one
 * process (dist.h). It runs the real multi-rank trainer on the emulated
 * device engine, whose buffers are host memory, so data-parallel training is
 * tested on any machine.
 *
 * Each collective is a rendezvous: every rank posts its buffer, the last to
 * arrive does the work under the lock (a sum in rank order 0, 1, ..., so the
 * bits are the same on every rank and from run to run), then every rank
 * copies what it needs and meets the others once more before the shared
 * scratch may be reused. Waits are bounded: a rank that never arrives (it
 * failed, or called sw_dist_abort) makes the others fail with a message
 * instead of hanging the process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_impl.h"

typedef struct group group;
typedef void (*group_action)(group *G);

struct group {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int world, arrived, refs;
    uint64_t gen;           /* barrier generation: a waiter leaves when it moves on */
    bool failed;
    char why[160];
    double timeout_s;
    void **ptr;             /* what each rank posted for the current collective */
    int64_t *len;
    void *scratch;
    size_t scratch_bytes;
    int elem;               /* the current collective's element kind: 0 float, 1 double */
    int root;
};

static void fail_locked(group *G, const char *why) {
    if (!G->failed) {
        G->failed = true;
        snprintf(G->why, sizeof G->why, "%s", why);
    }
    pthread_cond_broadcast(&G->cv);
}

/* Meet every rank; the last to arrive runs act (may be NULL) under the lock. */
static sw_status meet(sw_ctx *ctx, sw_dist *d, group_action act) {
    group *G = d->impl;
    pthread_mutex_lock(&G->mu);
    if (G->failed) goto failed;
    uint64_t gen = G->gen;
    if (++G->arrived == G->world) {
        if (act) act(G);
        G->arrived = 0;
        G->gen++;
        pthread_cond_broadcast(&G->cv);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)G->timeout_s;
        while (G->gen == gen && !G->failed) {
            if (pthread_cond_timedwait(&G->cv, &G->mu, &until) == ETIMEDOUT && G->gen == gen) {
                char why[160];
                snprintf(why, sizeof why, "rank %d waited %.0f s for the other ranks (one failed or hangs)", d->rank,
                         G->timeout_s);
                fail_locked(G, why);
            }
        }
        if (G->gen == gen) goto failed;
    }
    if (G->failed) goto failed; /* the action itself may have failed */
    pthread_mutex_unlock(&G->mu);
    return SW_OK;
failed:;
    char why[sizeof G->why];
    memcpy(why, G->why, sizeof why);
    pthread_mutex_unlock(&G->mu);
    return sw_err(ctx, SW_ESTATE, "dist (local): %s", why);
}

static bool ensure_scratch(group *G, size_t bytes) {
    if (G->scratch_bytes >= bytes) return true;
    void *p = realloc(G->scratch, bytes ? bytes : 1);
    if (!p) return false;
    G->scratch = p;
    G->scratch_bytes = bytes;
    return true;
}

static bool same_len(group *G) {
    for (int r = 1; r < G->world; r++)
        if (G->len[r] != G->len[0]) {
            fail_locked(G, "ranks disagree on a collective's size");
            return false;
        }
    return true;
}

/* The sum in rank order: the documented averaging order. */
static void sum_action(group *G) {
    if (!same_len(G)) return;
    int64_t n = G->len[0];
    size_t es = G->elem ? sizeof(double) : sizeof(float);
    if (!ensure_scratch(G, es * (size_t)n)) {
        fail_locked(G, "host out of memory for an all-reduce");
        return;
    }
    if (G->elem) {
        double *s = G->scratch;
        memcpy(s, G->ptr[0], es * (size_t)n);
        for (int r = 1; r < G->world; r++) {
            const double *x = G->ptr[r];
            for (int64_t i = 0; i < n; i++) s[i] += x[i];
        }
    } else {
        float *s = G->scratch;
        memcpy(s, G->ptr[0], es * (size_t)n);
        for (int r = 1; r < G->world; r++) {
            const float *x = G->ptr[r];
            for (int64_t i = 0; i < n; i++) s[i] += x[i];
        }
    }
}

static void check_action(group *G) { same_len(G); }

static void post(sw_dist *d, void *p, int64_t n, int elem) {
    group *G = d->impl;
    pthread_mutex_lock(&G->mu);
    G->ptr[d->rank] = p;
    G->len[d->rank] = n;
    G->elem = elem;
    pthread_mutex_unlock(&G->mu);
}

static sw_status summed(sw_ctx *ctx, sw_dist *d, void *buf, int64_t n, int elem) {
    group *G = d->impl;
    post(d, buf, n, elem);
    if (meet(ctx, d, sum_action)) return ctx->status;
    memcpy(buf, G->scratch, (elem ? sizeof(double) : sizeof(float)) * (size_t)n);
    return meet(ctx, d, NULL); /* the scratch stays until every rank has its copy */
}

static sw_status l_all_reduce(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) { return summed(ctx, d, buf, n, 0); }
static sw_status l_sum_host(sw_ctx *ctx, sw_dist *d, double *v, int n) { return summed(ctx, d, v, n, 1); }

static sw_status l_broadcast(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root) {
    group *G = d->impl;
    post(d, buf, (int64_t)bytes, 0);
    if (meet(ctx, d, check_action)) return ctx->status;
    if (d->rank != root) memcpy(buf, G->ptr[root], bytes);
    return meet(ctx, d, NULL);
}

static sw_status l_all_gather(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    group *G = d->impl;
    post(d, buf, n, 0);
    if (meet(ctx, d, check_action)) return ctx->status;
    /* read slice r from rank r's buffer: nobody writes there (each rank
     * writes only the other slices of its own buffer) */
    for (int r = 0; r < d->world; r++) {
        if (r == d->rank) continue;
        int64_t lo, hi;
        sw_dist_shard(n, r, d->world, &lo, &hi);
        memcpy(buf + lo, (const float *)G->ptr[r] + lo, sizeof(float) * (size_t)(hi - lo));
    }
    return meet(ctx, d, NULL);
}

static sw_status l_barrier(sw_ctx *ctx, sw_dist *d) { return meet(ctx, d, NULL); }
static sw_status l_wait(sw_ctx *ctx, sw_dist *d) {
    (void)ctx, (void)d; /* every collective completed before returning */
    return SW_OK;
}

static void l_abort(sw_dist *d) {
    group *G = d->impl;
    pthread_mutex_lock(&G->mu);
    char why[64];
    snprintf(why, sizeof why, "rank %d failed", d->rank);
    fail_locked(G, why);
    pthread_mutex_unlock(&G->mu);
}

static void group_free(group *G) {
    pthread_mutex_destroy(&G->mu);
    pthread_cond_destroy(&G->cv);
    free(G->ptr);
    free(G->len);
    free(G->scratch);
    free(G);
}

static void l_free(sw_dist *d) {
    group *G = d->impl;
    pthread_mutex_lock(&G->mu);
    bool last = --G->refs == 0;
    if (!last) fail_locked(G, "a rank left the group"); /* later collectives fail fast */
    pthread_mutex_unlock(&G->mu);
    if (last) group_free(G);
    d->ops = NULL;
    free(d);
}

static const sw_dist_ops local_ops = {"local", false, l_all_reduce, l_sum_host, l_broadcast, l_all_gather,
                                      l_barrier,  l_wait,       l_abort,    l_free};

sw_status sw_dist_local_group(sw_ctx *ctx, int world, double timeout_s, sw_dist **out) {
    if (world < 1 || world > 1024) return sw_err(ctx, SW_EINVAL, "dist: world must be 1..1024, got %d", world);
    group *G = calloc(1, sizeof *G);
    if (G) {
        G->ptr = calloc((size_t)world, sizeof *G->ptr);
        G->len = calloc((size_t)world, sizeof *G->len);
    }
    if (!G || !G->ptr || !G->len) {
        if (G) free(G->ptr), free(G->len);
        free(G);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    pthread_mutex_init(&G->mu, NULL);
    pthread_cond_init(&G->cv, NULL);
    G->world = world;
    G->timeout_s = timeout_s > 0 ? timeout_s : 600;
    /* one allocation per rank so each frees its own */
    for (int r = 0; r < world; r++) {
        sw_dist *d = malloc(sizeof *d);
        if (!d) {
            for (int q = 0; q < r; q++) free(out[q]);
            group_free(G);
            return sw_err(ctx, SW_ENOMEM, "host out of memory");
        }
        *d = (sw_dist){&local_ops, r, world, G};
        out[r] = d;
    }
    G->refs = world;
    return SW_OK;
}
