/* complete.c — tab completion of globals, table fields and object methods.
 *
 * The word under the cursor is split at its last '.' or ':' into a path and
 * a prefix: "model.tok" completes the fields of global `model` starting
 * with "tok"; "t:na" completes methods of `t`. Paths are walked with raw
 * reads and metatables only (never __index functions), so completing can
 * never run user code or raise. Objects advertise their names in the
 * metatable fields __methods (a table) and __fields (a list).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <readline/readline.h>

#include "repl.h"

static lua_State *comp_L;

static const char *const keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL};

/* Candidate list built once per completion attempt. */
static char **cands;
static size_t ncands, capcands;

static void add_cand(const char *prefix_path, const char *name, size_t plen, const char *partial) {
    if (strncmp(name, partial, plen)) return;
    for (size_t i = 0; i < ncands; i++) { /* a method may appear twice (table and __index) */
        if (!strcmp(cands[i] + strlen(prefix_path), name)) return;
    }
    if (ncands == capcands) {
        size_t nc = capcands ? capcands * 2 : 64;
        char **c2 = realloc(cands, nc * sizeof *cands);
        if (!c2) return;
        cands = c2;
        capcands = nc;
    }
    size_t l1 = strlen(prefix_path), l2 = strlen(name);
    char *s = malloc(l1 + l2 + 1);
    if (!s) return;
    memcpy(s, prefix_path, l1);
    memcpy(s + l1, name, l2 + 1);
    cands[ncands++] = s;
}

static bool is_name(const char *s) {
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* Add the string keys of the table at idx. */
static void add_table_keys(lua_State *L, int idx, const char *pp, const char *partial, size_t plen, bool only_functions) {
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && (!only_functions || lua_isfunction(L, -1))) {
            const char *k = lua_tostring(L, -2);
            if (is_name(k) && strncmp(k, "__", 2)) add_cand(pp, k, plen, partial);
        }
        lua_pop(L, 1);
    }
}

/* Add names reachable from the value on top: its own fields (tables) and
 * what its metatable advertises. Follows __index tables a few levels. */
static void add_members(lua_State *L, const char *pp, const char *partial, bool methods_only) {
    size_t plen = strlen(partial);
    int top = lua_gettop(L);
    for (int depth = 0; depth < 4; depth++) {
        if (lua_istable(L, -1)) add_table_keys(L, -1, pp, partial, plen, methods_only);
        if (!lua_getmetatable(L, -1)) break;                 /* cur mt */
        if (lua_getfield(L, -1, "__methods") == LUA_TTABLE) add_table_keys(L, -1, pp, partial, plen, false);
        lua_pop(L, 1);
        if (!methods_only && lua_getfield(L, -1, "__fields") == LUA_TTABLE) {
            for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
                add_cand(pp, lua_tostring(L, -1), plen, partial);
                lua_pop(L, 1);
            }
            lua_pop(L, 1); /* the non-string that ended the list */
        }
        lua_pop(L, 1);     /* __fields */
        lua_pushliteral(L, "__index");
        if (lua_rawget(L, -2) != LUA_TTABLE) break;         /* cur mt __index */
        lua_remove(L, -2);
        lua_remove(L, -2);                                   /* walk on from __index */
    }
    lua_settop(L, top);
}

static int getfield_protected(lua_State *L) {
    lua_gettable(L, 1);
    return 1;
}

/* Our own objects compute properties in C (model.tokenizer); reading those
 * is safe. Anything else is only walked through tables. */
static bool is_stepwise_object(lua_State *L, int idx) {
    bool yes = false;
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
        yes = !strncmp(lua_tostring(L, -1), "stepwise.", 9);
        lua_pop(L, 1);
    } else if (lua_type(L, -1) != LUA_TNIL) {
        lua_pop(L, 1);
    }
    return yes;
}

/* Push the value at a dotted path ("a.b.c") or nil. Raw reads, __index
 * tables and our own objects' properties only: completing never runs user
 * code and never raises. */
static void push_path(lua_State *L, const char *path, size_t len) {
    lua_pushglobaltable(L);
    const char *p = path, *end = path + len;
    while (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        if (lua_type(L, -1) == LUA_TUSERDATA && is_stepwise_object(L, -1)) {
            lua_pushcfunction(L, getfield_protected);       /* cur f */
            lua_pushvalue(L, -2);                           /* cur f cur */
            lua_pushlstring(L, p, (size_t)(dot - p));       /* cur f cur key */
            if (lua_pcall(L, 2, 1, 0) != LUA_OK) {          /* cur val|err */
                lua_pop(L, 1);
                lua_pushnil(L);
            }
        } else if (lua_istable(L, -1)) {
            lua_pushlstring(L, p, (size_t)(dot - p));       /* cur key */
            lua_rawget(L, -2);                              /* cur val */
            if (lua_isnil(L, -1) && lua_getmetatable(L, -2)) {  /* cur nil mt */
                if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {  /* cur nil mt idx */
                    lua_pushlstring(L, p, (size_t)(dot - p));
                    lua_rawget(L, -2);                      /* cur nil mt idx val */
                    lua_replace(L, -4);                     /* cur val mt idx */
                }
                lua_pop(L, 2);                              /* cur val */
            }
        } else {
            lua_pushnil(L);                                 /* cur nil */
        }
        lua_remove(L, -2);
        if (lua_isnil(L, -1)) return;
        p = dot + 1;
    }
}

static void reset_cands(void) {
    for (size_t i = 0; i < ncands; i++) free(cands[i]);
    ncands = 0;
}

/* Runs under lua_pcall: a bug here must never take the REPL down. */
static int collect(lua_State *L) {
    const char *text = lua_touserdata(L, 1);
    const char *sep = NULL;
    for (const char *p = text; *p; p++)
        if (*p == '.' || *p == ':') sep = p;
    int top = lua_gettop(L);
    if (!sep) {
        size_t plen = strlen(text);
        lua_pushglobaltable(L);
        add_members(L, "", text, false);
        for (const char *const *k = keywords; *k; k++) add_cand("", *k, plen, text);
    } else {
        size_t pathlen = (size_t)(sep - text);
        char *pp = strndup(text, pathlen + 1); /* the path and its separator */
        if (pp) {
            push_path(L, text, pathlen);
            if (!lua_isnil(L, -1)) add_members(L, pp, sep + 1, *sep == ':');
            free(pp);
        }
    }
    lua_settop(L, top);
    return 0;
}

char **repl_complete_candidates(lua_State *L, const char *text, size_t *n) {
    reset_cands();
    int top = lua_gettop(L);
    lua_pushcfunction(L, collect);
    lua_pushlightuserdata(L, (void *)text);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) reset_cands();
    lua_settop(L, top);
    /* Hand the list over; the next attempt starts a fresh one. */
    char **out = cands;
    *n = ncands;
    cands = NULL;
    ncands = capcands = 0;
    return out;
}

void repl_complete_push_path(lua_State *L, const char *path, size_t len) { push_path(L, path, len); }

/* readline's side: the list lives in rl_cands until generator hands it out. */
static char **rl_cands;
static size_t rl_ncands;

static char *generator(const char *text, int state) {
    (void)text;
    static size_t next;
    if (!state) next = 0;
    if (next < rl_ncands) {
        char *s = rl_cands[next];
        rl_cands[next++] = NULL; /* readline frees what we return */
        return s;
    }
    return NULL;
}

static char **attempt(const char *text, int start, int end) {
    (void)start;
    (void)end;
    for (size_t i = 0; i < rl_ncands; i++) free(rl_cands[i]);
    free(rl_cands);
    rl_completion_append_character = '\0';
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_cands = repl_complete_candidates(comp_L, text, &rl_ncands);
    if (!rl_ncands) return NULL;
    return rl_completion_matches(text, generator);
}

void repl_completion_init(lua_State *L) {
    comp_L = L;
    rl_readline_name = "stepwise";
    rl_attempted_completion_function = attempt;
    /* '.' and ':' stay inside the word so "sw.pro" completes as a path. */
    rl_completer_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[]+-*/%^~#,";
    rl_basic_word_break_characters = rl_completer_word_break_characters;
}
