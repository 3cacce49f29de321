/* mem.c (lua) — sw._mem(), sw.mem_reset_peak(), sw.mem_limit(): the
 * accounting allocator seen from Lua. prelude.lua wraps sw._mem() into the
 * printed sw.mem() table. */
#include <string.h>

#include "lsw.h"

static void push_device(lua_State *L, sw_device d) {
    sw_mem_stats s;
    sw_mem_get(d, &s);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)s.total_now);
    lua_setfield(L, -2, "now");
    lua_pushinteger(L, (lua_Integer)s.total_peak[SW_PEAK_SESSION]);
    lua_setfield(L, -2, "peak");
    lua_pushinteger(L, (lua_Integer)s.allocs);
    lua_setfield(L, -2, "allocations");
    if (s.limit) {
        lua_pushinteger(L, (lua_Integer)s.limit);
        lua_setfield(L, -2, "limit");
    }
    lua_createtable(L, 0, SW_MEM_CAT_COUNT);
    for (int c = 0; c < SW_MEM_CAT_COUNT; c++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)s.now[c]);
        lua_setfield(L, -2, "now");
        lua_pushinteger(L, (lua_Integer)s.peak[SW_PEAK_SESSION][c]);
        lua_setfield(L, -2, "peak");
        lua_setfield(L, -2, sw_mem_cat_name((sw_mem_cat)c));
    }
    lua_setfield(L, -2, "categories");
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    size_t fr, tot;
    if (sw_device_meminfo(&ctx, d, &fr, &tot) == SW_OK) {
        lua_pushinteger(L, (lua_Integer)fr);
        lua_setfield(L, -2, "device_free");
        lua_pushinteger(L, (lua_Integer)tot);
        lua_setfield(L, -2, "device_total");
    }
    if (d == SW_DEV_CPU) {
        lua_pushinteger(L, (lua_Integer)sw_mem_host_rss());
        lua_setfield(L, -2, "rss");
        lua_pushinteger(L, (lua_Integer)sw_mem_host_peak_rss());
        lua_setfield(L, -2, "rss_peak");
    }
}

/* sw._mem() -> { devices = {"cpu", "cuda:0"}, cpu = {...}, ["cuda:0"] = {...} } */
static int m_raw(lua_State *L) {
    int n = 1 + sw_device_cuda_count();
    lua_createtable(L, 0, n + 1);
    lua_createtable(L, n, 0);
    for (int d = 0; d < n; d++) {
        char name[SW_DEVICE_NAME_MAX];
        sw_device_name(d, name, sizeof name);
        lua_pushstring(L, name);
        lua_rawseti(L, -2, d + 1);
        push_device(L, d);
        lua_setfield(L, -3, name);
    }
    lua_setfield(L, -2, "devices");
    lua_createtable(L, SW_MEM_CAT_COUNT, 0);
    for (int c = 0; c < SW_MEM_CAT_COUNT; c++) {
        lua_pushstring(L, sw_mem_cat_name((sw_mem_cat)c));
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "category_names");
    return 1;
}

static sw_device device_arg(lua_State *L, int idx, const char *fn) {
    if (lua_isnoneornil(L, idx)) return SW_DEV_CPU;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_device d;
    if (sw_device_parse(&ctx, luaL_checkstring(L, idx), &d)) luaL_error(L, "%s: %s", fn, ctx.msg);
    return d;
}

/* sw.mem_reset_peak([device]): every device when none is named. */
static int m_reset_peak(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        for (int d = 0; d <= sw_device_cuda_count(); d++) sw_mem_reset_peak(d, SW_PEAK_SESSION);
    } else {
        sw_mem_reset_peak(device_arg(L, 1, "sw.mem_reset_peak"), SW_PEAK_SESSION);
    }
    return 0;
}

/* sw.mem_limit(device, bytes | nil): cap what the allocator hands out on a
 * device (nil or 0 removes the cap). Returns the previous limit or nil. */
static int m_limit(lua_State *L) {
    sw_device d = device_arg(L, 1, "sw.mem_limit");
    lua_Integer bytes = luaL_optinteger(L, 2, 0);
    if (bytes < 0) luaL_error(L, "sw.mem_limit: bytes must be >= 0");
    sw_mem_stats s;
    sw_mem_get(d, &s);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_mem_set_limit(&ctx, d, (size_t)bytes));
    if (s.limit) lua_pushinteger(L, (lua_Integer)s.limit);
    else lua_pushnil(L);
    return 1;
}

static const luaL_Reg functions[] = {
    {"_mem", m_raw}, {"mem_reset_peak", m_reset_peak}, {"mem_limit", m_limit}, {NULL, NULL}};

void lsw_open_mem(lua_State *L) { luaL_setfuncs(L, functions, 0); }
