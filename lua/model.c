/* model.c (lua) — stepwise.Model: sw.load, printing, logits, generation.
 *
 * The userdata holds the core model; its user value 1 holds the model's
 * Tokenizer object (when the source had one), so `model.tokenizer` is
 * always the same object and lives as long as the model does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "core/chat.h"
#include "core/load.h"
#include "core/sample.h"
#include "core/tokenizer.h"
#include "lsw.h"
#include "core/gpu.h"

#define LSW_MODEL "stepwise.Model"
#define DEFAULT_MODEL "smollm2-135m-instruct"
#define DEFAULT_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"

sw_model *lsw_check_model(lua_State *L, int idx) { return lsw_check_object(L, idx, LSW_MODEL, "Model"); }

/* The cache the bootstrap fills: $STEPWISE_CACHE, $XDG_CACHE_HOME/stepwise
 * or ~/.cache/stepwise. */
static void cache_path(char *buf, size_t n, const char *file) {
    const char *c = getenv("STEPWISE_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (c && *c) snprintf(buf, n, "%s/%s", c, file);
    else if (x && *x) snprintf(buf, n, "%s/stepwise/%s", x, file);
    else snprintf(buf, n, "%s/.cache/stepwise/%s", h ? h : ".", file);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *const load_opts[] = {"quant", "max_seq", "device", NULL};

/* Where sw.load puts the training copy when the call names no device: the
 * `stepwise --device` flag or sw.default_device(), else $STEPWISE_DEVICE,
 * else the CPU. So a tutorial runs on a GPU without being edited. */
static char default_device[32];

/* "cpu" -> -2, "emulate" -> SW_GPU_EMULATE, "cuda" / "cuda:N" -> N; anything
 * else -> -3. */
static int parse_device(const char *dev) {
    if (!strcmp(dev, "cpu")) return -2;
    if (!strcmp(dev, "emulate")) return SW_GPU_EMULATE;
    if (!strcmp(dev, "cuda")) return lsw_ranks_rank(); /* rank r of --gpus N: GPU r */
    if (!strncmp(dev, "cuda:", 5) && dev[5]) {
        char *end;
        long i = strtol(dev + 5, &end, 10);
        if (!*end && dev[5] >= '0' && dev[5] <= '9' && i < 64) return (int)i;
    }
    return -3;
}

bool lsw_set_default_device(const char *name) {
    if (!name || strlen(name) >= sizeof default_device || parse_device(name) == -3) return false;
    snprintf(default_device, sizeof default_device, "%s", name);
    return true;
}

const char *lsw_default_device(void) {
    if (default_device[0]) return default_device;
    const char *e = getenv("STEPWISE_DEVICE");
    return e && *e ? e : "cpu";
}

/* sw.default_device([name]) -> the default before the call. */
static int m_default_device(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    lua_pushstring(L, lsw_default_device());
    if (name && !lsw_set_default_device(name))
        return luaL_error(L, "sw.default_device: '%s' is not one of cpu, cuda, cuda:N, emulate", name);
    return 1;
}

/* sw.load(name_or_path, {quant=, max_seq=, device=}) */
static int m_load(lua_State *L) {
    const char *what = luaL_checkstring(L, 1);
    lsw_opts_check(L, 2, "sw.load", load_opts);
    sw_load_opts o = {SW_LOAD_KEEP, 0};
    const char *q = lsw_opt_string(L, 2, "sw.load", "quant", "keep");
    if (!sw_load_quant_from_name(q, &o.quant))
        return luaL_error(L, "sw.load: unknown quant '%s' (keep, nf4, bf16, f16, f32)", q);
    o.max_seq = lsw_opt_integer(L, 2, "sw.load", "max_seq", 0);
    if (o.max_seq < 0) return luaL_error(L, "sw.load: max_seq must be positive");
    const char *dev = lsw_opt_string(L, 2, "sw.load", "device", NULL);
    bool from_default = !dev;
    if (!dev) dev = lsw_default_device();
    /* "cuda[:i]": training runs on GPU i (generation stays on the CPU copy);
     * "emulate": the GPU code path on host memory, for testing it anywhere. */
    int gpu_dev = parse_device(dev);
    if (gpu_dev == -3)
        return luaL_error(L, "sw.load: device '%s'%s is not one of cpu, cuda, cuda:N, emulate", dev,
                          from_default && !default_device[0] ? " (from STEPWISE_DEVICE)" : "");
    char path[4096];
    if (!strcmp(what, DEFAULT_MODEL)) {
        cache_path(path, sizeof path, DEFAULT_FILE);
        FILE *f = fopen(path, "rb");
        if (!f) return luaL_error(L, "sw.load: %s is not in the cache (%s); run ./bootstrap to fetch it", what, path);
        fclose(f);
    } else {
        snprintf(path, sizeof path, "%s", what);
    }
    void **slot = lsw_new_object(L, LSW_MODEL);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_model *m = NULL;
    if (ends_with(path, ".gguf")) {
        sw_gguf *g;
        if (sw_gguf_open(&ctx, path, &g)) return luaL_error(L, "sw.load: %s", ctx.msg);
        sw_tokenizer *tok = NULL;
        sw_status st = sw_load_gguf(&ctx, g, &o, &m);
        if (st == SW_OK && sw_gguf_find_key(g, "tokenizer.ggml.model") >= 0) {
            st = sw_tokenizer_from_gguf(&ctx, g, &tok);
            if (st) sw_model_free(m);
        }
        sw_gguf_close(g);
        if (st) return luaL_error(L, "sw.load: %s", ctx.msg);
        *slot = m;
        if (tok) {
            lsw_push_tokenizer(L, tok);
            lua_setiuservalue(L, -2, 1);
        }
    } else {
        if (sw_load_hf(&ctx, path, &o, &m)) return luaL_error(L, "sw.load: %s", ctx.msg);
        *slot = m;
        /* The tokenizer is optional: a weights-only directory still loads. */
        char tj[4200];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", path);
        FILE *f = fopen(tj, "rb");
        if (f) {
            fclose(f);
            sw_tokenizer *tok;
            if (sw_tokenizer_from_json(&ctx, path, &tok)) return luaL_error(L, "sw.load: %s", ctx.msg);
            lsw_push_tokenizer(L, tok);
            lua_setiuservalue(L, -2, 1);
        }
    }
    if (gpu_dev != -2) {
        sw_gpu_opts go = {.weights = SW_GPU_W_AS_STORED};
        if (sw_gpu_new(&ctx, m, gpu_dev, &go, &m->gpu)) return luaL_error(L, "sw.load: %s", ctx.msg);
    }
    return 1;
}

static int m_gc(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_MODEL);
    sw_model_free(*slot);
    *slot = NULL;
    return 0;
}

static int m_free(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_MODEL);
    if (!*slot) return luaL_error(L, "Model:free: this Model was already freed");
    return m_gc(L);
}

static const char *human_count(double n, char *buf, size_t len) {
    if (n >= 1e9) snprintf(buf, len, "%.2fB", n / 1e9);
    else if (n >= 1e6) snprintf(buf, len, "%.1fM", n / 1e6);
    else if (n >= 1e3) snprintf(buf, len, "%.1fK", n / 1e3);
    else snprintf(buf, len, "%.0f", n);
    return buf;
}

static int m_tostring(lua_State *L) {
    void **slot = luaL_checkudata(L, 1, LSW_MODEL);
    if (!*slot) {
        lua_pushliteral(L, "Model (freed)");
        return 1;
    }
    const sw_model *m = *slot;
    const sw_model_config *c = &m->cfg;
    char p1[32], p2[32], wb[32], kv[32];
    size_t kvbytes = 0;
    for (int64_t i = 0; i < c->n_layers; i++) kvbytes += sw_tensor_nbytes(m->k_cache[i]) + sw_tensor_nbytes(m->v_cache[i]);
    lua_pushfstring(L,
                    "Model %s (%s)\n"
                    "  layers %d, hidden %d, heads %d (kv %d, dim %d), mlp %d, vocab %d\n"
                    "  parameters %s (embedding %s%s), weights %s, embedding %s\n"
                    "  context %d of %d, rope theta %f%s%s\n"
                    "  memory: weights %s, kv_cache %s",
                    sw_arch_name(c->arch), m->source, (int)c->n_layers, (int)c->hidden, (int)c->n_heads,
                    (int)c->n_kv_heads, (int)c->head_dim, (int)c->intermediate, (int)c->vocab,
                    human_count((double)sw_model_n_params(m), p1, sizeof p1),
                    human_count((double)sw_tensor_numel(m->embed), p2, sizeof p2),
                    c->tie_embeddings ? ", tied head" : "", m->quant, sw_dtype_name(m->embed->dtype), (int)m->max_seq,
                    (int)c->max_pos, c->rope_theta, c->rope_scaling == SW_ROPE_LLAMA3 ? ", llama3 scaling" : "",
                    c->sliding_window ? ", sliding window" : "",
                    lsw_format_bytes((double)sw_model_weight_bytes(m), wb, sizeof wb),
                    lsw_format_bytes((double)kvbytes, kv, sizeof kv));
    return 1;
}

/* ids from a Lua array of 0-based token ids. Caller frees. */
static int32_t *ids_arg(lua_State *L, int idx, int64_t *n, int64_t vocab, const char *fn) {
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = (int64_t)luaL_len(L, idx);
    if (*n == 0) luaL_error(L, "%s: no token ids", fn);
    int32_t *ids = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)*n, 0); /* GC'd with the stack */
    for (int64_t i = 0; i < *n; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 0 || v >= vocab) luaL_error(L, "%s: entry %d is not a token id in [0, %d)", fn, (int)i + 1, (int)vocab);
        ids[i] = (int32_t)v;
        lua_pop(L, 1);
    }
    return ids;
}

/* model:logits(ids, {all = false}) -> Tensor (V) for the last position, or (T, V). */
static int m_logits(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    static const char *const keys[] = {"all", NULL};
    lsw_opts_check(L, 3, "Model:logits", keys);
    bool all = lsw_opt_bool(L, 3, "Model:logits", "all", 0);
    int64_t T;
    int32_t *ids = ids_arg(L, 2, &T, m->cfg.vocab, "Model:logits");
    int64_t shape[2] = {all ? T : 1, m->cfg.vocab};
    void **slot = lsw_new_object(L, LSW_TENSOR);
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tensor *t;
    lsw_check(L, &ctx, sw_tensor_new(&ctx, &t, SW_F32, 2, shape, SW_DEV_CPU, SW_MEM_ACTIVATIONS));
    *slot = t;
    sw_model_reset(m);
    sw_status st = sw_model_forward(&ctx, m, ids, T, sw_tensor_data(t), all);
    sw_model_reset(m);
    lsw_check(L, &ctx, st);
    if (!all) { /* (V) */
        sw_tensor *v;
        void **s2 = lsw_new_object(L, LSW_TENSOR);
        lsw_check(L, &ctx, sw_tensor_reshape(&ctx, &v, t, 1, &shape[1]));
        *s2 = v;
    }
    return 1;
}

static int m_reset(lua_State *L) {
    sw_model_reset(lsw_check_model(L, 1));
    return 0;
}

static void set_int(lua_State *L, const char *k, int64_t v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static int m_index(lua_State *L) {
    luaL_getmetafield(L, 1, "__methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    const char *k = luaL_checkstring(L, 2);
    sw_model *m = lsw_check_model(L, 1);
    const sw_model_config *c = &m->cfg;
    if (!strcmp(k, "tokenizer")) {
        lua_getiuservalue(L, 1, 1);
    } else if (!strcmp(k, "config")) {
        lua_newtable(L);
        lua_pushstring(L, sw_arch_name(c->arch));
        lua_setfield(L, -2, "arch");
        set_int(L, "vocab", c->vocab);
        set_int(L, "hidden", c->hidden);
        set_int(L, "intermediate", c->intermediate);
        set_int(L, "layers", c->n_layers);
        set_int(L, "heads", c->n_heads);
        set_int(L, "kv_heads", c->n_kv_heads);
        set_int(L, "head_dim", c->head_dim);
        set_int(L, "context", c->max_pos);
        set_int(L, "sliding_window", c->sliding_window);
        lua_pushnumber(L, c->rope_theta);
        lua_setfield(L, -2, "rope_theta");
        lua_pushboolean(L, c->tie_embeddings);
        lua_setfield(L, -2, "tie_embeddings");
    } else if (!strcmp(k, "n_params")) {
        lua_pushinteger(L, sw_model_n_params(m));
    } else if (!strcmp(k, "max_seq")) {
        lua_pushinteger(L, m->max_seq);
    } else if (!strcmp(k, "device")) { /* where it trains: "cpu", "cuda:0", "emulate" */
        char name[SW_DEVICE_NAME_MAX];
        sw_device d = m->gpu ? sw_gpu_device(m->gpu) : SW_DEV_CPU;
        lua_pushstring(L, !m->gpu ? "cpu" : d == SW_DEV_CPU ? "emulate" : sw_device_name(d, name, sizeof name));
    } else if (!strcmp(k, "n_past")) {
        lua_pushinteger(L, m->n_past);
    } else if (!strcmp(k, "quant")) {
        lua_pushstring(L, m->quant);
    } else {
        return lsw_no_field(L, 1, "Model", k);
    }
    return 1;
}

/* ---- generation ------------------------------------------------------------ */

static const char *const gen_opts[] = {"max_new", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                                       "seed", "stop", "stop_tokens", "stream", "add_special", NULL};

typedef struct gen_state {
    sw_model *m;
    const sw_tokenizer *tok;
    sw_sampler sampler;
    int32_t *hist;          /* prompt + generated ids */
    int64_t n_hist, n_prompt, cap;
    float *logits;
    char *pend;             /* streamed bytes not yet printed (partial UTF-8 / possible stop) */
    size_t n_pend, cap_pend;
} gen_state;

static void gen_free(gen_state *g) {
    sw_sampler_free(&g->sampler);
    free(g->hist);
    free(g->logits);
    free(g->pend);
}

/* __gc of the box that owns a gen_state: frees it if a Lua error unwinds. */
static int gen_box_gc(lua_State *L) {
    gen_state *g = lua_touserdata(L, 1);
    gen_free(g);
    memset(g, 0, sizeof *g);
    return 0;
}

/* Length of the longest prefix of s that ends on a UTF-8 character boundary. */
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n;
    /* Walk back over at most 3 continuation bytes to the lead byte. */
    size_t back = 0;
    while (back < 4 && i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return back ? 0 : n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 1;
    return back + 1 >= need ? n : i - 1;
}

static void stream_out(lua_State *L, const char *s, size_t n) {
    if (!n) return;
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "_stream");
    lua_pushlstring(L, s, n);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
}

static bool push_id(gen_state *g, int32_t id) {
    if (g->n_hist == g->cap) {
        int64_t cap = g->cap * 2 + 64;
        int32_t *h = realloc(g->hist, sizeof(int32_t) * (size_t)cap);
        if (!h) return false;
        g->hist = h;
        g->cap = cap;
    }
    g->hist[g->n_hist++] = id;
    return true;
}

/* Runs the loop; leaves (text, info) on the stack. stops: index of a table
 * of stop strings or 0. */
static int generate(lua_State *L, sw_model *m, const sw_tokenizer *tok, const char *prompt, size_t plen, int opts,
                    bool add_special_default, const int32_t *extra_eos, int n_extra_eos) {
    const char *fn = "Model:generate";
    lsw_opts_check(L, opts, fn, gen_opts);
    sw_sampler_opts so = {
        .temperature = (float)lsw_opt_number(L, opts, fn, "temperature", 0.0),
        .top_k = (int)lsw_opt_integer(L, opts, fn, "top_k", 0),
        .top_p = (float)lsw_opt_number(L, opts, fn, "top_p", 1.0),
        .min_p = (float)lsw_opt_number(L, opts, fn, "min_p", 0.0),
        .repetition_penalty = (float)lsw_opt_number(L, opts, fn, "repetition_penalty", 1.0),
        .seed = (uint64_t)lsw_opt_integer(L, opts, fn, "seed", (lua_Integer)(lsw_now() * 1e6)),
    };
    lua_Integer max_new = lsw_opt_integer(L, opts, fn, "max_new", 128);
    if (max_new < 0) return luaL_error(L, "%s: max_new must be >= 0", fn);
    bool stream = lsw_opt_bool(L, opts, fn, "stream", 1);
    bool add_special = lsw_opt_bool(L, opts, fn, "add_special", add_special_default);
    /* stop: a string or a list of strings */
    int nstop = 0;
    const char *stops[16];
    size_t stoplen[16], maxstop = 0;
    if (!lua_isnoneornil(L, opts)) {
        lua_getfield(L, opts, "stop");
        if (lua_type(L, -1) == LUA_TSTRING) {
            stops[nstop] = lua_tolstring(L, -1, &stoplen[nstop]);
            nstop++;
        } else if (lua_istable(L, -1)) {
            for (lua_Integer i = 1; i <= luaL_len(L, -1) && nstop < 16; i++) {
                lua_geti(L, -1, i);
                if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "%s: stop[%d] must be a string", fn, (int)i);
                stops[nstop] = lua_tolstring(L, -1, &stoplen[nstop]);
                nstop++;
                lua_pop(L, 1); /* the table keeps the string alive */
            }
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "%s: option 'stop' must be a string or a list of strings", fn);
        }
        lua_pop(L, 1);
    }
    /* stop_tokens: ids or token strings that end generation like EOS. */
    int32_t stop_ids[16];
    int nstop_ids = 0;
    if (!lua_isnoneornil(L, opts)) {
        lua_getfield(L, opts, "stop_tokens");
        if (lua_istable(L, -1)) {
            for (lua_Integer i = 1; i <= luaL_len(L, -1) && nstop_ids < 16; i++) {
                lua_geti(L, -1, i);
                int32_t id = -1;
                if (lua_isinteger(L, -1)) {
                    id = (int32_t)lua_tointeger(L, -1);
                } else if (lua_type(L, -1) == LUA_TSTRING) {
                    size_t sl;
                    const char *s = lua_tolstring(L, -1, &sl);
                    id = sw_tokenizer_id(tok, s, sl);
                    if (id < 0) return luaL_error(L, "%s: stop_tokens[%d]: '%s' is not a token", fn, (int)i, s);
                }
                if (id < 0 || id >= m->cfg.vocab)
                    return luaL_error(L, "%s: stop_tokens[%d] must be a token id or token string", fn, (int)i);
                stop_ids[nstop_ids++] = id;
                lua_pop(L, 1);
            }
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "%s: option 'stop_tokens' must be a list", fn);
        }
        lua_pop(L, 1);
    }
    for (int i = 0; i < nstop; i++) {
        if (!stoplen[i]) return luaL_error(L, "%s: a stop string is empty", fn);
        if (stoplen[i] > maxstop) maxstop = stoplen[i];
    }

    gen_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    lua_newtable(L);
    lua_pushcfunction(L, gen_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    int box = lua_gettop(L);
    g->m = m;
    g->tok = tok;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    lsw_check(L, &ctx, sw_sampler_init(&ctx, &g->sampler, &so, m->cfg.vocab));
    int32_t *ids;
    int64_t n;
    lsw_check(L, &ctx, sw_tokenizer_encode(&ctx, tok, prompt, plen, add_special, &ids, &n));
    g->hist = ids;
    g->n_hist = g->cap = g->n_prompt = n;
    if (n == 0) return luaL_error(L, "%s: the prompt is empty", fn);
    if (n >= m->max_seq)
        return luaL_error(L, "%s: the prompt has %d tokens; the context holds %d (sw.load max_seq)", fn, (int)n, (int)m->max_seq);
    g->logits = malloc(sizeof(float) * (size_t)m->cfg.vocab);
    if (!g->logits) return luaL_error(L, "%s: host out of memory", fn);

    const char *reason = "max_new";
    double t0 = lsw_now(), t_first = 0;
    sw_model_reset(m);
    sw_status st = sw_model_forward(&ctx, m, g->hist, n, g->logits, false);
    t_first = lsw_now();
    luaL_Buffer text; /* the streamed bytes, for stop strings */
    luaL_buffinit(L, &text);
    size_t printed = 0;
    for (lua_Integer step = 0; st == SW_OK && step < max_new; step++) {
        int32_t id = sw_sample(&g->sampler, g->logits, g->hist, g->n_hist);
        bool eos = false;
        for (int i = 0; i < m->cfg.n_eos; i++) eos |= id == m->cfg.eos_ids[i];
        for (int i = 0; i < n_extra_eos; i++) eos |= id == extra_eos[i];
        eos |= id == sw_tokenizer_eos(tok);
        if (eos) {
            reason = "eos";
            break;
        }
        bool stop_tok = false;
        for (int i = 0; i < nstop_ids; i++) stop_tok |= id == stop_ids[i];
        if (stop_tok) {
            reason = "stop";
            break;
        }
        if (!push_id(g, id)) return luaL_error(L, "%s: host out of memory", fn);
        size_t bl = 0;
        const char *bytes = sw_tokenizer_is_special(tok, id) ? "" : sw_tokenizer_token_bytes(tok, id, &bl);
        if (bytes) luaL_addlstring(&text, bytes, bl);
        /* A stop string ends the text where it begins. */
        bool stopped = false;
        for (int i = 0; i < nstop && !stopped; i++) {
            size_t from = luaL_bufflen(&text) > stoplen[i] + bl ? luaL_bufflen(&text) - stoplen[i] - bl : 0;
            size_t len = luaL_bufflen(&text);
            const char *buf = luaL_buffaddr(&text);
            for (size_t p = from; p + stoplen[i] <= len; p++)
                if (!memcmp(buf + p, stops[i], stoplen[i])) {
                    luaL_buffsub(&text, len - p);
                    stopped = true;
                    break;
                }
        }
        if (stream) { /* print what cannot turn out to be a stop string or half a character */
            size_t len = luaL_bufflen(&text);
            size_t safe = stopped ? len : (len > maxstop ? len - (maxstop ? maxstop - 1 : 0) : 0);
            if (safe > printed) {
                size_t ok = printed + utf8_complete(luaL_buffaddr(&text) + printed, safe - printed);
                stream_out(L, luaL_buffaddr(&text) + printed, ok - printed);
                printed = ok;
            }
        }
        if (stopped) {
            reason = "stop";
            break;
        }
        if (m->n_past + 1 > m->max_seq) {
            reason = "context";
            break;
        }
        st = sw_model_forward(&ctx, m, &id, 1, g->logits, false);
    }
    if (st == SW_EINTR) { /* Ctrl-C: keep what was generated */
        reason = "interrupted";
        sw_interrupt_clear();
        lua_sethook(L, NULL, 0, 0);
        sw_ctx_clear(&ctx);
        st = SW_OK;
    }
    if (st) {
        luaL_pushresult(&text);
        lsw_check(L, &ctx, st);
    }
    if (stream) {
        size_t len = luaL_bufflen(&text);
        if (len > printed) stream_out(L, luaL_buffaddr(&text) + printed, len - printed);
        stream_out(L, "\n", 1);
    }
    luaL_pushresult(&text);
    double t1 = lsw_now();
    int64_t n_new = g->n_hist - g->n_prompt;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, g->n_prompt);
    lua_setfield(L, -2, "prompt_tokens");
    lua_pushinteger(L, n_new);
    lua_setfield(L, -2, "new_tokens");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "stop_reason");
    lua_pushnumber(L, t_first - t0);
    lua_setfield(L, -2, "prompt_seconds");
    lua_pushnumber(L, n_new > 0 && t1 > t_first ? (double)n_new / (t1 - t_first) : 0.0);
    lua_setfield(L, -2, "tokens_per_second");
    lua_createtable(L, (int)n_new, 0);
    for (int64_t i = 0; i < n_new; i++) {
        lua_pushinteger(L, g->hist[g->n_prompt + i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "ids");
    lua_remove(L, box);
    /* Streamed into a REPL that echoes results: the text was shown already. */
    if (stream && lsw_echoing()) return 0;
    return 2;
}

static const sw_tokenizer *model_tokenizer(lua_State *L, int idx, const char *fn) {
    if (lua_getiuservalue(L, idx, 1) == LUA_TNIL) luaL_error(L, "%s: this model was loaded without a tokenizer", fn);
    sw_tokenizer *t = lsw_check_tokenizer(L, -1);
    lua_pop(L, 1); /* the model's user value keeps it alive */
    return t;
}

/* model:generate(prompt, opts) -> text, info */
static int m_generate(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    size_t plen;
    const char *prompt = luaL_checklstring(L, 2, &plen);
    const sw_tokenizer *tok = model_tokenizer(L, 1, "Model:generate");
    return generate(L, m, tok, prompt, plen, 3, true, NULL, 0);
}

/* model:chat(messages | "text", opts) -> text, info: the chat template,
 * then generation until the end-of-turn token. */
static int m_chat(lua_State *L) {
    sw_model *m = lsw_check_model(L, 1);
    const sw_tokenizer *tok = model_tokenizer(L, 1, "Model:chat");
    sw_chat_msg msgs[64];
    int n = 0;
    if (lua_type(L, 2) == LUA_TSTRING) {
        msgs[n++] = (sw_chat_msg){"user", lua_tostring(L, 2)};
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_Integer len = luaL_len(L, 2);
        if (len > 64) return luaL_error(L, "Model:chat: at most 64 messages");
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, 2, i);
            if (!lua_istable(L, -1)) return luaL_error(L, "Model:chat: message %d must be a table {role=, content=}", (int)i);
            lua_getfield(L, -1, "role");
            lua_getfield(L, -2, "content");
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "Model:chat: message %d needs string fields role and content", (int)i);
            msgs[n++] = (sw_chat_msg){lua_tostring(L, -2), lua_tostring(L, -1)};
            lua_pop(L, 3); /* the messages table keeps the strings */
        }
    }
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    char *text;
    size_t tlen;
    const char *src = sw_tokenizer_chat_template(tok);
    if (!src) return luaL_error(L, "Model:chat: this model has no chat template");
    sw_chat_template *tpl;
    if (sw_chat_template_new(&ctx, src, "chat template", &tpl)) return luaL_error(L, "Model:chat: %s", ctx.msg);
    size_t bl = 0, el = 0;
    int32_t bos = sw_tokenizer_bos(tok), eosid = sw_tokenizer_eos(tok);
    const char *bp = bos >= 0 ? sw_tokenizer_piece(tok, bos, &bl) : NULL, *ep = eosid >= 0 ? sw_tokenizer_piece(tok, eosid, &el) : NULL;
    char bbuf[64] = "", ebuf[64] = "";
    if (bp && bl < sizeof bbuf) memcpy(bbuf, bp, bl);
    if (ep && el < sizeof ebuf) memcpy(ebuf, ep, el);
    sw_status cst = sw_chat_apply(&ctx, tpl, msgs, n, true, bbuf, ebuf, &text, &tlen);
    sw_chat_template_free(tpl);
    if (cst) return luaL_error(L, "Model:chat: %s", ctx.msg);
    lua_pushlstring(L, text, tlen);
    free(text);
    lua_replace(L, 2);
    size_t plen;
    const char *prompt = lua_tolstring(L, 2, &plen);
    /* The end-of-turn tokens of the template families. */
    int32_t eot[4];
    int ne = 0;
    static const char *const marks[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"};
    for (int i = 0; i < 4; i++) {
        int32_t id = sw_tokenizer_id(tok, marks[i], strlen(marks[i]));
        if (id >= 0) eot[ne++] = id;
    }
    return generate(L, m, tok, prompt, plen, 3, false, eot, ne);
}

static const luaL_Reg methods[] = {{"free", m_free},         {"logits", m_logits}, {"generate", m_generate},
                                   {"chat", m_chat},         {"reset", m_reset},   {NULL, NULL}};
static const luaL_Reg metamethods[] = {{"__gc", m_gc},       {"__close", m_gc},   {"__tostring", m_tostring},
                                       {"__index", m_index}, {NULL, NULL}};
static const char *const fields[] = {"tokenizer", "config", "n_params", "max_seq", "n_past", "quant", "device", NULL};
static const luaL_Reg functions[] = {{"load", m_load}, {"default_device", m_default_device}, {NULL, NULL}};

void lsw_open_model(lua_State *L) {
    lsw_new_class(L, LSW_MODEL, methods, metamethods, fields);
    luaL_setfuncs(L, functions, 0);
}
