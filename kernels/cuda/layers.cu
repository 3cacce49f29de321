/* layers.cu — CUDA twins of the engine's layer ops (gpu_ops.h): RMSNorm
 * forward/backward, rotary embeddings, SwiGLU, the embedding gather, bias add
 * and LoRA dropout.
 *
 * Memory is bf16 (or f32 where gpu_ops.h says so); every value is widened to
 * float32 in registers and rounded once, round-to-nearest-even, on store.
 * Norms reduce one row per block (warp shuffles, then one shared slot per
 * warp). Elementwise ops move 8 elements (16 bytes of bf16) per access when
 * every pointer is 16-byte aligned and fall back to single elements
 * otherwise, so views at odd offsets still work. Everything is queued on the
 * device's stream (sw_cuda_stream) and returns without waiting.
 */
#include <cuda_bf16.h>
#include <stdint.h>
#include "common.cuh"
#include "../gpu_ops.h"

typedef __nv_bfloat16 bf16;

/* ------------------------------------------------------------ helpers */

static inline bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }
static inline unsigned round32(long long n) { return (unsigned)((n + 31) / 32 * 32); }

/* Threads for one block per row: enough to give each a unit, 32..256. */
static inline unsigned row_threads(long long units) {
    long long t = units < 256 ? units : 256;
    return t < 32 ? 32 : round32(t);
}

#define SW_OP_ENTER(ctx, dev)                                    \
    do {                                                         \
        if (sw_cuda_usable((ctx), (dev))) return (ctx)->status;  \
        SW_CUDA_CHECK((ctx), (dev), cudaSetDevice(dev));         \
    } while (0)

static inline cudaStream_t stream_of(int dev) { return (cudaStream_t)sw_cuda_stream(dev); }

__device__ __forceinline__ float tof(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float tof(float v) { return v; }
__device__ __forceinline__ void put(bf16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void put(float *p, float v) { *p = v; }

/* N consecutive elements to/from float registers; N is 8 (one 16-byte access
 * of bf16, two of f32: the caller guarantees alignment) or 1. */
template <int N> __device__ __forceinline__ void ldv(const bf16 *p, float *v) {
    if constexpr (N == 8) {
        uint4 u = *(const uint4 *)p;
        const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = __bfloat1622float2(h[k]);
            v[2 * k] = f.x;
            v[2 * k + 1] = f.y;
        }
    } else {
        v[0] = tof(p[0]);
    }
}
template <int N> __device__ __forceinline__ void ldv(const float *p, float *v) {
    if constexpr (N == 8) {
        float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
        v[0] = p[0];
    }
}
template <int N> __device__ __forceinline__ void stv(bf16 *p, const float *v) {
    if constexpr (N == 8) {
        uint4 u;
        __nv_bfloat162 *h = (__nv_bfloat162 *)&u;
#pragma unroll
        for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
        *(uint4 *)p = u;
    } else {
        put(p, v[0]);
    }
}
template <int N> __device__ __forceinline__ void stv(float *p, const float *v) {
    if constexpr (N == 8) {
        ((float4 *)p)[0] = make_float4(v[0], v[1], v[2], v[3]);
        ((float4 *)p)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
        p[0] = v[0];
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the block, returned to every thread. blockDim.x is a multiple of
 * 32 (at most 1024) but need not be a power of two: warps beyond the last
 * contribute zeros. The order is fixed, so the result is deterministic. */
__device__ float block_sum(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* part[] may still be read by an earlier call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return warp_sum(lane < nw ? part[lane] : 0.0f);
}

/* Elementwise driver: op.run<8>(i) handles elements i..i+7, op.run<1>(i)
 * element i. With vec, the first n/8*8 elements go in groups of 8 and the
 * rest one by one; without, all one by one. Grid-stride, any grid. */
template <typename Op> __global__ void ew_kernel(Op op, long long n, bool vec) {
    const long long gid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long nv = vec ? n / 8 : 0;
    for (long long j = gid; j < nv; j += stride) op.template run<8>(j * 8);
    for (long long i = nv * 8 + gid; i < n; i += stride) op.template run<1>(i);
}

template <typename Op> static sw_status ew_launch(sw_ctx *ctx, int dev, const Op &op, long long n, bool vec) {
    if (n <= 0) return SW_OK;
    ew_kernel<<<sw_cuda_blocks(vec ? (n + 7) / 8 : n, 256), 256, 0, stream_of(dev)>>>(op, n, vec);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* ------------------------------------------------------------ RMSNorm */

/* One block per row. The row is read twice (sum of squares, then scale);
 * the second read hits L1/L2, the row being at most a few tens of KiB. */
template <int N>
__global__ void rmsnorm_fwd_kernel(bf16 *y, float *rstd, const bf16 *x, const float *w, float eps, long long C) {
    const long long row = blockIdx.x;
    const bf16 *xr = x + row * C;
    bf16 *yr = y + row * C;
    float ss = 0.0f;
    for (long long c = (long long)threadIdx.x * N; c < C; c += (long long)blockDim.x * N) {
        float v[N];
        ldv<N>(xr + c, v);
#pragma unroll
        for (int k = 0; k < N; k++) ss += v[k] * v[k];
    }
    ss = block_sum(ss); /* also orders every read of the row before any write (y may be x) */
    /* as sw_rmsnorm_fwd_cpu: r = 1 / sqrt(mean + eps), y = (x r) w */
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (long long c = (long long)threadIdx.x * N; c < C; c += (long long)blockDim.x * N) {
        float v[N], wv[N], o[N];
        ldv<N>(xr + c, v);
        ldv<N>(w + c, wv);
#pragma unroll
        for (int k = 0; k < N; k++) o[k] = (v[k] * r) * wv[k];
        stv<N>(yr + c, o);
    }
}

extern "C" sw_status sw_rmsnorm_fwd_cuda(sw_ctx *ctx, int dev, sw_bf16 *y, float *rstd, const sw_bf16 *x,
                                         const float *w, float eps, int64_t T, int64_t C) {
    SW_OP_ENTER(ctx, dev);
    if (T <= 0 || C <= 0) return SW_OK;
    const bool vec = C % 8 == 0 && al16(y) && al16(x) && al16(w);
    const unsigned threads = row_threads(vec ? C / 8 : C);
    if (vec)
        rmsnorm_fwd_kernel<8><<<(unsigned)T, threads, 0, stream_of(dev)>>>((bf16 *)y, rstd, (const bf16 *)x, w, eps, C);
    else
        rmsnorm_fwd_kernel<1><<<(unsigned)T, threads, 0, stream_of(dev)>>>((bf16 *)y, rstd, (const bf16 *)x, w, eps, C);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* dx = r w dy - x k,  k = r^3 / C * sum(w dy x)  (sw_rmsnorm_bwd_cpu).
 * DX float: added to dx (the residual gradient); DX bf16: written. */
template <int N, typename DY, typename DX>
__global__ void rmsnorm_bwd_kernel(DX *dx, const DY *dy, const bf16 *x, const float *w, const float *rstd,
                                   long long C) {
    const long long row = blockIdx.x;
    const bf16 *xr = x + row * C;
    const DY *g = dy + row * C;
    DX *o = dx + row * C;
    float s = 0.0f;
    for (long long c = (long long)threadIdx.x * N; c < C; c += (long long)blockDim.x * N) {
        float gv[N], wv[N], xv[N];
        ldv<N>(g + c, gv);
        ldv<N>(w + c, wv);
        ldv<N>(xr + c, xv);
#pragma unroll
        for (int k = 0; k < N; k++) s += gv[k] * wv[k] * xv[k];
    }
    s = block_sum(s); /* every read of dy precedes any write of dx, should they alias */
    const float r = rstd[row];
    const float kk = s * r * r * r / (float)C;
    for (long long c = (long long)threadIdx.x * N; c < C; c += (long long)blockDim.x * N) {
        float gv[N], wv[N], xv[N], out[N];
        ldv<N>(g + c, gv);
        ldv<N>(w + c, wv);
        ldv<N>(xr + c, xv);
#pragma unroll
        for (int k = 0; k < N; k++) out[k] = r * wv[k] * gv[k] - xv[k] * kk;
        if constexpr (sizeof(DX) == sizeof(float)) {
            float prev[N];
            ldv<N>(o + c, prev);
#pragma unroll
            for (int k = 0; k < N; k++) out[k] += prev[k];
        }
        stv<N>(o + c, out);
    }
}

template <typename DY, typename DX>
static void rmsnorm_bwd_launch(int dev, bool vec, unsigned threads, void *dx, const void *dy, const sw_bf16 *x,
                               const float *w, const float *rstd, int64_t T, int64_t C) {
    if (vec)
        rmsnorm_bwd_kernel<8, DY, DX><<<(unsigned)T, threads, 0, stream_of(dev)>>>(
            (DX *)dx, (const DY *)dy, (const bf16 *)x, w, rstd, C);
    else
        rmsnorm_bwd_kernel<1, DY, DX><<<(unsigned)T, threads, 0, stream_of(dev)>>>(
            (DX *)dx, (const DY *)dy, (const bf16 *)x, w, rstd, C);
}

extern "C" sw_status sw_rmsnorm_bwd_cuda(sw_ctx *ctx, int dev, void *dx, sw_dtype dx_t, const void *dy,
                                         sw_dtype dy_t, const sw_bf16 *x, const float *w, const float *rstd,
                                         int64_t T, int64_t C) {
    SW_OP_ENTER(ctx, dev);
    if ((dx_t != SW_F32 && dx_t != SW_BF16) || (dy_t != SW_F32 && dy_t != SW_BF16))
        return sw_err(ctx, SW_EINVAL, "rmsnorm_bwd: dx and dy must be f32 or bf16");
    if (T <= 0 || C <= 0) return SW_OK;
    /* C % 8 == 0 keeps every row start 16-byte aligned for f32 and bf16 alike */
    const bool vec = C % 8 == 0 && al16(dx) && al16(dy) && al16(x) && al16(w);
    const unsigned threads = row_threads(vec ? C / 8 : C);
    if (dy_t == SW_F32 && dx_t == SW_F32) rmsnorm_bwd_launch<float, float>(dev, vec, threads, dx, dy, x, w, rstd, T, C);
    else if (dy_t == SW_F32) rmsnorm_bwd_launch<float, bf16>(dev, vec, threads, dx, dy, x, w, rstd, T, C);
    else if (dx_t == SW_F32) rmsnorm_bwd_launch<bf16, float>(dev, vec, threads, dx, dy, x, w, rstd, T, C);
    else rmsnorm_bwd_launch<bf16, bf16>(dev, vec, threads, dx, dy, x, w, rstd, T, C);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* --------------------------------------------------------------- RoPE */

/* Block (t, head group): thread k rotates pair i = k % half of head
 * blockIdx.y * hpb + k / half. The angle is float(pos) * inv_freq[i] and
 * cos/sin are full-precision, as sw_rope_cpu; the inverse negates sin,
 * which is exactly sw_rope_bwd_cpu's arithmetic. */
__global__ void rope_kernel(bf16 *x, const int32_t *pos, const float *inv_freq, bool interleaved, float sgn,
                            long long H, long long D, int hpb) {
    const int half = (int)(D / 2);
    const long long t = blockIdx.x;
    const int i = threadIdx.x % half;
    const long long h = (long long)blockIdx.y * hpb + threadIdx.x / half;
    if (h >= H) return;
    float s, c;
    sincosf((float)pos[t] * inv_freq[i], &s, &c);
    s *= sgn;
    bf16 *v = x + (t * H + h) * D;
    const int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = tof(v[a]), x1 = tof(v[b]);
    v[a] = __float2bfloat16_rn(x0 * c - x1 * s);
    v[b] = __float2bfloat16_rn(x1 * c + x0 * s);
}

extern "C" sw_status sw_rope_cuda(sw_ctx *ctx, int dev, sw_bf16 *x, const int32_t *pos, const float *inv_freq,
                                  bool interleaved, bool inverse, int64_t T, int64_t H, int64_t D) {
    SW_OP_ENTER(ctx, dev);
    const int64_t half = D / 2;
    if (T <= 0 || H <= 0 || half <= 0) return SW_OK;
    if (half > 1024) return sw_err(ctx, SW_EINVAL, "rope: head dim %lld > 2048", (long long)D);
    /* heads per block: fill ~256 threads, never more heads than exist */
    int64_t hpb = half >= 256 ? 1 : 256 / half;
    if (hpb > H) hpb = H;
    const int64_t groups = (H + hpb - 1) / hpb;
    if (groups > 65535) return sw_err(ctx, SW_EINVAL, "rope: too many heads (%lld)", (long long)H);
    dim3 grid((unsigned)T, (unsigned)groups);
    rope_kernel<<<grid, (unsigned)(hpb * half), 0, stream_of(dev)>>>((bf16 *)x, pos, inv_freq, interleaved,
                                                                       inverse ? -1.0f : 1.0f, H, D, (int)hpb);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* ------------------------------------------------------------- SwiGLU */

struct SwigluFwd {
    bf16 *out;
    const bf16 *g, *u;
    template <int N> __device__ void run(long long i) const {
        float gv[N], uv[N], o[N];
        ldv<N>(g + i, gv);
        ldv<N>(u + i, uv);
#pragma unroll
        for (int k = 0; k < N; k++) o[k] = (gv[k] / (1.0f + expf(-gv[k]))) * uv[k]; /* sw_swiglu_cpu */
        stv<N>(out + i, o);
    }
};

struct SwigluBwd {
    bf16 *dg, *du;
    const bf16 *da, *g, *u;
    template <int N> __device__ void run(long long i) const {
        float av[N], gv[N], uv[N], og[N], ou[N];
        ldv<N>(da + i, av);
        ldv<N>(g + i, gv);
        ldv<N>(u + i, uv);
#pragma unroll
        for (int k = 0; k < N; k++) { /* sw_swiglu_bwd_cpu */
            float sig = 1.0f / (1.0f + expf(-gv[k]));
            og[k] = av[k] * uv[k] * sig * (1.0f + gv[k] * (1.0f - sig));
            ou[k] = av[k] * (gv[k] * sig);
        }
        stv<N>(dg + i, og); /* all inputs were read: dg/du may alias da */
        stv<N>(du + i, ou);
    }
};

extern "C" sw_status sw_swiglu_fwd_cuda(sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *g, const sw_bf16 *u,
                                        int64_t n) {
    SW_OP_ENTER(ctx, dev);
    SwigluFwd op{(bf16 *)out, (const bf16 *)g, (const bf16 *)u};
    return ew_launch(ctx, dev, op, n, al16(out) && al16(g) && al16(u));
}

extern "C" sw_status sw_swiglu_bwd_cuda(sw_ctx *ctx, int dev, sw_bf16 *dg, sw_bf16 *du, const sw_bf16 *da,
                                        const sw_bf16 *g, const sw_bf16 *u, int64_t n) {
    SW_OP_ENTER(ctx, dev);
    SwigluBwd op{(bf16 *)dg, (bf16 *)du, (const bf16 *)da, (const bf16 *)g, (const bf16 *)u};
    return ew_launch(ctx, dev, op, n, al16(dg) && al16(du) && al16(da) && al16(g) && al16(u));
}

/* ---------------------------------------------------- embed, add_bias */

/* Rows are grid-strided over blocks; a row is copied bit for bit, 16 bytes
 * at a time when vec. ids are trusted (the caller checked them against V). */
__global__ void embed_kernel(bf16 *out, const bf16 *table, const int32_t *ids, long long T, long long C, bool vec) {
    for (long long t = blockIdx.x; t < T; t += gridDim.x) {
        const bf16 *src = table + (long long)ids[t] * C;
        bf16 *dst = out + t * C;
        if (vec)
            for (long long c = (long long)threadIdx.x * 8; c < C; c += (long long)blockDim.x * 8)
                *(uint4 *)(dst + c) = *(const uint4 *)(src + c);
        else
            for (long long c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
    }
}

extern "C" sw_status sw_embed_cuda(sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *table, const int32_t *ids,
                                   int64_t T, int64_t C) {
    SW_OP_ENTER(ctx, dev);
    if (T <= 0 || C <= 0) return SW_OK;
    const bool vec = C % 8 == 0 && al16(out) && al16(table);
    const unsigned blocks = T < 65535 ? (unsigned)T : 65535u;
    embed_kernel<<<blocks, row_threads(vec ? C / 8 : C), 0, stream_of(dev)>>>((bf16 *)out, (const bf16 *)table, ids,
                                                                             T, C, vec);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* y[t, n] = bf16(y[t, n] + x[t * xs + n]) for n < N; columns N..ldy-1
 * untouched. xs = 0 adds one row to every row (a bias), xs = N a matrix
 * (the residual stream's float32 sums). */
__global__ void add_rows_kernel(bf16 *y, const float *x, long long xs, long long T, long long N, long long ldy,
                                bool vec) {
    for (long long t = blockIdx.x; t < T; t += gridDim.x) {
        bf16 *yr = y + t * ldy;
        const float *xr = x + t * xs;
        if (vec) {
            for (long long c = (long long)threadIdx.x * 8; c < N; c += (long long)blockDim.x * 8) {
                float v[8], xv[8];
                ldv<8>(yr + c, v);
                ldv<8>(xr + c, xv);
#pragma unroll
                for (int k = 0; k < 8; k++) v[k] += xv[k];
                stv<8>(yr + c, v);
            }
        } else {
            for (long long c = threadIdx.x; c < N; c += blockDim.x) yr[c] = __float2bfloat16_rn(tof(yr[c]) + xr[c]);
        }
    }
}

static sw_status add_rows(sw_ctx *ctx, int dev, sw_bf16 *y, const float *x, int64_t xs, int64_t T, int64_t N,
                          int64_t ldy) {
    SW_OP_ENTER(ctx, dev);
    if (T <= 0 || N <= 0) return SW_OK;
    const bool vec = N % 8 == 0 && ldy % 8 == 0 && xs % 8 == 0 && al16(y) && al16(x);
    const unsigned blocks = T < 65535 ? (unsigned)T : 65535u;
    add_rows_kernel<<<blocks, row_threads(vec ? N / 8 : N), 0, stream_of(dev)>>>((bf16 *)y, x, xs, T, N, ldy, vec);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

extern "C" sw_status sw_add_bias_cuda(sw_ctx *ctx, int dev, sw_bf16 *y, const float *b, int64_t T, int64_t N,
                                      int64_t ldy) {
    return add_rows(ctx, dev, y, b, 0, T, N, ldy);
}

extern "C" sw_status sw_residual_add_cuda(sw_ctx *ctx, int dev, sw_bf16 *y, const float *x, int64_t T, int64_t N,
                                          int64_t ldy) {
    return add_rows(ctx, dev, y, x, N, T, N, ldy);
}

/* ------------------------------------------------------------ dropout */

/* core/train.c's hash4, bit for bit (64-bit integer arithmetic). */
__device__ __forceinline__ uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ b * 0xbf58476d1ce4e5b9ull ^ c * 0x94d049bb133111ebull ^ d;
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    return x ^ (x >> 32);
}

template <typename O, bool ADD> struct Dropout {
    O *out;
    const bf16 *x;
    uint64_t seed, call, which, first, cut;
    float keep;
    template <int N> __device__ void run(long long i) const {
        float v[N];
        ldv<N>(x + i, v);
#pragma unroll
        for (int k = 0; k < N; k++) {
            uint64_t h = hash4(seed, call, which, first + (uint64_t)(i + k));
            v[k] = h < cut ? 0.0f : v[k] * keep;
            if (ADD) v[k] += (float)out[i + k];
        }
#pragma unroll
        for (int k = 0; k < N; k++) out[i + k] = (O)v[k];
    }
};

extern "C" sw_status sw_dropout_cuda(sw_ctx *ctx, int dev, void *out, sw_dtype out_t, bool add, const sw_bf16 *x,
                                     float p, uint64_t seed, uint64_t call, uint64_t which, uint64_t first, int64_t n) {
    SW_OP_ENTER(ctx, dev);
    /* keep and cut as lora_input computes them from the (double) dropout;
     * p <= 0 copies, p >= 1 (undefined there) drops everything. */
    uint64_t cut = 0;
    float keep = 1.0f;
    if (p >= 1.0f) {
        cut = UINT64_MAX;
        keep = 0.0f;
    } else if (p > 0.0f) {
        keep = (float)(1.0 / (1.0 - (double)p));
        cut = (uint64_t)((double)p * 18446744073709551615.0);
    }
    if (out_t != SW_BF16 && out_t != SW_F32) return sw_err(ctx, SW_EINVAL, "dropout: out must be bf16 or f32");
    const bool vec = al16(x) && al16(out);
    if (out_t == SW_F32) {
        if (add) return ew_launch(ctx, dev, Dropout<float, true>{(float *)out, (const bf16 *)x, seed, call, which, first, cut, keep}, n, vec);
        return ew_launch(ctx, dev, Dropout<float, false>{(float *)out, (const bf16 *)x, seed, call, which, first, cut, keep}, n, vec);
    }
    if (add) return ew_launch(ctx, dev, Dropout<bf16, true>{(bf16 *)out, (const bf16 *)x, seed, call, which, first, cut, keep}, n, vec);
    return ew_launch(ctx, dev, Dropout<bf16, false>{(bf16 *)out, (const bf16 *)x, seed, call, which, first, cut, keep}, n, vec);
}
