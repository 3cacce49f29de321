/* loss.cu — cross-entropy over rows of float32 logits (gpu_ops.h), the CUDA
 * twin of core/train.c's head_loss arithmetic.
 *
 * One block per row. Pass 1 keeps a running (max m, sum s of exp(x - m))
 * per thread — the "online softmax" — so the row is read once for the loss;
 * the pairs are merged across the block with warp shuffles. Pass 2, only
 * when a gradient is wanted, reads the row again and writes
 * bf16(dscale * (exp(x - m) / s - onehot)). With V ~ 152k a row is 600 KB:
 * it cannot stay in shared memory, so the second read comes from L2/HBM.
 *
 * Rows whose target lies outside [0, V) (the -1 / -100 "ignore" rows) get
 * loss 0 and an all-zero gradient row.
 *
 * In place (dlogits == logits): row r's bf16 gradient goes into the first
 * half of row r's own float storage, i.e. at (sw_bf16 *)(logits + r * V),
 * so the caller reads it with a leading dimension of 2 * V bf16 elements.
 * Writing bf16 element v clobbers float element v / 2, which this block has
 * read already as long as tiles are processed in order with a barrier between
 * a tile's reads and its writes (see ce_kernel).
 */
#include <cuda_bf16.h>
#include <float.h>
#include <stdint.h>
#include "common.cuh"
#include "../gpu_ops.h"

typedef __nv_bfloat16 bf16;

/* Merge (m2, s2) into (m, s): both sums rescaled to the larger max. m starts
 * at -FLT_MAX, not -inf, so exp(m - mx) never sees -inf - -inf; NaN logits
 * never raise m (comparisons are false) but turn s into NaN, so the loss of
 * a row holding a NaN is NaN. */
__device__ __forceinline__ void ms_merge(float &m, float &s, float m2, float s2) {
    const float mx = fmaxf(m, m2);
    /* _rn: no FMA contraction, so merge(a, b) and merge(b, a) give the same
     * bits and the butterflies below leave every lane with the same (m, s) */
    s = __fadd_rn(__fmul_rn(s, expf(m - mx)), __fmul_rn(s2, expf(m2 - mx)));
    m = mx;
}

/* Block-wide merge, result in every thread (identical bits everywhere: the
 * last step is the same butterfly over the same shared values in each warp).
 * blockDim.x a multiple of 32, not necessarily a power of two. */
__device__ void block_ms(float &m, float &s) {
    __shared__ float pm[32], ps[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        ms_merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    if (lane == 0) {
        pm[warp] = m;
        ps[warp] = s;
    }
    __syncthreads();
    m = lane < nw ? pm[lane] : -FLT_MAX;
    s = lane < nw ? ps[lane] : 0.0f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        ms_merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
}

/* vec: V % 4 == 0 and the row starts are 16-byte aligned (float4 reads,
 * 8-byte bf16 writes). alias: dlogits == logits, layout as above. */
__global__ void ce_kernel(float *loss, bf16 *dlogits, const float *logits, const int32_t *target, float dscale,
                          long long V, bool vec, bool alias) {
    const long long row = blockIdx.x;
    const float *x = logits + row * V;
    const int32_t tg = target[row];
    const bool valid = tg >= 0 && tg < V;

    float xt = 0.0f; /* the target's logit, read before any write below */
    if (threadIdx.x == 0 && valid) xt = x[tg];

    float m = -FLT_MAX, s = 0.0f;
    if (vec) {
        for (long long i = (long long)threadIdx.x * 4; i < V; i += (long long)blockDim.x * 4) {
            const float4 a = *(const float4 *)(x + i);
            const float lm = fmaxf(fmaxf(a.x, a.y), fmaxf(a.z, a.w));
            if (lm > m) {
                s *= expf(m - lm);
                m = lm;
            }
            s += expf(a.x - m) + expf(a.y - m) + expf(a.z - m) + expf(a.w - m);
        }
    } else {
        for (long long i = threadIdx.x; i < V; i += blockDim.x) {
            const float v = x[i];
            if (v > m) {
                s *= expf(m - v);
                m = v;
            }
            s += expf(v - m);
        }
    }
    block_ms(m, s); /* contains a barrier: the whole row has been read */

    if (threadIdx.x == 0) loss[row] = valid ? m + logf(s) - xt : 0.0f;
    if (!dlogits) return;

    /* d loss / d x = softmax - onehot, times dscale; as head_loss: e * (dscale / s), then - dscale at the target */
    bf16 *o = alias ? (bf16 *)(logits + row * V) : dlogits + row * V;
    const float k = dscale / s;
    /* Tiles in order. A tile of B elements starting at base writes bf16
     * [base, base + B), i.e. the bytes of floats [base/2, (base + B)/2):
     * for base > 0 those lie in earlier tiles, already read before an
     * earlier barrier; for base == 0 they lie in this tile, hence the
     * barrier between reading and writing a tile (aliased case only; the
     * loop bounds are uniform, so every thread reaches it). */
    const int per = vec ? 4 : 1;
    const long long tile = (long long)blockDim.x * per;
    for (long long base = 0; base < V; base += tile) {
        const long long i = base + (long long)threadIdx.x * per;
        float g[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const bool in = i < V;
        if (in && valid) {
            if (vec) {
                const float4 a = *(const float4 *)(x + i);
                g[0] = expf(a.x - m) * k;
                g[1] = expf(a.y - m) * k;
                g[2] = expf(a.z - m) * k;
                g[3] = expf(a.w - m) * k;
            } else {
                g[0] = expf(x[i] - m) * k;
            }
#pragma unroll
            for (int q = 0; q < 4; q++)
                if (q < per && i + q == tg) g[q] -= dscale;
        }
        if (alias) __syncthreads();
        if (in) {
            if (vec) {
                uint2 u;
                __nv_bfloat162 *h = (__nv_bfloat162 *)&u;
                h[0] = __floats2bfloat162_rn(g[0], g[1]);
                h[1] = __floats2bfloat162_rn(g[2], g[3]);
                *(uint2 *)(o + i) = u;
            } else {
                o[i] = __float2bfloat16_rn(g[0]);
            }
        }
    }
}

extern "C" sw_status sw_cross_entropy_cuda(sw_ctx *ctx, int dev, float *loss, sw_bf16 *dlogits, const float *logits,
                                           const int32_t *target, float dscale, int64_t rows, int64_t V) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (rows <= 0) return SW_OK;
    if (V <= 0) return sw_err(ctx, SW_EINVAL, "cross_entropy: empty vocabulary");
    if (rows > 0x7fffffffLL) return sw_err(ctx, SW_EINVAL, "cross_entropy: too many rows");
    const bool alias = (const void *)dlogits == (const void *)logits;
    const bool vec = V % 4 == 0 && ((uintptr_t)logits & 15) == 0 && ((uintptr_t)dlogits & 7) == 0;
    long long units = vec ? V / 4 : V;
    unsigned threads = units >= 512 ? 512u : (unsigned)((units + 31) / 32 * 32);
    ce_kernel<<<(unsigned)rows, threads, 0, (cudaStream_t)sw_cuda_stream(dev)>>>(
        loss, (bf16 *)dlogits, logits, target, dscale, V, vec, alias);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}
