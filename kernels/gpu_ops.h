/* gpu_ops.h — the ops of the device training engine (core/gpu_*.c).
 *
 * The engine computes in bf16 with float32 accumulation, as PyTorch
 * autocast does: activations and frozen weights are bf16 (uint16_t bit
 * patterns), norm weights, statistics (rstd, log-sum-exp), the residual
 * gradient, LoRA parameters, their gradients and the optimizer state are
 * float32.
 *
 * Each op exists twice with the same arguments:
 *   _cuda  kernels/cuda/ (.cu files) — runs on device `dev`, asynchronously on that
 *          device's stream; returns a status only for launch/device errors.
 *   _emu   kernels/cpu/emu.c — the same op on host memory, computed by
 *          converting to float32 and calling the CPU reference (ops.h).
 *          It lets the engine's orchestration run and be tested on a
 *          machine without a GPU, and gives tests/gpu its expected values.
 * Conventions as ops.h: outputs first, sizes last, row-major, shapes
 * checked by the caller. bf16 rounding is round-to-nearest-even.
 */
#ifndef SW_GPU_OPS_H
#define SW_GPU_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../core/ctx.h"
#include "../core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t sw_bf16;

#define SW_GPU_OPS(X)                                                                                           \
    /* C (M,N) = alpha op(A) op(B) + beta C, row-major like sw_sgemm_cpu; op = transpose when ta/tb.          \
     * A and B share one dtype (BF16 or F32); C is BF16 or F32 (F32 C with BF16 inputs is allowed); f32      \
     * accumulation. C may be read (beta != 0) and written in place. cuBLASLt. */                             \
    X(gemm, (sw_ctx *ctx, int dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,           \
             const void *A, sw_dtype ab_t, int64_t lda, const void *B, int64_t ldb, float beta, void *C,      \
             sw_dtype c_t, int64_t ldc))                                                                      \
    /* dst[i] = bf16(element i of n stored as t): f32/f16/bf16 convert, q8_0/q4_0/q4_1/q4_k/q5_k/q6_k       \
     * decode GGUF blocks (n a multiple of the block). Equal to bf16(sw_dequant_cpu). */                       \
    X(dequant_bf16, (sw_ctx *ctx, int dev, sw_bf16 *dst, const void *src, sw_dtype t, int64_t n))              \
    /* NF4 codes/absmax as ops.h -> bf16. Equal to bf16(sw_nf4_dequant_cpu). */                               \
    X(nf4_dequant_bf16, (sw_ctx *ctx, int dev, sw_bf16 *dst, const uint8_t *codes, const float *absmax,        \
                         int64_t n))                                                                          \
    /* NF4 quantization of float32 (n multiple of 64), bit-exact with sw_nf4_quant_cpu. */                    \
    X(nf4_quant, (sw_ctx *ctx, int dev, uint8_t *codes, float *absmax, const float *src, int64_t n))          \
    /* y = bf16(x * rstd * w), rstd = 1/sqrt(mean(x^2) + eps) per row of C, kept (T floats). */             \
    X(rmsnorm_fwd, (sw_ctx *ctx, int dev, sw_bf16 *y, float *rstd, const sw_bf16 *x, const float *w,           \
                    float eps, int64_t T, int64_t C))                                                         \
    /* Gradient of rmsnorm wrt x for dy of type dy_t (F32 or BF16). dx_t F32: ADDS into dx (the residual     \
     * gradient); dx_t BF16: writes dx. */                                                                    \
    X(rmsnorm_bwd, (sw_ctx *ctx, int dev, void *dx, sw_dtype dx_t, const void *dy, sw_dtype dy_t,              \
                    const sw_bf16 *x, const float *w, const float *rstd, int64_t T, int64_t C))               \
    /* Rotate x (T, H, D) in place by pos[t] * inv_freq[i] (inverse: by the negative angle, the backward).   \
     * Pairs (2i, 2i+1) when interleaved, else (i, i + D/2). Angles computed in float32 as sw_rope_cpu. */    \
    X(rope, (sw_ctx *ctx, int dev, sw_bf16 *x, const int32_t *pos, const float *inv_freq, bool interleaved,    \
             bool inverse, int64_t T, int64_t H, int64_t D))                                                  \
    /* out = silu(g) * u */                                                                                   \
    X(swiglu_fwd, (sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *g, const sw_bf16 *u, int64_t n))         \
    /* dg, du from da (written, not added) */                                                                 \
    X(swiglu_bwd, (sw_ctx *ctx, int dev, sw_bf16 *dg, sw_bf16 *du, const sw_bf16 *da, const sw_bf16 *g,       \
                   const sw_bf16 *u, int64_t n))                                                              \
    /* out (T, C) = rows ids[t] of a bf16 table (V, C) */                                                     \
    X(embed, (sw_ctx *ctx, int dev, sw_bf16 *out, const sw_bf16 *table, const int32_t *ids, int64_t T,         \
              int64_t C))                                                                                     \
    /* y (T, N, row stride ldy) += b (N) */                                                                   \
    X(add_bias, (sw_ctx *ctx, int dev, sw_bf16 *y, const float *b, int64_t T, int64_t N, int64_t ldy))         \
    /* y (T, N, row stride ldy) = bf16(y + x), x float32 (T, N) packed: a projection's output summed in      \
     * float32 lands on the bf16 residual stream in one rounding */                                           \
    X(residual_add, (sw_ctx *ctx, int dev, sw_bf16 *y, const float *x, int64_t T, int64_t N, int64_t ldy))     \
    /* LoRA dropout, the same stream as core/train.c's lora_input: element i of x stands for element          \
     * first + i of (T, in), which is zero when hash4(seed, call, li * SW_LORA_NTARGETS + t, first + i)       \
     * < p * (2^64-1), else x * 1/(1-p). out is BF16 or F32; add: out += that (the backward's dx). */         \
    X(dropout, (sw_ctx *ctx, int dev, void *out, sw_dtype out_t, bool add, const sw_bf16 *x, float p,           \
                uint64_t seed, uint64_t call, uint64_t which, uint64_t first, int64_t n))                     \
    /* Cross-entropy over rows of float32 logits (rows, V): loss[r] = logsumexp(row) - row[target[r]];       \
     * when dlogits != NULL also row r of dlogits = bf16(dscale * (softmax(row) - onehot(target[r]))),        \
     * at dlogits + r*V. A row whose target is outside [0, V) gets loss 0 and a zero gradient row.           \
     * In place: when dlogits == (sw_bf16 *)logits, row r's gradient is written into the first half of row   \
     * r's own float storage, at (sw_bf16 *)(logits + r*V), i.e. with a leading dimension of 2*V bf16        \
     * elements (each row is read fully before it is overwritten). No other overlap is allowed. */           \
    X(cross_entropy, (sw_ctx *ctx, int dev, float *loss, sw_bf16 *dlogits, const float *logits,                \
                      const int32_t *target, float dscale, int64_t rows, int64_t V))                          \
    /* out[0] = sum of x[i]^2 in double, deterministic (fixed reduction order). */                            \
    X(sumsq, (sw_ctx *ctx, int dev, double *out, const float *x, int64_t n))                                  \
    /* AdamW over flat float32 arrays, torch's single-tensor arithmetic as core/optim.c (step is the         \
     * 1-based count after this update; gscale multiplies g first, for clipping). */                          \
    X(adamw, (sw_ctx *ctx, int dev, float *p, const float *g, float *m, float *v, int64_t n, float gscale,     \
              double lr, double beta1, double beta2, double eps, double wd, int64_t step))                    \
    /* SGD with momentum as core/optim.c (buf NULL when momentum == 0). */                                    \
    X(sgd, (sw_ctx *ctx, int dev, float *p, const float *g, float *buf, int64_t n, float gscale, double lr,    \
            double momentum, double wd, int64_t step))                                                        \
    /* Flash-style attention over packed samples: q (T, Hq, D), k, v (T, Hkv, D) bf16; sample s holds rows   \
     * cu[s] .. cu[s+1]-1 (cu: n_seqs+1 int32 on the device; max_len the longest sample), causal inside     \
     * the sample, window > 0 limits a query to the last `window` keys (itself included), GQA by            \
     * Hq/Hkv groups, scale 1/sqrt(D). out (T, Hq, D) bf16, lse (Hq, T) float32 natural-log. */              \
    X(attn_fwd, (sw_ctx *ctx, int dev, sw_bf16 *out, float *lse, const sw_bf16 *q, const sw_bf16 *k,          \
                 const sw_bf16 *v, const int32_t *cu, int n_seqs, int64_t max_len, int64_t T, int64_t window, \
                 int64_t Hq, int64_t Hkv, int64_t D))                                                         \
    /* Backward: WRITES dq (T, Hq, D), dk, dv (T, Hkv, D). ws: sw_attn_bwd_ws_bytes(T, Hq, Hkv, D) bytes     \
     * of device scratch. */                                                                                  \
    X(attn_bwd, (sw_ctx *ctx, int dev, sw_bf16 *dq, sw_bf16 *dk, sw_bf16 *dv, const sw_bf16 *dout,            \
                 const sw_bf16 *out, const float *lse, const sw_bf16 *q, const sw_bf16 *k, const sw_bf16 *v,  \
                 const int32_t *cu, int n_seqs, int64_t max_len, int64_t T, int64_t window, int64_t Hq,       \
                 int64_t Hkv, int64_t D, void *ws))

#define SW_GPU_DECLARE(name, args) sw_status sw_##name##_cuda args; sw_status sw_##name##_emu args;
SW_GPU_OPS(SW_GPU_DECLARE)
#undef SW_GPU_DECLARE

size_t sw_attn_bwd_ws_bytes(int64_t T, int64_t Hq, int64_t Hkv, int64_t D);

/* One table per backend, so the engine is written once. */
typedef struct sw_gpu_ops {
#define SW_GPU_MEMBER(name, args) sw_status(*name) args;
    SW_GPU_OPS(SW_GPU_MEMBER)
#undef SW_GPU_MEMBER
} sw_gpu_ops;

extern const sw_gpu_ops sw_gpu_ops_emu;
#ifdef SW_HAVE_CUDA
extern const sw_gpu_ops sw_gpu_ops_cuda;
#endif

/* Per-device CUDA resources kept by kernels/cuda/runtime.cu and gemm.cu. */
#ifdef SW_HAVE_CUDA
void *sw_cuda_stream(int dev);       /* cudaStream_t the ops run on */
/* kernels/cuda/side.cu: copies on a second stream, ordered by events. */
sw_status sw_cuda_pin(sw_ctx *ctx, int dev, void *host, size_t bytes); /* page-lock accounted host memory */
void      sw_cuda_unpin(int dev, void *host);
sw_status sw_cuda_sync_event_new(sw_ctx *ctx, int dev, void **ev); /* no timing; sw_cuda_event_free frees it */
/* after the op stream's queued work, copy on the side stream, then record done */
sw_status sw_cuda_side_copy(sw_ctx *ctx, int dev, void *dst, const void *src, size_t bytes, void *done);
sw_status sw_cuda_wait_event(sw_ctx *ctx, int dev, void *ev); /* the op stream waits for ev */
#endif

#ifdef __cplusplus
}
#endif
#endif
