/* glue.c — the interpreter layer: the Lua state as a notebook sees it.
 *
 * Cells run through repl_docall, so the SIGINT handling (interrupt flag +
 * Lua hook) is the REPL's; bare expressions are tried as `return <code>`
 * first, like the REPL, and their values become execute_result bundles.
 * Output capture is in capture.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "kernel.h"
#include "lua/lsw.h"
#include "repl/repl.h"

/* ---- hooks the Lua side calls ------------------------------------------- */

/* Lua table at idx (mime -> string) as a JSON object; non-strings skipped. */
static json_t *bundle_to_json(lua_State *L, int idx) {
    json_t *o = json_object();
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) return o;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const char *v = lua_tolstring(L, -1, &n);
            json_t *s = json_stringn(v, n);
            if (s) json_object_set_new(o, lua_tostring(L, -2), s);
        }
        lua_pop(L, 1);
    }
    return o;
}

/* sw._display_hook(bundle, display_id, update) */
static int display_hook(lua_State *L) {
    json_t *data = bundle_to_json(L, 1);
    const char *id = luaL_optstring(L, 2, NULL);
    bool update = lua_toboolean(L, 3);
    json_t *c = json_pack("{s:o,s:{}}", "data", data, "metadata");
    if (id) json_object_set_new(c, "transient", json_pack("{s:s}", "display_id", id));
    kg_publish(update && id ? "update_display_data" : "display_data", c);
    return 0;
}

/* sw.clear_output([wait]) */
static int clear_output(lua_State *L) {
    bool wait = lua_toboolean(L, 1);
    kg_publish("clear_output", json_pack("{s:b}", "wait", wait));
    return 0;
}

/* sw._progress(text, final): a training run's progress is one display,
 * created by the first call of a run and updated in place after (the
 * trainer already limits this to 10 calls a second). */
static int progress(lua_State *L) {
    static int run_id;
    static bool active;
    const char *text = luaL_checkstring(L, 1);
    bool final = lua_toboolean(L, 2);
    char id[48];
    if (!active) {
        run_id++;
        active = true;
        snprintf(id, sizeof id, "stepwise-progress-%d", run_id);
        kg_publish("display_data", json_pack("{s:{s:s},s:{},s:{s:s}}", "data", "text/plain", text, "metadata",
                                             "transient", "display_id", id));
    } else {
        snprintf(id, sizeof id, "stepwise-progress-%d", run_id);
        kg_publish("update_display_data", json_pack("{s:{s:s},s:{},s:{s:s}}", "data", "text/plain", text, "metadata",
                                                    "transient", "display_id", id));
    }
    if (final) active = false;
    return 0;
}

/* sw._stream(text): generated tokens go through stdout like everything
 * else, unbuffered, so they interleave correctly with print. */
static int stream_text(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

/* io.read in a notebook: a line from the front end (input_request).
 * Formats: "l" (default), "L" (keep the newline), "n" (a number). */
static int io_read(lua_State *L) {
    const char *fmt = luaL_optstring(L, 1, "l");
    if (*fmt == '*') fmt++;
    const char *err = NULL;
    char *line = kp_input("", false, &err);
    if (!line) return luaL_error(L, "io.read: %s", err);
    if (*fmt == 'n') {
        lua_pushstring(L, line);
        free(line);
        if (!lua_stringtonumber(L, lua_tostring(L, -1))) lua_pushnil(L);
        return 1;
    }
    if (*fmt == 'L') lua_pushfstring(L, "%s\n", line);
    else lua_pushstring(L, line);
    free(line);
    return 1;
}

/* io.read and io.stdin:read ask the front end; other files read as usual. */
static const char STDIN_SHIM[] =
    "local read, stdin = ...\n"
    "io.read = read\n"
    "local methods = getmetatable(stdin).__index\n"
    "local orig = methods.read\n"
    "methods.read = function(f, ...) if f == stdin then return read(...) end return orig(f, ...) end\n";

int kg_init(lua_State *L) {
    if (kg_capture_start() != 0) return -1;
    lua_getglobal(L, "sw");
    lua_pushcfunction(L, display_hook);
    lua_setfield(L, -2, "_display_hook");
    lua_pushcfunction(L, stream_text);
    lua_setfield(L, -2, "_stream");
    /* sw.clear_output (lua/display.lua) calls this hook. */
    lua_pushcfunction(L, clear_output);
    lua_setfield(L, -2, "_clear_hook");
    lua_pushcfunction(L, progress);
    lua_setfield(L, -2, "_progress");
    lua_pop(L, 1);
    if (luaL_loadstring(L, STDIN_SHIM) == LUA_OK) {
        lua_pushcfunction(L, io_read);
        lua_getglobal(L, "io");
        lua_getfield(L, -1, "stdin");
        lua_remove(L, -2);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* io.read stays the plain one */
    } else {
        lua_pop(L, 1);
    }
    return 0;
}

void kg_interrupt(void) {
    /* The same path as a SIGINT from the client: repl_docall's handler is
     * installed while a cell runs; otherwise SIGINT is ignored. */
    kill(getpid(), SIGINT);
}

/* ---- running cells -------------------------------------------------------- */

/* Under pcall: the values at 1..n -> a mime bundle table. One value goes
 * through sw.repr_bundle when the prelude has it; several are shown as
 * text, tab-separated, like the REPL. */
static int make_bundle(lua_State *L) {
    int n = lua_gettop(L);
    lua_getglobal(L, "sw");
    int sw = lua_gettop(L);
    if (n == 1 && lua_getfield(L, sw, "repr_bundle") == LUA_TFUNCTION) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    luaL_Buffer b;
    lua_createtable(L, 0, 1);
    int t = lua_gettop(L);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        lua_getfield(L, sw, "repr");
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_setfield(L, t, "text/plain");
    return 1;
}

static json_t *split_lines(const char *s) {
    json_t *a = json_array();
    while (s && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        json_t *line = json_stringn(s, n);
        if (line) json_array_append_new(a, line);
        s = nl ? nl + 1 : s + n;
    }
    return a;
}

void kg_execute(lua_State *L, const char *code, kg_result *r) {
    memset(r, 0, sizeof *r);
    int base = lua_gettop(L);
    bool expr;
    lsw_cell cell;
    int st = repl_run_cell(L, code, "=cell", &expr, &cell);
    if (st == LUA_OK) {
        r->ok = true;
        int n = lua_gettop(L) - base;
        if (expr && n > 0) {
            lua_pushcfunction(L, make_bundle);
            lua_insert(L, base + 1);
            if (repl_docall(L, n, 1) == LUA_OK) r->data = bundle_to_json(L, -1);
            else r->data = json_pack("{s:s}", "text/plain", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        }
    } else {
        const char *msg = lua_tostring(L, -1);
        if (!msg) msg = "(error object is not a string)";
        r->ename = strdup(st == LUA_ERRSYNTAX ? "SyntaxError"
                          : strstr(msg, "interrupted") ? "Interrupted" : "LuaError");
        r->evalue = strdup(msg);
        r->traceback = split_lines(st == LUA_ERRRUN ? repl_last_traceback(L) : msg);
        if (!json_array_size(r->traceback)) json_array_append_new(r->traceback, json_string(r->evalue));
    }
    lua_settop(L, base);
    if (lsw_profile_enabled()) {
        char line[1024];
        lsw_cell_report(&cell, line, sizeof line);
        r->cost = json_sprintf("-- %s\n", line);
    }
    kg_flush();
}

void kg_result_free(kg_result *r) {
    json_decref(r->data);
    json_decref(r->traceback);
    json_decref(r->cost);
    free(r->ename);
    free(r->evalue);
    memset(r, 0, sizeof *r);
}

/* ---- is_complete, completion, inspection ------------------------------ */

const char *kg_is_complete(lua_State *L, const char *code) {
    int top = lua_gettop(L);
    const char *res = "complete";
    if (!repl_try_expression(L, code, "=cell")) {
        int st = luaL_loadbuffer(L, code, strlen(code), "=cell");
        size_t len = 0;
        const char *msg = st == LUA_ERRSYNTAX ? lua_tolstring(L, -1, &len) : NULL;
        /* The REPL's rule: an error at <eof> means "keep typing". */
        if (msg && len >= 5 && !strcmp(msg + len - 5, "<eof>")) res = "incomplete";
        else if (st != LUA_OK) res = "invalid";
    }
    lua_settop(L, top);
    return res;
}

/* Jupyter counts cursor positions in code points; we work in bytes. */
static size_t cp_to_byte(const char *s, size_t cp) {
    size_t b = 0;
    for (size_t c = 0; s[b] && c < cp; c++) {
        b++;
        while (((unsigned char)s[b] & 0xc0) == 0x80) b++;
    }
    return b;
}

static size_t byte_to_cp(const char *s, size_t b) {
    size_t cp = 0;
    for (size_t i = 0; i < b && s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) cp++;
    return cp;
}

static bool word_char(char c) {
    return c == '_' || c == '.' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

json_t *kg_complete(lua_State *L, const char *code, size_t cursor, size_t *start) {
    size_t end = cp_to_byte(code, cursor), b = end;
    while (b > 0 && word_char(code[b - 1])) b--;
    char *word = strndup(code + b, end - b);
    json_t *a = json_array();
    if (word) {
        size_t n = 0;
        char **c = repl_complete_candidates(L, word, &n);
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(a, json_string(c[i]));
            free(c[i]);
        }
        free(c);
        free(word);
    }
    *start = byte_to_cp(code, b);
    return a;
}

/* "name(a, b, ...)" from a Lua function's parameter names; C functions
 * keep theirs to themselves, so they get "name(...)" and say so. */
static void push_signature(lua_State *L, int f, const char *name) {
    luaL_Buffer b;
    lua_Debug ar;
    lua_pushvalue(L, f);
    lua_getinfo(L, ">Su", &ar);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, name);
    luaL_addchar(&b, '(');
    bool c = !strcmp(ar.what, "C");
    for (int i = 1; !c && i <= ar.nparams; i++) {
        lua_pushvalue(L, f);
        const char *pn = lua_getlocal(L, NULL, i);
        lua_pop(L, 1);
        if (i > 1) luaL_addstring(&b, ", ");
        luaL_addstring(&b, pn ? pn : "?");
    }
    if (c || ar.isvararg) luaL_addstring(&b, ar.nparams && !c ? ", ..." : "...");
    luaL_addchar(&b, ')');
    luaL_addstring(&b, c ? "  -- C function" : "  -- Lua function, ");
    if (!c) luaL_addstring(&b, ar.short_src);
    if (!c && ar.linedefined > 0) {
        lua_pushfstring(L, ":%d", ar.linedefined);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
}

/* Under pcall: 1 = path (with ':' turned into '.') -> a text/plain string. */
static int describe(lua_State *L) {
    size_t len;
    const char *path = lua_tolstring(L, 1, &len);
    repl_complete_push_path(L, path, len);
    if (lua_isnil(L, -1)) return 0;
    int v = lua_gettop(L);
    if (lua_isfunction(L, v)) {
        push_signature(L, v, path);
        return 1;
    }
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "repr");
    lua_pushvalue(L, v);
    lua_call(L, 1, 1);
    lua_pushfstring(L, "%s: %s\n%s", path, luaL_typename(L, v), lua_tostring(L, -1));
    return 1;
}

json_t *kg_inspect(lua_State *L, const char *code, size_t cursor) {
    size_t at = cp_to_byte(code, cursor), b = at, e = at;
    while (b > 0 && word_char(code[b - 1])) b--;
    while (code[e] && word_char(code[e])) e++;
    while (e > b && (code[e - 1] == '.' || code[e - 1] == ':')) e--;
    if (e == b) return NULL;
    char *path = strndup(code + b, e - b);
    if (!path) return NULL;
    for (char *p = path; *p; p++)
        if (*p == ':') *p = '.';
    json_t *out = NULL;
    int top = lua_gettop(L);
    lua_pushcfunction(L, describe);
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1))
        out = json_pack("{s:s}", "text/plain", lua_tostring(L, -1));
    lua_settop(L, top);
    free(path);
    return out;
}
