/* convert.cu — CUDA twins of kernels/cpu/convert.c: dtype conversion, fill
 * and the counter-based normal sampler (same hash, same stream).
 * They run on the device's stream and still wait for it: these back the
 * tensor library's calls from Lua, which report errors where they happen;
 * the training engine's ops (gpu_ops.h) are the ones that stay queued. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "common.cuh"
extern "C" {
#include "../gpu_ops.h" /* dtype.h inside has no C++ guard of its own */
}

extern "C" {
#include "../ops.h"
}

__device__ __forceinline__ float ld(const void *p, int t, long long i) {
    switch (t) {
    case SW_F32: return ((const float *)p)[i];
    case SW_F16: return __half2float(((const __half *)p)[i]);
    case SW_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case SW_I32: return (float)((const int32_t *)p)[i];
    case SW_U8: return (float)((const uint8_t *)p)[i];
    }
    return __int_as_float(0x7fc00000);
}

__device__ __forceinline__ void st(void *p, int t, long long i, float v) {
    switch (t) {
    case SW_F32: ((float *)p)[i] = v; break;
    case SW_F16: ((__half *)p)[i] = __float2half_rn(v); break;
    case SW_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); break;
    case SW_I32: ((int32_t *)p)[i] = __float2int_rn(v); break;
    case SW_U8: ((uint8_t *)p)[i] = (uint8_t)__float2int_rn(fminf(fmaxf(v, 0.0f), 255.0f)); break;
    }
}

__global__ void convert_kernel(void *dst, int dt, const void *src, int stt, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        st(dst, dt, i, ld(src, stt, i));
}

__global__ void fill_kernel(void *dst, int t, float v, int32_t iv, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        if (t == SW_I32) ((int32_t *)dst)[i] = iv;
        else if (t == SW_U8) ((uint8_t *)dst)[i] = (uint8_t)min(max(iv, 0), 255);
        else st(dst, t, i, v);
    }
}

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

__global__ void randn_kernel(float *dst, uint64_t key, uint64_t offset, float scale, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        uint64_t h = mix64(key ^ (offset + (uint64_t)i));
        double u1 = ((double)(h >> 40) + 1.0) / 16777216.0;
        double u2 = (double)(h & 0xffffffu) / 16777216.0;
        dst[i] = scale * (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

extern "C" sw_status sw_convert_cuda(sw_ctx *ctx, void *dst, sw_dtype dt, const void *src,
                                     sw_dtype stt, int64_t n, int dev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    convert_kernel<<<sw_cuda_blocks(n, 256), 256, 0, s>>>(dst, dt, src, stt, n);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(s));
    return SW_OK;
}

extern "C" sw_status sw_fill_cuda(sw_ctx *ctx, void *dst, sw_dtype t, double v, int64_t n, int dev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    fill_kernel<<<sw_cuda_blocks(n, 256), 256, 0, s>>>(dst, t, (float)v, (int32_t)llround(v), n);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(s));
    return SW_OK;
}

extern "C" sw_status sw_randn_cuda(sw_ctx *ctx, float *dst, uint64_t seed, uint64_t offset,
                                   float scale, int64_t n, int dev) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    if (n == 0) return SW_OK;
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    /* The key is mixed on the host exactly as sw_randn_cpu does. */
    uint64_t key = seed + 0x9e3779b97f4a7c15ull;
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
    key ^= key >> 31;
    randn_kernel<<<sw_cuda_blocks(n, 256), 256, 0, s>>>(dst, key, offset, scale, n);
    SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
    SW_CUDA_CHECK(ctx, dev, cudaStreamSynchronize(s));
    return SW_OK;
}
