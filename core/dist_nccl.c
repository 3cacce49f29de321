/* dist_nccl.c — the NCCL communicator (dist.h): one rank per CUDA device,
 * collectives on device memory.
 *
 * Built when CMake finds nccl.h (SW_HAVE_NCCL); libnccl.so.2 itself is
 * opened at run time (dlopen), so the one stepwise binary still starts on a
 * machine without NCCL and only sw_dist_nccl_new says it is missing. The
 * library is looked for in $STEPWISE_NCCL_LIB, then where the build found it
 * (SW_NCCL_LIB: CUDA's lib directory, or the nvidia-nccl wheel in a Python
 * site-packages, e.g. the one torch ships), then the loader's path.
 *
 * Streams: the gradient all-reduce runs on a communication stream of its
 * own, after an event recorded on the engine's stream, so a bucket reduces
 * while the backward computes earlier layers; sw_dist_wait makes the engine
 * stream wait for it (no host sync). The other collectives (parameter
 * gather, broadcast, the host sums) run on the engine's stream, in order
 * with the update. Host waits poll with a deadline and NCCL's async error,
 * so a rank that died turns into an error here (and the communicator is
 * aborted) instead of a hang.
 */
#include "dist_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SW_HAVE_NCCL

bool sw_dist_nccl_available(char *why, size_t n) {
    if (why && n) snprintf(why, n, "this build has no NCCL (nccl.h was not found by CMake; see SW_NCCL_ROOT)");
    return false;
}
sw_status sw_dist_nccl_id(sw_ctx *ctx, uint8_t id[SW_DIST_ID_BYTES]) {
    (void)id;
    return sw_err(ctx, SW_EUNSUPPORTED, "dist: this build has no NCCL (configure with SW_NCCL_ROOT=...)");
}
sw_status sw_dist_nccl_new(sw_ctx *ctx, const uint8_t id[SW_DIST_ID_BYTES], int rank, int world, int dev,
                           sw_dist **out) {
    (void)id, (void)rank, (void)world, (void)dev;
    *out = NULL;
    return sw_err(ctx, SW_EUNSUPPORTED, "dist: this build has no NCCL (configure with SW_NCCL_ROOT=...)");
}

#else

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>
#include <pthread.h>
#include <time.h>

#include "../kernels/gpu_ops.h"

_Static_assert(sizeof(ncclUniqueId) == SW_DIST_ID_BYTES, "NCCL's unique id size changed");

/* ---- the library, opened once ------------------------------------------- */

static struct {
    void *h;
    char why[512];
    ncclResult_t (*GetUniqueId)(ncclUniqueId *);
    ncclResult_t (*CommInitRank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*AllReduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*Broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*GroupStart)(void);
    ncclResult_t (*GroupEnd)(void);
    ncclResult_t (*CommDestroy)(ncclComm_t);
    ncclResult_t (*CommAbort)(ncclComm_t);
    ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t *);
    const char *(*GetErrorString)(ncclResult_t);
    ncclResult_t (*GetVersion)(int *);
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void *sym(const char *name) {
    void *p = dlsym(lib.h, name);
    if (!p && !lib.why[0]) snprintf(lib.why, sizeof lib.why, "libnccl has no %s", name);
    return p;
}

static void lib_open(void) {
    const char *tries[3] = {getenv("STEPWISE_NCCL_LIB"),
#ifdef SW_NCCL_LIB
                            SW_NCCL_LIB,
#else
                            NULL,
#endif
                            "libnccl.so.2"};
    for (int i = 0; i < 3 && !lib.h; i++)
        if (tries[i] && tries[i][0]) lib.h = dlopen(tries[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib.h) {
        snprintf(lib.why, sizeof lib.why, "libnccl.so.2 not found (%s); set STEPWISE_NCCL_LIB", dlerror());
        return;
    }
    lib.GetUniqueId = sym("ncclGetUniqueId");
    lib.CommInitRank = sym("ncclCommInitRank");
    lib.AllReduce = sym("ncclAllReduce");
    lib.Broadcast = sym("ncclBroadcast");
    lib.GroupStart = sym("ncclGroupStart");
    lib.GroupEnd = sym("ncclGroupEnd");
    lib.CommDestroy = sym("ncclCommDestroy");
    lib.CommAbort = sym("ncclCommAbort");
    lib.CommGetAsyncError = sym("ncclCommGetAsyncError");
    lib.GetErrorString = sym("ncclGetErrorString");
    lib.GetVersion = sym("ncclGetVersion");
    if (lib.why[0]) {
        dlclose(lib.h);
        lib.h = NULL;
    }
}

bool sw_dist_nccl_available(char *why, size_t n) {
    pthread_once(&lib_once, lib_open);
    if (!lib.h) {
        if (why && n) snprintf(why, n, "%s", lib.why);
        return false;
    }
    int v = 0;
    lib.GetVersion(&v);
    if (why && n) snprintf(why, n, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    return true;
}

static sw_status need_lib(sw_ctx *ctx) {
    pthread_once(&lib_once, lib_open);
    return lib.h ? SW_OK : sw_err(ctx, SW_EUNSUPPORTED, "dist: %s", lib.why);
}

/* ---- the communicator ---------------------------------------------------- */

typedef struct nccl {
    ncclComm_t comm;
    int dev;
    cudaStream_t comm_stream;   /* gradient all-reduces */
    cudaEvent_t ready, done;    /* engine -> comm stream, comm -> engine stream */
    double *dscratch;           /* host sums travel through here (device) */
    int scratch_n;
    bool pending, aborted;
    double timeout_s;
} nccl;

#define NC(call, what)                                                                                               \
    do {                                                                                                             \
        ncclResult_t r_ = (call);                                                                                    \
        if (r_ != ncclSuccess) return sw_err(ctx, SW_EDEVICE, "dist (nccl): %s: %s", what, lib.GetErrorString(r_)); \
    } while (0)
#define CU(call, what)                                                                                               \
    do {                                                                                                             \
        cudaError_t e_ = (call);                                                                                     \
        if (e_ != cudaSuccess) return sw_err(ctx, SW_EDEVICE, "dist (nccl): %s: %s", what, cudaGetErrorString(e_)); \
    } while (0)

static cudaStream_t engine_stream(const nccl *N) { return (cudaStream_t)sw_cuda_stream(N->dev); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait for a stream from the host, bounded: NCCL has no timeout of its own,
 * and a peer that died leaves its collectives waiting forever. */
static sw_status bounded_sync(sw_ctx *ctx, sw_dist *d, cudaStream_t s) {
    nccl *N = d->impl;
    double t0 = now_s();
    struct timespec nap = {0, 200000};
    for (;;) {
        cudaError_t e = cudaStreamQuery(s);
        if (e == cudaSuccess) return SW_OK;
        if (e != cudaErrorNotReady) return sw_err(ctx, SW_EDEVICE, "dist (nccl): %s", cudaGetErrorString(e));
        ncclResult_t ae = ncclSuccess;
        lib.CommGetAsyncError(N->comm, &ae);
        if (ae != ncclSuccess && ae != ncclInProgress) {
            d->ops->abort(d);
            return sw_err(ctx, SW_EDEVICE, "dist (nccl): rank %d: %s", d->rank, lib.GetErrorString(ae));
        }
        if (now_s() - t0 > N->timeout_s) {
            d->ops->abort(d);
            return sw_err(ctx, SW_EDEVICE, "dist (nccl): rank %d waited %.0f s for the other ranks; communicator aborted",
                          d->rank, N->timeout_s);
        }
        nanosleep(&nap, NULL);
    }
}

static sw_status alive(sw_ctx *ctx, const sw_dist *d) {
    const nccl *N = d->impl;
    if (N->aborted) return sw_err(ctx, SW_ESTATE, "dist (nccl): the communicator was aborted after an error");
    CU(cudaSetDevice(N->dev), "cudaSetDevice");
    return SW_OK;
}

static sw_status n_all_reduce(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    nccl *N = d->impl;
    if (alive(ctx, d)) return ctx->status;
    if (n == 0) return SW_OK;
    CU(cudaEventRecord(N->ready, engine_stream(N)), "event");
    CU(cudaStreamWaitEvent(N->comm_stream, N->ready, 0), "stream wait");
    NC(lib.AllReduce(buf, buf, (size_t)n, ncclFloat32, ncclSum, N->comm, N->comm_stream), "all-reduce");
    N->pending = true;
    return SW_OK;
}

static sw_status n_wait(sw_ctx *ctx, sw_dist *d) {
    nccl *N = d->impl;
    if (alive(ctx, d)) return ctx->status;
    if (!N->pending) return SW_OK; /* not ctx->status: it may hold an earlier, handled error */
    CU(cudaEventRecord(N->done, N->comm_stream), "event");
    CU(cudaStreamWaitEvent(engine_stream(N), N->done, 0), "stream wait");
    N->pending = false;
    return SW_OK;
}

static sw_status n_sum_host(sw_ctx *ctx, sw_dist *d, double *v, int n) {
    nccl *N = d->impl;
    if (alive(ctx, d) || n_wait(ctx, d)) return ctx->status;
    if (n > N->scratch_n) {
        cudaFree(N->dscratch);
        N->dscratch = NULL;
        N->scratch_n = 0;
        CU(cudaMalloc((void **)&N->dscratch, sizeof(double) * (size_t)n), "scratch");
        N->scratch_n = n;
    }
    cudaStream_t s = engine_stream(N);
    CU(cudaMemcpyAsync(N->dscratch, v, sizeof(double) * (size_t)n, cudaMemcpyHostToDevice, s), "copy");
    NC(lib.AllReduce(N->dscratch, N->dscratch, (size_t)n, ncclFloat64, ncclSum, N->comm, s), "sum");
    CU(cudaMemcpyAsync(v, N->dscratch, sizeof(double) * (size_t)n, cudaMemcpyDeviceToHost, s), "copy");
    return bounded_sync(ctx, d, s);
}

static sw_status n_broadcast(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root) {
    nccl *N = d->impl;
    if (alive(ctx, d) || n_wait(ctx, d)) return ctx->status;
    NC(lib.Broadcast(buf, buf, bytes, ncclUint8, root, N->comm, engine_stream(N)), "broadcast");
    return SW_OK;
}

/* Slices differ in size by one, which ncclAllGather does not allow: one
 * broadcast per rank, grouped so NCCL runs them together. */
static sw_status n_all_gather(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    nccl *N = d->impl;
    if (alive(ctx, d) || n_wait(ctx, d)) return ctx->status;
    NC(lib.GroupStart(), "group");
    ncclResult_t r = ncclSuccess;
    for (int q = 0; q < d->world && r == ncclSuccess; q++) {
        int64_t lo, hi;
        sw_dist_shard(n, q, d->world, &lo, &hi);
        if (hi > lo) r = lib.Broadcast(buf + lo, buf + lo, (size_t)(hi - lo), ncclFloat32, q, N->comm, engine_stream(N));
    }
    ncclResult_t r2 = lib.GroupEnd();
    NC(r != ncclSuccess ? r : r2, "all-gather");
    return SW_OK;
}

static sw_status n_barrier(sw_ctx *ctx, sw_dist *d) {
    double one = 1;
    return n_sum_host(ctx, d, &one, 1);
}

static void n_abort(sw_dist *d) {
    nccl *N = d->impl;
    if (N->aborted) return;
    N->aborted = true;
    lib.CommAbort(N->comm);
    N->comm = NULL;
}

static void n_free(sw_dist *d) {
    nccl *N = d->impl;
    if (N->comm) lib.CommDestroy(N->comm);
    cudaSetDevice(N->dev);
    if (N->comm_stream) cudaStreamDestroy(N->comm_stream);
    if (N->ready) cudaEventDestroy(N->ready);
    if (N->done) cudaEventDestroy(N->done);
    cudaFree(N->dscratch);
    free(N);
    d->ops = NULL;
    free(d);
}

static const sw_dist_ops nccl_ops = {"nccl", true, n_all_reduce, n_sum_host, n_broadcast, n_all_gather,
                                     n_barrier, n_wait,      n_abort,    n_free};

sw_status sw_dist_nccl_id(sw_ctx *ctx, uint8_t id[SW_DIST_ID_BYTES]) {
    if (need_lib(ctx)) return ctx->status;
    /* the id carries rank 0's bootstrap address: NCCL reads its settings
     * from the environment when it makes it, so switch NVLS off first */
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    ncclUniqueId u;
    NC(lib.GetUniqueId(&u), "ncclGetUniqueId");
    memcpy(id, &u, sizeof u);
    return SW_OK;
}

sw_status sw_dist_nccl_new(sw_ctx *ctx, const uint8_t id[SW_DIST_ID_BYTES], int rank, int world, int dev,
                           sw_dist **out) {
    *out = NULL;
    if (world < 1) return sw_err(ctx, SW_EINVAL, "dist: world must be positive, got %d", world);
    if (rank < 0 || rank >= world) return sw_err(ctx, SW_EINVAL, "dist: rank %d outside 0..%d", rank, world - 1);
    if (dev < 0) return sw_err(ctx, SW_EINVAL, "dist: NCCL needs a CUDA device, got %d", dev);
    if (need_lib(ctx)) return ctx->status;
    /* NVLink multicast (NVLS) stays off: the device machines require it */
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    sw_dist *d = calloc(1, sizeof *d);
    nccl *N = calloc(1, sizeof *N);
    if (!d || !N) {
        free(d), free(N);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    *d = (sw_dist){&nccl_ops, rank, world, N};
    N->dev = dev;
    const char *t = getenv("STEPWISE_DIST_TIMEOUT");
    N->timeout_s = t && atof(t) > 0 ? atof(t) : 600;
    sw_status st = SW_OK;
    cudaError_t e = cudaSetDevice(dev);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&N->comm_stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&N->ready, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&N->done, cudaEventDisableTiming);
    if (e != cudaSuccess) st = sw_err(ctx, SW_EDEVICE, "dist (nccl): device %d: %s", dev, cudaGetErrorString(e));
    if (!st && !sw_cuda_stream(dev)) st = sw_err(ctx, SW_EDEVICE, "dist (nccl): device %d has no stream", dev);
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    if (!st) {
        ncclResult_t r = lib.CommInitRank(&N->comm, world, u, rank);
        if (r != ncclSuccess) {
            N->comm = NULL;
            st = sw_err(ctx, SW_EDEVICE, "dist (nccl): ncclCommInitRank (rank %d of %d, device %d): %s", rank, world,
                        dev, lib.GetErrorString(r));
        }
    }
    if (st) {
        n_free(d);
        return st;
    }
    *out = d;
    return SW_OK;
}

#endif
