/* jinja_filters.c — jinja2's filters and tests, as chat templates use them.
 *
 * Each behaves as the jinja2 3.1 function of the same name (and tojson as
 * transformers overrides it: json.dumps with ensure_ascii=False). Where
 * jinja2 returns a generator (selectattr, map, items, unique, reverse...)
 * the result is a list marked JV_GEN: it iterates the same, is always
 * true and has no length, as a generator.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define FILTER(name)                                                                                               \
    static int name(jn_rt *rt, const jn_node *at, jv v, const jv *args, int nargs, const char *const *kwn, \
                    const jv *kwv, int nkw, jv *out)
#define ARG(pos, name, var) jn_arg(args, nargs, kwn, kwv, nkw, pos, name, var)
#define RET_STR(x) return (*out = (x)).t == JV_STR ? 0 : jn_oom(rt, at)

static jv str_of(jn_rt *rt, jv v) { return jn_soft_str(rt->a, v); }

static int buf_result(jn_rt *rt, const jn_node *at, jn_buf *b, jv *out) {
    if (b->oom) {
        free(b->p);
        return jn_fail(rt, at, SW_EINVAL, "filter result larger than %zu MiB", SW_JINJA_MAX_OUTPUT >> 20);
    }
    *out = jv_str(rt->a, b->p ? b->p : "", b->len);
    free(b->p);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}

/* item.attr.0 for selectattr, map, sort...: dots split, digits index. */
static int attr_path(jn_rt *rt, const jn_node *at, jv item, jv path, jv *out) {
    if (path.t != JV_STR) return jn_getitem(rt, at, item, path, out);
    const char *s = path.u.s->s;
    size_t n = path.u.s->len;
    *out = item;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && s[j] != '.') j++;
        bool digits = j > i;
        for (size_t k = i; k < j; k++)
            if (s[k] < '0' || s[k] > '9') digits = false;
        jv key = digits ? jv_int(strtoll(s + i, NULL, 10)) : jv_str(rt->a, s + i, j - i);
        if (key.t == JV_UNDEF) return jn_oom(rt, at);
        if (jn_getitem(rt, at, *out, key, out)) return -1;
        i = j + 1;
    }
    return 0;
}

static int gen_result(jn_rt *rt, const jn_node *at, jv *out) {
    *out = jv_list(rt->a, 0);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    out->flags = JV_GEN;
    return 0;
}

/* ---- strings ------------------------------------------------------------- */

FILTER(f_trim) {
    jv chars = jv_none();
    ARG(0, "chars", &chars);
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    RET_STR(jn_str_strip(rt->a, s, chars.t == JV_STR ? chars : jv_none(), 3));
}

static int case_filter(jn_rt *rt, const jn_node *at, jv v, int mode, jv *out) {
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    RET_STR(jn_str_case(rt->a, s.u.s->s, s.u.s->len, mode));
}
FILTER(f_lower) { (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw; return case_filter(rt, at, v, 0, out); }
FILTER(f_upper) { (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw; return case_filter(rt, at, v, 1, out); }
FILTER(f_capitalize) { (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw; return case_filter(rt, at, v, 3, out); }

/* jinja2's title: words start after '-', whitespace or an opening bracket. */
FILTER(f_title) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len, w;
    jn_buf b = {0};
    for (size_t i = 0; i < n;) {
        bool sep = p[i] == '-' || p[i] == '(' || p[i] == '{' || p[i] == '[' || p[i] == '<' || jn_is_space(p, n, i, &w);
        size_t j = i;
        if (sep) {
            while (j < n && (p[j] == '-' || p[j] == '(' || p[j] == '{' || p[j] == '[' || p[j] == '<' || jn_is_space(p, n, j, &w)))
                j = jn_utf8_next(p, n, j);
            jn_buf_put(&b, p + i, j - i);
        } else {
            while (j < n && !(p[j] == '-' || p[j] == '(' || p[j] == '{' || p[j] == '[' || p[j] == '<' || jn_is_space(p, n, j, &w)))
                j = jn_utf8_next(p, n, j);
            size_t k = jn_utf8_next(p, n, i);
            jv first = jn_str_case(rt->a, p + i, k - i, 1), rest = jn_str_case(rt->a, p + k, j - k, 0);
            if (first.t != JV_STR || rest.t != JV_STR) return free(b.p), jn_oom(rt, at);
            jn_buf_put(&b, first.u.s->s, first.u.s->len);
            jn_buf_put(&b, rest.u.s->s, rest.u.s->len);
        }
        i = j;
    }
    return buf_result(rt, at, &b, out);
}

FILTER(f_replace) {
    jv old, rep, cnt = jv_none();
    if (!ARG(0, "old", &old) || !ARG(1, "new", &rep)) return jn_fail(rt, at, SW_EINVAL, "replace needs old and new");
    ARG(2, "count", &cnt);
    jv s = str_of(rt, v), o = str_of(rt, old), r = str_of(rt, rep);
    if (s.t != JV_STR || o.t != JV_STR || r.t != JV_STR) return jn_oom(rt, at);
    RET_STR(jn_str_replace(rt->a, s, o, r, cnt.t == JV_INT ? cnt.u.i : -1));
}

FILTER(f_string) { (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw; RET_STR(str_of(rt, v)); }
FILTER(f_safe) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    *out = s;
    out->flags |= JV_MARKUP;
    return 0;
}

FILTER(f_escape) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    if (v.t == JV_STR && (v.flags & JV_MARKUP)) { /* already safe */
        *out = v;
        return 0;
    }
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    RET_STR(jn_html_escape(rt->a, s));
}

/* Python's str.splitlines() boundaries, for indent. */
static size_t line_break(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1E)) return 1;
    if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) return 2;
    if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 && ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) return 3;
    return 0;
}

FILTER(f_indent) {
    jv width = jv_int(4), first = jv_bool(false), blank = jv_bool(false);
    ARG(0, "width", &width);
    ARG(1, "first", &first);
    ARG(2, "blank", &blank);
    jn_buf ind = {0};
    if (width.t == JV_STR)
        jn_buf_put(&ind, width.u.s->s, width.u.s->len);
    else
        for (int64_t i = 0; i < (width.t == JV_INT ? width.u.i : 4) && i < 4096; i++) jn_buf_puts(&ind, " ");
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return free(ind.p), jn_oom(rt, at);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len;
    const char *pad = ind.p ? ind.p : "";
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    if (jv_truthy(first)) jn_buf_puts(&b, pad);
    /* s + "\n", split into lines; every line after the first gets the pad
     * (blank lines only when blank=True); joined with "\n". */
    size_t i = 0;
    bool line0 = true;
    while (i < n) {
        size_t j = i, br = 0;
        while (j < n && !(br = line_break(p, n, j))) j++;
        if (!line0) {
            jn_buf_puts(&b, "\n");
            if (j > i || jv_truthy(blank)) jn_buf_puts(&b, pad);
        }
        jn_buf_put(&b, p + i, j - i);
        line0 = false;
        i = j + br;
    }
    free(ind.p);
    return buf_result(rt, at, &b, out);
}

FILTER(f_tojson) {
    jv indent = jv_none(), seps = jv_none(), sortk = jv_bool(false), ascii = jv_bool(false);
    ARG(0, "ensure_ascii", &ascii);
    ARG(1, "indent", &indent);
    ARG(2, "separators", &seps);
    ARG(3, "sort_keys", &sortk);
    /* transformers' signature: tojson(x, ensure_ascii=False, indent=None,
     * separators=None, sort_keys=False), so tojson(4) is ensure_ascii=4. */
    const char *isep = NULL, *ksep = NULL;
    if (seps.t == JV_LIST && seps.u.l->n == 2 && seps.u.l->v[0].t == JV_STR && seps.u.l->v[1].t == JV_STR) {
        isep = seps.u.l->v[0].u.s->s;
        ksep = seps.u.l->v[1].u.s->s;
    }
    int ind = indent.t == JV_INT ? (int)(indent.u.i < 0 ? 0 : indent.u.i > 64 ? 64 : indent.u.i) : -1;
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    char err[256];
    if (v.t == JV_UNDEF) return jn_fail(rt, at, SW_EINVAL, "Object of type Undefined is not JSON serializable");
    if (jv_to_json(&b, v, ind, jv_truthy(sortk), isep, ksep, err, sizeof err)) {
        free(b.p);
        return jn_fail(rt, at, SW_EINVAL, "%s", err);
    }
    if (jv_truthy(ascii) && !b.oom) { /* \uXXXX for every non-ASCII character */
        jn_buf a = {.limit = SW_JINJA_MAX_OUTPUT};
        for (size_t i = 0; i < b.len;) {
            if ((unsigned char)b.p[i] < 0x80) {
                jn_buf_put(&a, b.p + i++, 1);
                continue;
            }
            uint32_t c = jn_utf8_decode(b.p, b.len, i);
            char u[16];
            if (c >= 0x10000)
                snprintf(u, sizeof u, "\\u%04x\\u%04x", 0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF));
            else
                snprintf(u, sizeof u, "\\u%04x", c);
            jn_buf_puts(&a, u);
            i = jn_utf8_next(b.p, b.len, i);
        }
        free(b.p);
        b = a;
    }
    return buf_result(rt, at, &b, out);
}

/* ---- numbers ------------------------------------------------------------- */

/* Python's int(str): optional whitespace and sign, digits with single
 * underscores between them. */
static bool parse_int(const char *s, int64_t *out) {
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (*s < '0' || *s > '9') return false;
    unsigned long long v = 0;
    for (; (*s >= '0' && *s <= '9') || (*s == '_' && s[1] >= '0' && s[1] <= '9'); s++) {
        if (*s == '_') continue;
        if (v > (unsigned long long)INT64_MAX / 10) return false;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    if (*s || v > (unsigned long long)INT64_MAX) return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool parse_float(const char *s, double *out) {
    char *end;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    if (!*s) return false;
    double f = strtod(s, &end);
    if (end == s) return false;
    while (*end == ' ' || (*end >= '\t' && *end <= '\r')) end++;
    if (*end) return false;
    *out = f;
    return true;
}

FILTER(f_int) {
    (void)rt, (void)at;
    jv def = jv_int(0);
    ARG(0, "default", &def);
    int64_t i;
    double f;
    if (v.t == JV_INT) *out = v;
    else if (v.t == JV_BOOL) *out = jv_int(v.u.b);
    else if (v.t == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) *out = jv_int((int64_t)v.u.f);
    else if (v.t == JV_STR && parse_int(v.u.s->s, &i)) *out = jv_int(i);
    else if (v.t == JV_STR && parse_float(v.u.s->s, &f) && isfinite(f) && fabs(f) < 9.2e18) *out = jv_int((int64_t)f);
    else *out = def;
    return 0;
}

FILTER(f_float) {
    (void)rt, (void)at;
    jv def = jv_float(0.0);
    ARG(0, "default", &def);
    double f;
    if (jv_is_num(v)) *out = jv_float(jv_num(v));
    else if (v.t == JV_STR && parse_float(v.u.s->s, &f)) *out = jv_float(f);
    else *out = def;
    return 0;
}

FILTER(f_abs) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    if (v.t == JV_FLOAT) *out = jv_float(fabs(v.u.f));
    else if (v.t == JV_INT && v.u.i != INT64_MIN) *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    else if (v.t == JV_BOOL) *out = jv_int(v.u.b);
    else return v.t == JV_UNDEF ? jn_undef_fail(rt, at, v) : jn_fail(rt, at, SW_EINVAL, "bad operand type for abs(): '%s'", jv_typename(v));
    return 0;
}

/* round(value, precision=0, method='common'): Python's round() (halves
 * to even, on the exact binary value) or math.ceil / math.floor. */
FILTER(f_round) {
    jv prec = jv_int(0), method = jv_none();
    ARG(0, "precision", &prec);
    ARG(1, "method", &method);
    if (!jv_is_num(v)) return v.t == JV_UNDEF ? jn_undef_fail(rt, at, v) : jn_fail(rt, at, SW_EINVAL, "round: '%s' is not a number", jv_typename(v));
    int p = prec.t == JV_INT ? (int)(prec.u.i > 17 ? 17 : prec.u.i < -17 ? -17 : prec.u.i) : 0;
    double x = jv_num(v), scale = pow(10.0, p), r;
    const char *m = method.t == JV_STR ? method.u.s->s : "common";
    if (!strcmp(m, "ceil"))
        r = ceil(x * scale) / scale;
    else if (!strcmp(m, "floor"))
        r = floor(x * scale) / scale;
    else if (!strcmp(m, "common")) {
        if (v.t != JV_FLOAT && p >= 0) { /* round(int, n) is the int */
            *out = v.t == JV_BOOL ? jv_int(v.u.b) : v;
            return 0;
        }
        if (p >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", p, x); /* correctly rounded, ties to even */
            r = strtod(buf, NULL);
        } else {
            r = nearbyint(x / pow(10.0, -p)) * pow(10.0, -p);
        }
    } else {
        return jn_fail(rt, at, SW_EINVAL, "method must be 'common', 'ceil' or 'floor'");
    }
    *out = jv_float(r);
    return 0;
}

/* ---- sequences ----------------------------------------------------------- */

FILTER(f_length) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    switch (v.t) {
    case JV_STR: *out = jv_int((int64_t)jn_utf8_count(v.u.s->s, v.u.s->len)); return 0;
    case JV_LIST:
        if (v.flags & JV_GEN) break;
        *out = jv_int(v.u.l->n);
        return 0;
    case JV_DICT:
    case JV_NS: *out = jv_int(v.u.d->n); return 0;
    case JV_UNDEF: *out = jv_int(0); return 0;
    default: break;
    }
    return jn_fail(rt, at, SW_EINVAL, "object of type '%s' has no len()", jv_typename(v));
}

FILTER(f_list) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv items;
    if (jn_iterate(rt, at, v, &items)) return -1;
    *out = jv_list(rt->a, items.u.l->n);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    if (items.u.l->n) memcpy(out->u.l->v, items.u.l->v, (size_t)items.u.l->n * sizeof(jv));
    out->u.l->n = items.u.l->n;
    return 0;
}

FILTER(f_first) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv items;
    if (jn_iterate(rt, at, v, &items)) return -1;
    if (items.u.l->n) {
        *out = items.u.l->v[0];
        return 0;
    }
    *out = jv_undef_hint(rt->a, "No first item, sequence was empty.");
    return out->u.u ? 0 : jn_oom(rt, at);
}

FILTER(f_last) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv items;
    if (v.t == JV_LIST && (v.flags & JV_GEN)) return jn_fail(rt, at, SW_EINVAL, "'generator' object is not reversible");
    if (jn_iterate(rt, at, v, &items)) return -1;
    if (items.u.l->n) {
        *out = items.u.l->v[items.u.l->n - 1];
        return 0;
    }
    *out = jv_undef_hint(rt->a, "No last item, sequence was empty.");
    return out->u.u ? 0 : jn_oom(rt, at);
}

FILTER(f_join) {
    jv sep = jv_none(), attr = jv_none(), items;
    ARG(0, "d", &sep);
    ARG(1, "attribute", &attr);
    if (jn_iterate(rt, at, v, &items)) return -1;
    jv s = sep.t == JV_NONE ? jv_str(rt->a, "", 0) : str_of(rt, sep);
    if (s.t != JV_STR) return jn_oom(rt, at);
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    for (int i = 0; i < items.u.l->n; i++) {
        jv x = items.u.l->v[i];
        if (attr.t != JV_NONE && attr_path(rt, at, x, attr, &x)) return free(b.p), -1;
        if (i) jn_buf_put(&b, s.u.s->s, s.u.s->len);
        jv_to_str(&b, x);
    }
    return buf_result(rt, at, &b, out);
}

FILTER(f_default) {
    (void)rt, (void)at;
    jv def = jv_str(rt->a, "", 0), boolean = jv_bool(false);
    ARG(0, "default_value", &def);
    ARG(1, "boolean", &boolean);
    *out = v.t == JV_UNDEF || (jv_truthy(boolean) && !jv_truthy(v)) ? def : v;
    return 0;
}

FILTER(f_items) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    if (v.t == JV_UNDEF) return gen_result(rt, at, out);
    if (v.t != JV_DICT) return jn_fail(rt, at, SW_EINVAL, "Can only get item pairs from a mapping.");
    if (gen_result(rt, at, out)) return -1;
    for (int i = 0; i < v.u.d->n; i++) {
        jv pair = jv_list(rt->a, 2);
        if (pair.t != JV_LIST) return jn_oom(rt, at);
        pair.flags = JV_TUPLE;
        pair.u.l->v[0] = v.u.d->k[i];
        pair.u.l->v[1] = v.u.d->v[i];
        pair.u.l->n = 2;
        if (!jv_list_push(rt->a, *out, pair)) return jn_oom(rt, at);
    }
    return 0;
}

FILTER(f_reverse) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv items;
    if (v.t == JV_STR) {
        const char *s = v.u.s->s;
        size_t n = v.u.s->len;
        jstr *r = jn_alloc(rt->a, sizeof *r + n + 1);
        if (!r) return jn_oom(rt, at);
        for (size_t i = 0; i < n;) {
            size_t j = jn_utf8_next(s, n, i);
            memcpy(r->s + n - j, s + i, j - i);
            i = j;
        }
        r->len = n;
        *out = (jv){.t = JV_STR, .u.s = r};
        return 0;
    }
    if (jn_iterate(rt, at, v, &items) || gen_result(rt, at, out)) return -1;
    for (int i = items.u.l->n - 1; i >= 0; i--)
        if (!jv_list_push(rt->a, *out, items.u.l->v[i])) return jn_oom(rt, at);
    return 0;
}

/* A sort key: the attribute if asked, lower-cased when not case-sensitive. */
static int sort_key(jn_rt *rt, const jn_node *at, jv x, jv attr, bool cs, jv *k) {
    *k = x;
    if (attr.t != JV_NONE && attr_path(rt, at, x, attr, k)) return -1;
    if (!cs && k->t == JV_STR) {
        *k = jn_str_case(rt->a, k->u.s->s, k->u.s->len, 0);
        if (k->t != JV_STR) return jn_oom(rt, at);
    }
    return 0;
}

static int less(jv a, jv b, bool *lt) {
    if (jv_is_num(a) && jv_is_num(b)) {
        *lt = jv_num(a) < jv_num(b);
        return 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t m = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->s, b.u.s->s, m);
        *lt = c < 0 || (c == 0 && a.u.s->len < b.u.s->len);
        return 0;
    }
    return -1;
}

FILTER(f_sort) {
    jv rev = jv_bool(false), cs = jv_bool(false), attr = jv_none(), items;
    ARG(0, "reverse", &rev);
    ARG(1, "case_sensitive", &cs);
    ARG(2, "attribute", &attr);
    if (jn_iterate(rt, at, v, &items)) return -1;
    int n = items.u.l->n;
    jv *keys = jn_alloc(rt->a, (size_t)(n ? n : 1) * sizeof *keys);
    *out = jv_list(rt->a, n);
    if (!keys || out->t != JV_LIST) return jn_oom(rt, at);
    for (int i = 0; i < n; i++) {
        out->u.l->v[i] = items.u.l->v[i];
        if (sort_key(rt, at, items.u.l->v[i], attr, jv_truthy(cs), &keys[i])) return -1;
    }
    out->u.l->n = n;
    /* stable insertion sort (Python's sort is stable; lists here are small) */
    bool r = jv_truthy(rev);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            bool lt;
            if (less(r ? keys[j - 1] : keys[j], r ? keys[j] : keys[j - 1], &lt))
                return jn_fail(rt, at, SW_EINVAL, "'<' not supported between instances of '%s' and '%s'",
                               jv_typename(keys[j]), jv_typename(keys[j - 1]));
            if (!lt) break;
            jv t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
            t = out->u.l->v[j];
            out->u.l->v[j] = out->u.l->v[j - 1];
            out->u.l->v[j - 1] = t;
        }
    return 0;
}

FILTER(f_unique) {
    jv cs = jv_bool(false), attr = jv_none(), items;
    ARG(0, "case_sensitive", &cs);
    ARG(1, "attribute", &attr);
    if (jn_iterate(rt, at, v, &items) || gen_result(rt, at, out)) return -1;
    jv seen = jv_list(rt->a, 0);
    if (seen.t != JV_LIST) return jn_oom(rt, at);
    for (int i = 0; i < items.u.l->n; i++) {
        jv k;
        bool dup = false;
        if (sort_key(rt, at, items.u.l->v[i], attr, jv_truthy(cs), &k)) return -1;
        for (int j = 0; j < seen.u.l->n && !dup; j++) dup = jv_equal(seen.u.l->v[j], k);
        if (dup) continue;
        if (!jv_list_push(rt->a, seen, k) || !jv_list_push(rt->a, *out, items.u.l->v[i])) return jn_oom(rt, at);
    }
    return 0;
}

static int minmax(jn_rt *rt, const jn_node *at, jv v, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
                  int nkw, bool max, jv *out) {
    jv cs = jv_bool(false), attr = jv_none(), items;
    ARG(0, "case_sensitive", &cs);
    ARG(1, "attribute", &attr);
    if (jn_iterate(rt, at, v, &items)) return -1;
    if (!items.u.l->n) {
        *out = jv_undef_hint(rt->a, max ? "No largest item, sequence was empty." : "No smallest item, sequence was empty.");
        return out->u.u ? 0 : jn_oom(rt, at);
    }
    jv best = items.u.l->v[0], bk;
    if (sort_key(rt, at, best, attr, jv_truthy(cs), &bk)) return -1;
    for (int i = 1; i < items.u.l->n; i++) {
        jv k;
        bool lt;
        if (sort_key(rt, at, items.u.l->v[i], attr, jv_truthy(cs), &k)) return -1;
        if (less(max ? bk : k, max ? k : bk, &lt))
            return jn_fail(rt, at, SW_EINVAL, "'<' not supported between instances of '%s' and '%s'", jv_typename(k), jv_typename(bk));
        if (lt) {
            best = items.u.l->v[i];
            bk = k;
        }
    }
    *out = best;
    return 0;
}
FILTER(f_min) { return minmax(rt, at, v, args, nargs, kwn, kwv, nkw, false, out); }
FILTER(f_max) { return minmax(rt, at, v, args, nargs, kwn, kwv, nkw, true, out); }

FILTER(f_sum) {
    jv attr = jv_none(), start = jv_int(0), items;
    ARG(0, "attribute", &attr);
    ARG(1, "start", &start);
    if (jn_iterate(rt, at, v, &items)) return -1;
    jv acc = start;
    for (int i = 0; i < items.u.l->n; i++) {
        jv x = items.u.l->v[i];
        if (attr.t != JV_NONE && attr_path(rt, at, x, attr, &x)) return -1;
        if (!jv_is_num(x) || !jv_is_num(acc))
            return jn_fail(rt, at, SW_EINVAL, "unsupported operand type(s) for +: '%s' and '%s'", jv_typename(acc), jv_typename(x));
        if (acc.t == JV_FLOAT || x.t == JV_FLOAT)
            acc = jv_float(jv_num(acc) + jv_num(x));
        else {
            int64_t r;
            if (__builtin_add_overflow((int64_t)jv_num(acc), (int64_t)jv_num(x), &r))
                return jn_fail(rt, at, SW_EINVAL, "integer overflow in sum");
            acc = jv_int(r);
        }
    }
    *out = acc;
    return 0;
}

/* select / reject / selectattr / rejectattr: which = 0 select, 1 reject;
 * attr = the attribute argument comes first. */
static int select_common(jn_rt *rt, const jn_node *at, jv v, const jv *args, int nargs, bool reject, bool attr, jv *out) {
    jv items;
    if (!jv_truthy(v)) v = jv_list(rt->a, 0); /* jinja2: `if value:` before iterating, so None gives nothing */
    if (jn_iterate(rt, at, v, &items) || gen_result(rt, at, out)) return -1;
    int k = 0;
    jv path = jv_none();
    if (attr) {
        if (nargs < 1) return jn_fail(rt, at, SW_EINVAL, "missing attribute argument");
        path = args[k++];
    }
    int tid = -1;
    if (k < nargs) {
        if (args[k].t != JV_STR) return jn_fail(rt, at, SW_EINVAL, "test name must be a string");
        if ((tid = jn_test_id(args[k].u.s->s)) < 0) return jn_fail(rt, at, SW_EINVAL, "No test named '%s'.", args[k].u.s->s);
        k++;
    }
    for (int i = 0; i < items.u.l->n; i++) {
        jv x = items.u.l->v[i], tv = x;
        bool ok;
        if (attr && attr_path(rt, at, x, path, &tv)) return -1;
        if (tid < 0)
            ok = jv_truthy(tv);
        else if (jn_call_test(rt, at, tid, tv, args + k, nargs - k, &ok))
            return -1;
        if (ok != reject && !jv_list_push(rt->a, *out, x)) return jn_oom(rt, at);
    }
    return 0;
}
FILTER(f_select) { (void)kwn, (void)kwv, (void)nkw; return select_common(rt, at, v, args, nargs, false, false, out); }
FILTER(f_reject) { (void)kwn, (void)kwv, (void)nkw; return select_common(rt, at, v, args, nargs, true, false, out); }
FILTER(f_selectattr) { (void)kwn, (void)kwv, (void)nkw; return select_common(rt, at, v, args, nargs, false, true, out); }
FILTER(f_rejectattr) { (void)kwn, (void)kwv, (void)nkw; return select_common(rt, at, v, args, nargs, true, true, out); }

/* map(attribute='x', default=...) or map('filter', args...) */
FILTER(f_map) {
    jv items, attr, def;
    bool has_def = ARG(-1, "default", &def);
    if (!jv_truthy(v)) v = jv_list(rt->a, 0); /* as select: None maps to nothing */
    if (jn_iterate(rt, at, v, &items) || gen_result(rt, at, out)) return -1;
    if (ARG(-1, "attribute", &attr)) {
        for (int i = 0; i < items.u.l->n; i++) {
            jv x;
            if (attr_path(rt, at, items.u.l->v[i], attr, &x)) return -1;
            if (x.t == JV_UNDEF && has_def) x = def;
            if (!jv_list_push(rt->a, *out, x)) return jn_oom(rt, at);
        }
        return 0;
    }
    if (nargs < 1 || args[0].t != JV_STR) return jn_fail(rt, at, SW_EINVAL, "map needs a filter name or attribute=");
    int fid = jn_filter_id(args[0].u.s->s);
    if (fid < 0) return jn_fail(rt, at, SW_EINVAL, "No filter named '%s'.", args[0].u.s->s);
    for (int i = 0; i < items.u.l->n; i++) {
        jv x;
        if (jn_call_filter(rt, at, fid, items.u.l->v[i], args + 1, nargs - 1, kwn, kwv, nkw, &x)) return -1;
        if (!jv_list_push(rt->a, *out, x)) return jn_oom(rt, at);
    }
    return 0;
}

FILTER(f_dictsort) {
    jv cs = jv_bool(false), by = jv_none(), rev = jv_bool(false);
    ARG(0, "case_sensitive", &cs);
    ARG(1, "by", &by);
    ARG(2, "reverse", &rev);
    if (v.t != JV_DICT) return jn_fail(rt, at, SW_EINVAL, "You can only sort by either a mapping");
    bool by_value = by.t == JV_STR && !strcmp(by.u.s->s, "value");
    jv pairs;
    if (f_items(rt, at, v, NULL, 0, NULL, NULL, 0, &pairs)) return -1;
    pairs.flags = 0;
    jv key = jv_int(by_value ? 1 : 0);
    jv sargs[3] = {rev, cs, key};
    return f_sort(rt, at, pairs, sargs, 3, NULL, NULL, 0, out);
}

FILTER(f_wordcount) {
    (void)args, (void)nargs, (void)kwn, (void)kwv, (void)nkw;
    jv s = str_of(rt, v);
    if (s.t != JV_STR) return jn_oom(rt, at);
    int64_t c = 0;
    bool in = false;
    for (size_t i = 0; i < s.u.s->len; i++) {
        unsigned char ch = (unsigned char)s.u.s->s[i];
        bool w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z');
        if (w && !in) c++;
        in = w;
    }
    *out = jv_int(c);
    return 0;
}

typedef struct filter_def {
    const char *name;
    int (*fn)(jn_rt *, const jn_node *, jv, const jv *, int, const char *const *, const jv *, int, jv *);
} filter_def;

static const filter_def filters[] = {
    {"abs", f_abs}, {"capitalize", f_capitalize}, {"count", f_length}, {"d", f_default}, {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape}, {"escape", f_escape}, {"first", f_first}, {"float", f_float},
    {"indent", f_indent}, {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last},
    {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min},
    {"reject", f_reject}, {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
    {"round", f_round}, {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr}, {"sort", f_sort},
    {"string", f_string}, {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim},
    {"unique", f_unique}, {"upper", f_upper}, {"wordcount", f_wordcount}, {NULL, NULL}};

int jn_filter_id(const char *name) {
    for (int i = 0; filters[i].name; i++)
        if (!strcmp(filters[i].name, name)) return i;
    return -1;
}

int jn_call_filter(jn_rt *rt, const jn_node *at, int fid, jv v, const jv *args, int nargs, const char *const *kwn,
                   const jv *kwv, int nkw, jv *out) {
    return filters[fid].fn(rt, at, v, args, nargs, kwn, kwv, nkw, out);
}

/* ---- tests --------------------------------------------------------------- */

enum {
    T_DEFINED, T_UNDEFINED, T_NONE, T_BOOLEAN, T_FALSE, T_TRUE, T_INTEGER, T_FLOAT, T_NUMBER, T_STRING, T_MAPPING,
    T_ITERABLE, T_SEQUENCE, T_CALLABLE, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_IN, T_ODD, T_EVEN, T_DIVISIBLEBY,
    T_LOWER, T_UPPER, T_SAMEAS, T_ESCAPED
};

static const struct {
    const char *name;
    int id;
} tests[] = {{"defined", T_DEFINED}, {"undefined", T_UNDEFINED}, {"none", T_NONE}, {"boolean", T_BOOLEAN},
             {"false", T_FALSE}, {"true", T_TRUE}, {"integer", T_INTEGER}, {"float", T_FLOAT}, {"number", T_NUMBER},
             {"string", T_STRING}, {"mapping", T_MAPPING}, {"iterable", T_ITERABLE}, {"sequence", T_SEQUENCE},
             {"callable", T_CALLABLE}, {"eq", T_EQ}, {"equalto", T_EQ}, {"==", T_EQ}, {"ne", T_NE}, {"!=", T_NE},
             {"lt", T_LT}, {"lessthan", T_LT}, {"<", T_LT}, {"le", T_LE}, {"<=", T_LE}, {"gt", T_GT},
             {"greaterthan", T_GT}, {">", T_GT}, {"ge", T_GE}, {">=", T_GE}, {"in", T_IN}, {"odd", T_ODD},
             {"even", T_EVEN}, {"divisibleby", T_DIVISIBLEBY}, {"lower", T_LOWER}, {"upper", T_UPPER},
             {"sameas", T_SAMEAS}, {"escaped", T_ESCAPED}, {NULL, 0}};

int jn_test_id(const char *name) {
    for (int i = 0; tests[i].name; i++)
        if (!strcmp(tests[i].name, name)) return tests[i].id;
    return -1;
}

static int need_args(jn_rt *rt, const jn_node *at, int nargs, int want, const char *name) {
    if (nargs >= want) return 0;
    return jn_fail(rt, at, SW_EINVAL, "test '%s' needs %d argument%s", name, want, want == 1 ? "" : "s");
}

int jn_call_test(jn_rt *rt, const jn_node *at, int tid, jv v, const jv *args, int nargs, bool *out) {
    int cmp;
    switch (tid) {
    case T_DEFINED: *out = v.t != JV_UNDEF; return 0;
    case T_UNDEFINED: *out = v.t == JV_UNDEF; return 0;
    case T_NONE: *out = v.t == JV_NONE; return 0;
    case T_BOOLEAN: *out = v.t == JV_BOOL; return 0;
    case T_FALSE: *out = v.t == JV_BOOL && !v.u.b; return 0;
    case T_TRUE: *out = v.t == JV_BOOL && v.u.b; return 0;
    case T_INTEGER: *out = v.t == JV_INT; return 0;
    case T_FLOAT: *out = v.t == JV_FLOAT; return 0;
    case T_NUMBER: *out = jv_is_num(v); return 0;
    case T_STRING: *out = v.t == JV_STR; return 0;
    case T_MAPPING: *out = v.t == JV_DICT; return 0;
    /* Undefined iterates (as empty) and has __len__ and __getitem__ */
    case T_ITERABLE: *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF; return 0;
    case T_SEQUENCE: *out = v.t == JV_STR || (v.t == JV_LIST && !(v.flags & JV_GEN)) || v.t == JV_DICT || v.t == JV_UNDEF; return 0;
    case T_CALLABLE: *out = v.t == JV_FUNC || v.t == JV_MACRO; return 0;
    case T_EQ:
    case T_NE:
        if (need_args(rt, at, nargs, 1, "eq")) return -1;
        *out = jv_equal(v, args[0]) == (tid == T_EQ);
        return 0;
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE: {
        if (need_args(rt, at, nargs, 1, "lt")) return -1;
        jv a = v, b = args[0];
        if (jv_is_num(a) && jv_is_num(b)) {
            double x = jv_num(a), y = jv_num(b);
            cmp = x < y ? -1 : x > y;
        } else if (a.t == JV_STR && b.t == JV_STR) {
            size_t m = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
            int c = memcmp(a.u.s->s, b.u.s->s, m);
            cmp = c ? (c < 0 ? -1 : 1) : a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        } else {
            if (a.t == JV_UNDEF) return jn_undef_fail(rt, at, a);
            return jn_fail(rt, at, SW_EINVAL, "comparison not supported between instances of '%s' and '%s'",
                           jv_typename(a), jv_typename(b));
        }
        *out = tid == T_LT ? cmp < 0 : tid == T_LE ? cmp <= 0 : tid == T_GT ? cmp > 0 : cmp >= 0;
        return 0;
    }
    case T_IN: {
        if (need_args(rt, at, nargs, 1, "in")) return -1;
        jv seq = args[0];
        *out = false;
        if (seq.t == JV_STR && v.t == JV_STR) {
            size_t n = v.u.s->len;
            if (!n) *out = true;
            for (size_t i = 0; !*out && i + n <= seq.u.s->len; i++) *out = !memcmp(seq.u.s->s + i, v.u.s->s, n);
        } else if (seq.t == JV_LIST) {
            for (int i = 0; i < seq.u.l->n && !*out; i++) *out = jv_equal(seq.u.l->v[i], v);
        } else if (seq.t == JV_DICT) {
            jv d;
            *out = jv_dict_get(seq, v, &d);
        } else if (seq.t != JV_UNDEF) {
            return jn_fail(rt, at, SW_EINVAL, "argument of type '%s' is not iterable", jv_typename(seq));
        }
        return 0;
    }
    case T_ODD:
    case T_EVEN:
    case T_DIVISIBLEBY: {
        if (v.t != JV_INT && v.t != JV_BOOL)
            return v.t == JV_UNDEF ? jn_undef_fail(rt, at, v) : jn_fail(rt, at, SW_EINVAL, "test needs an integer, got '%s'", jv_typename(v));
        int64_t x = v.t == JV_BOOL ? v.u.b : v.u.i, m = 2;
        if (tid == T_DIVISIBLEBY) {
            if (need_args(rt, at, nargs, 1, "divisibleby")) return -1;
            if (args[0].t != JV_INT || args[0].u.i == 0) return jn_fail(rt, at, SW_EINVAL, "divisibleby needs a non-zero integer");
            m = args[0].u.i;
        }
        int64_t r = x % m;
        *out = tid == T_ODD ? r != 0 : r == 0;
        return 0;
    }
    case T_LOWER:
    case T_UPPER: {
        jv s = jn_soft_str(rt->a, v);
        if (s.t != JV_STR) return jn_oom(rt, at);
        jv c = jn_str_case(rt->a, s.u.s->s, s.u.s->len, tid == T_LOWER ? 0 : 1);
        if (c.t != JV_STR) return jn_oom(rt, at);
        /* Python's islower(): no uppercase characters and at least one cased */
        jv other = jn_str_case(rt->a, s.u.s->s, s.u.s->len, tid == T_LOWER ? 1 : 0);
        if (other.t != JV_STR) return jn_oom(rt, at);
        *out = jv_equal(c, s) && !jv_equal(other, s);
        return 0;
    }
    case T_SAMEAS:
        if (need_args(rt, at, nargs, 1, "sameas")) return -1;
        *out = v.t == args[0].t && (v.t == JV_NONE || v.t == JV_UNDEF || (v.t == JV_BOOL && v.u.b == args[0].u.b) ||
                                    (v.t != JV_BOOL && v.u.s == args[0].u.s));
        return 0;
    case T_ESCAPED: *out = false; return 0;
    }
    return jn_fail(rt, at, SW_EINVAL, "internal error: test %d", tid);
}
