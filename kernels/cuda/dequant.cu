/* dequant.cu — weights to bf16 on the device, right before their GEMM
 * (gpu_ops.h: dequant_bf16, nf4_dequant_bf16), and NF4 quantization.
 *
 * Exactness. The results must equal bf16(sw_dequant_cpu) and
 * bf16(sw_nf4_dequant_cpu) bit for bit, and the NF4 codes those of
 * sw_nf4_quant_cpu. So every formula keeps the CPU's operation order and
 * uses the _rn intrinsics, which nvcc never fuses into an FMA (a plain
 * a * b - c would be contracted and round once instead of twice). The f16
 * and bf16 conversions are written out bit by bit as kernels/cpu/convert.c
 * does them, NaN payloads included, rather than trusting the hardware's
 * NaN canonicalisation.
 *
 * Speed. A weight matrix (up to 14336 x 4096) is decoded once per use in
 * the training step, so these kernels have to run at memory bandwidth. Each
 * thread makes 8 consecutive outputs and writes them as one 16-byte store;
 * consecutive threads write consecutive 16 bytes, so the stores (the larger
 * stream) are fully coalesced. The threads of one GGUF block read its scales
 * together (they hit in L1) and each reads only its own 8 quants, with the
 * widest loads the block layout's alignment allows: q4_k and q5_k blocks are
 * 16-byte multiples (8-byte loads), q4_1 4-byte, q8_0, q4_0 and q6_k only
 * 2-byte. The source pointer may be an offset into a file image, so its own
 * alignment is checked on the host and lowers the load width if needed.
 */
#include <stdint.h>
#include <string.h>
#include "common.cuh"

extern "C" {
#include "../gpu_ops.h" /* dtype.h inside has no C++ guard of its own */
#include "../ops.h"
}

/* ------------------------------------------------ scalar conversions */

/* sw_f32_to_bf16: quiet NaN keeps its payload's top bits, else round to
 * nearest even. */
__device__ __forceinline__ uint16_t to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* sw_f16_to_f32, bit for bit (subnormals normalised, NaN payload kept). */
__device__ __forceinline__ float f16_to_f32(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        if (m == 0) u = sign;
        else {
            int k = 10 - (31 - __clz((int)m)); /* shifts that bring the top bit to 0x400 */
            u = sign | ((uint32_t)(113 - k) << 23) | (((m << k) & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    return __uint_as_float(u);
}

/* ---------------------------------------------------- aligned loads */

/* 8 little-endian bytes at p, which is known to be A-byte aligned. */
template <int A>
__device__ __forceinline__ uint64_t ld8(const uint8_t *p) {
    if constexpr (A >= 8) return *(const uint64_t *)p;
    else if constexpr (A == 4) {
        const uint32_t *q = (const uint32_t *)p;
        return (uint64_t)q[0] | (uint64_t)q[1] << 32;
    } else if constexpr (A == 2) {
        const uint16_t *q = (const uint16_t *)p;
        return (uint64_t)q[0] | (uint64_t)q[1] << 16 | (uint64_t)q[2] << 32 | (uint64_t)q[3] << 48;
    } else {
        uint64_t v = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
        return v;
    }
}

template <int A>
__device__ __forceinline__ uint32_t ld2(const uint8_t *p) {
    if constexpr (A >= 2) return *(const uint16_t *)p;
    else return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

template <int A>
__device__ __forceinline__ float half_at(const uint8_t *p) { return f16_to_f32(ld2<A>(p)); }

__device__ __forceinline__ int byte_of(uint64_t v, int i) { return (int)((v >> (8 * i)) & 0xffu); }

/* ------------------------------------------- 8 outputs per format */

/* Each decoder makes outputs 8g .. 8g+7 of the tensor as bf16 bits. */

template <int A>
__device__ __forceinline__ void dq_q8_0(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *b = src + (g >> 2) * 34;
    int s = (int)(g & 3);
    float d = half_at<A>(b);
    uint64_t q = ld8<A>(b + 2 + 8 * s);
#pragma unroll
    for (int i = 0; i < 8; i++) y[i] = to_bf16(__fmul_rn((float)(int8_t)byte_of(q, i), d));
}

template <int A>
__device__ __forceinline__ void dq_q4_0(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *b = src + (g >> 2) * 18;
    int s = (int)(g & 3);
    float d = half_at<A>(b);
    /* outputs 0-15 are the low nibbles of qs[0..15], 16-31 the high ones */
    uint64_t q = ld8<A>(b + 2 + 8 * (s & 1));
    int shift = 4 * (s >> 1);
#pragma unroll
    for (int i = 0; i < 8; i++) y[i] = to_bf16(__fmul_rn(d, (float)(((byte_of(q, i) >> shift) & 15) - 8)));
}

template <int A>
__device__ __forceinline__ void dq_q4_1(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *b = src + (g >> 2) * 20;
    int s = (int)(g & 3);
    float d = half_at<A>(b), m = half_at<A>(b + 2);
    uint64_t q = ld8<A>(b + 4 + 8 * (s & 1));
    int shift = 4 * (s >> 1);
#pragma unroll
    for (int i = 0; i < 8; i++)
        y[i] = to_bf16(__fadd_rn(__fmul_rn(d, (float)((byte_of(q, i) >> shift) & 15)), m));
}

/* The 6-bit scale and min of sub-block j (see kernels/cpu/dequant.c). */
__device__ __forceinline__ void k_scale(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 0x3f;
        *mn = s[j + 4] & 0x3f;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
    }
}

/* q4_k (HAS_QH false) and q5_k: 256 outputs, 32 threads per block; thread
 * t makes elements l = 8(t%4) .. +8 of sub-block j = t/4. */
template <int A, bool HAS_QH>
__device__ __forceinline__ void dq_k(uint16_t y[8], const uint8_t *src, int64_t g) {
    const int bytes = HAS_QH ? 176 : 144;
    const uint8_t *b = src + (g >> 5) * bytes;
    int t = (int)(g & 31), j = t >> 2, l = 8 * (t & 3);
    float d = half_at<A>(b), dmin = half_at<A>(b + 2);
    int sc, mn;
    k_scale(b + 4, j, &sc, &mn);
    float ds = __fmul_rn(d, (float)sc), dm = __fmul_rn(dmin, (float)mn);
    const uint8_t *qs = b + (HAS_QH ? 48 : 16) + 32 * (j >> 1);
    uint64_t q = ld8<A>(qs + l);
    uint64_t h = HAS_QH ? ld8<A>(b + 16 + l) : 0;
    int shift = 4 * (j & 1);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int v = (byte_of(q, i) >> shift) & 0x0f;
        if (HAS_QH) v |= ((byte_of(h, i) >> j) & 1) << 4;
        y[i] = to_bf16(__fsub_rn(__fmul_rn(ds, (float)v), dm));
    }
}

/* q6_k: thread t makes elements i = 8t .. 8t+7, which share their half
 * h, nibble, qh bit pair and scale (16 elements per scale). */
template <int A>
__device__ __forceinline__ void dq_q6_k(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *b = src + (g >> 5) * 210;
    int t = (int)(g & 31), i0 = 8 * t, h = i0 >> 7, r = i0 & 127;
    uint64_t lo = ld8<A>(b + 64 * h + (r & 63));
    uint64_t hi = ld8<A>(b + 128 + 32 * h + (r & 31));
    int lshift = 4 * (r >> 6), hshift = 2 * (r >> 5);
    float d = half_at<A>(b + 208);
    float ds = __fmul_rn(d, (float)(int8_t)b[192 + (i0 >> 4)]);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int q = ((byte_of(lo, i) >> lshift) & 0x0f) | ((byte_of(hi, i) >> hshift) & 0x03) << 4;
        y[i] = to_bf16(__fmul_rn(ds, (float)(q - 32)));
    }
}

/* Plain types: element k of group g. */
template <int A>
__device__ __forceinline__ void dq_f32(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *p = src + g * 32;
#pragma unroll
    for (int w = 0; w < 4; w++) {
        uint64_t v = ld8<A>(p + 8 * w);
        y[2 * w] = to_bf16(__uint_as_float((uint32_t)v));
        y[2 * w + 1] = to_bf16(__uint_as_float((uint32_t)(v >> 32)));
    }
}

template <int A>
__device__ __forceinline__ void dq_f16(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *p = src + g * 16;
#pragma unroll
    for (int w = 0; w < 2; w++) {
        uint64_t v = ld8<A>(p + 8 * w);
#pragma unroll
        for (int i = 0; i < 4; i++) y[4 * w + i] = to_bf16(f16_to_f32((uint32_t)(v >> (16 * i)) & 0xffffu));
    }
}

/* bf16 -> f32 -> bf16 is the identity except that a NaN comes back quiet. */
__device__ __forceinline__ uint16_t bf16_same(uint32_t h) {
    return (uint16_t)((h & 0x7fffu) > 0x7f80u ? h | 0x40 : h);
}

template <int A>
__device__ __forceinline__ void dq_bf16(uint16_t y[8], const uint8_t *src, int64_t g) {
    const uint8_t *p = src + g * 16;
#pragma unroll
    for (int w = 0; w < 2; w++) {
        uint64_t v = ld8<A>(p + 8 * w);
#pragma unroll
        for (int i = 0; i < 4; i++) y[4 * w + i] = bf16_same((uint32_t)(v >> (16 * i)) & 0xffffu);
    }
}

/* ------------------------------------------------------ the kernels */

template <bool V16>
__device__ __forceinline__ void store8(uint16_t *dst, int64_t g, const uint16_t y[8]) {
    if (V16) {
        uint4 v;
        v.x = y[0] | (uint32_t)y[1] << 16;
        v.y = y[2] | (uint32_t)y[3] << 16;
        v.z = y[4] | (uint32_t)y[5] << 16;
        v.w = y[6] | (uint32_t)y[7] << 16;
        *(uint4 *)(dst + 8 * g) = v;
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) dst[8 * g + i] = y[i];
    }
}

enum { K_Q8_0, K_Q4_0, K_Q4_1, K_Q4_K, K_Q5_K, K_Q6_K, K_F32, K_F16, K_BF16 };

template <int F, int A>
__device__ __forceinline__ void decode(uint16_t y[8], const uint8_t *src, int64_t g) {
    if constexpr (F == K_Q8_0) dq_q8_0<A>(y, src, g);
    else if constexpr (F == K_Q4_0) dq_q4_0<A>(y, src, g);
    else if constexpr (F == K_Q4_1) dq_q4_1<A>(y, src, g);
    else if constexpr (F == K_Q4_K) dq_k<A, false>(y, src, g);
    else if constexpr (F == K_Q5_K) dq_k<A, true>(y, src, g);
    else if constexpr (F == K_Q6_K) dq_q6_k<A>(y, src, g);
    else if constexpr (F == K_F32) dq_f32<A>(y, src, g);
    else if constexpr (F == K_F16) dq_f16<A>(y, src, g);
    else dq_bf16<A>(y, src, g);
}

/* Groups each thread decodes before it stores any: the loads of all of
 * them are in flight together. One group per thread left the kernels
 * latency-bound at about half the memory bandwidth (too few bytes in
 * flight per SM); the loop below puts every decode ahead of every store,
 * so nothing orders a later load after an earlier store. */
#define DQ_ILP 4

/* ngroups groups of 8 outputs; for plain types the n % 8 last elements
 * (tail) are made one per thread by the first block. */
template <int F, int A, bool V16>
__global__ void __launch_bounds__(256) dequant_kernel(uint16_t *__restrict__ dst, const uint8_t *__restrict__ src,
                                                      int64_t ngroups, int tail) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    for (; g + (DQ_ILP - 1) * stride < ngroups; g += DQ_ILP * stride) {
        uint16_t y[DQ_ILP][8];
#pragma unroll
        for (int k = 0; k < DQ_ILP; k++) decode<F, A>(y[k], src, g + k * stride);
#pragma unroll
        for (int k = 0; k < DQ_ILP; k++) store8<V16>(dst, g + k * stride, y[k]);
    }
    for (; g < ngroups; g += stride) {
        uint16_t y[8];
        decode<F, A>(y, src, g);
        store8<V16>(dst, g, y);
    }
    if (tail && blockIdx.x == 0 && (int)threadIdx.x < tail) {
        int64_t i = 8 * ngroups + threadIdx.x;
        if constexpr (F == K_F32) dst[i] = to_bf16(__uint_as_float(ld2<1>(src + 4 * i) | ld2<1>(src + 4 * i + 2) << 16));
        else if constexpr (F == K_F16) dst[i] = to_bf16(f16_to_f32(ld2<1>(src + 2 * i)));
        else if constexpr (F == K_BF16) dst[i] = bf16_same(ld2<1>(src + 2 * i));
    }
}

/* Enough threads for DQ_ILP groups each. */
static unsigned dq_grid(int64_t ngroups) {
    int64_t threads = (ngroups + DQ_ILP - 1) / DQ_ILP;
    return sw_cuda_blocks(threads > 0 ? threads : 1, 256);
}

static int addr_align(const void *p, int cap) {
    uintptr_t a = (uintptr_t)p;
    int al = 1;
    while (al < cap && !(a & (uintptr_t)al)) al <<= 1;
    return al;
}

template <int F, int A>
static void launch_a(uint16_t *dst, const uint8_t *src, int64_t ngroups, int tail, cudaStream_t s) {
    unsigned grid = dq_grid(ngroups);
    if (addr_align(dst, 16) == 16) dequant_kernel<F, A, true><<<grid, 256, 0, s>>>(dst, src, ngroups, tail);
    else dequant_kernel<F, A, false><<<grid, 256, 0, s>>>(dst, src, ngroups, tail);
}

/* Load width: the format's own (what its block stride and field offsets
 * guarantee) lowered to the source pointer's alignment. */
template <int F, int NAT>
static void launch(uint16_t *dst, const uint8_t *src, int64_t ngroups, int tail, cudaStream_t s) {
    int a = addr_align(src, NAT);
    if (a >= 8) launch_a<F, (NAT >= 8 ? 8 : NAT)>(dst, src, ngroups, tail, s);
    else if (a >= 4) launch_a<F, (NAT >= 4 ? 4 : NAT)>(dst, src, ngroups, tail, s);
    else if (a >= 2) launch_a<F, (NAT >= 2 ? 2 : NAT)>(dst, src, ngroups, tail, s);
    else launch_a<F, 1>(dst, src, ngroups, tail, s);
}

extern "C" sw_status sw_dequant_bf16_cuda(sw_ctx *ctx, int dev, sw_bf16 *dst, const void *src, sw_dtype t,
                                          int64_t n) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    int block;
    switch (t) {
    case SW_F32: case SW_F16: case SW_BF16: block = 1; break;
    case SW_Q8_0: case SW_Q4_0: case SW_Q4_1: block = 32; break;
    case SW_Q4_K: case SW_Q5_K: case SW_Q6_K: block = 256; break;
    default:
        return sw_err(ctx, SW_EUNSUPPORTED, "dequant_bf16: no device decoder for %s", sw_dtype_name(t));
    }
    if (n < 0 || n % block)
        return sw_err(ctx, SW_EINVAL, "dequant_bf16: %lld elements is not a whole number of %s blocks",
                      (long long)n, sw_dtype_name(t));
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    const uint8_t *b = (const uint8_t *)src;
    int64_t ng = n / 8;
    int tail = (int)(n % 8);
    switch (t) {
    case SW_Q8_0: launch<K_Q8_0, 2>(dst, b, ng, 0, s); break;
    case SW_Q4_0: launch<K_Q4_0, 2>(dst, b, ng, 0, s); break;
    case SW_Q4_1: launch<K_Q4_1, 4>(dst, b, ng, 0, s); break;
    case SW_Q4_K: launch<K_Q4_K, 8>(dst, b, ng, 0, s); break;
    case SW_Q5_K: launch<K_Q5_K, 8>(dst, b, ng, 0, s); break;
    case SW_Q6_K: launch<K_Q6_K, 2>(dst, b, ng, 0, s); break;
    case SW_F32: launch<K_F32, 8>(dst, b, ng, tail, s); break;
    case SW_F16: launch<K_F16, 8>(dst, b, ng, tail, s); break;
    default: launch<K_BF16, 8>(dst, b, ng, tail, s); break;
    }
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* ---------------------------------------------------------------- NF4 */

/* The code table and the 15 decision thresholds travel as kernel
 * arguments, computed on the host from sw_nf4_table exactly as nf4.c does. */
struct nf4_table { float v[16]; };
struct nf4_mid { float v[15]; };

/* Group g is outputs 8g .. 8g+7, from code bytes 4g .. 4g+3 (high
 * nibble first) and absmax[g / 8]. The table is copied to shared memory: a
 * lookup by code diverges across the warp, which would serialise reads of
 * the kernel-argument (constant) bank. */
template <bool C4>
__device__ __forceinline__ void nf4_group(uint16_t y[8], const float *table, uint32_t q, float m) {
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t byte = (q >> (8 * k)) & 0xffu;
        y[2 * k] = to_bf16(__fmul_rn(table[byte >> 4], m));
        y[2 * k + 1] = to_bf16(__fmul_rn(table[byte & 15], m));
    }
}

template <bool C4>
__device__ __forceinline__ uint32_t nf4_codes_at(const uint8_t *__restrict__ codes, int64_t g) {
    const uint8_t *c = codes + 4 * g;
    return C4 ? *(const uint32_t *)c
              : (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

template <bool C4, bool V16>
__global__ void __launch_bounds__(256) nf4_dequant_kernel(uint16_t *__restrict__ dst, const uint8_t *__restrict__ codes,
                                                         const float *__restrict__ absmax, int64_t ngroups,
                                                         nf4_table tab) {
    __shared__ float table[16];
    if (threadIdx.x < 16) table[threadIdx.x] = tab.v[threadIdx.x];
    __syncthreads();
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    /* as dequant_kernel: DQ_ILP groups' loads first, then their stores */
    for (; g + (DQ_ILP - 1) * stride < ngroups; g += DQ_ILP * stride) {
        uint32_t q[DQ_ILP];
        float m[DQ_ILP];
#pragma unroll
        for (int k = 0; k < DQ_ILP; k++) {
            q[k] = nf4_codes_at<C4>(codes, g + k * stride);
            m[k] = absmax[(g + k * stride) >> 3];
        }
#pragma unroll
        for (int k = 0; k < DQ_ILP; k++) {
            uint16_t y[8];
            nf4_group<C4>(y, table, q[k], m[k]);
            store8<V16>(dst, g + k * stride, y);
        }
    }
    for (; g < ngroups; g += stride) {
        uint16_t y[8];
        nf4_group<C4>(y, table, nf4_codes_at<C4>(codes, g), absmax[g >> 3]);
        store8<V16>(dst, g, y);
    }
}

extern "C" sw_status sw_nf4_dequant_bf16_cuda(sw_ctx *ctx, int dev, sw_bf16 *dst, const uint8_t *codes,
                                              const float *absmax, int64_t n) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    if (n < 0 || n % SW_NF4_BLOCK)
        return sw_err(ctx, SW_EINVAL, "nf4_dequant_bf16: %lld elements is not a multiple of %d", (long long)n,
                      SW_NF4_BLOCK);
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    nf4_table tab;
    memcpy(tab.v, sw_nf4_table, sizeof tab.v);
    int64_t ng = n / 8;
    unsigned grid = dq_grid(ng);
    bool c4 = addr_align(codes, 4) == 4, v16 = addr_align(dst, 16) == 16;
    if (c4 && v16) nf4_dequant_kernel<true, true><<<grid, 256, 0, s>>>(dst, codes, absmax, ng, tab);
    else if (c4) nf4_dequant_kernel<true, false><<<grid, 256, 0, s>>>(dst, codes, absmax, ng, tab);
    else if (v16) nf4_dequant_kernel<false, true><<<grid, 256, 0, s>>>(dst, codes, absmax, ng, tab);
    else nf4_dequant_kernel<false, false><<<grid, 256, 0, s>>>(dst, codes, absmax, ng, tab);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}

/* Quantization: 8 lanes per 64-value block, 8 values per lane. The block's
 * absmax is a max, so the lanes' partial maxima combine in any order to the
 * CPU's value (fmaxf drops NaN either way, fabsf makes every zero +0). The
 * code of x is the number of thresholds x * (1/absmax) is strictly above,
 * with the reciprocal rounded once (__frcp_rn is the correctly rounded
 * 1.0f / m) and the product rounded once, as nf4.c. Warps walk the groups in
 * step (the loop bound is per warp) so every lane reaches the shuffles. */
template <bool S16, bool C4>
__global__ void __launch_bounds__(256) nf4_quant_kernel(uint8_t *codes, float *absmax, const float *src,
                                                       int64_t ngroups, nf4_mid mid) {
    const int lane = threadIdx.x & 31;
    const int64_t warp0 = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) - lane;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t base = warp0; base < ngroups; base += stride) {
        int64_t g = base + lane;
        bool ok = g < ngroups; /* whole 8-lane groups are in or out: ngroups is a multiple of 8 */
        float x[8];
        if (ok && S16) {
            float4 a = ((const float4 *)src)[2 * g], b = ((const float4 *)src)[2 * g + 1];
            x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) x[i] = ok ? src[8 * g + i] : 0.0f;
        }
        float m = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) m = fmaxf(m, fabsf(x[i]));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
        if (!ok) continue;
        if ((lane & 7) == 0) absmax[g >> 3] = m;
        uint32_t out;
        if (m == 0.0f) {
            out = 0x77777777u; /* code 7 = 0.0, as the CPU path */
        } else {
            float inv = __frcp_rn(m);
            out = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                float v = __fmul_rn(x[i], inv);
                uint32_t c = 0;
#pragma unroll
                for (int k = 0; k < 15; k++) c += v > mid.v[k];
                /* element 2k in the high nibble of byte k */
                out |= c << (8 * (i >> 1) + ((i & 1) ? 0 : 4));
            }
        }
        uint8_t *o = codes + 4 * g;
        if (C4) *(uint32_t *)o = out;
        else
            for (int k = 0; k < 4; k++) o[k] = (uint8_t)(out >> (8 * k));
    }
}

extern "C" sw_status sw_nf4_quant_cuda(sw_ctx *ctx, int dev, uint8_t *codes, float *absmax, const float *src,
                                       int64_t n) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    if (n < 0 || n % SW_NF4_BLOCK)
        return sw_err(ctx, SW_EINVAL, "nf4_quant: %lld elements is not a multiple of %d", (long long)n,
                      SW_NF4_BLOCK);
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    nf4_mid mid;
    for (int i = 0; i < 15; i++) mid.v[i] = (sw_nf4_table[i] + sw_nf4_table[i + 1]) * 0.5f;
    int64_t ng = n / 8;
    unsigned grid = sw_cuda_blocks(ng, 256);
    bool s16 = addr_align(src, 16) == 16, c4 = addr_align(codes, 4) == 4;
    if (s16 && c4) nf4_quant_kernel<true, true><<<grid, 256, 0, s>>>(codes, absmax, src, ng, mid);
    else if (s16) nf4_quant_kernel<true, false><<<grid, 256, 0, s>>>(codes, absmax, src, ng, mid);
    else if (c4) nf4_quant_kernel<false, true><<<grid, 256, 0, s>>>(codes, absmax, src, ng, mid);
    else nf4_quant_kernel<false, false><<<grid, 256, 0, s>>>(codes, absmax, src, ng, mid);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    return SW_OK;
}
