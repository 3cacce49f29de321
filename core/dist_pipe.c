/* dist_pipe.c — the "pipe" communicator: ranks are processes, each joined
 * to rank 0 by a connected socket (made by the launcher, lua/ranks.c), and
 * buffers are host memory: the emulated engine's. It lets the launcher's
 * whole multi-process path (`stepwise --gpus N` with device = "emulate")
 * run and be tested without GPUs; on GPUs the ranks use NCCL instead and
 * these sockets only carry the launcher's messages.
 *
 * Star topology: rank 0 receives every rank's buffer, sums in rank order
 * (the same order as the local backend, dist.h) and sends the result back.
 * Fine for tests and small adapters; not meant to be fast.
 *
 * Messages are framed: a tag byte and a 64-bit length, then the payload.
 * Tags: 'D' collective data, 'C' a cell to run, 'R' a cell's result, 'I'
 * NCCL's unique id, 'E' rank 0 finished the current cell, 'Q' quit. A
 * collective that meets anything but 'D' fails with a message saying which
 * rank stopped, so a rank that errors or dies never leaves the others
 * waiting (every wait also has a deadline).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist_impl.h"

typedef struct pipe_state {
    int *fds;          /* rank 0: fds[r] for r = 1..world-1; others: fds[0] */
    double timeout_s;
    bool aborted;
    /* rank 0: a worker's cell result ('R') that a collective met instead of
     * data; the launcher reads it from here (sw_dist_pipe_result) */
    char **result;
} pipe_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sw_status io_all(sw_ctx *ctx, int fd, void *buf, size_t n, bool out, double timeout_s) {
    char *p = buf;
    double until = now_s() + (timeout_s > 0 ? timeout_s : 600);
    while (n > 0) {
        struct pollfd pf = {fd, (short)(out ? POLLOUT : POLLIN), 0};
        double left = until - now_s();
        if (left <= 0) return sw_err(ctx, SW_ESTATE, "dist: no word from the other rank for %.0f s", timeout_s);
        int r = poll(&pf, 1, left > 1 ? 1000 : (int)(left * 1000) + 1); /* a second at a time: no overflow */
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sw_err(ctx, SW_EIO, "dist: poll: %s", strerror(errno));
        if (r == 0) continue;
        ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k < 0) return sw_err(ctx, SW_EIO, "dist: the other rank's socket: %s", strerror(errno));
        if (k == 0) return sw_err(ctx, SW_EIO, "dist: the other rank exited");
        p += k;
        n -= (size_t)k;
    }
    return SW_OK;
}

sw_status sw_dist_msg_send(sw_ctx *ctx, int fd, char tag, const void *buf, size_t len) {
    unsigned char h[9];
    h[0] = (unsigned char)tag;
    uint64_t l = len;
    memcpy(h + 1, &l, 8);
    if (io_all(ctx, fd, h, sizeof h, true, 0)) return ctx->status;
    return len ? io_all(ctx, fd, (void *)buf, len, true, 0) : SW_OK;
}

sw_status sw_dist_msg_recv(sw_ctx *ctx, int fd, char *tag, void **buf, size_t *len, double timeout_s) {
    unsigned char h[9];
    *buf = NULL;
    *len = 0;
    if (io_all(ctx, fd, h, sizeof h, false, timeout_s)) return ctx->status;
    uint64_t l;
    memcpy(&l, h + 1, 8);
    if (l > ((uint64_t)1 << 40)) return sw_err(ctx, SW_EFORMAT, "dist: a message of %llu bytes", (unsigned long long)l);
    char *p = malloc(l + 1);
    if (!p) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    if (l && io_all(ctx, fd, p, l, false, timeout_s)) {
        free(p);
        return ctx->status;
    }
    p[l] = '\0'; /* text payloads read as strings */
    *tag = (char)h[0];
    *buf = p;
    *len = l;
    return SW_OK;
}

/* A collective's data from rank `from` (fd), exactly `bytes` of it. */
static sw_status recv_data(sw_ctx *ctx, sw_dist *d, int fd, int from, void *dst, size_t bytes) {
    pipe_state *P = d->impl;
    char tag;
    void *buf;
    size_t len;
    if (sw_dist_msg_recv(ctx, fd, &tag, &buf, &len, P->timeout_s)) return sw_err_prefix(ctx, "rank %d", from);
    sw_status st = SW_OK;
    if (tag == 'R') {
        st = sw_err(ctx, SW_ESTATE, "dist: rank %d stopped before this collective%s%s", from, len > 1 ? ": " : "",
                    len > 1 ? (char *)buf + 1 : "");
        if (d->rank == 0 && !P->result[from]) {
            P->result[from] = buf; /* the launcher still wants it */
            buf = NULL;
        }
    } else if (tag == 'E')
        st = sw_err(ctx, SW_ESTATE, "dist: rank 0 finished this cell without this collective (it failed there, or "
                                    "the ranks ran different code)");
    else if (tag != 'D' || len != bytes)
        st = sw_err(ctx, SW_ESTATE, "dist: rank %d sent %zu bytes ('%c') where a collective expected %zu (ranks diverged)",
                    from, len, tag, bytes);
    else memcpy(dst, buf, bytes);
    free(buf);
    return st;
}

static sw_status gate(sw_ctx *ctx, const sw_dist *d) {
    const pipe_state *P = d->impl;
    return P->aborted ? sw_err(ctx, SW_ESTATE, "dist: this rank gave up on the current cell") : SW_OK;
}

/* Sum in rank order on rank 0, result to every rank. */
static sw_status summed(sw_ctx *ctx, sw_dist *d, void *v, int64_t n, bool f64) {
    pipe_state *P = d->impl;
    size_t es = f64 ? sizeof(double) : sizeof(float), bytes = es * (size_t)n;
    if (gate(ctx, d)) return ctx->status;
    if (d->rank != 0) {
        if (sw_dist_msg_send(ctx, P->fds[0], 'D', v, bytes)) return ctx->status;
        return recv_data(ctx, d, P->fds[0], 0, v, bytes);
    }
    void *x = malloc(bytes ? bytes : 1);
    if (!x) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    sw_status st = SW_OK;
    for (int r = 1; r < d->world && !st; r++) {
        if ((st = recv_data(ctx, d, P->fds[r], r, x, bytes))) break;
        if (f64)
            for (int64_t i = 0; i < n; i++) ((double *)v)[i] += ((double *)x)[i];
        else
            for (int64_t i = 0; i < n; i++) ((float *)v)[i] += ((float *)x)[i];
    }
    for (int r = 1; r < d->world && !st; r++) st = sw_dist_msg_send(ctx, P->fds[r], 'D', v, bytes);
    free(x);
    return st;
}

static sw_status p_all_reduce(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) { return summed(ctx, d, buf, n, false); }
static sw_status p_sum_host(sw_ctx *ctx, sw_dist *d, double *v, int n) { return summed(ctx, d, v, n, true); }

static sw_status p_broadcast(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root) {
    pipe_state *P = d->impl;
    if (gate(ctx, d)) return ctx->status;
    if (d->rank != 0) {
        if (d->rank == root) return sw_dist_msg_send(ctx, P->fds[0], 'D', buf, bytes);
        return recv_data(ctx, d, P->fds[0], 0, buf, bytes);
    }
    if (root != 0 && recv_data(ctx, d, P->fds[root], root, buf, bytes)) return ctx->status;
    for (int r = 1; r < d->world; r++)
        if (r != root && sw_dist_msg_send(ctx, P->fds[r], 'D', buf, bytes)) return ctx->status;
    return SW_OK;
}

static sw_status p_all_gather(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    pipe_state *P = d->impl;
    if (gate(ctx, d)) return ctx->status;
    int64_t lo, hi;
    if (d->rank != 0) {
        sw_dist_shard(n, d->rank, d->world, &lo, &hi);
        if (sw_dist_msg_send(ctx, P->fds[0], 'D', buf + lo, sizeof(float) * (size_t)(hi - lo))) return ctx->status;
        return recv_data(ctx, d, P->fds[0], 0, buf, sizeof(float) * (size_t)n);
    }
    for (int r = 1; r < d->world; r++) {
        sw_dist_shard(n, r, d->world, &lo, &hi);
        if (recv_data(ctx, d, P->fds[r], r, buf + lo, sizeof(float) * (size_t)(hi - lo))) return ctx->status;
    }
    for (int r = 1; r < d->world; r++)
        if (sw_dist_msg_send(ctx, P->fds[r], 'D', buf, sizeof(float) * (size_t)n)) return ctx->status;
    return SW_OK;
}

static sw_status p_barrier(sw_ctx *ctx, sw_dist *d) {
    double one = 1;
    return p_sum_host(ctx, d, &one, 1);
}

static sw_status p_wait(sw_ctx *ctx, sw_dist *d) {
    (void)ctx, (void)d;
    return SW_OK;
}

/* The launcher tells the others (rank 0: 'A' after a failed cell) and
 * resets this flag when the next cell starts: sw_dist_pipe_reset. */
static void p_abort(sw_dist *d) {
    pipe_state *P = d->impl;
    P->aborted = true;
}

static void p_free(sw_dist *d) {
    pipe_state *P = d->impl;
    for (int r = 0; r < d->world; r++) free(P->result[r]);
    free(P->result);
    free(P->fds);
    free(P);
    d->ops = NULL;
    free(d);
}

static const sw_dist_ops pipe_ops = {"pipe", false, p_all_reduce, p_sum_host, p_broadcast, p_all_gather,
                                     p_barrier, p_wait, p_abort, p_free};

sw_status sw_dist_pipe_new(sw_ctx *ctx, int rank, int world, const int *fds, double timeout_s, sw_dist **out) {
    *out = NULL;
    if (world < 1 || rank < 0 || rank >= world)
        return sw_err(ctx, SW_EINVAL, "dist: rank %d of world %d", rank, world);
    sw_dist *d = calloc(1, sizeof *d);
    pipe_state *P = calloc(1, sizeof *P);
    int *f = calloc((size_t)world, sizeof *f);
    char **res = calloc((size_t)world, sizeof *res);
    if (!d || !P || !f || !res) {
        free(d), free(P), free(f), free(res);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    if (rank == 0) memcpy(f, fds, sizeof(int) * (size_t)world);
    else f[0] = fds[0];
    P->fds = f;
    P->result = res;
    P->timeout_s = timeout_s > 0 ? timeout_s : 600;
    *d = (sw_dist){&pipe_ops, rank, world, P};
    *out = d;
    return SW_OK;
}

void sw_dist_pipe_reset(sw_dist *d) {
    if (!d || d->ops != &pipe_ops) return;
    pipe_state *P = d->impl;
    P->aborted = false;
    for (int r = 0; r < d->world; r++) {
        free(P->result[r]);
        P->result[r] = NULL;
    }
}

const char *sw_dist_pipe_result(const sw_dist *d, int r) {
    if (!d || d->ops != &pipe_ops || r < 0 || r >= d->world) return NULL;
    return ((const pipe_state *)d->impl)->result[r];
}
