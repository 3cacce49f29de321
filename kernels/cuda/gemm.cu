/* gemm.cu — sw_gemm_cuda: row-major C = alpha op(A) op(B) + beta C through
 * cuBLASLt, on the device's stream (gpu_ops.h).
 *
 * cuBLASLt is column-major. A row-major (r, c) matrix with leading
 * dimension ld is, read column-major, its transpose (c, r) with the same ld,
 * so we ask for C^T (N, M) = op(B)^T op(A)^T: B goes in as Lt's "A" with
 * transa = tb, A as Lt's "B" with transb = ta, and every ld is passed
 * unchanged. The result is bit-for-bit what the row-major product means.
 *
 * The training engine calls the same few shapes thousands of times per
 * run, and building descriptors and asking the heuristic costs tens of
 * microseconds, so each device keeps a fixed-size hash table of plans: the
 * matmul descriptor, the three layouts and the algorithm chosen for one
 * (ta, tb, M, N, K, lda, ldb, ldc, types, pointer alignments). Pointer
 * alignment is part of the key because the heuristic is told how aligned
 * the buffers are (default 256 bytes); an algorithm chosen for aligned
 * buffers may fault on a row view that starts mid-buffer.
 *
 * Per device there is one cublasLt handle and one 32 MiB workspace. The
 * workspace is shared by every GEMM of the device, which is safe because
 * they all run on the one stream, in order. It comes from sw_cuda_malloc,
 * which (like every allocation in kernels/) is not charged to core/mem.c's
 * accounting: 32 MiB per device that the memory report does not show.
 */
#include <mutex>
#include <stdint.h>
#include <string.h>
#include <cublasLt.h>
#include "common.cuh"

extern "C" {
#include "../gpu_ops.h" /* dtype.h inside has no C++ guard of its own */
}

#define GEMM_MAX_DEV 8          /* as runtime.cu's SW_CUDA_MAX */
#define GEMM_WS_BYTES (32u << 20)
#define GEMM_CACHE 512          /* plans per device (power of two) */
#define GEMM_PROBE 16           /* slots tried before evicting */

/* Everything the heuristic's answer depends on. Compared with memcmp, so
 * it is zeroed before it is filled (no stray padding bytes). */
struct gemm_key {
    int64_t M, N, K, lda, ldb, ldc;
    uint8_t ta, tb, ab_t, c_t, align_a, align_b, align_c, pad;
};

struct gemm_plan {
    bool used;
    gemm_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc; /* Lt's A (our B), Lt's B (our A), C = D */
    cublasLtMatmulAlgo_t algo;
};

struct gemm_dev {
    std::mutex mu; /* one GEMM at a time per device: the plans and workspace are shared */
    bool ready;
    cublasLtHandle_t lt;
    void *ws;
    gemm_plan plans[GEMM_CACHE];
};

static gemm_dev devs[GEMM_MAX_DEV];

static sw_status lt_fail(sw_ctx *ctx, int dev, cublasStatus_t st, const char *what, int line) {
    return sw_err(ctx, st == CUBLAS_STATUS_ALLOC_FAILED ? SW_ENOMEM : SW_EDEVICE, "cuda:%d: cublasLt %s: %s at %s:%d",
                  dev, what, cublasLtGetStatusString(st), __FILE__, line);
}

#define LT_CHECK(ctx, dev, call)                                             \
    do {                                                                     \
        cublasStatus_t s_ = (call);                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) return lt_fail((ctx), (dev), s_, #call, __LINE__); \
    } while (0)

/* Largest power of two (up to 256) that divides the address: what the
 * heuristic may assume about the buffer. */
static uint8_t align_log2(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint8_t k = 0;
    while (k < 8 && !(a & ((uintptr_t)1 << k))) k++;
    return k;
}

static uint32_t key_hash(const gemm_key *k) {
    /* FNV-1a over the bytes: the keys are few, any spread will do. */
    const uint8_t *b = (const uint8_t *)k;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

static void plan_release(gemm_plan *p) {
    if (!p->used) return;
    cublasLtMatrixLayoutDestroy(p->la);
    cublasLtMatrixLayoutDestroy(p->lb);
    cublasLtMatrixLayoutDestroy(p->lc);
    cublasLtMatmulDescDestroy(p->op);
    p->used = false;
}

static cudaDataType_t lt_type(uint8_t t) { return t == SW_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* Build descriptors and ask the heuristic for its first choice. On failure
 * p is left unused and everything made so far is destroyed. */
static sw_status plan_make(sw_ctx *ctx, int dev, gemm_dev *d, gemm_plan *p, const gemm_key *k) {
    memset(p, 0, sizeof *p);
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t st;
    const char *what = "";
    int nres = 0;
    cublasLtMatmulHeuristicResult_t res;
    /* Plain f32 compute in both cases: for f32 inputs that means no TF32,
     * so f32 GEMMs are exact to f32 rounding as the CPU reference is. */
    cublasOperation_t opa = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint64_t ws = GEMM_WS_BYTES;
    uint32_t al_a = 1u << k->align_b, al_b = 1u << k->align_a, al_c = 1u << k->align_c;

#define TRY(call)                                        \
    do {                                                 \
        what = #call;                                    \
        if ((st = (call)) != CUBLAS_STATUS_SUCCESS) goto fail; \
    } while (0)
    TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    /* Lt's A is op(A) (m x k) = (N x K) as stored when not transposed. */
    TRY(cublasLtMatrixLayoutCreate(&p->la, lt_type(k->ab_t), k->tb ? k->K : k->N, k->tb ? k->N : k->K, k->ldb));
    TRY(cublasLtMatrixLayoutCreate(&p->lb, lt_type(k->ab_t), k->ta ? k->M : k->K, k->ta ? k->K : k->M, k->lda));
    TRY(cublasLtMatrixLayoutCreate(&p->lc, lt_type(k->c_t), k->N, k->M, k->ldc));
    TRY(cublasLtMatmulPreferenceCreate(&pref));
    TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
    TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
    TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c));
    TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
    TRY(cublasLtMatmulAlgoGetHeuristic(d->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &nres));
#undef TRY
    cublasLtMatmulPreferenceDestroy(pref);
    if (nres < 1) {
        st = CUBLAS_STATUS_NOT_SUPPORTED;
        what = "no algorithm for this shape";
        pref = NULL;
        goto fail;
    }
    p->algo = res.algo;
    p->key = *k;
    p->used = true;
    return SW_OK;
fail:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
    return sw_err(ctx, st == CUBLAS_STATUS_ALLOC_FAILED ? SW_ENOMEM : SW_EDEVICE,
                  "cuda:%d: cublasLt %s: %s (gemm ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld ldb=%lld ldc=%lld)", dev,
                  what, cublasLtGetStatusString(st), k->ta, k->tb, (long long)k->M, (long long)k->N,
                  (long long)k->K, (long long)k->lda, (long long)k->ldb, (long long)k->ldc);
}

/* The plan for k: found, or made in a free slot of its probe window, or in
 * place of the window's first slot when all are taken (the table is sized
 * so that a run's shapes fit; eviction only keeps it bounded). */
static sw_status plan_get(sw_ctx *ctx, int dev, gemm_dev *d, const gemm_key *k, gemm_plan **out) {
    uint32_t h = key_hash(k);
    gemm_plan *free_slot = NULL;
    for (int i = 0; i < GEMM_PROBE; i++) {
        gemm_plan *p = &d->plans[(h + i) & (GEMM_CACHE - 1)];
        if (p->used && !memcmp(&p->key, k, sizeof *k)) {
            *out = p;
            return SW_OK;
        }
        if (!p->used && !free_slot) free_slot = p;
    }
    if (!free_slot) {
        free_slot = &d->plans[h & (GEMM_CACHE - 1)];
        plan_release(free_slot);
    }
    sw_status st = plan_make(ctx, dev, d, free_slot, k);
    *out = free_slot;
    return st;
}

/* The handle and workspace of a device, made on first use; a failure is
 * reported and retried on the next call. Called with d->mu held. */
static sw_status dev_ready(sw_ctx *ctx, int dev, gemm_dev *d) {
    if (d->ready) return SW_OK;
    if (!d->lt) LT_CHECK(ctx, dev, cublasLtCreate(&d->lt));
    if (!d->ws && sw_cuda_malloc(ctx, dev, GEMM_WS_BYTES, &d->ws) != SW_OK) return ctx->status;
    d->ready = true;
    return SW_OK;
}

/* K == 0: the product is empty and C = beta C (zero when beta is 0, without
 * reading C), which cuBLASLt does not promise for k = 0. */
template <typename T>
__global__ void scale_kernel(T *c, int64_t M, int64_t N, int64_t ldc, float beta) {
    int64_t total = M * N;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        T *p = c + (i / N) * ldc + i % N;
        if constexpr (sizeof(T) == 4) *p = beta == 0.0f ? 0.0f : beta * *p;
        else {
            /* bf16 bits; round to nearest even like sw_f32_to_bf16 */
            float v = beta == 0.0f ? 0.0f : beta * __uint_as_float((uint32_t)*p << 16);
            uint32_t u = __float_as_uint(v);
            if ((u & 0x7fffffffu) > 0x7f800000u) *p = (uint16_t)((u >> 16) | 0x40);
            else *p = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}

extern "C" sw_status sw_gemm_cuda(sw_ctx *ctx, int dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                  float alpha, const void *A, sw_dtype ab_t, int64_t lda, const void *B, int64_t ldb,
                                  float beta, void *C, sw_dtype c_t, int64_t ldc) {
    if (sw_cuda_usable(ctx, dev)) return ctx->status;
    if (dev < 0 || dev >= GEMM_MAX_DEV) return sw_err(ctx, SW_EDEVICE, "cuda:%d: no such device for gemm", dev);
    if ((ab_t != SW_BF16 && ab_t != SW_F32) || (c_t != SW_BF16 && c_t != SW_F32) ||
        (ab_t == SW_F32 && c_t == SW_BF16))
        return sw_err(ctx, SW_EUNSUPPORTED, "gemm: inputs %s with output %s (want bf16 or f32 inputs; bf16 "
                      "output only from bf16 inputs)", sw_dtype_name(ab_t), sw_dtype_name(c_t));
    if (M <= 0 || N <= 0) return SW_OK;
    SW_CUDA_CHECK(ctx, dev, cudaSetDevice(dev));
    cudaStream_t s = (cudaStream_t)sw_cuda_stream(dev);
    if (K <= 0) {
        unsigned g = sw_cuda_blocks(M * N, 256);
        if (c_t == SW_F32) scale_kernel<float><<<g, 256, 0, s>>>((float *)C, M, N, ldc, beta);
        else scale_kernel<uint16_t><<<g, 256, 0, s>>>((uint16_t *)C, M, N, ldc, beta);
        SW_CUDA_CHECK(ctx, dev, cudaGetLastError());
        return SW_OK;
    }

    gemm_key k;
    memset(&k, 0, sizeof k);
    k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb, k.ldc = ldc;
    k.ta = ta, k.tb = tb, k.ab_t = (uint8_t)ab_t, k.c_t = (uint8_t)c_t;
    k.align_a = align_log2(A), k.align_b = align_log2(B), k.align_c = align_log2(C);

    gemm_dev *d = &devs[dev];
    std::lock_guard<std::mutex> lock(d->mu);
    if (dev_ready(ctx, dev, d)) return ctx->status;
    gemm_plan *p;
    if (plan_get(ctx, dev, d, &k, &p)) return ctx->status;
    /* C is read (beta) and written (D) in place: same pointer, same layout. */
    LT_CHECK(ctx, dev, cublasLtMatmul(d->lt, p->op, &alpha, B, p->la, A, p->lb, &beta, C, p->lc, C, p->lc, &p->algo,
                                      d->ws, GEMM_WS_BYTES, s));
    return SW_OK;
}
