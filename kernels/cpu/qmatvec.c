/* qmatvec.c — y = W x straight from quantized rows, for decoding.
 *
 * Generating one token multiplies each weight matrix by one vector. The
 * panel path (dequantize to float32, then GEMM) would spend its time
 * writing and re-reading float32 weights; here each block's scale is
 * applied once to a dot product of its small integers with x, the way the
 * GGUF formats were designed to be used. Rows are split across threads.
 * Summation order differs from dequantize-then-multiply, so results agree
 * with it to float32 rounding, not bit for bit.
 */
#include <string.h>

#include "../ops.h"

static inline float half_at(const uint8_t *p) { return sw_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* One row of q4_1: per block y = d*q + m, so dot = d * sum(q*x) + m * sum(x). */
static float dot_q4_1(const uint8_t *b, const float *x, int64_t n) {
    float acc = 0;
    for (int64_t k = 0; k < n / 32; k++, b += 20, x += 32) {
        float d = half_at(b), m = half_at(b + 2);
        const uint8_t *qs = b + 4;
        float sq = 0, sx = 0;
        for (int i = 0; i < 16; i++) {
            sq += (float)(qs[i] & 0x0f) * x[i] + (float)(qs[i] >> 4) * x[i + 16];
            sx += x[i] + x[i + 16];
        }
        acc += d * sq + m * sx;
    }
    return acc;
}

static float dot_q4_0(const uint8_t *b, const float *x, int64_t n) {
    float acc = 0;
    for (int64_t k = 0; k < n / 32; k++, b += 18, x += 32) {
        const uint8_t *qs = b + 2;
        float sq = 0;
        for (int i = 0; i < 16; i++)
            sq += (float)((qs[i] & 0x0f) - 8) * x[i] + (float)((qs[i] >> 4) - 8) * x[i + 16];
        acc += half_at(b) * sq;
    }
    return acc;
}

static float dot_q8_0(const uint8_t *b, const float *x, int64_t n) {
    float acc = 0;
    for (int64_t k = 0; k < n / 32; k++, b += 34, x += 32) {
        const int8_t *qs = (const int8_t *)(b + 2);
        float sq = 0;
        for (int i = 0; i < 32; i++) sq += (float)qs[i] * x[i];
        acc += half_at(b) * sq;
    }
    return acc;
}

/* NF4 (bitsandbytes order: element 2k in the high nibble). Each block is
 * decoded through the code table into 64 floats, then dotted with x in
 * eight independent lanes so the compiler can keep the adds in flight
 * (a single running sum would wait on every add). */
static float dot_nf4(const uint8_t *codes, const float *absmax, const float *x, int64_t n) {
    float acc = 0;
    float w[64];
    for (int64_t k = 0; k < n / 64; k++, codes += 32, x += 64) {
        for (int i = 0; i < 32; i++) {
            w[2 * i] = sw_nf4_table[codes[i] >> 4];
            w[2 * i + 1] = sw_nf4_table[codes[i] & 0x0f];
        }
        float lane[8] = {0};
        for (int i = 0; i < 64; i += 8)
            for (int j = 0; j < 8; j++) lane[j] += w[i + j] * x[i + j];
        float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        acc += absmax[k] * s;
    }
    return acc;
}

static float dot_f32(const float *w, const float *x, int64_t n) {
    float lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += w[i + j] * x[i + j];
    float acc = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    for (; i < n; i++) acc += w[i] * x[i];
    return acc;
}

void sw_qmatvec_cpu(float *y, const float *x, const void *w, sw_dtype t, int64_t row_bytes, int64_t rows,
                    int64_t cols) {
#pragma omp parallel
    {
        /* Types without a fused dot: dequantize one row into a per-thread
         * buffer (callers keep such rows to at most 8192 columns). */
        float rowbuf[8192];
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *p = (const uint8_t *)w + r * row_bytes;
            float v;
            switch (t) {
            case SW_Q4_1: v = dot_q4_1(p, x, cols); break;
            case SW_Q4_0: v = dot_q4_0(p, x, cols); break;
            case SW_Q8_0: v = dot_q8_0(p, x, cols); break;
            case SW_F32: v = dot_f32((const float *)p, x, cols); break;
            default:
                sw_dequant_cpu(rowbuf, p, t, cols);
                v = dot_f32(rowbuf, x, cols);
                break;
            }
            y[r] = v;
        }
    }
}

void sw_nf4_matvec_cpu(float *y, const float *x, const uint8_t *codes, const float *absmax, int64_t rows,
                       int64_t cols) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        y[r] = dot_nf4(codes + r * cols / 2, absmax + r * cols / 64, x, cols);
}
