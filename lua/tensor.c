/* tensor.c — stepwise.Tensor: the core tensor as a Lua object.
 *
 * Indices and dimensions are 1-based, as everywhere in Lua. The userdata
 * holds one sw_tensor*; views hold their own sw_tensor sharing the buffer
 * (refcounted in the core), so freeing a parent before its views is safe.
 */
#include <stdio.h>
#include <string.h>

#include "lsw.h"

static const char *const create_opts[] = {"dtype", "device", "category", "name", "seed", "scale", NULL};

sw_tensor *lsw_check_tensor(lua_State *L, int idx) {
    return lsw_check_object(L, idx, LSW_TENSOR, "Tensor");
}

void lsw_push_tensor(lua_State *L, sw_tensor *t) {
    void **slot = lsw_new_object(L, LSW_TENSOR);
    *slot = t;
}

/* ---- argument helpers ---------------------------------------------------- */

static int read_shape(lua_State *L, int idx, const char *fn, int64_t *shape) {
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    if (n > SW_MAX_DIMS) luaL_error(L, "%s: at most %d dimensions, got %d", fn, SW_MAX_DIMS, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 0) luaL_error(L, "%s: shape entry %d must be a non-negative integer", fn, i + 1);
        shape[i] = v;
        lua_pop(L, 1);
    }
    return n;
}

static sw_device opt_device(lua_State *L, int idx, const char *fn, sw_device def) {
    const char *s = lsw_opt_string(L, idx, fn, "device", NULL);
    if (!s) return def;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_device d;
    if (sw_device_parse(&ctx, s, &d)) luaL_error(L, "%s: %s", fn, ctx.msg);
    return d;
}

static sw_dtype parse_dtype(lua_State *L, const char *fn, const char *s) {
    sw_dtype t;
    if (!sw_dtype_from_name(s, &t)) luaL_error(L, "%s: unknown dtype '%s'", fn, s);
    return t;
}

static sw_dtype opt_dtype(lua_State *L, int idx, const char *fn, sw_dtype def) {
    const char *s = lsw_opt_string(L, idx, fn, "dtype", NULL);
    return s ? parse_dtype(L, fn, s) : def;
}

static sw_mem_cat opt_category(lua_State *L, int idx, const char *fn, sw_mem_cat def) {
    const char *s = lsw_opt_string(L, idx, fn, "category", NULL);
    if (!s) return def;
    sw_mem_cat c;
    if (!sw_mem_cat_from_name(s, &c)) {
        const char *names[SW_MEM_CAT_COUNT + 1];
        for (int i = 0; i < SW_MEM_CAT_COUNT; i++) names[i] = sw_mem_cat_name((sw_mem_cat)i);
        names[SW_MEM_CAT_COUNT] = NULL;
        const char *hint = lsw_suggest(s, names);
        if (hint) luaL_error(L, "%s: unknown memory category '%s' (did you mean '%s'?)", fn, s, hint);
        luaL_error(L, "%s: unknown memory category '%s'", fn, s);
    }
    return c;
}

/* Create a tensor from shape + options, pushed as a new object. */
static sw_tensor *create(lua_State *L, const char *fn, int ndim, const int64_t *shape, int opts) {
    lsw_opts_check(L, opts, fn, create_opts);
    sw_dtype dt = opt_dtype(L, opts, fn, SW_F32);
    sw_device dev = opt_device(L, opts, fn, SW_DEV_CPU);
    sw_mem_cat cat = opt_category(L, opts, fn, SW_MEM_WORKSPACE);
    const char *name = lsw_opt_string(L, opts, fn, "name", "");
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *t;
    if (sw_tensor_new(&ctx, &t, dt, ndim, shape, dev, cat)) luaL_error(L, "%s: %s", fn, ctx.msg);
    snprintf(t->name, sizeof t->name, "%s", name);
    *slot = t;
    return t;
}

/* ---- constructors: sw.zeros, sw.full, sw.randn, sw.tensor ---------------- */

static int t_zeros(lua_State *L) {
    int64_t shape[SW_MAX_DIMS];
    int n = read_shape(L, 1, "sw.zeros", shape);
    create(L, "sw.zeros", n, shape, 2);
    return 1;
}

static int t_full(lua_State *L) {
    int64_t shape[SW_MAX_DIMS];
    int n = read_shape(L, 1, "sw.full", shape);
    double v = luaL_checknumber(L, 2);
    sw_tensor *t = create(L, "sw.full", n, shape, 3);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_fill(&ctx, t, v));
    return 1;
}

static int t_randn(lua_State *L) {
    int64_t shape[SW_MAX_DIMS];
    int n = read_shape(L, 1, "sw.randn", shape);
    lua_Integer seed = lsw_opt_integer(L, 2, "sw.randn", "seed", 0);
    double scale = lsw_opt_number(L, 2, "sw.randn", "scale", 1.0);
    sw_tensor *t = create(L, "sw.randn", n, shape, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_randn(&ctx, t, (uint64_t)seed, scale));
    return 1;
}

/* Shape of nested tables {{1,2},{3,4}}: walks the first element of each level. */
static int data_shape(lua_State *L, int idx, int64_t *shape) {
    int n = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (n == SW_MAX_DIMS) luaL_error(L, "sw.tensor: data nests deeper than %d levels", SW_MAX_DIMS);
        shape[n++] = (int64_t)luaL_len(L, -1);
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return n;
}

static void fill_from(lua_State *L, int tbl, sw_tensor *t, int dim, int64_t *idx, sw_ctx *ctx) {
    int64_t len = (int64_t)luaL_len(L, tbl);
    if (len != t->shape[dim])
        luaL_error(L, "sw.tensor: ragged data: dimension %d has %I entries here, %I elsewhere",
                   dim + 1, (lua_Integer)len, (lua_Integer)t->shape[dim]);
    for (int64_t i = 0; i < len; i++) {
        idx[dim] = i;
        lua_geti(L, tbl, i + 1);
        if (dim + 1 < t->ndim) {
            if (!lua_istable(L, -1)) luaL_error(L, "sw.tensor: ragged data at dimension %d", dim + 2);
            fill_from(L, lua_gettop(L), t, dim + 1, idx, ctx);
        } else {
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok) luaL_error(L, "sw.tensor: entry %I of dimension %d is %s, not a number",
                                (lua_Integer)i + 1, dim + 1, luaL_typename(L, -1));
            lsw_check(L, ctx, sw_tensor_set(ctx, t, idx, v));
        }
        lua_pop(L, 1);
    }
}

static int t_from_data(lua_State *L) {
    int64_t shape[SW_MAX_DIMS], idx[SW_MAX_DIMS] = {0};
    if (lua_isnumber(L, 1)) {
        create(L, "sw.tensor", 0, shape, 2);
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        lsw_check(L, &ctx, sw_tensor_set(&ctx, lsw_check_tensor(L, -1), idx, lua_tonumber(L, 1)));
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = data_shape(L, 1, shape);
    /* Build on the host, then move: element writes to a GPU one by one are slow. */
    lua_settop(L, 2);
    lsw_opts_check(L, 2, "sw.tensor", create_opts);
    if (lua_isnil(L, 2)) {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    sw_dtype dt = opt_dtype(L, 2, "sw.tensor", SW_F32);
    sw_device dev = opt_device(L, 2, "sw.tensor", SW_DEV_CPU);
    lua_newtable(L); /* host-side options: same dtype/category, no device */
    lua_getfield(L, 2, "category");
    lua_setfield(L, -2, "category");
    lua_getfield(L, 2, "name");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, sw_dtype_name(dt));
    lua_setfield(L, -2, "dtype");
    sw_tensor *host = create(L, "sw.tensor", n, shape, 3);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (n > 0) fill_from(L, 1, host, 0, idx, &ctx);
    if (dev == SW_DEV_CPU) return 1;
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_tensor *t;
    lsw_check(L, &ctx, sw_tensor_to(&ctx, &t, host, dev, dt));
    *slot = t;
    return 1;
}

/* ---- methods --------------------------------------------------------------- */

/* __gc and __close: idempotent. :free(): the same, but freeing twice is a
 * user error worth reporting (it usually means two names for one tensor). */
static int t_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TENSOR);
    sw_tensor_free(*slot);
    *slot = NULL;
    return 0;
}

static int t_free(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TENSOR);
    if (!*slot) luaL_error(L, "Tensor:free: this Tensor was already freed");
    return t_gc(L);
}

static int t_to(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    sw_device dev = sw_tensor_device(t);
    sw_dtype dt = t->dtype;
    if (lua_type(L, 2) == LUA_TSTRING) { /* t:to("cuda") or t:to("bf16") */
        const char *s = lua_tostring(L, 2);
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (!sw_dtype_from_name(s, &dt) && sw_device_parse(&ctx, s, &dev))
            luaL_error(L, "Tensor:to: '%s' is neither a dtype nor a usable device (%s)", s, ctx.msg);
    } else {
        static const char *const keys[] = {"dtype", "device", NULL};
        lsw_opts_check(L, 2, "Tensor:to", keys);
        dt = opt_dtype(L, 2, "Tensor:to", dt);
        dev = opt_device(L, 2, "Tensor:to", dev);
    }
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *out;
    lsw_check(L, &ctx, sw_tensor_to(&ctx, &out, t, dev, dt));
    *slot = out;
    return 1;
}

static int t_clone(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *out;
    lsw_check(L, &ctx, sw_tensor_to(&ctx, &out, t, sw_tensor_device(t), t->dtype));
    *slot = out;
    return 1;
}

static int t_copy(lua_State *L) {
    sw_tensor *dst = lsw_check_tensor(L, 1), *src = lsw_check_tensor(L, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_copy(&ctx, dst, src));
    lua_settop(L, 1);
    return 1;
}

static int t_fill(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    double v = luaL_checknumber(L, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_fill(&ctx, t, v));
    lua_settop(L, 1);
    return 1;
}

static int dim_arg(lua_State *L, int arg, const sw_tensor *t) {
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d < 0) d += t->ndim + 1; /* -1 is the last dimension */
    if (d < 1 || d > t->ndim) luaL_error(L, "dimension %d is out of range for a %d-d tensor", (int)d, t->ndim);
    return (int)d - 1;
}

/* Views: the userdata is created before the core allocates, so a memory
 * error raised by Lua cannot leak the view. */
static int finish_view(lua_State *L, void **slot, sw_ctx *ctx, sw_status s, sw_tensor *v) {
    lsw_check(L, ctx, s);
    *slot = v;
    return 1;
}

static int t_narrow(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int d = dim_arg(L, 2, t);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *v;
    sw_status st = sw_tensor_narrow(&ctx, &v, t, d, start - 1, len);
    return finish_view(L, slot, &ctx, st, v);
}

static int t_transpose(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int d0 = lua_isnoneornil(L, 2) ? t->ndim - 2 : dim_arg(L, 2, t);
    int d1 = lua_isnoneornil(L, 3) ? t->ndim - 1 : dim_arg(L, 3, t);
    if (t->ndim < 2 && (lua_isnoneornil(L, 2) || lua_isnoneornil(L, 3)))
        luaL_error(L, "Tensor:transpose: a %d-d tensor has nothing to transpose", t->ndim);
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *v;
    sw_status st = sw_tensor_transpose(&ctx, &v, t, d0, d1);
    return finish_view(L, slot, &ctx, st, v);
}

static int t_reshape(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int64_t shape[SW_MAX_DIMS];
    int n;
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)luaL_len(L, 2);
    if (n > SW_MAX_DIMS) luaL_error(L, "Tensor:reshape: at most %d dimensions", SW_MAX_DIMS);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        shape[i] = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *v;
    sw_status st = sw_tensor_reshape(&ctx, &v, t, n, shape);
    return finish_view(L, slot, &ctx, st, v);
}

static void index_args(lua_State *L, const sw_tensor *t, int first, int count, int64_t *idx) {
    if (count != t->ndim)
        luaL_error(L, "expected %d index(es) for a %d-d tensor, got %d", t->ndim, t->ndim, count);
    for (int i = 0; i < count; i++) idx[i] = luaL_checkinteger(L, first + i) - 1;
}

static int t_get(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int64_t idx[SW_MAX_DIMS];
    index_args(L, t, 2, lua_gettop(L) - 1, idx);
    double v;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_get(&ctx, t, idx, &v));
    if (!sw_dtype_info_of(t->dtype)->floating) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
    return 1;
}

/* t:set(i, j, value): the value comes last, after the indices. */
static int t_set(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int top = lua_gettop(L);
    double v = luaL_checknumber(L, top);
    int64_t idx[SW_MAX_DIMS];
    index_args(L, t, 2, top - 2, idx);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_set(&ctx, t, idx, v));
    lua_settop(L, 1);
    return 1;
}

static int t_item(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    if (sw_tensor_numel(t) != 1) luaL_error(L, "Tensor:item: needs exactly one element, this has %I", (lua_Integer)sw_tensor_numel(t));
    int64_t idx[SW_MAX_DIMS] = {0};
    double v;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_tensor_get(&ctx, t, idx, &v));
    lua_pushnumber(L, v);
    return 1;
}

static void push_values(lua_State *L, sw_tensor *t, int dim, int64_t *idx, sw_ctx *ctx) {
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        idx[dim] = i;
        if (dim + 1 < t->ndim) {
            push_values(L, t, dim + 1, idx, ctx);
        } else {
            double v;
            lsw_check(L, ctx, sw_tensor_get(ctx, t, idx, &v));
            lua_pushnumber(L, v);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

static int t_totable(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    int64_t idx[SW_MAX_DIMS] = {0};
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (t->ndim == 0) return t_item(L);
    if (sw_tensor_numel(t) > 10 * 1000 * 1000)
        luaL_error(L, "Tensor:totable: %I elements is too many for a Lua table", (lua_Integer)sw_tensor_numel(t));
    luaL_checkstack(L, 2 * SW_MAX_DIMS + 4, NULL);
    push_values(L, t, 0, idx, &ctx);
    return 1;
}

/* t:tobytes() -> the raw little-endian elements as a Lua string (like
 * numpy's tobytes): how tests and tools hand tensors to other programs. */
static int t_tobytes(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *c = NULL;
    if (sw_tensor_device(t) != SW_DEV_CPU || !sw_tensor_is_contiguous(t))
        lsw_check(L, &ctx, sw_tensor_to(&ctx, &c, t, SW_DEV_CPU, t->dtype));
    const sw_tensor *src = c ? c : t;
    luaL_Buffer b;
    size_t n = sw_tensor_nbytes(src);
    char *p = luaL_buffinitsize(L, &b, n);
    memcpy(p, sw_tensor_data(src), n);
    sw_tensor_free(c);
    luaL_pushresultsize(&b, n);
    return 1;
}

/* ---- display ----------------------------------------------------------------
 * Up to 6 entries per dimension (first 3, "...", last 3), like numpy. */
static void preview(luaL_Buffer *b, lua_State *L, sw_tensor *t, int dim, int64_t *idx, sw_ctx *ctx) {
    int64_t n = t->shape[dim];
    luaL_addchar(b, '[');
    for (int64_t i = 0; i < n; i++) {
        if (n > 6 && i == 3) {
            luaL_addstring(b, "...,");
            if (dim + 1 < t->ndim) {
                luaL_addchar(b, '\n');
                for (int k = 0; k <= dim; k++) luaL_addchar(b, ' ');
            } else {
                luaL_addchar(b, ' ');
            }
            i = n - 3;
        }
        idx[dim] = i;
        if (dim + 1 < t->ndim) {
            preview(b, L, t, dim + 1, idx, ctx);
        } else {
            double v;
            if (sw_tensor_get(ctx, t, idx, &v)) {
                luaL_addstring(b, "?");
            } else {
                char num[32];
                snprintf(num, sizeof num, sw_dtype_info_of(t->dtype)->floating ? "%.4g" : "%.0f", v);
                luaL_addstring(b, num);
            }
        }
        if (i + 1 < n) {
            if (dim + 1 < t->ndim) { /* one row per line, aligned under the bracket */
                luaL_addstring(b, ",\n");
                for (int k = 0; k <= dim; k++) luaL_addchar(b, ' ');
            } else {
                luaL_addstring(b, ", ");
            }
        }
    }
    luaL_addchar(b, ']');
}

static int t_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TENSOR);
    if (!*slot) {
        lua_pushliteral(L, "Tensor (freed)");
        return 1;
    }
    sw_tensor *t = *slot;
    char d[128];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "Tensor ");
    if (t->name[0]) {
        luaL_addstring(&b, t->name);
        luaL_addchar(&b, ' ');
    }
    luaL_addstring(&b, sw_tensor_describe(t, d, sizeof d));
    if (!sw_dtype_info_of(t->dtype)->quantized && sw_tensor_numel(t) > 0) {
        luaL_addchar(&b, '\n');
        int64_t idx[SW_MAX_DIMS] = {0};
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (t->ndim == 0) {
            double v = 0;
            sw_tensor_get(&ctx, t, idx, &v);
            char num[32];
            snprintf(num, sizeof num, "%.6g", v);
            luaL_addstring(&b, num);
        } else {
            preview(&b, L, t, 0, idx, &ctx);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static int t_len(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
    return 1;
}


static int t_index(lua_State *L) {
    /* Methods first, so a freed tensor can still be asked to :free() and
     * print itself; properties need a live tensor. */
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_tensor *t = lsw_check_tensor(L, 1);
    char buf[SW_DEVICE_NAME_MAX];
    if (!strcmp(k, "shape")) {
        lua_createtable(L, t->ndim, 0);
        for (int i = 0; i < t->ndim; i++) {
            lua_pushinteger(L, t->shape[i]);
            lua_rawseti(L, -2, i + 1);
        }
    } else if (!strcmp(k, "dtype")) lua_pushstring(L, sw_dtype_name(t->dtype));
    else if (!strcmp(k, "device")) lua_pushstring(L, sw_device_name(sw_tensor_device(t), buf, sizeof buf));
    else if (!strcmp(k, "category")) lua_pushstring(L, sw_mem_cat_name(sw_tensor_category(t)));
    else if (!strcmp(k, "ndim")) lua_pushinteger(L, t->ndim);
    else if (!strcmp(k, "numel")) lua_pushinteger(L, sw_tensor_numel(t));
    else if (!strcmp(k, "nbytes")) lua_pushinteger(L, (lua_Integer)sw_tensor_nbytes(t));
    else if (!strcmp(k, "contiguous")) lua_pushboolean(L, sw_tensor_is_contiguous(t));
    else if (!strcmp(k, "name")) lua_pushstring(L, t->name);
    else return lsw_no_field(L, 1, "Tensor", k);
    return 1;
}

static const luaL_Reg methods[] = {
    {"free", t_free},   {"to", t_to},           {"clone", t_clone},     {"copy", t_copy},
    {"fill", t_fill},   {"narrow", t_narrow},   {"t", t_transpose},     {"transpose", t_transpose},
    {"reshape", t_reshape}, {"get", t_get},     {"set", t_set},         {"item", t_item},
    {"totable", t_totable}, {"tobytes", t_tobytes}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", t_gc}, {"__close", t_gc}, {"__tostring", t_tostring}, {"__len", t_len},
    {"__index", t_index}, {NULL, NULL}};

static const char *const fields[] = {"shape", "dtype", "device", "category", "ndim", "numel",
                                     "nbytes", "contiguous", "name", NULL};

static const luaL_Reg functions[] = {
    {"zeros", t_zeros}, {"full", t_full}, {"randn", t_randn}, {"tensor", t_from_data}, {NULL, NULL}};

void lsw_open_tensor(lua_State *L) {
    lsw_new_class(L, LSW_TENSOR, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0); /* into the sw table on top */
}
