/* tokenizer_json.c — loading HF tokenizer.json (and tokenizer_config.json).
 *
 * Reads the parts of the format that BPE tokenizers use: model (BPE only),
 * added_tokens, normalizer, pre_tokenizer, post_processor, decoder. A step
 * type this file does not know is an error naming it, never silently skipped:
 * a tokenizer that quietly differs from HF would corrupt training data.
 * tokenizer_config.json supplies bos/eos/pad and the chat template; whether
 * BOS is added comes from tokenizer.json's post-processor alone, as with HF
 * `tokenizers` (and transformers' PreTrainedTokenizerFast).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer_impl.h"

typedef struct loader {
    sw_ctx *ctx;
    sw_tokenizer *t;
    const char *file; /* for messages */
} loader;

static sw_status bad(loader *L, const char *where, const char *fmt, const char *arg) {
    char msg[400];
    snprintf(msg, sizeof msg, fmt, arg);
    return sw_err(L->ctx, SW_EFORMAT, "%s: %s: %s", L->file, where, msg);
}

static sw_status unsupported(loader *L, const char *where, const char *type) {
    return sw_err(L->ctx, SW_EUNSUPPORTED, "%s: %s: type '%s' is not supported", L->file, where, type);
}

static const char *type_of(json_t *o) {
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "";
}

static bool get_bool(json_t *o, const char *key, bool def) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* A step's pattern: {"String": "..."} or {"Regex": "..."}. */
static sw_status get_pattern(loader *L, json_t *o, const char *where, tk_regex **re) {
    json_t *p = json_object_get(o, "pattern");
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    char w[200];
    snprintf(w, sizeof w, "%s.pattern", where);
    if (!json_is_string(s) && !json_is_string(r)) return bad(L, w, "%s", "expected {\"String\": ...} or {\"Regex\": ...}");
    json_t *v = json_is_string(s) ? s : r;
    sw_status st = tk_regex_new(L->ctx, json_string_value(v), json_string_length(v), json_is_string(s), re);
    if (st) sw_err_prefix(L->ctx, "%s: %s", L->file, w);
    return st;
}

static sw_status dup_string(loader *L, json_t *v, const char *where, char **out, size_t *len) {
    if (!json_is_string(v)) return bad(L, where, "%s", "expected a string");
    *len = json_string_length(v);
    *out = malloc(*len + 1);
    if (!*out) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    memcpy(*out, json_string_value(v), *len + 1);
    return SW_OK;
}

/* A single character (Metaspace replacement, Strip content). */
static sw_status get_char(loader *L, json_t *v, const char *where, char *buf, int *len, int32_t *cp) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int32_t c = -1;
    if (!s || !n || (size_t)tk_utf8_next(s, n, &c) != n || c < 0) return bad(L, where, "%s", "expected one character");
    if (buf) {
        memcpy(buf, s, n);
        *len = (int)n;
    }
    if (cp) *cp = c;
    return SW_OK;
}

static tk_prepend get_prepend(json_t *o) {
    const char *s = json_string_value(json_object_get(o, "prepend_scheme"));
    if (s) return !strcmp(s, "first") ? TK_PREPEND_FIRST : !strcmp(s, "never") ? TK_PREPEND_NEVER : TK_PREPEND_ALWAYS;
    return get_bool(o, "add_prefix_space", true) ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
}

/* ---- steps ----------------------------------------------------------------------- */

static sw_status load_normalizer(loader *L, json_t *o, const char *where) {
    if (json_is_null(o) || !o) return SW_OK;
    const char *type = type_of(o);
    char w[200];
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(o, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            sw_status st = load_normalizer(L, v, w);
            if (st) return st;
        }
        return SW_OK;
    }
    tk_norm *n = NULL;
    if (!strcmp(type, "Prepend") || !strcmp(type, "Replace") || !strcmp(type, "Strip")) {
        n = tk_push_norm(L->t);
        if (!n) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    }
    if (!strcmp(type, "Prepend")) {
        n->kind = TK_N_PREPEND;
        snprintf(w, sizeof w, "%s.prepend", where);
        return dup_string(L, json_object_get(o, "prepend"), w, &n->text, &n->text_len);
    }
    if (!strcmp(type, "Replace")) {
        n->kind = TK_N_REPLACE;
        sw_status st = get_pattern(L, o, where, &n->re);
        if (st) return st;
        snprintf(w, sizeof w, "%s.content", where);
        return dup_string(L, json_object_get(o, "content"), w, &n->text, &n->text_len);
    }
    if (!strcmp(type, "Strip")) {
        n->kind = TK_N_STRIP;
        n->left = get_bool(o, "strip_left", true);
        n->right = get_bool(o, "strip_right", true);
        return SW_OK;
    }
    return unsupported(L, where, type);
}

static sw_status set_behavior(loader *L, json_t *o, const char *where, tk_behavior *b) {
    const char *s = json_string_value(json_object_get(o, "behavior"));
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, names[i])) {
            *b = (tk_behavior)i;
            return SW_OK;
        }
    char w[200];
    snprintf(w, sizeof w, "%s.behavior", where);
    return bad(L, w, "unknown split behavior '%s'", s ? s : "(missing)");
}

/* GPT-2's pre-tokenizer regex, which ByteLevel(use_regex) applies. */
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static sw_status load_pre(loader *L, json_t *o, const char *where) {
    if (json_is_null(o) || !o) return SW_OK;
    const char *type = type_of(o);
    char w[200];
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(o, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            sw_status st = load_pre(L, v, w);
            if (st) return st;
        }
        return SW_OK;
    }
    if (strcmp(type, "Split") && strcmp(type, "ByteLevel") && strcmp(type, "Digits") && strcmp(type, "Metaspace"))
        return unsupported(L, where, type);
    tk_pre *p = tk_push_pre(L->t);
    if (!p) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    size_t nl = strlen(L->t->pre_name);
    snprintf(L->t->pre_name + nl, sizeof L->t->pre_name - nl, "%s%s", nl ? "+" : "", type);
    if (!strcmp(type, "Split")) {
        p->kind = TK_P_SPLIT;
        p->invert = get_bool(o, "invert", false);
        sw_status st = set_behavior(L, o, where, &p->behavior);
        return st ? st : get_pattern(L, o, where, &p->re);
    }
    if (!strcmp(type, "ByteLevel")) {
        p->kind = TK_P_BYTELEVEL;
        p->add_prefix_space = get_bool(o, "add_prefix_space", true);
        L->t->byte_level = true;
        if (!get_bool(o, "use_regex", true)) return SW_OK;
        return tk_regex_new(L->ctx, GPT2_RE, sizeof GPT2_RE - 1, false, &p->re);
    }
    if (!strcmp(type, "Digits")) {
        p->kind = TK_P_DIGITS;
        p->behavior = get_bool(o, "individual_digits", false) ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS;
        return tk_regex_new(L->ctx, "\\p{N}", 5, false, &p->re);
    }
    p->kind = TK_P_METASPACE;
    snprintf(w, sizeof w, "%s.replacement", where);
    sw_status st = get_char(L, json_object_get(o, "replacement"), w, p->rep, &p->rep_len, NULL);
    p->prepend = get_prepend(o);
    p->split = get_bool(o, "split", true);
    return st;
}

static sw_status load_decoder(loader *L, json_t *o, const char *where) {
    if (json_is_null(o) || !o) return SW_OK;
    L->t->has_decoder = true;
    const char *type = type_of(o);
    char w[200];
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(o, "decoders");
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            snprintf(w, sizeof w, "%s.decoders[%zu]", where, i);
            sw_status st = load_decoder(L, v, w);
            if (st) return st;
        }
        return SW_OK;
    }
    static const char *const names[] = {"ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace"};
    int kind = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(type, names[i])) kind = i;
    if (kind < 0) return unsupported(L, where, type);
    tk_dec *d = tk_push_dec(L->t);
    if (!d) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    d->kind = (tk_dec_kind)kind;
    sw_status st = SW_OK;
    if (d->kind == TK_D_REPLACE) {
        st = get_pattern(L, o, where, &d->re);
        snprintf(w, sizeof w, "%s.content", where);
        if (!st) st = dup_string(L, json_object_get(o, "content"), w, &d->text, &d->text_len);
    } else if (d->kind == TK_D_STRIP) {
        snprintf(w, sizeof w, "%s.content", where);
        st = get_char(L, json_object_get(o, "content"), w, NULL, NULL, &d->ch);
        d->start = (int)json_integer_value(json_object_get(o, "start"));
        d->stop = (int)json_integer_value(json_object_get(o, "stop"));
    } else if (d->kind == TK_D_METASPACE) {
        snprintf(w, sizeof w, "%s.replacement", where);
        st = get_char(L, json_object_get(o, "replacement"), w, d->rep, &d->rep_len, NULL);
        d->prepend = get_prepend(o);
    } else if (d->kind == TK_D_BYTELEVEL) {
        L->t->byte_level = true;
    }
    return st;
}

static sw_status push_post(loader *L, bool before, const int32_t *ids, int n) {
    int32_t **arr = before ? &L->t->post_before : &L->t->post_after;
    int *cnt = before ? &L->t->n_post_before : &L->t->n_post_after;
    int32_t *v = realloc(*arr, (size_t)(*cnt + n + 1) * sizeof *v);
    if (!v) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    memcpy(v + *cnt, ids, (size_t)n * sizeof *v);
    *arr = v;
    *cnt += n;
    return SW_OK;
}

static sw_status load_post(loader *L, json_t *o, const char *where) {
    if (json_is_null(o) || !o) return SW_OK;
    const char *type = type_of(o);
    char w[200];
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(o, "processors");
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            snprintf(w, sizeof w, "%s.processors[%zu]", where, i);
            sw_status st = load_post(L, v, w);
            if (st) return st;
        }
        return SW_OK;
    }
    if (!strcmp(type, "ByteLevel")) return SW_OK; /* offsets only */
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        json_t *cls = json_array_get(json_object_get(o, "cls"), 1), *sep = json_array_get(json_object_get(o, "sep"), 1);
        if (!json_is_integer(cls) || !json_is_integer(sep)) return bad(L, where, "%s", "cls/sep must be [token, id]");
        int32_t c = (int32_t)json_integer_value(cls), s = (int32_t)json_integer_value(sep);
        sw_status st = push_post(L, true, &c, 1);
        return st ? st : push_post(L, false, &s, 1);
    }
    if (strcmp(type, "TemplateProcessing")) return unsupported(L, where, type);
    json_t *single = json_object_get(o, "single"), *specials = json_object_get(o, "special_tokens");
    bool seen_a = false;
    size_t i;
    json_t *item;
    json_array_foreach(single, i, item) {
        snprintf(w, sizeof w, "%s.single[%zu]", where, i);
        if (json_object_get(item, "Sequence")) {
            seen_a = true;
            continue;
        }
        const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
        if (!name) return bad(L, w, "%s", "expected a SpecialToken or a Sequence");
        json_t *ids = json_object_get(json_object_get(specials, name), "ids");
        if (!json_is_array(ids)) return bad(L, w, "special token '%s' is not in special_tokens", name);
        size_t k;
        json_t *id;
        json_array_foreach(ids, k, id) {
            int32_t v = (int32_t)json_integer_value(id);
            sw_status st = push_post(L, !seen_a, &v, 1);
            if (st) return st;
        }
    }
    return SW_OK;
}

/* ---- model and added tokens ------------------------------------------------------------ */

static sw_status load_model(loader *L, json_t *m) {
    sw_tokenizer *t = L->t;
    if (!json_is_object(m)) return bad(L, "model", "%s", "missing or not an object");
    const char *type = type_of(m);
    if (*type && strcmp(type, "BPE")) return sw_err(L->ctx, SW_EUNSUPPORTED, "%s: model.type '%s' is not supported (BPE only)", L->file, type);
    json_t *drop = json_object_get(m, "dropout");
    if (json_is_number(drop) && json_number_value(drop) > 0)
        return sw_err(L->ctx, SW_EUNSUPPORTED, "%s: model.dropout: BPE dropout is random, not supported", L->file);
    const char *cs = json_string_value(json_object_get(m, "continuing_subword_prefix"));
    const char *ew = json_string_value(json_object_get(m, "end_of_word_suffix"));
    if ((cs && *cs) || (ew && *ew))
        return sw_err(L->ctx, SW_EUNSUPPORTED, "%s: model: continuing_subword_prefix/end_of_word_suffix are not supported", L->file);
    t->fuse_unk = get_bool(m, "fuse_unk", false);
    t->byte_fallback = get_bool(m, "byte_fallback", false);
    t->ignore_merges = get_bool(m, "ignore_merges", false);

    json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab)) return bad(L, "model.vocab", "%s", "missing or not an object");
    sw_status st;
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        const char *key = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX) {
            char w[120];
            snprintf(w, sizeof w, "model.vocab['%.60s']", key);
            return bad(L, w, "%s", "expected an id (a non-negative integer)");
        }
        if ((st = tk_add_piece(L->ctx, t, (int32_t)json_integer_value(v), key, json_object_iter_key_len(it))))
            return st;
    }
    if ((st = tk_index_vocab(L->ctx, t))) return st;

    json_t *merges = json_object_get(m, "merges");
    if (!json_is_array(merges)) return bad(L, "model.merges", "%s", "missing or not an array");
    size_t i;
    json_t *v;
    json_array_foreach(merges, i, v) {
        char w[80];
        snprintf(w, sizeof w, "%s: model.merges[%zu]", L->file, i);
        const char *a, *b;
        size_t al, bl;
        if (json_is_string(v)) { /* "a b": exactly one space, as HF requires */
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            const char *sp = memchr(s, ' ', n);
            if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
                return sw_err(L->ctx, SW_EFORMAT, "%s: expected \"left right\" (one space), got '%.60s'", w, s);
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = n - al - 1;
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            a = json_string_value(json_array_get(v, 0));
            al = json_string_length(json_array_get(v, 0));
            b = json_string_value(json_array_get(v, 1));
            bl = json_string_length(json_array_get(v, 1));
        } else {
            return sw_err(L->ctx, SW_EFORMAT, "%s: expected \"left right\" or [left, right]", w);
        }
        if ((st = tk_add_merge(L->ctx, t, a, al, b, bl, (uint32_t)i, w))) return st;
    }

    const char *unk = json_string_value(json_object_get(m, "unk_token"));
    if (unk) {
        t->unk_id = tk_strmap_get(&t->vmap, &t->vocab, unk, strlen(unk));
        if (t->unk_id < 0) return bad(L, "model.unk_token", "'%s' is not in the vocabulary", unk);
    }
    return SW_OK;
}

static sw_status load_added(loader *L, json_t *arr) {
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(c)) {
            char w[64];
            snprintf(w, sizeof w, "added_tokens[%zu].content", i);
            return bad(L, w, "%s", "missing or not a string");
        }
        tk_added a = {0};
        a.id = -1; /* HF assigns ids itself: the vocabulary's, else the next free one */
        a.content = (char *)json_string_value(c);
        a.len = json_string_length(c);
        a.special = get_bool(o, "special", false);
        a.lstrip = get_bool(o, "lstrip", false);
        a.rstrip = get_bool(o, "rstrip", false);
        a.single_word = get_bool(o, "single_word", false);
        a.normalized = get_bool(o, "normalized", !a.special);
        sw_status st = tk_add_added(L->ctx, L->t, &a);
        if (st) return st;
    }
    return SW_OK;
}

/* ---- tokenizer_config.json ------------------------------------------------------------- */

/* "bos_token": "<s>" or {"content": "<s>", ...} or null. */
static int32_t config_token(const sw_tokenizer *t, json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (json_is_null(v)) return -1;     /* explicitly none */
    if (!json_is_string(v)) return -2; /* absent: keep the guess */
    return sw_tokenizer_id(t, json_string_value(v), json_string_length(v));
}

static sw_status load_config(loader *L, json_t *cfg) {
    sw_tokenizer *t = L->t;
    int32_t v;
    if ((v = config_token(t, cfg, "bos_token")) != -2) t->bos = v;
    if ((v = config_token(t, cfg, "eos_token")) != -2) t->eos = v;
    if ((v = config_token(t, cfg, "pad_token")) != -2) t->pad = v;
    json_t *tpl = json_object_get(cfg, "chat_template");
    if (json_is_array(tpl)) { /* [{"name": "default", "template": ...}, ...] */
        size_t i;
        json_t *e, *pick = NULL;
        json_array_foreach(tpl, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (!pick || (name && !strcmp(name, "default"))) pick = e;
        }
        tpl = json_object_get(pick, "template");
    }
    if (json_is_string(tpl)) {
        free(t->chat_template);
        t->chat_template = strdup(json_string_value(tpl));
        if (!t->chat_template) return sw_err(L->ctx, SW_ENOMEM, "out of memory");
    }
    return SW_OK;
}

/* Without tokenizer_config.json: BOS/EOS from the post-processor, else by name. */
static void guess_specials(sw_tokenizer *t) {
    if (t->n_post_before) t->bos = t->post_before[0];
    if (t->n_post_after) t->eos = t->post_after[t->n_post_after - 1];
    static const char *const bos[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", NULL};
    static const char *const eos[] = {"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", NULL};
    for (int i = 0; t->bos < 0 && bos[i]; i++) t->bos = sw_tokenizer_id(t, bos[i], strlen(bos[i]));
    for (int i = 0; t->eos < 0 && eos[i]; i++) t->eos = sw_tokenizer_id(t, eos[i], strlen(eos[i]));
    if (t->bos >= 0 && !sw_tokenizer_is_special(t, t->bos)) t->bos = -1;
    if (t->eos >= 0 && !sw_tokenizer_is_special(t, t->eos)) t->eos = -1;
}

/* ---- entry points ------------------------------------------------------------------------ */

sw_status sw_tokenizer_from_json_text(sw_ctx *ctx, const char *json, size_t len, const char *config_json,
                                      size_t config_len, const char *name, sw_tokenizer **out) {
    *out = NULL;
    loader L = {ctx, NULL, name ? name : "tokenizer.json"};
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &err), *cfg = NULL;
    if (!root) return sw_err(ctx, SW_EFORMAT, "%s: line %d column %d: %s", L.file, err.line, err.column, err.text);
    sw_status st = SW_OK;
    if (!json_is_object(root)) {
        st = sw_err(ctx, SW_EFORMAT, "%s: not a JSON object", L.file);
        goto done;
    }
    if (config_json) {
        cfg = json_loadb(config_json, config_len, JSON_ALLOW_NUL, &err);
        if (!cfg) {
            st = sw_err(ctx, SW_EFORMAT, "tokenizer_config.json: line %d column %d: %s", err.line, err.column, err.text);
            goto done;
        }
    }
    L.t = tk_new();
    if (!L.t) {
        st = sw_err(ctx, SW_ENOMEM, "out of memory");
        goto done;
    }
    if ((st = load_model(&L, json_object_get(root, "model"))) ||
        (st = load_normalizer(&L, json_object_get(root, "normalizer"), "normalizer")) ||
        (st = load_pre(&L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer")) ||
        (st = load_post(&L, json_object_get(root, "post_processor"), "post_processor")) ||
        (st = load_decoder(&L, json_object_get(root, "decoder"), "decoder")) ||
        (st = load_added(&L, json_object_get(root, "added_tokens"))))
        goto done;
    snprintf(L.t->kind, sizeof L.t->kind, "%s", L.t->byte_level ? "byte-level BPE" : L.t->byte_fallback ? "SentencePiece BPE" : "BPE");
    if ((st = tk_finish(ctx, L.t))) goto done;
    for (int i = 0; i < L.t->n_post_before + L.t->n_post_after; i++) {
        int32_t id = i < L.t->n_post_before ? L.t->post_before[i] : L.t->post_after[i - L.t->n_post_before];
        if (id < 0 || id >= L.t->n_vocab) {
            st = sw_err(ctx, SW_EFORMAT, "%s: post_processor: id %d is not in the vocabulary", L.file, (int)id);
            goto done;
        }
    }
    guess_specials(L.t);
    if (cfg && (st = load_config(&L, cfg))) goto done;
    *out = L.t;
    L.t = NULL;
done:
    sw_tokenizer_free(L.t);
    json_decref(root);
    json_decref(cfg);
    return st;
}

/* The whole file, NUL-terminated; NULL with errno set on failure. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    tk_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!tk_buf_put(&b, chunk, k)) {
            fclose(f);
            tk_buf_free(&b);
            return NULL;
        }
    bool err = ferror(f);
    fclose(f);
    if (err || !tk_buf_put(&b, "", 0)) {
        tk_buf_free(&b);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

sw_status sw_tokenizer_from_json(sw_ctx *ctx, const char *path, sw_tokenizer **out) {
    *out = NULL;
    if (!path) return sw_err(ctx, SW_EINVAL, "tokenizer: no path");
    struct stat sb;
    if (stat(path, &sb)) return sw_err(ctx, SW_EIO, "%s: cannot open (no such file or directory)", path);
    size_t pl = strlen(path);
    char *dir = malloc(pl + 32), *file = malloc(pl + 32);
    if (!dir || !file) {
        free(dir);
        free(file);
        return sw_err(ctx, SW_ENOMEM, "out of memory");
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, pl + 32, "%s", path);
        snprintf(file, pl + 32, "%s/tokenizer.json", path);
    } else {
        snprintf(file, pl + 32, "%s", path);
        snprintf(dir, pl + 32, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, pl + 32, ".");
    }
    size_t len = 0, clen = 0, tlen = 0;
    char *json = read_file(file, &len), *cfg = NULL, *tpl = NULL;
    sw_status st;
    if (!json) {
        st = sw_err(ctx, SW_EIO, "%s: cannot read", file);
        goto done;
    }
    char side[4096];
    snprintf(side, sizeof side, "%s/tokenizer_config.json", dir);
    cfg = read_file(side, &clen);
    snprintf(side, sizeof side, "%s/chat_template.jinja", dir);
    tpl = read_file(side, &tlen);
    st = sw_tokenizer_from_json_text(ctx, json, len, cfg, clen, file, out);
    if (!st && tpl && !(*out)->chat_template) { /* newer repos keep the template beside */
        (*out)->chat_template = tpl;
        tpl = NULL;
    }
done:
    free(json);
    free(cfg);
    free(tpl);
    free(dir);
    free(file);
    return st;
}
