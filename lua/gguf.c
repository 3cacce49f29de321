/* gguf.c — stepwise.GGUF: a GGUF file opened for inspection and loading.
 *
 *   g = sw.gguf("model.gguf")     -- mapped read-only; nothing is copied yet
 *   g:meta("general.name")        -- a Lua value (arrays as tables), nil if absent
 *   g:meta_type("tokenizer.ggml.tokens")  -> "array", "string"
 *   g:keys()                      -- every key, in file order
 *   g:tensors()                   -- {name=, type=, shape=, offset=, nbytes=} in file order
 *   g:tensor("token_embd.weight") -- a new Tensor, dequantized to f32
 *   g:close()                     -- or <close>, or garbage collection
 *
 * Shapes are outermost first like every stepwise shape, so a GGUF tensor
 * with ne = {576, 49152} reads as {49152, 576}. Tensors returned by
 * g:tensor() are copies: they outlive the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "lsw.h"

#define LSW_GGUF "stepwise.GGUF"

static sw_gguf *check_gguf(lua_State *L, int idx) {
    void **slot = luaL_checkudata(L, idx, LSW_GGUF);
    if (!*slot) luaL_error(L, "this GGUF is closed");
    return *slot;
}

/* sw.gguf(path) */
static int g_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    void **slot = lsw_new_object(L, LSW_GGUF); /* born closed: an error leaves nothing open */
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_gguf *g;
    lsw_check(L, &ctx, sw_gguf_open(&ctx, path, &g));
    *slot = g;
    return 1;
}

/* __gc and __close: idempotent. :close() twice is an error, as for files. */
static int g_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_GGUF);
    sw_gguf_close(*slot);
    *slot = NULL;
    return 0;
}

static int g_close(lua_State *L) {
    check_gguf(L, 1);
    return g_gc(L);
}

/* ---- metadata ------------------------------------------------------------ */

/* One numeric element of type t at p (little-endian, possibly unaligned). */
static void push_raw(lua_State *L, sw_gguf_type t, const uint8_t *p) {
    uint64_t u = 0;
    int size = t == SW_GGUF_U8 || t == SW_GGUF_I8 || t == SW_GGUF_BOOL ? 1
             : t == SW_GGUF_U16 || t == SW_GGUF_I16 ? 2
             : t == SW_GGUF_U32 || t == SW_GGUF_I32 || t == SW_GGUF_F32 ? 4 : 8;
    for (int i = size - 1; i >= 0; i--) u = (u << 8) | p[i];
    switch (t) {
    case SW_GGUF_BOOL: lua_pushboolean(L, u != 0); break;
    case SW_GGUF_I8: lua_pushinteger(L, (int8_t)u); break;
    case SW_GGUF_I16: lua_pushinteger(L, (int16_t)u); break;
    case SW_GGUF_I32: lua_pushinteger(L, (int32_t)u); break;
    case SW_GGUF_I64: lua_pushinteger(L, (lua_Integer)u); break;
    case SW_GGUF_U64: /* past 2^63 a Lua integer would read as negative */
        if (u > (uint64_t)LUA_MAXINTEGER) lua_pushnumber(L, (lua_Number)u);
        else lua_pushinteger(L, (lua_Integer)u);
        break;
    case SW_GGUF_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        lua_pushnumber(L, f);
        break;
    }
    case SW_GGUF_F64: {
        double d;
        memcpy(&d, &u, 8);
        lua_pushnumber(L, d);
        break;
    }
    default: lua_pushinteger(L, (lua_Integer)u); break; /* u8, u16, u32 */
    }
}

/* Scalars are pushed through their raw bytes too: one decoder for both. */
static void push_value(lua_State *L, const sw_gguf *g, const char *key) {
    int64_t i = sw_gguf_find_key(g, key);
    sw_gguf_type t = sw_gguf_kv_type(g, i);
    const char *s;
    size_t len;
    if (t == SW_GGUF_STRING) {
        sw_gguf_get_str(g, key, &s, &len);
        lua_pushlstring(L, s, len);
    } else if (t == SW_GGUF_ARRAY) {
        sw_gguf_type et;
        int64_t n;
        sw_gguf_get_arr(g, key, &et, &n);
        if (n > INT32_MAX) luaL_error(L, "%s: key '%s': %I elements is too many for a Lua table",
                                      sw_gguf_path(g), key, (lua_Integer)n);
        lua_createtable(L, (int)n, 0);
        const uint8_t *p = sw_gguf_arr_data(g, key);
        int size = et == SW_GGUF_STRING ? 0 : et <= SW_GGUF_I8 || et == SW_GGUF_BOOL ? 1
                 : et <= SW_GGUF_I16 ? 2 : et <= SW_GGUF_F32 ? 4 : 8;
        for (int64_t j = 0; j < n; j++) {
            if (et == SW_GGUF_STRING) {
                sw_gguf_arr_str(g, key, j, &s, &len);
                lua_pushlstring(L, s, len);
            } else {
                push_raw(L, et, p + j * size);
            }
            lua_rawseti(L, -2, j + 1);
        }
    } else {
        int64_t v;
        double d;
        bool b;
        if (t == SW_GGUF_BOOL && sw_gguf_get_bool(g, key, &b)) lua_pushboolean(L, b);
        else if (t != SW_GGUF_F32 && t != SW_GGUF_F64 && sw_gguf_get_int(g, key, &v)) lua_pushinteger(L, v);
        else if (sw_gguf_get_float(g, key, &d)) lua_pushnumber(L, d);
        else lua_pushnil(L);
    }
}

static int g_meta(lua_State *L) {
    sw_gguf *g = check_gguf(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (sw_gguf_find_key(g, key) < 0) lua_pushnil(L);
    else push_value(L, g, key);
    return 1;
}

/* g:meta_type(key) -> "u32" | "string" | ... ; arrays: "array", element type. */
static int g_meta_type(lua_State *L) {
    sw_gguf *g = check_gguf(L, 1);
    const char *key = luaL_checkstring(L, 2);
    int64_t i = sw_gguf_find_key(g, key);
    if (i < 0) return lua_pushnil(L), 1;
    sw_gguf_type t = sw_gguf_kv_type(g, i);
    lua_pushstring(L, sw_gguf_type_name(t));
    if (t != SW_GGUF_ARRAY) return 1;
    sw_gguf_type et;
    int64_t n;
    sw_gguf_get_arr(g, key, &et, &n);
    lua_pushstring(L, sw_gguf_type_name(et));
    return 2;
}

static int g_keys(lua_State *L) {
    sw_gguf *g = check_gguf(L, 1);
    int64_t n = sw_gguf_n_kv(g);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushstring(L, sw_gguf_key(g, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ---- tensors ------------------------------------------------------------- */

static void push_info(lua_State *L, const sw_gguf_tensor *t) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, sw_gguf_ggml_type_name(t->ggml_type));
    lua_setfield(L, -2, "type");
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->ne[t->ndim - 1 - d]);
        lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, (lua_Integer)t->offset);
    lua_setfield(L, -2, "offset");
    lua_pushinteger(L, (lua_Integer)t->nbytes);
    lua_setfield(L, -2, "nbytes");
    lua_pushboolean(L, t->dtype != SW_DTYPE_COUNT);
    lua_setfield(L, -2, "readable");
}

static int g_tensors(lua_State *L) {
    sw_gguf *g = check_gguf(L, 1);
    int64_t n = sw_gguf_n_tensors(g);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        push_info(L, sw_gguf_tensor_at(g, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* "no tensor named 'x'", with the closest name when one is near. */
static int no_tensor(lua_State *L, const sw_gguf *g, const char *name) {
    int64_t n = sw_gguf_n_tensors(g);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    char hint[128] = "";
    if (names) {
        for (int64_t i = 0; i < n; i++) names[i] = sw_gguf_tensor_at(g, i)->name;
        names[n] = NULL;
        const char *h = lsw_suggest(name, names);
        if (h) snprintf(hint, sizeof hint, " (did you mean '%s'?)", h);
        free(names);
    }
    return luaL_error(L, "%s: no tensor named '%s'%s", sw_gguf_path(g), name, hint);
}

static const char *const tensor_opts[] = {"dtype", "device", "category", NULL};

/* g:tensor(name, {dtype = "f32", device = "cpu", category = "weights"}):
 * dtype f32 (the default), f16 or bf16 dequantizes; the tensor's own type
 * copies its blocks as they are. */
static int g_tensor(lua_State *L) {
    sw_gguf *g = check_gguf(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *fn = "GGUF:tensor";
    lsw_opts_check(L, 3, fn, tensor_opts);
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) return no_tensor(L, g, name);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_dtype want = SW_F32;
    const char *ds = lsw_opt_string(L, 3, fn, "dtype", NULL);
    if (ds && !sw_dtype_from_name(ds, &want)) luaL_error(L, "%s: unknown dtype '%s'", fn, ds);
    if (want != SW_F32 && want != SW_F16 && want != SW_BF16 && want != t->dtype)
        luaL_error(L, "%s: '%s' is %s: it loads as f32, f16, bf16 or %s, not %s", fn, name,
                   sw_gguf_ggml_type_name(t->ggml_type), sw_gguf_ggml_type_name(t->ggml_type), ds);
    sw_device dev = SW_DEV_CPU;
    const char *devs = lsw_opt_string(L, 3, fn, "device", NULL);
    if (devs && sw_device_parse(&ctx, devs, &dev)) luaL_error(L, "%s: %s", fn, ctx.msg);
    sw_mem_cat cat = SW_MEM_WEIGHTS;
    const char *cs = lsw_opt_string(L, 3, fn, "category", NULL);
    if (cs && !sw_mem_cat_from_name(cs, &cat)) luaL_error(L, "%s: unknown memory category '%s'", fn, cs);

    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_tensor *x;
    sw_dtype load = want == t->dtype ? want : SW_F32;
    lsw_check(L, &ctx, sw_gguf_load(&ctx, g, t, load, cat, &x));
    *slot = x; /* owned by the userdata from here, so an error below cannot leak it */
    if (load != want || dev != SW_DEV_CPU) {
        sw_tensor *y;
        sw_status s = sw_tensor_to(&ctx, &y, x, dev, want);
        if (s == SW_OK) {
            sw_tensor_free(x);
            *slot = y;
        }
        lsw_check(L, &ctx, s);
    }
    return 1;
}

/* ---- class --------------------------------------------------------------- */

static int g_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_GGUF);
    sw_gguf *g = *slot;
    if (!g) lua_pushliteral(L, "GGUF (closed)");
    else lua_pushfstring(L, "GGUF %s (v%d, %I tensors, %I keys)", sw_gguf_path(g), (int)sw_gguf_version(g),
                         (lua_Integer)sw_gguf_n_tensors(g), (lua_Integer)sw_gguf_n_kv(g));
    return 1;
}


static int g_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_gguf *g = check_gguf(L, 1);
    if (!strcmp(k, "path")) lua_pushstring(L, sw_gguf_path(g));
    else if (!strcmp(k, "version")) lua_pushinteger(L, sw_gguf_version(g));
    else if (!strcmp(k, "alignment")) lua_pushinteger(L, sw_gguf_alignment(g));
    else if (!strcmp(k, "data_offset")) lua_pushinteger(L, (lua_Integer)sw_gguf_data_offset(g));
    else return lsw_no_field(L, 1, "GGUF", k);
    return 1;
}

static const luaL_Reg methods[] = {
    {"meta", g_meta},     {"meta_type", g_meta_type}, {"keys", g_keys}, {"tensors", g_tensors},
    {"tensor", g_tensor}, {"close", g_close},         {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", g_gc}, {"__close", g_gc}, {"__tostring", g_tostring}, {"__index", g_index}, {NULL, NULL}};

static const char *const fields[] = {"path", "version", "alignment", "data_offset", NULL};

static const luaL_Reg functions[] = {{"gguf", g_open}, {NULL, NULL}};

void lsw_open_gguf(lua_State *L) {
    lsw_new_class(L, LSW_GGUF, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0); /* into the sw table on top */
}
