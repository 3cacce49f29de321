/* tokenizer.c — the tokenizer object: building it (for the loaders), the
 * encode pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
 * post-processor) and decode, in the order HF's TokenizerImpl runs them.
 * Loaders live in tokenizer_json.c and tokenizer_gguf.c; the steps in
 * tokenizer_steps.c; the model in tokenizer_bpe.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interrupt.h"
#include "tokenizer_impl.h"

#define NOMEM(ctx, what) sw_err((ctx), SW_ENOMEM, "out of memory %s", (what))

/* ---- building ------------------------------------------------------------------- */

sw_tokenizer *tk_new(void) {
    sw_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->unk_id = t->bos = t->eos = t->pad = -1;
    t->next_added = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

void sw_tokenizer_free(sw_tokenizer *t) {
    if (!t) return;
    tk_strtab_free(&t->vocab);
    tk_strmap_free(&t->vmap);
    tk_pairmap_free(&t->merges);
    for (int32_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].norm);
    }
    free(t->added);
    tk_strtab_free(&t->added_tab);
    tk_strmap_free(&t->added_map);
    free(t->match_idx[0]);
    free(t->match_idx[1]);
    tk_regex_free(t->word_char);
    tk_steps_free(t);
    free(t->post_before);
    free(t->post_after);
    free(t->flags);
    tk_strtab_free(&t->bytes);
    free(t->chat_template);
    free(t);
}

sw_status tk_add_piece(sw_ctx *ctx, sw_tokenizer *t, int32_t id, const char *s, size_t n) {
    /* Real vocabularies stay under a million ids; a wild id would make the
     * per-id tables huge, so it is refused rather than allocated. */
    if (id < 0 || id >= (1 << 24))
        return sw_err(ctx, SW_EFORMAT, "token id %d for '%.*s' is out of range (0..16777215)", (int)id,
                      (int)(n > 60 ? 60 : n), s);
    if (!tk_strtab_set(&t->vocab, id, s, n)) return NOMEM(ctx, "loading the vocabulary");
    return SW_OK;
}

sw_status tk_index_vocab(sw_ctx *ctx, sw_tokenizer *t) {
    int32_t a, b;
    if (!tk_strmap_build(&t->vmap, &t->vocab, &a, &b)) return NOMEM(ctx, "indexing the vocabulary");
    return SW_OK;
}

sw_status tk_add_merge(sw_ctx *ctx, sw_tokenizer *t, const char *a, size_t alen, const char *b,
                       size_t blen, uint32_t rank, const char *where) {
    int32_t ia = tk_strmap_get(&t->vmap, &t->vocab, a, alen);
    int32_t ib = tk_strmap_get(&t->vmap, &t->vocab, b, blen);
    if (ia < 0 || ib < 0) {
        const char *s = ia < 0 ? a : b;
        size_t n = ia < 0 ? alen : blen;
        return sw_err(ctx, SW_EFORMAT, "%s: '%.*s' is not in the vocabulary", where, (int)(n > 60 ? 60 : n), s);
    }
    char stackbuf[256];
    char *joined = alen + blen <= sizeof stackbuf ? stackbuf : malloc(alen + blen);
    if (!joined) return NOMEM(ctx, "loading merges");
    memcpy(joined, a, alen);
    memcpy(joined + alen, b, blen);
    int32_t im = tk_strmap_get(&t->vmap, &t->vocab, joined, alen + blen);
    if (joined != stackbuf) free(joined);
    if (im < 0)
        return sw_err(ctx, SW_EFORMAT, "%s: the merged token '%.*s%.*s' is not in the vocabulary", where,
                      (int)(alen > 40 ? 40 : alen), a, (int)(blen > 40 ? 40 : blen), b);
    if (!tk_pairmap_put(&t->merges, ia, ib, rank, im)) return NOMEM(ctx, "loading merges");
    return SW_OK;
}

static int32_t present_count(const tk_strtab *tab) {
    int32_t n = 0;
    for (int32_t i = 0; i < tab->n; i++) n += tk_strtab_has(tab, i);
    return n;
}

static int32_t find_added(const sw_tokenizer *t, const char *s, size_t n) {
    for (int32_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, s, n)) return i;
    return -1;
}

sw_status tk_add_added(sw_ctx *ctx, sw_tokenizer *t, const tk_added *a) {
    if (!a->len) return SW_OK; /* HF ignores empty added tokens */
    int32_t k = find_added(t, a->content, a->len);
    int32_t id = a->id;
    if (k >= 0) {
        id = t->added[k].id;
    } else if (id < 0) {
        id = tk_strmap_get(&t->vmap, &t->vocab, a->content, a->len);
        if (id < 0) {
            if (t->next_added < 0) t->next_added = present_count(&t->vocab);
            id = t->next_added++;
        }
    }
    if (k < 0) {
        if (t->n_added == t->cap_added) {
            int32_t cap = t->cap_added ? t->cap_added * 2 : 32;
            tk_added *v = realloc(t->added, (size_t)cap * sizeof *v);
            if (!v) return NOMEM(ctx, "loading added tokens");
            t->added = v;
            t->cap_added = cap;
        }
        char *c = malloc(a->len + 1);
        if (!c) return NOMEM(ctx, "loading added tokens");
        memcpy(c, a->content, a->len);
        c[a->len] = '\0';
        k = t->n_added++;
        t->added[k] = (tk_added){0};
        t->added[k].content = c;
        t->added[k].len = a->len;
    }
    tk_added *d = &t->added[k];
    d->id = id;
    d->special = a->special;
    d->lstrip = a->lstrip;
    d->rstrip = a->rstrip;
    d->single_word = a->single_word;
    d->normalized = a->normalized;
    return SW_OK;
}

#define PUSH_STEP(T, arr, n)                                         \
    do {                                                             \
        T *v_ = realloc((arr), (size_t)((n) + 1) * sizeof *v_);      \
        if (!v_) return NULL;                                        \
        (arr) = v_;                                                  \
        memset(&v_[(n)], 0, sizeof *v_);                             \
        return &v_[(n)++];                                           \
    } while (0)

tk_norm *tk_push_norm(sw_tokenizer *t) { PUSH_STEP(tk_norm, t->norm, t->n_norm); }
tk_pre *tk_push_pre(sw_tokenizer *t) { PUSH_STEP(tk_pre, t->pre, t->n_pre); }
tk_dec *tk_push_dec(sw_tokenizer *t) { PUSH_STEP(tk_dec, t->dec, t->n_dec); }

/* What a token stands for in a text, for streaming (sw_tokenizer_token_bytes). */
static bool token_bytes_of(const sw_tokenizer *t, int32_t id, const char *s, size_t n, bool added, tk_buf *out) {
    out->n = 0;
    if (added) return tk_buf_put(out, s, n);
    if (t->byte_level) {
        for (size_t k = 0; k < n;) {
            int32_t cp;
            k += (size_t)tk_utf8_next(s + k, n - k, &cp);
            int b = tk_char_to_byte(cp);
            if (b < 0) { /* not byte-level text after all: keep it as it is */
                out->n = 0;
                return tk_buf_put(out, s, n);
            }
            char c = (char)b;
            if (!tk_buf_put(out, &c, 1)) return false;
        }
        return tk_buf_put(out, "", 0);
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] == id) {
            char c = (char)b;
            return tk_buf_put(out, &c, 1);
        }
    /* "▁" (or a Metaspace replacement) reads as a space. */
    const char *rep = "\xE2\x96\x81";
    size_t rl = 3;
    for (int k = 0; k < t->n_dec; k++)
        if (t->dec[k].kind == TK_D_METASPACE) {
            rep = t->dec[k].rep;
            rl = (size_t)t->dec[k].rep_len;
        }
    for (size_t k = 0; k < n;) {
        if (n - k >= rl && !memcmp(s + k, rep, rl)) {
            if (!tk_buf_put(out, " ", 1)) return false;
            k += rl;
        } else {
            if (!tk_buf_put(out, s + k, 1)) return false;
            k++;
        }
    }
    return tk_buf_put(out, "", 0);
}

static sw_status build_matchers(sw_ctx *ctx, sw_tokenizer *t) {
    for (int pass = 0; pass < 2; pass++) {
        int32_t count[257] = {0};
        for (int32_t i = 0; i < t->n_added; i++) {
            const tk_added *a = &t->added[i];
            if (a->normalized != (pass == 1)) continue;
            const char *s = pass ? a->norm : a->content;
            size_t n = pass ? a->norm_len : a->len;
            if (n) count[(uint8_t)s[0] + 1]++;
        }
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        memcpy(t->match_first[pass], count, sizeof count);
        t->match_idx[pass] = malloc(((size_t)count[256] + 1) * sizeof(int32_t));
        if (!t->match_idx[pass]) return NOMEM(ctx, "indexing added tokens");
        int32_t fill[256];
        memcpy(fill, count, sizeof fill);
        for (int32_t i = 0; i < t->n_added; i++) {
            const tk_added *a = &t->added[i];
            if (a->normalized != (pass == 1)) continue;
            const char *s = pass ? a->norm : a->content;
            size_t n = pass ? a->norm_len : a->len;
            if (n) t->match_idx[pass][fill[(uint8_t)s[0]]++] = i;
        }
    }
    return SW_OK;
}

sw_status tk_finish(sw_ctx *ctx, sw_tokenizer *t) {
    sw_status st;
    if (!t->vmap.slot && (st = tk_index_vocab(ctx, t))) return st;
    int32_t n = t->vocab.n;
    for (int32_t i = 0; i < t->n_added; i++)
        if (t->added[i].id >= n) n = t->added[i].id + 1;
    t->n_vocab = n;
    t->flags = calloc((size_t)n + 1, 1);
    if (!t->flags) return NOMEM(ctx, "loading the tokenizer");
    for (int32_t i = 0; i < t->vocab.n; i++)
        if (tk_strtab_has(&t->vocab, i)) t->flags[i] |= TK_F_PRESENT;

    /* Added tokens: flags, normal forms, the lookup table. */
    for (int32_t i = 0; i < t->n_added; i++) {
        tk_added *a = &t->added[i];
        t->flags[a->id] |= TK_F_PRESENT | TK_F_ADDED | (a->special ? TK_F_SPECIAL : 0);
        if (!tk_strtab_set(&t->added_tab, i, a->content, a->len)) return NOMEM(ctx, "loading added tokens");
        if (a->normalized) {
            tk_buf nb = {0};
            if ((st = tk_normalize(ctx, t, a->content, a->len, &nb))) return st;
            a->norm = nb.p;
            a->norm_len = nb.n;
        }
        if (a->single_word && !t->word_char && (st = tk_regex_new(ctx, "\\A\\w", 4, false, &t->word_char)))
            return st;
    }
    int32_t d1, d2;
    if (!tk_strmap_build(&t->added_map, &t->added_tab, &d1, &d2)) return NOMEM(ctx, "loading added tokens");
    if ((st = build_matchers(ctx, t))) return st;

    /* Byte fallback's <0xNN> tokens. */
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tk_strmap_get(&t->vmap, &t->vocab, name, 6);
    }

    /* Per-id bytes for streaming. */
    tk_buf tmp = {0};
    for (int32_t id = 0; id < n; id++) {
        size_t len;
        const char *s = sw_tokenizer_piece(t, id, &len);
        if (!s) continue;
        if (!token_bytes_of(t, id, s, len, t->flags[id] & TK_F_ADDED, &tmp) ||
            !tk_strtab_set(&t->bytes, id, tmp.p ? tmp.p : "", tmp.n)) {
            tk_buf_free(&tmp);
            return NOMEM(ctx, "loading the tokenizer");
        }
    }
    tk_buf_free(&tmp);

    int32_t n_special = 0;
    for (int32_t i = 0; i < n; i++) n_special += (t->flags[i] & TK_F_SPECIAL) != 0;
    snprintf(t->describe, sizeof t->describe, "%s, %d tokens (%d special), pre-tokenizer %s", t->kind,
             (int)n, (int)n_special, t->pre_name[0] ? t->pre_name : "none");
    return SW_OK;
}

/* ---- added tokens in the text (HF's AddedVocabulary::find_matches) ---------------- */

/* Is the character at s[0..n) a word character (\w)? */
static bool word_char_at(const sw_tokenizer *t, const char *s, size_t n) {
    int32_t cp;
    return tk_regex_matches(t->word_char, s, (size_t)tk_utf8_next(s, n, &cp));
}

/* Longest token of pass `pass` that s[0..n) starts with; -1 if none. */
static int32_t match_at(const sw_tokenizer *t, int pass, const char *s, size_t n, size_t *len) {
    uint8_t b = (uint8_t)s[0];
    int32_t best = -1;
    size_t best_len = 0;
    for (int32_t k = t->match_first[pass][b]; k < t->match_first[pass][b + 1]; k++) {
        const tk_added *a = &t->added[t->match_idx[pass][k]];
        const char *c = pass ? a->norm : a->content;
        size_t cl = pass ? a->norm_len : a->len;
        if (cl <= n && cl > best_len && !memcmp(s, c, cl)) {
            best = t->match_idx[pass][k];
            best_len = cl;
        }
    }
    *len = best_len;
    return best;
}

static sw_status split_added(sw_ctx *ctx, const sw_tokenizer *t, int pass, const char *s, size_t n,
                             bool at_start, tk_segs *out) {
    size_t done = 0; /* start_offset in HF */
    if (t->match_first[pass][256] > 0) {
        for (size_t p = 0; p < n;) {
            size_t len;
            int32_t k = match_at(t, pass, s + p, n - p, &len);
            if (k < 0) {
                p++;
                continue;
            }
            const tk_added *a = &t->added[k];
            size_t start = p, stop = p + len;
            p = stop; /* the search goes on after this match, kept or not */
            if (a->single_word) {
                bool before = start > 0 && word_char_at(t, s + tk_utf8_prev(s, start), start - tk_utf8_prev(s, start));
                bool after = stop < n && word_char_at(t, s + stop, n - stop);
                if (before || after) continue;
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > 0) {
                    size_t q = tk_utf8_prev(s, ns);
                    int32_t cp;
                    tk_utf8_next(s + q, ns - q, &cp);
                    if (!tk_is_space(cp)) break;
                    ns = q;
                }
                start = ns > done ? ns : done;
            }
            if (a->rstrip) {
                while (stop < n) {
                    int32_t cp;
                    int l = tk_utf8_next(s + stop, n - stop, &cp);
                    if (!tk_is_space(cp)) break;
                    stop += (size_t)l;
                }
            }
            if (start < done) start = done;
            if (done < start && !tk_segs_push(out, s + done, start - done, -1, at_start && done == 0))
                return NOMEM(ctx, "encoding");
            if (!tk_segs_push(out, s + start, stop - start, a->id, at_start && start == 0))
                return NOMEM(ctx, "encoding");
            done = stop;
            if (p < done) p = done;
        }
    }
    if (done < n && !tk_segs_push(out, s + done, n - done, -1, at_start && done == 0)) return NOMEM(ctx, "encoding");
    return SW_OK;
}

/* ---- encode ---------------------------------------------------------------------- */

static bool push_ids(int32_t **ids, int64_t *n, int64_t *cap, const int32_t *v, int k) {
    for (int i = 0; i < k; i++) {
        if (*n == *cap) {
            int64_t c = *cap ? *cap * 2 : 64;
            int32_t *nv = realloc(*ids, (size_t)c * sizeof *nv);
            if (!nv) return false;
            *ids = nv;
            *cap = c;
        }
        (*ids)[(*n)++] = v[i];
    }
    return true;
}

sw_status sw_tokenizer_encode(sw_ctx *ctx, const sw_tokenizer *t, const char *text, size_t len,
                              bool add_special, int32_t **ids_out, int64_t *n_out) {
    *ids_out = NULL;
    *n_out = 0;
    if (!t) return sw_err(ctx, SW_EINVAL, "encode: no tokenizer");
    if (!text && len) return sw_err(ctx, SW_EINVAL, "encode: NULL text");
    tk_segs raw = {0}, segs = {0};
    tk_buf norm = {0};
    int32_t *ids = NULL;
    int64_t n = 0, cap = 0;
    sw_status st;

    /* 1. Added tokens matched on the raw text; 2. the rest normalized, then
     * searched for normalized added tokens. */
    if ((st = split_added(ctx, t, 0, text ? text : "", len, true, &raw))) goto fail;
    for (size_t i = 0; i < raw.n; i++) {
        const tk_seg *g = &raw.v[i];
        if (g->id >= 0) {
            if (!tk_segs_push(&segs, raw.text.p + g->off, g->len, g->id, g->at_start)) goto nomem;
            continue;
        }
        if ((st = tk_normalize(ctx, t, raw.text.p + g->off, g->len, &norm))) goto fail;
        if ((st = split_added(ctx, t, 1, norm.p, norm.n, g->at_start, &segs))) goto fail;
    }
    /* 3. Pre-tokenize; 4. the model, word by word. */
    if ((st = tk_pre_tokenize(ctx, t, &segs))) goto fail;
    if (add_special && !push_ids(&ids, &n, &cap, t->post_before, t->n_post_before)) goto nomem;
    for (size_t i = 0; i < segs.n; i++) {
        const tk_seg *g = &segs.v[i];
        if ((i & 1023) == 1023 && (st = sw_interrupt_check(ctx))) goto fail;
        if (g->id >= 0) {
            if (!push_ids(&ids, &n, &cap, &g->id, 1)) goto nomem;
        } else if ((st = tk_bpe_word(ctx, t, segs.text.p + g->off, g->len, &ids, &n, &cap))) {
            goto fail;
        }
    }
    /* 5. The post-processor. */
    if (add_special && !push_ids(&ids, &n, &cap, t->post_after, t->n_post_after)) goto nomem;
    if (!ids && !(ids = malloc(sizeof *ids))) goto nomem;
    tk_segs_free(&raw);
    tk_segs_free(&segs);
    tk_buf_free(&norm);
    *ids_out = ids;
    *n_out = n;
    return SW_OK;
nomem:
    st = NOMEM(ctx, "encoding");
fail:
    tk_segs_free(&raw);
    tk_segs_free(&segs);
    tk_buf_free(&norm);
    free(ids);
    return st;
}

/* ---- offsets ----------------------------------------------------------------------- */

static bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Does the token's text b[0..bl) sit at text[i..)? Either exactly, or after a
 * space the tokenizer prepended (which then maps to no byte). */
static bool line_up(const char *text, size_t len, size_t i, const char *b, size_t bl, size_t *end) {
    if (bl <= len - i && !memcmp(text + i, b, bl)) {
        *end = i + bl;
        return true;
    }
    if (bl >= 1 && b[0] == ' ' && bl - 1 <= len - i && !memcmp(text + i, b + 1, bl - 1)) {
        *end = i + bl - 1;
        return true;
    }
    return false;
}

sw_status sw_tokenizer_encode_offsets(sw_ctx *ctx, const sw_tokenizer *t, const char *text, size_t len,
                                      bool add_special, int32_t **ids_out, sw_token_offset **offsets_out,
                                      int64_t *n_out) {
    *offsets_out = NULL;
    int32_t *ids;
    int64_t n;
    sw_status st = sw_tokenizer_encode(ctx, t, text, len, add_special, &ids, &n);
    if (st) {
        *ids_out = NULL;
        *n_out = 0;
        return st;
    }
    sw_token_offset *o = malloc(((size_t)n + 1) * sizeof *o);
    if (!o) {
        free(ids);
        *ids_out = NULL;
        *n_out = 0;
        return NOMEM(ctx, "encoding");
    }
    /* The post-processor's tokens stand for no text. */
    int64_t lo = add_special ? t->n_post_before : 0, hi = n - (add_special ? t->n_post_after : 0);
    if (hi < lo) hi = lo;
    for (int64_t k = 0; k < lo && k < n; k++) o[k] = (sw_token_offset){0, 0};
    for (int64_t k = hi; k < n; k++) o[k] = (sw_token_offset){(int64_t)len, (int64_t)len};
    size_t i = 0;
    int64_t unk = -1, bad = 0; /* unk: an unknown token whose end waits for the next token */
    for (int64_t k = lo; k < hi; k++) {
        bad = k;
        size_t bl = 0, end = 0;
        const char *b = sw_tokenizer_token_bytes(t, ids[k], &bl);
        if (!b) b = "";
        if (unk >= 0) {
            /* The unknown run ends where the next token lines up (on a
             * character boundary: an unknown token is whole characters). */
            size_t j = i + 1;
            while (j < len && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
            for (; j <= len; j++)
                if (line_up(text, len, j, b, bl, &end)) break;
            if (j > len) goto misaligned;
            o[unk].end = (int64_t)j;
            i = j;
            unk = -1;
            o[k] = (sw_token_offset){(int64_t)i, (int64_t)end};
            i = end;
            continue;
        }
        size_t from = i;
        if (!line_up(text, len, i, b, bl, &end)) {
            /* Whitespace the tokenizer dropped (an added token's lstrip or
             * rstrip, a Strip normalizer) belongs to this token. */
            size_t j = i;
            while (j < len && ascii_space(text[j])) j++;
            if (j > i && line_up(text, len, j, b, bl, &end)) {
                i = j;
            } else if (ids[k] == t->unk_id) {
                o[k] = (sw_token_offset){(int64_t)i, (int64_t)len};
                unk = k;
                continue;
            } else {
                goto misaligned;
            }
        }
        o[k] = (sw_token_offset){(int64_t)from, (int64_t)end};
        i = end;
    }
    if (unk >= 0) i = len;
    while (i < len && ascii_space(text[i])) i++; /* stripped at the end */
    if (i != len) {
        st = sw_err(ctx, SW_EUNSUPPORTED, "token offsets: the tokens end at byte %zu of %zu", i, len);
        goto fail;
    }
    *ids_out = ids;
    *offsets_out = o;
    *n_out = n;
    return SW_OK;
misaligned:
    st = sw_err(ctx, SW_EUNSUPPORTED,
                "token offsets: token %lld (id %d) does not line up with the text at byte %zu (a normalizer rewrote it)",
                (long long)bad, (int)ids[bad], i);
fail:
    free(ids);
    free(o);
    *ids_out = NULL;
    *n_out = 0;
    return st;
}

/* ---- decode ------------------------------------------------------------------------ */

sw_status sw_tokenizer_decode(sw_ctx *ctx, const sw_tokenizer *t, const int32_t *ids, int64_t n,
                              bool skip_special, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!t) return sw_err(ctx, SW_EINVAL, "decode: no tokenizer");
    if (n < 0 || (n > 0 && !ids)) return sw_err(ctx, SW_EINVAL, "decode: bad id array");
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !(t->flags[ids[i]] & TK_F_PRESENT))
            return sw_err(ctx, SW_EINVAL, "decode: id %d at position %lld is not a token (vocabulary: 0..%d)",
                          (int)ids[i], (long long)i, (int)t->n_vocab - 1);
    tk_buf pieces = {0}, res = {0};
    size_t *ends = malloc(((size_t)n + 1) * sizeof *ends);
    size_t k = 0;
    sw_status st = SW_OK;
    if (!ends) return NOMEM(ctx, "decoding");
    for (int64_t i = 0; i < n; i++) {
        if (skip_special && (t->flags[ids[i]] & TK_F_SPECIAL)) continue;
        size_t pl;
        const char *p = sw_tokenizer_piece(t, ids[i], &pl);
        /* A normalized added token decodes from its normal form, as in HF. */
        if (t->flags[ids[i]] & TK_F_ADDED)
            for (int32_t a = 0; a < t->n_added; a++)
                if (t->added[a].id == ids[i] && t->added[a].norm && (t->added[a].norm_len != pl || memcmp(t->added[a].norm, p, pl))) {
                    p = t->added[a].norm;
                    pl = t->added[a].norm_len;
                }
        if (!tk_buf_put(&pieces, p, pl)) {
            st = NOMEM(ctx, "decoding");
            goto done;
        }
        ends[k++] = pieces.n;
    }
    if (!(st = tk_decode_pieces(ctx, t, &pieces, ends, k, &res))) {
        *out = res.p;
        *len = res.n;
        res.p = NULL;
    }
done:
    tk_buf_free(&pieces);
    tk_buf_free(&res);
    free(ends);
    return st;
}

/* ---- accessors ---------------------------------------------------------------------- */

int32_t sw_tokenizer_vocab_size(const sw_tokenizer *t) { return t->n_vocab; }

const char *sw_tokenizer_piece(const sw_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (t->flags && (t->flags[id] & TK_F_ADDED))
        for (int32_t a = 0; a < t->n_added; a++)
            if (t->added[a].id == id) {
                if (len) *len = t->added[a].len;
                return t->added[a].content;
            }
    return tk_strtab_get(&t->vocab, id, len);
}

const char *sw_tokenizer_token_bytes(const sw_tokenizer *t, int32_t id, size_t *len) {
    return tk_strtab_get(&t->bytes, id, len);
}

int32_t sw_tokenizer_id(const sw_tokenizer *t, const char *s, size_t n) {
    int32_t a = tk_strmap_get(&t->added_map, &t->added_tab, s, n);
    if (a >= 0) return t->added[a].id;
    int32_t id = tk_strmap_get(&t->vmap, &t->vocab, s, n);
    if (id >= 0 || n > 4096) return id;
    /* Text bytes to the piece they would be stored as. */
    tk_buf b = {0};
    bool ok = true;
    for (size_t k = 0; k < n && ok; k++) {
        if (t->byte_level) {
            char c[2];
            ok = tk_buf_put(&b, c, (size_t)tk_byte_to_char((uint8_t)s[k], c));
        } else {
            ok = s[k] == ' ' ? tk_buf_put(&b, "\xE2\x96\x81", 3) : tk_buf_put(&b, s + k, 1);
        }
    }
    id = ok ? tk_strmap_get(&t->vmap, &t->vocab, b.p ? b.p : "", b.n) : -1;
    tk_buf_free(&b);
    return id;
}

bool sw_tokenizer_is_special(const sw_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->flags[id] & TK_F_SPECIAL);
}

int32_t sw_tokenizer_bos(const sw_tokenizer *t) { return t->bos; }
int32_t sw_tokenizer_eos(const sw_tokenizer *t) { return t->eos; }
int32_t sw_tokenizer_pad(const sw_tokenizer *t) { return t->pad; }
int32_t sw_tokenizer_unk(const sw_tokenizer *t) { return t->unk_id; }
const char *sw_tokenizer_chat_template(const sw_tokenizer *t) { return t->chat_template; }
const char *sw_tokenizer_describe(const sw_tokenizer *t) { return t->describe; }
