/* lsw.h — what the Lua binding files share, and what the front ends call.
 *
 * Only files in lua/ raise Lua errors; the core reports through sw_ctx and
 * lsw_check() converts. Front ends (repl/, jupyter/) drive one lua_State
 * through the functions at the bottom and never touch the core directly.
 */
#ifndef LSW_H
#define LSW_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/ctx.h"
#include "core/device.h"
#include "core/mem.h"
#include "core/tensor.h"
#include "core/tokenizer.h"

#define LSW_TENSOR "stepwise.Tensor"
#define LSW_TOKENIZER "stepwise.Tokenizer"

/* Raise a Lua error carrying ctx's message unless status is SW_OK. */
void lsw_check(lua_State *L, sw_ctx *ctx, sw_status s);

/* Options tables. Raises "<fn>: unknown option 'devcie' (did you mean
 * 'device'?)" for a key not in `allowed` (NULL-terminated), and "<fn>:
 * option 'x' must be a ..." for a wrong type. idx may be absent or nil. */
void        lsw_opts_check(lua_State *L, int idx, const char *fn, const char *const *allowed);
const char *lsw_opt_string(lua_State *L, int idx, const char *fn, const char *key, const char *def);
lua_Number  lsw_opt_number(lua_State *L, int idx, const char *fn, const char *key, lua_Number def);
lua_Integer lsw_opt_integer(lua_State *L, int idx, const char *fn, const char *key, lua_Integer def);
int         lsw_opt_bool(lua_State *L, int idx, const char *fn, const char *key, int def);
/* The closest of `names` to `word` within a small edit distance, or NULL. */
const char *lsw_suggest(const char *word, const char *const *names);

/* Metatable set-up shared by every class: methods + getters for completion.
 * `fields` lists property names that __index computes. */
void lsw_new_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods, const char *const *fields);
/* Error for an unknown property of the object at idx, with a suggestion. */
int lsw_no_field(lua_State *L, int idx, const char *cls, const char *key);
/* Push a new userdata of class tname holding ptr (which may be NULL for a
 * closed object about to be filled in). Returns the slot. */
void **lsw_new_object(lua_State *L, const char *tname);
/* The live object pointer or a clear error for a freed one / wrong type. */
void *lsw_check_object(lua_State *L, int idx, const char *tname, const char *what);

/* Per-class openers (each registers its metatable and functions into sw). */
void lsw_open_tensor(lua_State *L);
void lsw_open_mem(lua_State *L);
void lsw_open_model(lua_State *L);
void lsw_open_lora(lua_State *L); /* after lsw_open_model */
void lsw_open_optim(lua_State *L);
void lsw_open_tokenizer(lua_State *L);
sw_tokenizer *lsw_check_tokenizer(lua_State *L, int idx);
void          lsw_push_tokenizer(lua_State *L, sw_tokenizer *t); /* takes ownership */
void lsw_open_bench(lua_State *L);
void lsw_open_dataset(lua_State *L);
struct sw_dataset *lsw_check_dataset(lua_State *L, int idx);
void lsw_open_trainer(lua_State *L);
void lsw_open_gguf(lua_State *L);
void lsw_open_safetensors(lua_State *L);
void lsw_open_chat(lua_State *L);
sw_tensor *lsw_check_tensor(lua_State *L, int idx);
void       lsw_push_tensor(lua_State *L, sw_tensor *t); /* takes ownership */

/* ---- for the front ends -------------------------------------------------- */

/* A fresh state with the standard libraries, the global `sw` and the prelude.
 * NULL (with a message on stderr) if the prelude fails to load. */
/* Several GPUs (lua/ranks.c): rank 0 starts the workers and forwards each
 * cell (begin before running it, end after: returns the workers that
 * failed, their errors printed); a worker runs the cells it is sent. */
int  lsw_ranks_launch(int world, const char *exe);
void lsw_ranks_begin(const char *code, size_t len, const char *name);
int  lsw_ranks_end(bool ok);
void lsw_ranks_shutdown(void);
int  lsw_ranks_worker_main(int rank, int world, int fd);
int  lsw_ranks_rank(void);
int  lsw_ranks_world(void);
struct sw_dist;
/* The session's communicator for a trainer of `gpus` ranks on m's device. */
struct sw_model;
sw_status lsw_ranks_dist(sw_ctx *ctx, int gpus, const struct sw_model *m, struct sw_dist **out);
void lsw_open_ranks(lua_State *L);

lua_State *lsw_newstate(void);
int        luaopen_sw(lua_State *L);

/* Per-cell cost report: wall time and memory by device and category. */
typedef struct lsw_cell {
    double t0;
    sw_mem_stats before[SW_MAX_DEVICES];
} lsw_cell;
void lsw_cell_begin(lsw_cell *c);
/* One line, no newline: "0.42 s | cpu 8.0 MiB (peak 16.0 MiB, +8.0 MiB: workspace +8.0 MiB) | rss 45 MiB" */
void lsw_cell_report(const lsw_cell *c, char *buf, size_t n);
bool lsw_profile_enabled(void);
void lsw_profile_set(bool on);
/* Set while a front end evaluates an expression whose value it will display,
 * so functions that print their result (sw.mem) leave the printing to it. */
void lsw_set_echoing(bool on);
bool lsw_echoing(void);
/* The device sw.load uses when a call names none (`stepwise --device`):
 * cpu, cuda, cuda:N or emulate. false (nothing changed) for another name.
 * Unset, it is $STEPWISE_DEVICE or "cpu". */
bool        lsw_set_default_device(const char *name);
const char *lsw_default_device(void);
/* "1.5 GiB", "12.0 MiB", "512 B" */
const char *lsw_format_bytes(double bytes, char *buf, size_t n);
/* Monotonic seconds. */
double lsw_now(void);
/* `stepwise --to-ipynb FILE.lua [-o OUT.ipynb]`, given the arguments after
 * the flag; returns the exit code. */
int lsw_to_ipynb_main(int argc, char **argv);

#endif
