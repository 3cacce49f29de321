/* ops.h — every numeric op, declared once.
 *
 * Conventions (after llm.c): outputs first, inputs next, gradients prefixed
 * with d, sizes last. Each op has a _cpu version (the readable reference)
 * and, when the CUDA backend is built, a _cuda twin with the same arguments
 * plus the device index; tests/gpu compares the two. Pointers are raw data
 * on the op's device; shapes and dtypes have been checked by the caller
 * (core/), so the ops themselves do not fail except on device errors.
 */
#ifndef SW_OPS_H
#define SW_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include "../core/ctx.h"
#include "../core/dtype.h"

/* ---- scalar conversions (round to nearest even; NaN stays NaN) ---------- */
uint16_t sw_f32_to_bf16(float f);
float    sw_bf16_to_f32(uint16_t h);
uint16_t sw_f32_to_f16(float f);
float    sw_f16_to_f32(uint16_t h);

/* ---- convert: dst[i] = (dst_t) src[i], for f32/f16/bf16/i32 ------------- */
void      sw_convert_cpu(void *dst, sw_dtype dst_t, const void *src, sw_dtype src_t, int64_t n);
sw_status sw_convert_cuda(sw_ctx *ctx, void *dst, sw_dtype dst_t, const void *src,
                          sw_dtype src_t, int64_t n, int dev);

/* ---- fill: dst[i] = v ---------------------------------------------------- */
void      sw_fill_cpu(void *dst, sw_dtype t, double v, int64_t n);
sw_status sw_fill_cuda(sw_ctx *ctx, void *dst, sw_dtype t, double v, int64_t n, int dev);

/* ---- randn: dst[i] = scale * (N(0,1) sample number offset+i of stream seed)
 * Counter-based (a hash of seed and index), so any slice of the stream can
 * be produced independently and the CUDA twin yields the same numbers. */
void      sw_randn_cpu(float *dst, uint64_t seed, uint64_t offset, float scale, int64_t n);
sw_status sw_randn_cuda(sw_ctx *ctx, float *dst, uint64_t seed, uint64_t offset, float scale,
                        int64_t n, int dev);

/* ---- a counter-based hash (LoRA dropout masks): the same 64 bits for the
 * same four words on every backend, so masks can be recomputed anywhere. */
static inline uint64_t sw_hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ b * 0xbf58476d1ce4e5b9ull ^ c * 0x94d049bb133111ebull ^ d;
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    return x ^ (x >> 32);
}

/* ---- transformer layers (kernels/cpu/layers.c) ---------------------------
 * rmsnorm: y = x / sqrt(mean(x^2) + eps) * w, per row of C.
 * rope: rotate q or k (T, H, D) in place by pos[t] * inv_freq[i]; pairs are
 *   (2i, 2i+1) when interleaved, else (i, i + D/2).
 * swiglu: out = silu(gate) * up.
 * attention: q (T, Hq, D) at positions pos0.. against k, v (S, Hkv, D) for
 *   positions 0..pos0+T-1; causal, GQA (Hq/Hkv query heads share a kv head),
 *   window > 0 limits each query to the last `window` positions. scratch
 *   holds pos0+T floats. */
void sw_rmsnorm_cpu(float *y, const float *x, const float *w, float eps, int64_t T, int64_t C);
void sw_rope_cpu(float *x, const int32_t *pos, const float *inv_freq, bool interleaved, int64_t T,
                 int64_t H, int64_t D);
void sw_swiglu_cpu(float *out, const float *gate, const float *up, int64_t n);
void sw_attention_cpu(float *out, const float *q, const float *k, const float *v, float *scratch,
                      int64_t pos0, int64_t window, int64_t T, int64_t Hq, int64_t Hkv, int64_t D);

/* ---- matrix-vector from stored rows (kernels/cpu/qmatvec.c) --------------
 * y[r] = dot(row r of W, x) for W (rows, cols) of dtype t, rows row_bytes
 * apart; q4_0/q4_1/q8_0/f32 have fused dots, other types dequantize a row
 * (cols <= 8192). NF4: codes and absmax as sw_nf4_dequant_cpu; cols a
 * multiple of 64. Parallel over rows (OpenMP). */
void sw_qmatvec_cpu(float *y, const float *x, const void *w, sw_dtype t, int64_t row_bytes, int64_t rows,
                    int64_t cols);
void sw_nf4_matvec_cpu(float *y, const float *x, const uint8_t *codes, const float *absmax, int64_t rows,
                       int64_t cols);

/* ---- GEMM: C = alpha op(A) op(B) + beta C, row-major (kernels/cpu/gemm.c) */
void sw_sgemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* ---- training ops (kernels/cpu/backward.c) ---------------------------------
 * rmsnorm_fwd also keeps rstd (T); rmsnorm_bwd ADDS into dx. rope_bwd
 * rotates a gradient back in place. swiglu_bwd writes dg, du. attention on
 * one sample block of len tokens: q (len, Hq, D), k/v (len, Hkv, D), out
 * (len, Hq, D), lse (Hq, len); S is scratch of len*len floats (2*len*len
 * for the backward); attention_bwd ADDS into dq, dk, dv. */
void sw_rmsnorm_fwd_cpu(float *y, float *rstd, const float *x, const float *w, float eps, int64_t T, int64_t C);
void sw_rmsnorm_bwd_cpu(float *dx, const float *dy, const float *x, const float *w, const float *rstd, int64_t T,
                        int64_t C);
void sw_rope_bwd_cpu(float *dx, const int32_t *pos, const float *inv_freq, bool interleaved, int64_t T, int64_t H,
                     int64_t D);
void sw_swiglu_bwd_cpu(float *dg, float *du, const float *da, const float *g, const float *u, int64_t n);
void sw_attention_fwd_cpu(float *out, float *lse, const float *q, const float *k, const float *v, float *S,
                          int64_t len, int64_t window, int64_t Hq, int64_t Hkv, int64_t D);
void sw_attention_bwd_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                          const float *q, const float *k, const float *v, float *S, int64_t len, int64_t window,
                          int64_t Hq, int64_t Hkv, int64_t D);

/* ---- dequantize: dst[i] = element i of n elements stored as type t ------
 * t is any dtype: f32/f16/bf16 convert; q8_0, q4_0, q4_1, q4_k, q5_k, q6_k
 * decode GGUF blocks (n a multiple of the block). Bit-exact with the gguf
 * package's numpy dequantizers. */
void sw_dequant_cpu(float *dst, const void *src, sw_dtype t, int64_t n);

/* ---- NF4 (bitsandbytes layout) ---------------------------------------------
 * codes: n/2 bytes, element 2k in the high nibble of byte k, element 2k+1 in
 * the low nibble; absmax: one float per 64 elements; value = table[code] *
 * absmax. n is a multiple of 64. */
#define SW_NF4_BLOCK 64          /* elements per absmax */
#define SW_NF4_NESTED_BLOCK 256  /* absmax values per second-level scale */
extern const float sw_nf4_table[16];
void sw_nf4_quant_cpu(uint8_t *codes, float *absmax, const float *src, int64_t n);
void sw_nf4_dequant_cpu(float *dst, const uint8_t *codes, const float *absmax, int64_t n);

/* Double quantization of the absmax (bnb's compress_statistics=True):
 * offset = mean(absmax); absmax - offset quantized to 8 bits with the signed
 * dynamic map in blocks of SW_NF4_NESTED_BLOCK, one float absmax2 per block
 * (ceil(nblocks / 256) of them). scratch: nblocks floats. Inverse:
 * absmax[i] = map[q[i]] * absmax2[i / 256] + offset; map NULL = the dynamic
 * map (checkpoints store theirs as nested_quant_map). */
void sw_nf4_double_quant_cpu(uint8_t *qabsmax, float *absmax2, float *offset,
                             const float *absmax, int64_t nblocks, float *scratch);
void sw_nf4_double_dequant_cpu(float *absmax, const uint8_t *qabsmax, const float *absmax2,
                               const float *map, float offset, int64_t nblocks);
/* bnb's create_dynamic_map(signed=True): 256 sorted float32 values in [-1, 1]. */
void sw_dynamic_map_signed(float map[256]);
/* bnb's quantize_blockwise / dequantize_blockwise: 8-bit codes into a sorted
 * 256-entry map, one absmax per block (the last block may be short). */
void sw_blockwise8_quant_cpu(uint8_t *q, float *absmax, const float *src, const float *map,
                             int64_t n, int64_t block);
void sw_blockwise8_dequant_cpu(float *dst, const uint8_t *q, const float *absmax,
                               const float *map, int64_t n, int64_t block);

#endif
