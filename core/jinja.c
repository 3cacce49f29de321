/* jinja.c — the engine's public face (jinja.h): compiling a template,
 * and the environment of variables a render sees, including variables
 * given as JSON (jansson) and turned into engine values.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

sw_status sw_jinja_compile(sw_ctx *ctx, const char *source, const char *name, sw_jinja **out) {
    *out = NULL;
    if (!source) return sw_err(ctx, SW_EINVAL, "%s: no template source", name ? name : "template");
    sw_jinja *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name ? name : "template")) || !(t->source = strdup(source))) {
        sw_jinja_free(t);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    t->arena.limit = SW_JINJA_MAX_MEMORY;
    jn_toks toks;
    if (jn_lex(ctx, t->name, t->source, strlen(t->source), &t->arena, &toks) ||
        jn_parse(ctx, t->name, &toks, &t->arena, &t->root)) {
        sw_status st = ctx->status; /* the lexer and parser always leave one */
        sw_jinja_free(t);
        return st;
    }
    *out = t;
    return SW_OK;
}

void sw_jinja_free(sw_jinja *t) {
    if (!t) return;
    jn_arena_free(&t->arena);
    free(t->name);
    free(t->source);
    free(t);
}

const char *sw_jinja_source(const sw_jinja *t) { return t->source; }
const char *sw_jinja_name(const sw_jinja *t) { return t->name; }

sw_status sw_jinja_env_new(sw_ctx *ctx, sw_jinja_env **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    (*out)->arena.limit = SW_JINJA_MAX_MEMORY;
    (*out)->max_output = SW_JINJA_MAX_OUTPUT;
    (*out)->max_memory = SW_JINJA_MAX_MEMORY;
    return SW_OK;
}

void sw_jinja_env_free(sw_jinja_env *e) {
    if (!e) return;
    jn_arena_free(&e->arena);
    free(e);
}

void sw_jinja_env_set_now(sw_jinja_env *e, long long epoch_seconds) { e->now = epoch_seconds; }

void sw_jinja_env_set_limits(sw_jinja_env *e, size_t max_output, size_t max_memory) {
    e->max_output = max_output ? max_output : SW_JINJA_MAX_OUTPUT;
    /* the memory cap counts what the variables already use */
    e->max_memory = max_memory ? max_memory : SW_JINJA_MAX_MEMORY;
    e->arena.limit = e->arena.used + e->max_memory;
}

/* Names are copied into the arena: the caller's string may not outlive the env. */
sw_status jn_env_set(sw_ctx *ctx, sw_jinja_env *e, const char *name, jv v) {
    if (e->arena.over) return sw_err(ctx, SW_ENOMEM, "template variables: out of memory");
    jn_frame *f = &e->globals;
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].name, name)) {
            f->v[i].val = v;
            return SW_OK;
        }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        jn_var *nv = jn_alloc(&e->arena, (size_t)cap * sizeof *nv);
        if (!nv) return sw_err(ctx, SW_ENOMEM, "template variables: out of memory");
        if (f->n) memcpy(nv, f->v, (size_t)f->n * sizeof *nv);
        f->v = nv;
        f->cap = cap;
    }
    jv nm = jv_cstr(&e->arena, name);
    if (nm.t != JV_STR) return sw_err(ctx, SW_ENOMEM, "template variables: out of memory");
    f->v[f->n].name = nm.u.s->s;
    f->v[f->n++].val = v;
    return SW_OK;
}

sw_status sw_jinja_env_set_string(sw_ctx *ctx, sw_jinja_env *e, const char *name, const char *s) {
    return jn_env_set(ctx, e, name, jv_cstr(&e->arena, s ? s : ""));
}

sw_status sw_jinja_env_set_bool(sw_ctx *ctx, sw_jinja_env *e, const char *name, bool b) {
    return jn_env_set(ctx, e, name, jv_bool(b));
}

sw_status sw_jinja_env_set_none(sw_ctx *ctx, sw_jinja_env *e, const char *name) { return jn_env_set(ctx, e, name, jv_none()); }

static jv from_json(jn_arena *a, json_t *j, int depth) {
    if (depth > 200) return jv_undef();
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_str(a, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list(a, (int)n);
        if (l.t != JV_LIST) return l;
        for (size_t i = 0; i < n; i++) {
            jv x = from_json(a, json_array_get(j, i), depth + 1);
            if (x.t == JV_UNDEF) return x;
            l.u.l->v[l.u.l->n++] = x;
        }
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict(a, (int)json_object_size(j));
        if (d.t != JV_DICT) return d;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            jv key = jv_cstr(a, k), val = from_json(a, v, depth + 1);
            if (key.t == JV_UNDEF || val.t == JV_UNDEF || !jv_dict_set(a, d, key, val)) return jv_undef();
        }
        return d;
    }
    }
    return jv_undef();
}

static json_t *parse(sw_ctx *ctx, const char *json, const char *what) {
    json_error_t err;
    /* JSON_DECODE_ANY: a bare string or number is a variable too */
    json_t *j = json_loads(json ? json : "null", JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j) sw_err(ctx, SW_EINVAL, "%s: bad JSON at line %d column %d: %s", what, err.line, err.column, err.text);
    return j;
}

sw_status sw_jinja_env_set_json(sw_ctx *ctx, sw_jinja_env *e, const char *name, const char *json) {
    json_t *j = parse(ctx, json, name);
    if (!j) return ctx->status;
    jv v = from_json(&e->arena, j, 0);
    json_decref(j);
    if (v.t == JV_UNDEF) return sw_err(ctx, SW_EINVAL, "%s: JSON too deeply nested or out of memory", name);
    return jn_env_set(ctx, e, name, v);
}

sw_status sw_jinja_env_set_json_object(sw_ctx *ctx, sw_jinja_env *e, const char *json) {
    json_t *j = parse(ctx, json, "template variables");
    if (!j) return ctx->status;
    sw_status st = SW_OK;
    if (!json_is_object(j)) {
        st = sw_err(ctx, SW_EINVAL, "template variables: expected a JSON object");
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            jv x = from_json(&e->arena, v, 0);
            if (x.t == JV_UNDEF) {
                st = sw_err(ctx, SW_EINVAL, "%s: JSON too deeply nested or out of memory", k);
                break;
            }
            if ((st = jn_env_set(ctx, e, k, x))) break;
        }
    }
    json_decref(j);
    return st;
}
