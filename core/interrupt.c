/* interrupt.c — the Ctrl-C flag (see interrupt.h). */
#include "interrupt.h"

#include <signal.h>

static volatile sig_atomic_t flag;  /* Ctrl-Cs seen since the last clear */
static volatile sig_atomic_t deferred;

void sw_interrupt_raise(void) {
    if (flag < 100) flag++;
}
void sw_interrupt_clear(void) { flag = 0; }
bool sw_interrupted(void) { return flag != 0; }
void sw_interrupt_defer(bool on) { deferred = on; }

sw_status sw_interrupt_check(sw_ctx *ctx) {
    if (!flag || (deferred && flag < 2)) return SW_OK;
    return sw_err(ctx, SW_EINTR, "interrupted");
}
