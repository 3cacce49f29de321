/* capture.c — cell output: fds 1 and 2 into stream messages.
 *
 * Output capture works at the file-descriptor level: fds 1 and 2 become
 * pipes that a reader thread turns into stream messages. That way Lua's
 * print and io.write, and C printf in the core (the trainer's progress
 * lines), all reach the cell, in the order each stream was written.
 * kg_flush() waits until the pipes are empty so a reply or a display never
 * overtakes the output written before it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kernel.h"

static int pipe_rd[2]; /* read ends for stdout, stderr */
static pthread_t reader;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *out_parent;
static char carry[2][4]; /* an unfinished UTF-8 sequence held for the next read */
static size_t ncarry[2];

/* Length of the valid UTF-8 sequence at s (n bytes left): 0 if invalid,
 * -1 if it is cut off by the end of the buffer. */
static int utf8_len(const unsigned char *s, size_t n) {
    int len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    if (!len) return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -1;
        if ((s[i] & 0xc0) != 0x80) return 0;
    }
    return len;
}

/* Send bytes as a stream message; invalid UTF-8 becomes U+FFFD, and a
 * sequence split across reads waits for its tail. Called under out_mu. */
static void send_stream(int which, const char *buf, size_t n) {
    char *text = malloc(ncarry[which] + n * 3 + 1);
    if (!text) return;
    unsigned char *in = malloc(ncarry[which] + n);
    if (!in) { free(text); return; }
    memcpy(in, carry[which], ncarry[which]);
    memcpy(in + ncarry[which], buf, n);
    size_t len = ncarry[which] + n, k = 0, i = 0;
    ncarry[which] = 0;
    while (i < len) {
        int l = utf8_len(in + i, len - i);
        if (l < 0) {
            memcpy(carry[which], in + i, len - i);
            ncarry[which] = len - i;
            break;
        }
        if (l == 0) {
            memcpy(text + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
            continue;
        }
        memcpy(text + k, in + i, (size_t)l);
        k += (size_t)l;
        i += (size_t)l;
    }
    if (k) {
        json_t *c = json_pack("{s:s,s:s%}", "name", which ? "stderr" : "stdout", "text", text, k);
        if (c) kw_send_parent(KW_IOPUB, out_parent, "stream", c);
    }
    free(in);
    free(text);
}

static void *read_output(void *arg) {
    (void)arg;
    char buf[65536];
    for (;;) {
        struct pollfd p[2] = {{pipe_rd[0], POLLIN, 0}, {pipe_rd[1], POLLIN, 0}};
        int r = poll(p, 2, 200);
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
            pthread_mutex_lock(&out_mu);
            ssize_t n = read(pipe_rd[i], buf, sizeof buf);
            if (n > 0) send_stream(i, buf, (size_t)n);
            pthread_mutex_unlock(&out_mu);
            if (n == 0) return NULL;
        }
    }
    return NULL;
}

void kg_set_parent(json_t *parent_header) {
    kg_flush();
    pthread_mutex_lock(&out_mu);
    json_decref(out_parent);
    out_parent = json_deep_copy(parent_header);
    pthread_mutex_unlock(&out_mu);
}

void kg_flush(void) {
    fflush(stdout);
    fflush(stderr);
    /* Holding out_mu means the reader is not between a read and its send,
     * so empty pipes mean everything written so far has gone out. */
    for (int tries = 0; tries < 5000; tries++) {
        int a = 0, b = 0;
        pthread_mutex_lock(&out_mu);
        ioctl(pipe_rd[0], FIONREAD, &a);
        ioctl(pipe_rd[1], FIONREAD, &b);
        pthread_mutex_unlock(&out_mu);
        if (a == 0 && b == 0) return;
        usleep(1000);
    }
}

int kg_capture_start(void) {
    for (int fd = 1; fd <= 2; fd++) {
        int p[2];
        if (pipe(p) != 0) return -1;
        fflush(fd == 1 ? stdout : stderr);
        dup2(p[1], fd);
        close(p[1]);
        pipe_rd[fd - 1] = p[0];
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines arrive as printed */
    return pthread_create(&reader, NULL, read_output, NULL) != 0 ? -1 : 0;
}

void kg_publish(const char *msg_type, json_t *content) {
    kg_flush();
    pthread_mutex_lock(&out_mu);
    kw_send_parent(KW_IOPUB, out_parent, msg_type, content);
    pthread_mutex_unlock(&out_mu);
}
