/* gpu_profile.h — where a device training step spends its time, op by op.
 *
 * A profiler attached to an engine (gpu.h) stands between the engine and
 * its op table: every op, and every copy, memset, upload and fetch of the
 * engine, is timed and counted under a name. GEMMs are split by what they
 * multiply: gemm.frozen (a frozen projection), gemm.lora (an adapter's A or
 * B, or its gradients), gemm.head (the LM head); dequantization by the
 * stored type (dequant.nf4, dequant.q4_k, ...; to_bf16.f32 is the casting
 * of float32 activations and parameters to bf16).
 *
 * On a CUDA device each op is bracketed by two events on the device's
 * stream (from a pool, so the steady state creates none) and the times are
 * read at sw_gpu_prof_collect, after a sync. On the emulated device the ops
 * run on the host and the host clock times them. "Busy" is the sum of op
 * times; wall time minus busy is where the device waited for the host
 * (launch overhead, host work, synchronisation). The events add a little
 * launch overhead themselves, so a profiled step is a bit slower.
 *
 * While a profiler is attached the engine records no CUDA graphs: a graph
 * would hide the individual launches.
 */
#ifndef SW_GPU_PROFILE_H
#define SW_GPU_PROFILE_H

#include <stdio.h>

#include "gpu.h"

typedef struct sw_gpu_prof sw_gpu_prof;

sw_status sw_gpu_prof_new(sw_ctx *ctx, sw_gpu_prof **out);
/* Detaches it first when attached. */
void      sw_gpu_prof_free(sw_gpu_prof *p);

/* Start timing g's work with p (one profiler per engine, and per device at
 * a time); detach puts g's own op table back. p keeps what it gathered. */
sw_status sw_gpu_prof_attach(sw_ctx *ctx, sw_gpu *g, sw_gpu_prof *p);
void      sw_gpu_prof_detach(sw_gpu *g);

/* One step ended, after wall_s seconds on the host clock: wait for the
 * device, read the times of the ops since the last collect, count a step. */
sw_status sw_gpu_prof_collect(sw_ctx *ctx, sw_gpu_prof *p, double wall_s);

/* Totals over the collected steps. span_ms: device time from the first
 * op's start to the last op's end, summed over steps. */
typedef struct sw_gpu_prof_summary {
    int64_t steps;
    double wall_ms, busy_ms, span_ms;
} sw_gpu_prof_summary;
void      sw_gpu_prof_summary_of(const sw_gpu_prof *p, sw_gpu_prof_summary *s);

/* One name's totals over the collected steps (false when never called). */
bool      sw_gpu_prof_get(const sw_gpu_prof *p, const char *name, double *ms, int64_t *calls);

/* Per step: a table (most expensive first) and a JSON object. */
void      sw_gpu_prof_print(const sw_gpu_prof *p, FILE *f);
void      sw_gpu_prof_json(const sw_gpu_prof *p, FILE *f);

#endif
