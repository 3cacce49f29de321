/* ranks.c — several GPUs from one session: `stepwise --gpus N` (and the
 * Jupyter kernel's `--gpus N`) makes this process rank 0 and starts N-1
 * worker processes, one per GPU, that follow its cells.
 *
 * Why this shape (SPMD, cells forwarded): the user talks to one process,
 * the REPL or the kernel, and every rank must build the same objects in
 * the same order (model, adapter, dataset, trainer) for the collectives
 * inside tr:step() to line up. So rank 0 sends each cell's source to every
 * worker just before running it, every rank runs it, and rank 0 then waits
 * for each worker's verdict. Workers print nothing (stdout goes to
 * /dev/null); their errors come back and rank 0 shows them, prefixed with
 * the rank. A worker that died is reported as such; every wait has a
 * deadline (STEPWISE_DIST_TIMEOUT, 600 s), so nothing hangs for good.
 *
 * Transport: one socketpair per worker (rank 0 holds the other end). It
 * carries framed messages (core/dist_pipe.c): 'C' cell, 'R' result, 'E'
 * rank 0 finished the cell, 'I' NCCL's unique id, 'Q' quit; and, on the
 * emulated device, the collectives themselves (the pipe communicator). On
 * GPUs the collectives go through NCCL, whose unique id rank 0 makes and
 * sends over these sockets. Several hosts would replace the socketpairs by
 * TCP connections to rank 0 and pass the same id; nothing else changes.
 *
 * Device choice: on rank r, device = "cuda" means cuda:r.
 * Workers read nothing from the terminal (stdin is /dev/null: io.read gives
 * them nil) and ignore Ctrl-C: rank 0 stops, and a worker's next collective
 * then fails, so a step is either taken by every rank or by none.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/dist.h"
#include "core/gpu.h"
#include "lsw.h"

#define MAX_RANKS 64

static struct {
    int rank, world;
    int fds[MAX_RANKS];      /* rank 0: fds[r] to worker r; a worker: fds[0] to rank 0 */
    pid_t pids[MAX_RANKS];
    bool gone[MAX_RANKS];    /* rank 0: workers known dead */
    sw_dist *dist;           /* made by the first trainer with gpus > 1 */
    double timeout_s;
} R = {.rank = 0, .world = 1};

int lsw_ranks_rank(void) { return R.rank; }
int lsw_ranks_world(void) { return R.world; }

static double timeout_s(void) {
    const char *t = getenv("STEPWISE_DIST_TIMEOUT");
    return t && atof(t) > 0 ? atof(t) : 600;
}

/* ---- rank 0 ------------------------------------------------------------- */

int lsw_ranks_launch(int world, const char *exe) {
    if (world < 2) return 0;
    if (world > MAX_RANKS) {
        fprintf(stderr, "stepwise: --gpus %d: at most %d\n", world, MAX_RANKS);
        return -1;
    }
    R.world = world;
    R.rank = 0;
    R.timeout_s = timeout_s();
    signal(SIGPIPE, SIG_IGN); /* a dead worker is an error on its socket, not a signal */
    for (int r = 1; r < world; r++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
            fprintf(stderr, "stepwise: socketpair: %s\n", strerror(errno));
            return -1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "stepwise: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0) {
            /* the worker: its end of the socket survives exec, stdout goes away */
            int fd = dup(sv[1]);
            int dn = open("/dev/null", O_RDWR);
            if (dn >= 0) dup2(dn, STDOUT_FILENO), dup2(dn, STDIN_FILENO); /* the terminal is rank 0's */
            char rs[16], ws[16], fs[16];
            snprintf(rs, sizeof rs, "%d", r);
            snprintf(ws, sizeof ws, "%d", world);
            snprintf(fs, sizeof fs, "%d", fd);
            execl(exe, exe, "--rank", rs, "--world", ws, "--ctl-fd", fs, (char *)NULL);
            fprintf(stderr, "stepwise: rank %d: cannot start %s: %s\n", r, exe, strerror(errno));
            _exit(127);
        }
        close(sv[1]);
        R.fds[r] = sv[0];
        R.pids[r] = pid;
    }
    return 0;
}

/* Before rank 0 runs a cell: every live worker gets its source. */
void lsw_ranks_begin(const char *code, size_t len, const char *name) {
    if (R.world < 2 || R.rank != 0) return;
    sw_dist_pipe_reset(R.dist);
    size_t nl = strlen(name);
    char *msg = malloc(nl + 1 + len);
    if (!msg) return;
    memcpy(msg, name, nl + 1);
    memcpy(msg + nl + 1, code, len);
    for (int r = 1; r < R.world; r++) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (!R.gone[r] && sw_dist_msg_send(&ctx, R.fds[r], 'C', msg, nl + 1 + len)) R.gone[r] = true;
    }
    free(msg);
}

/* After rank 0's cell (ok: it succeeded): tell the workers, then collect
 * each one's verdict. Returns how many workers failed; their errors are
 * printed, each prefixed with its rank. */
int lsw_ranks_end(bool ok) {
    if (R.world < 2 || R.rank != 0) return 0;
    int failed = 0;
    unsigned char e = ok ? 0 : 1;
    for (int r = 1; r < R.world; r++) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (!R.gone[r] && sw_dist_msg_send(&ctx, R.fds[r], 'E', &e, 1)) R.gone[r] = true;
    }
    for (int r = 1; r < R.world; r++) {
        if (R.gone[r]) {
            fprintf(stderr, "rank %d: gone (the worker exited); restart stepwise to train on all GPUs\n", r);
            failed++;
            continue;
        }
        const char *took = sw_dist_pipe_result(R.dist, r); /* a collective met it already */
        if (took) {
            if (took[0]) fprintf(stderr, "rank %d: %s\n", r, took + 1), failed++;
            continue;
        }
        for (;;) { /* collective data the cell left behind (ranks diverged) is skipped */
            sw_ctx ctx;
            sw_ctx_init(&ctx);
            char tag;
            void *buf;
            size_t len;
            if (sw_dist_msg_recv(&ctx, R.fds[r], &tag, &buf, &len, R.timeout_s)) {
                fprintf(stderr, "rank %d: the worker exited or stopped answering (%s); its later cells are skipped\n", r,
                        ctx.msg);
                R.gone[r] = true;
                failed++;
                break;
            }
            if (tag == 'R') {
                if (len >= 1 && ((char *)buf)[0]) {
                    fprintf(stderr, "rank %d: %s\n", r, (char *)buf + 1);
                    failed++;
                }
                free(buf);
                break;
            }
            free(buf);
        }
    }
    fflush(stderr);
    return failed;
}

void lsw_ranks_shutdown(void) {
    if (R.world < 2 || R.rank != 0) return;
    for (int r = 1; r < R.world; r++) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        if (!R.gone[r]) sw_dist_msg_send(&ctx, R.fds[r], 'Q', NULL, 0);
        close(R.fds[r]);
    }
    /* a worker that stopped answering may be stuck: it goes; the others
     * leave on 'Q' (or on the closed socket) */
    for (int r = 1; r < R.world; r++) {
        if (R.gone[r]) kill(R.pids[r], SIGKILL);
        waitpid(R.pids[r], NULL, 0);
    }
    sw_dist_free(R.dist);
    R.dist = NULL;
}

/* ---- a worker --------------------------------------------------------------- */

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Run one forwarded cell as the REPL would (an expression first). */
static bool run_cell(lua_State *L, const char *name, const char *code, size_t len, char *err, size_t n) {
    lua_pushcfunction(L, traceback);
    int base = lua_gettop(L);
    lua_pushfstring(L, "return %s;", code);
    int st = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), name);
    lua_remove(L, -2);
    if (st != LUA_OK) {
        lua_pop(L, 1);
        st = luaL_loadbuffer(L, code, len, name);
    }
    if (st == LUA_OK) st = lua_pcall(L, 0, 0, base);
    if (st != LUA_OK) snprintf(err, n, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
    lua_settop(L, base - 1);
    return st == LUA_OK;
}

int lsw_ranks_worker_main(int rank, int world, int fd) {
    if (rank < 1 || rank >= world || world > MAX_RANKS || fd < 0) {
        fprintf(stderr, "stepwise: bad worker arguments (rank %d, world %d, fd %d)\n", rank, world, fd);
        return 2;
    }
    R.rank = rank;
    R.world = world;
    R.fds[0] = fd;
    R.timeout_s = timeout_s();
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C in rank 0's terminal reaches the whole process group: a
     * worker must not die of it. Rank 0 stops, ends the cell, and the
     * worker's next collective fails, so the ranks stay in step. */
    signal(SIGINT, SIG_IGN);
    lua_State *L = lsw_newstate();
    if (!L) return 1;
    lsw_profile_set(false);
    int rc = 0;
    for (;;) {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        char tag;
        void *buf;
        size_t len;
        /* between cells rank 0 may idle for hours: no deadline here */
        if (sw_dist_msg_recv(&ctx, fd, &tag, &buf, &len, 1e9)) break; /* rank 0 is gone */
        if (tag == 'Q') {
            free(buf);
            break;
        }
        if (tag != 'C') { /* 'E' of a cell this rank already finished, stray data */
            free(buf);
            continue;
        }
        const char *name = buf;
        size_t nl = strlen(name);
        char err[2048] = {0};
        sw_dist_pipe_reset(R.dist);
        bool ok = run_cell(L, name, (char *)buf + nl + 1, len - nl - 1, err + 1, sizeof err - 1);
        fflush(stdout);
        free(buf);
        /* wait for rank 0's end of this cell unless it already came */
        err[0] = ok ? 0 : 1;
        if (sw_dist_msg_send(&ctx, fd, 'R', err, ok ? 1 : 2 + strlen(err + 1))) {
            rc = 1;
            break;
        }
    }
    if (R.dist) sw_dist_free(R.dist);
    lua_close(L);
    close(fd);
    return rc;
}

/* ---- the communicator a trainer uses ------------------------------------ */

sw_status lsw_ranks_dist(sw_ctx *ctx, int gpus, const struct sw_model *m, sw_dist **out) {
    *out = NULL;
    if (gpus != R.world) {
        if (R.world == 1)
            return sw_err(ctx, SW_EINVAL,
                          "option 'gpus' = %d needs %d ranks: start them with `stepwise --gpus %d script.lua` "
                          "(or the REPL / kernel with --gpus %d)", gpus, gpus, gpus, gpus);
        return sw_err(ctx, SW_EINVAL, "option 'gpus' = %d, but this session has %d ranks (--gpus %d)", gpus, R.world,
                      R.world);
    }
    if (!m->gpu)
        return sw_err(ctx, SW_EINVAL, "option 'gpus' needs the model on a device: sw.load(..., {device = \"cuda\"})");
    bool emulated = sw_gpu_device(m->gpu) == SW_DEV_CPU;
    if (R.dist) {
        bool host = !strcmp(sw_dist_backend(R.dist), "pipe");
        if (host != emulated)
            return sw_err(ctx, SW_EINVAL, "this session's ranks already train on %s devices",
                          host ? "emulated" : "CUDA");
        *out = R.dist;
        return SW_OK;
    }
    sw_status st;
    if (emulated) {
        st = sw_dist_pipe_new(ctx, R.rank, R.world, R.fds, R.timeout_s, &R.dist);
    } else {
        /* rank 0 makes NCCL's id and sends it; the workers, running the same
         * cell, read it next */
        uint8_t id[SW_DIST_ID_BYTES];
        st = SW_OK;
        if (R.rank == 0) {
            st = sw_dist_nccl_id(ctx, id);
            for (int r = 1; r < R.world && !st; r++) st = sw_dist_msg_send(ctx, R.fds[r], 'I', id, sizeof id);
        } else {
            char tag;
            void *buf = NULL;
            size_t len;
            st = sw_dist_msg_recv(ctx, R.fds[0], &tag, &buf, &len, R.timeout_s);
            if (!st && (tag != 'I' || len != sizeof id))
                st = sw_err(ctx, SW_ESTATE, "rank 0 did not send NCCL's id (its cell failed?)");
            if (!st) memcpy(id, buf, sizeof id);
            free(buf);
        }
        if (!st) st = sw_dist_nccl_new(ctx, id, R.rank, R.world, sw_device_cuda_index(sw_gpu_device(m->gpu)), &R.dist);
    }
    if (!st) *out = R.dist;
    return st;
}

/* sw.ranks() -> rank (0-based), world */
static int l_ranks(lua_State *L) {
    lua_pushinteger(L, R.rank);
    lua_pushinteger(L, R.world);
    return 2;
}

void lsw_open_ranks(lua_State *L) {
    lua_pushcfunction(L, l_ranks);
    lua_setfield(L, -2, "ranks");
}
