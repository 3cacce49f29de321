/* data.c — the dataset: read every record, render it, keep its tokens,
 * labels and conversation; statistics and data checks (see data.h).
 *
 * Building runs record by record (reader -> renderer -> append), polling
 * the interrupt flag between records. A failure frees everything built so
 * far: the caller's state never sees half a dataset. With skip_bad a bad
 * record becomes an entry of the "skipped" list instead, row and reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "interrupt.h"
#include "mem.h"

/* ---- accounted arrays ------------------------------------------------------------ */

bool dvec_reserve(sw_ctx *ctx, dvec *v, size_t more) {
    if (v->n + more <= v->cap) return true;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + more) cap *= 2;
    void *p = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_DATA, cap * v->elem);
    if (!p) return false;
    if (v->n) memcpy(p, v->p, v->n * v->elem);
    sw_mem_free(SW_DEV_CPU, SW_MEM_DATA, v->p, v->cap * v->elem);
    v->p = p;
    v->cap = cap;
    return true;
}

bool dvec_push(sw_ctx *ctx, dvec *v, const void *elems, size_t count) {
    if (!dvec_reserve(ctx, v, count)) return false;
    if (count) memcpy((char *)v->p + v->n * v->elem, elems, count * v->elem);
    v->n += count;
    return true;
}

void dvec_free(dvec *v) {
    if (v->p) sw_mem_free(SW_DEV_CPU, SW_MEM_DATA, v->p, v->cap * v->elem);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ---- names ---------------------------------------------------------------------- */

static const char *const format_names[SW_DATA_FORMAT_COUNT] = {"auto", "alpaca", "sharegpt", "messages",
                                                               "prompt_completion", "text", "preference"};
static const char *const train_on_names[SW_TRAIN_ON_COUNT] = {"responses", "all", "last_response"};
static const char *const check_names[SW_CHECK_COUNT] = {"skipped", "empty", "over_long", "no_alnum", "duplicate"};
static const char *const roles[] = {"system", "user", "assistant", "tool", "text"};

const char *sw_data_format_name(sw_data_format f) { return f < SW_DATA_FORMAT_COUNT ? format_names[f] : "?"; }
const char *sw_train_on_name(sw_train_on t) { return t < SW_TRAIN_ON_COUNT ? train_on_names[t] : "?"; }
const char *sw_data_check_name(sw_data_check c) { return c < SW_CHECK_COUNT ? check_names[c] : "?"; }

bool sw_data_format_from_name(const char *s, sw_data_format *out) {
    for (int i = 0; i < SW_DATA_FORMAT_COUNT; i++)
        if (!strcmp(s, format_names[i])) {
            *out = (sw_data_format)i;
            return true;
        }
    return false;
}

bool sw_train_on_from_name(const char *s, sw_train_on *out) {
    for (int i = 0; i < SW_TRAIN_ON_COUNT; i++)
        if (!strcmp(s, train_on_names[i])) {
            *out = (sw_train_on)i;
            return true;
        }
    return false;
}

/* ---- building ---------------------------------------------------------------------- */

static sw_dataset *ds_alloc(void) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->tok_off = ds->rej_off = ds->row = ds->n_trained = ds->ilen = ds->msg_off = ds->msg_text = DVEC(int64_t);
    ds->ids = ds->labels = ds->rej_ids = ds->rej_labels = DVEC(int32_t);
    ds->msg_role = DVEC(uint8_t);
    ds->text = ds->issue_text = DVEC(char);
    for (int c = 0; c < SW_CHECK_COUNT; c++) ds->issue[c] = DVEC(sw_data_issue);
    return ds;
}

void sw_dataset_free(sw_dataset *ds) {
    if (!ds) return;
    dvec *all[] = {&ds->tok_off, &ds->ids, &ds->labels, &ds->rej_off, &ds->rej_ids, &ds->rej_labels, &ds->row,
                   &ds->n_trained, &ds->ilen, &ds->msg_off, &ds->msg_role, &ds->msg_text, &ds->text, &ds->issue_text};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dvec_free(all[i]);
    for (int c = 0; c < SW_CHECK_COUNT; c++) dvec_free(&ds->issue[c]);
    if (ds->msgs) sw_mem_free(SW_DEV_CPU, SW_MEM_DATA, ds->msgs, ds->msgs_bytes);
    data_renderer_free(ds->renderer);
    free(ds->path);
    free(ds);
}

/* An issue; `what` is kept as an offset into issue_text until the end. */
static bool add_issue(sw_ctx *ctx, sw_dataset *ds, sw_data_check c, int64_t row, int64_t other, const char *what) {
    sw_data_issue is = {row, other, (const char *)(uintptr_t)ds->issue_text.n};
    return dvec_push(ctx, &ds->issue_text, what, strlen(what) + 1) && dvec_push(ctx, &ds->issue[c], &is, 1);
}

static int role_code(const char *r) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(r, roles[i])) return i;
    return 4;
}

static bool has_alnum(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        /* Any non-ASCII character counts: letters of other scripts are text. */
        if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
    }
    return false;
}

static bool all_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

/* Keep a record's conversations and run the per-record checks. */
static bool keep_record(sw_ctx *ctx, sw_dataset *ds, const data_record *rec) {
    for (int w = 0; w < 2; w++) {
        const data_conv *c = &rec->conv[w];
        for (int k = 0; k < c->n; k++) {
            uint8_t role = (uint8_t)role_code(c->m[k].role);
            int64_t at = (int64_t)ds->text.n;
            if (!dvec_push(ctx, &ds->msg_role, &role, 1) || !dvec_push(ctx, &ds->msg_text, &at, 1) ||
                !dvec_push(ctx, &ds->text, c->m[k].content, strlen(c->m[k].content) + 1))
                return false;
        }
        int64_t end = (int64_t)ds->msg_role.n;
        if (!dvec_push(ctx, &ds->msg_off, &end, 1)) return false;
    }
    /* One entry per record and check, naming the first message at fault. */
    char what[160];
    bool empty = false, no_alnum = false;
    for (int w = 0; w < 2; w++) {
        const data_conv *c = &rec->conv[w];
        const char *side = w ? "rejected side: " : "";
        for (int k = 0; k < c->n; k++) {
            if (!empty && all_blank(c->m[k].content)) {
                empty = true;
                snprintf(what, sizeof what, "%smessage %d (%s) is empty", side, k + 1, c->m[k].role);
                if (!add_issue(ctx, ds, SW_CHECK_EMPTY, rec->row, 0, what)) return false;
            } else if (!no_alnum && !all_blank(c->m[k].content) && !has_alnum(c->m[k].content)) {
                no_alnum = true;
                snprintf(what, sizeof what, "%smessage %d (%s) has no letter or digit: \"%.40s\"", side, k + 1,
                         c->m[k].role, c->m[k].content);
                if (!add_issue(ctx, ds, SW_CHECK_NO_ALNUM, rec->row, 0, what)) return false;
            }
        }
    }
    return true;
}

/* The reason without the "file:line: " the reader put in front. */
static const char *reason(const data_reader *rd, int64_t row, const char *msg) {
    char where[600];
    data_reader_where(rd, row, where, sizeof where);
    size_t n = strlen(where);
    if (!strncmp(msg, where, n) && !strncmp(msg + n, ": ", 2)) return msg + n + 2;
    return msg;
}

/* Render one side of a record and append it. */
static sw_status add_side(sw_ctx *ctx, sw_dataset *ds, const data_renderer *rr, const data_record *rec, int side,
                          dvec *ids_v, dvec *labels_v, dvec *off_v, int64_t *n_trained) {
    int32_t *ids, *labels;
    int64_t len, trained;
    sw_status st = data_render(ctx, rr, &rec->conv[side], rec->instruction_len, ds->train_on,
                               ds->format == SW_DATA_TEXT, ds->max_len, &ids, &labels, &len, &trained);
    if (st) return st;
    int64_t end = (int64_t)ids_v->n + len;
    if (!dvec_push(ctx, ids_v, ids, (size_t)len) || !dvec_push(ctx, labels_v, labels, (size_t)len) ||
        !dvec_push(ctx, off_v, &end, 1))
        st = ctx->status;
    free(ids);
    free(labels);
    *n_trained = trained;
    return st;
}

/* 64-bit FNV-1a over a sample's ids, to find exact duplicates. */
static uint64_t hash_ids(const int32_t *p, int64_t n) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < (size_t)n * sizeof *p; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

typedef struct hidx {
    uint64_t h;
    int64_t i;
} hidx;

static int cmp_hidx(const void *a, const void *b) {
    const hidx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_issue(const void *a, const void *b) {
    const sw_data_issue *x = a, *y = b;
    return x->row < y->row ? -1 : x->row > y->row;
}

static sw_status find_duplicates(sw_ctx *ctx, sw_dataset *ds, bool lines) {
    hidx *h = malloc(sizeof *h * (size_t)(ds->n + 1));
    if (!h) return sw_err(ctx, SW_ENOMEM, "out of memory checking duplicates");
    const int64_t *off = DV(int64_t, ds->tok_off), *row = DV(int64_t, ds->row);
    const int32_t *ids = DV(int32_t, ds->ids);
    for (int64_t i = 0; i < ds->n; i++) h[i] = (hidx){hash_ids(ids + off[i], off[i + 1] - off[i]), i};
    qsort(h, (size_t)ds->n, sizeof *h, cmp_hidx);
    sw_status st = SW_OK;
    for (int64_t a = 0; a < ds->n && !st; a++) {
        for (int64_t b = a - 1; b >= 0 && h[b].h == h[a].h; b--) {
            int64_t i = h[a].i, j = h[b].i, n = off[i + 1] - off[i];
            if (off[j + 1] - off[j] != n || memcmp(ids + off[i], ids + off[j], sizeof *ids * (size_t)n)) continue;
            /* Report against the first of the group: keep walking back. */
            int64_t first = j;
            for (int64_t c = b - 1; c >= 0 && h[c].h == h[a].h; c--) {
                int64_t k = h[c].i;
                if (off[k + 1] - off[k] == n && !memcmp(ids + off[i], ids + off[k], sizeof *ids * (size_t)n)) first = k;
            }
            char what[96];
            snprintf(what, sizeof what, "same as %s %lld", lines ? "line" : "record", (long long)row[first]);
            if (!add_issue(ctx, ds, SW_CHECK_DUPLICATE, row[i], row[first], what)) st = ctx->status;
            break;
        }
    }
    free(h);
    return st;
}

/* Point messages and issues into their text now that it stops moving. */
static sw_status finish(sw_ctx *ctx, sw_dataset *ds) {
    size_t nm = ds->msg_role.n;
    ds->msgs_bytes = sizeof(sw_chat_msg) * (nm + 1);
    ds->msgs = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_DATA, ds->msgs_bytes);
    if (!ds->msgs) return ctx->status;
    for (size_t k = 0; k < nm; k++)
        ds->msgs[k] = (sw_chat_msg){roles[DV(uint8_t, ds->msg_role)[k]], DV(char, ds->text) + DV(int64_t, ds->msg_text)[k]};
    for (int c = 0; c < SW_CHECK_COUNT; c++) {
        sw_data_issue *is = DV(sw_data_issue, ds->issue[c]);
        for (size_t k = 0; k < ds->issue[c].n; k++) is[k].what = DV(char, ds->issue_text) + (uintptr_t)is[k].what;
        if (ds->issue[c].n) qsort(is, ds->issue[c].n, sizeof *is, cmp_issue);
    }
    return SW_OK;
}

static sw_status build(sw_ctx *ctx, data_reader *rd, const char *path, const sw_dataset_opts *o, sw_dataset **out) {
    *out = NULL;
    if (!o || !o->tok) return sw_err(ctx, SW_EINVAL, "dataset: a tokenizer is required");
    if (o->max_len <= 0) return sw_err(ctx, SW_EINVAL, "dataset: max_len must be positive, got %lld", (long long)o->max_len);
    if (o->format >= SW_DATA_FORMAT_COUNT || o->train_on >= SW_TRAIN_ON_COUNT)
        return sw_err(ctx, SW_EINVAL, "dataset: bad format or train_on");
    sw_dataset *ds = ds_alloc();
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return sw_err(ctx, SW_ENOMEM, "out of memory");
    }
    ds->tok = o->tok;
    ds->lines = data_reader_is_lines(rd);
    ds->format = o->format;
    ds->train_on = o->train_on;
    ds->max_len = o->max_len;
    ds->pad_id = sw_tokenizer_pad(o->tok) >= 0 ? sw_tokenizer_pad(o->tok)
                 : sw_tokenizer_eos(o->tok) >= 0 ? sw_tokenizer_eos(o->tok) : 0;
    data_renderer *rr = NULL;
    data_record rec = {0};
    int64_t zero = 0;
    char first_skip[320] = "";
    sw_status st = SW_OK;
    if (!dvec_push(ctx, &ds->tok_off, &zero, 1) || !dvec_push(ctx, &ds->rej_off, &zero, 1) ||
        !dvec_push(ctx, &ds->msg_off, &zero, 1)) {
        st = ctx->status;
        goto fail;
    }
    for (;;) {
        if ((st = sw_interrupt_check(ctx))) goto fail;
        bool done, fatal;
        st = data_reader_next(ctx, rd, &ds->format, &rec, &done, &fatal);
        if (!st && done) break;
        if (!st && !rr) { /* the format is known from the first record now */
            if ((st = data_renderer_new(ctx, o->tok, o->chat_template, ds->format, &rr))) goto fail;
            snprintf(ds->template_name, sizeof ds->template_name, "%s", data_renderer_name(rr));
        }
        int64_t trained = 0, rej_trained = 0;
        if (!st) {
            st = add_side(ctx, ds, rr, &rec, 0, &ds->ids, &ds->labels, &ds->tok_off, &trained);
            if (!st && ds->format == SW_DATA_PREFERENCE) {
                st = add_side(ctx, ds, rr, &rec, 1, &ds->rej_ids, &ds->rej_labels, &ds->rej_off, &rej_trained);
                if (st && st != SW_ENOMEM && st != SW_EINTR) sw_err_prefix(ctx, "the rejected side");
                if (st) { /* undo the chosen side */
                    ds->tok_off.n--;
                    ds->ids.n = ds->labels.n = (size_t)DV(int64_t, ds->tok_off)[ds->tok_off.n - 1];
                }
            } else if (!st) {
                int64_t end = (int64_t)ds->rej_ids.n;
                if (!dvec_push(ctx, &ds->rej_off, &end, 1)) st = ctx->status;
            }
            if (st && st != SW_ENOMEM && st != SW_EINTR) {
                char where[600];
                sw_err_prefix(ctx, "%s", data_reader_where(rd, rec.row, where, sizeof where));
            }
            fatal = st == SW_ENOMEM || st == SW_EINTR;
        }
        if (st) {
            if (fatal || !o->skip_bad) goto fail;
            if (!ds->skipped++) snprintf(first_skip, sizeof first_skip, "%.299s", ctx->msg);
            const char *why = reason(rd, rec.row, ctx->msg);
            sw_ctx_clear(ctx);
            if (!add_issue(ctx, ds, SW_CHECK_SKIPPED, rec.row, 0, why)) {
                st = ctx->status;
                goto fail;
            }
            st = SW_OK;
            continue;
        }
        int64_t len = DV(int64_t, ds->tok_off)[ds->tok_off.n - 1] - DV(int64_t, ds->tok_off)[ds->tok_off.n - 2];
        if (!dvec_push(ctx, &ds->row, &rec.row, 1) || !dvec_push(ctx, &ds->n_trained, &trained, 1) ||
            !dvec_push(ctx, &ds->ilen, &rec.instruction_len, 1) ||
            !keep_record(ctx, ds, &rec)) {
            st = ctx->status;
            goto fail;
        }
        if (len > ds->max_len) {
            char what[96];
            snprintf(what, sizeof what, "%lld tokens > max_len %lld", (long long)len, (long long)ds->max_len);
            if (!add_issue(ctx, ds, SW_CHECK_OVERLONG, rec.row, 0, what)) {
                st = ctx->status;
                goto fail;
            }
        }
        ds->n++;
    }
    if (ds->n == 0) {
        if (ds->skipped)
            st = sw_err(ctx, SW_EFORMAT, "%s: no usable records: all %lld were skipped (the first: %s)", path,
                        (long long)ds->skipped, first_skip);
        else
            st = sw_err(ctx, SW_EFORMAT, "%s: no records", path);
        goto fail;
    }
    if ((st = find_duplicates(ctx, ds, data_reader_is_lines(rd))) || (st = finish(ctx, ds))) goto fail;
    data_record_free(&rec);
    ds->renderer = rr;
    *out = ds;
    return SW_OK;
fail:
    data_record_free(&rec);
    data_renderer_free(rr);
    sw_dataset_free(ds);
    return st;
}

sw_status sw_dataset_new(sw_ctx *ctx, const char *path, const sw_dataset_opts *opts, sw_dataset **out) {
    *out = NULL;
    data_reader *rd;
    sw_status st = data_reader_open(ctx, path, &rd);
    if (st) return st;
    st = build(ctx, rd, path, opts, out);
    data_reader_free(rd);
    return st;
}

sw_status sw_dataset_from_text(sw_ctx *ctx, const char *text, size_t len, const char *name, bool json_array,
                               const sw_dataset_opts *opts, sw_dataset **out) {
    *out = NULL;
    data_reader *rd;
    sw_status st = data_reader_from_text(ctx, text, len, name, json_array, &rd);
    if (st) return st;
    st = build(ctx, rd, name ? name : "(text)", opts, out);
    data_reader_free(rd);
    return st;
}

/* ---- reading it back ----------------------------------------------------------------- */

int64_t sw_dataset_count(const sw_dataset *ds) { return ds->n; }
sw_data_format sw_dataset_format(const sw_dataset *ds) { return ds->format; }
const char *sw_dataset_template_name(const sw_dataset *ds) { return ds->template_name; }
const char *sw_dataset_path(const sw_dataset *ds) { return ds->path; }
bool sw_dataset_rows_are_lines(const sw_dataset *ds) { return ds->lines; }
int64_t sw_dataset_max_len(const sw_dataset *ds) { return ds->max_len; }
sw_train_on sw_dataset_train_on(const sw_dataset *ds) { return ds->train_on; }
const sw_tokenizer *sw_dataset_tokenizer(const sw_dataset *ds) { return ds->tok; }

void sw_dataset_sample(const sw_dataset *ds, int64_t i, sw_sample *s) {
    const int64_t *off = DV(int64_t, ds->tok_off), *roff = DV(int64_t, ds->rej_off);
    s->ids = DV(int32_t, ds->ids) + off[i];
    s->labels = DV(int32_t, ds->labels) + off[i];
    s->len = off[i + 1] - off[i];
    s->n_trained = DV(int64_t, ds->n_trained)[i];
    s->row = DV(int64_t, ds->row)[i];
    s->rejected_len = roff[i + 1] - roff[i];
    s->rejected_ids = s->rejected_len ? DV(int32_t, ds->rej_ids) + roff[i] : NULL;
    s->rejected_labels = s->rejected_len ? DV(int32_t, ds->rej_labels) + roff[i] : NULL;
}

int sw_dataset_messages(const sw_dataset *ds, int64_t i, int which, const sw_chat_msg **msgs) {
    const int64_t *mo = DV(int64_t, ds->msg_off);
    int64_t a = mo[2 * i + (which ? 1 : 0)], b = mo[2 * i + (which ? 2 : 1)];
    *msgs = ds->msgs + a;
    return (int)(b - a);
}

sw_status sw_dataset_render(sw_ctx *ctx, const sw_dataset *ds, int64_t i, int which, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (i < 0 || i >= ds->n) return sw_err(ctx, SW_EINVAL, "render: sample %lld is out of range", (long long)i);
    const sw_chat_msg *m;
    int n = sw_dataset_messages(ds, i, which, &m);
    if (which && !n) return sw_err(ctx, SW_EINVAL, "render: sample %lld has no rejected side", (long long)i + 1);
    data_conv c = {(sw_chat_msg *)m, n, n};
    return data_render_text(ctx, ds->renderer, &c, DV(int64_t, ds->ilen)[i], ds->format == SW_DATA_TEXT, text, len);
}

int64_t sw_dataset_issues(const sw_dataset *ds, sw_data_check c, const sw_data_issue **out) {
    if (c >= SW_CHECK_COUNT) {
        *out = NULL;
        return 0;
    }
    *out = DV(sw_data_issue, ds->issue[c]);
    return (int64_t)ds->issue[c].n;
}

/* Nearest rank: the smallest value with at least p% of the data at or below it. */
static int64_t percentile(const int64_t *sorted, int64_t n, int p) {
    int64_t k = (n * p + 99) / 100;
    return sorted[k > 0 ? k - 1 : 0];
}

void sw_dataset_stats_get(const sw_dataset *ds, sw_dataset_stats *s) {
    memset(s, 0, sizeof *s);
    s->count = ds->n;
    s->skipped = ds->skipped;
    const int64_t *off = DV(int64_t, ds->tok_off), *tr = DV(int64_t, ds->n_trained);
    int64_t *len = malloc(sizeof *len * (size_t)(ds->n + 1));
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t l = off[i + 1] - off[i];
        if (len) len[i] = l;
        s->tokens += l;
        s->tokens_kept += l < ds->max_len ? l : ds->max_len;
        s->trained += tr[i];
        s->truncated += l > ds->max_len;
    }
    s->mean_len = ds->n ? (double)s->tokens / (double)ds->n : 0;
    if (len && ds->n) { /* without memory for the sort, the order statistics stay 0 */
        qsort(len, (size_t)ds->n, sizeof *len, cmp_i64);
        s->min_len = len[0];
        s->median_len = percentile(len, ds->n, 50);
        s->p95_len = percentile(len, ds->n, 95);
        s->p99_len = percentile(len, ds->n, 99);
        s->max_len_seen = len[ds->n - 1];
        s->suggested_max_len = (s->p99_len + 63) / 64 * 64;
        if (s->suggested_max_len < 64) s->suggested_max_len = 64;
    }
    free(len);
}
