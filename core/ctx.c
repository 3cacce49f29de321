/* ctx.c — the error channel: a status plus one formatted message. */
#include "ctx.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[SW_STATUS_COUNT] = {
    [SW_OK] = "ok",
    [SW_EINVAL] = "invalid argument",
    [SW_ENOMEM] = "out of memory",
    [SW_EIO] = "i/o error",
    [SW_EFORMAT] = "bad format",
    [SW_EINTR] = "interrupted",
    [SW_EDEVICE] = "device error",
    [SW_ESTATE] = "bad state",
    [SW_EUNSUPPORTED] = "unsupported",
};

void sw_ctx_init(sw_ctx *ctx) { sw_ctx_clear(ctx); }

void sw_ctx_clear(sw_ctx *ctx) {
    ctx->status = SW_OK;
    ctx->msg[0] = '\0';
}

const char *sw_status_name(sw_status s) {
    if ((unsigned)s >= SW_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

sw_status sw_verr(sw_ctx *ctx, sw_status s, const char *fmt, va_list ap) {
    if (!ctx) return s;
    ctx->status = s;
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    return s;
}

sw_status sw_err(sw_ctx *ctx, sw_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sw_verr(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

sw_status sw_err_prefix(sw_ctx *ctx, const char *fmt, ...) {
    if (!ctx) return SW_OK;
    char old[SW_MSG_MAX];
    memcpy(old, ctx->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof ctx->msg) {
        memcpy(ctx->msg + n, ": ", 2);
        size_t room = sizeof ctx->msg - (size_t)n - 2;
        size_t ol = strnlen(old, room - 1);
        memcpy(ctx->msg + n + 2, old, ol);
        ctx->msg[n + 2 + ol] = '\0';
    }
    return ctx->status;
}
