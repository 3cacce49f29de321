/* layers.c — the transformer's small ops on the CPU (float32 reference):
 * RMSNorm, rotary embeddings, SwiGLU, causal attention with GQA and an
 * optional sliding window. Each follows HF transformers' arithmetic
 * (float32 throughout) so logits match its reference within 1e-4. */
#include <math.h>
#include <string.h>

#include "../ops.h"

void sw_rmsnorm_cpu(float *y, const float *x, const float *w, float eps, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        float *yr = y + t * C;
        /* HF: variance = mean(x^2) in float32; x * rsqrt(variance + eps) * w */
        double ss = 0;
        for (int64_t c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = 1.0f / sqrtf((float)(ss / (double)C) + eps);
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] * r) * w[c];
    }
}

void sw_rope_cpu(float *x, const int32_t *pos, const float *inv_freq, bool interleaved, int64_t T,
                 int64_t H, int64_t D) {
    const int64_t half = D / 2;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            for (int64_t h = 0; h < H; h++) {
                float *v = x + (t * H + h) * D;
                /* interleaved: pairs (2i, 2i+1) as GGUF llama stores q/k;
                 * otherwise halves (i, i + D/2), HF's rotate_half. */
                int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x1 * c + x0 * s;
            }
        }
    }
}

void sw_swiglu_cpu(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

void sw_attention_cpu(float *out, const float *q, const float *k, const float *v, float *scratch,
                      int64_t pos0, int64_t window, int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t group = Hq / Hkv;
    for (int64_t t = 0; t < T; t++) {
        int64_t p = pos0 + t;                     /* this query's position */
        int64_t lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        for (int64_t h = 0; h < Hq; h++) {
            const float *qv = q + (t * Hq + h) * D;
            int64_t kh = h / group;
            float mx = -INFINITY;
            for (int64_t s = lo; s <= p; s++) {
                const float *kv = k + (s * Hkv + kh) * D;
                float dot = 0;
                for (int64_t d = 0; d < D; d++) dot += qv[d] * kv[d];
                scratch[s] = dot * scale;
                if (scratch[s] > mx) mx = scratch[s];
            }
            float sum = 0;
            for (int64_t s = lo; s <= p; s++) {
                scratch[s] = expf(scratch[s] - mx);
                sum += scratch[s];
            }
            float *o = out + (t * Hq + h) * D;
            memset(o, 0, sizeof(float) * (size_t)D);
            for (int64_t s = lo; s <= p; s++) {
                const float *vv = v + (s * Hkv + kh) * D;
                float w = scratch[s] / sum;
                for (int64_t d = 0; d < D; d++) o[d] += w * vv[d];
            }
        }
    }
}
