/* gpu_graph.c — CUDA graphs of the training step (see gpu_graph.h).
 *
 * Why: a step of a small model (SmolLM2-135M: 30 layers, ~100 launches a
 * layer forward and backward) is thousands of kernels of a few
 * microseconds each; launched one by one from the host, the GPU idles
 * between them. A graph replays the same launches with one host call.
 *
 * Policy: a shape seen for the first time runs directly. That run also
 * does, outside any capture, every lazy first-time thing a capture must not
 * do: cuBLASLt's handle, workspace and plans, module loading, kernel
 * attributes. The second call of the shape is recorded and the graph
 * launched at once; later calls replay it. GRAPH_SLOTS shapes are kept, the
 * least recently used evicted, so a few alternating shapes (a last partial
 * batch, an evaluation pass) do not record every step. A new activation
 * block (reallocated for a larger batch) drops every graph: they point into
 * the old one.
 *
 * A capture that fails (a call that cannot be captured slipped into the
 * step, instantiation ran out of memory) is ended and discarded, graphs
 * turn off for the engine with the reason kept for sw_gpu_graph_info, and
 * the step runs directly: nothing ran while capturing, so running it again
 * is the same step. An interrupt during the capture ends it and returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_graph.h"
#include "interrupt.h"
#ifdef SW_HAVE_CUDA
#include "../kernels/cuda_backend.h"
#endif

#define GRAPH_SLOTS 4

/* Everything a recorded step baked into its launches. */
typedef struct gkey {
    int64_t T, maxlen, chunk, mlp_rows;
    int n_seqs;
    bool backward, ckpt, has_lora;
    float loss_scale, scale;
    int r;
    const void *pb, *gr;   /* the adapter's bf16 mirror and gradients */
    int64_t n_chunks;
    uint8_t *skip;         /* per head chunk: 1 when no row of it is trained */
} gkey;

typedef struct gslot {
    bool used;
    gkey key;
    void *exec;            /* NULL: seen once, not recorded yet */
    uint64_t last;         /* least recently used goes first */
} gslot;

struct sw_gpu_graph_cache {
    gslot slot[GRAPH_SLOTS];
    uint64_t tick;
    const void *act;       /* the activation block the graphs point into */
    size_t act_bytes;
    int64_t captured, replayed, failed;
    char why[SW_MSG_MAX];
};

bool sw_gpu_graphs_default(int dev, sw_gpu_graphs o) {
#ifdef SW_HAVE_CUDA
    if (dev == SW_GPU_EMULATE || o == SW_GPU_GRAPHS_OFF) return false;
    if (o == SW_GPU_GRAPHS_ON) return true;
    const char *e = getenv("STEPWISE_CUDA_GRAPHS");
    return !e || strcmp(e, "0") != 0;
#else
    (void)dev;
    (void)o;
    return false;
#endif
}

static void slot_release(int dev, gslot *sl) {
#ifdef SW_HAVE_CUDA
    if (sl->exec) sw_cuda_graph_free(dev, sl->exec);
#else
    (void)dev;
#endif
    free(sl->key.skip);
    memset(sl, 0, sizeof *sl);
}

void sw_gpu_graphs_clear(sw_gpu *g) {
    if (!g || !g->graphs) return;
    for (int i = 0; i < GRAPH_SLOTS; i++) slot_release(g->dev, &g->graphs->slot[i]);
}

void sw_gpu_graphs_free(sw_gpu *g) {
    if (!g || !g->graphs) return;
    sw_gpu_graphs_clear(g);
    free(g->graphs);
    g->graphs = NULL;
}

void sw_gpu_set_graphs(sw_gpu *g, bool on) {
    g->graphs_on = on && sw_gpu_graphs_default(g->dev, SW_GPU_GRAPHS_ON);
    if (!g->graphs_on) sw_gpu_graphs_clear(g);
}

void sw_gpu_graph_info(const sw_gpu *g, sw_gpu_graph_stats *s) {
    memset(s, 0, sizeof *s);
    s->enabled = g->graphs_on && !g->prof;
    s->why = "";
    if (!g->graphs) return;
    s->captured = g->graphs->captured;
    s->replayed = g->graphs->replayed;
    s->failed = g->graphs->failed;
    s->why = g->graphs->why;
}

#ifdef SW_HAVE_CUDA

/* The key of this call; false when out of memory (the step then runs directly). */
static bool key_make(gkey *k, const sw_gpu *g, const sw_gpu_step_shape *s) {
    memset(k, 0, sizeof *k);
    k->T = s->T, k->maxlen = s->maxlen, k->chunk = s->chunk, k->n_seqs = s->n_seqs;
    k->backward = s->backward, k->ckpt = s->ckpt, k->loss_scale = s->loss_scale, k->mlp_rows = s->mlp_rows;
    k->has_lora = g->has_lora, k->r = g->r, k->scale = g->scale, k->pb = g->pb, k->gr = g->gr;
    k->n_chunks = s->chunk > 0 ? (s->T + s->chunk - 1) / s->chunk : 0;
    if (!(k->skip = malloc((size_t)k->n_chunks + 1))) return false;
    /* the head's rule (gpu_train.c): a chunk without a trained row is skipped */
    for (int64_t c = 0; c < k->n_chunks; c++) {
        int64_t t0 = c * s->chunk, t1 = t0 + s->chunk < s->T ? t0 + s->chunk : s->T;
        bool trained = false;
        for (int64_t t = t0; t < t1 && !trained; t++) trained = s->tgt[t] >= 0;
        k->skip[c] = !trained;
    }
    return true;
}

static bool key_eq(const gkey *a, const gkey *b) {
    return a->T == b->T && a->maxlen == b->maxlen && a->chunk == b->chunk && a->n_seqs == b->n_seqs &&
           a->mlp_rows == b->mlp_rows &&
           a->backward == b->backward && a->ckpt == b->ckpt && a->has_lora == b->has_lora &&
           a->loss_scale == b->loss_scale && a->scale == b->scale && a->r == b->r && a->pb == b->pb &&
           a->gr == b->gr && a->n_chunks == b->n_chunks && !memcmp(a->skip, b->skip, (size_t)a->n_chunks);
}

/* The capture failed: remember why, turn graphs off, run the step directly. */
static sw_status give_up(sw_gpu *g, const char *why, sw_gpu_enqueue_fn enqueue, void *arg) {
    struct sw_gpu_graph_cache *G = g->graphs;
    G->failed++;
    snprintf(G->why, sizeof G->why, "%s", why);
    g->graphs_on = false;
    sw_gpu_graphs_clear(g);
    return enqueue(arg);
}

/* Record the step into sl's graph and launch it. */
static sw_status record(sw_ctx *ctx, sw_gpu *g, gslot *sl, sw_gpu_enqueue_fn enqueue, void *arg) {
    struct sw_gpu_graph_cache *G = g->graphs;
    sw_ctx cc; /* the capture's own errors; ctx keeps the step's */
    sw_ctx_init(&cc);
    if (sw_cuda_capture_begin(&cc, g->dev)) return give_up(g, cc.msg, enqueue, arg);
    sw_status st = enqueue(arg);
    void *exec = NULL;
    sw_status est = sw_cuda_capture_end(&cc, g->dev, st == SW_OK, &exec);
    if (st == SW_EINTR) return st; /* nothing ran; the shape stays seen */
    if (st) return give_up(g, ctx->msg, enqueue, arg);
    if (est) return give_up(g, cc.msg, enqueue, arg);
    sl->exec = exec;
    G->captured++;
    if (sw_cuda_graph_launch(ctx, g->dev, exec)) return ctx->status;
    G->replayed++;
    return SW_OK;
}

sw_status sw_gpu_graph_step(sw_ctx *ctx, sw_gpu *g, const sw_gpu_step_shape *s, sw_gpu_enqueue_fn enqueue, void *arg) {
    if (!g->graphs_on || g->prof || g->dev == SW_GPU_EMULATE) return enqueue(arg);
    if (!g->graphs && !(g->graphs = calloc(1, sizeof *g->graphs))) return enqueue(arg);
    struct sw_gpu_graph_cache *G = g->graphs;
    if (G->act != g->act || G->act_bytes != g->act_bytes) {
        sw_gpu_graphs_clear(g);
        G->act = g->act;
        G->act_bytes = g->act_bytes;
    }
    gkey k;
    if (!key_make(&k, g, s)) {
        free(k.skip);
        return enqueue(arg);
    }
    gslot *sl = NULL, *victim = &G->slot[0];
    for (int i = 0; i < GRAPH_SLOTS && !sl; i++) {
        gslot *c = &G->slot[i];
        if (c->used && key_eq(&c->key, &k)) sl = c;
        else if (!c->used || (victim->used && c->last < victim->last)) victim = c;
    }
    if (!sl) { /* first sight: remember the shape, run directly */
        slot_release(g->dev, victim);
        victim->used = true;
        victim->key = k;
        victim->last = ++G->tick;
        return enqueue(arg);
    }
    free(k.skip);
    sl->last = ++G->tick;
    if (!sl->exec) return record(ctx, g, sl, enqueue, arg);
    /* the direct path polls between layers; a replay is one unit */
    if (sw_interrupt_check(ctx)) return ctx->status;
    if (sw_cuda_graph_launch(ctx, g->dev, sl->exec)) return ctx->status;
    G->replayed++;
    return SW_OK;
}

#else

sw_status sw_gpu_graph_step(sw_ctx *ctx, sw_gpu *g, const sw_gpu_step_shape *s, sw_gpu_enqueue_fn enqueue, void *arg) {
    (void)ctx;
    (void)g;
    (void)s;
    return enqueue(arg);
}

#endif
