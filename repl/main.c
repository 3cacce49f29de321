/* main.c — the stepwise command: REPL, scripts, replay, -e.
 *
 *   stepwise                      interactive REPL (a script when stdin is not a terminal)
 *   stepwise FILE [ARGS]          run FILE cell by cell ("-- %%" markers)
 *   stepwise --replay FILE        echo each cell and its cost, then run it
 *   stepwise --replay --pause FILE   wait for Enter before each cell
 *   stepwise -e CODE              run CODE (may repeat; runs before FILE)
 *   stepwise -i ...               enter the REPL after the rest
 *   --profile / --no-profile      the per-cell cost line (default: on in the REPL)
 *   --device NAME                 where sw.load trains when a call names no device
 *   stepwise kernel -f CONN       the Jupyter kernel (jupyter/)
 *   stepwise install-kernel [--user | --sys-prefix | --prefix DIR]
 *   stepwise --to-ipynb FILE.lua [-o OUT.ipynb]   the notebook of a cell script
 *   stepwise --gpus N ...         also start N-1 worker ranks that follow every cell
 *                                 (lua/ranks.c); private: --rank R --world N --ctl-fd F
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/lsw.h"
#include "repl.h"
#include "jupyter/kernel.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stepwise [options] [file.lua [args...]]\n"
            "  (no file)        interactive REPL\n"
            "  file.lua         run a script cell by cell (cells start at '-- %%%%' lines)\n"
            "  -                run standard input as a script\n"
            "  --replay         echo each cell's source and its cost line as it runs\n"
            "  --pause          with --replay: wait for Enter before each cell\n"
            "  -e CODE          run CODE (may be given more than once)\n"
            "  -i               enter the REPL after running the script or -e code\n"
            "  --profile        print the cost line after every cell (default in the REPL)\n"
            "  --no-profile     do not\n"
            "  --device NAME    train on NAME (cpu, cuda, cuda:N, emulate) wherever sw.load names\n"
            "                   no device; default $STEPWISE_DEVICE, else cpu\n"
            "  --version        print the version\n"
            "  kernel -f CONN   run as a Jupyter kernel\n"
            "  install-kernel [--user | --sys-prefix | --prefix DIR] [--interrupt-mode signal|message]\n"
            "  --to-ipynb FILE.lua [-o OUT.ipynb]   write the notebook of a `-- %%%%` script\n"
            "  --gpus N         N ranks, one per GPU: workers follow every cell (sw.trainer{gpus = N})\n"
            "  -h, --help       this help\n");
}

/* arg table as lua.c builds it: arg[0] = script, arg[1..] = its arguments. */
static void set_args(lua_State *L, char **argv, int argc, int script) {
    lua_createtable(L, argc - script, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

int main(int argc, char **argv) {
    repl_script_opts so = {false, false, isatty(STDOUT_FILENO) && !getenv("NO_COLOR")};
    bool interactive = false;
    int profile = -1; /* -1: the mode's default */
    int gpus = 1;
    int script = 0;
    const char *exprs[64];
    int nexpr = 0;

    /* a worker rank started by `--gpus N` (lua/ranks.c) */
    if (argc == 7 && !strcmp(argv[1], "--rank") && !strcmp(argv[3], "--world") && !strcmp(argv[5], "--ctl-fd"))
        return lsw_ranks_worker_main(atoi(argv[2]), atoi(argv[4]), atoi(argv[6]));
    if (argc > 1 && !strcmp(argv[1], "kernel")) return jupyter_kernel_main(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "install-kernel")) return jupyter_install_main(argc - 2, argv + 2, argv[0]);
    if (argc > 1 && !strcmp(argv[1], "--to-ipynb")) return lsw_to_ipynb_main(argc - 2, argv + 2);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--replay")) so.replay = true;
        else if (!strcmp(a, "--pause")) so.pause = true;
        else if (!strcmp(a, "-i")) interactive = true;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "--no-profile")) profile = 0;
        else if (!strcmp(a, "--gpus")) {
            char *end = NULL;
            long n = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (!end || *end || n < 1 || n > 64) {
                fprintf(stderr, "stepwise: --gpus needs a number of GPUs from 1 to 64\n");
                return 2;
            }
            gpus = (int)n;
            i++;
        }
        else if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
            printf("stepwise 0.1.0 (%s)\n", LUA_RELEASE);
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-e")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "stepwise: -e needs an argument\n");
                return 2;
            }
            if (nexpr == 64) {
                fprintf(stderr, "stepwise: too many -e options\n");
                return 2;
            }
            exprs[nexpr++] = argv[++i];
        } else if (!strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
            const char *device = NULL;
            if (a[8] == '=') device = a + 9;
            else if (i + 1 < argc) device = argv[++i];
            else {
                fprintf(stderr, "stepwise: --device needs a device name\n");
                return 2;
            }
            if (!lsw_set_default_device(device)) {
                fprintf(stderr, "stepwise: --device '%s' is not one of cpu, cuda, cuda:N, emulate\n", device);
                return 2;
            }
        } else if (!strcmp(a, "--")) {
            if (i + 1 < argc) script = i + 1;
            break;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "stepwise: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            script = i;
            break;
        }
    }
    if (so.pause) so.replay = true;
    if (so.replay && !script) {
        fprintf(stderr, "stepwise: --replay needs a file\n");
        return 2;
    }

    if (gpus > 1 && lsw_ranks_launch(gpus, "/proc/self/exe")) return 1;
    lua_State *L = lsw_newstate();
    if (!L) {
        lsw_ranks_shutdown();
        return 1;
    }
    set_args(L, argv, argc, script ? script : argc - 1);

    bool stdin_tty = isatty(STDIN_FILENO);
    bool run_repl = interactive || (!script && nexpr == 0 && stdin_tty);
    lsw_profile_set(profile == -1 ? (run_repl && !script && nexpr == 0) : profile == 1);

    int rc = 0;
    for (int i = 0; i < nexpr && rc == 0; i++) rc = repl_run_string(L, exprs[i], "=(command line)");
    if (rc == 0 && script) rc = repl_run_file(L, argv[script], &so);
    else if (rc == 0 && !script && nexpr == 0 && !stdin_tty) rc = repl_run_file(L, NULL, &so);
    if (rc == 0 && run_repl) {
        if (profile == -1) lsw_profile_set(true);
        rc = repl_interactive(L);
    }
    lua_close(L);
    lsw_ranks_shutdown();
    return rc;
}
