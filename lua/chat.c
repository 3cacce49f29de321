/* chat.c — stepwise.ChatTemplate: a chat template, compiled once.
 *
 *   t = sw.chat_template("chatml")            -- a built-in (sw.chat_templates lists them)
 *   t = sw.chat_template(source [, name])     -- Jinja source, as models ship it
 *   t:apply(messages, {add_generation_prompt=, bos_token=, eos_token=,
 *                      tools=, vars=, now=}) -> string
 *     messages: a list of tables, or JSON text; vars: a table of more
 *     variables (date_string...) or JSON text; now: strftime_now()'s clock
 *     in seconds since the epoch (UTC), for a fixed date
 *   t:source() -> the Jinja text
 *
 * Messages are tables {role=, content=, ...}; any field (tool_calls...)
 * reaches the template. They travel to the core as JSON, so nested tables
 * work: a table with keys 1..n is an array, any other a JSON object.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "lsw.h"

#define LSW_CHAT "stepwise.ChatTemplate"

static sw_chat_template *check_tpl(lua_State *L, int idx) { return lsw_check_object(L, idx, LSW_CHAT, "ChatTemplate"); }

/* ---- Lua values to JSON -------------------------------------------------- */

/* A growable C buffer in a userdata whose __gc frees it, so a Lua error
 * halfway (a bad value, out of memory) leaks nothing. */
#define LSW_CHATBUF "stepwise.chat.buffer"
typedef struct jbuf {
    char *p;
    size_t len, cap;
} jbuf;

static int jbuf_gc(lua_State *L) {
    jbuf *b = luaL_checkudata(L, 1, LSW_CHATBUF);
    free(b->p);
    b->p = NULL;
    return 0;
}

static void put(lua_State *L, jbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) luaL_error(L, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(lua_State *L, jbuf *b, const char *s) { put(L, b, s, strlen(s)); }

static void json_string(lua_State *L, jbuf *b, const char *s, size_t n) {
    put(L, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20) continue;
        char esc[8];
        put(L, b, s + run, i - run);
        if (c < 0x20)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        else
            snprintf(esc, sizeof esc, "\\%c", c);
        puts_(L, b, esc);
        run = i + 1;
    }
    put(L, b, s + run, n - run);
    put(L, b, "\"", 1);
}

/* Is the table at idx a sequence 1..n with no other keys? ({} counts.) */
static bool is_array(lua_State *L, int idx) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return false;
        }
        count++;
    }
    return count == n;
}

static void to_json(lua_State *L, jbuf *b, int idx, const char *fn, int depth) {
    char num[64];
    if (depth > 100) luaL_error(L, "%s: tables nested more than 100 deep (a cycle?)", fn);
    luaL_checkstack(L, 4, fn);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: puts_(L, b, "null"); break;
    case LUA_TBOOLEAN: puts_(L, b, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) luaL_error(L, "%s: %f cannot be passed to a template", fn, d);
            snprintf(num, sizeof num, "%.17g", d);
            if (!strpbrk(num, ".eE")) strcat(num, ".0"); /* stays a float */
        }
        puts_(L, b, num);
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_string(L, b, s, n);
        break;
    }
    case LUA_TTABLE:
        if (is_array(L, idx)) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
            puts_(L, b, "[");
            for (lua_Integer i = 1; i <= n; i++) {
                if (i > 1) puts_(L, b, ",");
                lua_rawgeti(L, idx, i);
                to_json(L, b, lua_gettop(L), fn, depth + 1);
                lua_pop(L, 1);
            }
            puts_(L, b, "]");
        } else {
            bool first = true;
            puts_(L, b, "{");
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: table keys must be strings or 1..n", fn);
                if (!first) puts_(L, b, ",");
                first = false;
                size_t kn;
                const char *k = lua_tolstring(L, -2, &kn);
                json_string(L, b, k, kn);
                puts_(L, b, ":");
                to_json(L, b, lua_gettop(L), fn, depth + 1);
                lua_pop(L, 1);
            }
            puts_(L, b, "}");
        }
        break;
    default: luaL_error(L, "%s: a %s cannot be passed to a template", fn, luaL_typename(L, idx));
    }
}

/* The JSON text of the value at idx, pushed as a Lua string. */
static const char *push_json(lua_State *L, int idx, const char *fn) {
    idx = lua_absindex(L, idx);
    jbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, LSW_CHATBUF);
    to_json(L, b, idx, fn, 0);
    lua_pushlstring(L, b->p ? b->p : "", b->len);
    lua_remove(L, -2); /* the box; its __gc frees the C buffer */
    return lua_tostring(L, -1);
}

/* ---- the class ----------------------------------------------------------- */

/* sw.chat_template(name_or_source [, name]) */
static int ct_new(lua_State *L) {
    const char *src = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    void **slot = lsw_new_object(L, LSW_CHAT);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_chat_template *t = NULL;
    bool builtin = false;
    for (const char *const *n = sw_chat_builtin_names(); *n; n++)
        if (!strcmp(*n, src)) builtin = true;
    if (builtin)
        lsw_check(L, &ctx, sw_chat_template_builtin(&ctx, src, &t));
    else
        lsw_check(L, &ctx, sw_chat_template_new(&ctx, src, name ? name : "chat template", &t));
    *slot = t;
    return 1;
}

static int ct_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_CHAT);
    sw_chat_template_free(*slot);
    *slot = NULL;
    return 0;
}

static int ct_free(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_CHAT);
    if (!*slot) luaL_error(L, "ChatTemplate:free: this ChatTemplate was already freed");
    return ct_gc(L);
}

static const char *const apply_opts[] = {"add_generation_prompt", "bos_token", "eos_token", "tools", "vars", "now", NULL};

/* t:apply(messages, opts) -> string */
static int ct_apply(lua_State *L) {
    const char *fn = "ChatTemplate:apply";
    sw_chat_template *t = check_tpl(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING) luaL_checktype(L, 2, LUA_TTABLE);
    lsw_opts_check(L, 3, fn, apply_opts);
    sw_chat_opts o = {0};
    o.add_generation_prompt = lsw_opt_bool(L, 3, fn, "add_generation_prompt", 0);
    o.bos_token = lsw_opt_string(L, 3, fn, "bos_token", NULL);
    o.eos_token = lsw_opt_string(L, 3, fn, "eos_token", NULL);
    o.now = (long long)lsw_opt_integer(L, 3, fn, "now", 0);
    /* messages as a table, or already as JSON text (keeps key order) */
    const char *msgs = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : push_json(L, 2, fn);
    /* vars = {...} and tools = {...} as one JSON object of variables */
    if (lua_istable(L, 3) && lua_getfield(L, 3, "vars") == LUA_TSTRING) {
        if (lua_getfield(L, 3, "tools") != LUA_TNIL) luaL_error(L, "%s: with vars as JSON text, put tools in it", fn);
        lua_pop(L, 1);
        o.vars_json = lua_tostring(L, -1); /* stays on the stack */
    } else if (lua_istable(L, 3)) {
        lua_newtable(L);
        int vars = lua_gettop(L);
        if (lua_getfield(L, 3, "vars") == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_settable(L, vars);
            }
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "%s: option 'vars' must be a table", fn);
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 3, "tools") != LUA_TNIL) lua_setfield(L, vars, "tools");
        else lua_pop(L, 1);
        lua_pushnil(L);
        if (lua_next(L, vars)) {
            lua_pop(L, 2);
            o.vars_json = push_json(L, vars, fn);
        }
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    char *out;
    size_t len;
    lsw_check(L, &ctx, sw_chat_apply_json(&ctx, t, msgs, &o, &out, &len));
    lua_pushlstring(L, out, len); /* may raise on OOM: copy first, then free */
    free(out);
    return 1;
}

static int ct_source(lua_State *L) {
    lua_pushstring(L, sw_chat_template_source(check_tpl(L, 1)));
    return 1;
}

static int ct_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_CHAT);
    if (!*slot) {
        lua_pushstring(L, "ChatTemplate (freed)");
        return 1;
    }
    lua_pushfstring(L, "ChatTemplate (%d bytes of Jinja)", (int)strlen(sw_chat_template_source(*slot)));
    return 1;
}

static int ct_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static const luaL_Reg methods[] = {{"apply", ct_apply}, {"source", ct_source}, {"free", ct_free}, {NULL, NULL}};
static const luaL_Reg metamethods[] = {
    {"__gc", ct_gc}, {"__close", ct_gc}, {"__tostring", ct_tostring}, {"__index", ct_index}, {NULL, NULL}};
static const char *const fields[] = {NULL};

void lsw_open_chat(lua_State *L) {
    luaL_newmetatable(L, LSW_CHATBUF);
    lua_pushcfunction(L, jbuf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lsw_new_class(L, LSW_CHAT, methods, metamethods, fields);
    lua_pushcfunction(L, ct_new);
    lua_setfield(L, -2, "chat_template");
    lua_newtable(L);
    int i = 1;
    for (const char *const *n = sw_chat_builtin_names(); *n; n++) {
        lua_pushstring(L, *n);
        lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "chat_templates");
}
