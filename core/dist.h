/* dist.h — data-parallel training over several ranks (one per GPU).
 *
 * A communicator (sw_dist) joins `world` ranks; rank r trains on its own
 * device engine. Two backends sit behind one function table:
 *   local  ranks are threads of one process sharing memory (dist_local.c).
 *          Buffers are host memory: the emulated engine's. It exists so the
 *          multi-rank trainer runs, and is tested, on a machine without GPUs.
 *   pipe   ranks are processes joined to rank 0 by sockets (dist_pipe.c),
 *          host memory: the launcher's path on the emulated device.
 *   nccl   NCCL (dist_nccl.c, built when nccl.h is found; libnccl.so.2 is
 *          opened at run time). Buffers are device memory; collectives are
 *          queued on the engine's stream (or a side stream, see overlap).
 * The design leaves room for several hosts: a rank knows only (rank, world,
 * unique id); how the id travels (a pipe from the launcher today, a TCP
 * rendezvous later) is the launcher's business, not the communicator's.
 *
 * How a data-parallel step is arithmetic (the contract tests check):
 *   - Every rank reads the whole step's batches from the same seeded stream a
 *     single GPU reads: accum * world micro-batches. Rank r trains
 *     micro-batches r, r + world, r + 2 world, ... (round robin), so the
 *     step on N ranks with accum a is the step on one rank with accum a N.
 *   - Each rank knows the global count of trained tokens (it read every
 *     batch), so loss_scale = 1 / global count everywhere and the SUM of the
 *     ranks' gradients is the step's mean gradient: no division by world.
 *   - Sum order: the local backend adds rank 0's value, then rank 1's, ... in
 *     float32, the same bits on every rank. NCCL's ring or tree order is its
 *     own (deterministic for a fixed topology); results agree with one rank
 *     within float32 rounding, far inside bf16 tolerance.
 *   - Buckets: the last micro-batch's backward calls a hook after each layer;
 *     once the layers finished since the last bucket hold at least
 *     bucket_bytes of gradients, their slice of the flat gradient array
 *     (contiguous: layers are laid out in order) is all-reduced while the
 *     backward goes on with earlier layers. Elementwise sums do not depend
 *     on how the array is cut, so buckets change timing, never values.
 *   - Update: replicated (every rank runs the same clip and AdamW on the same
 *     summed gradients) or ZeRO-1 (rank r holds the moments of its slice of
 *     the flat array only, updates that slice, then every rank gathers the
 *     parameters). Both give the same bits: AdamW is elementwise. A
 *     checkpoint gathers the moments first (whole arrays for that moment).
 */
#ifndef SW_DIST_H
#define SW_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "optim.h"
#include "train.h"

typedef struct sw_dist sw_dist;
struct sw_gpu;

#define SW_DIST_ID_BYTES 128 /* NCCL's unique id; the local backend ignores it */

/* ---- communicators ------------------------------------------------------ */

/* world communicators of the local backend, one per rank (out[world]);
 * each is then used by its own thread. timeout_s bounds every wait (a rank
 * that never arrives turns into an error on the others, not a hang);
 * <= 0: 600 s. */
sw_status sw_dist_local_group(sw_ctx *ctx, int world, double timeout_s, sw_dist **out);

/* NCCL: a unique id (rank 0 makes it and sends it to the others), and this
 * rank's communicator on CUDA device dev. Forces NCCL_NVLS_ENABLE=0 (NVLink
 * multicast off, as the device machines require) before creating it.
 * SW_EUNSUPPORTED when the build has no NCCL or libnccl.so.2 is not found. */
sw_status sw_dist_nccl_id(sw_ctx *ctx, uint8_t id[SW_DIST_ID_BYTES]);
sw_status sw_dist_nccl_new(sw_ctx *ctx, const uint8_t id[SW_DIST_ID_BYTES], int rank, int world, int dev,
                           sw_dist **out);
/* Whether this build and machine can make NCCL communicators (and why not). */
bool      sw_dist_nccl_available(char *why, size_t n);

/* The pipe backend (dist_pipe.c): ranks are processes joined to rank 0 by
 * connected sockets the launcher made; host memory (the emulated engine).
 * fds: on rank 0, fds[r] is the socket to rank r (fds[0] unused); on the
 * others fds[0] is the socket to rank 0. The sockets stay the caller's. */
sw_status sw_dist_pipe_new(sw_ctx *ctx, int rank, int world, const int *fds, double timeout_s, sw_dist **out);
/* After sw_dist_abort a pipe rank refuses collectives until this (the
 * launcher calls it when the next cell starts). */
void      sw_dist_pipe_reset(sw_dist *d);
/* Rank 0: the cell result ('R' payload: a status byte, then the message)
 * that worker r sent while rank 0 waited in a collective for its data, or
 * NULL. Kept until sw_dist_pipe_reset. */
const char *sw_dist_pipe_result(const sw_dist *d, int r);
/* Framed messages on those sockets: a tag byte and a length (dist_pipe.c
 * lists the tags). recv: *buf is malloc'd (NUL-terminated), the caller frees. */
sw_status sw_dist_msg_send(sw_ctx *ctx, int fd, char tag, const void *buf, size_t len);
sw_status sw_dist_msg_recv(sw_ctx *ctx, int fd, char *tag, void **buf, size_t *len, double timeout_s);

void sw_dist_free(sw_dist *d); /* NULL is fine; each rank frees its own */
int  sw_dist_rank(const sw_dist *d);
int  sw_dist_world(const sw_dist *d);
const char *sw_dist_backend(const sw_dist *d); /* "local", "pipe" or "nccl" */

/* ---- collectives (every rank calls them in the same order) -------------- */

/* buf (n floats, the backend's memory) = the sum over ranks, in place. */
sw_status sw_dist_all_reduce(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n);
/* Host doubles summed over ranks (losses, token counts): small, blocking. */
sw_status sw_dist_sum_host(sw_ctx *ctx, sw_dist *d, double *v, int n);
/* Every rank's buf gets root's bytes. */
sw_status sw_dist_broadcast(sw_ctx *ctx, sw_dist *d, void *buf, size_t bytes, int root);
/* buf holds n floats; rank r's slice [lo_r, hi_r) (sw_dist_shard) is sent to
 * every other rank, so all ranks end with every slice. */
sw_status sw_dist_all_gather(sw_ctx *ctx, sw_dist *d, float *buf, int64_t n);
sw_status sw_dist_barrier(sw_ctx *ctx, sw_dist *d);
/* Wait for queued collectives (NCCL: the communication stream). */
sw_status sw_dist_wait(sw_ctx *ctx, sw_dist *d);
/* A rank that failed says so: the local backend wakes the ranks waiting for
 * it with an error instead of letting them wait out the timeout. */
void sw_dist_abort(sw_dist *d);

/* The slice of n elements rank r owns for ZeRO-1 and all_gather: contiguous,
 * sizes differing by at most one. */
void sw_dist_shard(int64_t n, int rank, int world, int64_t *lo, int64_t *hi);

/* ---- the engine's side of a data-parallel step (dist_engine.c) ---------- */

typedef struct sw_dist_step_opts {
    size_t bucket_bytes;   /* gradients per all-reduce bucket; 0: 8 MiB */
    bool zero1;            /* ZeRO-1: each rank updates its slice, then all-gather */
    int *buckets;          /* optional out: all-reduces sw_dist_grads launched */
    const uint64_t *dropout_calls; /* optional: LoRA dropout stream of each micro-batch */
} sw_dist_step_opts;

/* Every rank's adapter parameters become rank 0's (a trainer's start). */
sw_status sw_dist_sync_params(sw_ctx *ctx, struct sw_gpu *g, sw_dist *d);
/* The gradient part of a step on one rank: this rank's micro-batches mb[0..n)
 * (gradients ADDED into the engine's, which the caller zeroed), the last
 * one's backward all-reducing finished layers bucket by bucket, anything left
 * after it (or all, when the last micro-batch is empty) reduced at the end.
 * On return every rank holds the summed gradients and *loss_sum, *n_trained
 * are summed over ranks too. o->loss_scale must be 1 / (global trained
 * tokens). *bad_micro: this rank's first micro-batch whose loss was not
 * finite, or -1. */
sw_status sw_dist_grads(sw_ctx *ctx, struct sw_gpu *g, sw_dist *d, const sw_dist_step_opts *so,
                        const sw_seq_batch *mb, int n, const sw_train_opts *o, double *loss_sum, int64_t *n_trained,
                        int *bad_micro);
/* The update after sw_dist_grads: replicated, or each rank its slice then a
 * parameter all-gather (zero1). Leaves every rank's parameters equal. */
sw_status sw_dist_update(sw_ctx *ctx, struct sw_gpu *g, sw_dist *d, const sw_dist_step_opts *so,
                         const sw_optim_opts *oo, double lr, float gscale);
/* ZeRO-1: keep only this rank's slice of the moments (sw_dist_shard), so
 * the optimizer state per rank is 1/world of it. */
sw_status sw_dist_shard_optim(sw_ctx *ctx, struct sw_gpu *g, sw_dist *d);
/* ZeRO-1 keeps each rank's moments only for its own slice: gather them so
 * every rank (rank 0 saving a checkpoint) holds the whole state (whole
 * arrays again until sw_dist_shard_optim). */
sw_status sw_dist_gather_optim(sw_ctx *ctx, struct sw_gpu *g, sw_dist *d);

#endif
