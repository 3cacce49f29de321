/* main.c — `stepwise kernel -f FILE`: set up the three layers and run. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel.h"
#include "lua/lsw.h"

int jupyter_kernel_main(int argc, char **argv) {
    const char *conn = NULL;
    int gpus = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-f") && i + 1 < argc) conn = argv[++i];
        else if (!strcmp(argv[i], "--gpus") && i + 1 < argc) gpus = atoi(argv[++i]);
    }
    /* Our own log keeps the real stderr; fd 2 will feed cells' output. */
    int logfd = dup(2);
    kw_log = logfd >= 0 ? fdopen(logfd, "w") : stderr;
    if (!kw_log) kw_log = stderr;
    setvbuf(kw_log, NULL, _IONBF, 0);
    if (!conn) {
        fprintf(kw_log, "usage: stepwise kernel -f CONNECTION_FILE\n");
        return 2;
    }
    /* SIGINT stops a running cell (repl_docall arms it); between cells the
     * client's interrupt must not kill the kernel. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* worker ranks (lua/ranks.c) start before any socket is open: they
     * follow every cell, each on its own GPU */
    if (gpus < 1 || gpus > 64) {
        fprintf(kw_log, "stepwise kernel: --gpus is a number of GPUs from 1 to 64\n");
        return 2;
    }
    if (gpus > 1 && lsw_ranks_launch(gpus, "/proc/self/exe")) return 1;
    lua_State *L = lsw_newstate();
    if (!L) return 1;
    lsw_profile_set(true);
    if (kw_open(conn) != 0) {
        lua_close(L);
        return 1;
    }
    if (kg_init(L) != 0) {
        fprintf(kw_log, "stepwise kernel: cannot capture output: %s\n", strerror(errno));
        kw_close();
        lua_close(L);
        return 1;
    }
    int rc = kp_run(L);
    kw_close();
    lua_close(L);
    lsw_ranks_shutdown();
    return rc;
}
