/* lora.c (lua) — stepwise.LoRA: model:lora{...}, sw.load_adapter, saving,
 * switching adapters, and model:loss (one forward/backward from Lua).
 *
 * A model keeps its adapters by name in its user value 2, so they live as
 * long as it does; each adapter keeps its model in its user value 1. The
 * core model points at the active adapter (m->lora) without owning it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/adapter.h"
#include "core/gpu.h"
#include "core/train.h"
#include "lsw.h"

#define LSW_LORA "stepwise.LoRA"

sw_model *lsw_check_model(lua_State *L, int idx);

static sw_lora *check_lora(lua_State *L, int idx) { return lsw_check_object(L, idx, LSW_LORA, "LoRA"); }

/* The adapter's model, checked alive (pushes nothing). */
static sw_model *lora_model(lua_State *L, int idx) {
    lua_getiuservalue(L, idx, 1);
    void **slot = luaL_testudata(L, -1, "stepwise.Model");
    lua_pop(L, 1);
    if (!slot || !*slot) luaL_error(L, "this LoRA's model has been freed");
    return *slot;
}

/* The model's device copy when it holds l (a trainer uploaded it): l's
 * gradients then live there, and the host tensors are stale. */
static sw_gpu *device_of(sw_model *m, const sw_lora *l) {
    return m->gpu && sw_gpu_mirrors(m->gpu, l) ? m->gpu : NULL;
}

/* Push the model's adapter table (created on first use). */
static void adapters_of(lua_State *L, int model_idx) {
    model_idx = lua_absindex(L, model_idx);
    if (lua_getiuservalue(L, model_idx, 2) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, model_idx, 2);
    }
}

/* Wrap a new sw_lora for the model at model_idx: registers it by name,
 * replacing (and freeing) an adapter of the same name, and activates it. */
static void push_lora(lua_State *L, int model_idx, sw_lora *l) {
    model_idx = lua_absindex(L, model_idx);
    sw_model *m = lsw_check_model(L, model_idx);
    void **slot = lsw_new_object(L, LSW_LORA);
    *slot = l;
    lua_pushvalue(L, model_idx);
    lua_setiuservalue(L, -2, 1);
    adapters_of(L, model_idx);
    if (lua_getfield(L, -1, l->name) == LUA_TUSERDATA) { /* re-running the cell replaces it */
        void **old = luaL_testudata(L, -1, LSW_LORA);
        if (old && *old) {
            if (m->lora == *old) m->lora = NULL;
            sw_lora_free(*old);
            *old = NULL;
        }
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, l->name);
    lua_pop(L, 1);
    m->lora = l;
}

static const char *const lora_opts[] = {"r", "alpha", "dropout", "targets", "layers", "rslora", "init", "seed", "name", NULL};

/* model:lora{ r = 16, alpha = 16, dropout = 0, targets = {...}, layers = {...}, rslora = false,
 *             init = "peft" | "gaussian", seed = 3407, name = "default" } */
static int m_lora(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    const char *fn = "Model:lora";
    lsw_opts_check(L, 2, fn, lora_opts);
    sw_lora_opts o = {0};
    o.r = (int)lsw_opt_integer(L, 2, fn, "r", 16);
    o.alpha = lsw_opt_number(L, 2, fn, "alpha", o.r);
    o.dropout = lsw_opt_number(L, 2, fn, "dropout", 0.0);
    o.rslora = lsw_opt_bool(L, 2, fn, "rslora", 0);
    o.seed = (uint64_t)lsw_opt_integer(L, 2, fn, "seed", 3407);
    o.name = lsw_opt_string(L, 2, fn, "name", "default");
    if (strlen(o.name) >= 64) return luaL_error(L, "%s: name is longer than 63 bytes", fn);
    const char *init = lsw_opt_string(L, 2, fn, "init", "peft");
    if (!strcmp(init, "peft") || !strcmp(init, "kaiming")) o.init = SW_LORA_INIT_PEFT;
    else if (!strcmp(init, "gaussian")) o.init = SW_LORA_INIT_GAUSSIAN;
    else return luaL_error(L, "%s: init must be \"peft\" or \"gaussian\", got '%s'", fn, init);
    o.targets = (1u << SW_LORA_NTARGETS) - 1;
    if (!lua_isnoneornil(L, 2) && lua_getfield(L, 2, "targets") != LUA_TNIL) {
        if (!lua_istable(L, -1)) return luaL_error(L, "%s: targets must be a list of projection names", fn);
        o.targets = 0;
        for (lua_Integer i = 1; i <= luaL_len(L, -1); i++) {
            lua_geti(L, -1, i);
            const char *tn = lua_tostring(L, -1);
            int t = 0;
            while (t < SW_LORA_NTARGETS && (!tn || strcmp(tn, sw_lora_target_names[t]))) t++;
            if (t == SW_LORA_NTARGETS) {
                const char *hint = tn ? lsw_suggest(tn, (const char *const[]){"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                                                 "up_proj", "down_proj", NULL})
                                      : NULL;
                return luaL_error(L, "%s: unknown target '%s'%s%s%s (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)",
                                  fn, tn ? tn : "?", hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
            }
            o.targets |= 1u << t;
            lua_pop(L, 1);
        }
    }
    lua_settop(L, 2);
    bool *layers = NULL;
    if (!lua_isnoneornil(L, 2) && lua_getfield(L, 2, "layers") != LUA_TNIL) {
        if (!lua_istable(L, -1)) return luaL_error(L, "%s: layers must be a list of layer numbers (0-based, as HF names them)", fn);
        layers = lua_newuserdatauv(L, sizeof(bool) * (size_t)m->cfg.n_layers, 0);
        memset(layers, 0, sizeof(bool) * (size_t)m->cfg.n_layers);
        for (lua_Integer i = 1; i <= luaL_len(L, 3); i++) {
            lua_geti(L, 3, i);
            lua_Integer k = luaL_checkinteger(L, -1);
            if (k < 0 || k >= m->cfg.n_layers)
                return luaL_error(L, "%s: layer %d does not exist (0..%d)", fn, (int)k, (int)m->cfg.n_layers - 1);
            layers[k] = true;
            lua_pop(L, 1);
        }
        o.layers = layers;
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_lora *l;
    lsw_check(L, &ctx, sw_lora_new(&ctx, m, &o, &l));
    push_lora(L, 1, l);
    return 1;
}

/* sw.load_adapter(model, dir, {name = }) */
static int load_adapter(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    static const char *const keys[] = {"name", NULL};
    lsw_opts_check(L, 3, "sw.load_adapter", keys);
    const char *name = lsw_opt_string(L, 3, "sw.load_adapter", "name", "default");
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_lora *l;
    if (sw_adapter_load(&ctx, m, dir, name, &l)) return luaL_error(L, "sw.load_adapter: %s", ctx.msg);
    push_lora(L, 1, l);
    return 1;
}

static int l_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_LORA);
    if (!*slot) return 0;
    lua_getiuservalue(L, 1, 1);
    void **ms = luaL_testudata(L, -1, "stepwise.Model");
    if (ms && *ms && ((sw_model *)*ms)->lora == *slot) ((sw_model *)*ms)->lora = NULL;
    sw_lora_free(*slot);
    *slot = NULL;
    return 0;
}

static int l_free(lua_State *L) {
    sw_lora *l = check_lora(L, 1);
    lua_getiuservalue(L, 1, 1);
    if (lua_getiuservalue(L, -1, 2) == LUA_TTABLE) { /* forget it in the model's table */
        lua_pushnil(L);
        lua_setfield(L, -2, l->name);
    }
    lua_settop(L, 1);
    return l_gc(L);
}

static int l_save(lua_State *L) {
    sw_lora *l = check_lora(L, 1);
    sw_model *m = lora_model(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    static const char *const keys[] = {"base_model", NULL};
    lsw_opts_check(L, 3, "LoRA:save", keys);
    const char *base = lsw_opt_string(L, 3, "LoRA:save", "base_model", m->source);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (sw_adapter_save(&ctx, l, dir, base)) return luaL_error(L, "LoRA:save: %s", ctx.msg);
    lua_settop(L, 1);
    return 1;
}

static int l_enable(lua_State *L) {
    sw_lora *l = check_lora(L, 1);
    lora_model(L, 1)->lora = l;
    lua_settop(L, 1);
    return 1;
}

static int l_disable(lua_State *L) {
    sw_lora *l = check_lora(L, 1);
    sw_model *m = lora_model(L, 1);
    if (m->lora == l) m->lora = NULL;
    lua_settop(L, 1);
    return 1;
}

static int l_zero_grad(lua_State *L) {
    sw_lora *l = check_lora(L, 1);
    sw_lora_zero_grad(l);
    sw_gpu *g = device_of(lora_model(L, 1), l);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (g) lsw_check(L, &ctx, sw_gpu_zero_grad(&ctx, g));
    return 0;
}

/* A table of PEFT name -> copy of A/B (which = 0) or of their gradients.
 * Gradients of an adapter that trains on a device come from the device:
 * that is where the last step (or model:loss) put them. The host keeps the
 * parameters current after every step, so weights need no download. */
static int named_tensors(lua_State *L, bool grads) {
    sw_lora *l = check_lora(L, 1);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gpu *g = grads ? device_of(lora_model(L, 1), l) : NULL;
    if (g) lsw_check(L, &ctx, sw_gpu_download(&ctx, g, l, true));
    lua_newtable(L);
    for (int64_t i = 0; i < l->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            sw_lora_pair *p = &l->pairs[i][t];
            if (!p->A) continue;
            for (int k = 0; k < 2; k++) {
                const char *block = t <= SW_LORA_O ? "self_attn" : "mlp";
                lua_pushfstring(L, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", (int)i, block,
                                sw_lora_target_names[t], k ? 'B' : 'A');
                const sw_tensor *src = grads ? (k ? p->gB : p->gA) : (k ? p->B : p->A);
                void **slot = lsw_new_object(L, LSW_TENSOR);
                sw_tensor *c;
                lsw_check(L, &ctx, sw_tensor_to(&ctx, &c, src, SW_DEV_CPU, SW_F32));
                *slot = c;
                lua_settable(L, -3);
            }
        }
    return 1;
}
static int l_grads(lua_State *L) { return named_tensors(L, true); }
static int l_weights(lua_State *L) { return named_tensors(L, false); }

static int l_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_LORA);
    if (!*slot) {
        lua_pushliteral(L, "LoRA (freed)");
        return 1;
    }
    sw_lora *l = *slot;
    int nt = 0, nl = 0;
    for (int t = 0; t < SW_LORA_NTARGETS; t++) nt += (l->targets >> t) & 1;
    for (int64_t i = 0; i < l->n_layers; i++) {
        bool any = false;
        for (int t = 0; t < SW_LORA_NTARGETS; t++) any |= l->pairs[i][t].A != NULL;
        nl += any;
    }
    lua_pushfstring(L, "LoRA %s: r %d, alpha %f (scale %f%s), dropout %f, %d target(s) x %d layer(s), %d parameters",
                    l->name, l->r, l->alpha, (double)l->scale, l->rslora ? ", rsLoRA" : "", l->dropout, nt, nl,
                    (int)sw_lora_n_params(l));
    return 1;
}

static int l_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_lora *l = check_lora(L, 1);
    if (!strcmp(k, "name")) lua_pushstring(L, l->name);
    else if (!strcmp(k, "r")) lua_pushinteger(L, l->r);
    else if (!strcmp(k, "alpha")) lua_pushnumber(L, l->alpha);
    else if (!strcmp(k, "scale")) lua_pushnumber(L, l->scale);
    else if (!strcmp(k, "dropout")) lua_pushnumber(L, l->dropout);
    else if (!strcmp(k, "rslora")) lua_pushboolean(L, l->rslora);
    else if (!strcmp(k, "n_params")) lua_pushinteger(L, sw_lora_n_params(l));
    else if (!strcmp(k, "active")) lua_pushboolean(L, lora_model(L, 1)->lora == l);
    else return lsw_no_field(L, 1, "LoRA", k);
    return 1;
}

/* ---- model:loss — one forward (and backward) of a sequence or packed row --- */

static int32_t *int_list(lua_State *L, int idx, const char *what, int64_t *n) {
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (int64_t)luaL_len(L, idx);
    int32_t *v = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(*n ? *n : 1), 0);
    for (int64_t i = 0; i < *n; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        lua_Integer x = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "Model:loss: %s[%d] is not an integer", what, (int)i + 1);
        v[i] = (int32_t)x;
        lua_pop(L, 1);
    }
    return v;
}

/* model:loss(ids, {labels=, starts=, backward=, checkpointing=, logits=})
 *   -> mean loss over trained tokens, their count, logits (T, V) if asked.
 * starts: 0-based offsets of the packed samples after the first ({5, 9}
 * means samples [0,5) [5,9) [9,T)). backward adds d(mean loss) to the
 * active adapter's gradients. On a model whose device copy holds the active
 * adapter (a trainer put it there) it runs on the device, like the trainer's
 * steps, so the gradients accumulate where lora:grads() reads them. */
static int m_loss(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    static const char *const keys[] = {"labels", "starts", "backward", "checkpointing", "logits", NULL};
    lua_settop(L, 3); /* buffers pushed below must not land where the options are read */
    lsw_opts_check(L, 3, "Model:loss", keys);
    int64_t T, nl = 0, ns = 0;
    int32_t *ids = int_list(L, 2, "ids", &T);
    int32_t *labels = NULL, *st32 = NULL;
    if (!lua_isnoneornil(L, 3)) {
        if (lua_getfield(L, 3, "labels") == LUA_TTABLE) labels = int_list(L, lua_gettop(L), "labels", &nl);
        if (lua_getfield(L, 3, "starts") == LUA_TTABLE) st32 = int_list(L, lua_gettop(L), "starts", &ns);
    }
    if (labels && nl != T) return luaL_error(L, "Model:loss: %d labels for %d ids", (int)nl, (int)T);
    int64_t *starts = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(ns + 2), 0);
    starts[0] = 0;
    for (int64_t i = 0; i < ns; i++) starts[i + 1] = st32[i];
    starts[ns + 1] = T;
    sw_seq_batch b = {ids, labels, NULL, T, starts, (int)ns + 1};
    /* The mean's denominator, known before the backward needs it. */
    int64_t n_tgt = 0;
    for (int64_t s = 0; s <= ns; s++)
        for (int64_t t = starts[s]; t + 1 < starts[s + 1]; t++) n_tgt += (labels ? labels[t + 1] : ids[t + 1]) != -100;
    sw_train_opts o = {0};
    o.backward = lsw_opt_bool(L, 3, "Model:loss", "backward", 0);
    o.checkpointing = lsw_opt_bool(L, 3, "Model:loss", "checkpointing", 0);
    o.loss_scale = n_tgt ? 1.0f / (float)n_tgt : 0.0f;
    if (o.backward && !m->lora) return luaL_error(L, "Model:loss: backward needs an active adapter (model:lora{...})");
    bool want_logits = lsw_opt_bool(L, 3, "Model:loss", "logits", 0);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (want_logits) {
        void **slot = lsw_new_object(L, LSW_TENSOR);
        sw_tensor *lt;
        int64_t shape[2] = {T, m->cfg.vocab};
        lsw_check(L, &ctx, sw_tensor_new(&ctx, &lt, SW_F32, 2, shape, SW_DEV_CPU, SW_MEM_ACTIVATIONS));
        *slot = lt;
        o.logits = sw_tensor_data(lt);
    }
    double sum;
    int64_t n;
    sw_gpu *g = m->lora ? device_of(m, m->lora) : NULL;
    lsw_check(L, &ctx, g ? sw_gpu_train_batch(&ctx, g, &b, &o, &sum, &n) : sw_train_batch(&ctx, m, &b, &o, &sum, &n));
    lua_pushnumber(L, n ? sum / (double)n : NAN);
    lua_pushinteger(L, n);
    if (want_logits) {
        lua_pushvalue(L, -3);
        return 3;
    }
    return 2;
}

/* model:without_adapter(fn, ...) runs fn with no adapter active. */
static int m_without_adapter(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    sw_lora *saved = m->lora;
    m->lora = NULL;
    int n = lua_gettop(L) - 2;
    int st = lua_pcall(L, n, LUA_MULTRET, 0);
    m->lora = saved; /* restored even when fn fails */
    if (st != LUA_OK) return lua_error(L);
    return lua_gettop(L) - 1;
}

static const luaL_Reg methods[] = {{"save", l_save},       {"enable", l_enable},   {"disable", l_disable},
                                   {"grads", l_grads},     {"weights", l_weights}, {"zero_grad", l_zero_grad},
                                   {"free", l_free},       {NULL, NULL}};
static const luaL_Reg metamethods[] = {{"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring},
                                       {"__index", l_index}, {NULL, NULL}};
static const char *const fields[] = {"name", "r", "alpha", "scale", "dropout", "rslora", "n_params", "active", NULL};

void lsw_open_lora(lua_State *L) {
    lsw_new_class(L, LSW_LORA, methods, metamethods, fields);
    lua_pushcfunction(L, load_adapter);
    lua_setfield(L, -2, "load_adapter");
    /* Model methods that belong to adapters and training. */
    luaL_getmetatable(L, "stepwise.Model");
    lua_getfield(L, -1, "__methods");
    lua_pushcfunction(L, m_lora);
    lua_setfield(L, -2, "lora");
    lua_pushcfunction(L, m_loss);
    lua_setfield(L, -2, "loss");
    lua_pushcfunction(L, m_without_adapter);
    lua_setfield(L, -2, "without_adapter");
    lua_pop(L, 2);
}
