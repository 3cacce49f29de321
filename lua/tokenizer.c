/* tokenizer.c — stepwise.Tokenizer: sw.tokenizer(path) and its methods.
 *
 * Ids are 0-based integers, as HF prints them and as the model's embedding
 * rows are numbered: only tensor indices and dimensions are 1-based in Lua.
 * encode() adds special tokens (BOS...) by default, like HF; decode() keeps
 * special tokens by default, like transformers, so nothing vanishes unseen.
 */
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/tokenizer.h"
#include "lsw.h"

sw_tokenizer *lsw_check_tokenizer(lua_State *L, int idx) {
    return lsw_check_object(L, idx, LSW_TOKENIZER, "Tokenizer");
}

void lsw_push_tokenizer(lua_State *L, sw_tokenizer *t) {
    void **slot = lsw_new_object(L, LSW_TOKENIZER);
    *slot = t;
}

/* A malloc'd result (ids, text) is parked in a box whose __gc frees it, so a
 * Lua error while it is being copied out (out of memory) cannot leak it. */
#define LSW_TOKBOX "stepwise.tokenizer.box"

static void **new_box(lua_State *L) {
    void **box = lua_newuserdatauv(L, sizeof(void *), 0);
    *box = NULL;
    luaL_setmetatable(L, LSW_TOKBOX);
    return box;
}

static int box_gc(lua_State *L) {
    void **box = luaL_checkudata(L, 1, LSW_TOKBOX);
    free(*box);
    *box = NULL;
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* sw.tokenizer(path): a tokenizer.json, a directory holding one, or a .gguf. */
static int tok_new(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    void **slot = lsw_new_object(L, LSW_TOKENIZER); /* born closed: an error leaks nothing */
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tokenizer *t = NULL;
    if (ends_with(path, ".gguf")) {
        sw_gguf *g;
        lsw_check(L, &ctx, sw_gguf_open(&ctx, path, &g));
        sw_status st = sw_tokenizer_from_gguf(&ctx, g, &t);
        sw_gguf_close(g);
        lsw_check(L, &ctx, st);
    } else {
        lsw_check(L, &ctx, sw_tokenizer_from_json(&ctx, path, &t));
    }
    *slot = t;
    return 1;
}

static int tok_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TOKENIZER);
    sw_tokenizer_free(*slot);
    *slot = NULL;
    return 0;
}

static int tok_free(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TOKENIZER);
    if (!*slot) luaL_error(L, "Tokenizer:free: this Tokenizer was already freed");
    return tok_gc(L);
}

/* tok:encode(text, {add_special = true}) -> {id, id, ...} */
static int tok_encode(lua_State *L) {
    static const char *const keys[] = {"add_special", NULL};
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    lsw_opts_check(L, 3, "Tokenizer:encode", keys);
    bool add = lsw_opt_bool(L, 3, "Tokenizer:encode", "add_special", 1);
    void **box = new_box(L);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    int32_t *ids;
    int64_t n;
    lsw_check(L, &ctx, sw_tokenizer_encode(&ctx, t, text, len, add, &ids, &n));
    *box = ids;
    if (n > INT32_MAX) luaL_error(L, "Tokenizer:encode: %I tokens is too many for a Lua table", (lua_Integer)n);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ids from a Lua array; the buffer is a Lua userdata, so an error frees it. */
static int32_t *read_ids(lua_State *L, int idx, const char *fn, int64_t *n) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    int32_t *ids = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *ids, 0);
    for (lua_Integer i = 0; i < len; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < INT32_MIN || v > INT32_MAX)
            luaL_error(L, "%s: entry %I must be an integer token id, got %s", fn, i + 1, luaL_typename(L, -1));
        ids[i] = (int32_t)v;
        lua_pop(L, 1);
    }
    *n = len;
    return ids;
}

/* tok:decode(ids, {skip_special = false}) -> text */
static int tok_decode(lua_State *L) {
    static const char *const keys[] = {"skip_special", NULL};
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    lsw_opts_check(L, 3, "Tokenizer:decode", keys);
    bool skip = lsw_opt_bool(L, 3, "Tokenizer:decode", "skip_special", 0);
    int64_t n;
    int32_t *ids = read_ids(L, 2, "Tokenizer:decode", &n);
    void **box = new_box(L);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    char *s;
    size_t len;
    if (sw_tokenizer_decode(&ctx, t, ids, n, skip, &s, &len)) {
        lua_pushfstring(L, "Tokenizer:%s", ctx.msg);
        return lua_error(L);
    }
    *box = s;
    lua_pushlstring(L, s, len);
    return 1;
}

static int32_t check_id(lua_State *L, sw_tokenizer *t, int idx, const char *fn) {
    lua_Integer id = luaL_checkinteger(L, idx);
    if (id < 0 || id >= sw_tokenizer_vocab_size(t) || !sw_tokenizer_piece(t, (int32_t)id, NULL))
        luaL_error(L, "%s: id %I is not a token (vocabulary: 0..%d)", fn, id, (int)sw_tokenizer_vocab_size(t) - 1);
    return (int32_t)id;
}

/* tok:token(id) -> the text bytes the token stands for (" hello") */
static int tok_token(lua_State *L) {
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    size_t len;
    const char *s = sw_tokenizer_token_bytes(t, check_id(L, t, 2, "Tokenizer:token"), &len);
    lua_pushlstring(L, s, len);
    return 1;
}

/* tok:piece(id) -> the vocabulary entry ("Ġhello") */
static int tok_piece(lua_State *L) {
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    size_t len;
    const char *s = sw_tokenizer_piece(t, check_id(L, t, 2, "Tokenizer:piece"), &len);
    lua_pushlstring(L, s, len);
    return 1;
}

/* tok:id("Ġhello" or " hello") -> id, or nil */
static int tok_id(lua_State *L) {
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int32_t id = sw_tokenizer_id(t, s, len);
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int tok_is_special(lua_State *L) {
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    lua_pushboolean(L, sw_tokenizer_is_special(t, check_id(L, t, 2, "Tokenizer:is_special")));
    return 1;
}

static int tok_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_TOKENIZER);
    if (!*slot) lua_pushliteral(L, "Tokenizer (freed)");
    else lua_pushfstring(L, "Tokenizer %s", sw_tokenizer_describe(*slot));
    return 1;
}

static void push_id_or_nil(lua_State *L, int32_t id) {
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
}


static int tok_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_tokenizer *t = lsw_check_tokenizer(L, 1);
    if (!strcmp(k, "vocab_size")) lua_pushinteger(L, sw_tokenizer_vocab_size(t));
    else if (!strcmp(k, "bos_id")) push_id_or_nil(L, sw_tokenizer_bos(t));
    else if (!strcmp(k, "eos_id")) push_id_or_nil(L, sw_tokenizer_eos(t));
    else if (!strcmp(k, "pad_id")) push_id_or_nil(L, sw_tokenizer_pad(t));
    else if (!strcmp(k, "unk_id")) push_id_or_nil(L, sw_tokenizer_unk(t));
    else if (!strcmp(k, "chat_template")) {
        const char *s = sw_tokenizer_chat_template(t);
        if (s) lua_pushstring(L, s);
        else lua_pushnil(L);
    } else if (!strcmp(k, "description")) lua_pushstring(L, sw_tokenizer_describe(t));
    else return lsw_no_field(L, 1, "Tokenizer", k);
    return 1;
}

static const luaL_Reg methods[] = {
    {"free", tok_free},   {"encode", tok_encode}, {"decode", tok_decode},         {"token", tok_token},
    {"piece", tok_piece}, {"id", tok_id},         {"is_special", tok_is_special}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", tok_gc}, {"__close", tok_gc}, {"__tostring", tok_tostring}, {"__index", tok_index}, {NULL, NULL}};

static const char *const fields[] = {"vocab_size", "bos_id", "eos_id", "pad_id", "unk_id",
                                     "chat_template", "description", NULL};

static const luaL_Reg functions[] = {{"tokenizer", tok_new}, {NULL, NULL}};

void lsw_open_tokenizer(lua_State *L) {
    lsw_new_class(L, LSW_TOKENIZER, methods, metamethods, fields);
    luaL_newmetatable(L, LSW_TOKBOX);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
