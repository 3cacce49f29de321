/* optim.c (lua) — stepwise.Optimizer: sw.optimizer(lora, opts) with
 * :clip(max_norm) and :update(lr); sw.lr_factor(schedule, step, warmup,
 * total). The trainer drives these itself; they are exposed so a step can
 * also be written out by hand, cell by cell. */
#include <string.h>

#include "core/optim.h"
#include "lsw.h"

#define LSW_OPTIM "stepwise.Optimizer"

sw_optim *lsw_check_optim(lua_State *L, int idx) { return lsw_check_object(L, idx, LSW_OPTIM, "Optimizer"); }

static const char *const optim_opts[] = {"name", "betas", "eps", "weight_decay", "momentum", NULL};

/* Reads an optimizer description from the options table at idx. */
void lsw_optim_opts(lua_State *L, int idx, const char *fn, sw_optim_opts *o) {
    const char *name = lsw_opt_string(L, idx, fn, "name", "adamw");
    memset(o, 0, sizeof *o);
    if (!strcmp(name, "adamw") || !strcmp(name, "adamw_torch")) o->kind = SW_OPTIM_ADAMW;
    else if (!strcmp(name, "sgd")) o->kind = SW_OPTIM_SGD;
    else luaL_error(L, "%s: unknown optimizer '%s' (adamw, sgd)", fn, name);
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    if (!lua_isnoneornil(L, idx) && lua_getfield(L, idx, "betas") != LUA_TNIL) {
        if (!lua_istable(L, -1) || luaL_len(L, -1) != 2) luaL_error(L, "%s: betas must be {beta1, beta2}", fn);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        o->beta1 = luaL_checknumber(L, -2);
        o->beta2 = luaL_checknumber(L, -1);
        lua_pop(L, 2);
    }
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    o->eps = lsw_opt_number(L, idx, fn, "eps", 1e-8);
    o->weight_decay = lsw_opt_number(L, idx, fn, "weight_decay", 0.0);
    o->momentum = lsw_opt_number(L, idx, fn, "momentum", 0.0);
}

static int o_new(lua_State *L) {
    sw_lora *l = lsw_check_object(L, 1, "stepwise.LoRA", "LoRA");
    lsw_opts_check(L, 2, "sw.optimizer", optim_opts);
    sw_optim_opts o;
    lsw_optim_opts(L, 2, "sw.optimizer", &o);
    void **slot = lsw_new_object(L, LSW_OPTIM);
    lua_pushvalue(L, 1); /* keep the adapter (and its tensors) alive */
    lua_setiuservalue(L, -2, 1);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_optim *opt;
    lsw_check(L, &ctx, sw_optim_new(&ctx, l, &o, &opt));
    *slot = opt;
    return 1;
}

/* The adapter must still be alive: its tensors are the optimizer's. */
static sw_optim *live(lua_State *L) {
    sw_optim *opt = lsw_check_optim(L, 1);
    lua_getiuservalue(L, 1, 1);
    lsw_check_object(L, -1, "stepwise.LoRA", "LoRA (of this optimizer)");
    lua_pop(L, 1);
    return opt;
}

static int o_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_OPTIM);
    sw_optim_free(*slot);
    *slot = NULL;
    return 0;
}

/* opt:clip(max_norm) -> the gradient norm before clipping */
static int o_clip(lua_State *L) {
    sw_optim *opt = live(L);
    double max_norm = luaL_optnumber(L, 2, 0.0);
    double norm = sw_optim_grad_norm(opt);
    sw_optim_clip(opt, max_norm, norm);
    lua_pushnumber(L, norm);
    return 1;
}

static int o_update(lua_State *L) {
    sw_optim *opt = live(L);
    double lr = luaL_checknumber(L, 2);
    int64_t bad = sw_optim_first_nonfinite(opt);
    if (bad >= 0) return luaL_error(L, "Optimizer:update: gradient of %s is not finite; nothing was changed", opt->names[bad]);
    sw_optim_update(opt, lr);
    return 0;
}

static int o_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_optim *opt = lsw_check_optim(L, 1);
    if (!strcmp(k, "step")) lua_pushinteger(L, opt->step);
    else return lsw_no_field(L, 1, "Optimizer", k);
    return 1;
}

/* sw.lr_factor("cosine" | "linear" | "constant", step, warmup, total) */
static int lr_factor(lua_State *L) {
    const char *s = luaL_checkstring(L, 1);
    sw_schedule sc = SW_SCHED_CONSTANT;
    if (!strcmp(s, "cosine")) sc = SW_SCHED_COSINE;
    else if (!strcmp(s, "linear")) sc = SW_SCHED_LINEAR;
    else if (strcmp(s, "constant")) return luaL_error(L, "sw.lr_factor: unknown schedule '%s' (constant, linear, cosine)", s);
    lua_pushnumber(L, sw_schedule_factor(sc, luaL_checkinteger(L, 2), luaL_checkinteger(L, 3), luaL_checkinteger(L, 4)));
    return 1;
}

static const luaL_Reg methods[] = {{"clip", o_clip}, {"update", o_update}, {"free", o_gc}, {NULL, NULL}};
static const luaL_Reg metamethods[] = {{"__gc", o_gc}, {"__close", o_gc}, {"__index", o_index}, {NULL, NULL}};
static const char *const fields[] = {"step", NULL};
static const luaL_Reg functions[] = {{"optimizer", o_new}, {"lr_factor", lr_factor}, {NULL, NULL}};

void lsw_open_optim(lua_State *L) {
    lsw_new_class(L, LSW_OPTIM, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0);
}
