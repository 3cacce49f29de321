/* nf4.c — bitsandbytes' 4-bit NormalFloat (NF4) format and its "double
 * quantization" of the block scales, on the CPU.
 *
 * What bitsandbytes does (functional.quantize_4bit, kernels kQuantizeBlockwise
 * / dQuantizeNF4, and the pure-torch "default" backend used on CPU):
 *   - blocks of 64 values; absmax = max |x| over the block (float32);
 *   - each value is scaled by the float32 reciprocal, x * (1 / absmax), and
 *     coded as the number of decision thresholds it is strictly greater
 *     than. The thresholds are the midpoints of neighbouring table entries;
 *     a value exactly on a midpoint takes the lower code (the CUDA kernel
 *     tests `x > t`, torch.bucketize(right=False) puts x == t in the lower
 *     bucket). The CUDA kernel's literal thresholds equal the float32
 *     midpoints (a + b) / 2 of the table, so computing them here reproduces
 *     both paths bit for bit;
 *   - two codes per byte, the first element in the high nibble.
 *   - an all-zero block: the CUDA kernel computes 0 * (1/0) = NaN, which no
 *     threshold beats, so it writes code 0 (-1.0); the CPU/default path
 *     clamps absmax to 1e-38 first and writes code 7 (0.0). Both decode to
 *     zero since absmax is 0; we write 7 (the CPU path's choice).
 *
 * Double quantization (compress_statistics=True): offset = mean(absmax);
 * (absmax - offset) is quantized blockwise to 8 bits in blocks of 256 with
 * the signed "dynamic" map (create_dynamic_map(signed=True)), keeping one
 * float32 absmax per 256-block. The 8-bit coder follows the CUDA kernel
 * (dQuantize<0>): nearest map entry, and on an exact midpoint the entry
 * that its binary search ended on. Decoding is map[q] * absmax2 + offset in
 * float32, two roundings, as bitsandbytes does.
 */
#include <math.h>
#include <string.h>

#include "../ops.h"

/* bitsandbytes' get_4bit_type("nf4"): quantiles of N(0, 1) scaled to
 * [-1, 1], stored as float32. */
const float sw_nf4_table[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/* ------------------------------------------------------------------ NF4 */

static void nf4_thresholds(float mid[15]) {
    for (int i = 0; i < 15; i++) mid[i] = (sw_nf4_table[i] + sw_nf4_table[i + 1]) * 0.5f;
}

/* Number of thresholds x is strictly above; NaN is above none (code 0),
 * as in the CUDA decision tree. */
static inline uint8_t nf4_code(const float mid[15], float x) {
    uint8_t c = 0;
    for (int i = 0; i < 15; i++) c += (uint8_t)(x > mid[i]);
    return c;
}

void sw_nf4_quant_cpu(uint8_t *codes, float *absmax, const float *src, int64_t n) {
    float mid[15];
    nf4_thresholds(mid);
    int64_t nb = n / SW_NF4_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        const float *x = src + b * SW_NF4_BLOCK;
        uint8_t *out = codes + b * (SW_NF4_BLOCK / 2);
        float m = 0.0f;
        for (int i = 0; i < SW_NF4_BLOCK; i++) m = fmaxf(m, fabsf(x[i]));
        absmax[b] = m;
        if (m == 0.0f) {
            memset(out, 0x77, SW_NF4_BLOCK / 2); /* code 7 = 0.0, see the top */
            continue;
        }
        /* A reciprocal, then a multiply: what both bnb paths do; x / m can
         * round differently and flip a code that sits on a threshold. */
        float inv = 1.0f / m;
        for (int i = 0; i < SW_NF4_BLOCK / 2; i++) {
            uint8_t hi = nf4_code(mid, x[2 * i] * inv);
            uint8_t lo = nf4_code(mid, x[2 * i + 1] * inv);
            out[i] = (uint8_t)(hi << 4 | lo);
        }
    }
}

void sw_nf4_dequant_cpu(float *dst, const uint8_t *codes, const float *absmax, int64_t n) {
    int64_t nb = n / SW_NF4_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        float m = absmax[b];
        const uint8_t *c = codes + b * (SW_NF4_BLOCK / 2);
        float *y = dst + b * SW_NF4_BLOCK;
        for (int i = 0; i < SW_NF4_BLOCK / 2; i++) {
            y[2 * i] = sw_nf4_table[c[i] >> 4] * m;
            y[2 * i + 1] = sw_nf4_table[c[i] & 15] * m;
        }
    }
}

/* ------------------------------------------------- the 8-bit dynamic map */

/* bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7,
 * total_bits=8): for exponent e = 0..6, the 2^e midpoints of
 * torch.linspace(0.1, 1, 2^e + 1) times 10^(e-6), with both signs, plus 0
 * and 1, sorted. The values are those torch computes on an AVX2 or AVX-512
 * machine (read from bnb 0.50.2 / torch 2.15): its vectorised float32
 * linspace rounds 42 of them one ulp away from a scalar evaluation of the
 * same formula, so they are listed rather than recomputed. Checkpoints
 * carry their own map (nested_quant_map); this one is for quantizing. */
static const float dynamic_map[256] = {
    -0.99296874f, -0.9789063f, -0.96484375f, -0.9507812f, -0.93671876f, -0.92265624f, -0.9085938f, -0.89453125f,
    -0.8804687f, -0.86640626f, -0.85234374f, -0.8382813f, -0.82421875f, -0.8101562f, -0.79609376f, -0.78203124f,
    -0.7679688f, -0.75390625f, -0.7398437f, -0.72578126f, -0.7117188f, -0.6976563f, -0.68359375f, -0.6695312f,
    -0.65546876f, -0.6414063f, -0.6273438f, -0.61328125f, -0.5992187f, -0.58515626f, -0.5710938f, -0.5570313f,
    -0.54296875f, -0.5289062f, -0.5148437f, -0.50078124f, -0.4867187f, -0.47265625f, -0.45859373f, -0.44453126f,
    -0.43046874f, -0.41640624f, -0.40234375f, -0.38828123f, -0.37421876f, -0.36015624f, -0.34609374f, -0.33203125f,
    -0.31796873f, -0.30390626f, -0.28984374f, -0.27578127f, -0.26171875f, -0.24765624f, -0.23359375f, -0.21953125f,
    -0.20546874f, -0.19140625f, -0.17734376f, -0.16328125f, -0.14921875f, -0.13515624f, -0.12109375f, -0.107031256f,
    -0.09859375f, -0.09578126f, -0.092968754f, -0.09015625f, -0.08734375f, -0.08453125f, -0.08171876f, -0.07890625f,
    -0.07609375f, -0.07328125f, -0.070468746f, -0.067656256f, -0.06484375f, -0.06203125f, -0.059218753f, -0.05640625f,
    -0.05359375f, -0.05078125f, -0.04796875f, -0.04515625f, -0.042343747f, -0.03953125f, -0.036718752f, -0.03390625f,
    -0.03109375f, -0.028281251f, -0.02546875f, -0.02265625f, -0.019843752f, -0.01703125f, -0.01421875f, -0.01140625f,
    -0.00971875f, -0.009156249f, -0.00859375f, -0.00803125f, -0.00746875f, -0.00690625f, -0.00634375f, -0.00578125f,
    -0.0052187503f, -0.0046562497f, -0.00409375f, -0.0035312497f, -0.00296875f, -0.00240625f, -0.00184375f, -0.0012812499f,
    -0.0009437501f, -0.00083125f, -0.00071875006f, -0.0006062501f, -0.00049375003f, -0.00038125002f, -0.00026875004f, -0.00015625001f,
    -8.875e-05f, -6.625e-05f, -4.375e-05f, -2.1249998e-05f, -7.75e-06f, -3.2500002e-06f, -5.5000004e-07f, 0.0f,
    5.5000004e-07f, 3.2500002e-06f, 7.75e-06f, 2.1249998e-05f, 4.375e-05f, 6.625e-05f, 8.875e-05f, 0.00015625001f,
    0.00026875004f, 0.00038125002f, 0.00049375003f, 0.0006062501f, 0.00071875006f, 0.00083125f, 0.0009437501f, 0.0012812499f,
    0.00184375f, 0.00240625f, 0.00296875f, 0.0035312497f, 0.00409375f, 0.0046562497f, 0.0052187503f, 0.00578125f,
    0.00634375f, 0.00690625f, 0.00746875f, 0.00803125f, 0.00859375f, 0.009156249f, 0.00971875f, 0.01140625f,
    0.01421875f, 0.01703125f, 0.019843752f, 0.02265625f, 0.02546875f, 0.028281251f, 0.03109375f, 0.03390625f,
    0.036718752f, 0.03953125f, 0.042343747f, 0.04515625f, 0.04796875f, 0.05078125f, 0.05359375f, 0.05640625f,
    0.059218753f, 0.06203125f, 0.06484375f, 0.067656256f, 0.070468746f, 0.07328125f, 0.07609375f, 0.07890625f,
    0.08171876f, 0.08453125f, 0.08734375f, 0.09015625f, 0.092968754f, 0.09578126f, 0.09859375f, 0.107031256f,
    0.12109375f, 0.13515624f, 0.14921875f, 0.16328125f, 0.17734376f, 0.19140625f, 0.20546874f, 0.21953125f,
    0.23359375f, 0.24765624f, 0.26171875f, 0.27578127f, 0.28984374f, 0.30390626f, 0.31796873f, 0.33203125f,
    0.34609374f, 0.36015624f, 0.37421876f, 0.38828123f, 0.40234375f, 0.41640624f, 0.43046874f, 0.44453126f,
    0.45859373f, 0.47265625f, 0.4867187f, 0.50078124f, 0.5148437f, 0.5289062f, 0.54296875f, 0.5570313f,
    0.5710938f, 0.58515626f, 0.5992187f, 0.61328125f, 0.6273438f, 0.6414063f, 0.65546876f, 0.6695312f,
    0.68359375f, 0.6976563f, 0.7117188f, 0.72578126f, 0.7398437f, 0.75390625f, 0.7679688f, 0.78203124f,
    0.79609376f, 0.8101562f, 0.82421875f, 0.8382813f, 0.85234374f, 0.86640626f, 0.8804687f, 0.89453125f,
    0.9085938f, 0.92265624f, 0.93671876f, 0.9507812f, 0.96484375f, 0.9789063f, 0.99296874f, 1.0f,
};

void sw_dynamic_map_signed(float map[256]) { memcpy(map, dynamic_map, sizeof dynamic_map); }

/* The CUDA kernel's 8-bit coder (dQuantize<0>) over a sorted 256-entry map:
 * a binary search from the middle entry with steps 64, 32, ..., 1, then
 * the nearer of the entry it ended on and the bracketing neighbour; a tie
 * keeps the entry it ended on. */
static uint8_t code8(const float *map, float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f;
    float val = map[pivot];
    for (int step = 64; step > 0; step >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += step;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= step;
        }
        val = map[pivot];
    }
    if (upper_pivot == 255) upper = map[255];
    if (lower_pivot == 0) lower = map[0];
    if (x > val) return (uint8_t)(x > (upper + val) * 0.5f ? upper_pivot : pivot);
    return (uint8_t)(x < (lower + val) * 0.5f ? lower_pivot : pivot);
}

void sw_blockwise8_quant_cpu(uint8_t *q, float *absmax, const float *src, const float *map,
                             int64_t n, int64_t block) {
    for (int64_t s = 0, b = 0; s < n; s += block, b++) {
        int64_t len = n - s < block ? n - s : block;
        float m = 0.0f;
        for (int64_t i = 0; i < len; i++) m = fmaxf(m, fabsf(src[s + i]));
        absmax[b] = m;
        if (m == 0.0f) {
            /* Both bnb paths write entry 0 here (CUDA: 0 * inf = NaN, which
             * searches to the bottom; CPU: explicitly); it decodes to zero. */
            memset(q + s, 0, (size_t)len);
            continue;
        }
        float inv = 1.0f / m;
        for (int64_t i = 0; i < len; i++) q[s + i] = code8(map, src[s + i] * inv);
    }
}

void sw_blockwise8_dequant_cpu(float *dst, const uint8_t *q, const float *absmax,
                               const float *map, int64_t n, int64_t block) {
    for (int64_t i = 0; i < n; i++) dst[i] = map[q[i]] * absmax[i / block];
}

/* ------------------------------------------- double quantization of absmax */

void sw_nf4_double_quant_cpu(uint8_t *qabsmax, float *absmax2, float *offset,
                             const float *absmax, int64_t nblocks, float *scratch) {
    /* bnb takes absmax.mean() in float32 on the device; a double sum is the
     * correctly rounded mean, which torch's float32 reduction matches or
     * misses by an ulp. The offset is stored, so readers never recompute it. */
    double sum = 0.0;
    for (int64_t i = 0; i < nblocks; i++) sum += absmax[i];
    float off = nblocks ? (float)(sum / (double)nblocks) : 0.0f;
    *offset = off;
    float map[256];
    sw_dynamic_map_signed(map);
    for (int64_t i = 0; i < nblocks; i++) scratch[i] = absmax[i] - off;
    sw_blockwise8_quant_cpu(qabsmax, absmax2, scratch, map, nblocks, SW_NF4_NESTED_BLOCK);
}

void sw_nf4_double_dequant_cpu(float *absmax, const uint8_t *qabsmax, const float *absmax2,
                               const float *map, float offset, int64_t nblocks) {
    float dyn[256];
    if (!map) {
        sw_dynamic_map_signed(dyn);
        map = dyn;
    }
    for (int64_t i = 0; i < nblocks; i++) {
        float v = map[qabsmax[i]] * absmax2[i / SW_NF4_NESTED_BLOCK];
        absmax[i] = v + offset; /* two float32 roundings, as bnb */
    }
}
