/* jinja_lex.c — template source to tokens, with jinja2's whitespace rules.
 *
 * What Hugging Face's environment does to whitespace, in jinja2's order:
 *   - newlines are normalised to \n and one trailing newline is dropped
 *     (keep_trailing_newline=False);
 *   - {%- {{- {#- strip all whitespace before the tag; -%} -}} -#} strip
 *     all whitespace after it;
 *   - trim_blocks: a block or comment tag's end eats one \n after it
 *     (not after +%});
 *   - lstrip_blocks: spaces and tabs between the start of a line and a
 *     block or comment tag are removed (not before {{, not for {%+).
 * Inside tags, end markers are recognised only when brackets balance, so
 * {{ {'a': {'b': 1}} }} works as in jinja2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

typedef struct lexer {
    sw_ctx *ctx;
    const char *name;
    const char *s; /* normalised source */
    size_t n, pos;
    jn_arena *a;
    jn_toks *out;
    bool line_starting; /* the last match ended with a newline */
    bool failed;        /* an error is in ctx */
} lexer;

static int lex_fail(lexer *lx, size_t at, const char *fmt, const char *arg) {
    /* line:column of byte `at` */
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < lx->n; i++) {
        if (lx->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)lx->s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    lx->failed = true;
    sw_err(lx->ctx, SW_EINVAL, "%s:%d:%d: %s", lx->name, line, col, msg);
    return -1;
}

static jn_tok *push(lexer *lx, int type, size_t at) {
    jn_toks *t = lx->out;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 64;
        jn_tok *v = jn_alloc(lx->a, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        if (t->n) memcpy(v, t->v, (size_t)t->n * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    jn_tok *k = &t->v[t->n++];
    memset(k, 0, sizeof *k);
    k->type = (uint8_t)type;
    k->line = 0;
    k->col = (int)at; /* byte offset for now; resolved to line:col at the end */
    return k;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Python's str.rstrip() length of text[0..n). */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        /* step back one code point */
        size_t i = n - 1;
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
        size_t w;
        if (!jn_is_space(s, n, i, &w)) break;
        n = i;
    }
    return n;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
    size_t w;
    while (i < n && jn_is_space(s, n, i, &w)) i += w;
    return i;
}

/* Emit text s[from..to) before a tag whose whitespace sign is `sign` ('-',
 * '+' or 0); `lstrip` says the tag is one lstrip_blocks applies to. */
static int emit_text(lexer *lx, size_t from, size_t to, char sign, bool lstrip) {
    const char *t = lx->s + from;
    size_t n = to - from;
    if (sign == '-') {
        n = rstrip_len(t, n);
    } else if (sign != '+' && lstrip) {
        size_t l = n;
        while (l > 0 && t[l - 1] != '\n') l--;
        if (l > 0 || lx->line_starting) {
            size_t k = l;
            while (k < n && (t[k] == ' ' || t[k] == '\t')) k++;
            if (k == n) n = l;
        }
    }
    if (n == 0) return 0;
    jn_tok *k = push(lx, JT_TEXT, from);
    if (!k) return -1;
    k->s = t;
    k->n = n;
    return 0;
}

static const char *const ops3[] = {"//", "**", "==", "!=", ">=", "<=", NULL};
static const char ops1[] = "+-/*%~[](){}><=.:|,;";

/* Python's unicode-escape decoding of a string literal's body. */
static int unescape(lexer *lx, size_t at, const char *s, size_t n, jn_tok *k) {
    char *o = jn_alloc(lx->a, n + 1);
    if (!o) return -1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            o[j++] = s[i];
            continue;
        }
        char c = s[++i];
        uint32_t cp;
        int digits = 0;
        switch (c) {
        case 'n': o[j++] = '\n'; continue;
        case 't': o[j++] = '\t'; continue;
        case 'r': o[j++] = '\r'; continue;
        case 'a': o[j++] = '\a'; continue;
        case 'b': o[j++] = '\b'; continue;
        case 'f': o[j++] = '\f'; continue;
        case 'v': o[j++] = '\v'; continue;
        case '\\': o[j++] = '\\'; continue;
        case '\'': o[j++] = '\''; continue;
        case '"': o[j++] = '"'; continue;
        case '\n': continue; /* a line continuation */
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                cp = 0;
                int m = 0;
                for (; m < 3 && i < n && s[i] >= '0' && s[i] <= '7'; m++, i++) cp = cp * 8 + (uint32_t)(s[i] - '0');
                i--;
                j += (size_t)jn_utf8_encode(cp, o + j);
                continue;
            }
            o[j++] = '\\';
            o[j++] = c;
            continue;
        }
        cp = 0;
        for (int m = 0; m < digits; m++) {
            char h = i + 1 + (size_t)m < n ? s[i + 1 + m] : 0;
            int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (v < 0) return lex_fail(lx, at, "bad \\%s escape in a string", c == 'x' ? "x" : c == 'u' ? "u" : "U");
            cp = cp * 16 + (uint32_t)v;
        }
        if (cp > 0x10FFFF) return lex_fail(lx, at, "bad \\%s escape in a string", "U");
        i += (size_t)digits;
        j += (size_t)jn_utf8_encode(cp, o + j); /* an escape is never longer than what it encodes */
    }
    o[j] = '\0';
    k->s = o;
    k->n = j;
    return 0;
}

/* Tokens inside {{ }} or {% %} up to and including the end marker. */
static int lex_tag(lexer *lx, bool block, size_t tag_at) {
    char stack[64];
    int depth = 0;
    const char *s = lx->s;
    size_t n = lx->n;
    for (;;) {
        size_t i = lx->pos;
        while (i < n && is_ws(s[i])) i++;
        lx->pos = i;
        if (i >= n)
            return lex_fail(lx, tag_at, "unexpected end of template: %s was never closed", block ? "'{%'" : "'{{'");
        if (depth == 0) {
            const char *end = block ? "%}" : "}}";
            char sign = 0;
            size_t e = i;
            if ((s[e] == '-' || (block && s[e] == '+')) && e + 2 < n + 0 && !strncmp(s + e + 1, end, 2)) sign = s[e++];
            if (e + 1 < n && !strncmp(s + e, end, 2)) {
                if (!push(lx, block ? JT_BLOCK_END : JT_VAR_END, i)) return -1;
                e += 2;
                lx->line_starting = false;
                if (sign == '-') {
                    size_t f = skip_space(s, n, e);
                    lx->line_starting = f > e && s[f - 1] == '\n';
                    e = f;
                } else if (block && sign != '+' && e < n && s[e] == '\n') { /* trim_blocks */
                    e++;
                    lx->line_starting = true;
                }
                lx->pos = e;
                return 0;
            }
        }
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t j = i + 1;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
            jn_tok *k = push(lx, JT_NAME, i);
            if (!k) return -1;
            char *nm = jn_alloc(lx->a, j - i + 1);
            if (!nm) return -1;
            memcpy(nm, s + i, j - i);
            k->s = nm;
            k->n = j - i;
            lx->pos = j;
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t j = i;
            bool is_float = false;
            char num[128];
            size_t m = 0;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || (s[j] == '_' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9'))) {
                if (s[j] != '_' && m < sizeof num - 1) num[m++] = s[j];
                j++;
            }
            if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
                is_float = true;
                num[m++] = s[j++];
                while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) {
                    if (s[j] != '_' && m < sizeof num - 1) num[m++] = s[j];
                    j++;
                }
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t k2 = j + 1;
                if (k2 < n && (s[k2] == '+' || s[k2] == '-')) k2++;
                if (k2 < n && s[k2] >= '0' && s[k2] <= '9') {
                    is_float = true;
                    for (; j < k2; j++)
                        if (m < sizeof num - 1) num[m++] = s[j];
                    while (j < n && s[j] >= '0' && s[j] <= '9') {
                        if (m < sizeof num - 1) num[m++] = s[j];
                        j++;
                    }
                }
            }
            num[m] = '\0';
            jn_tok *k = push(lx, is_float ? JT_FLOAT : JT_INT, i);
            if (!k) return -1;
            if (is_float) {
                k->f = strtod(num, NULL);
            } else {
                errno = 0;
                unsigned long long v = strtoull(num, NULL, 10);
                if (errno || v > (unsigned long long)INT64_MAX)
                    return lex_fail(lx, i, "integer literal %s is too large", num);
                k->i = (int64_t)v;
            }
            lx->pos = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c) j += s[j] == '\\' ? 2 : 1;
            if (j >= n) return lex_fail(lx, i, "unterminated string %s", "");
            jn_tok *k = push(lx, JT_STRING, i);
            if (!k || unescape(lx, i, s + i + 1, j - i - 1, k)) return -1;
            lx->pos = j + 1;
            continue;
        }
        int len = 0;
        for (int o = 0; ops3[o]; o++)
            if (i + 1 < n && s[i] == ops3[o][0] && s[i + 1] == ops3[o][1]) len = 2;
        if (!len && strchr(ops1, c) && c) len = 1;
        if (!len) {
            char bad[8] = {c, 0};
            return lex_fail(lx, i, "unexpected character '%s'", bad);
        }
        if (len == 1 && (c == '(' || c == '[' || c == '{')) {
            if (depth == (int)sizeof stack) return lex_fail(lx, i, "brackets nested too deeply%s", "");
            stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
            if (depth == 0 || stack[depth - 1] != c) {
                char bad[8] = {c, 0};
                return lex_fail(lx, i, "unexpected '%s'", bad);
            }
            depth--;
        }
        jn_tok *k = push(lx, JT_OP, i);
        if (!k) return -1;
        memcpy(k->op, s + i, (size_t)len);
        lx->pos = i + (size_t)len;
    }
}

/* Does s[i..] open a raw block, "{%[-+]? raw [-]?%}"? Sets *end past it. */
static bool raw_begin(const char *s, size_t n, size_t i, size_t *end, bool *strip_after) {
    size_t j = i + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    while (j < n && is_ws(s[j])) j++;
    if (j + 3 > n || strncmp(s + j, "raw", 3)) return false;
    j += 3;
    while (j < n && is_ws(s[j])) j++;
    *strip_after = false;
    if (j < n && s[j] == '-') {
        *strip_after = true;
        j++;
    }
    if (j + 2 > n || strncmp(s + j, "%}", 2)) return false;
    *end = j + 2;
    return true;
}

static int lex_raw(lexer *lx, size_t body, bool strip_after) {
    const char *s = lx->s;
    size_t n = lx->n;
    if (strip_after) body = skip_space(s, n, body);
    for (size_t i = body; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) sign = s[j++];
        while (j < n && is_ws(s[j])) j++;
        if (j + 6 > n || strncmp(s + j, "endraw", 6)) continue;
        j += 6;
        while (j < n && is_ws(s[j])) j++;
        char esign = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) esign = s[j++];
        if (j + 2 > n || strncmp(s + j, "%}", 2)) continue;
        j += 2;
        lx->line_starting = false;
        if (emit_text(lx, body, i, sign, true)) return -1;
        if (esign == '-') {
            j = skip_space(s, n, j);
        } else if (esign != '+' && j < n && s[j] == '\n') {
            j++;
            lx->line_starting = true;
        }
        lx->pos = j;
        return 0;
    }
    return lex_fail(lx, body, "missing end of raw directive%s", "");
}

int jn_lex(sw_ctx *ctx, const char *name, const char *src, size_t len, jn_arena *a, jn_toks *out) {
    /* Normalise \r\n and \r to \n; drop one trailing newline. */
    char *s = jn_alloc(a, len + 1);
    if (!s) return sw_err(ctx, SW_ENOMEM, "%s: out of memory", name), -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = '\0';
    lexer lx = {.ctx = ctx, .name = name, .s = s, .n = n, .a = a, .out = out, .line_starting = true};
    memset(out, 0, sizeof *out);
    while (lx.pos < n) {
        /* the next tag opening */
        size_t i = lx.pos;
        const char *t = NULL;
        for (size_t j = i; j + 1 < n; j++)
            if (s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#')) {
                t = s + j;
                break;
            }
        if (!t) {
            if (emit_text(&lx, i, n, 0, false)) goto oom;
            lx.pos = n;
            break;
        }
        size_t at = (size_t)(t - s);
        char kind = t[1];
        char sign = at + 2 < n && (s[at + 2] == '-' || s[at + 2] == '+') ? s[at + 2] : 0;
        size_t raw_end;
        bool raw_strip;
        if (kind == '%' && raw_begin(s, n, at, &raw_end, &raw_strip)) {
            if (emit_text(&lx, i, at, sign, true)) goto oom;
            if (lex_raw(&lx, raw_end, raw_strip)) {
                if (lx.failed) return -1;
                goto oom;
            }
            continue;
        }
        if (emit_text(&lx, i, at, sign, kind != '{')) goto oom;
        lx.line_starting = false;
        size_t body = at + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            /* a comment: up to #}, -#} (strip after) or +#} */
            size_t j = body;
            for (; j + 1 < n; j++)
                if (s[j] == '#' && s[j + 1] == '}') break;
            if (j + 1 >= n) return lex_fail(&lx, at, "missing end of comment tag%s", "");
            char esign = j > body && (s[j - 1] == '-' || s[j - 1] == '+') ? s[j - 1] : 0;
            j += 2;
            if (esign == '-') {
                size_t f = skip_space(s, n, j);
                lx.line_starting = f > j && s[f - 1] == '\n';
                j = f;
            } else if (esign != '+' && j < n && s[j] == '\n') {
                j++;
                lx.line_starting = true;
            }
            lx.pos = j;
            continue;
        }
        if (!push(&lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, at)) goto oom;
        lx.pos = body;
        if (lex_tag(&lx, kind == '%', at)) {
            if (lx.failed) return -1;
            goto oom;
        }
    }
    if (!push(&lx, JT_EOF, n)) goto oom;
    /* Byte offsets to line:column, in one pass. */
    {
        int line = 1, col = 1;
        size_t b = 0;
        for (int k = 0; k < out->n; k++) {
            size_t at = (size_t)out->v[k].col;
            for (; b < at && b < n; b++) {
                if (s[b] == '\n') {
                    line++;
                    col = 1;
                } else if (((unsigned char)s[b] & 0xC0) != 0x80) {
                    col++;
                }
            }
            out->v[k].line = line;
            out->v[k].col = col;
        }
    }
    return 0;
oom:
    sw_err(ctx, SW_ENOMEM, "%s: out of memory", name);
    return -1;
}
