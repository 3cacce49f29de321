/* repl.h — the terminal front end: running code with Ctrl-C support,
 * scripts split into cells, and the interactive readline loop. */
#ifndef REPL_H
#define REPL_H

#include <lua.h>
#include <stdbool.h>

/* Call the function below narg arguments on the stack (like lua_pcall) with
 * a traceback handler and Ctrl-C armed: SIGINT raises the core's interrupt
 * flag (C loops poll it) and a Lua hook (Lua code stops at the next
 * instruction). On error the message is left on the stack and the full
 * traceback is kept for repl_last_traceback(). */
int         repl_docall(lua_State *L, int narg, int nres);
const char *repl_last_traceback(lua_State *L);
/* Print an error to stderr: "stepwise: msg" (+ traceback when asked). */
void        repl_report(lua_State *L, const char *msg, bool traceback);

typedef struct repl_script_opts {
    bool replay;   /* echo each cell's source and its cost line */
    bool pause;    /* wait for Enter before each cell */
    bool color;    /* ANSI colours on stdout */
} repl_script_opts;

/* Run a file (NULL or "-" for stdin) cell by cell. 0 on success, 1 after
 * reporting the first error. */
int repl_run_file(lua_State *L, const char *path, const repl_script_opts *o);
/* Run a string as one chunk named `name`. */
int repl_run_string(lua_State *L, const char *code, const char *name);

/* The interactive loop; returns the process exit code. */
int repl_interactive(lua_State *L);

/* Tab completion over globals, table fields and object methods. */
void repl_completion_init(lua_State *L);
/* The candidates for the word `text` (e.g. "sw.pro", "t:na"), each a full
 * replacement for it; the caller frees each string and the array. Never
 * runs user code. Shared by readline and the Jupyter kernel. */
char **repl_complete_candidates(lua_State *L, const char *text, size_t *n);
/* Push the value at a dotted path the way completion walks it, or nil. */
void repl_complete_push_path(lua_State *L, const char *path, size_t len);

struct lsw_cell;
/* Compile `return <code>` (leaving the function on the stack): whether the
 * code is a bare expression whose values should be shown. */
bool repl_try_expression(lua_State *L, const char *code, const char *name);
/* Run one cell as the REPL and the kernel do: as an expression if it is one
 * (*expr set, echoing on), else as statements; the cell's cost measurement
 * starts in *cell. Values or the error message are left on the stack. */
int  repl_run_cell(lua_State *L, const char *code, const char *name, bool *expr, struct lsw_cell *cell);

/* Print the cost line for a finished cell if profiling is on. */
void repl_print_cost(const struct lsw_cell *c, bool color);

#endif
