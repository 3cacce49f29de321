/* attention_fwd.cu — flash-attention-2 style forward over packed samples
 * (sw_attn_fwd_cuda, gpu_ops.h).
 *
 * A block owns BM = 64 query rows of one head of one sample (4 warps, 16
 * rows each) and walks the key tiles those rows can see, keeping a running
 * max m, running sum l and the output O in float32 registers (online
 * softmax); the score matrix never exists in memory. Key tiles wholly above
 * the diagonal or wholly before the window are never loaded, so causal
 * costs about half of dense and a window costs O(window) per query.
 *
 * Loads overlap compute the FA2 way with one K and one V buffer: V(j) is
 * fetched while S = Q K(j)^T is computed, K(j+1) while O += P V(j) is.
 */
#include "attention.cuh"
#include "common.cuh"

extern "C" {
#include "../gpu_ops.h"
}

using namespace swattn;

namespace {

constexpr int FWD_BM = 64, FWD_BN = 64, FWD_THREADS = 128;

template <int D>
constexpr int fwd_smem_bytes() {
    return (FWD_BM + 2 * FWD_BN) * (D + 8) * 2;
}

template <int D>
__global__ void __launch_bounds__(FWD_THREADS, 2)
    attn_fwd_kernel(bf16 *__restrict__ out, float *__restrict__ lse, const bf16 *__restrict__ q,
                    const bf16 *__restrict__ k, const bf16 *__restrict__ v, const int32_t *__restrict__ cu, int T,
                    int Hq, int Hkv, int window, float scale_log2) {
    constexpr int BM = FWD_BM, BN = FWD_BN, LD = D + 8, KD = D / 16, NT = BN / 8, DT = D / 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sK = sQ + BM * LD, *sV = sK + BN * LD;

    const int s = blockIdx.z, h = blockIdx.y;
    const int start = cu[s], len = cu[s + 1] - start;
    /* Heaviest (last) query tiles first: they see the most keys. */
    const int qt = (int)gridDim.x - 1 - (int)blockIdx.x;
    const int q0 = qt * BM;
    if (q0 >= len) return;
    const int kvh = h / (Hq / Hkv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

    const long long qs = (long long)Hq * D, ks = (long long)Hkv * D;
    const bf16 *qg = q + (long long)start * qs + (long long)h * D;
    const bf16 *kg = k + (long long)start * ks + (long long)kvh * D;
    const bf16 *vg = v + (long long)start * ks + (long long)kvh * D;

    const int q_last = min(q0 + BM, len) - 1;
    const int k_first = window > 0 ? max(0, q0 - window + 1) : 0;
    const int kt_lo = k_first / BN, kt_hi = q_last / BN;

    load_tile<D, BM, FWD_THREADS>(sQ, qg, qs, q0, len);
    load_tile<D, BN, FWD_THREADS>(sK, kg, ks, kt_lo * BN, len);
    cp_async_commit();

    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    uint32_t qa[KD][4];
    const int row_a = q0 + warp * 16 + g, row_b = row_a + 8; /* this thread's two query rows */

    for (int kt = kt_lo; kt <= kt_hi; kt++) {
        const int k0 = kt * BN;
        load_tile<D, BN, FWD_THREADS>(sV, vg, ks, k0, len);
        cp_async_commit();
        cp_async_wait<1>(); /* Q and K(kt) have landed */
        __syncthreads();
        if (kt == kt_lo) {
#pragma unroll
            for (int kk = 0; kk < KD; kk++) ldsm_x4(qa[kk], sQ + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
        }

        float sc[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++) sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
#pragma unroll
            for (int n2 = 0; n2 < NT / 2; n2++) {
                uint32_t b[4];
                ldsm_x4(b, sK + (n2 * 16 + lane % 8 + (lane / 16) * 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
                mma16816(sc[2 * n2], qa[kk], b[0], b[1]);
                mma16816(sc[2 * n2 + 1], qa[kk], b[2], b[3]);
            }
        }
        __syncthreads(); /* every warp is done with K(kt): fetch the next one */
        if (kt < kt_hi) load_tile<D, BN, FWD_THREADS>(sK, kg, ks, k0 + BN, len);
        cp_async_commit();

        /* Only tiles crossing the diagonal or the window's edge need the mask. */
        const bool need_mask = k0 + BN - 1 > q0 || (window > 0 && k0 <= q0 + BM - 1 - window);
#pragma unroll
        for (int i = 0; i < NT; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = sc[i][e] * scale_log2;
                if (need_mask && !visible(e < 2 ? row_a : row_b, k0 + i * 8 + 2 * t + (e & 1), window)) x = -INFINITY;
                sc[i][e] = x;
            }

        /* Online softmax in the log2 domain; the quad (t = 0..3) shares a row. */
        float scale_o[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = -INFINITY;
#pragma unroll
            for (int i = 0; i < NT; i++) mx = fmaxf(mx, fmaxf(sc[i][2 * r], sc[i][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m[r], mx);
            /* A row with nothing visible yet keeps m = -inf: subtract 0 then, not inf. */
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;
            scale_o[r] = fast_exp2(m[r] - m_use);
            m[r] = m_new;
            float sum = 0.0f;
#pragma unroll
            for (int i = 0; i < NT; i++) {
                sc[i][2 * r] = fast_exp2(sc[i][2 * r] - m_use);
                sc[i][2 * r + 1] = fast_exp2(sc[i][2 * r + 1] - m_use);
                sum += sc[i][2 * r] + sc[i][2 * r + 1];
            }
            l[r] = l[r] * scale_o[r] + sum;
        }
#pragma unroll
        for (int i = 0; i < DT; i++) {
            o[i][0] *= scale_o[0];
            o[i][1] *= scale_o[0];
            o[i][2] *= scale_o[1];
            o[i][3] *= scale_o[1];
        }

        cp_async_wait<1>(); /* V(kt) has landed (K(kt+1) may still be in flight) */
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                              pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (int d2 = 0; d2 < D / 16; d2++) {
                uint32_t b[4];
                ldsm_x4_t(b, sV + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * LD + d2 * 16 + (lane / 16) * 8);
                mma16816(o[2 * d2], pa, b[0], b[1]);
                mma16816(o[2 * d2 + 1], pa, b[2], b[3]);
            }
        }
        __syncthreads(); /* every warp is done with V(kt) before the next fetch */
    }

    /* Finish: O / l, lse = (m + log2 l) ln 2. Row sums were per thread so far. */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    const float inv0 = 1.0f / l[0], inv1 = 1.0f / l[1];
    bf16 *og = out + (long long)start * qs + (long long)h * D;
#pragma unroll
    for (int i = 0; i < DT; i++) {
        const int col = i * 8 + 2 * t;
        if (row_a < len)
            *reinterpret_cast<uint32_t *>(og + (long long)row_a * qs + col) = pack_bf16(o[i][0] * inv0, o[i][1] * inv0);
        if (row_b < len)
            *reinterpret_cast<uint32_t *>(og + (long long)row_b * qs + col) = pack_bf16(o[i][2] * inv1, o[i][3] * inv1);
    }
    if (t == 0) {
        float *lg = lse + (long long)h * T + start;
        if (row_a < len) lg[row_a] = m[0] * LN2 + logf(l[0]);
        if (row_b < len) lg[row_b] = m[1] * LN2 + logf(l[1]);
    }
}

template <int D>
cudaError_t launch_fwd(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const int32_t *cu,
                       int n_seqs, int max_len, int T, int window, int Hq, int Hkv, cudaStream_t st) {
    constexpr int smem = fwd_smem_bytes<D>();
    /* Raised once per device: the call may synchronise, and a step recorded
     * into a CUDA graph (core/gpu_graph.c) should make no such calls. */
    static bool raised[64];
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 0 || dev >= 64 || !raised[dev]) {
        cudaError_t e = cudaFuncSetAttribute(attn_fwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
        if (dev >= 0 && dev < 64) raised[dev] = true;
    }
    dim3 grid((max_len + FWD_BM - 1) / FWD_BM, Hq, n_seqs);
    attn_fwd_kernel<D><<<grid, FWD_THREADS, smem, st>>>(out, lse, q, k, v, cu, T, Hq, Hkv, window,
                                                         LOG2E / sqrtf((float)D));
    return cudaGetLastError();
}

} // namespace

extern "C" sw_status sw_attn_fwd_cuda(sw_ctx *ctx, int dev, sw_bf16 *out, float *lse, const sw_bf16 *q,
                                      const sw_bf16 *k, const sw_bf16 *v, const int32_t *cu, int n_seqs,
                                      int64_t max_len, int64_t T, int64_t window, int64_t Hq, int64_t Hkv,
                                      int64_t D) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    if (Hkv <= 0 || Hq % Hkv || n_seqs < 0 || max_len < 0 || T < 0 || T > INT32_MAX || max_len > T)
        return sw_err(ctx, SW_EINVAL, "attn_fwd: bad shape (T %lld, max_len %lld, Hq %lld, Hkv %lld)",
                      (long long)T, (long long)max_len, (long long)Hq, (long long)Hkv);
    if (T == 0 || n_seqs == 0 || max_len == 0 || Hq == 0) return SW_OK;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t st = (cudaStream_t)sw_cuda_stream(dev);
    /* Longer windows than the sample are no window at all. */
    int win = window > 0 && window < max_len ? (int)window : 0;
    const bf16 *qb = (const bf16 *)q, *kb = (const bf16 *)k, *vb = (const bf16 *)v;
    bf16 *ob = (bf16 *)out;
    cudaError_t e;
    switch (D) {
    case 16: e = launch_fwd<16>(ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
    case 32: e = launch_fwd<32>(ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
    case 64: e = launch_fwd<64>(ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
    case 128: e = launch_fwd<128>(ob, lse, qb, kb, vb, cu, n_seqs, (int)max_len, (int)T, win, (int)Hq, (int)Hkv, st); break;
    default: return sw_err(ctx, SW_EUNSUPPORTED, "attn_fwd: head dim %lld (supported: 16, 32, 64, 128)", (long long)D);
    }
    SW_CUDA_CHECK(ctx, dev, e);
    return SW_OK;
}
