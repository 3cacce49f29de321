/* glue.c — the interpreter layer: the Lua state as a notebook sees it.
 *
 * Output capture works at the file-descriptor level: fds 1 and 2 become
 * pipes that a reader thread turns into stream messages. That way Lua's
 * print and io.write, and C printf in the core (the trainer's progress
 * lines), all reach the cell, in the order each stream was written.
 * kg_flush() waits until the pipes are empty so a reply never overtakes the
 * output it follows. Cells run through repl_docall, so the SIGINT handling
 * (interrupt flag + Lua hook) is the REPL's.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <lauxlib.h>

#include "kernel.h"
#include "lua/lsw.h"
#include "repl/repl.h"

static int pipe_rd[2]; /* read ends for stdout, stderr */
static pthread_t reader;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *out_parent;
static char carry[2][4]; /* an unfinished UTF-8 sequence held for the next read */
static size_t ncarry[2];

/* Length of the valid UTF-8 sequence at s (n bytes left): 0 if invalid,
 * -1 if it is cut off by the end of the buffer. */
static int utf8_len(const unsigned char *s, size_t n) {
    int len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    if (!len) return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -1;
        if ((s[i] & 0xc0) != 0x80) return 0;
    }
    return len;
}

/* Send bytes as a stream message; invalid UTF-8 becomes U+FFFD, and a
 * sequence split across reads waits for its tail. Called under out_mu. */
static void send_stream(int which, const char *buf, size_t n) {
    char *text = malloc(ncarry[which] + n * 3 + 1);
    if (!text) return;
    unsigned char *in = malloc(ncarry[which] + n);
    if (!in) { free(text); return; }
    memcpy(in, carry[which], ncarry[which]);
    memcpy(in + ncarry[which], buf, n);
    size_t len = ncarry[which] + n, k = 0, i = 0;
    ncarry[which] = 0;
    while (i < len) {
        int l = utf8_len(in + i, len - i);
        if (l < 0) {
            memcpy(carry[which], in + i, len - i);
            ncarry[which] = len - i;
            break;
        }
        if (l == 0) {
            memcpy(text + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
            continue;
        }
        memcpy(text + k, in + i, (size_t)l);
        k += (size_t)l;
        i += (size_t)l;
    }
    if (k) {
        json_t *c = json_pack("{s:s,s:s%}", "name", which ? "stderr" : "stdout", "text", text, k);
        if (c) kw_send_parent(KW_IOPUB, out_parent, "stream", c);
    }
    free(in);
    free(text);
}

static void *read_output(void *arg) {
    (void)arg;
    char buf[65536];
    for (;;) {
        struct pollfd p[2] = {{pipe_rd[0], POLLIN, 0}, {pipe_rd[1], POLLIN, 0}};
        int r = poll(p, 2, 200);
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
            pthread_mutex_lock(&out_mu);
            ssize_t n = read(pipe_rd[i], buf, sizeof buf);
            if (n > 0) send_stream(i, buf, (size_t)n);
            pthread_mutex_unlock(&out_mu);
            if (n == 0) return NULL;
        }
    }
    return NULL;
}

void kg_set_parent(json_t *parent_header) {
    kg_flush();
    pthread_mutex_lock(&out_mu);
    json_decref(out_parent);
    out_parent = json_deep_copy(parent_header);
    pthread_mutex_unlock(&out_mu);
}

void kg_flush(void) {
    fflush(stdout);
    fflush(stderr);
    /* Holding out_mu means the reader is not between a read and its send,
     * so empty pipes mean everything written so far has gone out. */
    for (int tries = 0; tries < 5000; tries++) {
        int a = 0, b = 0;
        pthread_mutex_lock(&out_mu);
        ioctl(pipe_rd[0], FIONREAD, &a);
        ioctl(pipe_rd[1], FIONREAD, &b);
        pthread_mutex_unlock(&out_mu);
        if (a == 0 && b == 0) return;
        usleep(1000);
    }
}

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
    kg_flush(); /* the display lands after what was printed before it */
    pthread_mutex_lock(&out_mu);
    kw_send_parent(KW_IOPUB, out_parent, update && id ? "update_display_data" : "display_data", c);
    pthread_mutex_unlock(&out_mu);
    return 0;
}

/* sw.clear_output([wait]) */
static int clear_output(lua_State *L) {
    bool wait = lua_toboolean(L, 1);
    kg_flush();
    pthread_mutex_lock(&out_mu);
    kw_send_parent(KW_IOPUB, out_parent, "clear_output", json_pack("{s:b}", "wait", wait));
    pthread_mutex_unlock(&out_mu);
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

int kg_init(lua_State *L) {
    for (int fd = 1; fd <= 2; fd++) {
        int p[2];
        if (pipe(p) != 0) return -1;
        fflush(fd == 1 ? stdout : stderr);
        dup2(p[1], fd);
        close(p[1]);
        pipe_rd[fd - 1] = p[0];
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines arrive as printed */
    if (pthread_create(&reader, NULL, read_output, NULL) != 0) return -1;
    lua_getglobal(L, "sw");
    lua_pushcfunction(L, display_hook);
    lua_setfield(L, -2, "_display_hook");
    lua_pushcfunction(L, stream_text);
    lua_setfield(L, -2, "_stream");
    if (lua_getfield(L, -1, "clear_output") == LUA_TNIL) {
        lua_pushcfunction(L, clear_output);
        lua_setfield(L, -3, "clear_output");
    }
    lua_pop(L, 2);
    return 0;
}

void kg_interrupt(void) {
    /* The same path as a SIGINT from the client: repl_docall's handler is
     * installed while a cell runs; otherwise SIGINT is ignored. */
    kill(getpid(), SIGINT);
}

/* ---- running cells -------------------------------------------------------- */

static bool try_expression(lua_State *L, const char *code) {
    const char *ret = lua_pushfstring(L, "return %s;", code);
    int st = luaL_loadbuffer(L, ret, strlen(ret), "=cell");
    lua_remove(L, -2);
    if (st == LUA_OK) return true;
    lua_pop(L, 1);
    return false;
}

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
    bool expr = try_expression(L, code);
    int st = LUA_OK;
    if (!expr) st = luaL_loadbuffer(L, code, strlen(code), "=cell");
    lsw_cell cell;
    lsw_cell_begin(&cell);
    if (st == LUA_OK) {
        lsw_set_echoing(expr);
        st = repl_docall(L, 0, LUA_MULTRET);
        lsw_set_echoing(false);
    }
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
    if (!try_expression(L, code)) {
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

/* Under pcall: 1 = path (with ':' turned into '.') -> a text/plain string. */
static int describe(lua_State *L) {
    size_t len;
    const char *path = lua_tolstring(L, 1, &len);
    repl_complete_push_path(L, path, len);
    if (lua_isnil(L, -1)) return 0;
    int v = lua_gettop(L);
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
