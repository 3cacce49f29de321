/* opts.c — options tables and class plumbing shared by every binding.
 *
 * A typo in an option must never pass silently (r=16, alhpa=32 would train
 * with the default alpha), so every function that takes options checks each
 * key against its list and suggests the nearest valid one.
 */
#include <string.h>

#include "lsw.h"

void lsw_check(lua_State *L, sw_ctx *ctx, sw_status s) {
    if (s == SW_OK) return;
    lua_pushstring(L, ctx->msg[0] ? ctx->msg : sw_status_name(s));
    sw_ctx_clear(ctx);
    lua_error(L);
}

/* Levenshtein distance, capped: names are short. */
static int distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    int row[41];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

const char *lsw_suggest(const char *word, const char *const *names) {
    const char *best = NULL;
    int bestd = 3; /* at most two edits away */
    for (; *names; names++) {
        int d = distance(word, *names);
        if (d < bestd) {
            bestd = d;
            best = *names;
        }
    }
    return best;
}

void lsw_opts_check(lua_State *L, int idx, const char *fn, const char *const *allowed) {
    if (lua_isnoneornil(L, idx)) return;
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: options must be a table, got %s", fn, luaL_typename(L, idx));
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option keys must be names, got a %s key", fn, luaL_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        const char *const *a = allowed;
        while (*a && strcmp(*a, k)) a++;
        if (!*a) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (a = allowed; *a; a++) {
                if (a != allowed) luaL_addstring(&b, ", ");
                luaL_addstring(&b, *a);
            }
            luaL_pushresult(&b);
            const char *s = lsw_suggest(k, allowed);
            if (s) luaL_error(L, "%s: unknown option '%s' (did you mean '%s'?)", fn, k, s);
            luaL_error(L, "%s: unknown option '%s' (valid options: %s)", fn, k, lua_tostring(L, -1));
        }
    }
}

/* Push opts[key] and check its type; leaves it on the stack. Returns 0 if nil. */
static int get_opt(lua_State *L, int idx, const char *fn, const char *key, int type, const char *tname) {
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return 0;
    }
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) return 0;
    if (lua_type(L, -1) != type)
        luaL_error(L, "%s: option '%s' must be %s, got %s", fn, key, tname, luaL_typename(L, -1));
    return 1;
}

const char *lsw_opt_string(lua_State *L, int idx, const char *fn, const char *key, const char *def) {
    const char *v = get_opt(L, idx, fn, key, LUA_TSTRING, "a string") ? lua_tostring(L, -1) : def;
    lua_pop(L, 1); /* the table still holds the string */
    return v;
}

lua_Number lsw_opt_number(lua_State *L, int idx, const char *fn, const char *key, lua_Number def) {
    lua_Number v = get_opt(L, idx, fn, key, LUA_TNUMBER, "a number") ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

lua_Integer lsw_opt_integer(lua_State *L, int idx, const char *fn, const char *key, lua_Integer def) {
    lua_Integer v = def;
    if (get_opt(L, idx, fn, key, LUA_TNUMBER, "an integer")) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: option '%s' must be an integer, got %s", fn, key, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

int lsw_opt_bool(lua_State *L, int idx, const char *fn, const char *key, int def) {
    int v = get_opt(L, idx, fn, key, LUA_TBOOLEAN, "a boolean") ? lua_toboolean(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

/* ---- classes --------------------------------------------------------------
 * Metatable layout: methods live in mt.__methods (a plain table, so the REPL
 * can complete them), property names in mt.__fields; __index is the class's
 * own function, which looks up methods first and then computes properties. */
void lsw_new_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods, const char *const *fields) {
    luaL_newmetatable(L, tname);
    luaL_setfuncs(L, metamethods, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__methods");
    lua_newtable(L);
    for (int i = 0; fields && fields[i]; i++) {
        lua_pushstring(L, fields[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "__fields");
    lua_pop(L, 1);
}

void **lsw_new_object(lua_State *L, const char *tname) {
    void **slot = lua_newuserdatauv(L, sizeof(void *), 2); /* user values: parents, children */
    *slot = NULL; /* born closed: __gc on a failed constructor is harmless */
    luaL_setmetatable(L, tname);
    return slot;
}

void *lsw_check_object(lua_State *L, int idx, const char *tname, const char *what) {
    void **slot = luaL_testudata(L, idx, tname);
    if (!slot) {
        const char *got = luaL_typename(L, idx);
        if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
        luaL_error(L, "expected a %s, got %s", what, got);
    }
    if (!*slot) luaL_error(L, "this %s has been freed", what);
    return *slot;
}

/* A misspelt property must not read as nil and pass silently: the error
 * names the class and suggests the nearest of its methods and fields, read
 * from the metatable lsw_new_class built. Never returns. */
int lsw_no_field(lua_State *L, int idx, const char *cls, const char *key) {
    const char *names[128];
    int n = 0;
    if (lua_getmetatable(L, idx)) {
        if (lua_getfield(L, -1, "__methods") == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2) && n < 126) {
                lua_pop(L, 1);
                if (lua_type(L, -1) == LUA_TSTRING) names[n++] = lua_tostring(L, -1); /* kept by the table */
            }
        }
        lua_pop(L, 1);
        if (lua_getfield(L, -1, "__fields") == LUA_TTABLE)
            for (lua_Integer i = 1; n < 127 && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
                names[n++] = lua_tostring(L, -1);
                lua_pop(L, 1);
            }
    }
    names[n] = NULL;
    const char *hint = lsw_suggest(key, names);
    if (hint) return luaL_error(L, "%s has no field '%s' (did you mean '%s'?)", cls, key, hint);
    return luaL_error(L, "%s has no field '%s'", cls, key);
}
