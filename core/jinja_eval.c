/* jinja_eval.c — rendering: statements, expressions, scopes, macros.
 *
 * Scopes follow jinja2: the template's top level is one frame; every loop
 * iteration gets a fresh frame (so {% set %} inside a loop is forgotten at
 * the next iteration and after the loop; namespace() is how templates
 * carry state out); if blocks share their enclosing frame; a macro call
 * gets a frame whose parent is where the macro was defined.
 *
 * Limits a hostile template meets: loop iterations (JN_MAX_STEPS, with
 * Ctrl-C polled as they run), macro call depth, output size and the
 * arena's memory cap; each ends the render with an error, never a hang.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interrupt.h"
#include "jinja_impl.h"

/* ---- errors -------------------------------------------------------------- */

int jn_fail(jn_rt *rt, const jn_node *at, sw_status st, const char *fmt, ...) {
    if (rt->failed) return -1; /* keep the first, innermost error */
    rt->failed = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        sw_err(rt->ctx, st, "%s:%d:%d: %s", rt->tpl->name, at->line, at->col, msg);
    else
        sw_err(rt->ctx, st, "%s: %s", rt->tpl->name, msg);
    return -1;
}

int jn_oom(jn_rt *rt, const jn_node *at) {
    if (rt->a->capped)
        return jn_fail(rt, at, SW_EINVAL, "the template used more than %zu KiB of memory", rt->env->max_memory >> 10);
    return jn_fail(rt, at, SW_ENOMEM, "out of memory");
}

int jn_undef_fail(jn_rt *rt, const jn_node *at, jv u) {
    char msg[512];
    jv_undef_message(u, msg, sizeof msg);
    return jn_fail(rt, at, SW_EINVAL, "%s", msg);
}

int jn_step(jn_rt *rt, const jn_node *at) {
    if (++rt->steps > JN_MAX_STEPS)
        return jn_fail(rt, at, SW_EINVAL, "the template ran more than %lld loop iterations", JN_MAX_STEPS);
    if ((rt->steps & 1023) == 0 && sw_interrupted()) return jn_fail(rt, at, SW_EINTR, "interrupted");
    return 0;
}

/* ---- frames -------------------------------------------------------------- */

static jn_frame *frame_new(jn_rt *rt, jn_frame *parent) {
    jn_frame *f = jn_alloc(rt->a, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

static bool frame_lookup(jn_frame *f, const char *name, jv *out) {
    for (; f; f = f->parent)
        for (int i = f->n - 1; i >= 0; i--)
            if (!strcmp(f->v[i].name, name)) {
                *out = f->v[i].val;
                return true;
            }
    return false;
}

/* Bind in f itself (not a parent): what {% set %} does. */
static bool frame_set(jn_arena *a, jn_frame *f, const char *name, jv v) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].name, name)) {
            f->v[i].val = v;
            return true;
        }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        jn_var *nv = jn_alloc(a, (size_t)cap * sizeof *nv);
        if (!nv) return false;
        if (f->n) memcpy(nv, f->v, (size_t)f->n * sizeof *nv);
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n].name = name;
    f->v[f->n++].val = v;
    return true;
}

/* ---- iteration ----------------------------------------------------------- */

int jn_iterate(jn_rt *rt, const jn_node *at, jv v, jv *out) {
    switch (v.t) {
    case JV_LIST: *out = v; return 0;
    case JV_UNDEF: *out = jv_list(rt->a, 0); break;
    case JV_DICT:
    case JV_NS: {
        *out = jv_list(rt->a, v.u.d->n);
        if (out->t != JV_LIST) return jn_oom(rt, at);
        for (int i = 0; i < v.u.d->n; i++) out->u.l->v[i] = v.u.d->k[i];
        out->u.l->n = v.u.d->n;
        return 0;
    }
    case JV_STR: {
        const char *s = v.u.s->s;
        size_t n = v.u.s->len;
        *out = jv_list(rt->a, (int)jn_utf8_count(s, n));
        if (out->t != JV_LIST) return jn_oom(rt, at);
        for (size_t i = 0; i < n;) {
            size_t j = jn_utf8_next(s, n, i);
            jv c = jv_str(rt->a, s + i, j - i);
            if (c.t != JV_STR) return jn_oom(rt, at);
            out->u.l->v[out->u.l->n++] = c;
            i = j;
        }
        return 0;
    }
    default: return jn_fail(rt, at, SW_EINVAL, "'%s' object is not iterable", jv_typename(v));
    }
    return out->t == JV_LIST ? 0 : jn_oom(rt, at);
}

/* ---- arithmetic and comparison ------------------------------------------- */

static int type_error(jn_rt *rt, const jn_node *at, const char *op, jv l, jv r) {
    if (l.t == JV_UNDEF) return jn_undef_fail(rt, at, l);
    if (r.t == JV_UNDEF) return jn_undef_fail(rt, at, r);
    if (!strcmp(op, "+") && (l.t == JV_STR || l.t == JV_LIST))
        return jn_fail(rt, at, SW_EINVAL, "can only concatenate %s (not \"%s\") to %s", jv_typename(l), jv_typename(r),
                       jv_typename(l));
    return jn_fail(rt, at, SW_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_typename(l),
                   jv_typename(r));
}

static bool is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int64_t as_int(jv v) { return v.t == JV_BOOL ? v.u.b : v.u.i; }

static int repeat(jn_rt *rt, const jn_node *at, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        size_t n = seq.u.s->len;
        if (n && (uint64_t)times > SW_JINJA_MAX_OUTPUT / n)
            return jn_fail(rt, at, SW_EINVAL, "string repetition too large");
        jstr *s = jn_alloc(rt->a, sizeof *s + n * (size_t)times + 1);
        if (!s) return jn_oom(rt, at);
        for (int64_t i = 0; i < times; i++) memcpy(s->s + (size_t)i * n, seq.u.s->s, n);
        s->len = n * (size_t)times;
        *out = (jv){.t = JV_STR, .flags = seq.flags & JV_MARKUP, .u.s = s};
        return 0;
    }
    int n = seq.u.l->n;
    if (n && times > (1 << 24) / n) return jn_fail(rt, at, SW_EINVAL, "list repetition too large");
    *out = jv_list(rt->a, n * (int)times);
    if (out->t != JV_LIST) return jn_oom(rt, at);
    for (int64_t i = 0; i < times; i++)
        for (int k = 0; k < n; k++) out->u.l->v[out->u.l->n++] = seq.u.l->v[k];
    out->flags = seq.flags & JV_TUPLE;
    return 0;
}

static int binop(jn_rt *rt, const jn_node *at, int op, jv l, jv r, jv *out) {
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    if (op == OP_CONCAT) {
        jn_buf b = {0};
        jv_to_str(&b, l);
        jv_to_str(&b, r);
        if (b.oom) return free(b.p), jn_oom(rt, at);
        *out = jv_str(rt->a, b.p ? b.p : "", b.len);
        free(b.p);
        return out->t == JV_STR ? 0 : jn_oom(rt, at);
    }
    if (is_intlike(l) && is_intlike(r)) {
        int64_t x = as_int(l), y = as_int(r), z = 0;
        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &z)) goto overflow;
            break;
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &z)) goto overflow;
            break;
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &z)) goto overflow;
            break;
        case OP_DIV:
            if (!y) return jn_fail(rt, at, SW_EINVAL, "division by zero");
            *out = jv_float((double)x / (double)y);
            return 0;
        case OP_FLOORDIV:
        case OP_MOD:
            if (!y) return jn_fail(rt, at, SW_EINVAL, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) goto overflow;
            z = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) z--; /* floor, as Python */
            if (op == OP_MOD) z = x - z * y;
            break;
        case OP_POW:
            if (y < 0) {
                *out = jv_float(pow((double)x, (double)y));
                return 0;
            }
            /* by squaring; 0, 1 and -1 never overflow however large y is */
            {
                int64_t base = x, e = y;
                z = 1;
                if (x == 0 || x == 1) {
                    z = y == 0 ? 1 : x;
                    e = 0;
                } else if (x == -1) {
                    z = (y & 1) ? -1 : 1;
                    e = 0;
                }
                while (e) {
                    if ((e & 1) && __builtin_mul_overflow(z, base, &z)) goto overflow;
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) goto overflow;
                }
            }
            break;
        }
        *out = jv_int(z);
        return 0;
    overflow:
        return jn_fail(rt, at, SW_EINVAL, "integer overflow in '%s' (stepwise's integers are 64-bit)", names[op]);
    }
    if (jv_is_num(l) && jv_is_num(r)) {
        double x = jv_num(l), y = jv_num(r), z = 0;
        switch (op) {
        case OP_ADD: z = x + y; break;
        case OP_SUB: z = x - y; break;
        case OP_MUL: z = x * y; break;
        case OP_DIV:
            if (y == 0) return jn_fail(rt, at, SW_EINVAL, "float division by zero");
            z = x / y;
            break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0) return jn_fail(rt, at, SW_EINVAL, "float modulo");
            if (op == OP_FLOORDIV) {
                z = floor(x / y);
            } else {
                z = fmod(x, y);
                if (z != 0 && ((z < 0) != (y < 0))) z += y;
            }
            break;
        case OP_POW: z = pow(x, y); break;
        }
        *out = jv_float(z);
        return 0;
    }
    if (op == OP_ADD && l.t == JV_STR && r.t == JV_STR) {
        /* Markup + str escapes the str, and the sum is Markup */
        bool markup = (l.flags | r.flags) & JV_MARKUP;
        if (markup && !(l.flags & JV_MARKUP) && (l = jn_html_escape(rt->a, l)).t != JV_STR) return jn_oom(rt, at);
        if (markup && !(r.flags & JV_MARKUP) && (r = jn_html_escape(rt->a, r)).t != JV_STR) return jn_oom(rt, at);
        size_t n = l.u.s->len + r.u.s->len;
        jstr *s = jn_alloc(rt->a, sizeof *s + n + 1);
        if (!s) return jn_oom(rt, at);
        memcpy(s->s, l.u.s->s, l.u.s->len);
        memcpy(s->s + l.u.s->len, r.u.s->s, r.u.s->len);
        s->len = n;
        *out = (jv){.t = JV_STR, .flags = markup ? JV_MARKUP : 0, .u.s = s};
        return 0;
    }
    if (op == OP_ADD && l.t == JV_LIST && r.t == JV_LIST && !((l.flags | r.flags) & JV_GEN) &&
        (l.flags & JV_TUPLE) == (r.flags & JV_TUPLE)) {
        *out = jv_list(rt->a, l.u.l->n + r.u.l->n);
        if (out->t != JV_LIST) return jn_oom(rt, at);
        memcpy(out->u.l->v, l.u.l->v, (size_t)l.u.l->n * sizeof(jv));
        memcpy(out->u.l->v + l.u.l->n, r.u.l->v, (size_t)r.u.l->n * sizeof(jv));
        out->u.l->n = l.u.l->n + r.u.l->n;
        out->flags = l.flags;
        return 0;
    }
    if (op == OP_MUL) {
        if ((l.t == JV_STR || (l.t == JV_LIST && !(l.flags & JV_GEN))) && is_intlike(r)) return repeat(rt, at, l, as_int(r), out);
        if ((r.t == JV_STR || (r.t == JV_LIST && !(r.flags & JV_GEN))) && is_intlike(l)) return repeat(rt, at, r, as_int(l), out);
    }
    if (op == OP_MOD && l.t == JV_STR && r.t != JV_UNDEF)
        return jn_fail(rt, at, SW_EINVAL, "printf-style '%%' formatting of strings is not supported");
    return type_error(rt, at, names[op], l, r);
}

/* Python's <, for numbers, strings and sequences. */
static int order(jn_rt *rt, const jn_node *at, const char *op, jv l, jv r, int *cmp) {
    if (jv_is_num(l) && jv_is_num(r)) {
        double x = jv_num(l), y = jv_num(r);
        if (is_intlike(l) && is_intlike(r)) {
            int64_t a = as_int(l), b = as_int(r);
            *cmp = a < b ? -1 : a > b;
        } else {
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        }
        return 0;
    }
    if (l.t == JV_STR && r.t == JV_STR) {
        size_t m = l.u.s->len < r.u.s->len ? l.u.s->len : r.u.s->len;
        int c = memcmp(l.u.s->s, r.u.s->s, m);
        *cmp = c ? c : l.u.s->len < r.u.s->len ? -1 : l.u.s->len > r.u.s->len;
        return 0;
    }
    if (l.t == JV_LIST && r.t == JV_LIST && !((l.flags | r.flags) & JV_GEN) && (l.flags & JV_TUPLE) == (r.flags & JV_TUPLE)) {
        int n = l.u.l->n < r.u.l->n ? l.u.l->n : r.u.l->n;
        for (int i = 0; i < n; i++) {
            if (jv_equal(l.u.l->v[i], r.u.l->v[i])) continue;
            return order(rt, at, op, l.u.l->v[i], r.u.l->v[i], cmp);
        }
        *cmp = l.u.l->n < r.u.l->n ? -1 : l.u.l->n > r.u.l->n;
        return 0;
    }
    if (l.t == JV_UNDEF) return jn_undef_fail(rt, at, l);
    if (r.t == JV_UNDEF) return jn_undef_fail(rt, at, r);
    return jn_fail(rt, at, SW_EINVAL, "'%s' not supported between instances of '%s' and '%s'", op, jv_typename(l),
                   jv_typename(r));
}

static int contains(jn_rt *rt, const jn_node *at, jv item, jv seq, bool *out) {
    switch (seq.t) {
    case JV_STR:
        if (item.t != JV_STR)
            return jn_fail(rt, at, SW_EINVAL, "'in <string>' requires string as left operand, not %s", jv_typename(item));
        if (!item.u.s->len) {
            *out = true;
            return 0;
        }
        *out = false;
        for (size_t i = 0; i + item.u.s->len <= seq.u.s->len; i++)
            if (!memcmp(seq.u.s->s + i, item.u.s->s, item.u.s->len)) {
                *out = true;
                break;
            }
        return 0;
    case JV_LIST:
        *out = false;
        for (int i = 0; i < seq.u.l->n; i++)
            if (jv_equal(seq.u.l->v[i], item)) *out = true;
        return 0;
    case JV_DICT: {
        jv dummy;
        *out = jv_dict_get(seq, item, &dummy);
        return 0;
    }
    case JV_UNDEF: *out = false; return 0;
    default: return jn_fail(rt, at, SW_EINVAL, "argument of type '%s' is not iterable", jv_typename(seq));
    }
}

/* ---- slices -------------------------------------------------------------- */

static int slice_index(jn_rt *rt, const jn_node *at, jv v, int64_t *out) {
    if (v.t == JV_NONE || v.t == JV_UNDEF) return 1; /* absent */
    if (!is_intlike(v))
        return jn_fail(rt, at, SW_EINVAL, "slice indices must be integers or None, not %s", jv_typename(v));
    *out = as_int(v);
    return 0;
}

/* Python's slice.indices(): clamp start/stop for a length and a step. */
static void slice_bounds(int64_t len, int64_t *start, bool has_start, int64_t *stop, bool has_stop, int64_t step) {
    if (!has_start)
        *start = step < 0 ? len - 1 : 0;
    else {
        if (*start < 0) *start += len;
        if (*start < 0) *start = step < 0 ? -1 : 0;
        if (*start >= len) *start = step < 0 ? len - 1 : len;
    }
    if (!has_stop)
        *stop = step < 0 ? -1 : len;
    else {
        if (*stop < 0) *stop += len;
        if (*stop < 0) *stop = step < 0 ? -1 : 0;
        if (*stop >= len) *stop = step < 0 ? len - 1 : len;
    }
}

static int do_slice(jn_rt *rt, const jn_node *at, jv obj, jv a, jv b, jv c, jv *out) {
    int64_t start = 0, stop = 0, step = 1;
    int ra = slice_index(rt, at, a, &start), rb = slice_index(rt, at, b, &stop), rc = slice_index(rt, at, c, &step);
    if (ra < 0 || rb < 0 || rc < 0) return -1;
    if (step == 0) return jn_fail(rt, at, SW_EINVAL, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) return jn_undef_fail(rt, at, obj);
    if (obj.t == JV_STR) {
        /* by code point: collect the byte offsets first */
        const char *s = obj.u.s->s;
        size_t n = obj.u.s->len;
        int64_t len = (int64_t)jn_utf8_count(s, n);
        size_t *off = malloc(((size_t)len + 1) * sizeof *off);
        if (!off) return jn_oom(rt, at);
        size_t k = 0;
        for (size_t i = 0; i < n; i = jn_utf8_next(s, n, i)) off[k++] = i;
        off[k] = n;
        slice_bounds(len, &start, ra == 0, &stop, rb == 0, step);
        jn_buf buf = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jn_buf_put(&buf, s + off[i], off[i + 1] - off[i]);
        free(off);
        if (buf.oom) return free(buf.p), jn_oom(rt, at);
        *out = jv_str(rt->a, buf.p ? buf.p : "", buf.len);
        free(buf.p);
        return out->t == JV_STR ? 0 : jn_oom(rt, at);
    }
    if (obj.t == JV_LIST && !(obj.flags & JV_GEN)) {
        int64_t len = obj.u.l->n;
        slice_bounds(len, &start, ra == 0, &stop, rb == 0, step);
        *out = jv_list(rt->a, 0);
        if (out->t != JV_LIST) return jn_oom(rt, at);
        out->flags = obj.flags & JV_TUPLE;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            if (!jv_list_push(rt->a, *out, obj.u.l->v[i])) return jn_oom(rt, at);
        return 0;
    }
    return jn_fail(rt, at, SW_EINVAL, "'%s' object is not subscriptable", jv_typename(obj));
}

/* ---- calls --------------------------------------------------------------- */

static int exec_body(jn_rt *rt, jn_frame *f, jn_node *const *body, int n);

/* Render body into a string, in frame f. */
static int capture(jn_rt *rt, jn_frame *f, jn_node *const *body, int n, jv *out) {
    jn_buf saved = rt->out;
    rt->out = (jn_buf){.limit = saved.limit};
    int rc = exec_body(rt, f, body, n);
    jn_buf got = rt->out;
    rt->out = saved;
    if (rc < 0) {
        free(got.p);
        return -1;
    }
    if (got.oom) {
        free(got.p);
        return jn_fail(rt, NULL, SW_EINVAL, "output larger than %zu KiB", got.limit >> 10);
    }
    *out = jv_str(rt->a, got.p ? got.p : "", got.len);
    free(got.p);
    return out->t == JV_STR ? 0 : jn_oom(rt, NULL);
}

static int eval(jn_rt *rt, jn_frame *f, const jn_node *n, jv *out);

static int call_macro(jn_rt *rt, const jn_node *at, struct jmacro *m, const jv *args, int nargs, const char *const *kwn,
                      const jv *kwv, int nkw, jv *out) {
    const jn_node *d = m->def;
    if (nargs > d->nkw)
        return jn_fail(rt, at, SW_EINVAL, "macro '%s' takes not more than %d argument(s)", d->name, d->nkw);
    for (int k = 0; k < nkw; k++) {
        int i = 0;
        while (i < d->nkw && strcmp(d->kw[i], kwn[k])) i++;
        if (i == d->nkw) return jn_fail(rt, at, SW_EINVAL, "macro '%s' takes no keyword argument '%s'", d->name, kwn[k]);
    }
    if (++rt->depth > JN_MAX_CALL_DEPTH) return jn_fail(rt, at, SW_EINVAL, "macro calls nested more than %d deep", JN_MAX_CALL_DEPTH);
    jn_frame *fr = frame_new(rt, m->closure);
    if (!fr) return jn_oom(rt, at);
    for (int i = 0; i < d->nkw; i++) {
        jv v = jv_undef();
        bool got = i < nargs;
        if (got) v = args[i];
        for (int k = 0; k < nkw; k++)
            if (!strcmp(d->kw[i], kwn[k])) {
                v = kwv[k];
                got = true;
            }
        if (!got && d->kids[i] && eval(rt, fr, d->kids[i], &v)) return -1;
        if (!got && !d->kids[i]) {
            jundef *u = jn_alloc(rt->a, sizeof *u);
            if (!u) return jn_oom(rt, at);
            u->hint = "parameter was not provided";
            v = (jv){.t = JV_UNDEF, .u.u = u};
        }
        if (!frame_set(rt->a, fr, d->kw[i], v)) return jn_oom(rt, at);
    }
    int rc = capture(rt, fr, d->body, d->nbody, out);
    rt->depth--;
    return rc;
}

int jn_call(jn_rt *rt, const jn_node *at, jv fn, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
            int nkw, jv *out) {
    if (fn.t == JV_FUNC) return fn.u.fn->fn(rt, at, fn.u.fn->self, args, nargs, kwn, kwv, nkw, out);
    if (fn.t == JV_MACRO) return call_macro(rt, at, fn.u.mac, args, nargs, kwn, kwv, nkw, out);
    if (fn.t == JV_UNDEF) return jn_undef_fail(rt, at, fn);
    return jn_fail(rt, at, SW_EINVAL, "'%s' object is not callable", jv_typename(fn));
}

/* Evaluate a node's argument list: kids are positional then keyword values. */
static int eval_args(jn_rt *rt, jn_frame *f, const jn_node *n, jv **args, int *nargs, jv **kwv) {
    int total = n->nkids;
    *args = NULL;
    *kwv = NULL;
    *nargs = total - n->nkw;
    if (!total) return 0;
    jv *v = jn_alloc(rt->a, (size_t)total * sizeof *v);
    if (!v) return jn_oom(rt, n);
    for (int i = 0; i < total; i++)
        if (eval(rt, f, n->kids[i], &v[i])) return -1;
    *args = v;
    *kwv = v + *nargs;
    return 0;
}

/* ---- expressions --------------------------------------------------------- */

static int eval(jn_rt *rt, jn_frame *f, const jn_node *n, jv *out) {
    jv l, r;
    switch (n->kind) {
    case N_CONST: *out = n->val; return 0;
    case N_NAME: {
        if (frame_lookup(f, n->name, out) || jn_global(rt, n->name, out)) return 0;
        jundef *u = jn_alloc(rt->a, sizeof *u);
        if (!u) return jn_oom(rt, n);
        u->name = jv_cstr(rt->a, n->name);
        *out = (jv){.t = JV_UNDEF, .u.u = u};
        return 0;
    }
    case N_LIST:
    case N_TUPLE:
        *out = jv_list(rt->a, n->nkids);
        if (out->t != JV_LIST) return jn_oom(rt, n);
        for (int i = 0; i < n->nkids; i++)
            if (eval(rt, f, n->kids[i], &out->u.l->v[i])) return -1;
        out->u.l->n = n->nkids;
        if (n->kind == N_TUPLE) out->flags = JV_TUPLE;
        return 0;
    case N_DICT:
        *out = jv_dict(rt->a, n->nkids / 2);
        if (out->t != JV_DICT) return jn_oom(rt, n);
        for (int i = 0; i + 1 < n->nkids; i += 2) {
            if (eval(rt, f, n->kids[i], &l) || eval(rt, f, n->kids[i + 1], &r)) return -1;
            if (!jv_dict_set(rt->a, *out, l, r)) return jn_oom(rt, n);
        }
        return 0;
    case N_ATTR:
        if (eval(rt, f, n->a, &l)) return -1;
        r = jv_cstr(rt->a, n->name);
        if (r.t != JV_STR) return jn_oom(rt, n);
        return jn_getattr(rt, n, l, r, out);
    case N_ITEM:
        if (eval(rt, f, n->a, &l) || eval(rt, f, n->b, &r)) return -1;
        return jn_getitem(rt, n, l, r, out);
    case N_SLICE: {
        jv a = jv_none(), b = jv_none(), c = jv_none();
        if (eval(rt, f, n->a, &l)) return -1;
        if ((n->b && eval(rt, f, n->b, &a)) || (n->c && eval(rt, f, n->c, &b)) || (n->d && eval(rt, f, n->d, &c)))
            return -1;
        return do_slice(rt, n, l, a, b, c, out);
    }
    case N_CALL: {
        jv *args, *kwv;
        int nargs;
        if (eval(rt, f, n->a, &l) || eval_args(rt, f, n, &args, &nargs, &kwv)) return -1;
        return jn_call(rt, n, l, args, nargs, n->kw, kwv, n->nkw, out);
    }
    case N_FILTER: {
        jv *args, *kwv;
        int nargs;
        if (eval(rt, f, n->a, &l) || eval_args(rt, f, n, &args, &nargs, &kwv)) return -1;
        return jn_call_filter(rt, n, n->fid, l, args, nargs, n->kw, kwv, n->nkw, out);
    }
    case N_TEST: {
        jv *args, *kwv;
        int nargs;
        bool b;
        if (eval(rt, f, n->a, &l) || eval_args(rt, f, n, &args, &nargs, &kwv)) return -1;
        if (jn_call_test(rt, n, n->fid, l, args, nargs, &b)) return -1;
        *out = jv_bool(b);
        return 0;
    }
    case N_NOT:
        if (eval(rt, f, n->a, &l)) return -1;
        *out = jv_bool(!jv_truthy(l));
        return 0;
    case N_NEG:
    case N_POS:
        if (eval(rt, f, n->a, &l)) return -1;
        if (l.t == JV_UNDEF) return jn_undef_fail(rt, n, l);
        if (!jv_is_num(l))
            return jn_fail(rt, n, SW_EINVAL, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+",
                           jv_typename(l));
        if (n->kind == N_POS)
            *out = l.t == JV_BOOL ? jv_int(l.u.b) : l;
        else if (l.t == JV_FLOAT)
            *out = jv_float(-l.u.f);
        else if (as_int(l) == INT64_MIN)
            return jn_fail(rt, n, SW_EINVAL, "integer overflow in unary '-'");
        else
            *out = jv_int(-as_int(l));
        return 0;
    case N_BIN:
        if (eval(rt, f, n->a, &l) || eval(rt, f, n->b, &r)) return -1;
        return binop(rt, n, n->op, l, r, out);
    case N_AND:
    case N_OR:
        if (eval(rt, f, n->a, &l)) return -1;
        if (jv_truthy(l) == (n->kind == N_OR)) {
            *out = l;
            return 0;
        }
        return eval(rt, f, n->b, out);
    case N_COMPARE: {
        if (eval(rt, f, n->a, &l)) return -1;
        static const char *const opn[] = {[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">="};
        for (int i = 0; i < n->nkids; i++) {
            if (eval(rt, f, n->kids[i], &r)) return -1;
            bool ok = false;
            int cmp;
            switch (n->ops[i]) {
            case OP_EQ: ok = jv_equal(l, r); break;
            case OP_NE: ok = !jv_equal(l, r); break;
            case OP_IN:
            case OP_NOTIN:
                if (contains(rt, n, l, r, &ok)) return -1;
                if (n->ops[i] == OP_NOTIN) ok = !ok;
                break;
            default:
                if (order(rt, n, opn[n->ops[i]], l, r, &cmp)) return -1;
                ok = n->ops[i] == OP_LT ? cmp < 0 : n->ops[i] == OP_LE ? cmp <= 0 : n->ops[i] == OP_GT ? cmp > 0 : cmp >= 0;
            }
            if (!ok) {
                *out = jv_bool(false);
                return 0;
            }
            l = r;
        }
        *out = jv_bool(true);
        return 0;
    }
    case N_COND:
        if (eval(rt, f, n->a, &l)) return -1;
        if (jv_truthy(l)) return eval(rt, f, n->b, out);
        if (n->c) return eval(rt, f, n->c, out);
        *out = jv_undef_hint(rt->a, "the inline if-expression evaluated to false and no else section was defined.");
        return out->u.u ? 0 : jn_oom(rt, n);
    default: return jn_fail(rt, n, SW_EINVAL, "internal error: node %d is not an expression", n->kind);
    }
}

/* ---- statements ---------------------------------------------------------- */

enum { FLOW_NEXT = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

static int emit(jn_rt *rt, const jn_node *at, jv v) {
    jv_to_str(&rt->out, v);
    if (rt->out.oom) return jn_fail(rt, at, SW_EINVAL, "output larger than %zu KiB", rt->out.limit >> 10);
    return 0;
}

static int unpack(jn_rt *rt, const jn_node *at, jn_frame *fr, const char *const *names, int nn, jv v) {
    if (nn == 1) return frame_set(rt->a, fr, names[0], v) ? 0 : jn_oom(rt, at);
    jv items;
    if (jn_iterate(rt, at, v, &items)) return -1;
    if (items.u.l->n != nn)
        return jn_fail(rt, at, SW_EINVAL, items.u.l->n > nn ? "too many values to unpack (expected %d)"
                                                           : "not enough values to unpack (expected %d)", nn);
    for (int i = 0; i < nn; i++)
        if (!frame_set(rt->a, fr, names[i], items.u.l->v[i])) return jn_oom(rt, at);
    return 0;
}

static int loop_cycle(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, const char *const *kwn,
                      const jv *kwv, int nkw, jv *out) {
    (void)kwn;
    (void)kwv;
    (void)nkw;
    if (!nargs) return jn_fail(rt, at, SW_EINVAL, "no items for cycling given");
    jv idx;
    jv_dict_gets(self, "index0", &idx);
    *out = args[idx.u.i % nargs];
    return 0;
}

static int exec_for(jn_rt *rt, jn_frame *f, const jn_node *n) {
    jv it, items;
    if (eval(rt, f, n->b, &it) || jn_iterate(rt, n, it, &items)) return -1;
    if (n->c) { /* {% for x in xs if cond %}: filter first, so loop.length counts the kept */
        jv kept = jv_list(rt->a, 0);
        if (kept.t != JV_LIST) return jn_oom(rt, n);
        for (int i = 0; i < items.u.l->n; i++) {
            jn_frame *tf = frame_new(rt, f);
            jv ok;
            if (!tf) return jn_oom(rt, n);
            if (jn_step(rt, n) || unpack(rt, n, tf, n->kw, n->nkw, items.u.l->v[i]) || eval(rt, tf, n->c, &ok)) return -1;
            if (jv_truthy(ok) && !jv_list_push(rt->a, kept, items.u.l->v[i])) return jn_oom(rt, n);
        }
        items = kept;
    }
    int len = items.u.l->n;
    if (!len) {
        jn_frame *ef = frame_new(rt, f);
        if (!ef) return jn_oom(rt, n);
        int rc = exec_body(rt, ef, n->body2, n->nbody2);
        return rc < 0 ? -1 : rc;
    }
    /* One loop object and one frame per loop, refreshed each iteration. */
    static const char *const keys[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                                       "depth", "depth0", "previtem", "nextitem", "cycle"};
    enum { NKEYS = 12 };
    jv loop = jv_dict(rt->a, NKEYS);
    jn_frame *fr = frame_new(rt, f);
    if (loop.t != JV_DICT || !fr) return jn_oom(rt, n);
    for (int k = 0; k < NKEYS; k++) {
        loop.u.d->k[k] = jv_cstr(rt->a, keys[k]);
        if (loop.u.d->k[k].t != JV_STR) return jn_oom(rt, n);
    }
    loop.u.d->n = NKEYS;
    jv cyc = jv_func(rt->a, "cycle", loop_cycle, loop);
    jv no_prev = jv_undef_hint(rt->a, "there is no previous item"), no_next = jv_undef_hint(rt->a, "there is no next item");
    if (cyc.t != JV_FUNC || !no_prev.u.u || !no_next.u.u) return jn_oom(rt, n);
    /* The items snapshot: the body may rebind the name it came from. */
    const jv *v = items.u.l->v;
    for (int i = 0; i < len; i++) {
        if (jn_step(rt, n)) return -1;
        jv *lv = loop.u.d->v;
        lv[0] = jv_int(i + 1);
        lv[1] = jv_int(i);
        lv[2] = jv_int(len - i);
        lv[3] = jv_int(len - i - 1);
        lv[4] = jv_bool(i == 0);
        lv[5] = jv_bool(i == len - 1);
        lv[6] = jv_int(len);
        lv[7] = jv_int(1);
        lv[8] = jv_int(0);
        lv[9] = i > 0 ? v[i - 1] : no_prev;
        lv[10] = i < len - 1 ? v[i + 1] : no_next;
        lv[11] = cyc;
        fr->n = 0; /* a fresh scope per iteration, as jinja2 */
        if (!frame_set(rt->a, fr, "loop", loop) || unpack(rt, n, fr, n->kw, n->nkw, v[i])) return rt->failed ? -1 : jn_oom(rt, n);
        int rc = exec_body(rt, fr, n->body, n->nbody);
        if (rc < 0) return -1;
        if (rc == FLOW_BREAK) break;
    }
    return FLOW_NEXT;
}

static int apply_filters(jn_rt *rt, jn_frame *f, const jn_node *n, jv *v) {
    for (int i = 0; i < n->nkids; i++) {
        const jn_node *fl = n->kids[i];
        jv *args, *kwv;
        int nargs;
        if (eval_args(rt, f, fl, &args, &nargs, &kwv)) return -1;
        if (jn_call_filter(rt, fl, fl->fid, *v, args, nargs, fl->kw, kwv, fl->nkw, v)) return -1;
    }
    return 0;
}

static int exec_set(jn_rt *rt, jn_frame *f, const jn_node *n) {
    jv v;
    if (n->kind == N_SETBLOCK) {
        if (capture(rt, f, n->body, n->nbody, &v) || apply_filters(rt, f, n, &v)) return -1;
    } else if (eval(rt, f, n->b, &v)) {
        return -1;
    }
    const jn_node *t = n->a;
    if (t->kind == N_NAME) return frame_set(rt->a, f, t->name, v) ? 0 : jn_oom(rt, n);
    if (t->kind == N_TUPLE) return unpack(rt, n, f, t->kw, t->nkw, v);
    /* ns.attr = v */
    jv ns;
    if (!frame_lookup(f, t->a->name, &ns) || ns.t != JV_NS)
        return jn_fail(rt, n, SW_EINVAL, "cannot assign attribute on non-namespace object");
    jv key = jv_cstr(rt->a, t->name);
    if (key.t != JV_STR || !jv_dict_set(rt->a, ns, key, v)) return jn_oom(rt, n);
    return 0;
}

static int exec_body(jn_rt *rt, jn_frame *f, jn_node *const *body, int nb) {
    for (int i = 0; i < nb; i++) {
        const jn_node *n = body[i];
        jv v;
        int rc;
        switch (n->kind) {
        case N_TEXT:
            if (emit(rt, n, n->val)) return -1;
            break;
        case N_OUTPUT:
            if (eval(rt, f, n->a, &v) || emit(rt, n, v)) return -1;
            break;
        case N_IF:
            if (eval(rt, f, n->a, &v)) return -1;
            rc = jv_truthy(v) ? exec_body(rt, f, n->body, n->nbody) : exec_body(rt, f, n->body2, n->nbody2);
            if (rc) return rc;
            break;
        case N_FOR:
            if (exec_for(rt, f, n)) return -1;
            break;
        case N_SET:
        case N_SETBLOCK:
            if (exec_set(rt, f, n)) return -1;
            break;
        case N_MACRO: {
            struct jmacro *m = jn_alloc(rt->a, sizeof *m);
            if (!m) return jn_oom(rt, n);
            m->def = (jn_node *)n;
            m->closure = f;
            if (!frame_set(rt->a, f, n->name, (jv){.t = JV_MACRO, .u.mac = m})) return jn_oom(rt, n);
            break;
        }
        case N_BREAK: return FLOW_BREAK;
        case N_CONTINUE: return FLOW_CONTINUE;
        case N_FILTERBLOCK:
            if (capture(rt, f, n->body, n->nbody, &v) || apply_filters(rt, f, n, &v) || emit(rt, n, v)) return -1;
            break;
        case N_BODY:
            if ((rc = exec_body(rt, f, n->body, n->nbody))) return rc;
            break;
        default: return jn_fail(rt, n, SW_EINVAL, "internal error: node %d is not a statement", n->kind);
        }
    }
    return FLOW_NEXT;
}

/* ---- entry points -------------------------------------------------------- */

sw_status sw_jinja_render(sw_ctx *ctx, const sw_jinja *t, sw_jinja_env *e, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    jn_rt rt = {.ctx = ctx, .tpl = t, .env = e, .a = &e->arena, .out = {.limit = e->max_output}};
    size_t mark = e->arena.used;
    jn_frame *top = frame_new(&rt, &e->globals);
    int rc = top ? exec_body(&rt, top, t->root->body, t->root->nbody) : jn_oom(&rt, NULL);
    (void)mark;
    if (rc < 0) {
        free(rt.out.p);
        return rt.failed ? ctx->status : sw_err(ctx, SW_EINVAL, "%s: render failed", t->name);
    }
    if (!rt.out.p) jn_buf_put(&rt.out, "", 0);
    if (rt.out.oom) {
        free(rt.out.p);
        return sw_err(ctx, SW_ENOMEM, "%s: out of memory", t->name);
    }
    *out = rt.out.p;
    if (len) *len = rt.out.len;
    return SW_OK;
}
