/* mem.c — the accounting allocator (see mem.h). */
#include "mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static const char *const cat_names[SW_MEM_CAT_COUNT] = {
    [SW_MEM_WEIGHTS] = "weights",         [SW_MEM_ADAPTERS] = "adapters",
    [SW_MEM_GRADIENTS] = "gradients",     [SW_MEM_OPTIMIZER] = "optimizer",
    [SW_MEM_ACTIVATIONS] = "activations", [SW_MEM_KV_CACHE] = "kv_cache",
    [SW_MEM_WORKSPACE] = "workspace",     [SW_MEM_DATA] = "data",
};

static struct {
    pthread_mutex_t lock;
    sw_mem_stats s;
} acct[SW_MAX_DEVICES] = {
#define SW_ACCT_INIT {PTHREAD_MUTEX_INITIALIZER, {{0}, {{0}}, 0, {0}, 0, 0}}
    SW_ACCT_INIT, SW_ACCT_INIT, SW_ACCT_INIT, SW_ACCT_INIT, SW_ACCT_INIT,
    SW_ACCT_INIT, SW_ACCT_INIT, SW_ACCT_INIT, SW_ACCT_INIT,
#undef SW_ACCT_INIT
};

const char *sw_mem_cat_name(sw_mem_cat c) {
    if ((unsigned)c >= SW_MEM_CAT_COUNT) return "?";
    return cat_names[c];
}

bool sw_mem_cat_from_name(const char *name, sw_mem_cat *out) {
    for (int i = 0; i < SW_MEM_CAT_COUNT; i++) {
        if (!strcmp(name, cat_names[i])) {
            *out = (sw_mem_cat)i;
            return true;
        }
    }
    if (!strcmp(name, "kv-cache") || !strcmp(name, "kv")) { *out = SW_MEM_KV_CACHE; return true; }
    return false;
}

static bool valid_dev(sw_device d) { return d >= 0 && d < SW_MAX_DEVICES; }

void *sw_mem_alloc(sw_ctx *ctx, sw_device d, sw_mem_cat c, size_t bytes) {
    char dn[SW_DEVICE_NAME_MAX];
    if (!valid_dev(d) || (unsigned)c >= SW_MEM_CAT_COUNT) {
        sw_err(ctx, SW_EINVAL, "sw_mem_alloc: bad device %d or category %d", d, (int)c);
        return NULL;
    }
    /* Reserve under the lock first so two threads cannot both slip under the
     * limit; undo the reservation if the device allocation then fails. */
    pthread_mutex_lock(&acct[d].lock);
    sw_mem_stats *s = &acct[d].s;
    if (s->limit && s->total_now + bytes > s->limit) {
        size_t now = s->total_now, limit = s->limit;
        pthread_mutex_unlock(&acct[d].lock);
        sw_err(ctx, SW_ENOMEM,
               "out of memory on %s: %s needs %.1f MiB, %.1f MiB of the %.1f MiB limit in use",
               sw_device_name(d, dn, sizeof dn), cat_names[c], bytes / 1048576.0,
               now / 1048576.0, limit / 1048576.0);
        return NULL;
    }
    s->total_now += bytes;
    s->now[c] += bytes;
    s->allocs++;
    pthread_mutex_unlock(&acct[d].lock);

    void *p = NULL;
    if (sw_device_malloc(ctx, d, bytes, &p) != SW_OK) {
        pthread_mutex_lock(&acct[d].lock);
        s->total_now -= bytes;
        s->now[c] -= bytes;
        s->allocs--;
        size_t now = s->total_now;
        pthread_mutex_unlock(&acct[d].lock);
        /* Say what was asked for and what is held, not only what CUDA said. */
        if (ctx && ctx->status == SW_ENOMEM)
            sw_err_prefix(ctx, "out of memory on %s: %s needs %.1f MiB, stepwise holds %.1f MiB there",
                          sw_device_name(d, dn, sizeof dn), cat_names[c], bytes / 1048576.0, now / 1048576.0);
        return NULL;
    }
    pthread_mutex_lock(&acct[d].lock);
    for (int k = 0; k < SW_PEAK_SLOTS; k++) {
        if (s->now[c] > s->peak[k][c]) s->peak[k][c] = s->now[c];
        if (s->total_now > s->total_peak[k]) s->total_peak[k] = s->total_now;
    }
    pthread_mutex_unlock(&acct[d].lock);
    return p;
}

void sw_mem_free(sw_device d, sw_mem_cat c, void *p, size_t bytes) {
    if (!p || !valid_dev(d) || (unsigned)c >= SW_MEM_CAT_COUNT) return;
    sw_device_free(d, p);
    pthread_mutex_lock(&acct[d].lock);
    sw_mem_stats *s = &acct[d].s;
    /* A mismatch is a bug in the caller; clamp rather than wrap to 2^64. */
    s->now[c] -= bytes <= s->now[c] ? bytes : s->now[c];
    s->total_now -= bytes <= s->total_now ? bytes : s->total_now;
    if (s->allocs) s->allocs--;
    pthread_mutex_unlock(&acct[d].lock);
}

void sw_mem_get(sw_device d, sw_mem_stats *out) {
    memset(out, 0, sizeof *out);
    if (!valid_dev(d)) return;
    pthread_mutex_lock(&acct[d].lock);
    *out = acct[d].s;
    pthread_mutex_unlock(&acct[d].lock);
}

void sw_mem_reset_peak(sw_device d, int slot) {
    if (!valid_dev(d) || slot < 0 || slot >= SW_PEAK_SLOTS) return;
    pthread_mutex_lock(&acct[d].lock);
    sw_mem_stats *s = &acct[d].s;
    memcpy(s->peak[slot], s->now, sizeof s->now);
    s->total_peak[slot] = s->total_now;
    pthread_mutex_unlock(&acct[d].lock);
}

sw_status sw_mem_set_limit(sw_ctx *ctx, sw_device d, size_t bytes) {
    if (!valid_dev(d)) return sw_err(ctx, SW_EINVAL, "no device %d", d);
    pthread_mutex_lock(&acct[d].lock);
    acct[d].s.limit = bytes;
    pthread_mutex_unlock(&acct[d].lock);
    return SW_OK;
}

/* VmRSS / VmHWM from /proc/self/status, in bytes. */
static size_t proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t v = 0, klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            v = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v * 1024;
}

size_t sw_mem_host_rss(void) { return proc_status_kb("VmRSS"); }
size_t sw_mem_host_peak_rss(void) { return proc_status_kb("VmHWM"); }
