/* config.c — sw_model_config from a Hugging Face config.json (Llama,
 * Mistral, Qwen2, Qwen3; SmolLM and other Llama-shaped models say
 * model_type "llama").
 *
 * Defaults follow the transformers config classes (LlamaConfig,
 * MistralConfig, Qwen2Config, Qwen3Config) for keys a file leaves out,
 * with one exception: num_key_value_heads defaults to num_attention_heads
 * in every family (transformers' Qwen classes say 32 and Mistral's 8, which
 * no real checkpoint relies on and which would be wrong for most of them).
 * The sizes that define a model (vocab_size, hidden_size,
 * intermediate_size, num_hidden_layers, num_attention_heads) are required.
 * RoPE settings are read from the old keys (rope_theta, rope_scaling) or
 * the transformers 5 ones (rope_parameters: {rope_theta, rope_type, ...}).
 * Anything we would have to ignore to run the model (another activation,
 * MLP biases, an unknown RoPE scaling) is SW_EUNSUPPORTED, not dropped.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const arch_names[SW_ARCH_COUNT] = {
    [SW_ARCH_LLAMA] = "llama",
    [SW_ARCH_MISTRAL] = "mistral",
    [SW_ARCH_QWEN2] = "qwen2",
    [SW_ARCH_QWEN3] = "qwen3",
};

const char *sw_arch_name(sw_arch a) {
    if ((unsigned)a >= SW_ARCH_COUNT) return "?";
    return arch_names[a];
}

bool sw_arch_from_name(const char *name, sw_arch *out) {
    for (int i = 0; i < SW_ARCH_COUNT; i++) {
        if (!strcmp(name, arch_names[i])) {
            *out = (sw_arch)i;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- fields */

typedef struct parser {
    sw_ctx *ctx;
    const char *path;
} parser;

/* Integer field. Absent or null: def (or an error naming it when def < 0
 * and required). Must be >= min. */
static sw_status get_int(parser *p, json_t *obj, const char *key, bool required, int64_t def, int64_t min,
                         int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" is missing", p->path, key);
        *out = def;
        return SW_OK;
    }
    if (!json_is_integer(v))
        return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" must be an integer", p->path, key);
    json_int_t x = json_integer_value(v);
    if (x < min) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" is %lld, must be at least %lld", p->path, key,
                               (long long)x, (long long)min);
    *out = x;
    return SW_OK;
}

static sw_status get_num(parser *p, json_t *obj, const char *key, bool required, double def, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" is missing", p->path, key);
        *out = def;
        return SW_OK;
    }
    if (!json_is_number(v)) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" must be a number", p->path, key);
    double x = json_number_value(v);
    if (!(x > 0)) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" is %g, must be positive", p->path, key, x);
    *out = x;
    return SW_OK;
}

static sw_status get_bool(parser *p, json_t *obj, const char *key, bool def, bool *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return SW_OK;
    }
    if (!json_is_boolean(v)) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" must be true or false", p->path, key);
    *out = json_is_true(v);
    return SW_OK;
}

static sw_status get_token(parser *p, json_t *obj, const char *key, int32_t def, int32_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return SW_OK;
    }
    if (json_is_null(v)) {
        *out = -1;
        return SW_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > INT32_MAX)
        return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" must be a token id", p->path, key);
    *out = (int32_t)json_integer_value(v);
    return SW_OK;
}

/* eos_token_id: an id, a list of ids, or null. */
static sw_status get_eos(parser *p, json_t *obj, int32_t def, sw_model_config *c) {
    json_t *v = json_object_get(obj, "eos_token_id");
    c->n_eos = 0;
    if (!v) {
        if (def >= 0) c->eos_ids[c->n_eos++] = def;
        return SW_OK;
    }
    if (json_is_null(v)) return SW_OK;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n > SW_MAX_EOS)
            return sw_err(p->ctx, SW_EUNSUPPORTED, "%s: \"eos_token_id\" lists %zu ids; at most %d are supported",
                          p->path, n, SW_MAX_EOS);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX)
                return sw_err(p->ctx, SW_EFORMAT, "%s: \"eos_token_id\" entry %zu is not a token id", p->path, i + 1);
            c->eos_ids[c->n_eos++] = (int32_t)json_integer_value(e);
        }
        return SW_OK;
    }
    int32_t id;
    if (get_token(p, obj, "eos_token_id", -1, &id)) return p->ctx->status;
    if (id >= 0) c->eos_ids[c->n_eos++] = id;
    return SW_OK;
}

/* ------------------------------------------------------------------ RoPE */

static sw_status parse_rope(parser *p, json_t *root, sw_model_config *c) {
    json_t *params = json_object_get(root, "rope_parameters");
    if (params && !json_is_null(params) && !json_is_object(params))
        return sw_err(p->ctx, SW_EFORMAT, "%s: \"rope_parameters\" must be an object", p->path);
    if (json_is_null(params)) params = NULL;
    /* rope_theta: top level (transformers 4) or inside rope_parameters (5). */
    json_t *theta_from = json_object_get(root, "rope_theta") ? root : params ? params : root;
    if (get_num(p, theta_from, "rope_theta", false, 10000.0, &c->rope_theta)) return p->ctx->status;

    json_t *rs = json_object_get(root, "rope_scaling");
    const char *field = "rope_scaling";
    if (!rs || json_is_null(rs)) {
        rs = params;
        field = "rope_parameters";
    }
    c->rope_scaling = SW_ROPE_NONE;
    c->rope_factor = 1.0;
    c->rope_low_freq_factor = c->rope_high_freq_factor = 0.0;
    c->rope_orig_max_pos = 0;
    if (!rs) return SW_OK;
    if (!json_is_object(rs)) return sw_err(p->ctx, SW_EFORMAT, "%s: \"%s\" must be an object or null", p->path, field);
    json_t *ty = json_object_get(rs, "rope_type");
    if (!ty) ty = json_object_get(rs, "type");
    const char *type = "default";
    if (ty && !json_is_null(ty)) {
        if (!json_is_string(ty)) return sw_err(p->ctx, SW_EFORMAT, "%s: %s.rope_type must be a string", p->path, field);
        type = json_string_value(ty);
    }
    if (!strcmp(type, "default")) return SW_OK;
    /* Field errors inside read "config.json: rope_scaling (llama3): ...". */
    char where[512];
    snprintf(where, sizeof where, "%.300s: %s (%.100s)", p->path, field, type);
    parser sub = {p->ctx, where};
    if (!strcmp(type, "linear")) {
        c->rope_scaling = SW_ROPE_LINEAR;
        return get_num(&sub, rs, "factor", true, 0, &c->rope_factor);
    }
    if (!strcmp(type, "llama3")) {
        c->rope_scaling = SW_ROPE_LLAMA3;
        int64_t orig;
        if (get_num(&sub, rs, "factor", true, 0, &c->rope_factor) ||
            get_num(&sub, rs, "low_freq_factor", true, 0, &c->rope_low_freq_factor) ||
            get_num(&sub, rs, "high_freq_factor", true, 0, &c->rope_high_freq_factor) ||
            get_int(&sub, rs, "original_max_position_embeddings", true, 0, 1, &orig))
            return p->ctx->status;
        c->rope_orig_max_pos = orig;
        if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
            return sw_err(p->ctx, SW_EFORMAT, "%s: %s: high_freq_factor (%g) must be above low_freq_factor (%g)",
                          p->path, field, c->rope_high_freq_factor, c->rope_low_freq_factor);
        return SW_OK;
    }
    return sw_err(p->ctx, SW_EUNSUPPORTED, "%s: %s type '%s' is not supported (default, linear and llama3 are)",
                  p->path, field, type);
}

/* ------------------------------------------------------------------ main */

static sw_status parse(parser *p, json_t *root, sw_model_config *c) {
    sw_ctx *ctx = p->ctx;
    if (!json_is_object(root)) return sw_err(ctx, SW_EFORMAT, "%s: not a JSON object", p->path);
    json_t *mt = json_object_get(root, "model_type");
    if (!mt) return sw_err(ctx, SW_EFORMAT, "%s: \"model_type\" is missing", p->path);
    if (!json_is_string(mt)) return sw_err(ctx, SW_EFORMAT, "%s: \"model_type\" must be a string", p->path);
    if (!sw_arch_from_name(json_string_value(mt), &c->arch))
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: model_type '%s' is not supported (llama, mistral, qwen2, qwen3 are)",
                      p->path, json_string_value(mt));
    sw_arch a = c->arch;
    bool qwen = a == SW_ARCH_QWEN2 || a == SW_ARCH_QWEN3;

    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (silu is)", p->path,
                      json_is_string(act) ? json_string_value(act) : "?");

    if (get_int(p, root, "vocab_size", true, 0, 1, &c->vocab) ||
        get_int(p, root, "hidden_size", true, 0, 1, &c->hidden) ||
        get_int(p, root, "intermediate_size", true, 0, 1, &c->intermediate) ||
        get_int(p, root, "num_hidden_layers", true, 0, 1, &c->n_layers) ||
        get_int(p, root, "num_attention_heads", true, 0, 1, &c->n_heads) ||
        get_int(p, root, "num_key_value_heads", false, c->n_heads, 1, &c->n_kv_heads))
        return ctx->status;
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return sw_err(ctx, SW_EFORMAT, "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads (%lld)",
                      p->path, (long long)c->n_heads, (long long)c->n_kv_heads);
    /* Qwen3 sets head_dim apart from hidden / heads; its class default is 128. */
    int64_t hd_def = a == SW_ARCH_QWEN3 ? 128 : c->hidden / c->n_heads;
    if (!json_object_get(root, "head_dim") && a != SW_ARCH_QWEN3 && c->hidden % c->n_heads)
        return sw_err(ctx, SW_EFORMAT, "%s: hidden_size (%lld) is not a multiple of num_attention_heads (%lld) and "
                      "there is no head_dim", p->path, (long long)c->hidden, (long long)c->n_heads);
    if (get_int(p, root, "head_dim", false, hd_def, 1, &c->head_dim)) return ctx->status;
    if (c->head_dim % 2) return sw_err(ctx, SW_EFORMAT, "%s: head_dim (%lld) must be even for RoPE", p->path,
                                       (long long)c->head_dim);

    int64_t pos_def = a == SW_ARCH_LLAMA ? 2048 : a == SW_ARCH_MISTRAL ? 4096 * 32 : 32768;
    if (get_int(p, root, "max_position_embeddings", false, pos_def, 1, &c->max_pos) ||
        get_num(p, root, "rms_norm_eps", false, 1e-6, &c->rms_eps) || parse_rope(p, root, c))
        return ctx->status;
    c->rope_interleaved = false; /* HF checkpoints rotate halves */

    bool attn_bias, mlp_bias;
    if (get_bool(p, root, "tie_word_embeddings", false, &c->tie_embeddings) ||
        get_bool(p, root, "attention_bias", false, &attn_bias) || get_bool(p, root, "mlp_bias", false, &mlp_bias))
        return ctx->status;
    if (mlp_bias) return sw_err(ctx, SW_EUNSUPPORTED, "%s: mlp_bias is not supported", p->path);
    /* Qwen2 always has q/k/v biases (and never an o_proj bias). For Llama
     * and Qwen3, attention_bias also gives o_proj a bias, which this struct
     * cannot say: the loader must look for o_proj.bias. */
    c->qkv_bias = a == SW_ARCH_QWEN2 ? true : attn_bias;
    c->qk_norm = a == SW_ARCH_QWEN3;

    c->sliding_window = 0;
    c->max_window_layers = 0;
    if (a == SW_ARCH_MISTRAL) {
        if (get_int(p, root, "sliding_window", false, json_object_get(root, "sliding_window") ? 0 : 4096, 1,
                    &c->sliding_window))
            return ctx->status;
    } else if (qwen) {
        bool use;
        if (get_bool(p, root, "use_sliding_window", false, &use)) return ctx->status;
        if (use && (get_int(p, root, "sliding_window", false, json_object_get(root, "sliding_window") ? 0 : 4096, 1,
                            &c->sliding_window) ||
                    get_int(p, root, "max_window_layers", false, 28, 0, &c->max_window_layers)))
            return ctx->status;
    }

    /* Token ids: Llama and Mistral classes default bos 1 / eos 2, Qwen none;
     * an explicit null means none. */
    int32_t bos_def = qwen ? -1 : 1, eos_def = qwen ? -1 : 2;
    if (get_token(p, root, "bos_token_id", bos_def, &c->bos_id) || get_eos(p, root, eos_def, c) ||
        get_token(p, root, "pad_token_id", -1, &c->pad_id))
        return ctx->status;
    return SW_OK;
}

sw_status sw_config_from_hf_json(sw_ctx *ctx, const char *path, sw_model_config *out) {
    char buf[4096];
    struct stat sb;
    /* A model directory stands for its config.json. */
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        if (n + 13 > sizeof buf) return sw_err(ctx, SW_EINVAL, "%s: path too long", path);
        snprintf(buf, sizeof buf, "%s%sconfig.json", path, n && path[n - 1] == '/' ? "" : "/");
        path = buf;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return sw_err(ctx, SW_EIO, "%s: cannot open: %s", path, strerror(errno));
        fclose(f);
        return sw_err(ctx, SW_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                      jerr.column);
    }
    sw_model_config c;
    memset(&c, 0, sizeof c);
    parser p = {ctx, path};
    sw_status s = parse(&p, root, &c);
    json_decref(root);
    if (!s) *out = c;
    return s;
}
