/* bench.c (lua) — sw.gemm_rate(m, n, k [, seconds]): the float32 GEMM rate
 * of this machine's BLAS on one shape, in GFLOP/s (best of the runs made in
 * the time given). Benchmarks report model throughput as a fraction of it,
 * measured in the same process with the same library. */
#include <stdlib.h>

#ifdef SW_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "core/interrupt.h"
#include "lsw.h"

static int b_gemm_rate(lua_State *L) {
    lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
    double budget = luaL_optnumber(L, 4, 1.0);
    if (m <= 0 || n <= 0 || k <= 0 || m * k > (1 << 28) || n * k > (1 << 28) || m * n > (1 << 28))
        return luaL_error(L, "sw.gemm_rate: sizes must be positive and each matrix under 2^28 elements");
#ifndef SW_HAVE_OPENBLAS
    return luaL_error(L, "sw.gemm_rate: this build has no BLAS");
#else
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(n * k)),
          *c = malloc(sizeof(float) * (size_t)(m * n));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return luaL_error(L, "sw.gemm_rate: out of memory");
    }
    for (lua_Integer i = 0; i < m * k; i++) a[i] = (float)((i % 7) - 3) * 0.01f;
    for (lua_Integer i = 0; i < n * k; i++) b[i] = (float)((i % 5) - 2) * 0.01f;
    double best = 0, start = lsw_now();
    int runs = 0;
    do { /* y = x W^T, the shape the forward pass uses */
        double t0 = lsw_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)k, 0.0f,
                    c, (int)n);
        double dt = lsw_now() - t0;
        double rate = 2.0 * (double)m * (double)n * (double)k / dt / 1e9;
        if (rate > best) best = rate;
        runs++;
    } while ((lsw_now() - start < budget || runs < 3) && !sw_interrupted());
    free(a), free(b), free(c);
    lua_pushnumber(L, best);
    return 1;
#endif
}

static const luaL_Reg functions[] = {{"gemm_rate", b_gemm_rate}, {NULL, NULL}};

void lsw_open_bench(lua_State *L) { luaL_setfuncs(L, functions, 0); }
