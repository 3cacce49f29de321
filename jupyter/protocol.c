/* protocol.c — the protocol layer: what each request means.
 *
 * Shell requests run on the main thread, one at a time, because they touch
 * the Lua state. Control requests run on their own thread so that an
 * interrupt_request or shutdown_request is heard while a cell is busy;
 * they never touch Lua. Every request is bracketed by busy/idle status
 * messages carrying it as parent, which is how clients know it is done.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "kernel.h"
#include "lua/lsw.h"

static volatile sig_atomic_t shutting_down;
static int execution_count;

/* This session's inputs, for history_request (numbered from 1). */
static char **hist;
static size_t nhist;

static void status(const kw_msg *m, const char *state) {
    kw_send(KW_IOPUB, m, "status", json_pack("{s:s}", "execution_state", state));
}

static json_t *kernel_info(void) {
    return json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s},s:s,s:[]}", "status", "ok",
                     "protocol_version", "5.3", "implementation", "stepwise", "implementation_version", "0.1.0",
                     "language_info", "name", "lua", "version", "5.4", "mimetype", "text/x-lua", "file_extension",
                     ".lua", "pygments_lexer", "lua", "codemirror_mode", "lua", "banner",
                     "stepwise 0.1.0 (" LUA_RELEASE ") — fine-tuning from Lua", "help_links");
}

static const char *cstr(const kw_msg *m, const char *k, const char *def) {
    const char *s = json_string_value(json_object_get(m->content, k));
    return s ? s : def;
}

static bool cbool(const kw_msg *m, const char *k, bool def) {
    json_t *v = json_object_get(m->content, k);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static long long cint(const kw_msg *m, const char *k, long long def) {
    json_t *v = json_object_get(m->content, k);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

/* ---- stdin ------------------------------------------------------------- */

/* The execute_request running now: input_request is routed to its sender. */
static const kw_msg *cur_exec;

char *kp_input(const char *prompt, bool password, const char **err) {
    if (!cur_exec || !cbool(cur_exec, "allow_stdin", false)) {
        *err = "stdin is not available (the front end does not allow input)";
        return NULL;
    }
    kg_flush(); /* the prompt comes after what the cell printed */
    kw_send(KW_STDIN, cur_exec, "input_request", json_pack("{s:s,s:b}", "prompt", prompt, "password", password));
    for (;;) {
        if (sw_interrupted()) {
            *err = "interrupted";
            return NULL;
        }
        kw_msg m;
        int r = kw_recv(KW_STDIN, &m, 100);
        if (r < 0) {
            *err = "stdin socket error";
            return NULL;
        }
        if (r == 0) continue;
        char *v = !strcmp(m.msg_type, "input_reply") ? strdup(cstr(&m, "value", "")) : NULL;
        kw_msg_free(&m);
        if (v) return v;
    }
}

/* ---- shell ------------------------------------------------------------- */

static void abort_reply(const kw_msg *m) {
    kw_send(KW_SHELL, m, "execute_reply",
            json_pack("{s:s,s:i}", "status", "aborted", "execution_count", execution_count));
}

/* After a failed cell, the execute_requests already queued behind it are
 * answered "aborted" without running (unless they opt out). The queue is
 * read before the failed cell's reply goes out: a request the client sends
 * after seeing that reply must run. */
static kw_msg *queued;
static size_t nqueued;

static void snapshot_queue(void) {
    kw_msg m;
    while (kw_recv(KW_SHELL, &m, 0) == 1) {
        kw_msg *q2 = realloc(queued, (nqueued + 1) * sizeof *queued);
        if (!q2) {
            kw_msg_free(&m);
            break;
        }
        queued = q2;
        queued[nqueued++] = m;
    }
}

/* Returns true when the failure aborts the queue (see snapshot_queue). */
static bool on_execute(lua_State *L, const kw_msg *m) {
    const char *code = cstr(m, "code", "");
    bool silent = cbool(m, "silent", false);
    bool store = cbool(m, "store_history", !silent) && !silent;
    if (store) {
        execution_count++;
        char **h2 = realloc(hist, (nhist + 1) * sizeof *hist);
        if (h2) {
            hist = h2;
            hist[nhist] = strdup(code);
            if (hist[nhist]) nhist++;
        }
    }
    if (!silent)
        kw_send(KW_IOPUB, m, "execute_input", json_pack("{s:s,s:i}", "code", code, "execution_count", execution_count));
    kg_set_parent(m->header);
    kg_result r;
    cur_exec = m;
    kg_execute(L, code, &r);
    cur_exec = NULL;
    json_t *reply;
    if (r.ok) {
        if (r.data && !silent)
            kw_send(KW_IOPUB, m, "execute_result",
                    json_pack("{s:i,s:O,s:{}}", "execution_count", execution_count, "data", r.data, "metadata"));
        if (r.cost && !silent)
            kw_send(KW_IOPUB, m, "stream", json_pack("{s:s,s:O}", "name", "stdout", "text", r.cost));
        reply = json_pack("{s:s,s:i,s:{},s:[]}", "status", "ok", "execution_count", execution_count,
                          "user_expressions", "payload");
    } else {
        /* The cost line joins the traceback: one error message per failure. */
        if (r.cost) {
            const char *c = json_string_value(r.cost);
            json_array_append_new(r.traceback, json_stringn(c, strlen(c) - 1)); /* no newline */
        }
        json_t *err = json_pack("{s:s,s:s,s:O}", "ename", r.ename, "evalue", r.evalue, "traceback", r.traceback);
        if (!silent) kw_send(KW_IOPUB, m, "error", json_deep_copy(err));
        reply = err;
        json_object_set_new(reply, "status", json_string("error"));
        json_object_set_new(reply, "execution_count", json_integer(execution_count));
    }
    bool abort = !r.ok && cbool(m, "stop_on_error", true);
    if (abort) snapshot_queue();
    kw_send(KW_SHELL, m, "execute_reply", reply);
    kg_result_free(&r);
    return abort;
}

static void on_complete(lua_State *L, const kw_msg *m) {
    const char *code = cstr(m, "code", "");
    size_t cursor = (size_t)cint(m, "cursor_pos", (long long)strlen(code)), start = 0;
    json_t *matches = kg_complete(L, code, cursor, &start);
    kw_send(KW_SHELL, m, "complete_reply",
            json_pack("{s:s,s:o,s:I,s:I,s:{}}", "status", "ok", "matches", matches, "cursor_start",
                      (json_int_t)start, "cursor_end", (json_int_t)cursor, "metadata"));
}

static void on_inspect(lua_State *L, const kw_msg *m) {
    const char *code = cstr(m, "code", "");
    json_t *data = kg_inspect(L, code, (size_t)cint(m, "cursor_pos", (long long)strlen(code)));
    kw_send(KW_SHELL, m, "inspect_reply",
            json_pack("{s:s,s:b,s:o,s:{}}", "status", "ok", "found", data != NULL, "data",
                      data ? data : json_object(), "metadata"));
}

static void on_is_complete(lua_State *L, const kw_msg *m) {
    const char *st = kg_is_complete(L, cstr(m, "code", ""));
    json_t *c = json_pack("{s:s}", "status", st);
    if (!strcmp(st, "incomplete")) json_object_set_new(c, "indent", json_string("  "));
    kw_send(KW_SHELL, m, "is_complete_reply", c);
}

static json_t *hist_entry(size_t i, bool output) {
    json_t *in = json_string(hist[i]);
    if (!in) in = json_string("");
    if (output) in = json_pack("[o,n]", in);
    return json_pack("[i,I,o]", 1, (json_int_t)(i + 1), in);
}

/* Glob match with '*' and '?', the pattern language history search uses. */
static bool glob(const char *p, const char *s) {
    if (!*p) return !*s;
    if (*p == '*') return glob(p + 1, s) || (*s && glob(p, s + 1));
    if (!*s) return false;
    return (*p == '?' || *p == *s) && glob(p + 1, s + 1);
}

static void on_history(const kw_msg *m) {
    const char *type = cstr(m, "hist_access_type", "tail");
    bool output = cbool(m, "output", false);
    long long n = cint(m, "n", 10);
    json_t *h = json_array();
    if (!strcmp(type, "tail")) {
        size_t from = n >= 0 && (size_t)n < nhist ? nhist - (size_t)n : 0;
        for (size_t i = from; i < nhist; i++) json_array_append_new(h, hist_entry(i, output));
    } else if (!strcmp(type, "range")) {
        long long a = cint(m, "start", 1), b = cint(m, "stop", (long long)nhist + 1);
        for (long long i = a < 1 ? 1 : a; i < b && i <= (long long)nhist; i++)
            json_array_append_new(h, hist_entry((size_t)i - 1, output));
    } else if (!strcmp(type, "search")) {
        const char *pat = cstr(m, "pattern", "*");
        bool unique = cbool(m, "unique", false);
        /* Newest first while collecting, so n keeps the latest matches. */
        json_t *rev = json_array();
        for (size_t i = nhist; i-- > 0 && (n <= 0 || (long long)json_array_size(rev) < n);) {
            if (!glob(pat, hist[i])) continue;
            bool dup = false;
            for (size_t j = i + 1; unique && j < nhist && !dup; j++) dup = !strcmp(hist[i], hist[j]) && glob(pat, hist[j]);
            if (!dup) json_array_append_new(rev, hist_entry(i, output));
        }
        for (size_t i = json_array_size(rev); i-- > 0;) json_array_append(h, json_array_get(rev, i));
        json_decref(rev);
    }
    kw_send(KW_SHELL, m, "history_reply", json_pack("{s:s,s:o}", "status", "ok", "history", h));
}

static void on_shutdown(kw_sock s, const kw_msg *m) {
    bool restart = cbool(m, "restart", false);
    kw_send(s, m, "shutdown_reply", json_pack("{s:s,s:b}", "status", "ok", "restart", restart));
    shutting_down = 1;
}

static void handle_shell(lua_State *L, const kw_msg *m) {
    const char *t = m->msg_type;
    status(m, "busy");
    if (!strcmp(t, "execute_request")) on_execute(L, m);
    else if (!strcmp(t, "kernel_info_request")) kw_send(KW_SHELL, m, "kernel_info_reply", kernel_info());
    else if (!strcmp(t, "complete_request")) on_complete(L, m);
    else if (!strcmp(t, "inspect_request")) on_inspect(L, m);
    else if (!strcmp(t, "is_complete_request")) on_is_complete(L, m);
    else if (!strcmp(t, "history_request")) on_history(m);
    else if (!strcmp(t, "comm_info_request"))
        kw_send(KW_SHELL, m, "comm_info_reply", json_pack("{s:s,s:{}}", "status", "ok", "comms"));
    else if (!strcmp(t, "shutdown_request")) on_shutdown(KW_SHELL, m);
    else fprintf(kw_log, "stepwise kernel: ignoring %s\n", t);
    status(m, "idle");
}

static void abort_queue(lua_State *L) {
    kw_msg *q = queued;
    size_t n = nqueued;
    queued = NULL;
    nqueued = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(q[i].msg_type, "execute_request") && cbool(&q[i], "stop_on_error", true)) {
            status(&q[i], "busy");
            abort_reply(&q[i]);
            status(&q[i], "idle");
        } else {
            handle_shell(L, &q[i]); /* may fail and queue more: handled next round */
        }
        kw_msg_free(&q[i]);
    }
    free(q);
}

/* ---- control ----------------------------------------------------------- */

static void *control_loop(void *arg) {
    (void)arg;
    while (!shutting_down) {
        kw_msg m;
        if (kw_recv(KW_CONTROL, &m, 100) != 1) continue;
        status(&m, "busy");
        if (!strcmp(m.msg_type, "interrupt_request")) {
            kg_interrupt();
            kw_send(KW_CONTROL, &m, "interrupt_reply", json_pack("{s:s}", "status", "ok"));
        } else if (!strcmp(m.msg_type, "shutdown_request")) {
            on_shutdown(KW_CONTROL, &m);
            kg_interrupt(); /* a running cell must not hold the shutdown up */
        } else if (!strcmp(m.msg_type, "kernel_info_request")) {
            kw_send(KW_CONTROL, &m, "kernel_info_reply", kernel_info());
        } else {
            fprintf(kw_log, "stepwise kernel: ignoring %s on control\n", m.msg_type);
        }
        status(&m, "idle");
        kw_msg_free(&m);
    }
    return NULL;
}

int kp_run(lua_State *L) {
    pthread_t control;
    bool have_control = pthread_create(&control, NULL, control_loop, NULL) == 0;
    kw_send(KW_IOPUB, NULL, "status", json_pack("{s:s}", "execution_state", "starting"));
    int rc = 0;
    while (!shutting_down) {
        kw_msg m;
        int r = kw_recv(KW_SHELL, &m, 100);
        if (r < 0) {
            rc = 1;
            break;
        }
        if (r == 0) continue;
        handle_shell(L, &m);
        kw_msg_free(&m);
        while (nqueued) abort_queue(L);
    }
    shutting_down = 1;
    if (have_control) pthread_join(control, NULL);
    kg_flush();
    for (size_t i = 0; i < nhist; i++) free(hist[i]);
    free(hist);
    return rc;
}
