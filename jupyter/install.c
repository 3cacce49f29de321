/* install.c — `stepwise install-kernel`: the kernelspec directory.
 *
 * kernel.json names this binary by absolute path, so the spec keeps working
 * from any environment; the logo is a small PNG drawn here (four rising
 * bars: steps), written with stored deflate blocks so no zlib is needed.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"

static uint32_t crc32_of(const unsigned char *p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n) {
    unsigned char b[4];
    put32(b, n);
    fwrite(b, 1, 4, f);
    uint32_t crc = crc32_of((const unsigned char *)type, 4, 0);
    crc = crc32_of(data, n, crc);
    fwrite(type, 1, 4, f);
    if (n) fwrite(data, 1, n, f);
    put32(b, crc);
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

#define LOGO 64
static int write_logo(const char *path) {
    /* Raw scanlines: a filter byte (0) then RGB. 64 * 193 bytes fit one
     * stored deflate block (at most 65535). */
    enum { ROW = 1 + 3 * LOGO, RAW = ROW * LOGO };
    static unsigned char z[2 + 5 + RAW + 4];
    unsigned char *raw = z + 7;
    for (int y = 0; y < LOGO; y++) {
        raw[y * ROW] = 0;
        for (int x = 0; x < LOGO; x++) {
            int k = x / 16, h = (k + 1) * 12;
            bool bar = x % 16 >= 2 && x % 16 <= 13 && y >= 58 - h && y < 58;
            unsigned char *px = raw + y * ROW + 1 + 3 * x;
            px[0] = bar ? 0xff : 0x1f;
            px[1] = bar ? 0xff : 0x6f;
            px[2] = bar ? 0xff : 0x8b;
        }
    }
    z[0] = 0x78; /* zlib header: deflate, 32K window, no dictionary */
    z[1] = 0x01;
    z[2] = 0x01; /* final block, stored */
    z[3] = RAW & 0xff;
    z[4] = RAW >> 8;
    z[5] = (unsigned char)(~RAW & 0xff);
    z[6] = (unsigned char)((~RAW >> 8) & 0xff);
    uint32_t a = 1, b = 0; /* adler32 of the uncompressed bytes */
    for (size_t i = 0; i < RAW; i++) {
        a = (a + raw[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    put32(z + 7 + RAW, (b << 16) | a);
    unsigned char ihdr[13];
    put32(ihdr, LOGO);
    put32(ihdr + 4, LOGO);
    ihdr[8] = 8;  /* bits per channel */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fwrite(sig, 1, 8, f);
    int rc = chunk(f, "IHDR", ihdr, 13) | chunk(f, "IDAT", z, sizeof z) | chunk(f, "IEND", NULL, 0);
    return fclose(f) != 0 || rc ? -1 : 0;
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
    int gpus = 1;
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
        } else if (!strcmp(argv[i], "--gpus") && i + 1 < argc) {
            gpus = atoi(argv[++i]); /* the kernel starts this many ranks (lua/ranks.c) */
            if (gpus < 1 || gpus > 64) {
                fprintf(stderr, "stepwise: --gpus is a number of GPUs from 1 to 64\n");
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
                            "[--interrupt-mode signal|message] [--name NAME] [--gpus N]\n");
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
    char gs[16], display[64];
    snprintf(gs, sizeof gs, "%d", gpus);
    snprintf(display, sizeof display, gpus > 1 ? "stepwise (Lua, %d GPUs)" : "stepwise (Lua)", gpus);
    json_t *spec = json_pack("{s:[s,s,s,s],s:s,s:s,s:s,s:{}}", "argv", exe, "kernel", "-f", "{connection_file}",
                             "display_name", display, "language", "lua", "interrupt_mode", mode, "metadata");
    if (spec && gpus > 1) { /* kernel -f CONN --gpus N */
        json_t *av = json_object_get(spec, "argv");
        json_array_append_new(av, json_string("--gpus"));
        json_array_append_new(av, json_string(gs));
    }
    char file[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/kernel.json", dir);
    int rc = json_dump_file(spec, file, JSON_INDENT(2));
    json_decref(spec);
    if (rc != 0) {
        fprintf(stderr, "stepwise: cannot write %s\n", file);
        return 1;
    }
    snprintf(file, sizeof file, "%s/logo-64x64.png", dir);
    if (write_logo(file) != 0) fprintf(stderr, "stepwise: cannot write %s (the spec works without it)\n", file);
    printf("installed kernelspec %s in %s\n", name, dir);
    return 0;
}
