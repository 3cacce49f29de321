/* tokenizer_gguf.c — a tokenizer from a GGUF's tokenizer.ggml.* metadata.
 *
 * GGUF stores the vocabulary, not the pipeline: the pipeline comes from the
 * model family, the way llama.cpp rebuilds it.
 *   "gpt2": byte-level BPE with merges; tokenizer.ggml.pre names the
 *           pre-tokenizer, translated to the HF steps that family's
 *           tokenizer.json uses (so both load to the same tokenizer);
 *   "llama": SentencePiece BPE: merges ranked by piece score, byte fallback,
 *           "▁" for spaces, one "▁" before each run of text
 *           (tokenizer.ggml.add_space_prefix, default true).
 * Token types: 2 unknown and 3 control become special added tokens, 4
 * user-defined plain added tokens (all matched in the raw text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

enum { GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_USER = 4, GT_UNUSED = 5, GT_BYTE = 6 };

static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *gname(const sw_gguf *g) {
    const char *p = sw_gguf_path(g);
    return p ? p : "gguf";
}

static sw_status push_regex_pre(sw_ctx *ctx, sw_tokenizer *t, tk_pre_kind kind, const char *re, tk_behavior bh) {
    tk_pre *p = tk_push_pre(t);
    if (!p) return sw_err(ctx, SW_ENOMEM, "out of memory");
    p->kind = kind;
    p->behavior = bh;
    return re ? tk_regex_new(ctx, re, strlen(re), false, &p->re) : SW_OK;
}

/* tokenizer.ggml.pre -> HF pre-tokenizer steps (see llama.cpp's llama-vocab.cpp
 * for the names and the HF tokenizer.json files for the steps). */
static sw_status gpt2_pipeline(sw_ctx *ctx, sw_tokenizer *t, const char *pre, size_t n) {
    char name[48];
    snprintf(name, sizeof name, "%.*s", (int)(n < 40 ? n : 40), pre ? pre : "default");
    snprintf(t->pre_name, sizeof t->pre_name, "%s", name);
    sw_status st = SW_OK;
    bool regex_in_bytelevel = false;
    if (!strcmp(name, "default") || !strcmp(name, "gpt-2") || !strcmp(name, "gpt2") || !strcmp(name, "olmo") ||
        !strcmp(name, "mpt")) {
        regex_in_bytelevel = true;
    } else if (!strcmp(name, "smollm") || !strcmp(name, "starcoder") || !strcmp(name, "refact") ||
               !strcmp(name, "codeshell")) {
        st = push_regex_pre(ctx, t, TK_P_DIGITS, "\\p{N}", TK_SPLIT_ISOLATED);
        regex_in_bytelevel = true;
    } else if (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3")) {
        st = push_regex_pre(ctx, t, TK_P_SPLIT, LLAMA3_RE, TK_SPLIT_ISOLATED);
        t->ignore_merges = true; /* as Llama 3's tokenizer.json and llama.cpp */
    } else if (!strcmp(name, "qwen2") || !strcmp(name, "deepseek-r1-qwen")) {
        st = push_regex_pre(ctx, t, TK_P_SPLIT, QWEN2_RE, TK_SPLIT_ISOLATED);
    } else {
        return sw_err(ctx, SW_EUNSUPPORTED, "tokenizer.ggml.pre '%s' is not supported (known: default, gpt-2, smollm, "
                      "starcoder, llama-bpe, qwen2)", name);
    }
    if (st || (st = push_regex_pre(ctx, t, TK_P_BYTELEVEL, regex_in_bytelevel ? GPT2_RE : NULL, TK_SPLIT_ISOLATED)))
        return st;
    tk_dec *d = tk_push_dec(t);
    if (!d) return sw_err(ctx, SW_ENOMEM, "out of memory");
    d->kind = TK_D_BYTELEVEL;
    t->has_decoder = true;
    t->byte_level = true;
    snprintf(t->kind, sizeof t->kind, "byte-level BPE");
    return SW_OK;
}

static sw_status spm_pipeline(sw_ctx *ctx, sw_tokenizer *t, bool space_prefix) {
    static const char sp[] = "\xE2\x96\x81"; /* ▁ */
    tk_norm *nm;
    if (space_prefix) {
        if (!(nm = tk_push_norm(t)) || !(nm->text = strdup(sp))) return sw_err(ctx, SW_ENOMEM, "out of memory");
        nm->kind = TK_N_PREPEND;
        nm->text_len = 3;
    }
    if (!(nm = tk_push_norm(t)) || !(nm->text = strdup(sp))) return sw_err(ctx, SW_ENOMEM, "out of memory");
    nm->kind = TK_N_REPLACE;
    nm->text_len = 3;
    sw_status st = tk_regex_new(ctx, " ", 1, true, &nm->re);
    if (st) return st;
    tk_dec *d;
    if (!(d = tk_push_dec(t)) || !(d->text = strdup(" "))) return sw_err(ctx, SW_ENOMEM, "out of memory");
    d->kind = TK_D_REPLACE;
    d->text_len = 1;
    if ((st = tk_regex_new(ctx, sp, 3, true, &d->re))) return st;
    if (!(d = tk_push_dec(t))) return sw_err(ctx, SW_ENOMEM, "out of memory");
    d->kind = TK_D_BYTEFALLBACK;
    if (!(d = tk_push_dec(t))) return sw_err(ctx, SW_ENOMEM, "out of memory");
    d->kind = TK_D_FUSE;
    if (space_prefix) {
        if (!(d = tk_push_dec(t))) return sw_err(ctx, SW_ENOMEM, "out of memory");
        d->kind = TK_D_STRIP;
        d->ch = ' ';
        d->start = 1;
    }
    t->has_decoder = true;
    t->byte_fallback = true;
    t->fuse_unk = true;
    snprintf(t->kind, sizeof t->kind, "SentencePiece BPE");
    snprintf(t->pre_name, sizeof t->pre_name, "sentencepiece");
    return SW_OK;
}

/* A numeric array as int32 (token types) or float (scores): n elements. */
static bool get_numbers(const sw_gguf *g, const char *key, int64_t n, sw_gguf_type want, void *out) {
    sw_gguf_type elem;
    int64_t count;
    if (!sw_gguf_get_arr(g, key, &elem, &count) || elem != want || count != n) return false;
    const void *p = sw_gguf_arr_data(g, key);
    if (!p) return false;
    memcpy(out, p, (size_t)n * 4); /* both are 4-byte little-endian; the map may be unaligned */
    return true;
}

static int32_t get_id(const sw_gguf *g, const char *key, int32_t n) {
    int64_t v;
    return sw_gguf_get_int(g, key, &v) && v >= 0 && v < n ? (int32_t)v : -1;
}

static bool get_flag(const sw_gguf *g, const char *key, bool def) {
    bool v;
    return sw_gguf_get_bool(g, key, &v) ? v : def;
}

sw_status sw_tokenizer_from_gguf(sw_ctx *ctx, const sw_gguf *g, sw_tokenizer **out) {
    *out = NULL;
    if (!g) return sw_err(ctx, SW_EINVAL, "tokenizer: no GGUF");
    const char *model, *pre = NULL;
    size_t mlen, plen = 0;
    if (!sw_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen))
        return sw_err(ctx, SW_EFORMAT, "%s: no tokenizer.ggml.model: this GGUF has no tokenizer", gname(g));
    bool gpt2 = mlen == 4 && !memcmp(model, "gpt2", 4), llama = mlen == 5 && !memcmp(model, "llama", 5);
    if (!gpt2 && !llama)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)", gname(g),
                      (int)(mlen > 40 ? 40 : mlen), model);
    sw_gguf_type elem;
    int64_t n;
    if (!sw_gguf_get_arr(g, "tokenizer.ggml.tokens", &elem, &n) || elem != SW_GGUF_STRING || n <= 0 || n >= INT32_MAX)
        return sw_err(ctx, SW_EFORMAT, "%s: tokenizer.ggml.tokens: missing or not an array of strings", gname(g));

    sw_tokenizer *t = tk_new();
    int32_t *types = malloc((size_t)n * sizeof *types);
    float *scores = llama ? malloc((size_t)n * sizeof *scores) : NULL;
    uint8_t *mergeable = malloc((size_t)n);
    sw_status st = SW_OK;
    if (!t || !types || (llama && !scores) || !mergeable) {
        st = sw_err(ctx, SW_ENOMEM, "out of memory");
        goto done;
    }
    if (!get_numbers(g, "tokenizer.ggml.token_type", n, SW_GGUF_I32, types))
        for (int64_t i = 0; i < n; i++) types[i] = GT_NORMAL;
    if (llama && !get_numbers(g, "tokenizer.ggml.scores", n, SW_GGUF_F32, scores)) {
        st = sw_err(ctx, SW_EFORMAT, "%s: tokenizer.ggml.scores: missing, or not %lld f32 values", gname(g), (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if (!sw_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &len)) {
            st = sw_err(ctx, SW_EFORMAT, "%s: tokenizer.ggml.tokens[%lld]: unreadable", gname(g), (long long)i);
            goto done;
        }
        if ((st = tk_add_piece(ctx, t, (int32_t)i, s, len))) goto done;
        mergeable[i] = types[i] != GT_UNUSED;
    }
    if ((st = tk_index_vocab(ctx, t))) goto done;

    if (gpt2) {
        int64_t nm;
        if (!sw_gguf_get_arr(g, "tokenizer.ggml.merges", &elem, &nm) || elem != SW_GGUF_STRING) {
            st = sw_err(ctx, SW_EFORMAT, "%s: tokenizer.ggml.merges: missing or not an array of strings", gname(g));
            goto done;
        }
        for (int64_t i = 0; i < nm; i++) {
            const char *s;
            size_t len;
            char where[96];
            snprintf(where, sizeof where, "%s: tokenizer.ggml.merges[%lld]", gname(g), (long long)i);
            const char *sp = sw_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &len) ? memchr(s, ' ', len) : NULL;
            if (!sp) {
                st = sw_err(ctx, SW_EFORMAT, "%s: expected \"left right\"", where);
                goto done;
            }
            if ((st = tk_add_merge(ctx, t, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1, (uint32_t)i, where)))
                goto done;
        }
        sw_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &plen);
        char prebuf[64];
        snprintf(prebuf, sizeof prebuf, "%.*s", (int)(plen < 60 ? plen : 60), pre ? pre : "default");
        if ((st = gpt2_pipeline(ctx, t, prebuf, strlen(prebuf)))) {
            sw_err_prefix(ctx, "%s", gname(g));
            goto done;
        }
    } else {
        if ((st = spm_pipeline(ctx, t, get_flag(g, "tokenizer.ggml.add_space_prefix", true)))) goto done;
        if ((st = tk_merges_from_scores(ctx, t, scores, mergeable))) goto done;
    }

    /* Unknown, control and user-defined tokens are matched in the raw text. */
    for (int64_t i = 0; i < n; i++) {
        if (types[i] == GT_UNKNOWN && t->unk_id < 0) t->unk_id = (int32_t)i;
        if (types[i] != GT_UNKNOWN && types[i] != GT_CONTROL && types[i] != GT_USER) continue;
        tk_added a = {0};
        size_t len;
        a.content = (char *)tk_strtab_get(&t->vocab, (int32_t)i, &len);
        a.len = len;
        a.id = (int32_t)i;
        a.special = types[i] != GT_USER;
        st = tk_add_added(ctx, t, &a); /* copies the content */
        if (st) goto done;
    }
    int32_t unk = get_id(g, "tokenizer.ggml.unknown_token_id", (int32_t)n);
    if (llama && unk >= 0) t->unk_id = unk;
    t->bos = get_id(g, "tokenizer.ggml.bos_token_id", (int32_t)n);
    t->eos = get_id(g, "tokenizer.ggml.eos_token_id", (int32_t)n);
    t->pad = get_id(g, "tokenizer.ggml.padding_token_id", (int32_t)n);
    if (get_flag(g, "tokenizer.ggml.add_bos_token", llama) && t->bos >= 0) {
        if (!(t->post_before = malloc(sizeof(int32_t)))) goto nomem;
        t->post_before[0] = t->bos;
        t->n_post_before = 1;
    }
    if (get_flag(g, "tokenizer.ggml.add_eos_token", false) && t->eos >= 0) {
        if (!(t->post_after = malloc(sizeof(int32_t)))) goto nomem;
        t->post_after[0] = t->eos;
        t->n_post_after = 1;
    }
    const char *tpl;
    size_t tlen;
    if (sw_gguf_get_str(g, "tokenizer.chat_template", &tpl, &tlen)) {
        if (!(t->chat_template = malloc(tlen + 1))) goto nomem;
        memcpy(t->chat_template, tpl, tlen);
        t->chat_template[tlen] = '\0';
    }
    if ((st = tk_finish(ctx, t))) goto done;
    *out = t;
    t = NULL;
    goto done;
nomem:
    st = sw_err(ctx, SW_ENOMEM, "out of memory");
done:
    sw_tokenizer_free(t);
    free(types);
    free(scores);
    free(mergeable);
    return st;
}
