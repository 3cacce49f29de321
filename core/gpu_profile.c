/* gpu_profile.c — per-op timing of the device engine (see gpu_profile.h).
 *
 * The profiler's op table wraps the engine's real one: each wrapper counts
 * the call under a bucket, takes a time mark, calls the real op, takes a
 * second mark. A mark is a CUDA event recorded on the device's stream, or
 * the host clock on the emulated device (whose ops are synchronous); the
 * pair becomes milliseconds at collect time. Events come from a pool that
 * grows to the largest step and is reused from then on.
 *
 * Op tables carry no user pointer, so a wrapper finds its profiler through
 * the device index it is called with: one profiler per device at a time.
 * The wrappers are generated from the op list (gpu_ops.h): an op added
 * there without an ARGS_ line below fails to compile here, rather than
 * going untimed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_internal.h"
#include "gpu_profile.h"
#ifdef SW_HAVE_CUDA
#include "../kernels/cuda_backend.h"
#endif

/* Buckets: one per op, three for GEMMs, the engine's copies, and the
 * dequantization by source type. */
enum {
#define SW_PROF_BUCKET(name, params) B_##name,
    SW_GPU_OPS(SW_PROF_BUCKET)
#undef SW_PROF_BUCKET
    B_gemm_lora,
    B_gemm_head,
    B_copy, /* then zero, upload, fetch in GP_ order */
    B_dequant0 = B_copy + 4,
    B_COUNT = B_dequant0 + SW_DTYPE_COUNT
};

static const char *const op_names[] = {
#define SW_PROF_NAME(name, params) #name,
    SW_GPU_OPS(SW_PROF_NAME)
#undef SW_PROF_NAME
};

static void bucket_name(int b, char *buf, size_t n) {
    static const char *const copies[4] = {"copy", "zero", "upload", "fetch"};
    if (b == B_gemm) snprintf(buf, n, "gemm.frozen");
    else if (b == B_gemm_lora) snprintf(buf, n, "gemm.lora");
    else if (b == B_gemm_head) snprintf(buf, n, "gemm.head");
    else if (b == B_nf4_dequant_bf16) snprintf(buf, n, "dequant.nf4");
    else if (b >= B_copy && b < B_dequant0) snprintf(buf, n, "%s", copies[b - B_copy]);
    else if (b >= B_dequant0) {
        const sw_dtype_info *in = sw_dtype_info_of((sw_dtype)(b - B_dequant0));
        snprintf(buf, n, "%s.%s", in && in->quantized ? "dequant" : "to_bf16", in ? in->name : "?");
    } else snprintf(buf, n, "%s", op_names[b]);
}

typedef struct prec {
    int bucket, a, b; /* marks; -1 when one could not be taken */
} prec;

struct sw_gpu_prof {
    sw_gpu *g;                /* attached engine, or NULL */
    int dev;                  /* of the engine last attached */
    sw_device mdev;
    const sw_gpu_ops *inner;  /* the engine's own table */
    sw_gpu_ops table;         /* what the engine calls while attached */
    double ms[B_COUNT];
    int64_t calls[B_COUNT];
    int64_t steps;
    double wall_ms, busy_ms, span_ms;
    /* since the last collect */
    prec *rec;
    int n_rec, cap_rec;
    int n_mark, cap_mark;     /* marks taken; capacity of ev / host */
    void **ev;                /* CUDA events, the first n_ev made */
    int n_ev;
    double *host;             /* emulated: host clock of each mark, ms */
    bool broken;              /* a mark failed: timing stops, counting goes on */
};

#define PROF_DEVS 9 /* SW_GPU_EMULATE (-1) and CUDA devices 0..7 */
static sw_gpu_prof *active[PROF_DEVS];

static sw_gpu_prof *prof_of(int dev) { return dev >= -1 && dev < PROF_DEVS - 1 ? active[dev + 1] : NULL; }

/* The table to forward to: the profiler's, or (never expected) the backend's. */
static const sw_gpu_ops *inner_of(const sw_gpu_prof *P, int dev) {
    if (P && P->inner) return P->inner;
#ifdef SW_HAVE_CUDA
    if (dev != SW_GPU_EMULATE) return &sw_gpu_ops_cuda;
#endif
    (void)dev;
    return &sw_gpu_ops_emu;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- marks */

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int n = *cap ? *cap : 1024;
    while (n < need) n *= 2;
    void *q = realloc(*p, elem * (size_t)n);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* A time mark on the device's timeline: its index, or -1. */
static int mark(sw_gpu_prof *P) {
    if (P->broken) return -1;
    int i = P->n_mark, cap = P->cap_mark;
    if (!grow((void **)&P->host, &cap, i + 1, sizeof(double)) ||
        !grow((void **)&P->ev, &P->cap_mark, i + 1, sizeof(void *))) {
        P->broken = true;
        return -1;
    }
    if (P->dev == SW_GPU_EMULATE) {
        P->host[i] = now_ms();
    } else {
#ifdef SW_HAVE_CUDA
        sw_ctx cc;
        sw_ctx_init(&cc);
        if (i == P->n_ev && !sw_cuda_event_new(&cc, P->dev, &P->ev[i])) P->n_ev++;
        if (i >= P->n_ev || sw_cuda_event_record(&cc, P->dev, P->ev[i])) {
            P->broken = true;
            return -1;
        }
#endif
    }
    P->n_mark++;
    return i;
}

static double elapsed_ms(sw_gpu_prof *P, int a, int b) {
    if (P->dev == SW_GPU_EMULATE) return P->host[b] - P->host[a];
#ifdef SW_HAVE_CUDA
    sw_ctx cc;
    sw_ctx_init(&cc);
    float ms = 0;
    if (sw_cuda_event_elapsed(&cc, P->dev, P->ev[a], P->ev[b], &ms)) return 0;
    return ms;
#else
    return 0;
#endif
}

/* Count a call and open its record: a token for end(), or -1. */
static int begin(sw_gpu_prof *P, int bucket) {
    if (!P) return -1;
    P->calls[bucket]++;
    if (!grow((void **)&P->rec, &P->cap_rec, P->n_rec + 1, sizeof(prec))) {
        P->broken = true;
        return -1;
    }
    prec *r = &P->rec[P->n_rec];
    r->bucket = bucket;
    r->a = mark(P);
    r->b = -1;
    return P->n_rec++;
}

static void end(sw_gpu_prof *P, int tok) {
    if (P && tok >= 0 && tok < P->n_rec) P->rec[tok].b = mark(P);
}

int sw_gpu_prof_begin(sw_gpu *g, int what) { return g->prof ? begin(g->prof, B_copy + what) : -1; }
void sw_gpu_prof_end(sw_gpu *g, int token) { end(g->prof, token); }

/* ------------------------------------------------------------- wrappers */

static bool inside(const void *p, const void *base, size_t bytes) {
    return base && (const char *)p >= (const char *)base && (const char *)p < (const char *)base + bytes;
}

/* What a GEMM multiplies, told by its operands: the adapter's bf16 mirror
 * or gradient array, the LM head's table, or else a frozen weight. */
static int gemm_bucket(const sw_gpu_prof *P, const void *A, const void *B, const void *C) {
    const sw_gpu *g = P ? P->g : NULL;
    if (!g) return B_gemm;
    size_t np = (size_t)g->n_param;
    if (g->has_lora && (inside(A, g->pb, np * sizeof(sw_bf16)) || inside(B, g->pb, np * sizeof(sw_bf16)) ||
                        inside(C, g->gr, np * sizeof(float))))
        return B_gemm_lora;
    if (inside(B, g->head, sizeof(sw_bf16) * (size_t)(g->cfg.vocab * g->cfg.hidden))) return B_gemm_head;
    return B_gemm;
}

static int dequant_bucket(sw_dtype t) {
    return (int)t >= 0 && t < SW_DTYPE_COUNT ? B_dequant0 + (int)t : B_dequant_bf16;
}

#define ARGS_gemm (ctx, dev, ta, tb, M, N, K, alpha, A, ab_t, lda, B, ldb, beta, C, c_t, ldc)
#define ARGS_dequant_bf16 (ctx, dev, dst, src, t, n)
#define ARGS_nf4_dequant_bf16 (ctx, dev, dst, codes, absmax, n)
#define ARGS_nf4_quant (ctx, dev, codes, absmax, src, n)
#define ARGS_rmsnorm_fwd (ctx, dev, y, rstd, x, w, eps, T, C)
#define ARGS_rmsnorm_bwd (ctx, dev, dx, dx_t, dy, dy_t, x, w, rstd, T, C)
#define ARGS_rope (ctx, dev, x, pos, inv_freq, interleaved, inverse, T, H, D)
#define ARGS_swiglu_fwd (ctx, dev, out, g, u, n)
#define ARGS_swiglu_bwd (ctx, dev, dg, du, da, g, u, n)
#define ARGS_embed (ctx, dev, out, table, ids, T, C)
#define ARGS_add_bias (ctx, dev, y, b, T, N, ldy)
#define ARGS_residual_add (ctx, dev, y, x, T, N, ldy)
#define ARGS_dropout (ctx, dev, out, out_t, add, x, p, seed, call, which, first, n)
#define ARGS_cross_entropy (ctx, dev, loss, dlogits, logits, target, dscale, rows, V)
#define ARGS_sumsq (ctx, dev, out, x, n)
#define ARGS_adamw (ctx, dev, p, g, m, v, n, gscale, lr, beta1, beta2, eps, wd, step)
#define ARGS_sgd (ctx, dev, p, g, buf, n, gscale, lr, momentum, wd, step)
#define ARGS_attn_fwd (ctx, dev, out, lse, q, k, v, cu, n_seqs, max_len, T, window, Hq, Hkv, D)
#define ARGS_attn_bwd (ctx, dev, dq, dk, dv, dout, out, lse, q, k, v, cu, n_seqs, max_len, T, window, Hq, Hkv, D, ws)

/* The bucket of a call; the wrapper's parameters are in scope. */
#define BUCKET_OF_gemm gemm_bucket(P_, A, B, C)
#define BUCKET_OF_dequant_bf16 dequant_bucket(t)
#define BUCKET_OF(name) BUCKET_OF_##name

#define BUCKET_OF_nf4_dequant_bf16 B_nf4_dequant_bf16
#define BUCKET_OF_nf4_quant B_nf4_quant
#define BUCKET_OF_rmsnorm_fwd B_rmsnorm_fwd
#define BUCKET_OF_rmsnorm_bwd B_rmsnorm_bwd
#define BUCKET_OF_rope B_rope
#define BUCKET_OF_swiglu_fwd B_swiglu_fwd
#define BUCKET_OF_swiglu_bwd B_swiglu_bwd
#define BUCKET_OF_embed B_embed
#define BUCKET_OF_add_bias B_add_bias
#define BUCKET_OF_residual_add B_residual_add
#define BUCKET_OF_dropout B_dropout
#define BUCKET_OF_cross_entropy B_cross_entropy
#define BUCKET_OF_sumsq B_sumsq
#define BUCKET_OF_adamw B_adamw
#define BUCKET_OF_sgd B_sgd
#define BUCKET_OF_attn_fwd B_attn_fwd
#define BUCKET_OF_attn_bwd B_attn_bwd

#define SW_PROF_WRAP(name, params)                                   \
    static sw_status w_##name params {                               \
        sw_gpu_prof *P_ = prof_of(dev);                              \
        int tok_ = begin(P_, BUCKET_OF(name));                       \
        sw_status st_ = inner_of(P_, dev)->name ARGS_##name;         \
        end(P_, tok_);                                               \
        return st_;                                                  \
    }
SW_GPU_OPS(SW_PROF_WRAP)
#undef SW_PROF_WRAP

/* ------------------------------------------------------------ lifecycle */

sw_status sw_gpu_prof_new(sw_ctx *ctx, sw_gpu_prof **out) {
    *out = calloc(1, sizeof **out);
    return *out ? SW_OK : sw_err(ctx, SW_ENOMEM, "gpu profile");
}

static void drop_events(sw_gpu_prof *P) {
#ifdef SW_HAVE_CUDA
    for (int i = 0; i < P->n_ev; i++) sw_cuda_event_free(P->dev, P->ev[i]);
#endif
    P->n_ev = 0;
    P->n_mark = 0;
    P->n_rec = 0;
}

void sw_gpu_prof_free(sw_gpu_prof *p) {
    if (!p) return;
    if (p->g) sw_gpu_prof_detach(p->g);
    drop_events(p);
    free(p->ev);
    free(p->host);
    free(p->rec);
    free(p);
}

sw_status sw_gpu_prof_attach(sw_ctx *ctx, sw_gpu *g, sw_gpu_prof *p) {
    if (g->prof == p && p->g == g) return SW_OK;
    if (g->prof || p->g) return sw_err(ctx, SW_ESTATE, "gpu profile: the engine or the profiler is already attached");
    if (g->dev < -1 || g->dev >= PROF_DEVS - 1) return sw_err(ctx, SW_EINVAL, "gpu profile: device %d", g->dev);
    if (active[g->dev + 1]) return sw_err(ctx, SW_ESTATE, "gpu profile: another engine on this device is profiled");
    if (p->n_ev && p->dev != g->dev) drop_events(p); /* events belong to their device */
    p->g = g;
    p->dev = g->dev;
    p->mdev = g->mdev;
    p->inner = g->ops;
    p->table = *g->ops;
#define SW_PROF_SET(name, params) p->table.name = w_##name;
    SW_GPU_OPS(SW_PROF_SET)
#undef SW_PROF_SET
    active[g->dev + 1] = p;
    g->prof = p;
    g->ops = &p->table;
    return SW_OK;
}

void sw_gpu_prof_detach(sw_gpu *g) {
    sw_gpu_prof *p = g ? g->prof : NULL;
    if (!p) return;
    g->ops = p->inner;
    g->prof = NULL;
    if (active[g->dev + 1] == p) active[g->dev + 1] = NULL;
    p->g = NULL;
}

void sw_gpu_prof_forget(sw_gpu *g) { sw_gpu_prof_detach(g); }

/* ------------------------------------------------------------- results */

sw_status sw_gpu_prof_collect(sw_ctx *ctx, sw_gpu_prof *p, double wall_s) {
    if (p->n_mark && sw_device_sync(ctx, p->mdev)) return ctx->status;
    double busy = 0;
    for (int i = 0; i < p->n_rec; i++) {
        const prec *r = &p->rec[i];
        if (r->a < 0 || r->b < 0) continue;
        double ms = elapsed_ms(p, r->a, r->b);
        p->ms[r->bucket] += ms;
        busy += ms;
    }
    if (p->n_mark > 1) p->span_ms += elapsed_ms(p, 0, p->n_mark - 1);
    p->busy_ms += busy;
    p->wall_ms += 1e3 * wall_s;
    p->steps++;
    p->n_rec = 0;
    p->n_mark = 0; /* the events are reused by the next step */
    return SW_OK;
}

void sw_gpu_prof_summary_of(const sw_gpu_prof *p, sw_gpu_prof_summary *s) {
    s->steps = p->steps;
    s->wall_ms = p->wall_ms;
    s->busy_ms = p->busy_ms;
    s->span_ms = p->span_ms;
}

bool sw_gpu_prof_get(const sw_gpu_prof *p, const char *name, double *ms, int64_t *calls) {
    char buf[48];
    for (int b = 0; b < B_COUNT; b++) {
        bucket_name(b, buf, sizeof buf);
        if (strcmp(buf, name)) continue;
        *ms = p->ms[b];
        *calls = p->calls[b];
        return p->calls[b] > 0;
    }
    *ms = 0;
    *calls = 0;
    return false;
}

/* Buckets that were called, most expensive first. */
static int ranked(const sw_gpu_prof *p, int *order) {
    int n = 0;
    for (int b = 0; b < B_COUNT; b++)
        if (p->calls[b]) order[n++] = b;
    for (int i = 1; i < n; i++) /* insertion sort: a few dozen entries */
        for (int j = i; j > 0 && p->ms[order[j]] > p->ms[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return n;
}

void sw_gpu_prof_print(const sw_gpu_prof *p, FILE *f) {
    double k = p->steps ? 1.0 / (double)p->steps : 0, wall = p->wall_ms * k, busy = p->busy_ms * k;
    fprintf(f,
            "profile: %lld steps; per step: wall %.2f ms, ops %.2f ms (busy %.1f%%), idle %.2f ms, "
            "device span %.2f ms\n",
            (long long)p->steps, wall, busy, wall > 0 ? 100.0 * busy / wall : 0.0, wall - busy, p->span_ms * k);
    fprintf(f, "  %-20s %10s %7s %10s %10s\n", "op", "ms/step", "%wall", "calls/step", "us/call");
    int order[B_COUNT], n = ranked(p, order);
    char name[48];
    for (int i = 0; i < n; i++) {
        int b = order[i];
        bucket_name(b, name, sizeof name);
        double ms = p->ms[b] * k, calls = (double)p->calls[b] * k;
        fprintf(f, "  %-20s %10.3f %6.1f%% %10.1f %10.2f\n", name, ms, wall > 0 ? 100.0 * ms / wall : 0.0, calls,
                calls > 0 ? 1e3 * ms / calls : 0.0);
    }
}

void sw_gpu_prof_json(const sw_gpu_prof *p, FILE *f) {
    double k = p->steps ? 1.0 / (double)p->steps : 0, wall = p->wall_ms * k, busy = p->busy_ms * k;
    fprintf(f, "{\"steps\": %lld, \"wall_ms\": %.3f, \"busy_ms\": %.3f, \"busy_pct\": %.1f, \"idle_ms\": %.3f, "
               "\"span_ms\": %.3f, \"ops\": {",
            (long long)p->steps, wall, busy, wall > 0 ? 100.0 * busy / wall : 0.0, wall - busy, p->span_ms * k);
    int order[B_COUNT], n = ranked(p, order);
    char name[48];
    for (int i = 0; i < n; i++) {
        int b = order[i];
        bucket_name(b, name, sizeof name);
        double ms = p->ms[b] * k;
        fprintf(f, "%s\"%s\": {\"ms\": %.3f, \"pct\": %.1f, \"calls\": %.1f}", i ? ", " : "", name, ms,
                wall > 0 ? 100.0 * ms / wall : 0.0, (double)p->calls[b] * k);
    }
    fprintf(f, "}}");
}
