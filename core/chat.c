/* chat.c — the template families behind most chat models (see chat.h).
 *
 * Interim renderer: it recognises ChatML, Llama 3 and [INST] templates from
 * their text and writes those layouts directly. The Jinja engine replaces
 * it behind the same interface. */
#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum sw_chat_style { SW_CHAT_CHATML, SW_CHAT_LLAMA3, SW_CHAT_INST, SW_CHAT_UNKNOWN } sw_chat_style;

struct sw_chat_template {
    char *source;
};

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static sw_chat_style sw_chat_detect(const char *t) {
    if (!t) return SW_CHAT_UNKNOWN;
    if (strstr(t, "<|im_start|>")) return SW_CHAT_CHATML;
    if (strstr(t, "<|start_header_id|>")) return SW_CHAT_LLAMA3;
    if (strstr(t, "[INST]")) return SW_CHAT_INST;
    return SW_CHAT_UNKNOWN;
}

/* A ChatML template that injects a system turn when the conversation has
 * none writes it as a literal: '<|im_start|>system\n...<|im_end|>'. */
static bool default_system(const char *t, const char **s, size_t *n) {
    const char *open = "<|im_start|>system\n";
    for (const char *p = strstr(t, open); p; p = strstr(p + 1, open)) {
        const char *body = p + strlen(open);
        const char *end = strstr(body, "<|im_end|>");
        /* A literal ends at <|im_end|> with no template syntax inside. */
        if (end && !memchr(body, '\'', (size_t)(end - body)) && !memchr(body, '{', (size_t)(end - body))) {
            *s = body;
            *n = (size_t)(end - body);
            return true;
        }
    }
    return false;
}

static bool is_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool");
}

static sw_status render(sw_ctx *ctx, const char *tmpl, const sw_chat_msg *m, int n, bool gen, char **out,
                       size_t *len) {
    *out = NULL;
    sw_chat_style style = sw_chat_detect(tmpl);
    if (style == SW_CHAT_UNKNOWN)
        return sw_err(ctx, SW_EUNSUPPORTED, tmpl ? "chat template: not a ChatML, Llama 3 or [INST] template"
                                                 : "this model has no chat template");
    for (int i = 0; i < n; i++) {
        if (!m[i].role || !is_role(m[i].role))
            return sw_err(ctx, SW_EINVAL, "message %d: role must be system, user, assistant or tool, got '%s'", i + 1,
                          m[i].role ? m[i].role : "(none)");
        if (!m[i].content) return sw_err(ctx, SW_EINVAL, "message %d: content is missing", i + 1);
    }
    sbuf b = {0};
    switch (style) {
    case SW_CHAT_CHATML: {
        const char *ds;
        size_t dn;
        if ((n == 0 || strcmp(m[0].role, "system")) && default_system(tmpl, &ds, &dn)) {
            puts_(&b, "<|im_start|>system\n");
            put(&b, ds, dn);
            puts_(&b, "<|im_end|>\n");
        }
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|im_start|>");
            puts_(&b, m[i].role);
            puts_(&b, "\n");
            puts_(&b, m[i].content);
            puts_(&b, "<|im_end|>\n");
        }
        if (gen) puts_(&b, "<|im_start|>assistant\n");
        break;
    }
    case SW_CHAT_LLAMA3:
        puts_(&b, "<|begin_of_text|>");
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|start_header_id|>");
            puts_(&b, m[i].role);
            puts_(&b, "<|end_header_id|>\n\n");
            /* Llama 3 templates trim each message. */
            const char *s = m[i].content, *e = s + strlen(s);
            while (s < e && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++;
            while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r')) e--;
            put(&b, s, (size_t)(e - s));
            puts_(&b, "<|eot_id|>");
        }
        if (gen) puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SW_CHAT_INST: {
        /* <s>[INST] system\n\nuser [/INST] answer</s>[INST] ... */
        const char *sys = n > 0 && !strcmp(m[0].role, "system") ? m[0].content : NULL;
        puts_(&b, "<s>");
        for (int i = sys ? 1 : 0; i < n; i++) {
            if (!strcmp(m[i].role, "user")) {
                puts_(&b, "[INST] ");
                if (sys && i == 1) {
                    puts_(&b, sys);
                    puts_(&b, "\n\n");
                }
                puts_(&b, m[i].content);
                puts_(&b, " [/INST]");
            } else if (!strcmp(m[i].role, "assistant")) {
                puts_(&b, " ");
                puts_(&b, m[i].content);
                puts_(&b, "</s>");
            } else {
                free(b.p);
                return sw_err(ctx, SW_EINVAL, "message %d: [INST] templates take user and assistant turns only", i + 1);
            }
        }
        break;
    }
    default:
        break;
    }
    if (b.oom) {
        free(b.p);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    if (!b.p) puts_(&b, "");
    *out = b.p;
    *len = b.len;
    return SW_OK;
}

sw_status sw_chat_template_new(sw_ctx *ctx, const char *source, const char *name, sw_chat_template **out) {
    *out = NULL;
    if (sw_chat_detect(source) == SW_CHAT_UNKNOWN)
        return sw_err(ctx, SW_EUNSUPPORTED, "%s: not a ChatML, Llama 3 or [INST] template", name ? name : "chat template");
    sw_chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->source = strdup(source))) {
        free(t);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    *out = t;
    return SW_OK;
}

sw_status sw_chat_template_builtin(sw_ctx *ctx, const char *name, sw_chat_template **out) {
    if (!strcmp(name, "chatml")) return sw_chat_template_new(ctx, "<|im_start|>", name, out);
    if (!strcmp(name, "llama-3.1")) return sw_chat_template_new(ctx, "<|start_header_id|>", name, out);
    if (!strcmp(name, "mistral")) return sw_chat_template_new(ctx, "[INST]", name, out);
    *out = NULL;
    return sw_err(ctx, SW_EINVAL, "unknown chat template '%s' (known: chatml, llama-3.1, mistral)", name);
}

void sw_chat_template_free(sw_chat_template *t) {
    if (!t) return;
    free(t->source);
    free(t);
}

const char *sw_chat_template_source(const sw_chat_template *t) { return t->source; }

sw_status sw_chat_apply(sw_ctx *ctx, const sw_chat_template *t, const sw_chat_msg *msgs, int n,
                        bool add_generation_prompt, const char *bos, const char *eos, char **out, size_t *len) {
    (void)bos;
    (void)eos;
    return render(ctx, t->source, msgs, n, add_generation_prompt, out, len);
}
