/* run.c — running Lua code safely from the terminal front end.
 *
 * Modelled on lua.c's docall: a message handler records a traceback, and
 * SIGINT is caught only while code runs. The handler does the two things
 * that are async-signal-safe: raise the core's interrupt flag, which C loops
 * poll, and set a count hook, which stops Lua code at its next instruction.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "core/interrupt.h"
#include "lua/lsw.h"
#include "repl.h"

static lua_State *running_L;
static const char TRACEBACK_KEY[] = "stepwise.traceback";

static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
    (void)sig;
    sw_interrupt_raise();
    if (running_L) lua_sethook(running_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
    lua_pushstring(L, msg);
    return 1;
}

int repl_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sw_interrupt_clear();
    running_L = L;
    sigaction(SIGINT, &sa, &old);
    int status = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &old, NULL);
    running_L = NULL;
    /* A Ctrl-C that landed in C code leaves the hook armed; disarm it. */
    lua_sethook(L, NULL, 0, 0);
    sw_interrupt_clear();
    lua_remove(L, base);
    return status;
}

const char *repl_last_traceback(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the registry keeps the string alive */
    return s ? s : "";
}

void repl_report(lua_State *L, const char *msg, bool traceback) {
    fflush(stdout);
    if (traceback) {
        const char *tb = repl_last_traceback(L);
        fprintf(stderr, "stepwise: %s\n", tb[0] ? tb : msg);
    } else {
        fprintf(stderr, "stepwise: %s\n", msg);
    }
    fflush(stderr);
}

int repl_run_string(lua_State *L, const char *code, const char *name) {
    lsw_ranks_begin(code, strlen(code), name);
    int st = luaL_loadbuffer(L, code, strlen(code), name);
    if (st == LUA_OK) st = repl_docall(L, 0, 0);
    if (lsw_ranks_end(st == LUA_OK) && st == LUA_OK) return 1;
    if (st != LUA_OK) {
        repl_report(L, lua_tostring(L, -1), st == LUA_ERRRUN);
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

bool repl_try_expression(lua_State *L, const char *code, const char *name) {
    const char *ret = lua_pushfstring(L, "return %s;", code);
    int st = luaL_loadbuffer(L, ret, strlen(ret), name);
    lua_remove(L, -2);
    if (st == LUA_OK) return true;
    lua_pop(L, 1);
    return false;
}

int repl_run_cell(lua_State *L, const char *code, const char *name, bool *expr, struct lsw_cell *cell) {
    *expr = repl_try_expression(L, code, name);
    int st = LUA_OK;
    if (!*expr) st = luaL_loadbuffer(L, code, strlen(code), name);
    lsw_cell_begin(cell);
    lsw_ranks_begin(code, strlen(code), name); /* the other ranks run it too */
    if (st == LUA_OK) {
        lsw_set_echoing(*expr);
        st = repl_docall(L, 0, LUA_MULTRET);
        lsw_set_echoing(false);
    }
    lsw_ranks_end(st == LUA_OK);
    return st;
}

void repl_print_cost(const struct lsw_cell *c, bool color) {
    if (!lsw_profile_enabled()) return;
    char line[1024];
    lsw_cell_report(c, line, sizeof line);
    if (color) printf("\033[2m-- %s\033[0m\n", line);
    else printf("-- %s\n", line);
    fflush(stdout);
}
