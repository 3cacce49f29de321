/* interrupt.c — the Ctrl-C flag (see interrupt.h). */
#include "interrupt.h"

#include <signal.h>

static volatile sig_atomic_t flag;

void sw_interrupt_raise(void) { flag = 1; }
void sw_interrupt_clear(void) { flag = 0; }
bool sw_interrupted(void) { return flag != 0; }

sw_status sw_interrupt_check(sw_ctx *ctx) {
    if (!flag) return SW_OK;
    return sw_err(ctx, SW_EINTR, "interrupted");
}
