/* trainer.c (lua) — stepwise.Trainer: sw.trainer(model, ds, opts),
 * tr:step(), tr:run{steps = n}, tr:eval(), tr.history, tr:save(dir) and
 * sw.resume(dir, model, ds, opts).
 *
 * User values: 1 = {model=, data=, eval=, adapter=} kept alive while the
 * trainer is, 2 = the history list (one table per step).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/interrupt.h"
#include "core/trainer.h"
#include "lsw.h"

#define LSW_TRAINER "stepwise.Trainer"

sw_model *lsw_check_model(lua_State *L, int idx);
void lsw_optim_opts(lua_State *L, int idx, const char *fn, sw_optim_opts *o);

static const char *const trainer_opts[] = {"batch", "accum", "lr", "schedule", "warmup", "warmup_ratio", "optim",
                                           "betas", "eps", "weight_decay", "momentum", "max_grad_norm", "max_steps",
                                           "epochs", "seed", "packing", "shuffle", "checkpointing", "eval",
                                           "eval_every", "quiet", "gpus", "zero", "bucket_mb", NULL};

static sw_trainer *check_trainer(lua_State *L, int idx) { return lsw_check_object(L, idx, LSW_TRAINER, "Trainer"); }

static void kept(lua_State *L, int tr_idx, const char *key) {
    lua_getiuservalue(L, tr_idx, 1);
    lua_getfield(L, -1, key);
    lua_remove(L, -2);
}

/* Every object the trainer borrows must still be alive. */
static sw_trainer *live(lua_State *L, int idx) {
    sw_trainer *tr = check_trainer(L, idx);
    kept(L, idx, "model");
    lsw_check_model(L, -1);
    kept(L, idx, "data");
    lsw_check_dataset(L, -1);
    kept(L, idx, "adapter");
    lsw_check_object(L, -1, "stepwise.LoRA", "LoRA (the trainer's adapter)");
    lua_pop(L, 3);
    return tr;
}

static int dataset_packing(lua_State *L) {
    lua_getfield(L, 1, "packing");
    return 1;
}

static sw_schedule parse_schedule(lua_State *L, const char *fn, const char *s) {
    if (!strcmp(s, "cosine")) return SW_SCHED_COSINE;
    if (!strcmp(s, "linear")) return SW_SCHED_LINEAR;
    if (!strcmp(s, "constant")) return SW_SCHED_CONSTANT;
    luaL_error(L, "%s: unknown schedule '%s' (constant, linear, cosine)", fn, s);
    return SW_SCHED_CONSTANT;
}

/* Options table at idx -> sw_trainer_opts (the defaults are TRL's SFT ones
 * where stepwise has no better reason). */
static void read_opts(lua_State *L, int idx, int ds_idx, const char *fn, sw_trainer_opts *o) {
    lsw_opts_check(L, idx, fn, trainer_opts);
    memset(o, 0, sizeof *o);
    o->batch = lsw_opt_integer(L, idx, fn, "batch", 2);
    o->accum = lsw_opt_integer(L, idx, fn, "accum", 4);
    o->lr = lsw_opt_number(L, idx, fn, "lr", 2e-4);
    o->schedule = parse_schedule(L, fn, lsw_opt_string(L, idx, fn, "schedule", "linear"));
    o->warmup_steps = lsw_opt_integer(L, idx, fn, "warmup", 0);
    o->warmup_ratio = lsw_opt_number(L, idx, fn, "warmup_ratio", 0.0);
    /* optim = "adamw" | "sgd"; the rest of its settings sit beside it */
    lua_newtable(L);
    int t = lua_gettop(L);
    static const char *const keys[] = {"betas", "eps", "weight_decay", "momentum"};
    if (!lua_isnoneornil(L, idx)) {
        for (int i = 0; i < 4; i++) {
            lua_getfield(L, idx, keys[i]);
            lua_setfield(L, t, keys[i]);
        }
        lua_getfield(L, idx, "optim");
        lua_setfield(L, t, "name");
    }
    lsw_optim_opts(L, t, fn, &o->optim);
    lua_pop(L, 1);
    o->max_grad_norm = lsw_opt_number(L, idx, fn, "max_grad_norm", 1.0);
    o->max_steps = lsw_opt_integer(L, idx, fn, "max_steps", 0);
    o->epochs = lsw_opt_number(L, idx, fn, "epochs", o->max_steps > 0 ? 0 : 1);
    o->seed = (uint64_t)lsw_opt_integer(L, idx, fn, "seed", 3407);
    bool packing = false;
    lua_pushcfunction(L, dataset_packing);
    lua_pushvalue(L, ds_idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) packing = lua_toboolean(L, -1);
    lua_pop(L, 1);
    o->packing = lsw_opt_bool(L, idx, fn, "packing", packing);
    o->shuffle = lsw_opt_bool(L, idx, fn, "shuffle", 1);
    /* checkpointing = true recomputes each layer in the backward; "offload"
     * also keeps the saved layer inputs in pinned host memory (device only) */
    if (lua_istable(L, idx) && (lua_getfield(L, idx, "checkpointing"), lua_type(L, -1)) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (strcmp(s, "offload"))
            luaL_error(L, "%s: option 'checkpointing' must be true, false or \"offload\", got \"%s\"", fn, s);
        o->checkpointing = o->offload = true;
        lua_pop(L, 1);
        return;
    }
    if (lua_istable(L, idx)) lua_pop(L, 1);
    o->checkpointing = lsw_opt_bool(L, idx, fn, "checkpointing", 0);
}

/* gpus = N (data parallel over this session's N ranks), zero = 0 | 1
 * (ZeRO-1: the optimizer update sharded), bucket_mb (all-reduce buckets). */
static void read_dist_opts(lua_State *L, int idx, const char *fn, const sw_model *m, sw_trainer_opts *o) {
    lua_Integer gpus = lsw_opt_integer(L, idx, fn, "gpus", 1);
    lua_Integer zero = lsw_opt_integer(L, idx, fn, "zero", 0);
    lua_Number mb = lsw_opt_number(L, idx, fn, "bucket_mb", 0);
    if (gpus < 1) luaL_error(L, "%s: option 'gpus' must be at least 1, got %d", fn, (int)gpus);
    if (zero != 0 && zero != 1) luaL_error(L, "%s: option 'zero' must be 0 or 1 (ZeRO-1), got %d", fn, (int)zero);
    if (mb < 0 || mb > 4096) luaL_error(L, "%s: option 'bucket_mb' must be within 0..4096, got %g", fn, mb);
    o->zero1 = zero == 1;
    o->bucket_bytes = (size_t)(mb * 1048576.0);
    o->dist = NULL;
    if (gpus > 1) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (lsw_ranks_dist(&ctx, (int)gpus, m, &o->dist)) luaL_error(L, "%s: %s", fn, ctx.msg);
    }
}

static void new_trainer(lua_State *L, int model_idx, int ds_idx, int opts_idx, const char *fn) {
    sw_model *m = lsw_check_model(L, model_idx);
    sw_dataset *ds = lsw_check_dataset(L, ds_idx);
    sw_trainer_opts o;
    read_opts(L, opts_idx, ds_idx, fn, &o);
    read_dist_opts(L, opts_idx, fn, m, &o);
    int eval_every = 0;
    if (!lua_isnoneornil(L, opts_idx)) {
        lua_getfield(L, opts_idx, "eval");
        if (!lua_isnil(L, -1)) lsw_check_dataset(L, -1);
        lua_pop(L, 1);
        eval_every = (int)lsw_opt_integer(L, opts_idx, fn, "eval_every", 0);
    }
    if (!m->lora) luaL_error(L, "%s: the model has no active adapter; add one with model:lora{...}", fn);
    void **slot = lsw_new_object(L, LSW_TRAINER);
    int tr = lua_gettop(L);
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, model_idx);
    lua_setfield(L, -2, "model");
    lua_pushvalue(L, ds_idx);
    lua_setfield(L, -2, "data");
    if (!lua_isnoneornil(L, opts_idx)) {
        lua_getfield(L, opts_idx, "eval");
        lua_setfield(L, -2, "eval");
        lua_pushboolean(L, lsw_opt_bool(L, opts_idx, fn, "quiet", 0));
        lua_setfield(L, -2, "quiet");
    }
    lua_pushinteger(L, eval_every);
    lua_setfield(L, -2, "eval_every");
    /* the active adapter object, from the model's adapter table */
    lua_getiuservalue(L, model_idx, 2);
    if (lua_istable(L, -1)) lua_getfield(L, -1, m->lora->name);
    else lua_pushnil(L);
    lua_setfield(L, -3, "adapter");
    lua_pop(L, 1);
    lua_setiuservalue(L, tr, 1);
    lua_newtable(L);
    lua_setiuservalue(L, tr, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_trainer *t;
    if (sw_trainer_new(&ctx, m, ds, &o, &t)) luaL_error(L, "%s: %s", fn, ctx.msg);
    *slot = t;
}

/* sw.trainer(model, ds, opts) */
static int t_new(lua_State *L) {
    lua_settop(L, 3);
    new_trainer(L, 1, 2, 3, "sw.trainer");
    return 1;
}

static int t_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TRAINER);
    sw_trainer_free(*slot);
    *slot = NULL;
    return 0;
}

static void set_num(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void push_stats(lua_State *L, const sw_step_stats *s) {
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, s->step);
    lua_setfield(L, -2, "step");
    set_num(L, "loss", s->loss);
    set_num(L, "lr", s->lr);
    set_num(L, "grad_norm", s->grad_norm);
    lua_pushinteger(L, s->tokens);
    lua_setfield(L, -2, "tokens");
    lua_pushinteger(L, s->trained);
    lua_setfield(L, -2, "trained_tokens");
    set_num(L, "seconds", s->seconds);
    set_num(L, "tokens_per_s", s->tokens_per_s);
    lua_pushinteger(L, (lua_Integer)s->mem_now);
    lua_setfield(L, -2, "mem");
    lua_pushinteger(L, (lua_Integer)s->mem_peak);
    lua_setfield(L, -2, "mem_peak");
    lua_pushboolean(L, s->skipped);
    lua_setfield(L, -2, "skipped");
    if (s->skipped) {
        lua_pushstring(L, s->why);
        lua_setfield(L, -2, "why");
    }
}

static void print_step(const sw_trainer *tr, const sw_step_stats *s) {
    char now[24], peak[24];
    if (s->skipped) {
        printf("step %lld/%lld skipped: %s\n", (long long)s->step, (long long)tr->total_steps, s->why);
    } else {
        printf("step %lld/%lld | loss %.4f | lr %.3g | grad norm %.3f | %.0f tokens/s | mem %s (peak %s)\n",
               (long long)s->step, (long long)tr->total_steps, s->loss, s->lr, s->grad_norm, s->tokens_per_s,
               lsw_format_bytes((double)s->mem_now, now, sizeof now), lsw_format_bytes((double)s->mem_peak, peak, sizeof peak));
    }
    fflush(stdout);
}

/* One step; pushes its stats table and appends it to the history.
 * Returns the status (SW_EINTR: nothing changed). */
static sw_status one_step(lua_State *L, int idx, sw_ctx *ctx, sw_step_stats *s) {
    sw_trainer *tr = live(L, idx);
    sw_status st = sw_trainer_step(ctx, tr, s);
    if (st) return st;
    push_stats(L, s);
    lua_getiuservalue(L, idx, 2);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    lua_pop(L, 1);
    return SW_OK;
}

static int t_eval_impl(lua_State *L, int idx, int ds_idx);

static void maybe_eval(lua_State *L, int idx, int64_t step) {
    kept(L, idx, "eval_every");
    lua_Integer every = lua_tointeger(L, -1);
    lua_pop(L, 1);
    kept(L, idx, "eval");
    bool have = !lua_isnil(L, -1);
    int ds = lua_gettop(L);
    if (have && every > 0 && step % every == 0) {
        t_eval_impl(L, idx, ds);
        lua_getfield(L, -1, "loss");
        double loss = lua_tonumber(L, -1);
        printf("eval at step %lld | loss %.4f | perplexity %.3f\n", (long long)step, loss, exp(loss));
        fflush(stdout);
        /* record it on the step's history entry (top of history) */
        lua_getiuservalue(L, idx, 2);
        lua_geti(L, -1, luaL_len(L, -1));
        lua_pushnumber(L, loss);
        lua_setfield(L, -2, "eval_loss");
        lua_pop(L, 4);
    }
    lua_settop(L, ds - 1);
}

static bool quiet(lua_State *L, int idx) {
    kept(L, idx, "quiet");
    bool q = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return q;
}

/* tr:step() -> stats: one optimizer step (batch x accum micro-batches). */
static int t_step(lua_State *L) {
    lua_settop(L, 1);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_step_stats s;
    lsw_check(L, &ctx, one_step(L, 1, &ctx, &s));
    if (!quiet(L, 1)) print_step(check_trainer(L, 1), &s);
    maybe_eval(L, 1, s.step);
    return 1;
}

/* The front end's progress hook: sw._progress(text, final) when it is a
 * function (the Jupyter kernel sets it to update one display in place). */
static bool progress_hook(lua_State *L) {
    int top = lua_gettop(L);
    lua_getglobal(L, "sw");
    bool f = lua_istable(L, -1) && lua_getfield(L, -1, "_progress") == LUA_TFUNCTION;
    lua_settop(L, top);
    return f;
}

static void progress_call(lua_State *L, const char *text, bool final) {
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "_progress");
    lua_remove(L, -2);
    lua_pushstring(L, text);
    lua_pushboolean(L, final);
    lua_call(L, 2, 0);
}

/* tr:run{steps = n}: a progress line per step (rewritten in place on a
 * terminal). With a progress hook the same line goes to the hook instead,
 * at most ten times a second (a notebook redraws on every message), and the
 * last one always. Ctrl-C stops it after the current step; pressed twice,
 * the current step is abandoned and everything is as after the last one. */
static int t_run(lua_State *L) {
    sw_trainer *tr = live(L, 1);
    static const char *const keys[] = {"steps", NULL};
    lsw_opts_check(L, 2, "Trainer:run", keys);
    lua_Integer n = lsw_opt_integer(L, 2, "Trainer:run", "steps", tr->total_steps - tr->step);
    if (n < 0) return luaL_error(L, "Trainer:run: steps must be >= 0");
    lua_settop(L, 1);
    bool hook = progress_hook(L), tty = !hook && isatty(STDOUT_FILENO), q = quiet(L, 1);
    double t0 = lsw_now(), last_sent = -1;
    char line[256] = "";
    bool final_sent = false;
    lua_Integer done = 0;
    const char *stopped = NULL;
    sw_step_stats s = {0};
    for (; done < n; done++) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        /* A Ctrl-C lets the running step finish, then stops; a second one
         * abandons the step (which then changes nothing). */
        sw_interrupt_defer(true);
        sw_status st = one_step(L, 1, &ctx, &s);
        sw_interrupt_defer(false);
        if (st == SW_EINTR) {
            stopped = "interrupted";
            break;
        }
        if (st) {
            if (tty && !q) printf("\n");
            lsw_check(L, &ctx, st);
        }
        lua_pop(L, 1);
        if (!q) {
            double el = lsw_now() - t0, eta = el / (double)(done + 1) * (double)(n - done - 1);
            int width = 24, fill = (int)((done + 1) * width / n);
            char bar[32];
            for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : ' ';
            bar[width] = '\0';
            snprintf(line, sizeof line, "[%s] %lld/%lld | loss %.4f | lr %.3g | %.0f tok/s | eta %.0fs", bar,
                     (long long)(done + 1), (long long)n, s.loss, s.lr, s.tokens_per_s, eta);
            if (hook) {
                double now = lsw_now();
                if (done + 1 == n || now - last_sent >= 0.1) {
                    final_sent = done + 1 == n;
                    progress_call(L, line, final_sent);
                    last_sent = now;
                }
            } else if (tty) printf("\r%s   ", line);
            else print_step(tr, &s);
            fflush(stdout);
        }
        maybe_eval(L, 1, s.step);
        if (sw_interrupted()) {
            stopped = "interrupted";
            done++;
            break;
        }
    }
    if (stopped) { /* leave the REPL's Ctrl-C hook and flag behind us */
        sw_interrupt_clear();
        lua_sethook(L, NULL, 0, 0);
    }
    if (hook && line[0] && !final_sent) progress_call(L, line, true); /* stopped early: the last step's line */
    if (tty && !q) printf("\n");
    if (!q) {
        printf("%s after %lld step(s) in %.1fs; trainer at step %lld/%lld\n", stopped ? "stopped (Ctrl-C)" : "done",
               (long long)done, lsw_now() - t0, (long long)tr->step, (long long)tr->total_steps);
        fflush(stdout);
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, done);
    lua_setfield(L, -2, "steps");
    lua_pushboolean(L, stopped != NULL);
    lua_setfield(L, -2, "interrupted");
    set_num(L, "loss", s.loss);
    return 1;
}

static int t_eval_impl(lua_State *L, int idx, int ds_idx) {
    sw_model *m = check_trainer(L, idx)->m;
    sw_dataset *ds = lsw_check_dataset(L, ds_idx);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    double loss;
    int64_t n;
    lsw_check(L, &ctx, sw_trainer_eval(&ctx, m, ds, 4, &loss, &n));
    lua_createtable(L, 0, 3);
    set_num(L, "loss", loss);
    set_num(L, "perplexity", exp(loss));
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "tokens");
    return 1;
}

/* tr:eval([ds]) -> {loss, perplexity, tokens} on ds or the eval set. */
static int t_eval(lua_State *L) {
    live(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        kept(L, 1, "eval");
        if (lua_isnil(L, -1)) return luaL_error(L, "Trainer:eval: no eval dataset (pass one, or sw.trainer{eval = ds})");
    }
    return t_eval_impl(L, 1, 2);
}

static int t_save(lua_State *L) {
    sw_trainer *tr = live(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (sw_trainer_save(&ctx, tr, dir)) return luaL_error(L, "Trainer:save: %s", ctx.msg);
    lua_settop(L, 1);
    return 1;
}

/* sw.resume(dir, model, ds [, opts]): the adapter from dir/adapter becomes
 * the model's active one, the trainer takes dir's options (opts may add
 * eval, eval_every, quiet) and continues at the saved step and cursor. */
static int t_resume(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lsw_check_model(L, 2);
    lsw_check_dataset(L, 3);
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer.json", dir);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) return luaL_error(L, "sw.resume: %s: %s", p, je.text);
    json_t *o = json_object_get(j, "options");
    const char *aname = json_string_value(json_object_get(j, "adapter_name"));
    /* options table rebuilt from the checkpoint */
    lua_newtable(L);
    int opts = lua_gettop(L);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!strcmp(k, "beta1") || !strcmp(k, "beta2")) continue;
        if (json_is_integer(v)) lua_pushinteger(L, json_integer_value(v));
        else if (json_is_real(v)) lua_pushnumber(L, json_real_value(v));
        else if (json_is_boolean(v)) lua_pushboolean(L, json_is_true(v));
        else if (json_is_string(v)) lua_pushstring(L, json_string_value(v));
        else continue;
        lua_setfield(L, opts, !strcmp(k, "max_steps") ? "max_steps" : k);
    }
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, json_real_value(json_object_get(o, "beta1")));
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, json_real_value(json_object_get(o, "beta2")));
    lua_rawseti(L, -2, 2);
    lua_setfield(L, opts, "betas");
    /* a checkpoint of N ranks resumes on M: the step keeps its micro-batches
     * (accum x gpus), so accum becomes accum N / M */
    lua_Integer saved_gpus = 1, want_gpus = 1;
    lua_getfield(L, opts, "gpus");
    if (lua_isinteger(L, -1)) saved_gpus = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, opts, "gpus");
    if (lua_istable(L, 4)) {
        static const char *const extra[] = {"eval", "eval_every", "quiet", "gpus", "zero", "bucket_mb"};
        for (int i = 0; i < 6; i++) {
            lua_getfield(L, 4, extra[i]);
            lua_setfield(L, opts, extra[i]);
        }
        /* read without raising: j is still held; new_trainer checks the type */
        lua_getfield(L, 4, "gpus");
        if (lua_isinteger(L, -1)) want_gpus = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (saved_gpus != want_gpus) {
        lua_getfield(L, opts, "accum");
        lua_Integer total = lua_tointeger(L, -1) * saved_gpus;
        lua_pop(L, 1);
        if (want_gpus < 1 || total % want_gpus) {
            json_decref(j);
            return luaL_error(L, "sw.resume: option 'gpus' = %d does not divide the checkpoint's %d micro-batches per step",
                              (int)want_gpus, (int)total);
        }
        lua_pushinteger(L, total / want_gpus);
        lua_setfield(L, opts, "accum");
    }
    /* the adapter: loaded from the checkpoint, replacing one of that name */
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "load_adapter");
    lua_pushvalue(L, 2);
    snprintf(p, sizeof p, "%s/adapter", dir);
    lua_pushstring(L, p);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, aname ? aname : "default");
    lua_setfield(L, -2, "name");
    json_decref(j);
    lua_call(L, 3, 1);
    lua_pop(L, 2); /* adapter (kept by the model), sw */
    new_trainer(L, 2, 3, opts, "sw.resume");
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (sw_trainer_restore(&ctx, check_trainer(L, -1), dir)) return luaL_error(L, "sw.resume: %s", ctx.msg);
    return 1;
}

static int t_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_trainer *tr = check_trainer(L, 1);
    if (!strcmp(k, "history")) lua_getiuservalue(L, 1, 2);
    else if (!strcmp(k, "global_step")) lua_pushinteger(L, tr->step);
    else if (!strcmp(k, "total_steps")) lua_pushinteger(L, tr->total_steps);
    else if (!strcmp(k, "epoch")) lua_pushinteger(L, tr->cursor.epoch);
    else if (!strcmp(k, "cursor")) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, tr->cursor.epoch);
        lua_setfield(L, -2, "epoch");
        lua_pushinteger(L, tr->cursor.index);
        lua_setfield(L, -2, "index");
    } else return lsw_no_field(L, 1, "Trainer", k);
    return 1;
}

static int t_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TRAINER);
    if (!*slot) {
        lua_pushliteral(L, "Trainer (freed)");
        return 1;
    }
    sw_trainer *tr = *slot;
    lua_pushfstring(L, "Trainer: step %d/%d, batch %d x accum %d, lr %f, %s%s%s", (int)tr->step, (int)tr->total_steps,
                    (int)tr->o.batch, (int)tr->o.accum, tr->o.lr, tr->o.optim.kind == SW_OPTIM_SGD ? "sgd" : "adamw",
                    tr->o.packing ? ", packing" : "", tr->o.offload ? ", checkpointing offloaded" : tr->o.checkpointing ? ", checkpointing" : "");
    return 1;
}

static const luaL_Reg methods[] = {{"step", t_step}, {"run", t_run},   {"eval", t_eval},
                                   {"save", t_save}, {"free", t_gc},   {NULL, NULL}};
static const luaL_Reg metamethods[] = {{"__gc", t_gc}, {"__close", t_gc}, {"__index", t_index},
                                       {"__tostring", t_tostring}, {NULL, NULL}};
static const char *const fields[] = {"history", "global_step", "total_steps", "epoch", "cursor", NULL};
static const luaL_Reg functions[] = {{"trainer", t_new}, {"resume", t_resume}, {NULL, NULL}};

void lsw_open_trainer(lua_State *L) {
    lsw_new_class(L, LSW_TRAINER, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0);
}
