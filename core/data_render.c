/* data_render.c — one conversation to token ids and training labels.
 *
 * The rule (data.h): assistant turn k trains the bytes
 *   [len(render(m[:k], add_generation_prompt)), len(render(m[:k+1])))
 * with trailing whitespace dropped — that is the turn's content and its
 * end-of-turn marker; the newline some templates write after the marker is
 * glue the model never has to produce, since generation stops at the marker.
 * Spans come from the rendered text, so they are right for any template that
 * renders a conversation as a growing prefix; one that does not is an error,
 * never a guessed mask. The full text is tokenized once with byte offsets and
 * a token trains when all of its bytes lie in a span: a token that straddles a
 * span's start holds prompt bytes, so it stays masked.
 *
 * Templates: a chat template through chat.h, or two kept here because they
 * need what a chat template never sees — the classic Alpaca prompt (which
 * sets the instruction and its input apart) and "none" (contents as they are,
 * EOS after each response, for prompt/completion text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

typedef enum { R_CHAT, R_ALPACA, R_NONE } rkind;

struct data_renderer {
    rkind kind;
    sw_chat_template *tpl;
    const sw_tokenizer *tok;
    char bos[64], eos[64];  /* their texts, for templates that write them */
    int32_t bos_id, eos_id;
    bool add_bos;           /* the tokenizer's post-processor starts every text with BOS */
    char name[96];
};

static void piece_text(const sw_tokenizer *tok, int32_t id, char *buf, size_t n) {
    size_t len = 0;
    const char *p = id >= 0 ? sw_tokenizer_piece(tok, id, &len) : NULL;
    buf[0] = '\0';
    if (p && len < n) {
        memcpy(buf, p, len);
        buf[len] = '\0';
    }
}

/* Does encode(add_special) put BOS in front? Asked of the tokenizer itself,
 * so tokenizer.json post-processors and GGUF add_bos_token agree. */
static sw_status detect_bos(sw_ctx *ctx, data_renderer *r) {
    r->add_bos = false;
    if (r->bos_id < 0) return SW_OK;
    int32_t *a = NULL, *b = NULL;
    int64_t na, nb;
    sw_status st = sw_tokenizer_encode(ctx, r->tok, "a", 1, true, &a, &na);
    if (!st) st = sw_tokenizer_encode(ctx, r->tok, "a", 1, false, &b, &nb);
    if (!st) r->add_bos = na > 0 && a[0] == r->bos_id && !(nb > 0 && b[0] == r->bos_id);
    free(a);
    free(b);
    return st;
}

static const char *const builtin_list = "chatml, llama-3.1, alpaca, mistral, phi-3, gemma, none";

sw_status data_renderer_new(sw_ctx *ctx, const sw_tokenizer *tok, const char *spec, sw_data_format fmt,
                            data_renderer **out) {
    *out = NULL;
    data_renderer *r = calloc(1, sizeof *r);
    if (!r) return sw_err(ctx, SW_ENOMEM, "out of memory");
    r->tok = tok;
    r->bos_id = sw_tokenizer_bos(tok);
    r->eos_id = sw_tokenizer_eos(tok);
    piece_text(tok, r->bos_id, r->bos, sizeof r->bos);
    piece_text(tok, r->eos_id, r->eos, sizeof r->eos);
    sw_status st = SW_OK;
    if (!spec || !strcmp(spec, "auto")) {
        const char *src = sw_tokenizer_chat_template(tok);
        if (fmt == SW_DATA_TEXT) {
            r->kind = R_NONE;
            snprintf(r->name, sizeof r->name, "none (raw text)");
        } else if (src) {
            r->kind = R_CHAT;
            st = sw_chat_template_new(ctx, src, "the tokenizer's chat template", &r->tpl);
            snprintf(r->name, sizeof r->name, "auto (the tokenizer's chat template)");
        } else if (fmt == SW_DATA_ALPACA) {
            r->kind = R_ALPACA;
            snprintf(r->name, sizeof r->name, "alpaca");
        } else {
            st = sw_err(ctx, SW_EINVAL, "the tokenizer has no chat template: choose one with template = (%s) or Jinja source",
                        builtin_list);
        }
    } else if (!strcmp(spec, "alpaca")) {
        r->kind = R_ALPACA;
        snprintf(r->name, sizeof r->name, "alpaca");
    } else if (!strcmp(spec, "none")) {
        r->kind = R_NONE;
        snprintf(r->name, sizeof r->name, "none");
    } else if (strstr(spec, "{%") || strstr(spec, "{{")) {
        r->kind = R_CHAT;
        st = sw_chat_template_new(ctx, spec, "template", &r->tpl);
        snprintf(r->name, sizeof r->name, "Jinja source (%zu bytes)", strlen(spec));
    } else {
        r->kind = R_CHAT;
        st = sw_chat_template_builtin(ctx, spec, &r->tpl);
        snprintf(r->name, sizeof r->name, "%.80s", spec);
    }
    if (!st && r->kind != R_CHAT && r->eos_id < 0 && fmt != SW_DATA_TEXT)
        st = sw_err(ctx, SW_EINVAL, "template '%s' ends each response with EOS, and this tokenizer has none", r->name);
    if (!st) st = detect_bos(ctx, r);
    if (st) {
        data_renderer_free(r);
        return st;
    }
    *out = r;
    return SW_OK;
}

void data_renderer_free(data_renderer *r) {
    if (!r) return;
    sw_chat_template_free(r->tpl);
    free(r);
}

const char *data_renderer_name(const data_renderer *r) { return r->name; }

/* ---- the templates kept here ---------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* The classic Alpaca prompt (Stanford Alpaca's two preambles), continued
 * turn by turn for longer conversations. A system message replaces the
 * preamble. ilen >= 0: the first user message is instruction + "\n\n" +
 * input, the input at offset ilen + 2. */
static sw_status render_alpaca(sw_ctx *ctx, const data_renderer *r, const sw_chat_msg *m, int n, bool gen,
                               int64_t ilen, sbuf *b) {
    int i = 0;
    const char *first_user = NULL;
    for (int k = 0; k < n && !first_user; k++)
        if (!strcmp(m[k].role, "user")) first_user = m[k].content;
    bool has_input = first_user && ilen >= 0 && (size_t)ilen + 2 < strlen(first_user);
    if (n > 0 && !strcmp(m[0].role, "system")) {
        puts_(b, m[0].content);
        i = 1;
    } else if (has_input) {
        puts_(b, "Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request.");
    } else {
        puts_(b, "Below is an instruction that describes a task. Write a response that appropriately completes the request.");
    }
    puts_(b, "\n\n");
    for (; i < n; i++) {
        if (!strcmp(m[i].role, "user")) {
            puts_(b, "### Instruction:\n");
            if (m[i].content == first_user && has_input) {
                put(b, m[i].content, (size_t)ilen);
                puts_(b, "\n\n### Input:\n");
                puts_(b, m[i].content + ilen + 2);
            } else {
                puts_(b, m[i].content);
            }
            puts_(b, "\n\n");
        } else if (!strcmp(m[i].role, "assistant")) {
            puts_(b, "### Response:\n");
            puts_(b, m[i].content);
            puts_(b, r->eos);
            puts_(b, "\n\n");
        } else {
            return sw_err(ctx, SW_EINVAL, "message %d: the alpaca template takes user and assistant turns (and a first "
                                          "system message), not '%s'", i + 1, m[i].role);
        }
    }
    if (gen) puts_(b, "### Response:\n");
    return SW_OK;
}

static sw_status render(sw_ctx *ctx, const data_renderer *r, const sw_chat_msg *m, int n, bool gen, int64_t ilen,
                        char **out, size_t *len) {
    if (r->kind == R_CHAT) return sw_chat_apply(ctx, r->tpl, m, n, gen, r->bos, r->eos, out, len);
    sbuf b = {0};
    put(&b, "", 0);
    sw_status st = SW_OK;
    if (r->kind == R_ALPACA) {
        st = render_alpaca(ctx, r, m, n, gen, ilen, &b);
    } else {
        for (int i = 0; i < n; i++) {
            puts_(&b, m[i].content);
            if (!strcmp(m[i].role, "assistant")) puts_(&b, r->eos);
        }
    }
    if (!st && b.oom) st = sw_err(ctx, SW_ENOMEM, "out of memory rendering");
    if (st) {
        free(b.p);
        return st;
    }
    *out = b.p;
    *len = b.n;
    return SW_OK;
}

sw_status data_render_text(sw_ctx *ctx, const data_renderer *r, const data_conv *c, int64_t ilen, bool raw,
                           char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (!raw) return render(ctx, r, c->m, c->n, false, ilen, text, len);
    size_t n = c->n ? strlen(c->m[0].content) : 0;
    if (!(*text = malloc(n + 1))) return sw_err(ctx, SW_ENOMEM, "out of memory rendering");
    memcpy(*text, c->n ? c->m[0].content : "", n + 1);
    *len = n;
    return SW_OK;
}

/* ---- spans, tokens, labels -------------------------------------------------------- */

typedef struct span {
    size_t s, e;
    int turn; /* message index, for messages */
} span;

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* The trained span of assistant message k; checks the prefix property. */
static sw_status turn_span(sw_ctx *ctx, const data_renderer *r, const data_conv *c, int k, int64_t ilen,
                           const char *full, size_t flen, span *out) {
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    sw_status st = render(ctx, r, c->m, k, true, ilen, &a, &al);
    if (!st) st = render(ctx, r, c->m, k + 1, false, ilen, &b, &bl);
    if (!st && (al > flen || memcmp(a, full, al)))
        st = sw_err(ctx, SW_EINVAL,
                    "the template renders messages 1..%d with a generation prompt as something that does not begin "
                    "the whole conversation, so the response cannot be located",
                    k);
    if (!st && (bl > flen || memcmp(b, full, bl)))
        st = sw_err(ctx, SW_EINVAL,
                    "the template renders messages 1..%d as something that does not begin the whole conversation, so "
                    "the end of response %d cannot be located",
                    k + 1, k + 1);
    if (!st && bl < al)
        st = sw_err(ctx, SW_EINVAL, "the template renders message %d (assistant) before its own generation prompt", k + 1);
    if (!st) {
        size_t e = bl;
        while (e > al && is_ws(full[e - 1])) e--;
        *out = (span){al, e, k};
    }
    free(a);
    free(b);
    return st;
}

sw_status data_render(sw_ctx *ctx, const data_renderer *r, const data_conv *c, int64_t ilen, sw_train_on on,
                      bool raw, int64_t max_len, int32_t **ids_out, int32_t **labels_out, int64_t *len_out,
                      int64_t *n_trained_out) {
    *ids_out = *labels_out = NULL;
    *len_out = *n_trained_out = 0;
    char *full = NULL;
    size_t flen = 0;
    span *sp = NULL;
    int nsp = 0;
    int32_t *ids = NULL, *labels = NULL;
    sw_token_offset *off = NULL;
    int64_t n = 0;
    sw_status st = SW_OK;

    if ((st = data_render_text(ctx, r, c, ilen, raw, &full, &flen))) goto fail;
    if (!raw) {
        if (on != SW_TRAIN_ALL) {
            if (!(sp = malloc(sizeof *sp * (size_t)(c->n + 1)))) goto nomem;
            int last = -1;
            for (int k = 0; k < c->n; k++)
                if (!strcmp(c->m[k].role, "assistant")) last = k;
            for (int k = on == SW_TRAIN_LAST_RESPONSE && last >= 0 ? last : 0; k < c->n; k++) {
                if (strcmp(c->m[k].role, "assistant")) continue;
                if ((st = turn_span(ctx, r, c, k, ilen, full, flen, &sp[nsp]))) goto fail;
                nsp++;
            }
            if (nsp == 0) {
                st = sw_err(ctx, SW_EINVAL, "nothing to train on: the conversation has no assistant message");
                goto fail;
            }
        }
    }

    /* One tokenization of the whole text; then exactly one BOS (a template
     * that writes BOS itself gets none added) and, for raw text, an EOS. */
    if ((st = sw_tokenizer_encode_offsets(ctx, r->tok, full, flen, false, &ids, &off, &n))) goto fail;
    bool bos = r->add_bos && !(n > 0 && ids[0] == r->bos_id);
    bool eos = raw && r->eos_id >= 0 && !(n > 0 && ids[n - 1] == r->eos_id);
    int64_t len = n + bos + eos;
    int32_t *ids2 = malloc(sizeof *ids2 * (size_t)(len + 1));
    if (!ids2 || !(labels = malloc(sizeof *labels * (size_t)(len + 1)))) {
        free(ids2);
        goto nomem;
    }
    if (bos) ids2[0] = r->bos_id;
    memcpy(ids2 + bos, ids, sizeof *ids * (size_t)n);
    if (eos) ids2[len - 1] = r->eos_id;
    free(ids);
    ids = ids2;

    for (int64_t t = 0; t < len; t++) labels[t] = SW_LABEL_IGNORE;
    if (raw || on == SW_TRAIN_ALL) {
        for (int64_t t = 0; t < len; t++) labels[t] = ids[t];
    } else {
        int64_t t = 0;
        for (int k = 0; k < nsp; k++) {
            int64_t last = -1;
            for (; t < n && (size_t)off[t].begin < sp[k].e; t++) {
                if ((size_t)off[t].begin >= sp[k].s && (size_t)off[t].end <= sp[k].e && off[t].begin < off[t].end) {
                    labels[t + bos] = ids[t + bos];
                    last = t + bos;
                }
            }
            /* Generation stops at an end-of-turn token, so every response
             * must teach one: the last trained token must be special. */
            if (last >= 0 && !sw_tokenizer_is_special(r->tok, ids[last]) && ids[last] != r->eos_id) {
                size_t pl = 0;
                const char *p = sw_tokenizer_token_bytes(r->tok, ids[last], &pl);
                st = sw_err(ctx, SW_EINVAL,
                            "response %d (message %d) does not end with an end-of-turn token: the template's last "
                            "token there is '%.*s'",
                            k + 1, sp[k].turn + 1, (int)(pl > 40 ? 40 : pl), p ? p : "");
                goto fail;
            }
        }
    }
    labels[0] = SW_LABEL_IGNORE; /* nothing in the sample predicts its first token */

    int64_t trained = 0, first = -1;
    for (int64_t t = 0; t < len; t++)
        if (labels[t] != SW_LABEL_IGNORE) {
            if (first < 0) first = t;
            if (t < max_len) trained++;
        }
    if (first < 0) {
        st = sw_err(ctx, SW_EINVAL, "nothing to train on: no token of the %lld falls in a trained span",
                    (long long)len);
        goto fail;
    }
    if (trained == 0) {
        st = sw_err(ctx, SW_EINVAL,
                    "nothing to train on within max_len = %lld: the first trained token is token %lld of %lld",
                    (long long)max_len, (long long)first + 1, (long long)len);
        goto fail;
    }
    free(full);
    free(sp);
    free(off);
    *ids_out = ids;
    *labels_out = labels;
    *len_out = len;
    *n_trained_out = trained;
    return SW_OK;
nomem:
    st = sw_err(ctx, SW_ENOMEM, "out of memory rendering");
fail:
    free(full);
    free(sp);
    free(off);
    free(ids);
    free(labels);
    return st;
}
