/* attention_bwd.cu — flash-attention-2 style backward over packed samples
 * (sw_attn_bwd_cuda, sw_attn_bwd_ws_bytes, gpu_ops.h).
 *
 * 1. delta[h][i] = sum_d dout[i,h,d] * out[i,h,d] (float32, workspace).
 * 2. A block owns BN = 64 keys of one kv head of one sample (4 warps, 16
 *    keys each) and loops over the query heads of its group and the query
 *    tiles that can see its keys, recomputing P^T = exp(K Q^T * scale - lse)
 *    from the forward's lse. dK and dV stay in float32 registers for the
 *    whole loop, so GQA's sum over the group needs no atomics and they are
 *    written once. dQ takes contributions from every key tile, so it is
 *    accumulated with float32 atomics in the workspace (zeroed first).
 * 3. dq = bf16(workspace).
 * Work per block is proportional to the queries that see its keys: the first
 * key tiles of a sample are the heaviest and are launched first.
 */
#include "attention.cuh"
#include "common.cuh"

extern "C" {
#include "../gpu_ops.h"
}

using namespace swattn;

namespace {

constexpr int BWD_BN = 64, BWD_BM = 64, BWD_THREADS = 128;

template <int D>
constexpr int bwd_smem_bytes() {
    /* K, V (BN rows), Q, dO (BM rows), dS^T (BN x BM+8), lse and delta (BM each) */
    return (2 * BWD_BN + 2 * BWD_BM) * (D + 8) * 2 + BWD_BN * (BWD_BM + 8) * 2 + 2 * BWD_BM * 4;
}

/* One warp per (row, head): delta = dot(dout, out) in float32. */
__global__ void attn_delta_kernel(float *__restrict__ delta, const bf16 *__restrict__ dout,
                                  const bf16 *__restrict__ out, long long T, int Hq, int D) {
    const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (w >= T * Hq) return;
    const long long row = w / Hq;
    const int h = (int)(w % Hq);
    const __nv_bfloat162 *a = reinterpret_cast<const __nv_bfloat162 *>(dout + w * D);
    const __nv_bfloat162 *b = reinterpret_cast<const __nv_bfloat162 *>(out + w * D);
    float acc = 0.0f;
    for (int i = lane; i < D / 2; i += 32) {
        float2 x = __bfloat1622float2(a[i]), y = __bfloat1622float2(b[i]);
        acc += x.x * y.x + x.y * y.y;
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) delta[(long long)h * T + row] = acc;
}

__global__ void f32_to_bf16_kernel(bf16 *__restrict__ dst, const float *__restrict__ src, long long n) {
    /* n is a multiple of 4 (D >= 16): float4 in, 4 bf16 out. */
    const long long n4 = n / 4;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4; i += (long long)gridDim.x * blockDim.x) {
        float4 x = reinterpret_cast<const float4 *>(src)[i];
        uint2 y = make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
        reinterpret_cast<uint2 *>(dst)[i] = y;
    }
}

__device__ __forceinline__ void atomic_add2(float *p, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2 *>(p), make_float2(a, b));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

template <int D>
__global__ void __launch_bounds__(BWD_THREADS, D <= 64 ? 3 : 2)
    attn_bwd_kernel(bf16 *__restrict__ dk, bf16 *__restrict__ dv, float *__restrict__ dq_ws,
                    const float *__restrict__ delta, const bf16 *__restrict__ dout, const float *__restrict__ lse,
                    const bf16 *__restrict__ q, const bf16 *__restrict__ k, const bf16 *__restrict__ v,
                    const int32_t *__restrict__ cu, int T, int Hq, int Hkv, int window, float scale,
                    float scale_log2) {
    constexpr int BN = BWD_BN, BM = BWD_BM, LD = D + 8, LDS = BM + 8, KD = D / 16, NT = BM / 8, DT = D / 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *sK = reinterpret_cast<bf16 *>(smem), *sV = sK + BN * LD, *sQ = sV + BN * LD, *sO = sQ + BM * LD;
    bf16 *sS = sO + BM * LD; /* dS^T, [key][query] */
    float *sL = reinterpret_cast<float *>(sS + BN * LDS), *sDelta = sL + BM;

    const int s = blockIdx.z, kvh = blockIdx.y;
    const int start = cu[s], len = cu[s + 1] - start;
    const int k0 = blockIdx.x * BN;
    if (k0 >= len) return;
    const int group = Hq / Hkv;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const long long qs = (long long)Hq * D, ks = (long long)Hkv * D;

    /* Query tiles that see keys k0..k0+BN-1: from the diagonal to the window's end. */
    const int qt_lo = k0 / BM;
    const int q_hi = window > 0 ? min(len - 1, k0 + BN - 1 + window - 1) : len - 1;
    const int nqt = q_hi / BM - qt_lo + 1, steps = group * nqt;

    load_tile<D, BN, BWD_THREADS>(sK, k + (long long)start * ks + (long long)kvh * D, ks, k0, len);
    load_tile<D, BN, BWD_THREADS>(sV, v + (long long)start * ks + (long long)kvh * D, ks, k0, len);

    /* Stage the Q, dO, lse, delta of step `it` (head h, query tile qt). Rows
     * past the sample get lse = +inf, so their P is exactly 0. */
    auto stage = [&](int it) {
        const int h = kvh * group + it / nqt, q0 = (qt_lo + it % nqt) * BM;
        load_tile<D, BM, BWD_THREADS>(sQ, q + (long long)start * qs + (long long)h * D, qs, q0, len);
        load_tile<D, BM, BWD_THREADS>(sO, dout + (long long)start * qs + (long long)h * D, qs, q0, len);
        for (int i = threadIdx.x; i < BM; i += BWD_THREADS) {
            const bool ok = q0 + i < len;
            const long long at = (long long)h * T + start + q0 + i;
            sL[i] = ok ? lse[at] * LOG2E : INFINITY;
            sDelta[i] = ok ? delta[at] : 0.0f;
        }
    };
    stage(0);
    cp_async_commit();

    float dka[DT][4], dva[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[i][e] = dva[i][e] = 0.0f;
    const int key_a = k0 + warp * 16 + g, key_b = key_a + 8; /* this thread's two keys */

    for (int it = 0; it < steps; it++) {
        const int h = kvh * group + it / nqt, q0 = (qt_lo + it % nqt) * BM;
        cp_async_wait<0>();
        __syncthreads();

        /* S^T = K Q^T (16 keys x BM queries per warp). */
        float sc[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++) sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t ka[4];
            ldsm_x4(ka, sK + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int n2 = 0; n2 < NT / 2; n2++) {
                uint32_t b[4];
                ldsm_x4(b, sQ + (n2 * 16 + lane % 8 + (lane / 16) * 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
                mma16816(sc[2 * n2], ka, b[0], b[1]);
                mma16816(sc[2 * n2 + 1], ka, b[2], b[3]);
            }
        }

        /* P^T from lse, masked entries 0, kept only as packed bf16 A fragments:
         * float P and float dP^T together would not fit in registers beside
         * the dK, dV accumulators at D = 128. */
        const bool need_mask = q0 < k0 + BN - 1 || (window > 0 && q0 + BM - 1 - window >= k0);
        uint32_t pa[BM / 16][4];
#pragma unroll
        for (int i = 0; i < NT; i++) {
            const float2 lq = *reinterpret_cast<const float2 *>(sL + i * 8 + 2 * t);
            float p[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                p[e] = fast_exp2(sc[i][e] * scale_log2 - ((e & 1) ? lq.y : lq.x));
                if (need_mask && !visible(q0 + i * 8 + 2 * t + (e & 1), e < 2 ? key_a : key_b, window)) p[e] = 0.0f;
            }
            pa[i / 2][(i % 2) * 2] = pack_bf16(p[0], p[1]);
            pa[i / 2][(i % 2) * 2 + 1] = pack_bf16(p[2], p[3]);
        }

        /* dV += P^T dO */
#pragma unroll
        for (int kk = 0; kk < BM / 16; kk++)
#pragma unroll
            for (int d2 = 0; d2 < D / 16; d2++) {
                uint32_t b[4];
                ldsm_x4_t(b, sO + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * LD + d2 * 16 + (lane / 16) * 8);
                mma16816(dva[2 * d2], pa[kk], b[0], b[1]);
                mma16816(dva[2 * d2 + 1], pa[kk], b[2], b[3]);
            }

        /* dP^T = V dO^T */
        float dp[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++) dp[i][0] = dp[i][1] = dp[i][2] = dp[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t va[4];
            ldsm_x4(va, sV + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int n2 = 0; n2 < NT / 2; n2++) {
                uint32_t b[4];
                ldsm_x4(b, sO + (n2 * 16 + lane % 8 + (lane / 16) * 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
                mma16816(dp[2 * n2], va, b[0], b[1]);
                mma16816(dp[2 * n2 + 1], va, b[2], b[3]);
            }
        }

        /* dS^T = P^T (dP^T - delta) * scale (P as rounded for the dV product);
         * dK += dS^T Q; dS^T also goes to shared memory for dQ = dS K. */
#pragma unroll
        for (int kk = 0; kk < BM / 16; kk++) {
            uint32_t sa[4];
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int i = 2 * kk + half;
                const float2 dq2 = *reinterpret_cast<const float2 *>(sDelta + i * 8 + 2 * t);
                const float2 p01 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&pa[kk][half * 2]));
                const float2 p23 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&pa[kk][half * 2 + 1]));
                sa[half * 2] = pack_bf16(p01.x * (dp[i][0] - dq2.x) * scale, p01.y * (dp[i][1] - dq2.y) * scale);
                sa[half * 2 + 1] = pack_bf16(p23.x * (dp[i][2] - dq2.x) * scale, p23.y * (dp[i][3] - dq2.y) * scale);
            }
#pragma unroll
            for (int d2 = 0; d2 < D / 16; d2++) {
                uint32_t b[4];
                ldsm_x4_t(b, sQ + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * LD + d2 * 16 + (lane / 16) * 8);
                mma16816(dka[2 * d2], sa, b[0], b[1]);
                mma16816(dka[2 * d2 + 1], sa, b[2], b[3]);
            }
            bf16 *row_a = sS + (warp * 16 + g) * LDS, *row_b = row_a + 8 * LDS;
            *reinterpret_cast<uint32_t *>(row_a + (2 * kk) * 8 + 2 * t) = sa[0];
            *reinterpret_cast<uint32_t *>(row_b + (2 * kk) * 8 + 2 * t) = sa[1];
            *reinterpret_cast<uint32_t *>(row_a + (2 * kk + 1) * 8 + 2 * t) = sa[2];
            *reinterpret_cast<uint32_t *>(row_b + (2 * kk + 1) * 8 + 2 * t) = sa[3];
        }
        __syncthreads(); /* sQ, sO, sL are free; sS is complete */
        if (it + 1 < steps) stage(it + 1);
        cp_async_commit();

        /* dQ (BM x D) += dS K: warp w takes queries w*16..w*16+15, in column
         * chunks of at most 64 to bound registers, and adds them atomically. */
        const int qa_row = q0 + warp * 16 + g, qb_row = qa_row + 8;
        float *dqg = dq_ws + (long long)start * qs + (long long)h * D;
        constexpr int DC = D < 64 ? D : 64;
#pragma unroll
        for (int dc = 0; dc < D; dc += DC) {
            float acc[DC / 8][4];
#pragma unroll
            for (int i = 0; i < DC / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[4];
                ldsm_x4_t(a, sS + (kk * 16 + lane % 8 + (lane / 16) * 8) * LDS + warp * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
                for (int d2 = 0; d2 < DC / 16; d2++) {
                    uint32_t b[4];
                    ldsm_x4_t(b, sK + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * LD + dc + d2 * 16 + (lane / 16) * 8);
                    mma16816(acc[2 * d2], a, b[0], b[1]);
                    mma16816(acc[2 * d2 + 1], a, b[2], b[3]);
                }
            }
#pragma unroll
            for (int i = 0; i < DC / 8; i++) {
                const int col = dc + i * 8 + 2 * t;
                if (qa_row < len) atomic_add2(dqg + (long long)qa_row * qs + col, acc[i][0], acc[i][1]);
                if (qb_row < len) atomic_add2(dqg + (long long)qb_row * qs + col, acc[i][2], acc[i][3]);
            }
        }
    }

    bf16 *dkg = dk + (long long)start * ks + (long long)kvh * D, *dvg = dv + (long long)start * ks + (long long)kvh * D;
#pragma unroll
    for (int i = 0; i < DT; i++) {
        const int col = i * 8 + 2 * t;
        if (key_a < len) {
            *reinterpret_cast<uint32_t *>(dkg + (long long)key_a * ks + col) = pack_bf16(dka[i][0], dka[i][1]);
            *reinterpret_cast<uint32_t *>(dvg + (long long)key_a * ks + col) = pack_bf16(dva[i][0], dva[i][1]);
        }
        if (key_b < len) {
            *reinterpret_cast<uint32_t *>(dkg + (long long)key_b * ks + col) = pack_bf16(dka[i][2], dka[i][3]);
            *reinterpret_cast<uint32_t *>(dvg + (long long)key_b * ks + col) = pack_bf16(dva[i][2], dva[i][3]);
        }
    }
}

template <int D>
cudaError_t launch_bwd(bf16 *dk, bf16 *dv, float *dq_ws, const float *delta, const bf16 *dout, const float *lse,
                       const bf16 *q, const bf16 *k, const bf16 *v, const int32_t *cu, int n_seqs, int max_len,
                       int T, int window, int Hq, int Hkv, cudaStream_t st) {
    constexpr int smem = bwd_smem_bytes<D>();
    /* Raised once per device (see launch_fwd in attention_fwd.cu). */
    static bool raised[64];
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 0 || dev >= 64 || !raised[dev]) {
        cudaError_t e = cudaFuncSetAttribute(attn_bwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
        if (dev >= 0 && dev < 64) raised[dev] = true;
    }
    dim3 grid((max_len + BWD_BN - 1) / BWD_BN, Hkv, n_seqs);
    const float scale = 1.0f / sqrtf((float)D);
    attn_bwd_kernel<D><<<grid, BWD_THREADS, smem, st>>>(dk, dv, dq_ws, delta, dout, lse, q, k, v, cu, T, Hq, Hkv,
                                                         window, scale, scale * LOG2E);
    return cudaGetLastError();
}

} // namespace

extern "C" size_t sw_attn_bwd_ws_bytes(int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
    (void)Hkv;
    /* dQ accumulator (T, Hq, D) float32, then delta (Hq, T) float32. */
    return (size_t)T * (size_t)Hq * (size_t)D * 4 + (size_t)Hq * (size_t)T * 4;
}

extern "C" sw_status sw_attn_bwd_cuda(sw_ctx *ctx, int dev, sw_bf16 *dq, sw_bf16 *dk, sw_bf16 *dv,
                                      const sw_bf16 *dout, const sw_bf16 *out, const float *lse, const sw_bf16 *q,
                                      const sw_bf16 *k, const sw_bf16 *v, const int32_t *cu, int n_seqs,
                                      int64_t max_len, int64_t T, int64_t window, int64_t Hq, int64_t Hkv,
                                      int64_t D, void *ws) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    if (Hkv <= 0 || Hq % Hkv || n_seqs < 0 || max_len < 0 || T < 0 || T > INT32_MAX || max_len > T)
        return sw_err(ctx, SW_EINVAL, "attn_bwd: bad shape (T %lld, max_len %lld, Hq %lld, Hkv %lld)",
                      (long long)T, (long long)max_len, (long long)Hq, (long long)Hkv);
    if (D != 16 && D != 32 && D != 64 && D != 128)
        return sw_err(ctx, SW_EUNSUPPORTED, "attn_bwd: head dim %lld (supported: 16, 32, 64, 128)", (long long)D);
    if (T == 0 || Hq == 0) return SW_OK;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t st = (cudaStream_t)sw_cuda_stream(dev);
    float *dq_ws = (float *)ws, *delta = dq_ws + T * Hq * D;
    const long long n = T * Hq * D;
    SW_CUDA_CHECK(ctx, dev, cudaMemsetAsync(dq_ws, 0, (size_t)n * 4, st));
    if (n_seqs > 0 && max_len > 0) {
        const long long rows = T * Hq;
        attn_delta_kernel<<<(unsigned)((rows + 7) / 8), 256, 0, st>>>(delta, (const bf16 *)dout, (const bf16 *)out,
                                                                       T, (int)Hq, (int)D);
        SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
        int win = window > 0 && window < max_len ? (int)window : 0;
        const bf16 *qb = (const bf16 *)q, *kb = (const bf16 *)k, *vb = (const bf16 *)v, *ob = (const bf16 *)dout;
        bf16 *dkb = (bf16 *)dk, *dvb = (bf16 *)dv;
        cudaError_t e = cudaSuccess;
        switch (D) {
        case 16: e = launch_bwd<16>(dkb, dvb, dq_ws, delta, ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
        case 32: e = launch_bwd<32>(dkb, dvb, dq_ws, delta, ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
        case 64: e = launch_bwd<64>(dkb, dvb, dq_ws, delta, ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
        case 128: e = launch_bwd<128>(dkb, dvb, dq_ws, delta, ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
        }
        SW_CUDA_CHECK(ctx, dev, e);
    }
    f32_to_bf16_kernel<<<sw_cuda_blocks(n / 4, 256), 256, 0, st>>>((bf16 *)dq, dq_ws, n);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}
