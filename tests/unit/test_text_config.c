/* test_text_config.c — HF config.json parsing for each family, RoPE scaling
 * variants (transformers 4 and 5 spellings), defaults, and bad files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"

static char dir[256], path[300];

static sw_status parse(const char *json, sw_model_config *c, sw_ctx *ctx) {
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    sw_ctx_init(ctx);
    memset(c, 0x5a, sizeof *c);
    return sw_config_from_hf_json(ctx, path, c);
}

static void expect_fail(const char *json, sw_status s, const char *want) {
    sw_ctx ctx;
    sw_model_config c;
    CHECK_EQ_INT(parse(json, &c, &ctx), s);
    CHECK_CONTAINS(ctx.msg, path);
    CHECK_CONTAINS(ctx.msg, want);
}

#define SIZES "\"vocab_size\": 1000, \"hidden_size\": 256, \"intermediate_size\": 512, " \
              "\"num_hidden_layers\": 2, \"num_attention_heads\": 8"

static void test_llama(void) {
    sw_ctx ctx;
    sw_model_config c;
    /* Llama 3.2 1B as published (rope_scaling llama3, eos a list). */
    const char *j = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 128256,"
                    " \"hidden_size\": 2048, \"intermediate_size\": 8192, \"num_hidden_layers\": 16,"
                    " \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"head_dim\": 64,"
                    " \"max_position_embeddings\": 131072, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0,"
                    " \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0,"
                    " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
                    " \"tie_word_embeddings\": true, \"attention_bias\": false, \"mlp_bias\": false,"
                    " \"hidden_act\": \"silu\", \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009],"
                    " \"torch_dtype\": \"bfloat16\", \"quantization_config\": {\"load_in_4bit\": true}}";
    CHECK_EQ_INT(parse(j, &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.arch, SW_ARCH_LLAMA);
    CHECK_EQ_INT(c.vocab, 128256);
    CHECK_EQ_INT(c.hidden, 2048);
    CHECK_EQ_INT(c.intermediate, 8192);
    CHECK_EQ_INT(c.n_layers, 16);
    CHECK_EQ_INT(c.n_heads, 32);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.head_dim, 64);
    CHECK_EQ_INT(c.max_pos, 131072);
    CHECK(c.rope_theta == 500000.0 && c.rms_eps == 1e-5);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_LLAMA3);
    CHECK(c.rope_factor == 32 && c.rope_low_freq_factor == 1 && c.rope_high_freq_factor == 4);
    CHECK_EQ_INT(c.rope_orig_max_pos, 8192);
    CHECK(c.tie_embeddings && !c.qkv_bias && !c.qk_norm && !c.rope_interleaved);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.bos_id, 128000);
    CHECK_EQ_INT(c.n_eos, 3);
    CHECK_EQ_INT(c.eos_ids[2], 128009);
    CHECK_EQ_INT(c.pad_id, -1);

    /* SmolLM2-style minimal llama: defaults fill in. */
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES "}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK_EQ_INT(c.max_pos, 2048);
    CHECK(c.rope_theta == 10000.0 && c.rms_eps == 1e-6);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_NONE);
    CHECK(!c.tie_embeddings);
    CHECK_EQ_INT(c.bos_id, 1);
    CHECK_EQ_INT(c.n_eos, 1);
    CHECK_EQ_INT(c.eos_ids[0], 2);

    /* Explicit nulls: no bos/eos, head_dim from the sizes. */
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES ", \"bos_token_id\": null, \"eos_token_id\": null,"
                       " \"head_dim\": null, \"num_key_value_heads\": 2, \"attention_bias\": true, \"pad_token_id\": 0}",
                       &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.bos_id, -1);
    CHECK_EQ_INT(c.n_eos, 0);
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK_EQ_INT(c.n_kv_heads, 2);
    CHECK(c.qkv_bias);
    CHECK_EQ_INT(c.pad_id, 0);

    /* A model directory stands for its config.json. */
    CHECK_EQ_INT(sw_config_from_hf_json(&ctx, dir, &c), SW_OK);
}

static void test_rope_variants(void) {
    sw_ctx ctx;
    sw_model_config c;
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 4}}",
                       &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_LINEAR);
    CHECK(c.rope_factor == 4.0);
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": null}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_NONE);
    CHECK(c.rope_factor == 1.0);
    /* transformers 5: rope_parameters carries theta and type. */
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES ", \"rope_parameters\": {\"rope_theta\": 250000,"
                       " \"rope_type\": \"default\"}}", &c, &ctx), SW_OK);
    CHECK(c.rope_theta == 250000.0);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_NONE);
    CHECK_EQ_INT(parse("{\"model_type\": \"llama\", " SIZES ", \"rope_parameters\": {\"rope_theta\": 500000.0,"
                       " \"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                       " \"original_max_position_embeddings\": 8192}}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.rope_scaling, SW_ROPE_LLAMA3);
    CHECK(c.rope_theta == 500000.0 && c.rope_factor == 8.0);

    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
                SW_EUNSUPPORTED, "rope_scaling type 'yarn' is not supported");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}",
                SW_EUNSUPPORTED, "'dynamic'");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8,"
                " \"low_freq_factor\": 1, \"high_freq_factor\": 4}}",
                SW_EFORMAT, "rope_scaling (llama3): \"original_max_position_embeddings\" is missing");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": {\"type\": \"linear\"}}", SW_EFORMAT,
                "rope_scaling (linear): \"factor\" is missing");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_scaling\": \"linear\"}", SW_EFORMAT,
                "\"rope_scaling\" must be an object or null");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"rope_theta\": -1}", SW_EFORMAT, "\"rope_theta\" is -1");
}

static void test_families(void) {
    sw_ctx ctx;
    sw_model_config c;
    /* Mistral 7B v0.1: sliding window on every layer. */
    CHECK_EQ_INT(parse("{\"model_type\": \"mistral\", " SIZES ", \"num_key_value_heads\": 2, \"sliding_window\": 4096,"
                       " \"rope_theta\": 10000.0, \"max_position_embeddings\": 32768}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.arch, SW_ARCH_MISTRAL);
    CHECK_EQ_INT(c.sliding_window, 4096);
    CHECK_EQ_INT(c.max_window_layers, 0);
    CHECK(!c.qkv_bias && !c.qk_norm);
    CHECK_EQ_INT(c.bos_id, 1);
    /* Mistral v0.3: sliding_window null; absent means the class default 4096. */
    CHECK_EQ_INT(parse("{\"model_type\": \"mistral\", " SIZES ", \"sliding_window\": null}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.max_pos, 131072);
    CHECK_EQ_INT(parse("{\"model_type\": \"mistral\", " SIZES "}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.sliding_window, 4096);

    /* Qwen2.5-0.5B: biases, tied embeddings, the window switched off. */
    CHECK_EQ_INT(parse("{\"model_type\": \"qwen2\", \"vocab_size\": 151936, \"hidden_size\": 896,"
                       " \"intermediate_size\": 4864, \"num_hidden_layers\": 24, \"num_attention_heads\": 14,"
                       " \"num_key_value_heads\": 2, \"max_position_embeddings\": 32768, \"rms_norm_eps\": 1e-06,"
                       " \"rope_theta\": 1000000.0, \"sliding_window\": 32768, \"max_window_layers\": 21,"
                       " \"use_sliding_window\": false, \"tie_word_embeddings\": true, \"bos_token_id\": 151643,"
                       " \"eos_token_id\": 151643, \"hidden_act\": \"silu\"}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.arch, SW_ARCH_QWEN2);
    CHECK(c.qkv_bias && !c.qk_norm && c.tie_embeddings);
    CHECK_EQ_INT(c.head_dim, 64);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.bos_id, 151643);
    CHECK_EQ_INT(c.eos_ids[0], 151643);
    /* Qwen2 with the window on. */
    CHECK_EQ_INT(parse("{\"model_type\": \"qwen2\", " SIZES ", \"use_sliding_window\": true, \"sliding_window\": 2048,"
                       " \"max_window_layers\": 1}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.sliding_window, 2048);
    CHECK_EQ_INT(c.max_window_layers, 1);
    CHECK_EQ_INT(c.bos_id, -1);
    CHECK_EQ_INT(c.n_eos, 0);

    /* Qwen3-0.6B: head_dim apart from hidden / heads, q/k norms, no bias. */
    CHECK_EQ_INT(parse("{\"model_type\": \"qwen3\", \"vocab_size\": 151936, \"hidden_size\": 1024,"
                       " \"intermediate_size\": 3072, \"num_hidden_layers\": 28, \"num_attention_heads\": 16,"
                       " \"num_key_value_heads\": 8, \"head_dim\": 128, \"attention_bias\": false,"
                       " \"max_position_embeddings\": 40960, \"rope_theta\": 1000000, \"rope_scaling\": null,"
                       " \"tie_word_embeddings\": true, \"eos_token_id\": 151645}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.arch, SW_ARCH_QWEN3);
    CHECK(c.qk_norm && !c.qkv_bias && c.tie_embeddings);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK(c.rope_theta == 1e6);
    /* Qwen3's class default head_dim is 128 whatever the sizes say. */
    CHECK_EQ_INT(parse("{\"model_type\": \"qwen3\", " SIZES "}", &c, &ctx), SW_OK);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.max_pos, 32768);
}

static void test_bad(void) {
    expect_fail("{\"model_type\": \"gpt2\", " SIZES "}", SW_EUNSUPPORTED, "model_type 'gpt2' is not supported");
    expect_fail("{" SIZES "}", SW_EFORMAT, "\"model_type\" is missing");
    expect_fail("{\"model_type\": 3}", SW_EFORMAT, "\"model_type\" must be a string");
    expect_fail("[1, 2]", SW_EFORMAT, "not a JSON object");
    expect_fail("{\"model_type\": ", SW_EFORMAT, "not valid JSON");
    expect_fail("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 256, \"num_hidden_layers\": 2,"
                " \"num_attention_heads\": 8}", SW_EFORMAT, "\"intermediate_size\" is missing");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"num_key_value_heads\": 3}", SW_EFORMAT,
                "not a multiple of num_key_value_heads (3)");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"num_key_value_heads\": 0}", SW_EFORMAT,
                "\"num_key_value_heads\" is 0");
    expect_fail("{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 100, \"intermediate_size\": 5,"
                " \"num_hidden_layers\": 2, \"num_attention_heads\": 8}", SW_EFORMAT, "there is no head_dim");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"hidden_size\": \"256\"}", SW_EFORMAT, "not valid JSON");
    expect_fail("{\"model_type\": \"llama\", \"vocab_size\": 1000, \"hidden_size\": \"256\", \"intermediate_size\": 512,"
                " \"num_hidden_layers\": 2, \"num_attention_heads\": 8}", SW_EFORMAT, "\"hidden_size\" must be an integer");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"hidden_act\": \"gelu\"}", SW_EUNSUPPORTED, "hidden_act 'gelu'");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"mlp_bias\": true}", SW_EUNSUPPORTED, "mlp_bias");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"tie_word_embeddings\": 1}", SW_EFORMAT,
                "\"tie_word_embeddings\" must be true or false");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"eos_token_id\": [1, 2, 3, 4, 5]}", SW_EUNSUPPORTED,
                "lists 5 ids");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"eos_token_id\": [1, \"x\"]}", SW_EFORMAT,
                "\"eos_token_id\" entry 2");
    expect_fail("{\"model_type\": \"llama\", " SIZES ", \"bos_token_id\": 1.5}", SW_EFORMAT, "\"bos_token_id\"");

    sw_ctx ctx;
    sw_model_config c;
    memset(&c, 0x5a, sizeof c);
    sw_ctx_init(&ctx);
    CHECK_EQ_INT(sw_config_from_hf_json(&ctx, "/nonexistent/config.json", &c), SW_EIO);
    CHECK_CONTAINS(ctx.msg, "/nonexistent/config.json");
    CHECK_EQ_INT(c.hidden, 0x5a5a5a5a5a5a5a5aLL); /* untouched on failure */

    sw_arch a;
    CHECK(sw_arch_from_name("qwen3", &a) && a == SW_ARCH_QWEN3);
    CHECK(!sw_arch_from_name("gpt2", &a));
    CHECK(!strcmp(sw_arch_name(SW_ARCH_MISTRAL), "mistral"));
    CHECK(!strcmp(sw_arch_name((sw_arch)99), "?"));
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sw_test_cfg_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_llama();
    test_rope_variants();
    test_families();
    test_bad();
    unlink(path);
    rmdir(dir);
    CHECK_DONE();
}
