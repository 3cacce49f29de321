/* jinja_impl.h — what the Jinja engine's files share: the arena, values,
 * tokens, the syntax tree and the render state. Not a public header: users
 * go through jinja.h (and chat.h above it).
 *
 * Values follow Python's jinja2 as Hugging Face runs it (sandboxed, default
 * Undefined): a value is a 16-byte tagged union; strings, lists and dicts
 * live in an arena that one render owns and frees whole, so nothing is
 * reference-counted and a hostile template's garbage is bounded by the
 * arena's byte cap rather than leaked.
 */
#ifndef SW_JINJA_IMPL_H
#define SW_JINJA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "jinja.h"

/* ---- arena --------------------------------------------------------------- */

typedef struct jn_chunk jn_chunk;
typedef struct jn_arena {
    jn_chunk *head;
    size_t used;  /* bytes handed out, all chunks */
    size_t limit; /* 0 = none */
    bool over;    /* the limit was hit (or malloc failed) */
    bool capped;  /* ...and it was the limit */
} jn_arena;

void *jn_alloc(jn_arena *a, size_t n); /* zeroed; NULL when over the limit */
void  jn_arena_free(jn_arena *a);

/* ---- values -------------------------------------------------------------- */

typedef enum jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_FUNC, JV_MACRO
} jv_type;

/* JV_LIST flags: a tuple prints as (a, b) and never equals a list; a
 * generator (what selectattr, map, items... return in jinja2) is always
 * true and has no length. */
#define JV_TUPLE 1
#define JV_GEN 2
/* JV_STR flag: markupsafe's Markup (what |safe and |escape return). With
 * autoescape off it prints as any string, but `markup + str` HTML-escapes
 * the str, as Markup.__add__ does. */
#define JV_MARKUP 4

typedef struct jstr jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jundef jundef;
typedef struct jn_node jn_node;
typedef struct jn_frame jn_frame;

typedef struct jv {
    uint8_t t, flags;
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d; /* JV_DICT, JV_NS */
        jfunc *fn;
        struct jmacro *mac;
        jundef *u; /* JV_UNDEF: NULL for a plain undefined */
    } u;
} jv;

struct jstr {
    size_t len;
    char s[]; /* NUL-terminated for convenience; may hold NULs */
};
struct jlist {
    int n, cap;
    jv *v;
};
struct jdict {
    int n, cap;
    jv *k, *v; /* insertion order, like Python's dict */
};
/* Why a value is undefined, for jinja2's error messages. */
struct jundef {
    const char *hint;    /* a whole message, or NULL */
    jv name;             /* the variable, attribute or item asked for */
    const char *objtype; /* NULL: a missing variable; else "dict object"... */
};

typedef struct jn_rt jn_rt;
/* A builtin: global function, bound method or filter. Returns 0, or -1
 * with the error already recorded in rt. */
typedef int (*jn_cfn)(jn_rt *rt, const jn_node *at, jv self, const jv *args, int nargs, const char *const *kwn,
                      const jv *kwv, int nkw, jv *out);
/* A macro: its definition, and the frame it was defined in (what it sees). */
struct jmacro {
    jn_node *def;
    jn_frame *closure;
};
struct jfunc {
    const char *name;
    jn_cfn fn;
    jv self;
};

static inline jv jv_undef(void) { return (jv){.t = JV_UNDEF}; }
static inline jv jv_none(void) { return (jv){.t = JV_NONE}; }
static inline jv jv_bool(bool b) { return (jv){.t = JV_BOOL, .u.b = b}; }
static inline jv jv_int(int64_t i) { return (jv){.t = JV_INT, .u.i = i}; }
static inline jv jv_float(double f) { return (jv){.t = JV_FLOAT, .u.f = f}; }

jv   jv_str(jn_arena *a, const char *s, size_t n); /* JV_UNDEF when out of memory (check a->over) */
jv   jv_cstr(jn_arena *a, const char *s);
jv   jv_list(jn_arena *a, int cap);
jv   jv_dict(jn_arena *a, int cap);
bool jv_list_push(jn_arena *a, jv list, jv item);
bool jv_dict_set(jn_arena *a, jv dict, jv key, jv val); /* replaces an equal key */
bool jv_dict_get(jv dict, jv key, jv *out);
bool jv_dict_gets(jv dict, const char *key, jv *out);
jv   jv_func(jn_arena *a, const char *name, jn_cfn fn, jv self);
jv   jv_undef_attr(jn_arena *a, jv obj, jv name); /* "'dict object' has no attribute 'x'" */
jv   jv_undef_hint(jn_arena *a, const char *hint);

bool        jv_truthy(jv v);
bool        jv_equal(jv a, jv b);
bool        jv_is_num(jv v); /* int, float or bool (Python's bool is an int) */
double      jv_num(jv v);
const char *jv_typename(jv v); /* Python's: 'str', 'int', 'NoneType', 'dict'... */
const char *jv_objtype(jv v);  /* jinja2's: 'dict object', 'None'... */
/* Python's str() / repr(), appended to a growable buffer. */
typedef struct jn_buf {
    char *p;
    size_t len, cap, limit;
    bool oom;
} jn_buf;
void jn_buf_put(jn_buf *b, const char *s, size_t n);
void jn_buf_puts(jn_buf *b, const char *s);
void jv_to_str(jn_buf *b, jv v);
void jv_repr(jn_buf *b, jv v);
void jv_float_repr(char out[32], double f);
/* The message a failing undefined raises: "'x' is undefined"... */
void jv_undef_message(jv v, char *out, size_t n);
/* json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys),
 * Python's separators. 0 on success, -1 with a message for an unserializable value. */
int jv_to_json(jn_buf *b, jv v, int indent, bool sort_keys, const char *item_sep, const char *key_sep, char *err,
               size_t errn);

/* UTF-8 helpers: strings are indexed by code point, as Python does. */
size_t jn_utf8_next(const char *s, size_t n, size_t i); /* index of the next code point */
size_t jn_utf8_count(const char *s, size_t n);
uint32_t jn_utf8_decode(const char *s, size_t n, size_t i);
int    jn_utf8_encode(uint32_t cp, char out[4]);
bool   jn_is_space(const char *s, size_t n, size_t i, size_t *width); /* Python's str.isspace() for one char */

/* ---- tokens -------------------------------------------------------------- */

typedef enum jn_tok_type {
    JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END, JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
    JT_EOF
} jn_tok_type;

typedef struct jn_tok {
    uint8_t type;
    char op[3]; /* JT_OP: "+", "//", "==", ... */
    int line, col;
    const char *s; /* JT_TEXT, JT_NAME, JT_STRING (unescaped): arena text */
    size_t n;
    int64_t i;
    double f;
} jn_tok;

typedef struct jn_toks {
    jn_tok *v;
    int n, cap;
} jn_toks;

/* ---- syntax tree --------------------------------------------------------- */

typedef enum jn_kind {
    /* expressions */
    N_CONST, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NOT, N_NEG, N_POS,
    N_BIN, N_AND, N_OR, N_COMPARE, N_COND,
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_BREAK, N_CONTINUE, N_FILTERBLOCK, N_BODY
} jn_kind;

/* N_BIN and N_COMPARE operators. */
typedef enum jn_op {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
    OP_GE, OP_IN, OP_NOTIN
} jn_op;

/* One node type for everything; which fields mean what is per kind:
 *   N_CONST val | N_NAME name | N_LIST/N_TUPLE kids | N_DICT kids (k,v,k,v...)
 *   N_ATTR a.name | N_ITEM a[b] | N_SLICE a[b:c:d]
 *   N_CALL a(kids, kwnames=kw) | N_FILTER a|name(kids, kw) (a NULL in a filter block)
 *   N_TEST a is name(kids) | N_NOT/N_NEG/N_POS a | N_BIN/N_AND/N_OR a op b
 *   N_COMPARE a (ops[i] kids[i])... | N_COND b if a else c
 *   N_TEXT val | N_OUTPUT a | N_IF a: body else: body2 | N_FOR targets=kw, iter b, filter c, body, body2
 *   N_SET target a (N_NAME, N_ATTR or N_TUPLE of names) = b | N_SETBLOCK a (filters in kids) = body
 *   N_MACRO name(params=kw, defaults kids[i] or NULL) body | N_FILTERBLOCK kids=filters, body
 */
struct jn_node {
    uint8_t kind, op;
    int line, col;
    jn_node *a, *b, *c, *d;
    jn_node **kids;
    int nkids;
    const char **kw; /* names: keyword arguments, for targets, macro params */
    int nkw;
    uint8_t *ops; /* N_COMPARE */
    const char *name;
    int fid; /* N_FILTER / N_TEST: index in the builtin table */
    jv val;
    jn_node **body, **body2;
    int nbody, nbody2;
};

/* ---- templates and rendering --------------------------------------------- */

struct sw_jinja {
    char *name;
    char *source;
    jn_arena arena; /* tokens and the tree */
    jn_node *root;  /* N_BODY */
};

/* A variable frame: the template's top level, a loop iteration, a macro call. */
typedef struct jn_var {
    const char *name;
    jv val;
} jn_var;
struct jn_frame {
    jn_frame *parent;
    jn_var *v;
    int n, cap;
};

struct sw_jinja_env {
    jn_arena arena; /* the render's values live here too */
    jn_frame globals;
    long long now; /* strftime_now's clock; 0 = the system clock */
    size_t max_output, max_memory;
};

struct jn_rt {
    sw_ctx *ctx;
    const sw_jinja *tpl;
    sw_jinja_env *env;
    jn_arena *a;
    jn_buf out;
    long long steps; /* loop iterations so far: capped, and polls the interrupt flag */
    int depth;       /* macro calls and nested renders */
    bool failed;
};

/* Bind a variable for renders with e (jinja.c); the value must live in e->arena. */
sw_status jn_env_set(sw_ctx *ctx, sw_jinja_env *e, const char *name, jv v);

/* Record an error at a node ("name:line:col: msg") and return -1. */
int jn_fail(jn_rt *rt, const jn_node *at, sw_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int jn_oom(jn_rt *rt, const jn_node *at);
int jn_undef_fail(jn_rt *rt, const jn_node *at, jv u);

/* lexer and parser */
int jn_lex(sw_ctx *ctx, const char *name, const char *src, size_t len, jn_arena *a, jn_toks *out);
int jn_parse(sw_ctx *ctx, const char *name, const jn_toks *toks, jn_arena *a, jn_node **root);

/* builtins (jinja_filters.c) */
int  jn_filter_id(const char *name); /* -1 when unknown */
int  jn_test_id(const char *name);
int  jn_call_filter(jn_rt *rt, const jn_node *at, int fid, jv v, const jv *args, int nargs, const char *const *kwn,
                    const jv *kwv, int nkw, jv *out);
int  jn_call_test(jn_rt *rt, const jn_node *at, int tid, jv v, const jv *args, int nargs, bool *out);
bool jn_global(jn_rt *rt, const char *name, jv *out); /* range, namespace, raise_exception... */
/* Attribute access: a method of a str/dict/list, or a key; else undefined. */
int jn_getattr(jn_rt *rt, const jn_node *at, jv obj, jv name, jv *out);
int jn_getitem(jn_rt *rt, const jn_node *at, jv obj, jv key, jv *out);

/* string helpers shared by methods and filters (jinja_builtins.c); each
 * returns JV_UNDEF when out of memory */
jv jn_str_case(jn_arena *a, const char *s, size_t n, int mode); /* 0 lower, 1 upper, 2 title, 3 capitalize */
jv jn_str_strip(jn_arena *a, jv str, jv chars, int which);      /* 1 left, 2 right, 3 both */
jv jn_str_replace(jn_arena *a, jv str, jv old, jv rep, int64_t count);
jv jn_soft_str(jn_arena *a, jv v); /* str(v) */
jv jn_html_escape(jn_arena *a, jv str); /* markupsafe.escape, flagged JV_MARKUP */

/* evaluator, for filters that take a callable or iterate */
int jn_call(jn_rt *rt, const jn_node *at, jv fn, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
            int nkw, jv *out);
int jn_iterate(jn_rt *rt, const jn_node *at, jv v, jv *list_out); /* anything iterable, as a list */
int jn_step(jn_rt *rt, const jn_node *at);                       /* count one loop step; caps, Ctrl-C */

/* Keyword-or-positional argument lookup for builtins. */
bool jn_arg(const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw, int pos, const char *name,
            jv *out);

#define JN_MAX_DEPTH 64            /* parser nesting of expressions and blocks */
#define JN_MAX_CALL_DEPTH 64       /* macro calls inside macro calls */
#define JN_MAX_STEPS 5000000LL     /* loop iterations in one render */
#define JN_MAX_RANGE 100000        /* jinja2's sandbox MAX_RANGE */

#endif
