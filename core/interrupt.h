/* interrupt.h — one process-wide flag that Ctrl-C raises and long loops poll.
 *
 * The Lua debug hook can stop Lua code, but not a C loop (a GEMM over many
 * row panels, a training step, a file read); those call sw_interrupt_check()
 * between units of work and unwind with SW_EINTR, leaving state consistent.
 * sw_interrupt_raise() is async-signal-safe.
 */
#ifndef SW_INTERRUPT_H
#define SW_INTERRUPT_H

#include <stdbool.h>
#include "ctx.h"

void sw_interrupt_raise(void);   /* from a signal handler */
void sw_interrupt_clear(void);   /* before running a cell */
bool sw_interrupted(void);

/* SW_OK, or SW_EINTR with "interrupted" in ctx when the flag is up. */
sw_status sw_interrupt_check(sw_ctx *ctx);

/* While deferred, one Ctrl-C is only recorded (sw_interrupted() says so)
 * and checks pass, so a unit of work such as a training step can finish
 * before the caller stops; a second Ctrl-C interrupts as usual. */
void sw_interrupt_defer(bool on);

#endif
