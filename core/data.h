/* data.h — datasets for fine-tuning: records read from JSONL or JSON files,
 * rendered through a chat template into token ids with training labels, and
 * batches of them (padded or packed) in a seeded, resumable order.
 *
 * 1. Reading (data_read.c). A JSONL file (one record a line) or a JSON file
 *    holding an array of records. Formats, told apart by the first record's
 *    keys when the caller says "auto":
 *      alpaca             instruction, input (optional), output
 *      sharegpt           conversations: [{from: system|human|gpt, value}]
 *      messages           messages: [{role: system|user|assistant|tool, content}]
 *      prompt_completion  prompt, completion (strings, or lists of messages)
 *      text               text: raw text, every token trains (continued pre-training)
 *      preference         prompt, chosen, rejected: prompt + chosen trains as
 *                         SFT; prompt + rejected is rendered alongside for DPO.
 *    Extra keys are ignored. A bad record is an error naming file and line
 *    ("train.jsonl:17: field 'output' must be a string, got number"), or,
 *    with skip_bad, is counted and listed (SW_CHECK_SKIPPED) — never dropped
 *    silently.
 * 2. Rendering (data_render.c). Every record becomes a conversation rendered
 *    by the template. The trained bytes of assistant turn k are
 *      [len(render(m[:k], add_generation_prompt)), len(render(m[:k+1])))
 *    less trailing whitespace after the end-of-turn marker: the turn's content
 *    and its end-of-turn token. Each shorter rendering must be a prefix of the
 *    full one (else the sample is an error). The full text is tokenized once
 *    with byte offsets; a token trains when its bytes lie inside a trained
 *    span. Masks never come from searching the token stream.
 * 3. Labels follow Hugging Face: labels[t] = ids[t] where token t trains,
 *    SW_LABEL_IGNORE (-100) elsewhere; the loss at position t-1 predicts
 *    labels[t]. A sample's first token never trains (nothing before it
 *    predicts it), so packing samples end to end needs no label edits and
 *    no label ever crosses from one sample into the next.
 * 4. Batches (data_batch.c): see sw_dataset_batch.
 *
 * A dataset is immutable once built: any number of threads may read it and
 * make batches from it at once. Its arrays are accounted as "data" memory.
 */
#ifndef SW_DATA_H
#define SW_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "ctx.h"
#include "tokenizer.h"

#define SW_LABEL_IGNORE (-100)

typedef enum sw_data_format {
    SW_DATA_AUTO = 0,
    SW_DATA_ALPACA,
    SW_DATA_SHAREGPT,
    SW_DATA_MESSAGES,
    SW_DATA_PROMPT_COMPLETION,
    SW_DATA_TEXT,
    SW_DATA_PREFERENCE,
    SW_DATA_FORMAT_COUNT
} sw_data_format;

typedef enum sw_train_on {
    SW_TRAIN_RESPONSES = 0, /* every assistant turn */
    SW_TRAIN_ALL,           /* every token but the first */
    SW_TRAIN_LAST_RESPONSE, /* the last assistant turn only */
    SW_TRAIN_ON_COUNT
} sw_train_on;

const char *sw_data_format_name(sw_data_format f);   /* "alpaca", ... */
bool        sw_data_format_from_name(const char *s, sw_data_format *out);
const char *sw_train_on_name(sw_train_on t);          /* "responses", "all", "last_response" */
bool        sw_train_on_from_name(const char *s, sw_train_on *out);

typedef struct sw_dataset_opts {
    const sw_tokenizer *tok; /* required; borrowed: it must outlive the dataset */
    sw_data_format format;   /* SW_DATA_AUTO: from the first record's keys */
    /* NULL or "auto": the tokenizer's chat template (the classic Alpaca prompt
     * for alpaca records when it has none). A built-in name (chatml,
     * llama-3.1, mistral, phi-3, gemma: see chat.h); "alpaca": the classic
     * Alpaca prompt (### Instruction / ### Input / ### Response); "none":
     * contents joined as they are, EOS after each response; anything holding
     * "{%" or "{{": Jinja source. */
    const char *chat_template;
    sw_train_on train_on;
    int64_t max_len;         /* > 0: samples are cut to this many tokens in batches */
    bool skip_bad;           /* skip (and count) bad records instead of failing */
} sw_dataset_opts;

typedef struct sw_dataset sw_dataset;

/* Reads, renders and tokenizes every record. SW_EINTR on Ctrl-C; on any
 * failure nothing is allocated. */
sw_status sw_dataset_new(sw_ctx *ctx, const char *path, const sw_dataset_opts *opts, sw_dataset **out);
/* The same from a file's contents in memory; name stands for the path in
 * messages. json_array: the text is a JSON array (else JSONL). */
sw_status sw_dataset_from_text(sw_ctx *ctx, const char *text, size_t len, const char *name, bool json_array,
                               const sw_dataset_opts *opts, sw_dataset **out);
void sw_dataset_free(sw_dataset *ds); /* NULL is fine */

int64_t        sw_dataset_count(const sw_dataset *ds);
sw_data_format sw_dataset_format(const sw_dataset *ds);
const char    *sw_dataset_template_name(const sw_dataset *ds); /* "chat template (tokenizer)", "chatml", ... */
const char    *sw_dataset_path(const sw_dataset *ds);
bool           sw_dataset_rows_are_lines(const sw_dataset *ds); /* JSONL: rows are lines; JSON: array indices */
int64_t        sw_dataset_max_len(const sw_dataset *ds);
sw_train_on    sw_dataset_train_on(const sw_dataset *ds);
const sw_tokenizer *sw_dataset_tokenizer(const sw_dataset *ds);

/* One rendered sample; pointers stay valid while the dataset lives. */
typedef struct sw_sample {
    const int32_t *ids;       /* (len) the whole rendering, not cut to max_len */
    const int32_t *labels;    /* (len) */
    int64_t len;
    int64_t n_trained;        /* trained tokens among the first max_len */
    int64_t row;              /* 1-based line (JSONL) or array index (JSON) */
    /* preference records: prompt + rejected, masked the same way; else len 0 */
    const int32_t *rejected_ids, *rejected_labels;
    int64_t rejected_len;
} sw_sample;

/* i in [0, count). */
void sw_dataset_sample(const sw_dataset *ds, int64_t i, sw_sample *out);

/* The conversation a sample was rendered from (roles normalised to
 * system/user/assistant/tool). which 0: the sample; 1: the rejected side of
 * a preference record (0 messages otherwise). Text-format records are one
 * "text" message. Returns the message count. */
int sw_dataset_messages(const sw_dataset *ds, int64_t i, int which, const sw_chat_msg **msgs);

/* The text sample i was tokenized from (which 1: its rejected side), as the
 * template rendered it; a BOS the tokenizer adds is not in it. *text is
 * malloc'd and NUL-terminated. */
sw_status sw_dataset_render(sw_ctx *ctx, const sw_dataset *ds, int64_t i, int which, char **text, size_t *len);

/* ---- statistics and data checks --------------------------------------------- */

typedef struct sw_dataset_stats {
    int64_t count, skipped;
    int64_t tokens;               /* over whole samples */
    int64_t tokens_kept, trained; /* over the first max_len of each (what batches hold) */
    double  mean_len;
    int64_t min_len, median_len, p95_len, p99_len, max_len_seen;
    int64_t truncated;            /* samples longer than max_len */
    int64_t suggested_max_len;    /* p99 rounded up to a multiple of 64 */
} sw_dataset_stats;

void sw_dataset_stats_get(const sw_dataset *ds, sw_dataset_stats *out);

typedef enum sw_data_check {
    SW_CHECK_SKIPPED = 0, /* bad records skipped (skip_bad): why */
    SW_CHECK_EMPTY,       /* a message with no text */
    SW_CHECK_OVERLONG,    /* longer than max_len */
    SW_CHECK_NO_ALNUM,    /* a message with text but no letter or digit */
    SW_CHECK_DUPLICATE,   /* the same rendering as an earlier record (other = its row) */
    SW_CHECK_COUNT
} sw_data_check;

typedef struct sw_data_issue {
    int64_t row;       /* 1-based line or record */
    int64_t other;     /* SW_CHECK_DUPLICATE: the first row; else 0 */
    const char *what;  /* one line: "message 3 (assistant) is empty" */
} sw_data_issue;

const char *sw_data_check_name(sw_data_check c); /* "skipped", "empty", "over_long", "no_alnum", "duplicate" */
/* The issues of one kind, in row order; *out stays valid while ds lives. */
int64_t sw_dataset_issues(const sw_dataset *ds, sw_data_check c, const sw_data_issue **out);

/* ---- batches ------------------------------------------------------------------ */

/* Where a run over the data stands: `index` samples of epoch `epoch` (both
 * 0-based) have been handed out. Save it with a checkpoint, pass it back, and
 * the next batch is the one that would have come. */
typedef struct sw_data_cursor {
    int64_t epoch, index;
} sw_data_cursor;

typedef struct sw_batch_opts {
    int64_t rows;    /* samples per batch, or packed rows with packing */
    bool packing;    /* several samples per row, up to max_len */
    bool shuffle;    /* each epoch in its own order, from (seed, epoch) */
    uint64_t seed;
} sw_batch_opts;

typedef struct sw_batch {
    int64_t rows, len;     /* ids, labels, positions are (rows, len), row-major */
    int32_t *ids;          /* pad id past each row's samples */
    int32_t *labels;       /* SW_LABEL_IGNORE where nothing trains, padding included */
    int32_t *positions;    /* 0, 1, ... from each sample's first token; 0 in padding */
    /* Sample boundaries, cu_seqlens-style, per row: row r holds samples
     * [offsets[row_start[r] + j], offsets[row_start[r] + j + 1]) for j in
     * [0, row_start[r+1] - row_start[r] - 1); its last offset is where its
     * padding begins. Attention confined to these ranges sees one sample. */
    int32_t *offsets;
    int64_t *row_start;    /* (rows + 1) */
    int64_t *samples;      /* (n_samples) dataset index of each sample, in order */
    int64_t n_samples;
    int64_t n_tokens;      /* tokens that are not padding */
    int64_t n_trained;     /* labels that are not SW_LABEL_IGNORE */
    int64_t n_truncated;   /* samples cut to max_len */
    int32_t pad_id;        /* the tokenizer's pad, else its eos, else 0 */
    sw_data_cursor start;  /* the cursor this batch began at */
    size_t bytes_;         /* one accounted block holds every array */
} sw_batch;

/* The next batch from *cursor, which moves past it (only on success). Samples
 * are cut to max_len. Without packing, row r is one sample; with it, each row
 * takes the next samples in order while they fit in max_len. Rows are padded
 * to the longest row of the batch. A batch never spans two epochs: the last
 * one of an epoch may have fewer rows, and a cursor at an epoch's end moves
 * to the next epoch's start. */
sw_status sw_dataset_batch(sw_ctx *ctx, const sw_dataset *ds, const sw_batch_opts *opts, sw_data_cursor *cursor,
                           sw_batch *out);
void sw_batch_free(sw_batch *b); /* zeroes it; a zeroed batch is fine */

/* The sample at position i of epoch `epoch`: a permutation of [0, n) that
 * depends only on (seed, epoch, n), computed without storing it. */
int64_t sw_data_shuffle(uint64_t seed, int64_t epoch, int64_t n, int64_t i);

#endif
