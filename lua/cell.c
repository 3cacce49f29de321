/* cell.c — the one-line cost report printed after each cell.
 *
 * A cell's peak is measured with the allocator's SW_PEAK_CELL slot, reset
 * when the cell begins, so "peak" means the worst moment of this cell, not
 * of the session. Devices with nothing allocated and no change are left out
 * (the host is always shown) to keep the line short.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lsw.h"

const char *lsw_format_bytes(double bytes, char *buf, size_t n) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double a = bytes < 0 ? -bytes : bytes;
    while (a >= 1024.0 && u < 4) {
        a /= 1024.0;
        bytes /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, n, "%.0f B", bytes);
    else snprintf(buf, n, "%.1f %s", bytes, unit[u]);
    return buf;
}

void lsw_cell_begin(lsw_cell *c) {
    int n = 1 + sw_device_cuda_count();
    memset(c, 0, sizeof *c);
    for (int d = 0; d < n; d++) {
        sw_mem_reset_peak(d, SW_PEAK_CELL);
        sw_mem_get(d, &c->before[d]);
    }
    c->t0 = lsw_now();
}

static void addf(char *buf, size_t n, size_t *k, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void addf(char *buf, size_t n, size_t *k, const char *fmt, ...) {
    if (*k >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *k, n - *k, fmt, ap);
    va_end(ap);
    if (w > 0) *k += (size_t)w;
}

void lsw_cell_report(const lsw_cell *c, char *buf, size_t n) {
    size_t k = 0;
    double dt = lsw_now() - c->t0;
    if (dt < 1.0) addf(buf, n, &k, "%.0f ms", dt * 1e3);
    else if (dt < 120.0) addf(buf, n, &k, "%.2f s", dt);
    else addf(buf, n, &k, "%dm%02ds", (int)(dt / 60), (int)dt % 60);

    int ndev = 1 + sw_device_cuda_count();
    for (int d = 0; d < ndev; d++) {
        sw_mem_stats s;
        sw_mem_get(d, &s);
        const sw_mem_stats *b = &c->before[d];
        double change = (double)s.total_now - (double)b->total_now;
        if (d != SW_DEV_CPU && !s.total_now && !s.total_peak[SW_PEAK_CELL] && change == 0) continue;
        char name[SW_DEVICE_NAME_MAX], now[24], peak[24], ch[24];
        addf(buf, n, &k, " | %s %s (peak %s, %s%s", sw_device_name(d, name, sizeof name),
             lsw_format_bytes((double)s.total_now, now, sizeof now),
             lsw_format_bytes((double)s.total_peak[SW_PEAK_CELL], peak, sizeof peak),
             change >= 0 ? "+" : "", lsw_format_bytes(change, ch, sizeof ch));
        /* Which categories moved, and by how much. */
        bool first = true;
        for (int cat = 0; cat < SW_MEM_CAT_COUNT; cat++) {
            double dc = (double)s.now[cat] - (double)b->now[cat];
            if (dc == 0) continue;
            addf(buf, n, &k, "%s%s %s%s", first ? ": " : ", ", sw_mem_cat_name((sw_mem_cat)cat),
                 dc >= 0 ? "+" : "", lsw_format_bytes(dc, ch, sizeof ch));
            first = false;
        }
        addf(buf, n, &k, ")");
    }
    char rss[24];
    addf(buf, n, &k, " | rss %s", lsw_format_bytes((double)sw_mem_host_rss(), rss, sizeof rss));
}
