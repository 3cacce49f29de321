/* wire.c — the transport layer: sockets, framing, signing, heartbeat.
 *
 * A message on the wire is [identities..., "<IDS|MSG>", signature, header,
 * parent_header, metadata, content, buffers...]. The signature is the hex
 * HMAC-SHA256 of the four JSON frames under the connection file's key; it is
 * compared in constant time so a forger learns nothing from timing. Anything
 * malformed is logged and dropped: a kernel must outlive a bad client.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zmq.h>

#include "kernel.h"

FILE *kw_log;

static void *zctx;
static void *socks[KW_NSOCK];
static void *hb_sock;
static pthread_t hb_thread;
static bool hb_running;
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char key[256];
static size_t keylen;
static char session[37];
static const char DELIM[] = "<IDS|MSG>";

void kw_new_uuid(char out[37]) {
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(b, 1, 16, f) != 16) {
        /* Unique within this process is all that matters for msg_ids. */
        static unsigned long n;
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)((unsigned long)time(NULL) * 31u + ++n * 7u + (unsigned)i);
    }
    if (f) fclose(f);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

const char *kw_session(void) { return session; }

/* Hex HMAC of the frames; an empty key means signing is off (sig ""). */
static void sign(const kw_frame *parts, int n, char out[65]) {
    out[0] = '\0';
    if (!keylen) return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
    size_t outl = 0;
    if (ctx && EVP_MAC_init(ctx, key, keylen, params)) {
        for (int i = 0; i < n; i++) EVP_MAC_update(ctx, (const unsigned char *)parts[i].data, parts[i].len);
        if (EVP_MAC_final(ctx, md, &outl, sizeof md)) mdlen = (unsigned)outl;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void *heartbeat(void *arg) {
    (void)arg;
    /* The client pings; we echo. zmq_proxy would do, but a loop lets us stop. */
    while (hb_running) {
        zmq_pollitem_t it = {hb_sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, 200);
        if (r <= 0) continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, hb_sock, 0) >= 0) zmq_msg_send(&m, hb_sock, 0);
        zmq_msg_close(&m);
    }
    return NULL;
}

static const char *str_field(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int kw_open(const char *path) {
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) {
        fprintf(kw_log, "stepwise kernel: %s: %s\n", path, err.text);
        return -1;
    }
    const char *k = str_field(c, "key"), *scheme = str_field(c, "signature_scheme");
    if (*k && strcmp(scheme, "hmac-sha256")) {
        fprintf(kw_log, "stepwise kernel: unsupported signature_scheme '%s'\n", scheme);
        json_decref(c);
        return -1;
    }
    keylen = strlen(k);
    if (keylen > sizeof key) keylen = sizeof key;
    memcpy(key, k, keylen);
    const char *transport = json_string_value(json_object_get(c, "transport"));
    const char *ip = json_string_value(json_object_get(c, "ip"));
    if (!transport) transport = "tcp";
    if (!ip) ip = "127.0.0.1";
    kw_new_uuid(session);
    zctx = zmq_ctx_new();
    static const char *const names[] = {"shell_port", "control_port", "stdin_port", "iopub_port", "hb_port"};
    static const int types[] = {ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_PUB, ZMQ_REP};
    for (int i = 0; i < 5; i++) {
        void *s = zmq_socket(zctx, types[i]);
        int linger = 1000;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        int64_t maxsz = KW_MAX_MSG;
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsz, sizeof maxsz);
        char ep[512];
        json_int_t port = json_integer_value(json_object_get(c, names[i]));
        if (!strcmp(transport, "ipc")) snprintf(ep, sizeof ep, "ipc://%s-%lld", ip, (long long)port);
        else snprintf(ep, sizeof ep, "%s://%s:%lld", transport, ip, (long long)port);
        if (zmq_bind(s, ep) != 0) {
            fprintf(kw_log, "stepwise kernel: cannot bind %s: %s\n", ep, zmq_strerror(errno));
            json_decref(c);
            return -1;
        }
        if (i < KW_NSOCK) socks[i] = s;
        else hb_sock = s;
    }
    json_decref(c);
    hb_running = true;
    if (pthread_create(&hb_thread, NULL, heartbeat, NULL) != 0) hb_running = false;
    return 0;
}

void kw_close(void) {
    if (hb_running) {
        hb_running = false;
        pthread_join(hb_thread, NULL);
    }
    for (int i = 0; i < KW_NSOCK; i++)
        if (socks[i]) zmq_close(socks[i]);
    if (hb_sock) zmq_close(hb_sock);
    if (zctx) zmq_ctx_term(zctx);
}

void kw_msg_free(kw_msg *m) {
    for (size_t i = 0; i < m->nids; i++) free(m->ids[i].data);
    free(m->ids);
    json_decref(m->header);
    json_decref(m->parent);
    json_decref(m->metadata);
    json_decref(m->content);
    memset(m, 0, sizeof *m);
}

/* Read every frame of one multipart message. */
static int recv_frames(void *s, kw_frame **out, size_t *n) {
    kw_frame *f = NULL;
    size_t nf = 0, total = 0;
    int more = 1;
    bool bad = false;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            for (size_t i = 0; i < nf; i++) free(f[i].data);
            free(f);
            return -1;
        }
        more = zmq_msg_more(&m);
        size_t len = zmq_msg_size(&m);
        total += len;
        if (total > KW_MAX_MSG || nf >= 1024) bad = true; /* keep reading to stay in sync */
        if (!bad) {
            kw_frame *f2 = realloc(f, (nf + 1) * sizeof *f);
            char *d = malloc(len + 1);
            if (!f2 || !d) {
                bad = true;
                free(d);
                if (f2) f = f2;
            } else {
                f = f2;
                memcpy(d, zmq_msg_data(&m), len);
                d[len] = '\0';
                f[nf].data = d;
                f[nf++].len = len;
            }
        }
        zmq_msg_close(&m);
    }
    if (bad) {
        for (size_t i = 0; i < nf; i++) free(f[i].data);
        free(f);
        fprintf(kw_log, "stepwise kernel: dropped an oversized message\n");
        return 0;
    }
    *out = f;
    *n = nf;
    return 1;
}

static int drop(kw_frame *f, size_t nf, const char *why) {
    fprintf(kw_log, "stepwise kernel: dropped a message: %s\n", why);
    for (size_t i = 0; i < nf; i++) free(f[i].data);
    free(f);
    return 0;
}

int kw_recv(kw_sock s, kw_msg *m, int timeout_ms) {
    memset(m, 0, sizeof *m);
    zmq_pollitem_t it = {socks[s], 0, ZMQ_POLLIN, 0};
    int r = zmq_poll(&it, 1, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (r == 0) return 0;
    kw_frame *f;
    size_t nf;
    r = recv_frames(socks[s], &f, &nf);
    if (r <= 0) return r;
    size_t d = 0;
    while (d < nf && !(f[d].len == sizeof DELIM - 1 && !memcmp(f[d].data, DELIM, f[d].len))) d++;
    if (d == nf || nf - d < 6) return drop(f, nf, "no delimiter or too few frames");
    char want[65];
    sign(f + d + 2, 4, want);
    size_t wl = strlen(want);
    if (f[d + 1].len != wl || CRYPTO_memcmp(f[d + 1].data, want, wl) != 0)
        return drop(f, nf, "bad signature");
    json_t *j[4];
    for (int i = 0; i < 4; i++) {
        json_error_t err;
        j[i] = json_loadb(f[d + 2 + i].data, f[d + 2 + i].len, 0, &err);
        if (!json_is_object(j[i])) {
            for (int k = 0; k <= i; k++) json_decref(j[k]);
            return drop(f, nf, "invalid JSON");
        }
    }
    m->header = j[0];
    m->parent = j[1];
    m->metadata = j[2];
    m->content = j[3];
    m->msg_type = json_string_value(json_object_get(j[0], "msg_type"));
    if (!m->msg_type) {
        kw_msg_free(m);
        return drop(f, nf, "no msg_type");
    }
    /* Keep the identities, free the rest (buffers are not used). */
    for (size_t i = d; i < nf; i++) free(f[i].data);
    m->ids = f;
    m->nids = d;
    return 1;
}

static void iso_now(char *buf, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[24];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%.20s.%06dZ", b, (int)(ts.tv_nsec / 1000) % 1000000);
}

static int send_raw(kw_sock s, const kw_frame *ids, size_t nids, const char *topic, json_t *parent_header,
                    const char *msg_type, json_t *content) {
    char id[37], date[64];
    kw_new_uuid(id);
    iso_now(date, sizeof date);
    json_t *h = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "msg_id", id, "session", session, "username", "stepwise",
                          "date", date, "msg_type", msg_type, "version", "5.3");
    json_t *empty = json_object();
    char *js[4] = {json_dumps(h, JSON_COMPACT), json_dumps(parent_header ? parent_header : empty, JSON_COMPACT),
                   strdup("{}"), json_dumps(content, JSON_COMPACT)};
    json_decref(h);
    json_decref(empty);
    json_decref(content);
    int rc = -1;
    if (js[0] && js[1] && js[2] && js[3]) {
        kw_frame parts[4];
        for (int i = 0; i < 4; i++) parts[i] = (kw_frame){js[i], strlen(js[i])};
        char sig[65];
        sign(parts, 4, sig);
        pthread_mutex_lock(&send_mu);
        void *z = socks[s];
        rc = 0;
        for (size_t i = 0; i < nids; i++) rc |= zmq_send(z, ids[i].data, ids[i].len, ZMQ_SNDMORE) < 0;
        if (topic) rc |= zmq_send(z, topic, strlen(topic), ZMQ_SNDMORE) < 0;
        rc |= zmq_send(z, DELIM, sizeof DELIM - 1, ZMQ_SNDMORE) < 0;
        rc |= zmq_send(z, sig, strlen(sig), ZMQ_SNDMORE) < 0;
        for (int i = 0; i < 4; i++) rc |= zmq_send(z, parts[i].data, parts[i].len, i < 3 ? ZMQ_SNDMORE : 0) < 0;
        pthread_mutex_unlock(&send_mu);
    }
    for (int i = 0; i < 4; i++) free(js[i]);
    return rc ? -1 : 0;
}

int kw_send(kw_sock s, const kw_msg *parent, const char *msg_type, json_t *content) {
    if (s == KW_IOPUB) return send_raw(s, NULL, 0, msg_type, parent ? parent->header : NULL, msg_type, content);
    return send_raw(s, parent ? parent->ids : NULL, parent ? parent->nids : 0, NULL, parent ? parent->header : NULL,
                    msg_type, content);
}

int kw_send_parent(kw_sock s, json_t *parent_header, const char *msg_type, json_t *content) {
    return send_raw(s, NULL, 0, s == KW_IOPUB ? msg_type : NULL, parent_header, msg_type, content);
}
