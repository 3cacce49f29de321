/* dist_impl.h — what a communicator backend provides (see dist.h). */
#ifndef SW_DIST_IMPL_H
#define SW_DIST_IMPL_H

#include "dist.h"

typedef struct sw_dist_ops {
    const char *name;
    bool device_memory;     /* buffers are CUDA memory (nccl) or host memory (local: the emulated engine) */
    /* sum in place; NCCL may return before it is done (sw_dist_wait) */
    sw_status (*all_reduce)(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n);
    sw_status (*sum_host)(sw_ctx *ctx, sw_dist *d, double *v, int n);
    sw_status (*broadcast)(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root);
    sw_status (*all_gather)(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n);
    sw_status (*barrier)(sw_ctx *ctx, sw_dist *d);
    sw_status (*wait)(sw_ctx *ctx, sw_dist *d);
    void (*abort)(sw_dist *d);
    void (*free)(sw_dist *d);
} sw_dist_ops;

struct sw_dist {
    const sw_dist_ops *ops;
    int rank, world;
    void *impl;             /* the backend's state */
};

#endif
