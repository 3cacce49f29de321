/* convert.c — dtype conversions, fill and the counter-based normal sampler
 * (CPU reference). The bit-level half/bfloat conversions are written out
 * rather than relying on _Float16 so every compiler rounds the same way. */
#include "../ops.h"

#include <math.h>
#include <string.h>

uint16_t sw_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float sw_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t sw_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);        /* NaN */
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);       /* overflow -> inf */
    if (mag < 0x38800000u) {                                         /* subnormal or zero */
        if (mag < 0x33000000u) return (uint16_t)sign;                /* < half the smallest subnormal */
        uint32_t m = (mag & 0x7fffffu) | 0x800000u;
        int shift = 113 - (int)(mag >> 23) + 13;                     /* into the 10-bit field */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((mag >> 13) - (112u << 10));                       /* rebias 127 -> 15 */
    uint32_t rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;          /* may carry into inf: correct */
    return (uint16_t)(sign | r);
}

float sw_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        if (m == 0) u = sign;
        else { /* subnormal: normalise */
            int k = 0;
            while (!(m & 0x400u)) { m <<= 1; k++; }
            u = sign | ((uint32_t)(113 - k) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float load_f32(const void *p, sw_dtype t, int64_t i) {
    switch (t) {
    case SW_F32: return ((const float *)p)[i];
    case SW_F16: return sw_f16_to_f32(((const uint16_t *)p)[i]);
    case SW_BF16: return sw_bf16_to_f32(((const uint16_t *)p)[i]);
    case SW_I32: return (float)((const int32_t *)p)[i];
    case SW_U8: return (float)((const uint8_t *)p)[i];
    default: return NAN;
    }
}

static inline void store_f32(void *p, sw_dtype t, int64_t i, float v) {
    switch (t) {
    case SW_F32: ((float *)p)[i] = v; break;
    case SW_F16: ((uint16_t *)p)[i] = sw_f32_to_f16(v); break;
    case SW_BF16: ((uint16_t *)p)[i] = sw_f32_to_bf16(v); break;
    case SW_I32: ((int32_t *)p)[i] = (int32_t)lrintf(v); break;
    case SW_U8: ((uint8_t *)p)[i] = (uint8_t)lrintf(fminf(fmaxf(v, 0.0f), 255.0f)); break;
    default: break;
    }
}

void sw_convert_cpu(void *dst, sw_dtype dt, const void *src, sw_dtype st, int64_t n) {
    if (dt == st) {
        memmove(dst, src, (size_t)n * (size_t)sw_dtype_info_of(dt)->block_bytes);
        return;
    }
    /* i32 goes through f32, exact up to 2^24: enough for token ids and masks. */
    for (int64_t i = 0; i < n; i++) store_f32(dst, dt, i, load_f32(src, st, i));
}

void sw_fill_cpu(void *dst, sw_dtype t, double v, int64_t n) {
    if (t == SW_I32) {
        int32_t x = (int32_t)llround(v);
        for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = x;
        return;
    }
    if (t == SW_U8) {
        memset(dst, (int)lrint(fmin(fmax(v, 0), 255)), (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) store_f32(dst, t, i, (float)v);
}

/* splitmix64: a well-mixed 64-bit hash, so (seed, counter) -> independent bits. */
static inline uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void sw_randn_cpu(float *dst, uint64_t seed, uint64_t offset, float scale, int64_t n) {
    const double two_pi = 6.283185307179586;
    uint64_t key = mix64(seed);
    for (int64_t i = 0; i < n; i++) {
        /* Box-Muller on two uniforms drawn from one 64-bit hash: u1 in (0,1]. */
        uint64_t h = mix64(key ^ (offset + (uint64_t)i));
        double u1 = ((double)(h >> 40) + 1.0) / 16777216.0;
        double u2 = (double)(h & 0xffffffu) / 16777216.0;
        dst[i] = scale * (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
    }
}
