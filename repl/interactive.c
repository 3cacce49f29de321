/* interactive.c — the readline loop, in the spirit of lua.c.
 *
 * Readline's callback interface lets us own the wait for input: SIGINT
 * during editing interrupts select(), and we throw away the line (and any
 * unfinished multi-line chunk) and show a fresh prompt; SIGINT while code
 * runs is handled by repl_docall. A line is first tried as `return <line>`
 * so bare expressions print; a chunk whose syntax error ends at <eof> is
 * incomplete and continues on the next line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "lua/lsw.h"
#include "repl.h"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 2000

static volatile sig_atomic_t sigint_seen;
static char *pending_line;
static bool line_arrived;

static void on_line(char *line) {
    pending_line = line; /* NULL on Ctrl-D */
    line_arrived = true;
    rl_callback_handler_remove(); /* reinstalled with the next prompt */
}

static void on_sigint_editing(int sig) {
    (void)sig;
    sigint_seen = 1;
}

static char history_path[4096];

static void history_init(void) {
    const char *p = getenv("STEPWISE_HISTORY");
    const char *home = getenv("HOME");
    if (p && *p) snprintf(history_path, sizeof history_path, "%s", p);
    else if (home) snprintf(history_path, sizeof history_path, "%s/.stepwise_history", home);
    using_history();
    stifle_history(HISTORY_MAX);
    if (history_path[0]) read_history(history_path);
}

static void history_add(const char *chunk) {
    HIST_ENTRY *last = history_length ? history_get(history_base + history_length - 1) : NULL;
    if (last && !strcmp(last->line, chunk)) return; /* no runs of duplicates */
    add_history(chunk);
    if (!history_path[0]) return;
    /* Append as we go, so a crash or a kill loses nothing. */
    FILE *f = fopen(history_path, "a");
    if (f) fclose(f);
    append_history(1, history_path);
    history_truncate_file(history_path, HISTORY_MAX);
}

/* Read one line with the given prompt. Returns NULL on EOF; sets *interrupted
 * (and returns NULL) when Ctrl-C was pressed while editing. */
static char *read_line(const char *prompt, bool *interrupted) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_editing; /* no SA_RESTART: select() must wake */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    *interrupted = false;
    sigint_seen = 0;
    line_arrived = false;
    pending_line = NULL;
    rl_callback_handler_install(prompt, on_line);
    while (!line_arrived) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fileno(rl_instream), &fds);
        int r = select(fileno(rl_instream) + 1, &fds, NULL, NULL, NULL);
        if (sigint_seen) {
            sigint_seen = 0;
            rl_free_line_state();
            rl_callback_sigcleanup();
            rl_callback_handler_remove();
            rl_replace_line("", 0);
            rl_crlf();
            *interrupted = true;
            break;
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            rl_callback_handler_remove();
            break; /* treat as EOF */
        }
        rl_callback_read_char();
    }
    sigaction(SIGINT, &old, NULL);
    return pending_line;
}

/* Does the syntax error on the stack mean "the chunk is not finished"? */
static bool incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return false;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    static const char eof_mark[] = "<eof>";
    const size_t ml = sizeof eof_mark - 1;
    return len >= ml && !strcmp(msg + len - ml, eof_mark);
}

/* Print the values a bare expression returned, through sw.show. */
static void echo_results(lua_State *L, int base) {
    int n = lua_gettop(L) - base;
    if (n <= 0) return;
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "show");
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) { /* the user replaced sw: fall back to print */
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    lua_insert(L, base + 1);
    if (repl_docall(L, n, 0) != LUA_OK) {
        fprintf(stderr, "error printing result: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static void run_chunk(lua_State *L, const char *chunk, bool color) {
    int base = lua_gettop(L);
    bool expr;
    lsw_cell cell;
    int st = repl_run_cell(L, chunk, "=stdin", &expr, &cell);
    if (st == LUA_OK) {
        if (expr) echo_results(L, base);
    } else {
        const char *msg = lua_tostring(L, -1);
        fflush(stdout);
        fprintf(stderr, color ? "\033[31m%s\033[0m\n" : "%s\n", msg ? msg : "(error)");
        fflush(stderr);
    }
    lua_settop(L, base);
    repl_print_cost(&cell, color);
}

static void banner(void) {
    char desc[160];
    printf("stepwise %s (%s) | cpu: %s", "0.1.0", LUA_RELEASE, sw_device_describe(SW_DEV_CPU, desc, sizeof desc));
    for (int i = 0; i < sw_device_cuda_count(); i++)
        printf(" | cuda:%d: %s", i, sw_device_describe(SW_DEV_CUDA(i), desc, sizeof desc));
    if (!sw_device_cuda_built()) printf(" | built without CUDA");
    printf("\nCtrl-C interrupts, Ctrl-D exits; sw.mem() shows memory, sw.profile(false) hides cell costs.\n");
    fflush(stdout);
}

int repl_interactive(lua_State *L) {
    bool color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    history_init();
    repl_completion_init(L);
    banner();
    char *chunk = NULL; /* the multi-line chunk being collected */
    size_t chunk_len = 0;
    for (;;) {
        bool interrupted;
        char *line = read_line(chunk ? PROMPT2 : PROMPT1, &interrupted);
        if (interrupted) { /* drop the unfinished chunk and start over */
            free(chunk);
            chunk = NULL;
            chunk_len = 0;
            continue;
        }
        if (!line) break;
        size_t ll = strlen(line);
        if (!chunk) {
            if (ll == 0) { free(line); continue; }
            chunk = line;
            chunk_len = ll;
        } else {
            char *c2 = realloc(chunk, chunk_len + ll + 2);
            if (!c2) { free(line); break; }
            chunk = c2;
            chunk[chunk_len++] = '\n';
            memcpy(chunk + chunk_len, line, ll + 1);
            chunk_len += ll;
            free(line);
        }
        /* Is it complete? Try as an expression, then as statements. */
        if (!repl_try_expression(L, chunk, "=stdin")) {
            int st = luaL_loadbuffer(L, chunk, chunk_len, "=stdin");
            if (incomplete(L, st)) {
                lua_pop(L, 1);
                continue;
            }
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
        }
        history_add(chunk);
        run_chunk(L, chunk, color);
        free(chunk);
        chunk = NULL;
        chunk_len = 0;
    }
    free(chunk);
    printf("\n");
    return 0;
}
