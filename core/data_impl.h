/* data_impl.h — what the data files share; not a public header.
 *
 * data_read.c    files -> records (one conversation each, two for preference)
 * data_render.c  a conversation -> rendered text -> token ids + labels
 * data.c         the dataset: building, samples, statistics, checks
 * data_batch.c   batches: order, truncation, padding, packing
 */
#ifndef SW_DATA_IMPL_H
#define SW_DATA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "ctx.h"
#include "data.h"
#include "tokenizer.h"

/* ---- accounted growable arrays (data.c) --------------------------------------- */

/* Arrays that live as long as the dataset are counted as "data" memory, so
 * the cost line of the cell that built the dataset shows what it holds. */
typedef struct dvec {
    void *p;
    size_t n, cap, elem; /* elements used, allocated, element size */
} dvec;

/* Room for `more` elements past n; false (SW_ENOMEM in ctx) if out of memory. */
bool dvec_reserve(sw_ctx *ctx, dvec *v, size_t more);
bool dvec_push(sw_ctx *ctx, dvec *v, const void *elems, size_t count);
void dvec_free(dvec *v);
#define DVEC(T) ((dvec){NULL, 0, 0, sizeof(T)})
#define DV(T, v) ((T *)(v).p)

/* ---- records (data_read.c) -------------------------------------------------------- */

typedef struct data_conv {
    sw_chat_msg *m;
    int n, cap;
} data_conv;

typedef struct data_record {
    int64_t row;            /* 1-based line (JSONL) or array index (JSON) */
    data_conv conv[2];      /* 0: the sample; 1: prompt + rejected (preference) */
    /* alpaca: the user message is instruction + "\n\n" + input; the classic
     * Alpaca prompt needs them apart: the instruction's length, else -1 */
    int64_t instruction_len;
    void *root;             /* the record's JSON (json_t), which owns the strings */
    char *scratch;          /* the joined alpaca user message */
} data_record;

void data_record_clear(data_record *r); /* keeps the message arrays for reuse */
void data_record_free(data_record *r);

typedef struct data_reader data_reader;

sw_status data_reader_open(sw_ctx *ctx, const char *path, data_reader **out);
sw_status data_reader_from_text(sw_ctx *ctx, const char *text, size_t len, const char *name, bool json_array,
                                data_reader **out);
void data_reader_free(data_reader *r);

/* The next record. *fmt: SW_DATA_AUTO is resolved from the first record read.
 * At the end: SW_OK with *done. A bad record: its status, a message naming
 * file and line, and *fatal false — the reader has moved past it, so the
 * caller may skip it and go on. *fatal true: nothing more can be read (an
 * unknown shape, a file that is not a JSON array, out of memory). */
sw_status data_reader_next(sw_ctx *ctx, data_reader *r, sw_data_format *fmt, data_record *rec, bool *done,
                           bool *fatal);
/* "train.jsonl:17" or "train.json: record 17", for messages. */
const char *data_reader_where(const data_reader *r, int64_t row, char *buf, size_t n);
bool data_reader_is_lines(const data_reader *r);

/* ---- rendering (data_render.c) ------------------------------------------------------ */

typedef struct data_renderer data_renderer;

/* spec: see sw_dataset_opts.chat_template. fmt: the records' format (the
 * default template of alpaca records differs). */
sw_status data_renderer_new(sw_ctx *ctx, const sw_tokenizer *tok, const char *spec, sw_data_format fmt,
                            data_renderer **out);
void        data_renderer_free(data_renderer *r);
const char *data_renderer_name(const data_renderer *r);

/* The rendered text of a conversation (raw: its one message), malloc'd. */
sw_status data_render_text(sw_ctx *ctx, const data_renderer *r, const data_conv *c, int64_t instruction_len,
                           bool raw, char **text, size_t *len);

/* One conversation -> ids and labels (malloc'd). raw: a text record (no
 * template, every token trains, EOS appended). Errors carry no location:
 * the caller prefixes it. *n_trained counts the first max_len tokens. */
sw_status data_render(sw_ctx *ctx, const data_renderer *r, const data_conv *c, int64_t instruction_len,
                      sw_train_on on, bool raw, int64_t max_len, int32_t **ids, int32_t **labels, int64_t *len,
                      int64_t *n_trained);

/* ---- the dataset (data.c) ---------------------------------------------------------------- */

struct sw_dataset {
    char *path;
    const sw_tokenizer *tok;
    sw_data_format format;
    sw_train_on train_on;
    int64_t max_len;
    char template_name[96];
    bool lines;                         /* rows are JSONL lines */
    int32_t pad_id;
    int64_t n;
    dvec tok_off, ids, labels;          /* int64 (n+1); int32 */
    dvec rej_off, rej_ids, rej_labels;  /* the same for the rejected side (empty ranges if none) */
    dvec row, n_trained, ilen;          /* int64 (n); ilen: data_record.instruction_len */
    data_renderer *renderer;            /* kept to show what a sample was made from */
    dvec msg_off;                       /* int64 (2n+1): sample i's messages, then its rejected ones */
    dvec msg_role, msg_text;            /* uint8 role, int64 offset into text, per message */
    dvec text;                          /* char: message contents, NUL-terminated */
    sw_chat_msg *msgs;                  /* built at the end, pointing into text */
    size_t msgs_bytes;
    dvec issue[SW_CHECK_COUNT];         /* sw_data_issue; `what` holds an offset into issue_text until the end */
    dvec issue_text;
    int64_t skipped;
};

#endif
