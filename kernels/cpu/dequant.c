/* dequant.c — GGUF block formats to f32 (CPU reference).
 *
 * Bit-exact with the gguf Python package (gguf.quants.dequantize), which is
 * the reference the tests compare against. Its numpy code rounds to f32
 * after every operation, so each formula below keeps numpy's operation order
 * and grouping (d * q - m is not (q * d) + m once rounding is involved), and
 * no multiply may fuse with the add that follows it: GCC in ISO C mode (the
 * build uses -std=c11) does not contract, and the pragma stops clang.
 *
 * Block layouts (little-endian, f16 scales), element index i within a block:
 *   q8_0  d, qs[32] int8                       y = qs[i] * d
 *   q4_0  d, qs[16]   i<16: low nibble of qs[i], else high nibble of qs[i-16]
 *                                              y = d * (q - 8)
 *   q4_1  d, m, qs[16] (as q4_0)               y = (d * q) + m
 *   q4_k  d, dmin, scales[12], qs[128]: 8 sub-blocks of 32 with 6-bit scale
 *         and min; sub-block j takes nibble j%2 of qs[32*(j/2) .. +32]
 *                                              y = (d*sc) * q - (dmin*mn)
 *   q5_k  as q4_k plus qh[32] before qs: bit j of qh[l] is bit 4 of q
 *   q6_k  ql[128], qh[64], scales[16] int8, d: 16 sub-blocks of 16
 *                                              y = (d*sc) * (q - 32)
 */
#include "../ops.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static inline float half_at(const uint8_t *p) { return sw_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static void q8_0(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 34, y += 32) {
        float d = half_at(b);
        for (int i = 0; i < 32; i++) y[i] = (float)(int8_t)b[2 + i] * d;
    }
}

static void q4_0(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 18, y += 32) {
        float d = half_at(b);
        const uint8_t *qs = b + 2;
        for (int i = 0; i < 16; i++) {
            y[i] = d * (float)((qs[i] & 0x0f) - 8);
            y[i + 16] = d * (float)((qs[i] >> 4) - 8);
        }
    }
}

static void q4_1(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 20, y += 32) {
        float d = half_at(b), m = half_at(b + 2);
        const uint8_t *qs = b + 4;
        for (int i = 0; i < 16; i++) {
            float lo = d * (float)(qs[i] & 0x0f), hi = d * (float)(qs[i] >> 4);
            y[i] = lo + m;
            y[i + 16] = hi + m;
        }
    }
}

/* The 12 scale bytes of q4_k/q5_k hold eight 6-bit scales and eight 6-bit
 * mins: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7
 * (mins); sub-blocks 4-7 in the nibbles of bytes 8-11, topped up with the
 * high 2 bits of bytes 0-7. */
static void k_scales(const uint8_t *s, int sc[8], int mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3f;
        mn[j] = s[j + 4] & 0x3f;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 2) & 0x30);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
    }
}

/* q4_k and q5_k share everything but the fifth bit (qh NULL for q4_k). */
static void k_block(float *y, const uint8_t *b, const uint8_t *qh, const uint8_t *qs) {
    float d = half_at(b), dmin = half_at(b + 2);
    int sc[8], mn[8];
    k_scales(b + 4, sc, mn);
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)mn[j];
        const uint8_t *q = qs + 32 * (j / 2);
        int shift = 4 * (j % 2);
        for (int l = 0; l < 32; l++) {
            int v = (q[l] >> shift) & 0x0f;
            if (qh) v |= ((qh[l] >> j) & 1) << 4;
            float p = ds * (float)v;
            y[32 * j + l] = p - dm;
        }
    }
}

static void q4_k(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 144, y += 256) k_block(y, b, NULL, b + 16);
}

static void q5_k(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 176, y += 256) k_block(y, b, b + 16, b + 48);
}

/* q6_k: element i sits in half h = i/128 (r = i%128); its low 4 bits are
 * nibble r/64 of ql[64h + r%64], its high 2 bits are bits 2*(r/32) of
 * qh[32h + r%32]; its scale is scales[i/16]. */
static void q6_k(float *y, const uint8_t *b, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, b += 210, y += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = half_at(b + 208);
        for (int i = 0; i < 256; i++) {
            int h = i / 128, r = i % 128;
            int lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
            int hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
            float ds = d * (float)sc[i / 16];
            y[i] = ds * (float)((lo | hi << 4) - 32);
        }
    }
}

void sw_dequant_cpu(float *dst, const void *src, sw_dtype t, int64_t n) {
    const uint8_t *b = src;
    const sw_dtype_info *di = sw_dtype_info_of(t);
    int64_t nb = di ? n / di->block : 0;
    switch (t) {
    case SW_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case SW_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = sw_f16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        break;
    case SW_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = sw_bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        break;
    case SW_I32: case SW_U8: sw_convert_cpu(dst, SW_F32, src, t, n); break;
    case SW_Q8_0: q8_0(dst, b, nb); break;
    case SW_Q4_0: q4_0(dst, b, nb); break;
    case SW_Q4_1: q4_1(dst, b, nb); break;
    case SW_Q4_K: q4_k(dst, b, nb); break;
    case SW_Q5_K: q5_k(dst, b, nb); break;
    case SW_Q6_K: q6_k(dst, b, nb); break;
    default: /* nf4 keeps its scales apart (sw_nf4_dequant_cpu); callers check types */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        break;
    }
}
