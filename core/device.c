/* device.c — host and CUDA memory behind one interface (see device.h).
 *
 * Host allocations are 64-byte aligned so SIMD loads and OpenBLAS panels
 * never straddle cache lines. CUDA calls go through kernels/cuda_backend.h
 * and are compiled only with SW_HAVE_CUDA; without it, asking for a GPU is
 * an ordinary error, never a crash.
 */
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SW_HAVE_CUDA
#include "../kernels/cuda_backend.h"
#endif

bool sw_device_is_cuda(sw_device d) { return d >= 1 && d < SW_MAX_DEVICES; }
int sw_device_cuda_index(sw_device d) { return d - 1; }

const char *sw_device_name(sw_device d, char *buf, size_t n) {
    if (d == SW_DEV_CPU) snprintf(buf, n, "cpu");
    else snprintf(buf, n, "cuda:%d", sw_device_cuda_index(d));
    return buf;
}

bool sw_device_cuda_built(void) {
#ifdef SW_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

int sw_device_cuda_count(void) {
#ifdef SW_HAVE_CUDA
    /* Cached: cudaGetDeviceCount is slow-ish and the answer cannot change. */
    static int count = -1;
    if (count < 0) {
        count = sw_cuda_device_count();
        if (count > SW_MAX_DEVICES - 1) count = SW_MAX_DEVICES - 1;
    }
    return count;
#else
    return 0;
#endif
}

bool sw_device_available(sw_device d) {
    if (d == SW_DEV_CPU) return true;
    return sw_device_is_cuda(d) && sw_device_cuda_index(d) < sw_device_cuda_count();
}

sw_status sw_device_parse(sw_ctx *ctx, const char *s, sw_device *out) {
    if (!strcmp(s, "cpu")) { *out = SW_DEV_CPU; return SW_OK; }
    int idx = -1;
    if (!strcmp(s, "cuda") || !strcmp(s, "gpu")) idx = 0;
    else {
        char extra;
        if ((sscanf(s, "cuda:%d%c", &idx, &extra) != 1 &&
             sscanf(s, "gpu:%d%c", &idx, &extra) != 1) || idx < 0)
            return sw_err(ctx, SW_EINVAL, "unknown device '%s' (expected cpu, cuda or cuda:N)", s);
    }
    if (!sw_device_cuda_built())
        return sw_err(ctx, SW_EDEVICE, "device '%s': this build has no CUDA backend (nvcc was not found when it was built)", s);
    if (idx >= sw_device_cuda_count())
        return sw_err(ctx, SW_EDEVICE, "device '%s': %d CUDA device(s) available", s, sw_device_cuda_count());
    *out = SW_DEV_CUDA(idx);
    return SW_OK;
}

static sw_status no_device(sw_ctx *ctx, sw_device d) {
    char name[SW_DEVICE_NAME_MAX];
    return sw_err(ctx, SW_EDEVICE, "device %s is not available", sw_device_name(d, name, sizeof name));
}

/* Reads one "Key:   N kB" line of /proc/meminfo. */
static size_t meminfo_kb(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
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
    return v;
}

const char *sw_device_describe(sw_device d, char *buf, size_t n) {
    if (d == SW_DEV_CPU) {
        snprintf(buf, n, "host, %ld cores, %.1f GiB", sysconf(_SC_NPROCESSORS_ONLN),
                 (double)meminfo_kb("MemTotal") / (1024.0 * 1024.0));
        return buf;
    }
#ifdef SW_HAVE_CUDA
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    if (sw_device_available(d) && sw_cuda_describe(&ctx, sw_device_cuda_index(d), buf, n) == SW_OK)
        return buf;
#endif
    snprintf(buf, n, "unavailable");
    return buf;
}

sw_status sw_device_meminfo(sw_ctx *ctx, sw_device d, size_t *free_b, size_t *total_b) {
    if (d == SW_DEV_CPU) {
        *free_b = meminfo_kb("MemAvailable") * 1024;
        *total_b = meminfo_kb("MemTotal") * 1024;
        return SW_OK;
    }
    if (!sw_device_available(d)) return no_device(ctx, d);
#ifdef SW_HAVE_CUDA
    return sw_cuda_meminfo(ctx, sw_device_cuda_index(d), free_b, total_b);
#else
    return no_device(ctx, d);
#endif
}

sw_status sw_device_malloc(sw_ctx *ctx, sw_device d, size_t bytes, void **out) {
    *out = NULL;
    if (d == SW_DEV_CPU) {
        /* Round up: aligned_alloc wants a multiple of the alignment, and a
         * zero-byte tensor still gets a distinct, freeable pointer. */
        size_t n = (bytes + 63) & ~(size_t)63;
        if (n < bytes) return sw_err(ctx, SW_ENOMEM, "allocation of %zu bytes overflows", bytes);
        void *p = aligned_alloc(64, n ? n : 64);
        if (!p) return sw_err(ctx, SW_ENOMEM, "host out of memory allocating %zu bytes", bytes);
        *out = p;
        return SW_OK;
    }
    if (!sw_device_available(d)) return no_device(ctx, d);
#ifdef SW_HAVE_CUDA
    return sw_cuda_malloc(ctx, sw_device_cuda_index(d), bytes, out);
#else
    return no_device(ctx, d);
#endif
}

void sw_device_free(sw_device d, void *p) {
    if (!p) return;
    if (d == SW_DEV_CPU) { free(p); return; }
#ifdef SW_HAVE_CUDA
    sw_cuda_free(sw_device_cuda_index(d), p);
#endif
}

sw_status sw_device_memcpy(sw_ctx *ctx, sw_device dd, void *dst, sw_device sd,
                           const void *src, size_t bytes) {
    if (bytes == 0) return SW_OK;
    if (dd == SW_DEV_CPU && sd == SW_DEV_CPU) {
        memmove(dst, src, bytes);
        return SW_OK;
    }
    if (!sw_device_available(dd)) return no_device(ctx, dd);
    if (!sw_device_available(sd)) return no_device(ctx, sd);
#ifdef SW_HAVE_CUDA
    int kind = sd == SW_DEV_CPU ? 0 : dd == SW_DEV_CPU ? 1 : 2;
    int ddi = dd == SW_DEV_CPU ? -1 : sw_device_cuda_index(dd);
    int sdi = sd == SW_DEV_CPU ? -1 : sw_device_cuda_index(sd);
    return sw_cuda_memcpy(ctx, ddi, dst, sdi, src, bytes, kind);
#else
    return no_device(ctx, dd == SW_DEV_CPU ? sd : dd);
#endif
}

sw_status sw_device_memset0(sw_ctx *ctx, sw_device d, void *p, size_t bytes) {
    if (d == SW_DEV_CPU) {
        memset(p, 0, bytes);
        return SW_OK;
    }
    if (!sw_device_available(d)) return no_device(ctx, d);
#ifdef SW_HAVE_CUDA
    return sw_cuda_memset0(ctx, sw_device_cuda_index(d), p, bytes);
#else
    return no_device(ctx, d);
#endif
}

sw_status sw_device_sync(sw_ctx *ctx, sw_device d) {
    if (d == SW_DEV_CPU) return SW_OK;
    if (!sw_device_available(d)) return no_device(ctx, d);
#ifdef SW_HAVE_CUDA
    return sw_cuda_sync(ctx, sw_device_cuda_index(d));
#else
    return no_device(ctx, d);
#endif
}
