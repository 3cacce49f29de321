/* safetensors.c — stepwise.SafeTensors: an open safetensors file or model
 * directory, and sw.save_safetensors.
 *
 *   st = sw.safetensors("model_dir")          -- or a file, or an index.json
 *   st:names()      -> sorted list of tensor names
 *   st:info(name)   -> {dtype = "BF16", shape = {..}, nbytes = n, file = path}
 *   st:tensor(name, {device=, category=})    -> Tensor (a copy; I64 etc. become i32)
 *   st:bytes(name)  -> the raw little-endian bytes as a string
 *   st:bnb(name, {dtype=, device=, category=}) -> a bitsandbytes 4-bit weight,
 *                      dequantized (f32/f16/bf16) or as nf4 plus its absmax
 *   st:metadata()   -> {key = value}
 *   sw.save_safetensors(path, {name = Tensor | {dtype=, shape=, bytes=}}, {metadata = {..}})
 *   sw.nf4_quantize(t)       -> codes (nf4, t's shape), absmax (f32 [.., last / 64])
 *   sw.nf4_double_quant(absmax) -> q (u8), absmax2 (f32), offset: bnb's compress_statistics
 *
 * The userdata owns the sw_st (the file maps); tensors it hands out are
 * copies, so they outlive it.
 */
#include <string.h>

#include "core/bnb.h"
#include "core/safetensors.h"
#include "kernels/ops.h"
#include "lsw.h"

#define LSW_ST "stepwise.SafeTensors"

static sw_st *check_st(lua_State *L) { return lsw_check_object(L, 1, LSW_ST, "SafeTensors"); }

static const sw_st_tensor *check_name(lua_State *L, sw_st *st, int idx, const char *fn) {
    const char *name = luaL_checkstring(L, idx);
    const sw_st_tensor *t = sw_st_find(st, name);
    if (!t) luaL_error(L, "%s: no tensor '%s' in %s", fn, name, sw_st_path(st));
    return t;
}

static sw_device opt_device(lua_State *L, int idx, const char *fn) {
    const char *s = lsw_opt_string(L, idx, fn, "device", "cpu");
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_device d;
    if (sw_device_parse(&ctx, s, &d)) luaL_error(L, "%s: %s", fn, ctx.msg);
    return d;
}

static sw_mem_cat opt_category(lua_State *L, int idx, const char *fn) {
    const char *s = lsw_opt_string(L, idx, fn, "category", "weights");
    sw_mem_cat c;
    if (!sw_mem_cat_from_name(s, &c)) luaL_error(L, "%s: unknown memory category '%s'", fn, s);
    return c;
}

/* sw.safetensors(path) */
static int st_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    void **slot = lsw_new_object(L, LSW_ST);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *st;
    lsw_check(L, &ctx, sw_st_open(&ctx, path, &st));
    *slot = st;
    return 1;
}

static int st_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_ST);
    sw_st_close(*slot);
    *slot = NULL;
    return 0;
}

static int st_names(lua_State *L) {
    sw_st *st = check_st(L);
    size_t n = sw_st_count(st);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, sw_st_at(st, i)->name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int st_info(lua_State *L) {
    sw_st *st = check_st(L);
    const sw_st_tensor *t = check_name(L, st, 2, "SafeTensors:info");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, t->dtype_name);
    lua_setfield(L, -2, "dtype");
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, (lua_Integer)t->nbytes);
    lua_setfield(L, -2, "nbytes");
    lua_pushstring(L, t->file);
    lua_setfield(L, -2, "file");
    return 1;
}

static int st_tensor(lua_State *L) {
    static const char *const keys[] = {"device", "category", NULL};
    sw_st *st = check_st(L);
    const sw_st_tensor *t = check_name(L, st, 2, "SafeTensors:tensor");
    lsw_opts_check(L, 3, "SafeTensors:tensor", keys);
    sw_device dev = opt_device(L, 3, "SafeTensors:tensor");
    sw_mem_cat cat = opt_category(L, 3, "SafeTensors:tensor");
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *out;
    lsw_check(L, &ctx, sw_st_load(&ctx, t, dev, cat, &out));
    *slot = out;
    return 1;
}

static int st_bytes(lua_State *L) {
    sw_st *st = check_st(L);
    const sw_st_tensor *t = check_name(L, st, 2, "SafeTensors:bytes");
    lua_pushlstring(L, t->data, t->nbytes);
    return 1;
}

/* st:bnb(name, {dtype = "f32"}) -> Tensor; with dtype "nf4": codes, absmax. */
static int st_bnb(lua_State *L) {
    static const char *const keys[] = {"dtype", "device", "category", NULL};
    sw_st *st = check_st(L);
    const char *name = luaL_checkstring(L, 2);
    lsw_opts_check(L, 3, "SafeTensors:bnb", keys);
    const char *dn = lsw_opt_string(L, 3, "SafeTensors:bnb", "dtype", "f32");
    sw_dtype dt;
    if (!sw_dtype_from_name(dn, &dt)) luaL_error(L, "SafeTensors:bnb: unknown dtype '%s'", dn);
    sw_device dev = opt_device(L, 3, "SafeTensors:bnb");
    sw_mem_cat cat = opt_category(L, 3, "SafeTensors:bnb");
    void **ws = lsw_new_object(L, LSW_TENSOR), **as = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *w, *a;
    lsw_check(L, &ctx, sw_bnb_load(&ctx, st, name, dt, dev, cat, &w, &a));
    *ws = w;
    *as = a;
    if (!a) lua_pop(L, 1);
    return a ? 2 : 1;
}

static int st_metadata(lua_State *L) {
    sw_st *st = check_st(L);
    size_t n = sw_st_meta_count(st);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        sw_st_meta_at(st, i, &k, &v);
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
    return 1;
}

static int st_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_st *st = check_st(L);
    if (!strcmp(k, "path")) lua_pushstring(L, sw_st_path(st));
    else if (!strcmp(k, "count")) lua_pushinteger(L, (lua_Integer)sw_st_count(st));
    else return lsw_no_field(L, 1, "SafeTensors", k);
    return 1;
}

static int st_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)sw_st_count(check_st(L)));
    return 1;
}

static int st_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_ST);
    if (!*slot) lua_pushliteral(L, "SafeTensors (closed)");
    else lua_pushfstring(L, "SafeTensors %s (%d tensors)", sw_st_path(*slot), (int)sw_st_count(*slot));
    return 1;
}

/* ---- sw.save_safetensors --------------------------------------------------- */

/* One entry from a table value {dtype=, shape=, bytes=}. */
static void raw_entry(lua_State *L, int idx, const char *name, sw_st_entry *e) {
    static const char *const keys[] = {"dtype", "shape", "bytes", NULL};
    lsw_opts_check(L, idx, "sw.save_safetensors", keys);
    e->dtype_name = lsw_opt_string(L, idx, "sw.save_safetensors", "dtype", NULL);
    if (!e->dtype_name) luaL_error(L, "sw.save_safetensors: '%s' needs a dtype", name);
    lua_getfield(L, idx, "shape");
    if (!lua_istable(L, -1)) luaL_error(L, "sw.save_safetensors: '%s' needs a shape list", name);
    e->ndim = (int)luaL_len(L, -1);
    if (e->ndim > SW_ST_MAX_DIMS) luaL_error(L, "sw.save_safetensors: '%s' has more than %d dimensions", name, SW_ST_MAX_DIMS);
    lua_Integer numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        lua_geti(L, -1, i + 1);
        int ok;
        lua_Integer d = lua_tointegerx(L, -1, &ok);
        if (!ok || d < 0) luaL_error(L, "sw.save_safetensors: '%s': shape entry %d is not a size", name, i + 1);
        e->shape[i] = d;
        numel *= d;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    size_t len;
    lua_getfield(L, idx, "bytes");
    e->data = luaL_optlstring(L, -1, "", &len); /* the table keeps the string alive */
    lua_pop(L, 1);
    int es = sw_st_dtype_size(e->dtype_name, NULL);
    if (!es) luaL_error(L, "sw.save_safetensors: '%s': unknown dtype '%s'", name, e->dtype_name);
    if ((lua_Integer)len != numel * es)
        luaL_error(L, "sw.save_safetensors: '%s': %d bytes given, %s of that shape needs %I", name, (int)len,
                   e->dtype_name, numel * es);
}

static int save(lua_State *L) {
    static const char *const keys[] = {"metadata", NULL};
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lsw_opts_check(L, 3, "sw.save_safetensors", keys);
    size_t n = 0, nm = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) n++;
    int has_meta = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "metadata");
        has_meta = lua_istable(L, -1);
        if (!has_meta && !lua_isnil(L, -1)) luaL_error(L, "sw.save_safetensors: metadata must be a table");
        if (has_meta)
            for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) nm++;
        lua_replace(L, 3); /* slot 3 is now the metadata table (or nil) */
    }
    /* Userdata scratch: freed by the GC even if an error is raised below. */
    sw_st_entry *e = lua_newuserdatauv(L, (n ? n : 1) * sizeof *e, 0);
    const char **meta = lua_newuserdatauv(L, (nm ? 2 * nm : 1) * sizeof *meta, 0);
    memset(e, 0, (n ? n : 1) * sizeof *e);
    size_t i = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "sw.save_safetensors: tensor names must be strings");
        e[i].name = lua_tostring(L, -2);
        if (lua_istable(L, -1)) raw_entry(L, lua_gettop(L), e[i].name, &e[i]);
        else e[i].tensor = lsw_check_tensor(L, -1);
        i++;
    }
    if (has_meta) {
        i = 0;
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "sw.save_safetensors: metadata keys and values must be strings");
            meta[2 * i] = lua_tostring(L, -2);
            meta[2 * i + 1] = lua_tostring(L, -1);
            i++;
        }
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_st_write(&ctx, path, n, e, nm, meta));
    return 0;
}


/* ---- NF4 as bitsandbytes does it (CPU) -------------------------------------- */

/* A contiguous f32 host copy of t (or t itself), pushed to keep it alive. */
static sw_tensor *host_f32(lua_State *L, sw_tensor *t, const char *fn) {
    if (sw_tensor_device(t) == SW_DEV_CPU && t->dtype == SW_F32 && sw_tensor_is_contiguous(t)) {
        lua_pushnil(L);
        return t;
    }
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *h;
    if (sw_tensor_to(&ctx, &h, t, SW_DEV_CPU, SW_F32)) luaL_error(L, "%s: %s", fn, ctx.msg);
    *slot = h;
    return h;
}

static int nf4_quantize(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    if (t->ndim < 1 || t->shape[t->ndim - 1] % SW_NF4_BLOCK)
        luaL_error(L, "sw.nf4_quantize: the last dimension must be a multiple of %d", SW_NF4_BLOCK);
    sw_tensor *h = host_f32(L, t, "sw.nf4_quantize");
    int64_t ashape[SW_MAX_DIMS];
    memcpy(ashape, t->shape, sizeof ashape);
    ashape[t->ndim - 1] /= SW_NF4_BLOCK;
    void **cs = lsw_new_object(L, LSW_TENSOR), **as = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *c, *a;
    lsw_check(L, &ctx, sw_tensor_new(&ctx, &c, SW_NF4, t->ndim, t->shape, SW_DEV_CPU, SW_MEM_WEIGHTS));
    *cs = c;
    lsw_check(L, &ctx, sw_tensor_new(&ctx, &a, SW_F32, t->ndim, ashape, SW_DEV_CPU, SW_MEM_WEIGHTS));
    *as = a;
    sw_nf4_quant_cpu(sw_tensor_data(c), sw_tensor_data(a), sw_tensor_data(h), sw_tensor_numel(h));
    return 2;
}

static int nf4_double_quant(lua_State *L) {
    sw_tensor *t = lsw_check_tensor(L, 1);
    sw_tensor *h = host_f32(L, t, "sw.nf4_double_quant");
    int64_t n = sw_tensor_numel(h), n2 = (n + SW_NF4_NESTED_BLOCK - 1) / SW_NF4_NESTED_BLOCK;
    void **qs = lsw_new_object(L, LSW_TENSOR), **as = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *q, *a;
    lsw_check(L, &ctx, sw_tensor_new(&ctx, &q, SW_U8, 1, &n, SW_DEV_CPU, SW_MEM_WEIGHTS));
    *qs = q;
    lsw_check(L, &ctx, sw_tensor_new(&ctx, &a, SW_F32, 1, &n2, SW_DEV_CPU, SW_MEM_WEIGHTS));
    *as = a;
    float *scratch = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(float), 0);
    float offset;
    sw_nf4_double_quant_cpu(sw_tensor_data(q), sw_tensor_data(a), &offset, sw_tensor_data(h), n, scratch);
    lua_pop(L, 1); /* the scratch */
    lua_pushnumber(L, offset);
    return 3;
}

static const luaL_Reg methods[] = {
    {"names", st_names}, {"info", st_info}, {"tensor", st_tensor}, {"bytes", st_bytes},
    {"bnb", st_bnb}, {"metadata", st_metadata}, {"close", st_gc}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", st_gc}, {"__close", st_gc}, {"__index", st_index}, {"__len", st_len},
    {"__tostring", st_tostring}, {NULL, NULL}};

static const char *const fields[] = {"path", "count", NULL};

static const luaL_Reg functions[] = {{"safetensors", st_open}, {"save_safetensors", save},
                                     {"nf4_quantize", nf4_quantize}, {"nf4_double_quant", nf4_double_quant},
                                     {NULL, NULL}};

void lsw_open_safetensors(lua_State *L) {
    lsw_new_class(L, LSW_ST, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0);
}
