/* data_read.c — dataset files to records: JSONL (one JSON object a line) or
 * a JSON file holding one array of objects, in the formats data.h lists.
 *
 * Every record becomes a conversation of chat messages whose strings stay in
 * the record's parsed JSON, so nothing is copied until the dataset keeps it.
 * Errors name the file and line (the array index for a JSON file, where
 * jansson keeps no positions) and the field at fault. A record that fails is
 * behind the reader when the error comes back, so a caller that skips bad
 * records just asks for the next one.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

struct data_reader {
    char *name;
    char *buf; /* the file's bytes */
    size_t len, pos;
    bool lines;      /* JSONL; else a JSON array */
    int64_t line;    /* JSONL: the line last read */
    json_t *array;   /* JSON: the parsed array */
    size_t index;
};

/* ---- opening ------------------------------------------------------------------ */

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static sw_status reader_init(sw_ctx *ctx, data_reader *r, bool json_array) {
    r->lines = !json_array;
    if (r->lines) return SW_OK;
    json_error_t e;
    r->array = json_loadb(r->buf, r->len, 0, &e);
    if (!r->array) return sw_err(ctx, SW_EFORMAT, "%s:%d:%d: invalid JSON: %s", r->name, e.line, e.column, e.text);
    if (!json_is_array(r->array))
        return sw_err(ctx, SW_EFORMAT, "%s: a JSON dataset must hold an array of records (for one record a line, use JSONL)",
                      r->name);
    return SW_OK;
}

/* Skip a UTF-8 byte order mark; say whether the first thing is a '['. */
static bool starts_array(const char *s, size_t n) {
    size_t i = n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < n && blank(s[i])) i++;
    return i < n && s[i] == '[';
}

sw_status data_reader_open(sw_ctx *ctx, const char *path, data_reader **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err(ctx, SW_EIO, "%s: %s", path, strerror(errno));
    data_reader *r = calloc(1, sizeof *r);
    sw_status st = SW_OK;
    if (!r || !(r->name = strdup(path))) {
        st = sw_err(ctx, SW_ENOMEM, "out of memory reading %s", path);
        goto fail;
    }
    size_t cap = 1 << 16;
    for (;;) { /* read to the end: works for pipes and files alike */
        char *b = realloc(r->buf, cap + 1);
        if (!b) {
            st = sw_err(ctx, SW_ENOMEM, "out of memory reading %s", path);
            goto fail;
        }
        r->buf = b;
        r->len += fread(r->buf + r->len, 1, cap - r->len, f);
        if (r->len < cap) break;
        cap *= 2;
    }
    if (ferror(f)) {
        st = sw_err(ctx, SW_EIO, "%s: read error", path);
        goto fail;
    }
    r->buf[r->len] = '\0';
    fclose(f);
    f = NULL;
    if ((st = reader_init(ctx, r, starts_array(r->buf, r->len)))) goto fail;
    *out = r;
    return SW_OK;
fail:
    if (f) fclose(f);
    data_reader_free(r);
    return st;
}

sw_status data_reader_from_text(sw_ctx *ctx, const char *text, size_t len, const char *name, bool json_array,
                                data_reader **out) {
    *out = NULL;
    data_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name ? name : "(text)")) || !(r->buf = malloc(len + 1))) {
        data_reader_free(r);
        return sw_err(ctx, SW_ENOMEM, "out of memory");
    }
    memcpy(r->buf, text, len);
    r->buf[len] = '\0';
    r->len = len;
    sw_status st = reader_init(ctx, r, json_array);
    if (st) {
        data_reader_free(r);
        return st;
    }
    *out = r;
    return SW_OK;
}

void data_reader_free(data_reader *r) {
    if (!r) return;
    json_decref(r->array);
    free(r->buf);
    free(r->name);
    free(r);
}

bool data_reader_is_lines(const data_reader *r) { return r->lines; }

const char *data_reader_where(const data_reader *r, int64_t row, char *buf, size_t n) {
    if (r->lines) snprintf(buf, n, "%s:%lld", r->name, (long long)row);
    else snprintf(buf, n, "%s: record %lld", r->name, (long long)row);
    return buf;
}

/* An error about record `row`: "train.jsonl:17: <message>". */
static sw_status rec_err(sw_ctx *ctx, const data_reader *r, int64_t row, sw_status s, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static sw_status rec_err(sw_ctx *ctx, const data_reader *r, int64_t row, sw_status s, const char *fmt, ...) {
    char where[600], msg[SW_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sw_err(ctx, s, "%s: %s", data_reader_where(r, row, where, sizeof where), msg);
}

/* ---- records ------------------------------------------------------------------ */

void data_record_clear(data_record *rec) {
    json_decref(rec->root);
    rec->root = NULL;
    free(rec->scratch);
    rec->scratch = NULL;
    rec->conv[0].n = rec->conv[1].n = 0;
    rec->instruction_len = -1;
}

void data_record_free(data_record *rec) {
    data_record_clear(rec);
    free(rec->conv[0].m);
    free(rec->conv[1].m);
    rec->conv[0] = rec->conv[1] = (data_conv){0};
}

static bool conv_push(data_conv *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 8;
        sw_chat_msg *m = realloc(c->m, (size_t)cap * sizeof *m);
        if (!m) return false;
        c->m = m;
        c->cap = cap;
    }
    c->m[c->n++] = (sw_chat_msg){role, content};
    return true;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* The parse of one record: the reader (for messages), the row, the status. */
typedef struct parse {
    sw_ctx *ctx;
    const data_reader *r;
    int64_t row;
    sw_status st;
    data_record *rec;
} parse;

#define FAIL(p, ...) ((p)->st = rec_err((p)->ctx, (p)->r, (p)->row, SW_EFORMAT, __VA_ARGS__), false)
#define NOMEM(p) ((p)->st = sw_err((p)->ctx, SW_ENOMEM, "out of memory reading records"), false)

/* A required string field (optional: a missing or null one reads as ""). */
static bool get_string(parse *p, const json_t *obj, const char *key, bool optional, const char **out) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (optional) {
            *out = "";
            return true;
        }
        return FAIL(p, "field '%s' is missing", key);
    }
    if (!json_is_string(v)) return FAIL(p, "field '%s' must be a string, got %s", key, type_name(v));
    *out = json_string_value(v);
    return true;
}

static const char *role_of(const char *s, bool sharegpt) {
    static const char *const roles[][2] = {
        {"system", "system"}, {"user", "user"}, {"assistant", "assistant"}, {"tool", "tool"},
        /* ShareGPT's speakers */
        {"human", "user"}, {"gpt", "assistant"}, {"model", "assistant"}, {"function_response", "tool"}};
    size_t n = sharegpt ? sizeof roles / sizeof roles[0] : 4;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, roles[i][0])) return roles[i][1];
    return NULL;
}

/* A list of messages: [{role, content}] or, ShareGPT's, [{from, value}]. */
static bool get_messages(parse *p, const json_t *arr, const char *field, bool sharegpt, data_conv *out) {
    if (!json_is_array(arr)) return FAIL(p, "field '%s' must be a list of messages, got %s", field, type_name(arr));
    if (json_array_size(arr) == 0) return FAIL(p, "field '%s' is an empty list", field);
    const char *rk = sharegpt ? "from" : "role", *ck = sharegpt ? "value" : "content";
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);
        if (!json_is_object(m))
            return FAIL(p, "%s[%zu] must be an object {%s, %s}, got %s", field, i, rk, ck, type_name(m));
        const json_t *role = json_object_get(m, rk), *content = json_object_get(m, ck);
        if (!role || !json_is_string(role))
            return FAIL(p, "%s[%zu].%s must be a string, got %s", field, i, rk, role ? type_name(role) : "nothing");
        if (!content || !json_is_string(content))
            return FAIL(p, "%s[%zu].%s must be a string, got %s", field, i, ck,
                        content ? type_name(content) : "nothing");
        const char *r = role_of(json_string_value(role), sharegpt);
        if (!r)
            return FAIL(p, "%s[%zu].%s is '%s'; it must be %s", field, i, rk, json_string_value(role),
                        sharegpt ? "system, human or gpt" : "system, user, assistant or tool");
        if (!conv_push(out, r, json_string_value(content))) return NOMEM(p);
    }
    return true;
}

/* A prompt or a response: a string (one message of `role`) or a list. */
static bool get_turns(parse *p, const json_t *obj, const char *key, const char *role, data_conv *out) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return FAIL(p, "field '%s' is missing", key);
    if (json_is_string(v)) return conv_push(out, role, json_string_value(v)) ? true : NOMEM(p);
    if (json_is_array(v)) return get_messages(p, v, key, false, out);
    return FAIL(p, "field '%s' must be a string or a list of messages, got %s", key, type_name(v));
}

static bool copy_conv(parse *p, const data_conv *from, data_conv *to) {
    for (int i = 0; i < from->n; i++)
        if (!conv_push(to, from->m[i].role, from->m[i].content)) return NOMEM(p);
    return true;
}

static bool parse_record(parse *p, const json_t *o, sw_data_format fmt) {
    data_record *rec = p->rec;
    data_conv *c = &rec->conv[0];
    switch (fmt) {
    case SW_DATA_ALPACA: {
        const char *ins, *in, *outp;
        if (!get_string(p, o, "instruction", false, &ins) || !get_string(p, o, "input", true, &in) ||
            !get_string(p, o, "output", false, &outp))
            return false;
        const char *user = ins;
        rec->instruction_len = (int64_t)strlen(ins);
        if (*in) { /* the classic prompt keeps them apart; a chat template sees one message */
            size_t a = strlen(ins), b = strlen(in);
            if (!(rec->scratch = malloc(a + b + 3))) return NOMEM(p);
            memcpy(rec->scratch, ins, a);
            memcpy(rec->scratch + a, "\n\n", 2);
            memcpy(rec->scratch + a + 2, in, b + 1);
            user = rec->scratch;
        }
        return (conv_push(c, "user", user) && conv_push(c, "assistant", outp)) ? true : NOMEM(p);
    }
    case SW_DATA_SHAREGPT: {
        const json_t *v = json_object_get(o, "conversations");
        if (!v) return FAIL(p, "field 'conversations' is missing");
        return get_messages(p, v, "conversations", true, c);
    }
    case SW_DATA_MESSAGES: {
        const json_t *v = json_object_get(o, "messages");
        if (!v) return FAIL(p, "field 'messages' is missing");
        return get_messages(p, v, "messages", false, c);
    }
    case SW_DATA_PROMPT_COMPLETION:
        return get_turns(p, o, "prompt", "user", c) && get_turns(p, o, "completion", "assistant", c);
    case SW_DATA_TEXT: {
        const char *t;
        if (!get_string(p, o, "text", false, &t)) return false;
        return conv_push(c, "text", t) ? true : NOMEM(p);
    }
    case SW_DATA_PREFERENCE: {
        data_conv *rj = &rec->conv[1];
        if (!get_turns(p, o, "prompt", "user", c) || !copy_conv(p, c, rj)) return false;
        return get_turns(p, o, "chosen", "assistant", c) && get_turns(p, o, "rejected", "assistant", rj);
    }
    default:
        return FAIL(p, "internal: no format");
    }
}

/* The format a record's keys point to; SW_DATA_AUTO if none. */
static sw_data_format detect(const json_t *o) {
#define HAS(k) (json_object_get(o, (k)) != NULL)
    if (HAS("messages")) return SW_DATA_MESSAGES;
    if (HAS("conversations")) return SW_DATA_SHAREGPT;
    if (HAS("prompt") && HAS("chosen") && HAS("rejected")) return SW_DATA_PREFERENCE;
    if (HAS("instruction") && HAS("output")) return SW_DATA_ALPACA;
    if (HAS("prompt") && HAS("completion")) return SW_DATA_PROMPT_COMPLETION;
    if (HAS("text")) return SW_DATA_TEXT;
    return SW_DATA_AUTO;
#undef HAS
}

static sw_status unknown_shape(sw_ctx *ctx, const data_reader *r, int64_t row, const json_t *o) {
    char keys[400] = "";
    size_t n = 0, k = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        if (k++ == 12) {
            n += (size_t)snprintf(keys + n, n < sizeof keys ? sizeof keys - n : 0, ", ...");
            break;
        }
        n += (size_t)snprintf(keys + n, n < sizeof keys ? sizeof keys - n : 0, "%s'%s'", k > 1 ? ", " : "", key);
    }
    return rec_err(ctx, r, row, SW_EFORMAT,
                   "cannot tell the format from the keys {%s}; known formats: alpaca (instruction, input, output), "
                   "sharegpt (conversations), messages (messages), prompt_completion (prompt, completion), "
                   "preference (prompt, chosen, rejected), text (text)",
                   keys);
}

/* The next JSON value and its row; *v NULL at the end. A line that is not
 * JSON is an error (not fatal). */
static sw_status next_value(sw_ctx *ctx, data_reader *r, json_t **v, int64_t *row) {
    *v = NULL;
    if (!r->lines) {
        if (r->index >= json_array_size(r->array)) return SW_OK;
        *row = (int64_t)++r->index;
        *v = json_incref(json_array_get(r->array, r->index - 1));
        return SW_OK;
    }
    while (r->pos < r->len) {
        const char *s = r->buf + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
        r->pos += n + (nl != NULL);
        r->line++;
        if (r->line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
            s += 3;
            n -= 3;
        }
        size_t k = 0;
        while (k < n && blank(s[k])) k++;
        if (k == n) continue; /* a blank line holds no record */
        *row = r->line;
        json_error_t e;
        *v = json_loadb(s, n, 0, &e);
        if (!*v) return rec_err(ctx, r, r->line, SW_EFORMAT, "invalid JSON: %s (column %d)", e.text, e.column);
        return SW_OK;
    }
    return SW_OK;
}

sw_status data_reader_next(sw_ctx *ctx, data_reader *r, sw_data_format *fmt, data_record *rec, bool *done,
                           bool *fatal) {
    *done = *fatal = false;
    data_record_clear(rec);
    json_t *v;
    int64_t row = 0;
    sw_status st = next_value(ctx, r, &v, &row);
    rec->row = row;
    if (st) return st;
    if (!v) {
        *done = true;
        return SW_OK;
    }
    rec->root = v;
    if (!json_is_object(v)) return rec_err(ctx, r, row, SW_EFORMAT, "a record must be a JSON object, got %s", type_name(v));
    if (*fmt == SW_DATA_AUTO) {
        sw_data_format f = detect(v);
        if (f == SW_DATA_AUTO) {
            *fatal = true;
            return unknown_shape(ctx, r, row, v);
        }
        *fmt = f;
    }
    parse p = {ctx, r, row, SW_OK, rec};
    if (!parse_record(&p, v, *fmt)) {
        *fatal = p.st == SW_ENOMEM;
        return p.st;
    }
    return SW_OK;
}
