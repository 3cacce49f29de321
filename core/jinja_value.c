/* jinja_value.c — the engine's arena and values: construction, Python's
 * truthiness, ==, str() and repr(), json.dumps, and UTF-8 indexing.
 *
 * Everything here mirrors CPython's behaviour where a chat template can
 * see it: 1.0 prints "1.0", 1e20 prints "1e+20", a list prints as
 * ['a', None], True == 1, strings are sequences of code points.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- arena --------------------------------------------------------------- */

struct jn_chunk {
    jn_chunk *next;
    size_t cap, used;
    max_align_t data[];
};

#define JN_CHUNK 65536

void *jn_alloc(jn_arena *a, size_t n) {
    if (a->over) return NULL;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    if (a->limit && (n > a->limit || a->used > a->limit - n)) {
        a->over = a->capped = true;
        return NULL;
    }
    jn_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > JN_CHUNK / 2 ? n : JN_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c) {
            a->over = true;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        /* A big block gets its own chunk behind the current one, so the
         * current chunk's free tail stays in use. */
        if (cap > JN_CHUNK && a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void jn_arena_free(jn_arena *a) {
    jn_chunk *c = a->head;
    while (c) {
        jn_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
    a->over = a->capped = false;
}

/* ---- construction -------------------------------------------------------- */

jv jv_str(jn_arena *a, const char *s, size_t n) {
    jstr *p = jn_alloc(a, sizeof *p + n + 1);
    if (!p) return jv_undef();
    p->len = n;
    if (n) memcpy(p->s, s, n);
    p->s[n] = '\0';
    return (jv){.t = JV_STR, .u.s = p};
}

jv jv_cstr(jn_arena *a, const char *s) { return jv_str(a, s, strlen(s)); }

jv jv_list(jn_arena *a, int cap) {
    jlist *l = jn_alloc(a, sizeof *l);
    if (!l) return jv_undef();
    if (cap > 0 && !(l->v = jn_alloc(a, (size_t)cap * sizeof(jv)))) return jv_undef();
    l->cap = cap > 0 ? cap : 0;
    return (jv){.t = JV_LIST, .u.l = l};
}

jv jv_dict(jn_arena *a, int cap) {
    jdict *d = jn_alloc(a, sizeof *d);
    if (!d) return jv_undef();
    if (cap > 0 && (!(d->k = jn_alloc(a, (size_t)cap * sizeof(jv))) || !(d->v = jn_alloc(a, (size_t)cap * sizeof(jv)))))
        return jv_undef();
    d->cap = cap > 0 ? cap : 0;
    return (jv){.t = JV_DICT, .u.d = d};
}

bool jv_list_push(jn_arena *a, jv list, jv item) {
    jlist *l = list.u.l;
    if (l->n == l->cap) {
        if (l->cap > (1 << 28)) return false;
        int cap = l->cap ? l->cap * 2 : 4;
        jv *v = jn_alloc(a, (size_t)cap * sizeof(jv));
        if (!v) return false;
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof(jv));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = item;
    return true;
}

bool jv_dict_set(jn_arena *a, jv dict, jv key, jv val) {
    jdict *d = dict.u.d;
    for (int i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key)) {
            d->v[i] = val;
            return true;
        }
    if (d->n == d->cap) {
        if (d->cap > (1 << 26)) return false;
        int cap = d->cap ? d->cap * 2 : 4;
        jv *k = jn_alloc(a, (size_t)cap * sizeof(jv)), *v = jn_alloc(a, (size_t)cap * sizeof(jv));
        if (!k || !v) return false;
        if (d->n) {
            memcpy(k, d->k, (size_t)d->n * sizeof(jv));
            memcpy(v, d->v, (size_t)d->n * sizeof(jv));
        }
        d->k = k;
        d->v = v;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
    return true;
}

bool jv_dict_get(jv dict, jv key, jv *out) {
    jdict *d = dict.u.d;
    for (int i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

bool jv_dict_gets(jv dict, const char *key, jv *out) {
    jdict *d = dict.u.d;
    size_t n = strlen(key);
    for (int i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s->len == n && !memcmp(d->k[i].u.s->s, key, n)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

jv jv_func(jn_arena *a, const char *name, jn_cfn fn, jv self) {
    jfunc *f = jn_alloc(a, sizeof *f);
    if (!f) return jv_undef();
    f->name = name;
    f->fn = fn;
    f->self = self;
    return (jv){.t = JV_FUNC, .u.fn = f};
}

jv jv_undef_attr(jn_arena *a, jv obj, jv name) {
    jundef *u = jn_alloc(a, sizeof *u);
    if (!u) return jv_undef();
    u->name = name;
    u->objtype = jv_objtype(obj);
    return (jv){.t = JV_UNDEF, .u.u = u};
}

jv jv_undef_hint(jn_arena *a, const char *hint) {
    jundef *u = jn_alloc(a, sizeof *u);
    if (!u) return jv_undef();
    u->hint = hint;
    return (jv){.t = JV_UNDEF, .u.u = u};
}

/* ---- Python semantics ---------------------------------------------------- */

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len > 0;
    case JV_LIST: return (v.flags & JV_GEN) || v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

bool jv_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }

double jv_num(jv v) {
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.t == JV_BOOL ? (double)v.u.b : 0.0;
}

bool jv_equal(jv a, jv b) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_BOOL ? a.u.b : a.u.i, y = b.t == JV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s->len == b.u.s->len && !memcmp(a.u.s->s, b.u.s->s, a.u.s->len);
    case JV_LIST:
        if ((a.flags & JV_TUPLE) != (b.flags & JV_TUPLE) || (a.flags & JV_GEN) || (b.flags & JV_GEN))
            return a.u.l == b.u.l;
        if (a.u.l->n != b.u.l->n) return false;
        for (int i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (int i = 0; i < a.u.d->n; i++) {
            jv o;
            if (!jv_dict_get(b, a.u.d->k[i], &o) || !jv_equal(a.u.d->v[i], o)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_MACRO: return a.u.mac == b.u.mac;
    default: return false;
    }
}

const char *jv_typename(jv v) {
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.flags & JV_GEN ? "generator" : v.flags & JV_TUPLE ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_FUNC: return "builtin_function_or_method";
    case JV_MACRO: return "Macro";
    }
    return "object";
}

const char *jv_objtype(jv v) {
    switch (v.t) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return "str object";
    case JV_LIST: return v.flags & JV_GEN ? "generator object" : v.flags & JV_TUPLE ? "tuple object" : "list object";
    case JV_DICT: return "dict object";
    case JV_NS: return "jinja2.utils.Namespace object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    default: return "builtin_function_or_method object";
    }
}

/* ---- buffers ------------------------------------------------------------- */

void jn_buf_put(jn_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->limit && (n > b->limit || b->len > b->limit - n)) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jn_buf_puts(jn_buf *b, const char *s) { jn_buf_put(b, s, strlen(s)); }

/* ---- UTF-8 --------------------------------------------------------------- */

size_t jn_utf8_next(const char *s, size_t n, size_t i) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    return i;
}

size_t jn_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

uint32_t jn_utf8_decode(const char *s, size_t n, size_t i) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[i];
    int k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (k) c &= 0x3F >> k;
    for (int j = 1; j <= k && i + j < n; j++) c = (c << 6) | (u[i + j] & 0x3F);
    return c;
}

int jn_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Python's str.isspace(), which strip() and split() use: ASCII whitespace,
 * the \x1c-\x1f separators and Unicode's spaces and line breaks. */
static bool cp_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool jn_is_space(const char *s, size_t n, size_t i, size_t *width) {
    *width = jn_utf8_next(s, n, i) - i;
    return cp_space(jn_utf8_decode(s, n, i));
}

/* ---- str() and repr() ---------------------------------------------------- */

/* CPython's float repr: the shortest digits that read back the same,
 * positional between 1e-4 and 1e16, else d.ddde+XX. */
void jv_float_repr(char out[32], double f) {
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *o = out;
    if (neg) *o++ = '-';
    if (exp < -4 || exp >= 16) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        int e = exp < 0 ? -exp : exp;
        *o++ = 'e';
        *o++ = exp < 0 ? '-' : '+';
        if (e >= 100) *o++ = (char)('0' + e / 100);
        *o++ = (char)('0' + e / 10 % 10);
        *o++ = (char)('0' + e % 10);
        *o = '\0';
        return;
    }
    if (exp < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -exp - 1; i++) *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else {
        for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
        *o++ = '.';
        if (nd > exp + 1) {
            memcpy(o, digits + exp + 1, (size_t)(nd - exp - 1));
            o += nd - exp - 1;
        } else {
            *o++ = '0';
        }
    }
    *o = '\0';
}

/* Characters Python's repr() escapes: controls, and the separators and
 * format characters str.isprintable() rejects. */
static bool cp_unprintable(uint32_t c) {
    return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) ||
           (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x2064) || c == 0x3000 || c == 0xFEFF ||
           (c >= 0xD800 && c <= 0xDFFF);
}

static void str_repr(jn_buf *b, const char *s, size_t n) {
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jn_buf_put(b, &q, 1);
    for (size_t i = 0; i < n;) {
        size_t j = jn_utf8_next(s, n, i);
        uint32_t c = jn_utf8_decode(s, n, i);
        char esc[16];
        if (c == (uint32_t)q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jn_buf_put(b, esc, 2);
        } else if (c == '\n') {
            jn_buf_puts(b, "\\n");
        } else if (c == '\r') {
            jn_buf_puts(b, "\\r");
        } else if (c == '\t') {
            jn_buf_puts(b, "\\t");
        } else if (cp_unprintable(c)) {
            snprintf(esc, sizeof esc, c < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)c);
            jn_buf_puts(b, esc);
        } else {
            jn_buf_put(b, s + i, j - i);
        }
        i = j;
    }
    jn_buf_put(b, &q, 1);
}

void jv_to_str(jn_buf *b, jv v) {
    char tmp[32];
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jn_buf_puts(b, "None"); return;
    case JV_BOOL: jn_buf_puts(b, v.u.b ? "True" : "False"); return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jn_buf_puts(b, tmp);
        return;
    case JV_FLOAT:
        jv_float_repr(tmp, v.u.f);
        jn_buf_puts(b, tmp);
        return;
    case JV_STR: jn_buf_put(b, v.u.s->s, v.u.s->len); return;
    default: jv_repr(b, v); return;
    }
}

void jv_repr(jn_buf *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: jn_buf_puts(b, "Undefined"); return;
    case JV_STR: str_repr(b, v.u.s->s, v.u.s->len); return;
    case JV_LIST:
        if (v.flags & JV_GEN) {
            jn_buf_puts(b, "<generator object>");
            return;
        }
        jn_buf_puts(b, v.flags & JV_TUPLE ? "(" : "[");
        for (int i = 0; i < v.u.l->n; i++) {
            if (i) jn_buf_puts(b, ", ");
            jv_repr(b, v.u.l->v[i]);
        }
        jn_buf_puts(b, v.flags & JV_TUPLE ? (v.u.l->n == 1 ? ",)" : ")") : "]");
        return;
    case JV_DICT:
    case JV_NS:
        jn_buf_puts(b, v.t == JV_NS ? "<Namespace {" : "{");
        for (int i = 0; i < v.u.d->n; i++) {
            if (i) jn_buf_puts(b, ", ");
            jv_repr(b, v.u.d->k[i]);
            jn_buf_puts(b, ": ");
            jv_repr(b, v.u.d->v[i]);
        }
        jn_buf_puts(b, v.t == JV_NS ? "}>" : "}");
        return;
    case JV_FUNC:
        jn_buf_puts(b, "<built-in function ");
        jn_buf_puts(b, v.u.fn->name);
        jn_buf_puts(b, ">");
        return;
    case JV_MACRO:
        jn_buf_puts(b, "<Macro '");
        jn_buf_puts(b, v.u.mac->def->name);
        jn_buf_puts(b, "'>");
        return;
    default: jv_to_str(b, v); return;
    }
}

void jv_undef_message(jv v, char *out, size_t n) {
    jundef *u = v.t == JV_UNDEF ? v.u.u : NULL;
    if (!u) {
        snprintf(out, n, "value is undefined");
        return;
    }
    if (u->hint) {
        snprintf(out, n, "%s", u->hint);
        return;
    }
    jn_buf b = {0};
    jv_repr(&b, u->name);
    const char *name = b.p ? b.p : "?";
    if (!u->objtype)
        snprintf(out, n, "%s is undefined", name);
    else if (u->name.t != JV_STR)
        snprintf(out, n, "%s has no element %s", u->objtype, name);
    else
        snprintf(out, n, "'%s' has no attribute %s", u->objtype, name);
    free(b.p);
}

/* ---- json.dumps ---------------------------------------------------------- */

static void json_str(jn_buf *b, const char *s, size_t n) {
    jn_buf_puts(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        char u[8];
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                e = u;
            }
        }
        if (e) {
            jn_buf_put(b, s + run, i - run);
            jn_buf_puts(b, e);
            run = i + 1;
        }
    }
    jn_buf_put(b, s + run, n - run);
    jn_buf_puts(b, "\"");
}

static void json_newline(jn_buf *b, int indent, int level) {
    jn_buf_puts(b, "\n");
    for (int i = 0; i < indent * level; i++) jn_buf_puts(b, " ");
}

/* A dict key as json.dumps writes it: keys that are not strings become
 * strings ("1", "true", "null"). */
static int json_key(jn_buf *b, jv k, char *err, size_t errn) {
    char tmp[48];
    switch (k.t) {
    case JV_STR: json_str(b, k.u.s->s, k.u.s->len); return 0;
    case JV_INT: snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)k.u.i); break;
    case JV_FLOAT: {
        char f[32];
        jv_float_repr(f, k.u.f);
        snprintf(tmp, sizeof tmp, "\"%s\"", f);
        break;
    }
    case JV_BOOL: snprintf(tmp, sizeof tmp, "\"%s\"", k.u.b ? "true" : "false"); break;
    case JV_NONE: snprintf(tmp, sizeof tmp, "\"null\""); break;
    default: snprintf(err, errn, "keys must be str, int, float, bool or None, not %s", jv_typename(k)); return -1;
    }
    jn_buf_puts(b, tmp);
    return 0;
}

static int json_rec(jn_buf *b, jv v, int indent, bool sort, const char *isep, const char *ksep, int level, char *err,
                    size_t errn) {
    char tmp[32];
    if (level > 200) {
        snprintf(err, errn, "tojson: value nested too deeply");
        return -1;
    }
    switch (v.t) {
    case JV_NONE: jn_buf_puts(b, "null"); return 0;
    case JV_BOOL: jn_buf_puts(b, v.u.b ? "true" : "false"); return 0;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jn_buf_puts(b, tmp);
        return 0;
    case JV_FLOAT:
        if (isnan(v.u.f))
            jn_buf_puts(b, "NaN");
        else if (isinf(v.u.f))
            jn_buf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else {
            jv_float_repr(tmp, v.u.f);
            jn_buf_puts(b, tmp);
        }
        return 0;
    case JV_STR: json_str(b, v.u.s->s, v.u.s->len); return 0;
    case JV_LIST:
        if (!(v.flags & JV_GEN)) {
            jlist *l = v.u.l;
            if (!l->n) {
                jn_buf_puts(b, "[]");
                return 0;
            }
            jn_buf_puts(b, "[");
            for (int i = 0; i < l->n; i++) {
                if (i) jn_buf_puts(b, isep);
                if (indent >= 0) json_newline(b, indent, level + 1);
                if (json_rec(b, l->v[i], indent, sort, isep, ksep, level + 1, err, errn)) return -1;
            }
            if (indent >= 0) json_newline(b, indent, level);
            jn_buf_puts(b, "]");
            return 0;
        }
        break;
    case JV_DICT: {
        jdict *d = v.u.d;
        if (!d->n) {
            jn_buf_puts(b, "{}");
            return 0;
        }
        int *order = malloc((size_t)d->n * sizeof *order);
        if (!order) {
            b->oom = true;
            return 0;
        }
        for (int i = 0; i < d->n; i++) order[i] = i;
        if (sort) /* insertion sort on string keys: dicts in templates are small */
            for (int i = 1; i < d->n; i++)
                for (int j = i; j > 0; j--) {
                    jv x = d->k[order[j - 1]], y = d->k[order[j]];
                    if (x.t != JV_STR || y.t != JV_STR) break;
                    size_t m = x.u.s->len < y.u.s->len ? x.u.s->len : y.u.s->len;
                    int c = memcmp(x.u.s->s, y.u.s->s, m);
                    if (c < 0 || (c == 0 && x.u.s->len <= y.u.s->len)) break;
                    int t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        jn_buf_puts(b, "{");
        int rc = 0;
        for (int i = 0; i < d->n && !rc; i++) {
            if (i) jn_buf_puts(b, isep);
            if (indent >= 0) json_newline(b, indent, level + 1);
            rc = json_key(b, d->k[order[i]], err, errn);
            if (!rc) {
                jn_buf_puts(b, ksep);
                rc = json_rec(b, d->v[order[i]], indent, sort, isep, ksep, level + 1, err, errn);
            }
        }
        free(order);
        if (rc) return -1;
        if (indent >= 0) json_newline(b, indent, level);
        jn_buf_puts(b, "}");
        return 0;
    }
    default: break;
    }
    snprintf(err, errn, "Object of type %s is not JSON serializable", jv_typename(v));
    return -1;
}

int jv_to_json(jn_buf *b, jv v, int indent, bool sort_keys, const char *item_sep, const char *key_sep, char *err,
               size_t errn) {
    /* Python's defaults: ", " and ": ", or "," and ": " once indent is set. */
    if (!item_sep) item_sep = indent >= 0 ? "," : ", ";
    if (!key_sep) key_sep = ": ";
    return json_rec(b, v, indent, sort_keys, item_sep, key_sep, 0, err, errn);
}
