/* sw.c — the `sw` module: devices, profiling switches, sleep, and the state
 * that front ends create. Classes register themselves from their own files
 * (tensor.c, mem.c); pure-Lua helpers live in prelude.lua, display.lua
 * and notebook.lua. */
#include <lualib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/interrupt.h"
#include "lsw.h"

extern const char sw_prelude_lua[];
extern const size_t sw_prelude_lua_len;
extern const char sw_display_lua[];
extern const size_t sw_display_lua_len;
extern const char sw_notebook_lua[];
extern const size_t sw_notebook_lua_len;

static bool profile_on;
static bool echoing;

bool lsw_profile_enabled(void) { return profile_on; }
void lsw_profile_set(bool on) { profile_on = on; }
void lsw_set_echoing(bool on) { echoing = on; }
bool lsw_echoing(void) { return echoing; }

double lsw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* sw.profile([on]) -> previous setting. */
static int sw_profile(lua_State *L) {
    bool was = profile_on;
    if (!lua_isnone(L, 1)) {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        profile_on = lua_toboolean(L, 1);
    }
    lua_pushboolean(L, was);
    return 1;
}

/* sw.now() -> monotonic seconds, for timing cells and benchmarks. */
static int sw_now_(lua_State *L) {
    lua_pushnumber(L, lsw_now());
    return 1;
}

static int sw_echoing_get(lua_State *L) {
    lua_pushboolean(L, echoing);
    return 1;
}

/* sw.sleep(seconds): waits, polling the interrupt flag every 10 ms — the
 * same pattern every long C loop follows. */
static int sw_sleep(lua_State *L) {
    double secs = luaL_checknumber(L, 1);
    double end = lsw_now() + secs;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    for (;;) {
        lsw_check(L, &ctx, sw_interrupt_check(&ctx));
        double left = end - lsw_now();
        if (left <= 0) break;
        if (left > 0.01) left = 0.01;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* sw.devices() -> { {name="cpu", description=...}, {name="cuda:0", ...} } */
static int sw_devices(lua_State *L) {
    lua_newtable(L);
    int n = 1 + sw_device_cuda_count();
    for (int i = 0; i < n; i++) {
        char name[SW_DEVICE_NAME_MAX], desc[160];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, sw_device_name(i, name, sizeof name));
        lua_setfield(L, -2, "name");
        lua_pushstring(L, sw_device_describe(i, desc, sizeof desc));
        lua_setfield(L, -2, "description");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg functions[] = {
    {"profile", sw_profile}, {"sleep", sw_sleep}, {"devices", sw_devices},
    {"_echoing", sw_echoing_get}, {"now", sw_now_}, {NULL, NULL}};

int luaopen_sw(lua_State *L) {
    luaL_newlib(L, functions);
    lua_pushstring(L, "0.1.0");
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, sw_device_cuda_built());
    lua_setfield(L, -2, "cuda_built");
    lsw_open_tensor(L);
    lsw_open_mem(L);
    lsw_open_model(L);
    lsw_open_lora(L);
    lsw_open_optim(L);
    lsw_open_tokenizer(L);
    lsw_open_dataset(L);
    lsw_open_trainer(L);
    lsw_open_bench(L);
    lsw_open_gguf(L);
    lsw_open_safetensors(L);
    lsw_open_chat(L);
    lsw_open_ranks(L);
    return 1;
}

static int open_all(lua_State *L) {
    luaL_openlibs(L);
    luaL_requiref(L, "sw", luaopen_sw, 1);
    lua_pop(L, 1);
    /* display.lua builds on the prelude (sw.repr, the memory table). */
    if (luaL_loadbuffer(L, sw_prelude_lua, sw_prelude_lua_len, "=prelude.lua")) return lua_error(L);
    lua_call(L, 0, 0);
    if (luaL_loadbuffer(L, sw_display_lua, sw_display_lua_len, "=display.lua")) return lua_error(L);
    lua_call(L, 0, 0);
    if (luaL_loadbuffer(L, sw_notebook_lua, sw_notebook_lua_len, "=notebook.lua")) return lua_error(L);
    lua_call(L, 0, 0);
    return 0;
}

lua_State *lsw_newstate(void) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "stepwise: cannot create a Lua state (out of memory)\n");
        return NULL;
    }
    lua_pushcfunction(L, open_all);
    if (lua_pcall(L, 0, 0, 0)) {
        fprintf(stderr, "stepwise: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}
