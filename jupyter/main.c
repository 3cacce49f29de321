/* main.c — `stepwise kernel -f FILE` and `stepwise install-kernel`. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"
#include "lua/lsw.h"

int jupyter_kernel_main(int argc, char **argv) {
    const char *conn = NULL;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-f") && i + 1 < argc) conn = argv[++i];
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
    return rc;
}

static int mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int jupyter_install_main(int argc, char **argv, const char *argv0) {
    (void)argv0;
    const char *prefix = NULL, *mode = "signal", *name = "stepwise";
    bool user = true;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--user")) user = true;
        else if (!strcmp(argv[i], "--sys-prefix")) {
            prefix = getenv("VIRTUAL_ENV");
            if (!prefix) prefix = getenv("CONDA_PREFIX");
            if (!prefix) prefix = "/usr/local";
            user = false;
        } else if (!strcmp(argv[i], "--prefix") && i + 1 < argc) {
            prefix = argv[++i];
            user = false;
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i]; /* a second spec, e.g. one per interrupt mode */
            if (!*name || strchr(name, '/')) {
                fprintf(stderr, "stepwise: --name must be a plain directory name\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--interrupt-mode") && i + 1 < argc) {
            mode = argv[++i];
            if (strcmp(mode, "signal") && strcmp(mode, "message")) {
                fprintf(stderr, "stepwise: --interrupt-mode is signal or message\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: stepwise install-kernel [--user | --sys-prefix | --prefix DIR] "
                            "[--interrupt-mode signal|message] [--name NAME]\n");
            return 2;
        }
    }
    char dir[PATH_MAX];
    if (user) {
        const char *data = getenv("JUPYTER_DATA_DIR"), *home = getenv("HOME");
        if (data) snprintf(dir, sizeof dir, "%s/kernels/%s", data, name);
        else if (home) snprintf(dir, sizeof dir, "%s/.local/share/jupyter/kernels/%s", home, name);
        else {
            fprintf(stderr, "stepwise: HOME is not set; use --prefix\n");
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "%s/share/jupyter/kernels/%s", prefix, name);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "stepwise: cannot find my own path\n");
        return 1;
    }
    exe[n] = '\0';
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "stepwise: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    json_t *spec = json_pack("{s:[s,s,s,s],s:s,s:s,s:s,s:{}}", "argv", exe, "kernel", "-f", "{connection_file}",
                             "display_name", "stepwise (Lua)", "language", "lua", "interrupt_mode", mode,
                             "metadata");
    char file[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/kernel.json", dir);
    int rc = json_dump_file(spec, file, JSON_INDENT(2));
    json_decref(spec);
    if (rc != 0) {
        fprintf(stderr, "stepwise: cannot write %s\n", file);
        return 1;
    }
    printf("installed kernelspec %s in %s\n", name, dir);
    return 0;
}
