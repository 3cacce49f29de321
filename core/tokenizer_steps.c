/* tokenizer_steps.c — the pipeline steps of HF tokenizers that real
 * tokenizer.json files use: normalizers (Prepend, Replace, Strip),
 * pre-tokenizers (Split, ByteLevel, Digits, Metaspace) and decoders
 * (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace).
 *
 * Regexes are HF's Oniguruma patterns run by PCRE2. The two engines agree on
 * the constructs these patterns use (alternation order, greedy classes,
 * \p{L}/\p{N}, lookahead, (?i:...)) except \s: Oniguruma's is Unicode
 * White_Space (it includes U+0085), PCRE2's is not quite, so \s is spelled out.
 * Each step works on whole segment lists, mirroring HF's "splits"; segments
 * that already hold an added token pass through untouched.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

/* ---- regexes ------------------------------------------------------------------- */

struct tk_regex {
    pcre2_code *code;
};

#define WS_CLASS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Rewrite \s and \S (outside character classes: as classes; inside a class,
 * \s as its ranges). Everything else is copied as is. */
static bool translate(const char *p, size_t n, bool literal, tk_buf *out) {
    if (literal) {
        /* \Q...\E would break on a literal containing \E: escape byte-wise. */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
                char esc[8];
                int k = snprintf(esc, sizeof esc, "\\x{%x}", c);
                if (!tk_buf_put(out, esc, (size_t)k)) return false;
            } else if (!tk_buf_put(out, p + i, 1)) {
                return false;
            }
        }
        return tk_buf_put(out, "", 0);
    }
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            bool ok;
            if (d == 's') ok = in_class ? tk_buf_put(out, WS_CLASS, strlen(WS_CLASS))
                                        : tk_buf_put(out, "[" WS_CLASS "]", strlen(WS_CLASS) + 2);
            else if (d == 'S' && !in_class) ok = tk_buf_put(out, "[^" WS_CLASS "]", strlen(WS_CLASS) + 3);
            else ok = tk_buf_put(out, p + i, 2);
            if (!ok) return false;
            i++;
            continue;
        }
        if (c == '[') {
            in_class++;
            /* A ']' right after '[' or '[^' is a literal member. */
            if (!tk_buf_put(out, "[", 1)) return false;
            if (i + 1 < n && p[i + 1] == '^') {
                if (!tk_buf_put(out, "^", 1)) return false;
                i++;
            }
            if (i + 1 < n && p[i + 1] == ']') {
                if (!tk_buf_put(out, "]", 1)) return false;
                i++;
            }
            continue;
        }
        if (c == ']' && in_class) in_class--;
        if (!tk_buf_put(out, &c, 1)) return false;
    }
    return tk_buf_put(out, "", 0);
}

sw_status tk_regex_new(sw_ctx *ctx, const char *pat, size_t len, bool literal, tk_regex **out) {
    *out = NULL;
    tk_buf b = {0};
    if (!translate(pat, len, literal, &b)) {
        tk_buf_free(&b);
        return sw_err(ctx, SW_ENOMEM, "out of memory compiling a regex");
    }
    int err;
    PCRE2_SIZE at;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)b.p, b.n, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                     &err, &at, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        sw_status s = sw_err(ctx, SW_EFORMAT, "regex /%.*s/: %s at offset %zu", (int)(len > 200 ? 200 : len),
                             pat, (const char *)msg, (size_t)at);
        tk_buf_free(&b);
        return s;
    }
    tk_buf_free(&b);
    /* JIT is an optimisation: without it (no JIT in this PCRE2) we interpret. */
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    tk_regex *re = malloc(sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        return sw_err(ctx, SW_ENOMEM, "out of memory compiling a regex");
    }
    re->code = code;
    *out = re;
    return SW_OK;
}

void tk_regex_free(tk_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

bool tk_regex_matches(const tk_regex *re, const char *s, size_t n) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return false;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

/* One search from `start`. 1 found, 0 none, -1 error (message set). */
static int re_find(sw_ctx *ctx, const tk_regex *re, pcre2_match_data *md, const char *s, size_t n,
                   size_t start, size_t *ms, size_t *me) {
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* very long runs: retry interpreted */
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_JIT, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        sw_err(ctx, SW_EINVAL, "regex match failed: %s", (const char *)msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* ---- splitting (HF's NormalizedString::split) ----------------------------------- */

typedef struct span {
    size_t a, b;
    bool match;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t a, size_t b, bool match) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (span){a, b, match};
    return true;
}

/* Matches and the gaps between them, covering s. */
static sw_status find_matches(sw_ctx *ctx, const tk_regex *re, pcre2_match_data *md, const char *s,
                              size_t n, bool invert, spans *out) {
    out->n = 0;
    size_t prev = 0, start = 0;
    while (start <= n) {
        size_t ms, me;
        int r = re_find(ctx, re, md, s, n, start, &ms, &me);
        if (r < 0) return ctx->status;
        if (r == 0) break;
        if (prev != ms && !spans_push(out, prev, ms, invert)) goto nomem;
        if (!spans_push(out, ms, me, !invert)) goto nomem;
        prev = me;
        if (me > ms) {
            start = me;
        } else { /* empty match: step over one character */
            if (me >= n) break;
            int32_t cp;
            start = me + (size_t)tk_utf8_next(s + me, n - me, &cp);
        }
    }
    if (prev != n && !spans_push(out, prev, n, invert)) goto nomem;
    return SW_OK;
nomem:
    return sw_err(ctx, SW_ENOMEM, "out of memory pre-tokenizing");
}

/* Apply a split behaviour to `sp` in place; removed spans get match=true,
 * kept ones match=false. */
static void apply_behavior(spans *sp, tk_behavior bh) {
    size_t k = 0;
    bool prev_match = false;
    switch (bh) {
    case TK_SPLIT_REMOVED:
        return;
    case TK_SPLIT_ISOLATED:
        for (size_t i = 0; i < sp->n; i++) sp->v[i].match = false;
        return;
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < sp->n; i++) {
            bool m = sp->v[i].match;
            if (m == prev_match && k > 0) sp->v[k - 1].b = sp->v[i].b;
            else sp->v[k++] = (span){sp->v[i].a, sp->v[i].b, false};
            prev_match = m;
        }
        break;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < sp->n; i++) {
            bool m = sp->v[i].match;
            if (m && !prev_match && k > 0) sp->v[k - 1].b = sp->v[i].b;
            else sp->v[k++] = (span){sp->v[i].a, sp->v[i].b, false};
            prev_match = m;
        }
        break;
    case TK_SPLIT_MERGED_NEXT: {
        /* Walk backwards, then the kept spans are in reverse order. */
        size_t n = sp->n;
        span *tmp = sp->v; /* compact from the end into the end */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            bool m = tmp[i].match;
            if (m && !prev_match && w < n) tmp[w].a = tmp[i].a;
            else tmp[--w] = (span){tmp[i].a, tmp[i].b, false};
            prev_match = m;
        }
        memmove(sp->v, sp->v + w, (n - w) * sizeof *sp->v);
        k = n - w;
        break;
    }
    }
    sp->n = k;
}

/* ---- normalizers ------------------------------------------------------------------ */

static sw_status replace_all(sw_ctx *ctx, const tk_regex *re, pcre2_match_data *md, const char *s,
                             size_t n, const char *with, size_t wlen, tk_buf *out, spans *sp) {
    sw_status st = find_matches(ctx, re, md, s, n, false, sp);
    if (st) return st;
    for (size_t i = 0; i < sp->n; i++) {
        bool ok = sp->v[i].match ? tk_buf_put(out, with, wlen)
                                 : tk_buf_put(out, s + sp->v[i].a, sp->v[i].b - sp->v[i].a);
        if (!ok) return sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
    }
    return tk_buf_put(out, "", 0) ? SW_OK : sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
}

sw_status tk_normalize(sw_ctx *ctx, const sw_tokenizer *t, const char *s, size_t n, tk_buf *out) {
    out->n = 0;
    if (!tk_buf_put(out, s, n)) return sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
    if (!t->n_norm) return SW_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    tk_buf tmp = {0};
    spans sp = {0};
    sw_status st = SW_OK;
    if (!md) {
        st = sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
        goto done;
    }
    for (int k = 0; k < t->n_norm && !st; k++) {
        const tk_norm *nm = &t->norm[k];
        tmp.n = 0;
        if (nm->kind == TK_N_PREPEND) {
            if (!out->n) continue;
            if (!tk_buf_put(&tmp, nm->text, nm->text_len) || !tk_buf_put(&tmp, out->p, out->n))
                st = sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
        } else if (nm->kind == TK_N_REPLACE) {
            st = replace_all(ctx, nm->re, md, out->p, out->n, nm->text, nm->text_len, &tmp, &sp);
        } else { /* TK_N_STRIP */
            size_t a = 0, b = out->n;
            int32_t cp;
            while (nm->left && a < b) {
                int l = tk_utf8_next(out->p + a, b - a, &cp);
                if (!tk_is_space(cp)) break;
                a += (size_t)l;
            }
            while (nm->right && b > a) {
                size_t p = tk_utf8_prev(out->p, b);
                tk_utf8_next(out->p + p, b - p, &cp);
                if (!tk_is_space(cp)) break;
                b = p;
            }
            if (!tk_buf_put(&tmp, out->p + a, b - a)) st = sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
        }
        if (!st) { /* swap */
            tk_buf x = *out;
            *out = tmp;
            tmp = x;
        }
    }
done:
    if (!out->p && !st && !tk_buf_put(out, "", 0)) st = sw_err(ctx, SW_ENOMEM, "out of memory normalizing");
    tk_buf_free(&tmp);
    free(sp.v);
    pcre2_match_data_free(md);
    return st;
}

/* ---- pre-tokenizers ---------------------------------------------------------------- */

/* Push the kept spans of `s` (a segment of `in`) as new segments. */
static bool push_spans(tk_segs *out, const char *s, const spans *sp, bool at_start) {
    for (size_t i = 0; i < sp->n; i++) {
        if (sp->v[i].match || sp->v[i].b == sp->v[i].a) continue; /* removed, or empty */
        if (!tk_segs_push(out, s + sp->v[i].a, sp->v[i].b - sp->v[i].a, -1, at_start && sp->v[i].a == 0))
            return false;
    }
    return true;
}

static bool byte_map(tk_buf *out, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c[2];
        if (!tk_buf_put(out, c, (size_t)tk_byte_to_char((uint8_t)s[i], c))) return false;
    }
    return true;
}

static sw_status pre_step(sw_ctx *ctx, const tk_pre *p, pcre2_match_data *md, const tk_segs *in,
                          tk_segs *out, spans *sp, tk_buf *tmp) {
    for (size_t i = 0; i < in->n; i++) {
        const tk_seg *g = &in->v[i];
        const char *s = in->text.p + g->off;
        if (g->id >= 0) {
            if (!tk_segs_push(out, s, g->len, g->id, g->at_start)) goto nomem;
            continue;
        }
        sw_status st;
        switch (p->kind) {
        case TK_P_SPLIT:
        case TK_P_DIGITS:
            if ((st = find_matches(ctx, p->re, md, s, g->len, p->invert, sp))) return st;
            apply_behavior(sp, p->behavior);
            if (!push_spans(out, s, sp, g->at_start)) goto nomem;
            break;
        case TK_P_BYTELEVEL: {
            tmp->n = 0;
            if (p->add_prefix_space && (g->len == 0 || s[0] != ' ') && !tk_buf_put(tmp, " ", 1)) goto nomem;
            if (!tk_buf_put(tmp, s, g->len)) goto nomem;
            sp->n = 0;
            if (p->re) {
                if ((st = find_matches(ctx, p->re, md, tmp->p, tmp->n, false, sp))) return st;
            } else if (!spans_push(sp, 0, tmp->n, false)) {
                goto nomem;
            }
            tk_buf mapped = {0};
            for (size_t k = 0; k < sp->n; k++) {
                if (sp->v[k].b == sp->v[k].a) continue;
                mapped.n = 0;
                if (!byte_map(&mapped, tmp->p + sp->v[k].a, sp->v[k].b - sp->v[k].a) ||
                    !tk_segs_push(out, mapped.p, mapped.n, -1, g->at_start && sp->v[k].a == 0)) {
                    tk_buf_free(&mapped);
                    goto nomem;
                }
            }
            tk_buf_free(&mapped);
            break;
        }
        case TK_P_METASPACE: {
            tmp->n = 0;
            bool starts = g->len >= (size_t)p->rep_len && !memcmp(s, p->rep, (size_t)p->rep_len);
            /* The replacement happens first, so a leading space counts as "starts with". */
            if (g->len && s[0] == ' ') starts = true;
            bool prepend = !starts && (p->prepend == TK_PREPEND_ALWAYS || (p->prepend == TK_PREPEND_FIRST && g->at_start));
            if (prepend && !tk_buf_put(tmp, p->rep, (size_t)p->rep_len)) goto nomem;
            for (size_t k = 0; k < g->len; k++) {
                bool ok = s[k] == ' ' ? tk_buf_put(tmp, p->rep, (size_t)p->rep_len) : tk_buf_put(tmp, s + k, 1);
                if (!ok) goto nomem;
            }
            if (!p->split) {
                if (tmp->n && !tk_segs_push(out, tmp->p, tmp->n, -1, g->at_start)) goto nomem;
                break;
            }
            /* Split before each replacement character (MergedWithNext). */
            size_t a = 0;
            for (size_t k = 1; k + (size_t)p->rep_len <= tmp->n; k++) {
                if (memcmp(tmp->p + k, p->rep, (size_t)p->rep_len)) continue;
                if (!tk_segs_push(out, tmp->p + a, k - a, -1, g->at_start && a == 0)) goto nomem;
                a = k;
            }
            if (tmp->n > a && !tk_segs_push(out, tmp->p + a, tmp->n - a, -1, g->at_start && a == 0)) goto nomem;
            break;
        }
        }
    }
    return SW_OK;
nomem:
    return sw_err(ctx, SW_ENOMEM, "out of memory pre-tokenizing");
}

sw_status tk_pre_tokenize(sw_ctx *ctx, const sw_tokenizer *t, tk_segs *segs) {
    if (!t->n_pre) return SW_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return sw_err(ctx, SW_ENOMEM, "out of memory pre-tokenizing");
    spans sp = {0};
    tk_buf tmp = {0};
    sw_status st = SW_OK;
    for (int k = 0; k < t->n_pre && !st; k++) {
        tk_segs next = {0};
        st = pre_step(ctx, &t->pre[k], md, segs, &next, &sp, &tmp);
        if (st) {
            tk_segs_free(&next);
            break;
        }
        tk_segs_free(segs);
        *segs = next;
    }
    free(sp.v);
    tk_buf_free(&tmp);
    pcre2_match_data_free(md);
    return st;
}

/* ---- decoders ---------------------------------------------------------------------- */

/* A list of strings: one buffer, end offsets. */
typedef struct strlist {
    tk_buf b;
    size_t *end;
    size_t n, cap;
} strlist;

static bool sl_push(strlist *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *e = realloc(l->end, cap * sizeof *e);
        if (!e) return false;
        l->end = e;
        l->cap = cap;
    }
    if (!tk_buf_put(&l->b, s, n)) return false;
    l->end[l->n++] = l->b.n;
    return true;
}

static void sl_free(strlist *l) {
    tk_buf_free(&l->b);
    free(l->end);
    memset(l, 0, sizeof *l);
}

#define SL_AT(l, i) ((l)->b.p + ((i) ? (l)->end[(i) - 1] : 0))
#define SL_LEN(l, i) ((l)->end[i] - ((i) ? (l)->end[(i) - 1] : 0))

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xNN>" -> NN, else -1 (Rust's u8::from_str_radix also takes "+N"). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    if (s[3] == '+') return hexval(s[4]);
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

static bool flush_bytes(strlist *out, tk_buf *bytes) {
    if (!bytes->n) return true;
    bool ok = true;
    if (tk_utf8_valid(bytes->p, bytes->n)) ok = sl_push(out, bytes->p, bytes->n);
    else
        for (size_t k = 0; k < bytes->n && ok; k++) ok = sl_push(out, "\xEF\xBF\xBD", 3);
    bytes->n = 0;
    return ok;
}

static sw_status dec_step(sw_ctx *ctx, const tk_dec *d, pcre2_match_data *md, const strlist *in,
                          strlist *out, spans *sp, tk_buf *tmp) {
    sw_status st;
    switch (d->kind) {
    case TK_D_BYTELEVEL: {
        tmp->n = 0;
        for (size_t i = 0; i < in->n; i++) {
            const char *s = SL_AT(in, i);
            size_t n = SL_LEN(in, i), mark = tmp->n;
            bool all = true;
            for (size_t k = 0; k < n && all;) {
                int32_t cp;
                k += (size_t)tk_utf8_next(s + k, n - k, &cp);
                int b = tk_char_to_byte(cp);
                if (b < 0) all = false;
                else {
                    char c = (char)b;
                    if (!tk_buf_put(tmp, &c, 1)) goto nomem;
                }
            }
            if (!all) { /* a token with a character outside the alphabet stays as is */
                tmp->n = mark;
                if (!tk_buf_put(tmp, s, n)) goto nomem;
            }
        }
        tk_buf lossy = {0};
        if (!tk_utf8_lossy(&lossy, tmp->p ? tmp->p : "", tmp->n) || !sl_push(out, lossy.p ? lossy.p : "", lossy.n)) {
            tk_buf_free(&lossy);
            goto nomem;
        }
        tk_buf_free(&lossy);
        return SW_OK;
    }
    case TK_D_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            tmp->n = 0;
            if ((st = replace_all(ctx, d->re, md, SL_AT(in, i), SL_LEN(in, i), d->text, d->text_len, tmp, sp)))
                return st;
            if (!sl_push(out, tmp->p, tmp->n)) goto nomem;
        }
        return SW_OK;
    case TK_D_BYTEFALLBACK: {
        tmp->n = 0;
        for (size_t i = 0; i < in->n; i++) {
            int b = byte_token(SL_AT(in, i), SL_LEN(in, i));
            if (b >= 0) {
                char c = (char)b;
                if (!tk_buf_put(tmp, &c, 1)) goto nomem;
                continue;
            }
            if (!flush_bytes(out, tmp) || !sl_push(out, SL_AT(in, i), SL_LEN(in, i))) goto nomem;
        }
        if (!flush_bytes(out, tmp)) goto nomem;
        return SW_OK;
    }
    case TK_D_FUSE:
        if (!sl_push(out, in->b.p ? in->b.p : "", in->b.n)) goto nomem;
        return SW_OK;
    case TK_D_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = SL_AT(in, i);
            size_t n = SL_LEN(in, i), a = 0, b = n;
            for (int k = 0; k < d->start && a < n; k++) {
                int32_t cp;
                int l = tk_utf8_next(s + a, n - a, &cp);
                if (cp != d->ch) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t p = tk_utf8_prev(s, b);
                int32_t cp;
                tk_utf8_next(s + p, b - p, &cp);
                if (cp != d->ch) break;
                b = p;
            }
            if (!sl_push(out, s + a, b - a)) goto nomem;
        }
        return SW_OK;
    case TK_D_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = SL_AT(in, i);
            size_t n = SL_LEN(in, i);
            tmp->n = 0;
            for (size_t k = 0; k < n;) {
                if (n - k >= (size_t)d->rep_len && !memcmp(s + k, d->rep, (size_t)d->rep_len)) {
                    /* HF drops every replacement character of the first token. */
                    if (!(i == 0 && d->prepend != TK_PREPEND_NEVER) && !tk_buf_put(tmp, " ", 1)) goto nomem;
                    k += (size_t)d->rep_len;
                } else {
                    if (!tk_buf_put(tmp, s + k, 1)) goto nomem;
                    k++;
                }
            }
            if (!sl_push(out, tmp->p ? tmp->p : "", tmp->n)) goto nomem;
        }
        return SW_OK;
    }
    return SW_OK;
nomem:
    return sw_err(ctx, SW_ENOMEM, "out of memory decoding");
}

sw_status tk_decode_pieces(sw_ctx *ctx, const sw_tokenizer *t, tk_buf *pieces, const size_t *ends,
                           size_t n, tk_buf *out) {
    strlist cur = {0};
    sw_status st = SW_OK;
    pcre2_match_data *md = NULL;
    spans sp = {0};
    tk_buf tmp = {0};
    for (size_t i = 0; i < n; i++) {
        size_t a = i ? ends[i - 1] : 0;
        if (!sl_push(&cur, pieces->p + a, ends[i] - a)) {
            st = sw_err(ctx, SW_ENOMEM, "out of memory decoding");
            goto done;
        }
    }
    if (!t->has_decoder) { /* HF joins the tokens with spaces */
        for (size_t i = 0; i < cur.n; i++)
            if ((i && !tk_buf_put(out, " ", 1)) || !tk_buf_put(out, SL_AT(&cur, i), SL_LEN(&cur, i))) {
                st = sw_err(ctx, SW_ENOMEM, "out of memory decoding");
                goto done;
            }
        goto done;
    }
    md = pcre2_match_data_create(1, NULL);
    if (!md) {
        st = sw_err(ctx, SW_ENOMEM, "out of memory decoding");
        goto done;
    }
    for (int k = 0; k < t->n_dec; k++) {
        strlist next = {0};
        st = dec_step(ctx, &t->dec[k], md, &cur, &next, &sp, &tmp);
        sl_free(&cur);
        cur = next;
        if (st) goto done;
    }
    if (!tk_buf_put(out, cur.b.p ? cur.b.p : "", cur.b.n)) st = sw_err(ctx, SW_ENOMEM, "out of memory decoding");
done:
    if (!st && !tk_buf_put(out, "", 0)) st = sw_err(ctx, SW_ENOMEM, "out of memory decoding");
    sl_free(&cur);
    free(sp.v);
    tk_buf_free(&tmp);
    pcre2_match_data_free(md);
    return st;
}

void tk_steps_free(sw_tokenizer *t) {
    for (int k = 0; k < t->n_norm; k++) {
        free(t->norm[k].text);
        tk_regex_free(t->norm[k].re);
    }
    for (int k = 0; k < t->n_pre; k++) tk_regex_free(t->pre[k].re);
    for (int k = 0; k < t->n_dec; k++) {
        free(t->dec[k].text);
        tk_regex_free(t->dec[k].re);
    }
    free(t->norm);
    free(t->pre);
    free(t->dec);
    t->norm = NULL;
    t->pre = NULL;
    t->dec = NULL;
    t->n_norm = t->n_pre = t->n_dec = 0;
}
