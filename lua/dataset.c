/* dataset.c (lua) — stepwise.Dataset: sw.dataset, preview, stats, batches.
 *
 * The userdata holds the core dataset and the cursor of this Lua object's
 * run through it (the trainer keeps its own through the C API). User value 1
 * holds the Tokenizer object the samples were made with and user value 2 the
 * Model it came from, if any: the dataset borrows the tokenizer, so both stay
 * alive as long as it does. A Tokenizer freed by hand is noticed before use.
 *
 * Lua sees sample indices and epochs 1-based, token ids 0-based (as HF
 * prints them), and the cursor as {epoch = e, index = k}: k samples of epoch
 * e handed out so far.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data.h"
#include "lsw.h"

#define LSW_DATASET "stepwise.Dataset"
#define LSW_MODEL "stepwise.Model"
#define LSW_TEXTBOX "stepwise.dataset.text"

static int textbox_gc(lua_State *L);

typedef struct lds {
    sw_dataset *ds; /* first: lsw_check_object reads the slot */
    sw_data_cursor cur;
    bool packing, shuffle;
    uint64_t seed;
} lds;

static lds *check_lds(lua_State *L, int idx) {
    lsw_check_object(L, idx, LSW_DATASET, "Dataset");
    return lua_touserdata(L, idx);
}

struct sw_dataset *lsw_check_dataset(lua_State *L, int idx) { return check_lds(L, idx)->ds; }

/* The tokenizer, checked alive (a user may have freed it by hand). */
static const sw_tokenizer *ds_tok(lua_State *L, int idx) {
    lua_getiuservalue(L, idx, 1);
    const sw_tokenizer *t = lsw_check_tokenizer(L, -1);
    lua_pop(L, 1);
    return t;
}

static int64_t check_index(lua_State *L, const lds *d, int idx, const char *fn) {
    lua_Integer i = luaL_checkinteger(L, idx);
    int64_t n = sw_dataset_count(d->ds);
    if (i < 1 || i > n) luaL_error(L, "%s: sample %I is out of range (1..%I)", fn, i, (lua_Integer)n);
    return i - 1;
}

/* ---- sw.dataset ----------------------------------------------------------------- */

static const char *const ds_opts[] = {"model", "tokenizer", "format", "template", "train_on", "max_len",
                                      "packing", "on_bad", "shuffle", "seed", NULL};

static int ds_new(lua_State *L) {
    const char *fn = "sw.dataset";
    const char *path = luaL_checkstring(L, 1);
    lsw_opts_check(L, 2, fn, ds_opts);
    if (lua_isnoneornil(L, 2)) return luaL_error(L, "%s: pass model = (or tokenizer =) to render the data with", fn);
    lua_settop(L, 2);
    lua_getfield(L, 2, "model");     /* 3 */
    lua_getfield(L, 2, "tokenizer"); /* 4 */
    if (!lua_isnil(L, 3) && !lua_isnil(L, 4))
        return luaL_error(L, "%s: give model = or tokenizer =, not both (a model brings its tokenizer)", fn);
    if (!lua_isnil(L, 3)) {
        if (!luaL_testudata(L, 3, LSW_MODEL))
            return luaL_error(L, "%s: option 'model' must be a Model, got %s", fn, luaL_typename(L, 3));
        lua_getfield(L, 3, "tokenizer"); /* raises if the model was freed */
        if (lua_isnil(L, -1)) return luaL_error(L, "%s: this model was loaded without a tokenizer", fn);
        lua_replace(L, 4);
    } else if (lua_isnil(L, 4)) {
        return luaL_error(L, "%s: pass model = (or tokenizer =) to render the data with", fn);
    }
    sw_dataset_opts o = {.tok = lsw_check_tokenizer(L, 4)};
    const char *f = lsw_opt_string(L, 2, fn, "format", "auto");
    if (!sw_data_format_from_name(f, &o.format))
        return luaL_error(L, "%s: unknown format '%s' (auto, alpaca, sharegpt, messages, prompt_completion, text, "
                             "preference)", fn, f);
    o.chat_template = lsw_opt_string(L, 2, fn, "template", "auto");
    const char *t = lsw_opt_string(L, 2, fn, "train_on", "responses");
    if (!sw_train_on_from_name(t, &o.train_on))
        return luaL_error(L, "%s: train_on must be 'responses', 'all' or 'last_response', got '%s'", fn, t);
    lua_Integer max_len = lsw_opt_integer(L, 2, fn, "max_len", 1024);
    if (max_len < 2) return luaL_error(L, "%s: max_len must be at least 2, got %I", fn, max_len);
    o.max_len = max_len;
    const char *bad = lsw_opt_string(L, 2, fn, "on_bad", "error");
    if (strcmp(bad, "error") && strcmp(bad, "skip"))
        return luaL_error(L, "%s: on_bad must be 'error' or 'skip', got '%s'", fn, bad);
    o.skip_bad = !strcmp(bad, "skip");
    bool packing = lsw_opt_bool(L, 2, fn, "packing", 0), shuffle = lsw_opt_bool(L, 2, fn, "shuffle", 1);
    lua_Integer seed = lsw_opt_integer(L, 2, fn, "seed", 3407);

    lds *d = lua_newuserdatauv(L, sizeof *d, 2); /* 5: born closed */
    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, LSW_DATASET);
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, 5, 1);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, 5, 2);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_dataset_new(&ctx, path, &o, &d->ds));
    d->packing = packing;
    d->shuffle = shuffle;
    d->seed = (uint64_t)seed;
    return 1;
}

/* __gc and __close: idempotent. :free(): the same, but twice is an error. */
static int ds_gc(lua_State *L) {
    lds *d = luaL_checkudata(L, 1, LSW_DATASET);
    sw_dataset_free(d->ds);
    d->ds = NULL;
    return 0;
}

static int ds_free(lua_State *L) {
    lds *d = luaL_checkudata(L, 1, LSW_DATASET);
    if (!d->ds) return luaL_error(L, "Dataset:free: this Dataset was already freed");
    return ds_gc(L);
}

static int ds_len(lua_State *L) {
    lua_pushinteger(L, sw_dataset_count(check_lds(L, 1)->ds));
    return 1;
}

static int ds_tostring(lua_State *L) {
    lds *d = luaL_checkudata(L, 1, LSW_DATASET);
    if (!d->ds) {
        lua_pushliteral(L, "Dataset (freed)");
        return 1;
    }
    sw_dataset_stats s;
    sw_dataset_stats_get(d->ds, &s);
    char extra[64] = "", pct[32];
    if (s.skipped) snprintf(extra, sizeof extra, ", %lld skipped", (long long)s.skipped);
    /* lua_pushfstring has no %.1f */
    snprintf(pct, sizeof pct, "%.1f", s.tokens_kept ? 100.0 * (double)s.trained / (double)s.tokens_kept : 0.0);
    lua_pushfstring(L, "Dataset %s: %I samples%s (%s), template %s, train_on %s\n  %I tokens; %s%% of those within "
                       "max_len %I train; packing %s",
                    sw_dataset_path(d->ds), (lua_Integer)s.count, extra, sw_data_format_name(sw_dataset_format(d->ds)),
                    sw_dataset_template_name(d->ds), sw_train_on_name(sw_dataset_train_on(d->ds)),
                    (lua_Integer)s.tokens, pct, (lua_Integer)sw_dataset_max_len(d->ds), d->packing ? "on" : "off");
    return 1;
}

/* ---- samples ---------------------------------------------------------------------- */

static void push_ints(lua_State *L, const int32_t *v, int64_t n) {
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void set_int(lua_State *L, const char *k, int64_t v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* ds:sample(i) -> {ids, labels, row, n_trained, rejected = {ids, labels}?} */
static int ds_sample(lua_State *L) {
    lds *d = check_lds(L, 1);
    int64_t i = check_index(L, d, 2, "Dataset:sample");
    sw_sample s;
    sw_dataset_sample(d->ds, i, &s);
    lua_createtable(L, 0, 5);
    push_ints(L, s.ids, s.len);
    lua_setfield(L, -2, "ids");
    push_ints(L, s.labels, s.len);
    lua_setfield(L, -2, "labels");
    set_int(L, "row", s.row);
    set_int(L, "n_trained", s.n_trained);
    if (s.rejected_len) {
        lua_createtable(L, 0, 2);
        push_ints(L, s.rejected_ids, s.rejected_len);
        lua_setfield(L, -2, "ids");
        push_ints(L, s.rejected_labels, s.rejected_len);
        lua_setfield(L, -2, "labels");
        lua_setfield(L, -2, "rejected");
    }
    return 1;
}

static void push_messages(lua_State *L, const sw_chat_msg *m, int n) {
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, m[k].role);
        lua_setfield(L, -2, "role");
        lua_pushstring(L, m[k].content);
        lua_setfield(L, -2, "content");
        lua_rawseti(L, -2, k + 1);
    }
}

/* ds:record(i) -> {row, messages = {{role, content}, ...}, rejected = {...}?} */
static int ds_record(lua_State *L) {
    lds *d = check_lds(L, 1);
    int64_t i = check_index(L, d, 2, "Dataset:record");
    sw_sample s;
    sw_dataset_sample(d->ds, i, &s);
    const sw_chat_msg *m;
    lua_createtable(L, 0, 3);
    set_int(L, "row", s.row);
    int n = sw_dataset_messages(d->ds, i, 0, &m);
    push_messages(L, m, n);
    lua_setfield(L, -2, "messages");
    if ((n = sw_dataset_messages(d->ds, i, 1, &m)) > 0) {
        push_messages(L, m, n);
        lua_setfield(L, -2, "rejected");
    }
    return 1;
}

static int display_tostring(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

/* Print the value unless a front end is about to echo it (as sw.mem does). */
static void print_unless_echoing(lua_State *L, int idx) {
    if (lsw_echoing()) return;
    lua_getglobal(L, "print");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 0);
}

static bool use_color(void) {
    const char *nc = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(nc && *nc);
}

/* ds:preview(i) -> {ids, labels, text (as the template rendered it), row,
 * n_trained}; printed (or echoed)
 * with trained text as it is and masked text ⟦in brackets⟧ — or dimmed, with
 * trained text green, on a colour terminal. */
static int ds_preview(lua_State *L) {
    lds *d = check_lds(L, 1);
    int64_t i = check_index(L, d, 2, "Dataset:preview");
    const sw_tokenizer *tok = ds_tok(L, 1);
    sw_sample s;
    sw_dataset_sample(d->ds, i, &s);
    bool color = use_color();
    const char *open_m = color ? "\x1b[2m" : "\xE2\x9F\xA6", *close_m = color ? "\x1b[0m" : "\xE2\x9F\xA7";
    const char *open_t = color ? "\x1b[32m" : "", *close_t = color ? "\x1b[0m" : "";
    int64_t max_len = sw_dataset_max_len(d->ds);

    lua_createtable(L, 0, 6); /* the result */
    int res = lua_gettop(L);
    push_ints(L, s.ids, s.len);
    lua_setfield(L, res, "ids");
    push_ints(L, s.labels, s.len);
    lua_setfield(L, res, "labels");
    set_int(L, "row", s.row);
    set_int(L, "n_trained", s.n_trained);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    char **box = lua_newuserdatauv(L, sizeof *box, 0); /* frees the text if a Lua error unwinds */
    *box = NULL;
    luaL_setmetatable(L, LSW_TEXTBOX);
    size_t tlen;
    lsw_check(L, &ctx, sw_dataset_render(&ctx, d->ds, i, 0, box, &tlen));
    lua_pushlstring(L, *box, tlen);
    lua_setfield(L, res, "text");
    lua_pop(L, 1); /* the box: collected later */

    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char head[256];
    snprintf(head, sizeof head, "sample %lld of %lld (%s %lld): %lld tokens, %lld trained%s\n", (long long)i + 1,
             (long long)sw_dataset_count(d->ds), sw_dataset_rows_are_lines(d->ds) ? "line" : "record",
             (long long)s.row, (long long)s.len, (long long)s.n_trained,
             s.len > max_len ? " (cut at max_len; the rest is shown after ✂)" : "");
    luaL_addstring(&b, head);
    int state = -1; /* 0 masked, 1 trained */
    for (int64_t t = 0; t < s.len; t++) {
        int now = s.labels[t] != SW_LABEL_IGNORE;
        if (t == max_len) {
            luaL_addstring(&b, state == 0 ? close_m : close_t);
            luaL_addstring(&b, "✂");
            state = -1;
        }
        if (now != state) {
            if (state >= 0) luaL_addstring(&b, state == 0 ? close_m : close_t);
            luaL_addstring(&b, now ? open_t : open_m);
            state = now;
        }
        size_t bl = 0;
        const char *bytes = sw_tokenizer_token_bytes(tok, s.ids[t], &bl);
        if (bytes) luaL_addlstring(&b, bytes, bl);
    }
    if (state >= 0) luaL_addstring(&b, state == 0 ? close_m : close_t);
    luaL_addstring(&b, color ? "\n(\x1b[32mgreen\x1b[0m trains; \x1b[2mdim\x1b[0m is masked)"
                             : "\n(⟦…⟧ is masked; the rest trains)");
    luaL_pushresult(&b);
    lua_createtable(L, 0, 2); /* metatable: tostring shows the preview */
    lua_pushliteral(L, "stepwise.Preview");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, display_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, res);
    lua_pop(L, 1);
    print_unless_echoing(L, res);
    return 1;
}

/* ---- stats -------------------------------------------------------------------------- */

/* ds:stats() -> the numbers and the data checks; printed (or echoed). The
 * layout lives in the prelude (sw._DatasetStats). */
static int ds_stats(lua_State *L) {
    lds *d = check_lds(L, 1);
    sw_dataset_stats s;
    sw_dataset_stats_get(d->ds, &s);
    lua_createtable(L, 0, 16);
    int res = lua_gettop(L);
    lua_pushstring(L, sw_dataset_path(d->ds));
    lua_setfield(L, res, "path");
    lua_pushstring(L, sw_data_format_name(sw_dataset_format(d->ds)));
    lua_setfield(L, res, "format");
    set_int(L, "count", s.count);
    set_int(L, "skipped", s.skipped);
    set_int(L, "tokens", s.tokens);
    set_int(L, "tokens_kept", s.tokens_kept);
    set_int(L, "trained", s.trained);
    lua_pushnumber(L, s.tokens_kept ? (double)s.trained / (double)s.tokens_kept : 0.0);
    lua_setfield(L, res, "trained_fraction");
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, s.mean_len);
    lua_setfield(L, -2, "mean");
    set_int(L, "min", s.min_len);
    set_int(L, "median", s.median_len);
    set_int(L, "p95", s.p95_len);
    set_int(L, "p99", s.p99_len);
    set_int(L, "max", s.max_len_seen);
    lua_setfield(L, res, "length");
    set_int(L, "truncated", s.truncated);
    set_int(L, "max_len", sw_dataset_max_len(d->ds));
    set_int(L, "suggested_max_len", s.suggested_max_len);
    lua_pushstring(L, sw_dataset_rows_are_lines(d->ds) ? "line" : "record");
    lua_setfield(L, res, "row_name");
    lua_createtable(L, 0, SW_CHECK_COUNT);
    for (int c = 0; c < SW_CHECK_COUNT; c++) {
        const sw_data_issue *is;
        int64_t n = sw_dataset_issues(d->ds, (sw_data_check)c, &is);
        lua_createtable(L, (int)n, 0);
        for (int64_t k = 0; k < n; k++) {
            lua_createtable(L, 0, 3);
            set_int(L, "row", is[k].row);
            if (is[k].other) set_int(L, "of", is[k].other);
            lua_pushstring(L, is[k].what);
            lua_setfield(L, -2, "what");
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, sw_data_check_name((sw_data_check)c));
    }
    lua_setfield(L, res, "checks");
    lua_getglobal(L, "sw");
    if (lua_getfield(L, -1, "_DatasetStats") == LUA_TTABLE) lua_setmetatable(L, res);
    else lua_pop(L, 1);
    lua_pop(L, 1);
    print_unless_echoing(L, res);
    return 1;
}

/* ---- batches -------------------------------------------------------------------------- */

static void push_batch(lua_State *L, const sw_batch *b) {
    lua_createtable(L, 0, 14);
    const char *names[] = {"ids", "labels", "positions"};
    const int32_t *arrays[] = {b->ids, b->labels, b->positions};
    for (int a = 0; a < 3; a++) {
        lua_createtable(L, (int)b->rows, 0);
        for (int64_t r = 0; r < b->rows; r++) {
            push_ints(L, arrays[a] + r * b->len, b->len);
            lua_rawseti(L, -2, r + 1);
        }
        lua_setfield(L, -2, names[a]);
    }
    lua_createtable(L, (int)b->rows, 0); /* offsets per row */
    lua_createtable(L, (int)b->rows, 0); /* samples per row, 1-based */
    int64_t k = 0;
    for (int64_t r = 0; r < b->rows; r++) {
        int64_t a = b->row_start[r], e = b->row_start[r + 1];
        push_ints(L, b->offsets + a, e - a);
        lua_rawseti(L, -3, r + 1);
        lua_createtable(L, (int)(e - a - 1), 0);
        for (int64_t j = 0; j < e - a - 1; j++) {
            lua_pushinteger(L, b->samples[k++] + 1);
            lua_rawseti(L, -2, j + 1);
        }
        lua_rawseti(L, -2, r + 1);
    }
    lua_setfield(L, -3, "samples");
    lua_setfield(L, -2, "offsets");
    set_int(L, "rows", b->rows);
    set_int(L, "len", b->len);
    set_int(L, "n_samples", b->n_samples);
    set_int(L, "n_tokens", b->n_tokens);
    set_int(L, "n_trained", b->n_trained);
    set_int(L, "n_truncated", b->n_truncated);
    set_int(L, "pad_id", b->pad_id);
    set_int(L, "epoch", b->start.epoch + 1);
    set_int(L, "index", b->start.index);
    lua_getglobal(L, "sw");
    if (lua_getfield(L, -1, "_Batch") == LUA_TTABLE) lua_setmetatable(L, -3);
    else lua_pop(L, 1);
    lua_pop(L, 1);
}

/* A batch parked in a box whose __gc frees it if a Lua error unwinds. */
#define LSW_BATCHBOX "stepwise.batch.box"

static int box_gc(lua_State *L) {
    sw_batch_free(luaL_checkudata(L, 1, LSW_BATCHBOX));
    return 0;
}

static int textbox_gc(lua_State *L) {
    char **box = luaL_checkudata(L, 1, LSW_TEXTBOX);
    free(*box);
    *box = NULL;
    return 0;
}

static const char *const batch_opts[] = {"packing", NULL};

static int next_batch(lua_State *L, lds *d, lua_Integer n, int opts, const char *fn) {
    if (n < 1) return luaL_error(L, "%s: the batch size must be positive, got %I", fn, n);
    lsw_opts_check(L, opts, fn, batch_opts);
    sw_batch_opts o = {.rows = n, .packing = lsw_opt_bool(L, opts, fn, "packing", d->packing),
                       .shuffle = d->shuffle, .seed = d->seed};
    sw_batch *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, LSW_BATCHBOX);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_data_cursor cur = d->cur;
    lsw_check(L, &ctx, sw_dataset_batch(&ctx, d->ds, &o, &cur, b));
    push_batch(L, b);
    sw_batch_free(b);
    d->cur = cur; /* only once the table is built: an error leaves the cursor */
    return 1;
}

/* ds:batch(n, {packing=}) -> the next batch; the cursor moves past it. */
static int ds_batch(lua_State *L) {
    lds *d = check_lds(L, 1);
    return next_batch(L, d, luaL_checkinteger(L, 2), 3, "Dataset:batch");
}

static int batches_iter(lua_State *L) {
    lds *d = check_lds(L, lua_upvalueindex(1));
    if (d->cur.index >= sw_dataset_count(d->ds)) return 0;
    return next_batch(L, d, lua_tointeger(L, lua_upvalueindex(2)), lua_upvalueindex(3), "Dataset:batches");
}

/* for b in ds:batches(n, opts) do ... end: the rest of the current epoch
 * (a whole epoch when the last one ended). */
static int ds_batches(lua_State *L) {
    lds *d = check_lds(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 1) return luaL_error(L, "Dataset:batches: the batch size must be positive, got %I", n);
    lsw_opts_check(L, 3, "Dataset:batches", batch_opts);
    if (d->cur.index >= sw_dataset_count(d->ds)) d->cur = (sw_data_cursor){d->cur.epoch + 1, 0};
    lua_settop(L, 3);
    lua_pushcclosure(L, batches_iter, 3);
    return 1;
}

static void push_cursor(lua_State *L, const lds *d) {
    lua_createtable(L, 0, 2);
    set_int(L, "epoch", d->cur.epoch + 1);
    set_int(L, "index", d->cur.index);
}

/* ds:seek{epoch =, index =}: resume where a saved cursor points. */
static int ds_seek(lua_State *L) {
    lds *d = check_lds(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const keys[] = {"epoch", "index", NULL};
    lsw_opts_check(L, 2, "Dataset:seek", keys);
    lua_Integer e = lsw_opt_integer(L, 2, "Dataset:seek", "epoch", 1);
    lua_Integer i = lsw_opt_integer(L, 2, "Dataset:seek", "index", 0);
    int64_t n = sw_dataset_count(d->ds);
    if (e < 1 || i < 0 || i > n)
        return luaL_error(L, "Dataset:seek: cursor {epoch = %I, index = %I} is outside this dataset (epoch >= 1, "
                             "index 0..%I)", e, i, (lua_Integer)n);
    d->cur = (sw_data_cursor){e - 1, i};
    return 0;
}

/* ---- fields ----------------------------------------------------------------------------- */


static int ds_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    lds *d = check_lds(L, 1);
    if (!strcmp(k, "cursor")) push_cursor(L, d);
    else if (!strcmp(k, "path")) lua_pushstring(L, sw_dataset_path(d->ds));
    else if (!strcmp(k, "format")) lua_pushstring(L, sw_data_format_name(sw_dataset_format(d->ds)));
    else if (!strcmp(k, "template")) lua_pushstring(L, sw_dataset_template_name(d->ds));
    else if (!strcmp(k, "train_on")) lua_pushstring(L, sw_train_on_name(sw_dataset_train_on(d->ds)));
    else if (!strcmp(k, "max_len")) lua_pushinteger(L, sw_dataset_max_len(d->ds));
    else if (!strcmp(k, "packing")) lua_pushboolean(L, d->packing);
    else if (!strcmp(k, "shuffle")) lua_pushboolean(L, d->shuffle);
    else if (!strcmp(k, "seed")) lua_pushinteger(L, (lua_Integer)d->seed);
    else if (!strcmp(k, "tokenizer")) lua_getiuservalue(L, 1, 1);
    else if (!strcmp(k, "model")) lua_getiuservalue(L, 1, 2);
    else if (!strcmp(k, "skipped")) {
        sw_dataset_stats s;
        sw_dataset_stats_get(d->ds, &s);
        lua_pushinteger(L, s.skipped);
    } else {
        return lsw_no_field(L, 1, "Dataset", k);
    }
    return 1;
}

/* ds.cursor = saved; ds.packing = true. */
static int ds_newindex(lua_State *L) {
    lds *d = check_lds(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "cursor")) {
        lua_pushcfunction(L, ds_seek);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 3);
        lua_call(L, 2, 0);
    } else if (!strcmp(k, "packing")) {
        luaL_checktype(L, 3, LUA_TBOOLEAN);
        d->packing = lua_toboolean(L, 3);
    } else {
        return luaL_error(L, "Dataset: field '%s' cannot be set (settable: cursor, packing)", k);
    }
    return 0;
}

static const luaL_Reg methods[] = {{"free", ds_free},       {"preview", ds_preview}, {"stats", ds_stats},
                                   {"sample", ds_sample},   {"record", ds_record},   {"batch", ds_batch},
                                   {"batches", ds_batches}, {"seek", ds_seek},       {NULL, NULL}};
static const luaL_Reg metamethods[] = {{"__gc", ds_gc},         {"__close", ds_gc},         {"__tostring", ds_tostring},
                                       {"__len", ds_len},       {"__index", ds_index},      {"__newindex", ds_newindex},
                                       {NULL, NULL}};
static const char *const fields[] = {"cursor", "path", "format", "template", "train_on", "max_len", "packing",
                                     "shuffle", "seed", "tokenizer", "model", "skipped", NULL};
static const luaL_Reg functions[] = {{"dataset", ds_new}, {NULL, NULL}};

void lsw_open_dataset(lua_State *L) {
    lsw_new_class(L, LSW_DATASET, methods, metamethods, fields);
    luaL_newmetatable(L, LSW_BATCHBOX);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, LSW_TEXTBOX);
    lua_pushcfunction(L, textbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
