/* test_ctx.c — the error channel and the interrupt flag. */
#include "check.h"
#include "core/ctx.h"
#include "core/interrupt.h"

int main(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    CHECK_EQ_INT(ctx.status, SW_OK);
    CHECK(ctx.msg[0] == '\0');

    sw_status s = sw_err(&ctx, SW_EFORMAT, "field '%s' at offset %d", "n_tensors", 24);
    CHECK_EQ_INT(s, SW_EFORMAT);
    CHECK_EQ_INT(ctx.status, SW_EFORMAT);
    CHECK(!strcmp(ctx.msg, "field 'n_tensors' at offset 24"));

    sw_err_prefix(&ctx, "model.gguf");
    CHECK(!strcmp(ctx.msg, "model.gguf: field 'n_tensors' at offset 24"));
    CHECK_EQ_INT(ctx.status, SW_EFORMAT);

    /* Messages longer than the buffer are cut, never overflow. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sw_err(&ctx, SW_EIO, "%s", big);
    CHECK_EQ_INT(strlen(ctx.msg), SW_MSG_MAX - 1);
    sw_err_prefix(&ctx, "file");
    CHECK_EQ_INT(strlen(ctx.msg), SW_MSG_MAX - 1);
    CHECK(!strncmp(ctx.msg, "file: xxx", 9));

    sw_ctx_clear(&ctx);
    CHECK_EQ_INT(ctx.status, SW_OK);
    CHECK(ctx.msg[0] == '\0');

    CHECK(!strcmp(sw_status_name(SW_ENOMEM), "out of memory"));
    CHECK(!strcmp(sw_status_name((sw_status)999), "unknown status"));
    /* A NULL context is tolerated: the status still comes back. */
    CHECK_EQ_INT(sw_err(NULL, SW_EINVAL, "ignored"), SW_EINVAL);

    sw_interrupt_clear();
    CHECK(!sw_interrupted());
    CHECK_EQ_INT(sw_interrupt_check(&ctx), SW_OK);
    sw_interrupt_raise();
    CHECK(sw_interrupted());
    CHECK_EQ_INT(sw_interrupt_check(&ctx), SW_EINTR);
    CHECK(!strcmp(ctx.msg, "interrupted"));
    sw_interrupt_clear();
    CHECK(!sw_interrupted());
    CHECK_DONE();
}
