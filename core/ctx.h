/* ctx.h — status codes and the error channel of the core.
 *
 * Every core function that can fail takes a sw_ctx* and returns sw_status.
 * On failure it leaves a human-readable message in the context (naming the
 * file, field or argument at fault) and must have changed nothing the caller
 * owns: callers may retry or carry on.  Nothing in core/ calls exit() or
 * abort(); only lua/ turns a status into a Lua error.
 */
#ifndef SW_CTX_H
#define SW_CTX_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" { /* the CUDA files are C++ */
#endif

typedef enum sw_status {
    SW_OK = 0,
    SW_EINVAL,       /* a bad argument or option */
    SW_ENOMEM,       /* an allocation failed or a memory limit was hit */
    SW_EIO,          /* a file could not be opened, read or written */
    SW_EFORMAT,      /* a file's contents are malformed */
    SW_EINTR,        /* the interrupt flag was raised (Ctrl-C) */
    SW_EDEVICE,      /* a device (CUDA) error, or no such device */
    SW_ESTATE,       /* an object is in the wrong state (freed, busy) */
    SW_EUNSUPPORTED, /* valid, but not supported by this build */
    SW_STATUS_COUNT
} sw_status;

#define SW_MSG_MAX 1024

typedef struct sw_ctx {
    sw_status status;
    char msg[SW_MSG_MAX];
} sw_ctx;

void        sw_ctx_init(sw_ctx *ctx);
void        sw_ctx_clear(sw_ctx *ctx);
const char *sw_status_name(sw_status s);

/* Record an error and return it, so a failing path reads `return sw_err(...)`. */
sw_status sw_err(sw_ctx *ctx, sw_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sw_status sw_verr(sw_ctx *ctx, sw_status s, const char *fmt, va_list ap);

/* Put "prefix: " before the message already in ctx (used by callers that know
 * the file or object name the callee did not). Returns the current status. */
sw_status sw_err_prefix(sw_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
