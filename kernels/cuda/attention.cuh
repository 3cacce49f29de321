/* attention.cuh — tensor-core building blocks shared by attention_fwd.cu and
 * attention_bwd.cu.
 *
 * Both kernels use mma.sync m16n8k16 (bf16 in, f32 accumulate) through
 * inline PTX with ldmatrix feeding it from shared memory; that runs on
 * sm_80 and sm_90 alike (wgmma would be faster on Hopper but the build also
 * emits sm_80 PTX). Tiles are staged with cp.async; rows of a tile are D + 8
 * elements apart in shared memory: the 16-byte pad makes the eight row
 * addresses of every ldmatrix land on distinct bank groups for every D we
 * support, without an XOR swizzle.
 *
 * Fragment layouts (g = lane / 4, t = lane % 4), from the PTX ISA:
 *   A 16x16: a[0] (g, 2t..2t+1) a[1] (g+8, 2t..) a[2] (g, 2t+8..) a[3] (g+8, 2t+8..)
 *   B 16x8:  b[0] (k 2t..2t+1, n g) b[1] (k 2t+8.., n g)
 *   C 16x8:  c[0..1] (g, 2t..2t+1) c[2..3] (g+8, 2t..2t+1)
 * so the C fragments of two adjacent 8-column tiles are, packed to bf16,
 * the A fragment of the 16-column block they form: P never leaves registers.
 */
#ifndef SW_CUDA_ATTENTION_CUH
#define SW_CUDA_ATTENTION_CUH

#include <cuda_bf16.h>
#include <stdint.h>

namespace swattn {

typedef __nv_bfloat16 bf16;

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared; bytes past src_bytes (0 or 16) are zero-filled,
 * which is how rows outside the sample become zeros instead of reads past T. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

/* c += a * b for one 16x8x16 tile. */
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* 2^x with the hardware approximation (2 ulp); exp2(-inf) = 0, which the
 * masking relies on. */
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* Copy ROWS x D bf16 rows (global rows `stride` elements apart, rows from
 * row0 on, only rows < nvalid read, others zeroed) into padded shared rows. */
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(bf16 *s, const bf16 *g, long long stride, int row0, int nvalid) {
    constexpr int CH = D / 8, LD = D + 8;
#pragma unroll
    for (int it = 0; it < (ROWS * CH + THREADS - 1) / THREADS; it++) {
        int c = it * THREADS + (int)threadIdx.x;
        if ((ROWS * CH) % THREADS != 0 && c >= ROWS * CH) break;
        int r = c / CH, cc = c % CH;
        bool ok = row0 + r < nvalid;
        const bf16 *src = ok ? g + (long long)(row0 + r) * stride + cc * 8 : g;
        cp_async16(s + r * LD + cc * 8, src, ok ? 16 : 0);
    }
}

/* True where query i may see key j (positions inside one sample). */
__device__ __forceinline__ bool visible(int i, int j, int window) {
    return j <= i && (window <= 0 || j > i - window);
}

} // namespace swattn

#endif
