/* dist.c — the communicator's public face: argument checks, then the
 * backend's table (dist_impl.h). Backends: dist_local.c, dist_nccl.c. */
#include "dist_impl.h"

#include <stdlib.h>

void sw_dist_free(sw_dist *d) {
    if (d && d->ops) d->ops->free(d);
}

int sw_dist_rank(const sw_dist *d) { return d ? d->rank : 0; }
int sw_dist_world(const sw_dist *d) { return d ? d->world : 1; }
const char *sw_dist_backend(const sw_dist *d) { return d ? d->ops->name : "none"; }

void sw_dist_shard(int64_t n, int rank, int world, int64_t *lo, int64_t *hi) {
    /* the first n % world ranks hold one element more */
    int64_t base = n / world, extra = n % world;
    *lo = rank * base + (rank < extra ? rank : extra);
    *hi = *lo + base + (rank < extra ? 1 : 0);
}

sw_status sw_dist_all_reduce(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    if (n < 0) return sw_err(ctx, SW_EINVAL, "dist: all_reduce of %lld elements", (long long)n);
    return d->ops->all_reduce(ctx, d, buf, n);
}

sw_status sw_dist_sum_host(sw_ctx *ctx, sw_dist *d, double *v, int n) {
    if (n < 0) return sw_err(ctx, SW_EINVAL, "dist: sum of %d values", n);
    return d->ops->sum_host(ctx, d, v, n);
}

sw_status sw_dist_broadcast(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root) {
    if (root < 0 || root >= d->world)
        return sw_err(ctx, SW_EINVAL, "dist: broadcast root %d outside 0..%d", root, d->world - 1);
    return d->ops->broadcast(ctx, d, buf, bytes, root);
}

sw_status sw_dist_all_gather(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n) {
    if (n < 0) return sw_err(ctx, SW_EINVAL, "dist: all_gather of %lld elements", (long long)n);
    return d->ops->all_gather(ctx, d, buf, n);
}

sw_status sw_dist_barrier(sw_ctx *ctx, sw_dist *d) { return d->ops->barrier(ctx, d); }
sw_status sw_dist_wait(sw_ctx *ctx, sw_dist *d) { return d->ops->wait(ctx, d); }
void sw_dist_abort(sw_dist *d) {
    if (d) d->ops->abort(d);
}
