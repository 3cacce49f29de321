/* backward.c — the transformer ops for training on the CPU: forward
 * versions that keep what the backward needs, and the backward passes.
 * Gradients here are with respect to activations only; weights are frozen
 * (LoRA's own gradients are plain GEMMs in core/train.c).
 *
 * Attention works on one sample at a time (a block of `len` tokens), one
 * query head at a time, with BLAS for the score and value products; the
 * probabilities are recomputed in the backward pass from the saved
 * log-sum-exp, so nothing of size len x len outlives a head.
 */
#include <math.h>
#include <string.h>

#include "../ops.h"

void sw_rmsnorm_fwd_cpu(float *y, float *rstd, const float *x, const float *w, float eps, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        double ss = 0;
        for (int64_t c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = 1.0f / sqrtf((float)(ss / (double)C) + eps);
        rstd[t] = r;
        for (int64_t c = 0; c < C; c++) y[t * C + c] = (xr[c] * r) * w[c];
    }
}

/* y = x r w, r = (mean(x^2) + eps)^-1/2:
 * dx = r (w dy) - x r^3 / C * sum(w dy x). Adds into dx. */
void sw_rmsnorm_bwd_cpu(float *dx, const float *dy, const float *x, const float *w, const float *rstd, int64_t T,
                        int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C, *g = dy + t * C;
        float r = rstd[t];
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += (double)g[c] * w[c] * xr[c];
        float k = (float)(s * (double)r * r * r / (double)C);
        for (int64_t c = 0; c < C; c++) dx[t * C + c] += r * w[c] * g[c] - xr[c] * k;
    }
}

/* The rotation's transpose: rotate the gradient back by -angle. */
void sw_rope_bwd_cpu(float *dx, const int32_t *pos, const float *inv_freq, bool interleaved, int64_t T, int64_t H,
                     int64_t D) {
    const int64_t half = D / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            for (int64_t h = 0; h < H; h++) {
                float *v = dx + (t * H + h) * D;
                int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
                float g0 = v[a], g1 = v[b];
                v[a] = g0 * c + g1 * s;
                v[b] = g1 * c - g0 * s;
            }
        }
}

void sw_swiglu_bwd_cpu(float *dg, float *du, const float *da, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        float silu = g[i] * sig;
        dg[i] = da[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] = da[i] * silu;
    }
}

/* Scores of head h for a block: S[i][j] = scale * q_i . k_j, masked to
 * causal (j <= i) and the window (j > i - window). */
static void scores(float *S, const float *q, const float *k, int64_t len, int64_t window, int64_t h, int64_t kh,
                   int64_t Hq, int64_t Hkv, int64_t D) {
    const float scale = 1.0f / sqrtf((float)D);
    sw_sgemm_cpu(false, true, len, len, D, scale, q + h * D, Hq * D, k + kh * D, Hkv * D, 0.0f, S, len);
    for (int64_t i = 0; i < len; i++)
        for (int64_t j = 0; j < len; j++)
            if (j > i || (window > 0 && j <= i - window)) S[i * len + j] = -INFINITY;
}

void sw_attention_fwd_cpu(float *out, float *lse, const float *q, const float *k, const float *v, float *S,
                          int64_t len, int64_t window, int64_t Hq, int64_t Hkv, int64_t D) {
    const int64_t group = Hq / Hkv;
    for (int64_t h = 0; h < Hq; h++) {
        int64_t kh = h / group;
        scores(S, q, k, len, window, h, kh, Hq, Hkv, D);
        for (int64_t i = 0; i < len; i++) {
            float *row = S + i * len, mx = -INFINITY;
            for (int64_t j = 0; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int64_t j = 0; j < len; j++) {
                row[j] = j <= i ? expf(row[j] - mx) : 0.0f;
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j <= i; j++) row[j] *= inv;
            lse[h * len + i] = mx + (float)log(sum);
        }
        sw_sgemm_cpu(false, false, len, D, len, 1.0f, S, len, v + kh * D, Hkv * D, 0.0f, out + h * D, Hq * D);
    }
}

void sw_attention_bwd_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                          const float *q, const float *k, const float *v, float *S, int64_t len, int64_t window,
                          int64_t Hq, int64_t Hkv, int64_t D) {
    const int64_t group = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    float *dP = S + len * len;
    for (int64_t h = 0; h < Hq; h++) {
        int64_t kh = h / group;
        scores(S, q, k, len, window, h, kh, Hq, Hkv, D);
        for (int64_t i = 0; i < len; i++)
            for (int64_t j = 0; j < len; j++) {
                float s = S[i * len + j];
                S[i * len + j] = s == -INFINITY ? 0.0f : expf(s - lse[h * len + i]);
            }
        /* dV += P^T dO; dP = dO V^T */
        sw_sgemm_cpu(true, false, len, D, len, 1.0f, S, len, dout + h * D, Hq * D, 1.0f, dv + kh * D, Hkv * D);
        sw_sgemm_cpu(false, true, len, len, D, 1.0f, dout + h * D, Hq * D, v + kh * D, Hkv * D, 0.0f, dP, len);
        /* dS = P (dP - rowsum(dO * O)) * scale, written over dP */
        for (int64_t i = 0; i < len; i++) {
            const float *o = out + i * Hq * D + h * D, *g = dout + i * Hq * D + h * D;
            double di = 0;
            for (int64_t d = 0; d < D; d++) di += (double)o[d] * g[d];
            for (int64_t j = 0; j < len; j++) {
                float p = S[i * len + j];
                dP[i * len + j] = p == 0.0f ? 0.0f : p * (dP[i * len + j] - (float)di) * scale;
            }
        }
        /* dQ = dS K; dK += dS^T Q */
        sw_sgemm_cpu(false, false, len, D, len, 1.0f, dP, len, k + kh * D, Hkv * D, 1.0f, dq + h * D, Hq * D);
        sw_sgemm_cpu(true, false, len, D, len, 1.0f, dP, len, q + h * D, Hq * D, 1.0f, dk + kh * D, Hkv * D);
    }
}
