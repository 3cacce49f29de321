/* mem.h — the accounting allocator: every byte by device and category.
 *
 * One allocator per device (the host and each GPU). Each allocation names a
 * category; the allocator keeps, per category and in total, the bytes held
 * now and two independent peaks:
 *   SW_PEAK_SESSION  reset only by the user (sw.mem_reset_peak());
 *   SW_PEAK_CELL     reset by the front ends at the start of every cell, so
 *                    a cell's report says what *that cell* cost at its worst.
 * The total peak is tracked on its own: the peak of a sum is not the sum of
 * the per-category peaks. An optional limit per device turns an allocation
 * past it into SW_ENOMEM, which is how out-of-memory paths are tested.
 * All functions are thread-safe.
 */
#ifndef SW_MEM_H
#define SW_MEM_H

#include <stddef.h>
#include "ctx.h"
#include "device.h"

typedef enum sw_mem_cat {
    SW_MEM_WEIGHTS = 0,
    SW_MEM_ADAPTERS,
    SW_MEM_GRADIENTS,
    SW_MEM_OPTIMIZER,
    SW_MEM_ACTIVATIONS,
    SW_MEM_KV_CACHE,
    SW_MEM_WORKSPACE,
    SW_MEM_DATA,
    SW_MEM_CAT_COUNT
} sw_mem_cat;

enum { SW_PEAK_SESSION = 0, SW_PEAK_CELL, SW_PEAK_SLOTS };

typedef struct sw_mem_stats {
    size_t now[SW_MEM_CAT_COUNT];
    size_t peak[SW_PEAK_SLOTS][SW_MEM_CAT_COUNT];
    size_t total_now;
    size_t total_peak[SW_PEAK_SLOTS];
    size_t allocs;   /* live allocations */
    size_t limit;    /* 0: none */
} sw_mem_stats;

const char *sw_mem_cat_name(sw_mem_cat c);
bool        sw_mem_cat_from_name(const char *name, sw_mem_cat *out);

/* NULL with SW_ENOMEM/SW_EDEVICE in ctx on failure; nothing is accounted then. */
void *sw_mem_alloc(sw_ctx *ctx, sw_device d, sw_mem_cat c, size_t bytes);
/* bytes and category must be those given to sw_mem_alloc; NULL is ignored. */
void  sw_mem_free(sw_device d, sw_mem_cat c, void *p, size_t bytes);

void      sw_mem_get(sw_device d, sw_mem_stats *out);
void      sw_mem_reset_peak(sw_device d, int slot);
/* 0 removes the limit. Fails if the device is unknown. */
sw_status sw_mem_set_limit(sw_ctx *ctx, sw_device d, size_t bytes);

/* Resident set size of this process now, and its high-water mark (bytes). */
size_t sw_mem_host_rss(void);
size_t sw_mem_host_peak_rss(void);

#endif
