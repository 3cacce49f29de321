/* device.h — where memory lives: the host, or one CUDA device.
 *
 * A device is a small integer: SW_DEV_CPU, or SW_DEV_CUDA(i) for GPU i.
 * This layer hands out raw, unaccounted memory and copies between devices;
 * mem.h adds the accounting on top. CUDA devices exist only when the CUDA
 * backend was compiled in *and* a GPU answers at run time.
 */
#ifndef SW_DEVICE_H
#define SW_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include "ctx.h"

typedef int sw_device;
#define SW_DEV_CPU 0
#define SW_DEV_CUDA(i) (1 + (i))
#define SW_MAX_DEVICES 9 /* the host + 8 GPUs */

bool sw_device_is_cuda(sw_device d);
int  sw_device_cuda_index(sw_device d);

/* "cpu", "cuda:0", ... written into buf (SW_DEVICE_NAME_MAX bytes suffice). */
#define SW_DEVICE_NAME_MAX 24
const char *sw_device_name(sw_device d, char *buf, size_t n);
/* Accepts "cpu", "cuda" (= cuda:0), "cuda:N", "gpu". Fails when absent. */
sw_status sw_device_parse(sw_ctx *ctx, const char *s, sw_device *out);
/* Whether the build has a CUDA backend at all. */
bool sw_device_cuda_built(void);
/* Number of usable CUDA GPUs (0 without the backend or a driver). */
int  sw_device_cuda_count(void);
bool sw_device_available(sw_device d);
/* Human description: "NVIDIA H200 (139.8 GiB)" or the host's CPU count. */
const char *sw_device_describe(sw_device d, char *buf, size_t n);
/* Bytes free and total on a GPU; the host's MemAvailable / MemTotal. */
sw_status sw_device_meminfo(sw_ctx *ctx, sw_device d, size_t *free_b, size_t *total_b);

/* Raw memory; callers normally use sw_mem_alloc. */
sw_status sw_device_malloc(sw_ctx *ctx, sw_device d, size_t bytes, void **out);
void      sw_device_free(sw_device d, void *p);
sw_status sw_device_memcpy(sw_ctx *ctx, sw_device dst_dev, void *dst,
                           sw_device src_dev, const void *src, size_t bytes);
sw_status sw_device_memset0(sw_ctx *ctx, sw_device d, void *p, size_t bytes);
sw_status sw_device_sync(sw_ctx *ctx, sw_device d);

#endif
