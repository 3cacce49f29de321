/* config.h — the shape of a Llama-family model, from HF config.json or GGUF
 * metadata. One struct for every family: the differences between Llama,
 * Mistral, Qwen2 and Qwen3 are flags here, not separate code paths. */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

typedef enum sw_arch {
    SW_ARCH_LLAMA = 0, /* Llama 2/3/3.1/3.2, SmolLM2 */
    SW_ARCH_MISTRAL,
    SW_ARCH_QWEN2,     /* Qwen2 / Qwen2.5: q/k/v biases */
    SW_ARCH_QWEN3,     /* Qwen3: RMSNorm on q and k per head */
    SW_ARCH_COUNT
} sw_arch;

typedef enum sw_rope_scaling {
    SW_ROPE_NONE = 0,
    SW_ROPE_LINEAR,    /* positions divided by factor */
    SW_ROPE_LLAMA3,    /* Llama 3.1 frequency-dependent scaling */
} sw_rope_scaling;

#define SW_MAX_EOS 4

typedef struct sw_model_config {
    sw_arch arch;
    int64_t vocab;
    int64_t hidden;          /* d_model */
    int64_t intermediate;    /* MLP width */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;      /* GQA: n_heads is a multiple */
    int64_t head_dim;        /* usually hidden / n_heads; Qwen3 sets it apart */
    int64_t max_pos;         /* max_position_embeddings / context_length */
    double rope_theta;
    double rms_eps;
    sw_rope_scaling rope_scaling;
    double rope_factor;
    double rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_max_pos;
    /* HF checkpoints rotate halves (q[i], q[i + d/2]); GGUF llama files
     * store q/k permuted for adjacent pairs (q[2i], q[2i+1]). */
    bool rope_interleaved;
    bool tie_embeddings;
    bool qkv_bias;
    bool qk_norm;
    int64_t sliding_window;  /* 0: full attention */
    int64_t max_window_layers; /* Qwen2: layers >= this use the window; 0: all */
    int32_t bos_id;          /* -1 when none */
    int32_t eos_ids[SW_MAX_EOS];
    int n_eos;
    int32_t pad_id;          /* -1 when none */
} sw_model_config;

const char *sw_arch_name(sw_arch a);
/* config.json's "model_type" or GGUF's general.architecture -> arch. */
bool sw_arch_from_name(const char *name, sw_arch *out);

/* Parse an HF config.json. Unknown model_type: SW_EUNSUPPORTED naming it. */
sw_status sw_config_from_hf_json(sw_ctx *ctx, const char *path, sw_model_config *out);

#endif
