/* jinja_builtins.c — what a template reaches by name or by dot: the
 * globals (range, namespace, dict, raise_exception, strftime_now),
 * attribute and item access as the sandbox does them, and the methods of
 * str, dict and list that templates call (content.strip(), m.get('x')).
 *
 * Access follows ImmutableSandboxedEnvironment: obj.name tries a method
 * first, then obj['name']; obj[key] tries the item first, then a method;
 * what is missing is an Undefined that remembers what was asked, so
 * `is defined` works and using it fails with jinja2's message. Methods
 * that mutate (list.append, dict.update...) are refused, as the immutable
 * sandbox refuses them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_impl.h"

#define UNUSED_KW (void)kwn, (void)kwv, (void)nkw

bool jn_arg(const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw, int pos, const char *name,
            jv *out) {
    if (pos >= 0 && pos < nargs) {
        *out = args[pos];
        return true;
    }
    for (int i = 0; i < nkw; i++)
        if (!strcmp(kwn[i], name)) {
            *out = kwv[i];
            return true;
        }
    return false;
}

/* ---- case mapping -------------------------------------------------------- */

/* Simple one-to-one case mapping for the scripts chat text mostly uses:
 * ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. Elsewhere a code
 * point maps to itself (Python maps more: ß -> SS, Armenian, Georgian...). */
static uint32_t cp_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        bool odd_lower = (c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177);
        if (odd_lower) return (c & 1) ? c - 1 : c;
        return (c & 1) ? c : c - 1; /* 0x139-0x148, 0x179-0x17E: lower is even */
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static uint32_t cp_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        bool odd_lower = (c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177);
        if (odd_lower) return (c & 1) ? c : c + 1;
        return (c & 1) ? c + 1 : c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static bool cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF; }

/* mode: 0 lower, 1 upper, 2 Python's str.title(), 3 str.capitalize() */
jv jn_str_case(jn_arena *a, const char *s, size_t n, int mode) {
    jn_buf b = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < n;) {
        size_t j = jn_utf8_next(s, n, i);
        uint32_t c = jn_utf8_decode(s, n, i), m = c;
        if (mode == 0) m = cp_lower(c);
        else if (mode == 1) m = cp_upper(c);
        else if (mode == 2) m = prev_cased ? cp_lower(c) : cp_upper(c);
        else m = first ? cp_upper(c) : cp_lower(c);
        if (mode == 2) prev_cased = cp_cased(c);
        bool up = mode == 1 || (mode == 2 && m != cp_lower(c)) || (mode == 3 && first);
        first = false;
        if (c == 0xDF && up) { /* ß upper-cases to two letters: SS, or Ss in title case */
            jn_buf_puts(&b, mode == 1 ? "SS" : "Ss");
        } else if (m == c) {
            jn_buf_put(&b, s + i, j - i);
        } else {
            char u[4];
            jn_buf_put(&b, u, (size_t)jn_utf8_encode(m, u));
        }
        i = j;
    }
    jv r = b.oom ? jv_undef() : jv_str(a, b.p ? b.p : "", b.len);
    free(b.p);
    return r;
}

/* ---- str() as a value ---------------------------------------------------- */

jv jn_soft_str(jn_arena *a, jv v) {
    if (v.t == JV_STR) return v;
    jn_buf b = {0};
    jv_to_str(&b, v);
    jv r = b.oom ? jv_undef() : jv_str(a, b.p ? b.p : "", b.len);
    free(b.p);
    return r;
}

jv jn_html_escape(jn_arena *a, jv str) {
    jn_buf b = {0};
    const char *s = str.u.s->s;
    size_t n = str.u.s->len, run = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
        if (!e) continue;
        jn_buf_put(&b, s + run, i - run);
        jn_buf_puts(&b, e);
        run = i + 1;
    }
    jn_buf_put(&b, s + run, n - run);
    jv r = b.oom ? jv_undef() : jv_str(a, b.p ? b.p : "", b.len);
    free(b.p);
    if (r.t == JV_STR) r.flags |= JV_MARKUP;
    return r;
}

/* ---- string methods ------------------------------------------------------ */

static bool in_chars(jv chars, const char *s, size_t n, size_t i, size_t *w) {
    *w = jn_utf8_next(s, n, i) - i;
    if (chars.t != JV_STR) return jn_is_space(s, n, i, w);
    const char *c = chars.u.s->s;
    size_t cn = chars.u.s->len;
    for (size_t k = 0; k < cn; k = jn_utf8_next(c, cn, k))
        if (jn_utf8_next(c, cn, k) - k == *w && !memcmp(c + k, s + i, *w)) return true;
    return false;
}

/* which: 1 left, 2 right, 3 both; chars not a string: whitespace */
jv jn_str_strip(jn_arena *a, jv str, jv chars, int which) {
    const char *s = str.u.s->s;
    size_t n = str.u.s->len, b = 0, e = n, w;
    if (which & 1)
        while (b < e && in_chars(chars, s, n, b, &w)) b += w;
    if (which & 2)
        while (e > b) {
            size_t i = e - 1;
            while (i > b && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
            if (!in_chars(chars, s, n, i, &w)) break;
            e = i;
        }
    if (b == 0 && e == n) return str;
    return jv_str(a, s + b, e - b);
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (!nn) return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

/* Python's str.replace(old, new, count): an empty `old` inserts `new`
 * between every character. */
jv jn_str_replace(jn_arena *a, jv str, jv old, jv rep, int64_t count) {
    const char *s = str.u.s->s;
    size_t n = str.u.s->len, on = old.u.s->len;
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    int64_t done = 0;
    if (!on) {
        for (size_t i = 0;; i = jn_utf8_next(s, n, i)) {
            if (count < 0 || done < count) {
                jn_buf_put(&b, rep.u.s->s, rep.u.s->len);
                done++;
            }
            if (i >= n) break;
            jn_buf_put(&b, s + i, jn_utf8_next(s, n, i) - i);
        }
    } else {
        size_t i = 0;
        const char *p;
        while ((count < 0 || done < count) && (p = find_bytes(s + i, n - i, old.u.s->s, on))) {
            jn_buf_put(&b, s + i, (size_t)(p - s) - i);
            jn_buf_put(&b, rep.u.s->s, rep.u.s->len);
            i = (size_t)(p - s) + on;
            done++;
        }
        jn_buf_put(&b, s + i, n - i);
    }
    jv r = b.oom ? jv_undef() : jv_str(a, b.p ? b.p : "", b.len);
    free(b.p);
    return r;
}

static int need_str(jn_rt *rt, const jn_node *at, const char *fn, jv v) {
    if (v.t == JV_STR) return 0;
    if (v.t == JV_UNDEF) return jn_undef_fail(rt, at, v);
    return jn_fail(rt, at, SW_EINVAL, "%s: expected a string, got '%s'", fn, jv_typename(v));
}

#define STR_METHOD(name) \
    static int name(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw, jv *out)

static int strip_common(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, int which, jv *out) {
    jv chars = nargs > 0 ? args[0] : jv_none();
    if (chars.t != JV_NONE && need_str(rt, at, "strip", chars)) return -1;
    *out = jn_str_strip(rt->a, self, chars, which);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}
STR_METHOD(m_strip) { UNUSED_KW; return strip_common(rt, at, self, args, nargs, 3, out); }
STR_METHOD(m_lstrip) { UNUSED_KW; return strip_common(rt, at, self, args, nargs, 1, out); }
STR_METHOD(m_rstrip) { UNUSED_KW; return strip_common(rt, at, self, args, nargs, 2, out); }

static int case_common(jn_rt *rt, const jn_node *at, jv self, int mode, jv *out) {
    *out = jn_str_case(rt->a, self.u.s->s, self.u.s->len, mode);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}
STR_METHOD(m_lower) { (void)args, (void)nargs; UNUSED_KW; return case_common(rt, at, self, 0, out); }
STR_METHOD(m_upper) { (void)args, (void)nargs; UNUSED_KW; return case_common(rt, at, self, 1, out); }
STR_METHOD(m_title) { (void)args, (void)nargs; UNUSED_KW; return case_common(rt, at, self, 2, out); }
STR_METHOD(m_capitalize) { (void)args, (void)nargs; UNUSED_KW; return case_common(rt, at, self, 3, out); }

static int affix(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, bool end, jv *out) {
    if (nargs < 1) return jn_fail(rt, at, SW_EINVAL, "%s() takes at least 1 argument", end ? "endswith" : "startswith");
    jv p = args[0];
    int np = p.t == JV_LIST ? p.u.l->n : 1;
    for (int k = 0; k < np; k++) {
        jv x = p.t == JV_LIST ? p.u.l->v[k] : p;
        if (x.t != JV_STR)
            return jn_fail(rt, at, SW_EINVAL, "%s first arg must be str or a tuple of str, not %s",
                           end ? "endswith" : "startswith", jv_typename(x));
        size_t n = self.u.s->len, m = x.u.s->len;
        if (m <= n && !memcmp(self.u.s->s + (end ? n - m : 0), x.u.s->s, m)) {
            *out = jv_bool(true);
            return 0;
        }
    }
    *out = jv_bool(false);
    return 0;
}
STR_METHOD(m_startswith) { UNUSED_KW; return affix(rt, at, self, args, nargs, false, out); }
STR_METHOD(m_endswith) { UNUSED_KW; return affix(rt, at, self, args, nargs, true, out); }

STR_METHOD(m_replace) {
    jv old, rep, cnt = jv_int(-1);
    if (!jn_arg(args, nargs, kwn, kwv, nkw, 0, "old", &old) || !jn_arg(args, nargs, kwn, kwv, nkw, 1, "new", &rep))
        return jn_fail(rt, at, SW_EINVAL, "replace() takes at least 2 arguments");
    jn_arg(args, nargs, kwn, kwv, nkw, 2, "count", &cnt);
    if (need_str(rt, at, "replace", old) || need_str(rt, at, "replace", rep)) return -1;
    *out = jn_str_replace(rt->a, self, old, rep, cnt.t == JV_INT ? cnt.u.i : -1);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}

/* Python's str.split(sep=None, maxsplit=-1). */
STR_METHOD(m_split) {
    jv sep = jv_none(), maxv = jv_int(-1);
    jn_arg(args, nargs, kwn, kwv, nkw, 0, "sep", &sep);
    jn_arg(args, nargs, kwn, kwv, nkw, 1, "maxsplit", &maxv);
    int64_t max = maxv.t == JV_INT ? maxv.u.i : -1;
    const char *s = self.u.s->s;
    size_t n = self.u.s->len;
    *out = jv_list(rt->a, 0);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    if (sep.t == JV_NONE) {
        size_t i = 0, w;
        int64_t done = 0;
        for (;;) {
            while (i < n && jn_is_space(s, n, i, &w)) i += w;
            if (i >= n) break;
            size_t b = i;
            if (max >= 0 && done >= max) {
                /* the rest, right-stripped of whitespace, is the last piece */
                size_t e = n;
                jv rest = jn_str_strip(rt->a, jv_str(rt->a, s + b, e - b), jv_none(), 2);
                if (rest.t != JV_STR || !jv_list_push(rt->a, *out, rest)) return jn_oom(rt, at);
                break;
            }
            while (i < n && !jn_is_space(s, n, i, &w)) i = jn_utf8_next(s, n, i);
            jv piece = jv_str(rt->a, s + b, i - b);
            if (piece.t != JV_STR || !jv_list_push(rt->a, *out, piece)) return jn_oom(rt, at);
            done++;
        }
        return 0;
    }
    if (need_str(rt, at, "split", sep)) return -1;
    if (!sep.u.s->len) return jn_fail(rt, at, SW_EINVAL, "empty separator");
    size_t i = 0;
    int64_t done = 0;
    const char *p;
    while ((max < 0 || done < max) && (p = find_bytes(s + i, n - i, sep.u.s->s, sep.u.s->len))) {
        jv piece = jv_str(rt->a, s + i, (size_t)(p - s) - i);
        if (piece.t != JV_STR || !jv_list_push(rt->a, *out, piece)) return jn_oom(rt, at);
        i = (size_t)(p - s) + sep.u.s->len;
        done++;
    }
    jv last = jv_str(rt->a, s + i, n - i);
    if (last.t != JV_STR || !jv_list_push(rt->a, *out, last)) return jn_oom(rt, at);
    return 0;
}

static int find_common(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, bool count, jv *out) {
    if (nargs < 1 || need_str(rt, at, count ? "count" : "find", args[0])) return nargs < 1 ? jn_fail(rt, at, SW_EINVAL, "missing argument") : -1;
    const char *s = self.u.s->s, *nd = args[0].u.s->s;
    size_t n = self.u.s->len, nn = args[0].u.s->len;
    if (count) {
        int64_t c = 0;
        if (!nn) {
            *out = jv_int((int64_t)jn_utf8_count(s, n) + 1);
            return 0;
        }
        for (size_t i = 0; i + nn <= n;) {
            const char *p = find_bytes(s + i, n - i, nd, nn);
            if (!p) break;
            c++;
            i = (size_t)(p - s) + nn;
        }
        *out = jv_int(c);
        return 0;
    }
    const char *p = find_bytes(s, n, nd, nn);
    *out = jv_int(p ? (int64_t)jn_utf8_count(s, (size_t)(p - s)) : -1);
    return 0;
}
STR_METHOD(m_find) { UNUSED_KW; return find_common(rt, at, self, args, nargs, false, out); }
STR_METHOD(m_count) { UNUSED_KW; return find_common(rt, at, self, args, nargs, true, out); }

STR_METHOD(m_join) {
    UNUSED_KW;
    jv items;
    if (nargs < 1) return jn_fail(rt, at, SW_EINVAL, "join() takes exactly one argument");
    if (jn_iterate(rt, at, args[0], &items)) return -1;
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    for (int i = 0; i < items.u.l->n; i++) {
        jv x = items.u.l->v[i];
        if (x.t != JV_STR) {
            free(b.p);
            return jn_fail(rt, at, SW_EINVAL, "sequence item %d: expected str instance, %s found", i, jv_typename(x));
        }
        if (i) jn_buf_put(&b, self.u.s->s, self.u.s->len);
        jn_buf_put(&b, x.u.s->s, x.u.s->len);
    }
    *out = b.oom ? jv_undef() : jv_str(rt->a, b.p ? b.p : "", b.len);
    free(b.p);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}

/* str.format with {} / {0} / {name} fields and {{ }} escapes; format specs
 * and conversions are refused rather than guessed. */
STR_METHOD(m_format) {
    const char *s = self.u.s->s;
    size_t n = self.u.s->len;
    jn_buf b = {.limit = SW_JINJA_MAX_OUTPUT};
    int auto_idx = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c == '{' || c == '}') && i + 1 < n && s[i + 1] == c) {
            jn_buf_put(&b, &c, 1);
            i++;
            continue;
        }
        if (c == '}') {
            free(b.p);
            return jn_fail(rt, at, SW_EINVAL, "single '}' encountered in format string");
        }
        if (c != '{') {
            jn_buf_put(&b, &c, 1);
            continue;
        }
        size_t e = i + 1;
        while (e < n && s[e] != '}') e++;
        if (e >= n) {
            free(b.p);
            return jn_fail(rt, at, SW_EINVAL, "single '{' encountered in format string");
        }
        char field[64];
        size_t fl = e - i - 1 < sizeof field - 1 ? e - i - 1 : sizeof field - 1;
        memcpy(field, s + i + 1, fl);
        field[fl] = '\0';
        jv v;
        bool ok;
        if (strpbrk(field, ":!.[")) {
            free(b.p);
            return jn_fail(rt, at, SW_EINVAL, "format(): field '{%s}' is not supported (only {}, {0}, {name})", field);
        }
        if (!fl)
            ok = auto_idx < nargs && (v = args[auto_idx++], true);
        else if (field[0] >= '0' && field[0] <= '9')
            ok = atoi(field) < nargs && (v = args[atoi(field)], true);
        else
            ok = jn_arg(NULL, 0, kwn, kwv, nkw, -1, field, &v);
        if (!ok) {
            free(b.p);
            return jn_fail(rt, at, SW_EINVAL, "format(): no argument for '{%s}'", field);
        }
        jv_to_str(&b, v);
        i = e;
    }
    *out = b.oom ? jv_undef() : jv_str(rt->a, b.p ? b.p : "", b.len);
    free(b.p);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}

/* ---- dict and list methods ----------------------------------------------- */

STR_METHOD(m_get) {
    jv key, def = jv_none();
    if (!jn_arg(args, nargs, kwn, kwv, nkw, 0, "key", &key)) return jn_fail(rt, at, SW_EINVAL, "get expected at least 1 argument");
    jn_arg(args, nargs, kwn, kwv, nkw, 1, "default", &def);
    if (!jv_dict_get(self, key, out)) *out = def;
    return 0;
}

static int dict_view(jn_rt *rt, const jn_node *at, jv self, int what, jv *out) {
    jdict *d = self.u.d;
    *out = jv_list(rt->a, d->n);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    for (int i = 0; i < d->n; i++) {
        if (what == 2) {
            jv pair = jv_list(rt->a, 2);
            if (pair.t != JV_LIST) return jn_oom(rt, at);
            pair.flags = JV_TUPLE;
            pair.u.l->v[0] = d->k[i];
            pair.u.l->v[1] = d->v[i];
            pair.u.l->n = 2;
            out->u.l->v[i] = pair;
        } else {
            out->u.l->v[i] = what ? d->v[i] : d->k[i];
        }
    }
    out->u.l->n = d->n;
    return 0;
}
STR_METHOD(m_keys) { (void)args, (void)nargs; UNUSED_KW; return dict_view(rt, at, self, 0, out); }
STR_METHOD(m_values) { (void)args, (void)nargs; UNUSED_KW; return dict_view(rt, at, self, 1, out); }
STR_METHOD(m_items) { (void)args, (void)nargs; UNUSED_KW; return dict_view(rt, at, self, 2, out); }

STR_METHOD(m_index) {
    UNUSED_KW;
    if (nargs < 1) return jn_fail(rt, at, SW_EINVAL, "index() takes at least 1 argument");
    for (int i = 0; i < self.u.l->n; i++)
        if (jv_equal(self.u.l->v[i], args[0])) {
            *out = jv_int(i);
            return 0;
        }
    return jn_fail(rt, at, SW_EINVAL, "value is not in list");
}

STR_METHOD(m_lcount) {
    UNUSED_KW;
    int64_t c = 0;
    if (nargs < 1) return jn_fail(rt, at, SW_EINVAL, "count() takes exactly one argument");
    for (int i = 0; i < self.u.l->n; i++) c += jv_equal(self.u.l->v[i], args[0]);
    *out = jv_int(c);
    return 0;
}

typedef struct method {
    const char *name;
    jn_cfn fn;
} method;

static const method str_methods[] = {
    {"strip", m_strip}, {"lstrip", m_lstrip}, {"rstrip", m_rstrip}, {"lower", m_lower}, {"upper", m_upper},
    {"title", m_title}, {"capitalize", m_capitalize}, {"startswith", m_startswith}, {"endswith", m_endswith},
    {"replace", m_replace}, {"split", m_split}, {"find", m_find}, {"count", m_count}, {"join", m_join},
    {"format", m_format}, {NULL, NULL}};
static const method dict_methods[] = {
    {"get", m_get}, {"keys", m_keys}, {"values", m_values}, {"items", m_items}, {NULL, NULL}};
static const method list_methods[] = {{"index", m_index}, {"count", m_lcount}, {NULL, NULL}};
/* What the immutable sandbox refuses: methods that change their object. */
static const char *const unsafe_dict[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const unsafe_list[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL};

static bool find_method(const method *tab, jv name, jn_cfn *fn, const char **fname) {
    for (int i = 0; tab[i].name; i++)
        if (!strcmp(tab[i].name, name.u.s->s)) {
            *fn = tab[i].fn;
            *fname = tab[i].name;
            return true;
        }
    return false;
}

static bool in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return true;
    return false;
}

/* A method of obj called name, if it has one: 1 found, 0 not, -1 error. */
static int method_of(jn_rt *rt, const jn_node *at, jv obj, jv name, jv *out) {
    if (name.t != JV_STR) return 0;
    const method *tab = obj.t == JV_STR ? str_methods : obj.t == JV_DICT ? dict_methods
                      : obj.t == JV_LIST && !(obj.flags & JV_GEN) ? list_methods : NULL;
    jn_cfn fn;
    const char *fname;
    if (tab && find_method(tab, name, &fn, &fname)) {
        *out = jv_func(rt->a, fname, fn, obj);
        return out->t == JV_FUNC ? 1 : jn_oom(rt, at);
    }
    const char *const *unsafe = obj.t == JV_DICT ? unsafe_dict : obj.t == JV_LIST ? unsafe_list : NULL;
    if (unsafe && in_list(unsafe, name.u.s->s)) {
        char *hint = jn_alloc(rt->a, 128);
        if (!hint) return jn_oom(rt, at);
        snprintf(hint, 128, "access to attribute '%s' of '%s' object is unsafe.", name.u.s->s, jv_typename(obj));
        *out = jv_undef_hint(rt->a, hint);
        return out->u.u ? 1 : jn_oom(rt, at);
    }
    return 0;
}

int jn_getattr(jn_rt *rt, const jn_node *at, jv obj, jv name, jv *out) {
    if (obj.t == JV_UNDEF) return jn_undef_fail(rt, at, obj);
    int m = method_of(rt, at, obj, name, out);
    if (m) return m < 0 ? -1 : 0;
    if ((obj.t == JV_DICT || obj.t == JV_NS) && jv_dict_get(obj, name, out)) return 0;
    *out = jv_undef_attr(rt->a, obj, name);
    return out->u.u ? 0 : jn_oom(rt, at);
}

int jn_getitem(jn_rt *rt, const jn_node *at, jv obj, jv key, jv *out) {
    if (obj.t == JV_UNDEF) return jn_undef_fail(rt, at, obj);
    bool intkey = key.t == JV_INT || key.t == JV_BOOL;
    int64_t k = key.t == JV_BOOL ? key.u.b : key.u.i;
    if (obj.t == JV_LIST && !(obj.flags & JV_GEN) && intkey) {
        int64_t n = obj.u.l->n;
        if (k < 0) k += n;
        if (k >= 0 && k < n) {
            *out = obj.u.l->v[k];
            return 0;
        }
    } else if (obj.t == JV_STR && intkey) {
        const char *s = obj.u.s->s;
        size_t n = obj.u.s->len;
        int64_t len = (int64_t)jn_utf8_count(s, n);
        if (k < 0) k += len;
        if (k >= 0 && k < len) {
            size_t i = 0;
            for (int64_t c = 0; c < k; c++) i = jn_utf8_next(s, n, i);
            *out = jv_str(rt->a, s + i, jn_utf8_next(s, n, i) - i);
            return out->t == JV_STR ? 0 : jn_oom(rt, at);
        }
    } else if ((obj.t == JV_DICT || obj.t == JV_NS) && jv_dict_get(obj, key, out)) {
        return 0;
    } else {
        int m = method_of(rt, at, obj, key, out);
        if (m) return m < 0 ? -1 : 0;
    }
    *out = jv_undef_attr(rt->a, obj, key);
    return out->u.u ? 0 : jn_oom(rt, at);
}

/* ---- globals ------------------------------------------------------------- */

#define GLOBAL(name) \
    static int name(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw, jv *out)

GLOBAL(g_range) {
    (void)self;
    UNUSED_KW;
    int64_t a = 0, b = 0, step = 1;
    for (int i = 0; i < nargs; i++)
        if (args[i].t != JV_INT && args[i].t != JV_BOOL)
            return args[i].t == JV_UNDEF ? jn_undef_fail(rt, at, args[i])
                                         : jn_fail(rt, at, SW_EINVAL, "'%s' object cannot be interpreted as an integer", jv_typename(args[i]));
#define IV(x) ((x).t == JV_BOOL ? (int64_t)(x).u.b : (x).u.i)
    if (nargs == 1) b = IV(args[0]);
    else if (nargs == 2 || nargs == 3) {
        a = IV(args[0]);
        b = IV(args[1]);
        if (nargs == 3) step = IV(args[2]);
    } else {
        return jn_fail(rt, at, SW_EINVAL, "range expected 1 to 3 arguments, got %d", nargs);
    }
#undef IV
    if (step == 0) return jn_fail(rt, at, SW_EINVAL, "range() arg 3 must not be zero");
    int64_t n = 0;
    if (step > 0 && a < b) n = (int64_t)(((__int128)b - a + step - 1) / step);
    if (step < 0 && a > b) n = (int64_t)(((__int128)a - b - step - 1) / -step);
    if (n > JN_MAX_RANGE)
        return jn_fail(rt, at, SW_EINVAL, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JN_MAX_RANGE);
    *out = jv_list(rt->a, (int)n);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    for (int64_t i = 0; i < n; i++) out->u.l->v[i] = jv_int(a + i * step);
    out->u.l->n = (int)n;
    return 0;
}

static int kwargs_dict(jn_rt *rt, const jn_node *at, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
                       int nkw, int type, jv *out) {
    *out = jv_dict(rt->a, nkw);
    if (out->t != JV_DICT) return jn_oom(rt, at);
    if (nargs > 1) return jn_fail(rt, at, SW_EINVAL, "expected at most 1 positional argument, got %d", nargs);
    if (nargs == 1) {
        if (args[0].t != JV_DICT) return jn_fail(rt, at, SW_EINVAL, "'%s' object is not a mapping", jv_typename(args[0]));
        for (int i = 0; i < args[0].u.d->n; i++)
            if (!jv_dict_set(rt->a, *out, args[0].u.d->k[i], args[0].u.d->v[i])) return jn_oom(rt, at);
    }
    for (int i = 0; i < nkw; i++) {
        jv k = jv_cstr(rt->a, kwn[i]);
        if (k.t != JV_STR || !jv_dict_set(rt->a, *out, k, kwv[i])) return jn_oom(rt, at);
    }
    out->t = (uint8_t)type;
    return 0;
}

GLOBAL(g_namespace) { (void)self; return kwargs_dict(rt, at, args, nargs, kwn, kwv, nkw, JV_NS, out); }
GLOBAL(g_dict) { (void)self; return kwargs_dict(rt, at, args, nargs, kwn, kwv, nkw, JV_DICT, out); }

GLOBAL(g_raise) {
    (void)self, (void)out;
    jv msg = jv_none();
    jn_arg(args, nargs, kwn, kwv, nkw, 0, "message", &msg);
    jn_buf b = {0};
    jv_to_str(&b, msg);
    int rc = jn_fail(rt, at, SW_EINVAL, "%s", b.p ? b.p : "");
    free(b.p);
    return rc;
}

GLOBAL(g_strftime_now) {
    (void)self;
    jv fmt;
    if (!jn_arg(args, nargs, kwn, kwv, nkw, 0, "format", &fmt) || fmt.t != JV_STR)
        return jn_fail(rt, at, SW_EINVAL, "strftime_now() takes a format string");
    time_t t = rt->env->now ? (time_t)rt->env->now : time(NULL);
    struct tm tm;
    if (rt->env->now)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    char buf[512];
    size_t n = fmt.u.s->len ? strftime(buf, sizeof buf, fmt.u.s->s, &tm) : 0;
    *out = jv_str(rt->a, buf, n);
    return out->t == JV_STR ? 0 : jn_oom(rt, at);
}

static const method globals[] = {{"range", g_range}, {"namespace", g_namespace}, {"dict", g_dict},
                                 {"raise_exception", g_raise}, {"strftime_now", g_strftime_now}, {NULL, NULL}};

bool jn_global(jn_rt *rt, const char *name, jv *out) {
    for (int i = 0; globals[i].name; i++)
        if (!strcmp(globals[i].name, name)) {
            *out = jv_func(rt->a, globals[i].name, globals[i].fn, jv_none());
            return out->t == JV_FUNC;
        }
    return false;
}
