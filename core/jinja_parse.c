/* jinja_parse.c — tokens to a syntax tree, with jinja2's grammar.
 *
 * Statements: for (with else, an if filter, tuple targets), if / elif /
 * else, set (name, ns.attr, a, b = ...; block set with filters), macro,
 * filter blocks, break / continue (jinja2.ext.loopcontrols), and
 * generation (the tag transformers adds; it renders its body). raw is
 * handled by the lexer. Expression precedence, lowest first, as in
 * jinja2's parser: a if c else b; or; and; not; comparisons and in;
 * + -; ~; * / // %; **; unary - +; then primary with postfix . [] (),
 * filters | and tests is, which bind tighter than any operator.
 *
 * Unknown filters and tests are compile errors, as in jinja2. Nesting is
 * capped (JN_MAX_DEPTH) so a hostile template cannot overflow the stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jinja_impl.h"

typedef struct parser {
    sw_ctx *ctx;
    const char *name;
    const jn_toks *t;
    int i;
    jn_arena *a;
    int depth, loops, macros;
    bool failed; /* keep the first error: later ones are its echoes */
} parser;

static const jn_tok *cur(parser *p) { return &p->t->v[p->i]; }
static const jn_tok *peek(parser *p, int k) {
    int j = p->i + k;
    return &p->t->v[j < p->t->n ? j : p->t->n - 1];
}
static void next(parser *p) {
    if (p->i < p->t->n - 1) p->i++;
}
static bool is_op(const jn_tok *k, const char *op) { return k->type == JT_OP && !strcmp(k->op, op); }
static bool is_name(const jn_tok *k, const char *nm) {
    return k->type == JT_NAME && k->n == strlen(nm) && !memcmp(k->s, nm, k->n);
}

static const char *describe(const jn_tok *k, char *buf, size_t n) {
    switch (k->type) {
    case JT_TEXT: return "template text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: snprintf(buf, n, "'%.*s'", (int)(k->n < 40 ? k->n : 40), k->s); return buf;
    case JT_STRING: return "a string";
    case JT_INT:
    case JT_FLOAT: return "a number";
    case JT_OP: snprintf(buf, n, "'%s'", k->op); return buf;
    default: return "end of template";
    }
}

static void *fail(parser *p, const jn_tok *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail(parser *p, const jn_tok *at, const char *fmt, ...) {
    if (p->failed) return NULL;
    p->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sw_err(p->ctx, SW_EINVAL, "%s:%d:%d: %s", p->name, at->line, at->col, msg);
    return NULL;
}

static void *oom(parser *p) {
    if (!p->failed) sw_err(p->ctx, SW_ENOMEM, "%s: out of memory", p->name);
    p->failed = true;
    return NULL;
}

static jn_node *mk(parser *p, int kind, const jn_tok *at) {
    jn_node *n = jn_alloc(p->a, sizeof *n);
    if (!n) return oom(p);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static const char *tok_str(parser *p, const jn_tok *k) {
    char *s = jn_alloc(p->a, k->n + 1);
    if (!s) return oom(p);
    memcpy(s, k->s, k->n);
    return s;
}

/* A growable array of node pointers / names, in the arena. */
typedef struct vec {
    void **v;
    int n, cap;
} vec;
static bool vpush(parser *p, vec *v, void *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **nv = jn_alloc(p->a, (size_t)cap * sizeof *nv);
        if (!nv) return oom(p), false;
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static bool expect_op(parser *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char b[64];
        fail(p, cur(p), "expected '%s', got %s", op, describe(cur(p), b, sizeof b));
        return false;
    }
    next(p);
    return true;
}

static const char *expect_name(parser *p) {
    if (cur(p)->type != JT_NAME) {
        char b[64];
        return fail(p, cur(p), "expected a name, got %s", describe(cur(p), b, sizeof b));
    }
    const char *s = tok_str(p, cur(p));
    next(p);
    return s;
}

static bool expect_block_end(parser *p) {
    if (cur(p)->type != JT_BLOCK_END) {
        char b[64];
        fail(p, cur(p), "expected '%%}', got %s", describe(cur(p), b, sizeof b));
        return false;
    }
    next(p);
    return true;
}

/* ---- expressions --------------------------------------------------------- */

static jn_node *expr(parser *p);         /* with a if c else b */
static jn_node *expr_nocond(parser *p);  /* without (for-loop iterables, if tests) */
static jn_node *unary(parser *p, bool with_filter);
static jn_node *primary(parser *p);
static jn_node *postfix(parser *p, jn_node *n);

static bool enter(parser *p) {
    if (++p->depth > JN_MAX_DEPTH) {
        fail(p, cur(p), "expression or block nested too deeply (more than %d levels)", JN_MAX_DEPTH);
        return false;
    }
    return true;
}

/* ( args ) for calls, filters and tests: positional, then name=value. */
static bool call_args(parser *p, jn_node *n) {
    vec args = {0}, kwn = {0}, kwv = {0};
    next(p); /* ( */
    while (!is_op(cur(p), ")")) {
        if (args.n + kwv.n && !expect_op(p, ",")) return false;
        if (is_op(cur(p), ")")) break; /* trailing comma */
        if (is_op(cur(p), "*") || is_op(cur(p), "**")) return fail(p, cur(p), "*args and **kwargs are not supported"), false;
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), "=")) {
            const char *k = tok_str(p, cur(p));
            next(p);
            next(p);
            jn_node *v = expr(p);
            if (!k || !v || !vpush(p, &kwn, (void *)k) || !vpush(p, &kwv, v)) return false;
        } else {
            if (kwv.n) return fail(p, cur(p), "a positional argument follows a keyword argument"), false;
            jn_node *v = expr(p);
            if (!v || !vpush(p, &args, v)) return false;
        }
    }
    next(p); /* ) */
    /* kids: positional then keyword values; kw: the keyword names */
    int total = args.n + kwv.n;
    n->kids = total ? jn_alloc(p->a, (size_t)total * sizeof *n->kids) : NULL;
    if (total && !n->kids) return oom(p), false;
    for (int i = 0; i < args.n; i++) n->kids[i] = args.v[i];
    for (int i = 0; i < kwv.n; i++) n->kids[args.n + i] = kwv.v[i];
    n->nkids = total;
    n->kw = (const char **)kwn.v;
    n->nkw = kwn.n;
    return true;
}

/* | name(args) | name ... applied to `value` (NULL in a filter block). */
static jn_node *filter(parser *p, jn_node *value) {
    const jn_tok *at = cur(p);
    next(p); /* | */
    const jn_tok *nt = cur(p);
    const char *name = expect_name(p);
    if (!name) return NULL;
    jn_node *n = mk(p, N_FILTER, at);
    if (!n) return NULL;
    n->a = value;
    n->name = name;
    if ((n->fid = jn_filter_id(name)) < 0) return fail(p, nt, "unknown filter '%s'", name);
    if (is_op(cur(p), "(") && !call_args(p, n)) return NULL;
    return n;
}

static jn_node *test(parser *p, jn_node *value) {
    const jn_tok *at = cur(p);
    next(p); /* is */
    bool neg = false;
    if (is_name(cur(p), "not")) {
        neg = true;
        next(p);
    }
    const jn_tok *nt = cur(p);
    const char *name = expect_name(p);
    if (!name) return NULL;
    jn_node *n = mk(p, N_TEST, at);
    if (!n) return NULL;
    n->a = value;
    n->name = name;
    if ((n->fid = jn_test_id(name)) < 0) return fail(p, nt, "unknown test '%s'", name);
    const jn_tok *c = cur(p);
    if (is_op(c, "(")) {
        if (!call_args(p, n)) return NULL;
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT || c->type == JT_FLOAT ||
                is_op(c, "[") || is_op(c, "{")) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) return fail(p, c, "you cannot chain multiple tests with is");
        /* one argument without parentheses: x is divisibleby 3 */
        jn_node *arg = primary(p);
        if (!arg || !(arg = postfix(p, arg))) return NULL;
        if (!(n->kids = jn_alloc(p->a, sizeof *n->kids))) return oom(p);
        n->kids[0] = arg;
        n->nkids = 1;
    }
    if (neg) {
        jn_node *nn = mk(p, N_NOT, at);
        if (!nn) return NULL;
        nn->a = n;
        return nn;
    }
    return n;
}

static jn_node *subscript(parser *p, jn_node *obj) {
    const jn_tok *at = cur(p);
    next(p); /* [ */
    jn_node *parts[3] = {0};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (is_op(cur(p), ":")) {
            slice = true;
            if (++k > 2) return fail(p, cur(p), "too many ':' in a slice");
            next(p);
            continue;
        }
        if (is_op(cur(p), "]")) break;
        if (parts[k]) return fail(p, cur(p), "expected ']' or ':'");
        if (!(parts[k] = expr(p))) return NULL;
        if (is_op(cur(p), ",")) return fail(p, cur(p), "tuple subscripts are not supported");
    }
    next(p); /* ] */
    jn_node *n = mk(p, slice ? N_SLICE : N_ITEM, at);
    if (!n) return NULL;
    n->a = obj;
    if (slice) {
        n->b = parts[0];
        n->c = parts[1];
        n->d = parts[2];
    } else {
        if (!parts[0]) return fail(p, at, "expected an index in []");
        n->b = parts[0];
    }
    return n;
}

static jn_node *postfix(parser *p, jn_node *n) {
    for (;;) {
        const jn_tok *c = cur(p);
        if (is_op(c, ".")) {
            next(p);
            jn_node *m;
            if (cur(p)->type == JT_INT) { /* a.0 is a[0] */
                if (!(m = mk(p, N_ITEM, c)) || !(m->b = mk(p, N_CONST, cur(p)))) return NULL;
                m->b->val = jv_int(cur(p)->i);
                next(p);
            } else {
                if (!(m = mk(p, N_ATTR, c)) || !(m->name = expect_name(p))) return NULL;
            }
            m->a = n;
            n = m;
        } else if (is_op(c, "[")) {
            if (!(n = subscript(p, n))) return NULL;
        } else if (is_op(c, "(")) {
            jn_node *m = mk(p, N_CALL, c);
            if (!m) return NULL;
            m->line = n->line; /* errors point at what is called */
            m->col = n->col;
            m->a = n;
            if (!call_args(p, m)) return NULL;
            n = m;
        } else {
            return n;
        }
    }
}

/* Filters, tests and calls after a unary expression. */
static jn_node *filter_expr(parser *p, jn_node *n) {
    for (;;) {
        const jn_tok *c = cur(p);
        if (is_op(c, "|")) {
            if (!(n = filter(p, n))) return NULL;
        } else if (is_name(c, "is")) {
            if (!(n = test(p, n))) return NULL;
        } else if (is_op(c, "(")) {
            jn_node *m = mk(p, N_CALL, c);
            if (!m) return NULL;
            m->line = n->line; /* errors point at what is called */
            m->col = n->col;
            m->a = n;
            if (!call_args(p, m)) return NULL;
            n = m;
        } else {
            return n;
        }
    }
}

static jn_node *seq_literal(parser *p, int kind, const char *close, const jn_tok *at) {
    vec items = {0};
    while (!is_op(cur(p), close)) {
        if (items.n && !expect_op(p, ",")) return NULL;
        if (is_op(cur(p), close)) break;
        jn_node *v = expr(p);
        if (!v || !vpush(p, &items, v)) return NULL;
        if (kind == N_DICT) {
            if (!expect_op(p, ":")) return NULL;
            if (!(v = expr(p)) || !vpush(p, &items, v)) return NULL;
        }
    }
    next(p);
    jn_node *n = mk(p, kind, at);
    if (!n) return NULL;
    n->kids = (jn_node **)items.v;
    n->nkids = items.n;
    return n;
}

static jn_node *primary(parser *p) {
    const jn_tok *c = cur(p);
    char b[64];
    if (!enter(p)) return NULL;
    jn_node *n = NULL;
    switch (c->type) {
    case JT_NAME:
        if (!(n = mk(p, N_CONST, c))) return NULL;
        if (is_name(c, "true") || is_name(c, "True"))
            n->val = jv_bool(true);
        else if (is_name(c, "false") || is_name(c, "False"))
            n->val = jv_bool(false);
        else if (is_name(c, "none") || is_name(c, "None"))
            n->val = jv_none();
        else {
            n->kind = N_NAME;
            if (!(n->name = tok_str(p, c))) return NULL;
        }
        next(p);
        break;
    case JT_STRING: {
        /* adjacent literals concatenate: "a" "b" */
        size_t len = 0;
        int j = p->i;
        for (; p->t->v[j].type == JT_STRING; j++) len += p->t->v[j].n;
        if (!(n = mk(p, N_CONST, c))) return NULL;
        jstr *s = jn_alloc(p->a, sizeof *s + len + 1);
        if (!s) return oom(p);
        for (; p->i < j; next(p)) {
            memcpy(s->s + s->len, cur(p)->s, cur(p)->n);
            s->len += cur(p)->n;
        }
        n->val = (jv){.t = JV_STR, .u.s = s};
        break;
    }
    case JT_INT:
    case JT_FLOAT:
        if (!(n = mk(p, N_CONST, c))) return NULL;
        n->val = c->type == JT_INT ? jv_int(c->i) : jv_float(c->f);
        next(p);
        break;
    case JT_OP:
        if (is_op(c, "(")) {
            next(p);
            if (is_op(cur(p), ")")) { /* () is the empty tuple */
                next(p);
                if (!(n = mk(p, N_TUPLE, c))) return NULL;
                break;
            }
            jn_node *e = expr(p);
            if (!e) return NULL;
            if (is_op(cur(p), ",")) {
                vec items = {0};
                if (!vpush(p, &items, e)) return NULL;
                while (is_op(cur(p), ",")) {
                    next(p);
                    if (is_op(cur(p), ")")) break;
                    if (!(e = expr(p)) || !vpush(p, &items, e)) return NULL;
                }
                if (!(n = mk(p, N_TUPLE, c))) return NULL;
                n->kids = (jn_node **)items.v;
                n->nkids = items.n;
            } else {
                n = e;
            }
            if (!expect_op(p, ")")) return NULL;
            break;
        }
        if (is_op(c, "[")) {
            next(p);
            n = seq_literal(p, N_LIST, "]", c);
            break;
        }
        if (is_op(c, "{")) {
            next(p);
            n = seq_literal(p, N_DICT, "}", c);
            break;
        }
        /* fall through */
    default: return fail(p, c, "unexpected %s", describe(c, b, sizeof b));
    }
    p->depth--;
    return n;
}

static jn_node *unary(parser *p, bool with_filter) {
    const jn_tok *c = cur(p);
    jn_node *n;
    if (!enter(p)) return NULL;
    if (is_op(c, "-") || is_op(c, "+")) {
        next(p);
        if (!(n = mk(p, is_op(c, "-") ? N_NEG : N_POS, c)) || !(n->a = unary(p, false))) return NULL;
    } else if (!(n = primary(p))) {
        return NULL;
    }
    if (!(n = postfix(p, n))) return NULL;
    if (with_filter && !(n = filter_expr(p, n))) return NULL;
    p->depth--;
    return n;
}

static jn_node *binary(parser *p, const jn_tok *at, int op, jn_node *l, jn_node *r) {
    if (!r) return NULL;
    jn_node *n = mk(p, N_BIN, at);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return n;
}

static jn_node *pow_(parser *p) {
    jn_node *l = unary(p, true);
    while (l && is_op(cur(p), "**")) {
        const jn_tok *at = cur(p);
        next(p);
        l = binary(p, at, OP_POW, l, unary(p, true));
    }
    return l;
}

static jn_node *math2(parser *p) {
    jn_node *l = pow_(p);
    for (;;) {
        const jn_tok *at = cur(p);
        int op = is_op(at, "*") ? OP_MUL : is_op(at, "/") ? OP_DIV : is_op(at, "//") ? OP_FLOORDIV : is_op(at, "%") ? OP_MOD : -1;
        if (!l || op < 0) return l;
        next(p);
        l = binary(p, at, op, l, pow_(p));
    }
}

static jn_node *concat(parser *p) {
    jn_node *l = math2(p);
    while (l && is_op(cur(p), "~")) {
        const jn_tok *at = cur(p);
        next(p);
        l = binary(p, at, OP_CONCAT, l, math2(p));
    }
    return l;
}

static jn_node *math1(parser *p) {
    jn_node *l = concat(p);
    for (;;) {
        const jn_tok *at = cur(p);
        int op = is_op(at, "+") ? OP_ADD : is_op(at, "-") ? OP_SUB : -1;
        if (!l || op < 0) return l;
        next(p);
        l = binary(p, at, op, l, concat(p));
    }
}

static jn_node *compare(parser *p) {
    jn_node *first = math1(p);
    if (!first) return NULL;
    vec ops = {0}, rhs = {0};
    const jn_tok *at = cur(p);
    for (;;) {
        const jn_tok *c = cur(p);
        int op = is_op(c, "==") ? OP_EQ : is_op(c, "!=") ? OP_NE : is_op(c, "<") ? OP_LT : is_op(c, "<=") ? OP_LE
               : is_op(c, ">") ? OP_GT : is_op(c, ">=") ? OP_GE : is_name(c, "in") ? OP_IN : -1;
        if (op < 0 && is_name(c, "not") && is_name(peek(p, 1), "in")) {
            op = OP_NOTIN;
            next(p);
        }
        if (op < 0) break;
        next(p);
        jn_node *r = math1(p);
        if (!r || !vpush(p, &ops, (void *)(intptr_t)op) || !vpush(p, &rhs, r)) return NULL;
    }
    if (!ops.n) return first;
    jn_node *n = mk(p, N_COMPARE, at);
    if (!n || !(n->ops = jn_alloc(p->a, (size_t)ops.n))) return oom(p);
    for (int i = 0; i < ops.n; i++) n->ops[i] = (uint8_t)(intptr_t)ops.v[i];
    n->a = first;
    n->kids = (jn_node **)rhs.v;
    n->nkids = rhs.n;
    return n;
}

static jn_node *not_(parser *p) {
    if (is_name(cur(p), "not")) {
        const jn_tok *at = cur(p);
        if (!enter(p)) return NULL;
        next(p);
        jn_node *n = mk(p, N_NOT, at);
        if (!n || !(n->a = not_(p))) return NULL;
        p->depth--;
        return n;
    }
    return compare(p);
}

static jn_node *and_(parser *p) {
    jn_node *l = not_(p);
    while (l && is_name(cur(p), "and")) {
        const jn_tok *at = cur(p);
        next(p);
        jn_node *r = not_(p), *n;
        if (!r || !(n = mk(p, N_AND, at))) return NULL;
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static jn_node *or_(parser *p) {
    jn_node *l = and_(p);
    while (l && is_name(cur(p), "or")) {
        const jn_tok *at = cur(p);
        next(p);
        jn_node *r = and_(p), *n;
        if (!r || !(n = mk(p, N_OR, at))) return NULL;
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static jn_node *expr(parser *p) {
    if (!enter(p)) return NULL;
    jn_node *l = or_(p);
    while (l && is_name(cur(p), "if")) {
        const jn_tok *at = cur(p);
        next(p);
        jn_node *n = mk(p, N_COND, at);
        if (!n || !(n->a = or_(p))) return NULL;
        n->b = l;
        if (is_name(cur(p), "else")) {
            next(p);
            if (!(n->c = expr(p))) return NULL;
        }
        l = n;
    }
    p->depth--;
    return l;
}

static jn_node *expr_nocond(parser *p) { return or_(p); }

/* An expression, or a bare tuple "a, b" (as in {{ a, b }} or set x = 1, 2). */
static jn_node *tuple_expr(parser *p, bool with_cond) {
    const jn_tok *at = cur(p);
    jn_node *e = with_cond ? expr(p) : expr_nocond(p);
    if (!e || !is_op(cur(p), ",")) return e;
    vec items = {0};
    if (!vpush(p, &items, e)) return NULL;
    while (is_op(cur(p), ",")) {
        next(p);
        const jn_tok *c = cur(p);
        if (c->type == JT_VAR_END || c->type == JT_BLOCK_END || is_op(c, ")") || is_name(c, "if")) break;
        if (!(e = with_cond ? expr(p) : expr_nocond(p)) || !vpush(p, &items, e)) return NULL;
    }
    jn_node *n = mk(p, N_TUPLE, at);
    if (!n) return NULL;
    n->kids = (jn_node **)items.v;
    n->nkids = items.n;
    return n;
}

/* ---- statements ---------------------------------------------------------- */

static int body(parser *p, const char *const *ends, jn_node ***out, int *nout, const char **found);

/* After "{% endx": the rest of the tag. */
static bool end_tag(parser *p) {
    next(p); /* the end name */
    return expect_block_end(p);
}

/* Names for a for loop or set: a, b or (a, b). */
static bool targets(parser *p, jn_node *n) {
    vec names = {0};
    bool paren = is_op(cur(p), "(");
    if (paren) next(p);
    for (;;) {
        const char *nm = expect_name(p);
        if (!nm || !vpush(p, &names, (void *)nm)) return false;
        if (!is_op(cur(p), ",")) break;
        next(p);
    }
    if (paren && !expect_op(p, ")")) return false;
    n->kw = (const char **)names.v;
    n->nkw = names.n;
    return true;
}

static jn_node *stmt_for(parser *p, const jn_tok *at) {
    jn_node *n = mk(p, N_FOR, at);
    if (!n || !targets(p, n)) return NULL;
    if (!is_name(cur(p), "in")) return fail(p, cur(p), "expected 'in' in a for loop");
    next(p);
    if (!(n->b = tuple_expr(p, false))) return NULL;
    if (is_name(cur(p), "if")) {
        next(p);
        if (!(n->c = expr(p))) return NULL;
    }
    if (is_name(cur(p), "recursive")) return fail(p, cur(p), "recursive loops are not supported");
    if (!expect_block_end(p)) return NULL;
    static const char *const ends[] = {"endfor", "else", NULL};
    const char *found;
    p->loops++;
    int rc = body(p, ends, &n->body, &n->nbody, &found);
    p->loops--;
    if (rc) return NULL;
    if (!strcmp(found, "else")) {
        static const char *const ends2[] = {"endfor", NULL};
        if (!end_tag(p) || body(p, ends2, &n->body2, &n->nbody2, &found)) return NULL;
    }
    return end_tag(p) ? n : NULL;
}

static jn_node *stmt_if(parser *p, const jn_tok *at) {
    jn_node *n = mk(p, N_IF, at);
    if (!n || !(n->a = tuple_expr(p, false)) || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *found;
    if (body(p, ends, &n->body, &n->nbody, &found)) return NULL;
    if (!strcmp(found, "elif")) {
        /* elif is an if inside the else branch; it consumes the endif */
        const jn_tok *e = cur(p);
        next(p);
        jn_node *inner = stmt_if(p, e);
        if (!inner || !(n->body2 = jn_alloc(p->a, sizeof *n->body2))) return inner ? oom(p) : NULL;
        n->body2[0] = inner;
        n->nbody2 = 1;
        return n;
    }
    if (!strcmp(found, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        if (!end_tag(p) || body(p, ends2, &n->body2, &n->nbody2, &found)) return NULL;
    }
    return end_tag(p) ? n : NULL;
}

/* Filters of a block set or a filter block: | a | b(x) or a | b(x). */
static bool filter_chain(parser *p, jn_node *n, bool leading_pipe) {
    vec fs = {0};
    if (!leading_pipe) {
        /* {% filter upper | trim %}: the first has no pipe; fake one */
        const jn_tok *at = cur(p);
        const char *name = expect_name(p);
        jn_node *f;
        if (!name || !(f = mk(p, N_FILTER, at))) return false;
        f->name = name;
        if ((f->fid = jn_filter_id(name)) < 0) return fail(p, at, "unknown filter '%s'", name), false;
        if (is_op(cur(p), "(") && !call_args(p, f)) return false;
        if (!vpush(p, &fs, f)) return false;
    }
    while (is_op(cur(p), "|")) {
        jn_node *f = filter(p, NULL);
        if (!f || !vpush(p, &fs, f)) return false;
    }
    n->kids = (jn_node **)fs.v;
    n->nkids = fs.n;
    return true;
}

static jn_node *stmt_set(parser *p, const jn_tok *at) {
    jn_node *n = mk(p, N_SET, at);
    if (!n) return NULL;
    const jn_tok *t0 = cur(p);
    const char *nm = expect_name(p);
    if (!nm) return NULL;
    jn_node *target = mk(p, N_NAME, t0);
    if (!target) return NULL;
    target->name = nm;
    if (is_op(cur(p), ".")) { /* ns.attr */
        next(p);
        jn_node *attr = mk(p, N_ATTR, t0);
        if (!attr || !(attr->name = expect_name(p))) return NULL;
        attr->a = target;
        target = attr;
    } else if (is_op(cur(p), ",")) { /* a, b = ... */
        jn_node *tup = mk(p, N_TUPLE, t0);
        vec names = {0};
        if (!tup || !vpush(p, &names, (void *)nm)) return NULL;
        while (is_op(cur(p), ",")) {
            next(p);
            const char *m = expect_name(p);
            if (!m || !vpush(p, &names, (void *)m)) return NULL;
        }
        tup->kw = (const char **)names.v;
        tup->nkw = names.n;
        target = tup;
    }
    n->a = target;
    if (is_op(cur(p), "=")) {
        next(p);
        if (!(n->b = tuple_expr(p, true)) || !expect_block_end(p)) return NULL;
        return n;
    }
    if (target->kind != N_NAME) return fail(p, cur(p), "expected '='");
    /* {% set x %}...{% endset %}, optionally {% set x | filter %} */
    n->kind = N_SETBLOCK;
    if (!filter_chain(p, n, true) || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"endset", NULL};
    const char *found;
    if (body(p, ends, &n->body, &n->nbody, &found)) return NULL;
    return end_tag(p) ? n : NULL;
}

static jn_node *stmt_macro(parser *p, const jn_tok *at) {
    jn_node *n = mk(p, N_MACRO, at);
    if (!n || !(n->name = expect_name(p)) || !expect_op(p, "(")) return NULL;
    vec names = {0}, defs = {0};
    while (!is_op(cur(p), ")")) {
        if (names.n && !expect_op(p, ",")) return NULL;
        if (is_op(cur(p), ")")) break;
        const char *nm = expect_name(p);
        jn_node *d = NULL;
        if (!nm) return NULL;
        if (is_op(cur(p), "=")) {
            next(p);
            if (!(d = expr(p))) return NULL;
        } else if (defs.n && defs.v[defs.n - 1]) {
            return fail(p, cur(p), "a macro parameter without a default follows one with a default");
        }
        if (!vpush(p, &names, (void *)nm) || !vpush(p, &defs, d)) return NULL;
    }
    next(p);
    if (!expect_block_end(p)) return NULL;
    n->kw = (const char **)names.v;
    n->nkw = names.n;
    n->kids = (jn_node **)defs.v;
    n->nkids = defs.n;
    static const char *const ends[] = {"endmacro", NULL};
    const char *found;
    int loops = p->loops;
    p->loops = 0; /* break inside a macro does not reach an enclosing loop */
    p->macros++;
    int rc = body(p, ends, &n->body, &n->nbody, &found);
    p->macros--;
    p->loops = loops;
    if (rc) return NULL;
    return end_tag(p) ? n : NULL;
}

static jn_node *statement(parser *p) {
    const jn_tok *at = cur(p); /* the keyword */
    char b[64];
    if (at->type != JT_NAME) return fail(p, at, "expected a statement name, got %s", describe(at, b, sizeof b));
    next(p);
    if (is_name(at, "for")) return stmt_for(p, at);
    if (is_name(at, "if")) return stmt_if(p, at);
    if (is_name(at, "set")) return stmt_set(p, at);
    if (is_name(at, "macro")) return stmt_macro(p, at);
    if (is_name(at, "break") || is_name(at, "continue")) {
        if (!p->loops) return fail(p, at, "'%.*s' outside of a loop", (int)at->n, at->s);
        jn_node *n = mk(p, is_name(at, "break") ? N_BREAK : N_CONTINUE, at);
        return n && expect_block_end(p) ? n : NULL;
    }
    if (is_name(at, "filter")) {
        jn_node *n = mk(p, N_FILTERBLOCK, at);
        if (!n || !filter_chain(p, n, false) || !expect_block_end(p)) return NULL;
        static const char *const ends[] = {"endfilter", NULL};
        const char *found;
        if (body(p, ends, &n->body, &n->nbody, &found)) return NULL;
        return end_tag(p) ? n : NULL;
    }
    if (is_name(at, "generation")) {
        /* transformers' AssistantTracker: marks assistant text, renders as is */
        jn_node *n = mk(p, N_BODY, at);
        if (!n || !expect_block_end(p)) return NULL;
        static const char *const ends[] = {"endgeneration", NULL};
        const char *found;
        if (body(p, ends, &n->body, &n->nbody, &found)) return NULL;
        return end_tag(p) ? n : NULL;
    }
    return fail(p, at, "unknown or unsupported tag '%.*s'", (int)(at->n < 40 ? at->n : 40), at->s);
}

/* Statements until a block tag named in `ends` (NULL-terminated; NULL
 * itself for the top level). Leaves the parser on that tag's name. */
static int body(parser *p, const char *const *ends, jn_node ***out, int *nout, const char **found) {
    vec nodes = {0};
    if (!enter(p)) return -1;
    for (;;) {
        const jn_tok *c = cur(p);
        jn_node *n = NULL;
        if (c->type == JT_EOF) {
            if (ends) {
                char want[128] = "";
                for (int i = 0; ends[i]; i++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'", i ? " or " : "", ends[i]);
                fail(p, c, "unexpected end of template; expected %s", want);
                return -1;
            }
            break;
        }
        if (c->type == JT_TEXT) {
            if (!(n = mk(p, N_TEXT, c))) return -1;
            n->val = jv_str(p->a, c->s, c->n);
            if (n->val.t != JV_STR) return oom(p), -1;
            next(p);
        } else if (c->type == JT_VAR_BEGIN) {
            next(p);
            if (!(n = mk(p, N_OUTPUT, c)) || !(n->a = tuple_expr(p, true))) return -1;
            if (cur(p)->type != JT_VAR_END) {
                char b[64];
                fail(p, cur(p), "expected '}}', got %s", describe(cur(p), b, sizeof b));
                return -1;
            }
            next(p);
        } else if (c->type == JT_BLOCK_BEGIN) {
            const jn_tok *kw = peek(p, 1);
            if (ends && kw->type == JT_NAME)
                for (int i = 0; ends[i]; i++)
                    if (is_name(kw, ends[i])) {
                        next(p);
                        *found = ends[i];
                        goto done;
                    }
            if (kw->type == JT_NAME && kw->n > 3 && !memcmp(kw->s, "end", 3)) {
                fail(p, kw, "unexpected '%.*s'", (int)(kw->n < 40 ? kw->n : 40), kw->s);
                return -1;
            }
            next(p);
            if (!(n = statement(p))) return -1;
        } else {
            char b[64];
            fail(p, c, "unexpected %s", describe(c, b, sizeof b));
            return -1;
        }
        if (!vpush(p, &nodes, n)) return -1;
    }
done:
    p->depth--;
    *out = (jn_node **)nodes.v;
    *nout = nodes.n;
    return 0;
}

int jn_parse(sw_ctx *ctx, const char *name, const jn_toks *toks, jn_arena *a, jn_node **root) {
    parser p = {.ctx = ctx, .name = name, .t = toks, .a = a};
    jn_node *r = jn_alloc(a, sizeof *r);
    if (!r) return sw_err(ctx, SW_ENOMEM, "%s: out of memory", name), -1;
    r->kind = N_BODY;
    if (body(&p, NULL, &r->body, &r->nbody, NULL)) {
        if (!p.failed) sw_err(ctx, SW_EINVAL, "%s: syntax error", name);
        return -1;
    }
    *root = r;
    return 0;
}
