/* optim.cu — the optimizer's device ops (gpu_ops.h): a deterministic sum of
 * squares for the gradient norm, and AdamW / SGD over flat float32 arrays.
 *
 * The updates repeat core/optim.c's float32 arithmetic element for element:
 * the scalar coefficients are formed on the host in double exactly as
 * sw_optim_update does and passed as floats, and the kernels spell every
 * operation with an _rn intrinsic so nvcc cannot fuse a multiply and an add
 * into an FMA (which would round once instead of twice and drift from the
 * CPU by an ulp). The results are then bit-identical to the CPU loop.
 */
#include <math.h>
#include <stdint.h>
#include "common.cuh"
#include "../gpu_ops.h"

static inline cudaStream_t stream_of(int dev) { return (cudaStream_t)sw_cuda_stream(dev); }
static inline bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

#define SW_OP_ENTER(ctx, dev)                                    \
    do {                                                         \
        if (sw_cuda_usable((ctx), (dev))) return (ctx)->status;  \
        SW_CUDA_CHECK((ctx), (dev), cudaSetDevice(dev));         \
    } while (0)

/* ------------------------------------------------------------- sumsq */

/* Pass 1: SUMSQ_BLOCKS (or fewer, by n alone) blocks each sum a fixed
 * grid-strided subset in double and leave one partial; pass 2: one block
 * adds the partials. Which thread sees which element depends only on n
 * (plain 4-byte loads, never a choice by alignment), and every reduction is
 * a fixed tree, so the same data gives the same bits every time.
 * The partials live in a per-device global: calls on one device are
 * serialized on its stream. */
#define SUMSQ_THREADS 256
#define SUMSQ_BLOCKS 1024
__device__ double sw_sumsq_partial[SUMSQ_BLOCKS];

__device__ double block_sum_d(double v) {
    __shared__ double part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void sumsq_partial_kernel(const float *x, long long n) {
    double acc = 0.0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        const double v = x[i];
        acc += v * v;
    }
    acc = block_sum_d(acc);
    if (threadIdx.x == 0) sw_sumsq_partial[blockIdx.x] = acc;
}

__global__ void sumsq_final_kernel(double *out, int nparts) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) acc += sw_sumsq_partial[i];
    acc = block_sum_d(acc);
    if (threadIdx.x == 0) out[0] = acc;
}

extern "C" sw_status sw_sumsq_cuda(sw_ctx *ctx, int dev, double *out, const float *x, int64_t n) {
    SW_OP_ENTER(ctx, dev);
    long long blocks = (n + SUMSQ_THREADS - 1) / SUMSQ_THREADS;
    if (blocks < 1) blocks = 1; /* n == 0 still writes out[0] = 0 */
    if (blocks > SUMSQ_BLOCKS) blocks = SUMSQ_BLOCKS;
    cudaStream_t st = stream_of(dev);
    sumsq_partial_kernel<<<(unsigned)blocks, SUMSQ_THREADS, 0, st>>>(x, n > 0 ? n : 0);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    sumsq_final_kernel<<<1, SUMSQ_THREADS, 0, st>>>(out, (int)blocks);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* ----------------------------------------------------- AdamW and SGD */

/* Elementwise driver as in layers.cu, 4 floats (16 bytes) per access when
 * every array is aligned: op.run<4>(i) / op.run<1>(i). */
template <int N> __device__ __forceinline__ void ld(const float *p, float *v) {
    if constexpr (N == 4) {
        const float4 a = *(const float4 *)p;
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    } else {
        v[0] = p[0];
    }
}
template <int N> __device__ __forceinline__ void st(float *p, const float *v) {
    if constexpr (N == 4) *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
    else p[0] = v[0];
}

template <typename Op> __global__ void ew4_kernel(Op op, long long n, bool vec) {
    const long long gid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long nv = vec ? n / 4 : 0;
    for (long long j = gid; j < nv; j += stride) op.template run<4>(j * 4);
    for (long long i = nv * 4 + gid; i < n; i += stride) op.template run<1>(i);
}

template <typename Op> static sw_status ew4_launch(sw_ctx *ctx, int dev, const Op &op, long long n, bool vec) {
    if (n <= 0) return SW_OK;
    ew4_kernel<<<sw_cuda_blocks(vec ? (n + 3) / 4 : n, 256), 256, 0, stream_of(dev)>>>(op, n, vec);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* sw_optim_update's AdamW line by line, g first scaled by gscale as
 * sw_optim_clip scales it in place:
 *   p = p decay;  m = m + w1 (g - m);  v = v b2 + w2 g^2;
 *   p = p + (-step_size) (m / (sqrt(v) / bc2s + eps)) */
struct AdamW {
    float *p, *m, *v;
    const float *g;
    float gscale, decay, w1, b2, w2, nstep, bc2s, eps;
    template <int N> __device__ void run(long long i) const {
        float pv[N], gv[N], mv[N], vv[N];
        ld<N>(p + i, pv);
        ld<N>(g + i, gv);
        ld<N>(m + i, mv);
        ld<N>(v + i, vv);
#pragma unroll
        for (int k = 0; k < N; k++) {
            const float gg = __fmul_rn(gv[k], gscale);
            float pp = __fmul_rn(pv[k], decay);
            mv[k] = __fadd_rn(mv[k], __fmul_rn(w1, __fsub_rn(gg, mv[k])));
            vv[k] = __fadd_rn(__fmul_rn(vv[k], b2), __fmul_rn(w2, __fmul_rn(gg, gg)));
            const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv[k]), bc2s), eps);
            pv[k] = __fadd_rn(pp, __fmul_rn(nstep, __fdiv_rn(mv[k], denom)));
        }
        st<N>(p + i, pv);
        st<N>(m + i, mv);
        st<N>(v + i, vv);
    }
};

extern "C" sw_status sw_adamw_cuda(sw_ctx *ctx, int dev, float *p, const float *g, float *m, float *v, int64_t n,
                                   float gscale, double lr, double beta1, double beta2, double eps, double wd,
                                   int64_t step) {
    SW_OP_ENTER(ctx, dev);
    if (step < 1) return sw_err(ctx, SW_EINVAL, "adamw: step must be >= 1 (got %lld)", (long long)step);
    /* the coefficients exactly as sw_optim_update forms them */
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    AdamW op;
    op.p = p;
    op.m = m;
    op.v = v;
    op.g = g;
    op.gscale = gscale;
    op.decay = (float)(1.0 - lr * wd);
    op.w1 = (float)(1.0 - beta1);
    op.b2 = (float)beta2;
    op.w2 = (float)(1.0 - beta2);
    op.nstep = -(float)(lr / bc1);
    op.bc2s = (float)sqrt(bc2);
    op.eps = (float)eps;
    return ew4_launch(ctx, dev, op, n, al16(p) && al16(g) && al16(m) && al16(v));
}

/* sw_optim_update's SGD: d = g + wd p (when wd != 0); with momentum
 * buf = step 1 ? d : buf mu + d, d = buf; p = p - lr d. */
struct Sgd {
    float *p, *buf;
    const float *g;
    float gscale, wd, mu, lr;
    bool first;
    template <int N> __device__ void run(long long i) const {
        float pv[N], gv[N], bv[N];
        ld<N>(p + i, pv);
        ld<N>(g + i, gv);
        if (buf) ld<N>(buf + i, bv);
#pragma unroll
        for (int k = 0; k < N; k++) {
            const float gg = __fmul_rn(gv[k], gscale);
            float d = wd != 0.0f ? __fadd_rn(gg, __fmul_rn(wd, pv[k])) : gg;
            if (buf) {
                bv[k] = first ? d : __fadd_rn(__fmul_rn(bv[k], mu), d);
                d = bv[k];
            }
            pv[k] = __fsub_rn(pv[k], __fmul_rn(lr, d));
        }
        st<N>(p + i, pv);
        if (buf) st<N>(buf + i, bv);
    }
};

extern "C" sw_status sw_sgd_cuda(sw_ctx *ctx, int dev, float *p, const float *g, float *buf, int64_t n, float gscale,
                                 double lr, double momentum, double wd, int64_t step) {
    SW_OP_ENTER(ctx, dev);
    Sgd op;
    op.p = p;
    op.buf = momentum > 0 ? buf : NULL; /* momentum 0: optim.c keeps no buffer */
    op.g = g;
    op.gscale = gscale;
    op.wd = (float)wd;
    op.mu = (float)momentum;
    op.lr = (float)lr;
    op.first = step == 1;
    return ew4_launch(ctx, dev, op, n, al16(p) && al16(g) && (op.buf == NULL || al16(op.buf)));
}
