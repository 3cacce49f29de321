/* test_mem.c — the accounting allocator: categories add up to the total,
 * the two peak slots are independent, limits fail cleanly, threads agree. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/mem.h"

static size_t sum_now(const sw_mem_stats *s) {
    size_t t = 0;
    for (int c = 0; c < SW_MEM_CAT_COUNT; c++) t += s->now[c];
    return t;
}

static void *worker(void *arg) {
    (void)arg;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    for (int i = 0; i < 2000; i++) {
        void *p = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, 1000);
        sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, p, 1000);
    }
    return NULL;
}

int main(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_mem_stats s0, s;
    sw_mem_get(SW_DEV_CPU, &s0);
    CHECK_EQ_INT(s0.total_now, 0);

    void *w = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_WEIGHTS, 1000);
    void *a = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_ADAPTERS, 300);
    void *g = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_GRADIENTS, 300);
    CHECK(w && a && g);
    CHECK_EQ_INT(((uintptr_t)w) % 64, 0); /* aligned for SIMD */
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.now[SW_MEM_WEIGHTS], 1000);
    CHECK_EQ_INT(s.now[SW_MEM_ADAPTERS], 300);
    CHECK_EQ_INT(s.total_now, 1600);
    CHECK_EQ_INT(sum_now(&s), s.total_now);
    CHECK_EQ_INT(s.allocs, 3);

    /* Peak of the total is not the sum of the categories' peaks. */
    sw_mem_free(SW_DEV_CPU, SW_MEM_GRADIENTS, g, 300);
    void *o = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_OPTIMIZER, 200);
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.total_now, 1500);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_SESSION], 1600);
    CHECK_EQ_INT(s.peak[SW_PEAK_SESSION][SW_MEM_GRADIENTS], 300);
    CHECK_EQ_INT(s.now[SW_MEM_GRADIENTS], 0);
    CHECK_EQ_INT(sum_now(&s), s.total_now);

    /* Resetting the cell peak leaves the session peak alone, and back. */
    sw_mem_reset_peak(SW_DEV_CPU, SW_PEAK_CELL);
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_CELL], 1500);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_SESSION], 1600);
    CHECK_EQ_INT(s.peak[SW_PEAK_CELL][SW_MEM_GRADIENTS], 0);
    void *tmp = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_WORKSPACE, 5000);
    sw_mem_free(SW_DEV_CPU, SW_MEM_WORKSPACE, tmp, 5000);
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_CELL], 6500);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_SESSION], 6500);
    CHECK_EQ_INT(s.peak[SW_PEAK_CELL][SW_MEM_WORKSPACE], 5000);
    CHECK_EQ_INT(s.now[SW_MEM_WORKSPACE], 0);
    sw_mem_reset_peak(SW_DEV_CPU, SW_PEAK_SESSION);
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_SESSION], 1500);
    CHECK_EQ_INT(s.total_peak[SW_PEAK_CELL], 6500);

    /* A limit: the failing allocation changes no counter. */
    CHECK_EQ_INT(sw_mem_set_limit(&ctx, SW_DEV_CPU, 2000), SW_OK);
    sw_mem_stats before, after;
    sw_mem_get(SW_DEV_CPU, &before);
    void *big = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, 600);
    CHECK(big == NULL);
    CHECK_EQ_INT(ctx.status, SW_ENOMEM);
    CHECK_CONTAINS(ctx.msg, "out of memory on cpu");
    CHECK_CONTAINS(ctx.msg, "activations");
    sw_mem_get(SW_DEV_CPU, &after);
    CHECK(!memcmp(before.now, after.now, sizeof before.now));
    CHECK_EQ_INT(before.total_now, after.total_now);
    CHECK_EQ_INT(before.allocs, after.allocs);
    void *fits = sw_mem_alloc(&ctx, SW_DEV_CPU, SW_MEM_ACTIVATIONS, 500);
    CHECK(fits != NULL);
    sw_mem_free(SW_DEV_CPU, SW_MEM_ACTIVATIONS, fits, 500);
    sw_mem_set_limit(&ctx, SW_DEV_CPU, 0);

    /* A device that does not exist here fails with a message, no crash. */
    sw_ctx_clear(&ctx);
    void *gpu = sw_mem_alloc(&ctx, SW_DEV_CUDA(7), SW_MEM_WEIGHTS, 10);
    CHECK(gpu == NULL);
    CHECK_EQ_INT(ctx.status, SW_EDEVICE);
    CHECK_CONTAINS(ctx.msg, "cuda:7");
    sw_mem_get(SW_DEV_CUDA(7), &s);
    CHECK_EQ_INT(s.total_now, 0);

    /* Threads: counters stay exact. */
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.now[SW_MEM_ACTIVATIONS], 0);
    CHECK_EQ_INT(s.total_now, 1500);
    CHECK_EQ_INT(s.allocs, 3);

    sw_mem_free(SW_DEV_CPU, SW_MEM_WEIGHTS, w, 1000);
    sw_mem_free(SW_DEV_CPU, SW_MEM_ADAPTERS, a, 300);
    sw_mem_free(SW_DEV_CPU, SW_MEM_OPTIMIZER, o, 200);
    sw_mem_free(SW_DEV_CPU, SW_MEM_WEIGHTS, NULL, 0); /* free(NULL) is harmless */
    sw_mem_get(SW_DEV_CPU, &s);
    CHECK_EQ_INT(s.total_now, 0);
    CHECK_EQ_INT(s.allocs, 0);

    /* Names both ways. */
    sw_mem_cat c;
    CHECK(sw_mem_cat_from_name("kv_cache", &c) && c == SW_MEM_KV_CACHE);
    CHECK(sw_mem_cat_from_name("kv-cache", &c) && c == SW_MEM_KV_CACHE);
    CHECK(!sw_mem_cat_from_name("weight", &c));
    for (int i = 0; i < SW_MEM_CAT_COUNT; i++) {
        CHECK(sw_mem_cat_from_name(sw_mem_cat_name((sw_mem_cat)i), &c) && c == (sw_mem_cat)i);
    }
    CHECK(sw_mem_host_rss() > 0);
    CHECK(sw_mem_host_peak_rss() >= sw_mem_host_rss());
    CHECK_DONE();
}
