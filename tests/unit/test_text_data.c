/* test_text_data.c — datasets on bad and good input: malformed JSON lines,
 * wrong field types, empty files, samples with nothing to train, skip
 * counting; masks for each format and template kind; token offsets; and the
 * batch invariants: padding never trains, packed rows are the unpacked
 * samples end to end with positions restarting, the shuffle is a
 * permutation, and a saved cursor replays the same batches.
 * Two tiny tokenizers built in memory: byte-level (one token per byte, plus
 * ChatML's markers) and SentencePiece-style (Prepend "▁", <s> added).
 * (Exactness against HF on a real vocabulary: tests/parity/test_dataset_masks.py.) */
#include <stdlib.h>

#include "check.h"
#include "core/data.h"
#include "core/interrupt.h"
#include "core/mem.h"

/* ---- tokenizers -------------------------------------------------------------------- */

typedef struct sb {
    char buf[1 << 15];
    size_t n;
} sb;

static void put(sb *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k < sizeof b->buf) {
        memcpy(b->buf + b->n, s, k);
        b->n += k;
        b->buf[b->n] = '\0';
    }
}

/* The printable stand-in GPT-2 gives byte b (written from the rule:
 * printable Latin-1 maps to itself, the rest to 256 + its rank). */
static unsigned stand_in(unsigned b) {
    bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    if (keep) return b;
    unsigned rank = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) rank++;
    return 256 + rank;
}

#define CHATML_JINJA                                                                                  \
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + " \
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

/* Byte-level: ids 0..255 are bytes, 256 <|im_start|>, 257 <|im_end|> (eos). */
static sw_tokenizer *bytes_tok(sw_ctx *ctx) {
    static sb b;
    b.n = 0;
    put(&b, "{\"added_tokens\": [{\"id\": 256, \"content\": \"<|im_start|>\", \"special\": true},"
            "{\"id\": 257, \"content\": \"<|im_end|>\", \"special\": true}], \"normalizer\": null,"
            "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
            "\"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (unsigned i = 0; i < 256; i++) {
        char e[32];
        unsigned c = stand_in(i);
        if (c == '"' || c == '\\') snprintf(e, sizeof e, "%s\"\\%c\": %u", i ? ", " : "", (char)c, i);
        else if (c < 0x80) snprintf(e, sizeof e, "%s\"%c\": %u", i ? ", " : "", (char)c, i);
        else snprintf(e, sizeof e, "%s\"\\u%04x\": %u", i ? ", " : "", c, i);
        put(&b, e);
    }
    put(&b, "}, \"merges\": []}}");
    const char *cfg = "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"" CHATML_JINJA "\"}";
    sw_tokenizer *t = NULL;
    sw_status s = sw_tokenizer_from_json_text(ctx, b.buf, b.n, cfg, strlen(cfg), "bytes.json", &t);
    if (s) fprintf(stderr, "bytes_tok: %s\n", ctx->msg);
    return t;
}

/* SentencePiece-style: <unk> 0, <s> 1, </s> 2, <0x00>.. 3..258, then
 * "▁" 259, "a" 260, "b" 261, "▁a" 262, "ab" 263; the post-processor adds <s>. */
static sw_tokenizer *spm_tok(sw_ctx *ctx) {
    static sb b;
    b.n = 0;
    put(&b, "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
            "{\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
            "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
            "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
            "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
            "{\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}},"
            "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"},"
            "\"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]},"
            "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": true, \"vocab\": {"
            "\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (unsigned i = 0; i < 256; i++) {
        char e[32];
        snprintf(e, sizeof e, ", \"<0x%02X>\": %u", i, i + 3);
        put(&b, e);
    }
    put(&b, ", \"\\u2581\": 259, \"a\": 260, \"b\": 261, \"\\u2581a\": 262, \"ab\": 263}, \"merges\": [\"\\u2581 a\", \"a b\"]}}");
    const char *cfg = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";
    sw_tokenizer *t = NULL;
    sw_status s = sw_tokenizer_from_json_text(ctx, b.buf, b.n, cfg, strlen(cfg), "spm.json", &t);
    if (s) fprintf(stderr, "spm_tok: %s\n", ctx->msg);
    return t;
}

/* ---- helpers -------------------------------------------------------------------------- */

static sw_dataset_opts opts_for(const sw_tokenizer *t) {
    return (sw_dataset_opts){.tok = t, .format = SW_DATA_AUTO, .chat_template = "auto",
                             .train_on = SW_TRAIN_RESPONSES, .max_len = 1024, .skip_bad = false};
}

static sw_status make(sw_ctx *ctx, const char *text, const char *name, const sw_dataset_opts *o, sw_dataset **ds) {
    sw_ctx_clear(ctx);
    bool array = text[strspn(text, " \n")] == '[';
    sw_status s = sw_dataset_from_text(ctx, text, strlen(text), name, array, o, ds);
    if (s) CHECK(*ds == NULL);
    if (s && getenv("SW_TEST_VERBOSE")) fprintf(stderr, "  (%s)\n", ctx->msg);
    return s;
}

/* The bytes of sample i's tokens whose label is (trained) or is not (!trained)
 * ignored, each run ended by '|'. */
static const char *runs(const sw_dataset *ds, int64_t i, bool trained) {
    static char out[8192];
    size_t k = 0;
    sw_sample s;
    sw_dataset_sample(ds, i, &s);
    const sw_tokenizer *t = sw_dataset_tokenizer(ds);
    bool in = false;
    for (int64_t j = 0; j < s.len; j++) {
        bool tr = s.labels[j] != SW_LABEL_IGNORE;
        if (tr == trained) {
            size_t l;
            const char *p = sw_tokenizer_token_bytes(t, s.ids[j], &l);
            if (p && k + l + 2 < sizeof out) {
                memcpy(out + k, p, l);
                k += l;
            }
            in = true;
        } else if (in) {
            out[k++] = '|';
            in = false;
        }
    }
    if (in) out[k++] = '|';
    out[k] = '\0';
    return out;
}

static const char *trained_of(const sw_dataset *ds, int64_t i) { return runs(ds, i, true); }

#define MSG(u, a) "{\"messages\": [{\"role\": \"user\", \"content\": \"" u "\"}, {\"role\": \"assistant\", \"content\": \"" a "\"}]}\n"

static size_t data_now(void) {
    sw_mem_stats m;
    sw_mem_get(SW_DEV_CPU, &m);
    return m.now[SW_MEM_DATA];
}

/* ---- formats and masks ---------------------------------------------------------------- */

static void test_formats(sw_ctx *ctx, const sw_tokenizer *tok) {
    sw_dataset_opts o = opts_for(tok);
    sw_dataset *ds = NULL;

    /* messages: trained = each answer + <|im_end|>, nothing else */
    const char *two = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"2+2?\"},"
                      "{\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"3+3?\"},"
                      "{\"role\": \"assistant\", \"content\": \"6\"}]}\n";
    CHECK_EQ_INT(make(ctx, two, "m.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_MESSAGES);
    CHECK(!strcmp(trained_of(ds, 0), "4<|im_end|>|6<|im_end|>|"));
    CHECK(!strcmp(runs(ds, 0, false), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                                      "<|im_start|>assistant\n|\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n|\n|"));
    sw_sample s;
    sw_dataset_sample(ds, 0, &s);
    CHECK_EQ_INT(s.n_trained, 4);
    CHECK_EQ_INT(s.row, 1);
    CHECK_EQ_INT(s.rejected_len, 0);
    const sw_chat_msg *m;
    CHECK_EQ_INT(sw_dataset_messages(ds, 0, 0, &m), 5);
    CHECK(!strcmp(m[4].role, "assistant") && !strcmp(m[4].content, "6"));
    sw_dataset_free(ds);

    /* train_on */
    o.train_on = SW_TRAIN_LAST_RESPONSE;
    CHECK_EQ_INT(make(ctx, two, "m.jsonl", &o, &ds), SW_OK);
    CHECK(!strcmp(trained_of(ds, 0), "6<|im_end|>|"));
    sw_dataset_free(ds);
    o.train_on = SW_TRAIN_ALL;
    CHECK_EQ_INT(make(ctx, two, "m.jsonl", &o, &ds), SW_OK);
    sw_dataset_sample(ds, 0, &s);
    CHECK_EQ_INT(s.n_trained, s.len - 1); /* all but the first token */
    CHECK_EQ_INT(s.labels[0], SW_LABEL_IGNORE);
    sw_dataset_free(ds);
    o.train_on = SW_TRAIN_RESPONSES;

    /* alpaca through the chat template: user = instruction + "\n\n" + input */
    const char *alp = "{\"instruction\": \"Add\", \"input\": \"1 and 2\", \"output\": \"3\"}\n"
                      "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n";
    CHECK_EQ_INT(make(ctx, alp, "a.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_ALPACA);
    CHECK(!strcmp(runs(ds, 0, false), "<|im_start|>user\nAdd\n\n1 and 2<|im_end|>\n<|im_start|>assistant\n|\n|"));
    CHECK(!strcmp(trained_of(ds, 1), "hi<|im_end|>|"));
    sw_dataset_free(ds);

    /* alpaca, the classic prompt */
    o.chat_template = "alpaca";
    CHECK_EQ_INT(make(ctx, alp, "a.jsonl", &o, &ds), SW_OK);
    CHECK(!strcmp(runs(ds, 0, false),
                  "Below is an instruction that describes a task, paired with an input that provides further context. "
                  "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd\n\n### Input:\n"
                  "1 and 2\n\n### Response:\n|\n\n|"));
    CHECK(!strcmp(trained_of(ds, 0), "3<|im_end|>|"));
    CHECK_CONTAINS(runs(ds, 1, false), "describes a task. Write");
    sw_dataset_free(ds);
    o.chat_template = "auto";

    /* sharegpt, prompt/completion (strings and lists), text */
    const char *sg = "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n";
    CHECK_EQ_INT(make(ctx, sg, "s.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_SHAREGPT);
    CHECK(!strcmp(trained_of(ds, 0), "a<|im_end|>|"));
    sw_dataset_free(ds);
    const char *pc = "{\"prompt\": \"q\", \"completion\": \"a\"}\n"
                     "{\"prompt\": [{\"role\": \"user\", \"content\": \"q2\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"a2\"}]}\n";
    CHECK_EQ_INT(make(ctx, pc, "p.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_PROMPT_COMPLETION);
    CHECK(!strcmp(trained_of(ds, 1), "a2<|im_end|>|"));
    sw_dataset_free(ds);
    o.chat_template = "none";
    CHECK_EQ_INT(make(ctx, pc, "p.jsonl", &o, &ds), SW_OK);
    CHECK(!strcmp(runs(ds, 0, false), "q|"));
    CHECK(!strcmp(trained_of(ds, 0), "a<|im_end|>|"));
    sw_dataset_free(ds);
    o.chat_template = "auto";
    const char *tx = "{\"text\": \"hello world\"}\n";
    CHECK_EQ_INT(make(ctx, tx, "t.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_TEXT);
    CHECK(!strcmp(trained_of(ds, 0), "ello world<|im_end|>|")); /* all but the first token; EOS appended */
    sw_dataset_free(ds);

    /* preference: chosen trains, rejected rendered alongside */
    const char *pr = "{\"prompt\": \"q\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n";
    CHECK_EQ_INT(make(ctx, pr, "r.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_format(ds), SW_DATA_PREFERENCE);
    CHECK(!strcmp(trained_of(ds, 0), "good<|im_end|>|"));
    sw_dataset_sample(ds, 0, &s);
    CHECK(s.rejected_len > 0);
    int64_t tr = 0;
    for (int64_t j = 0; j < s.rejected_len; j++) tr += s.rejected_labels[j] != SW_LABEL_IGNORE;
    CHECK_EQ_INT(tr, 4); /* "bad" + <|im_end|> */
    CHECK_EQ_INT(sw_dataset_messages(ds, 0, 1, &m), 2);
    CHECK(!strcmp(m[1].content, "bad"));
    sw_dataset_free(ds);

    /* a JSON array, explicit format */
    const char *arr = "[{\"instruction\": \"i\", \"output\": \"o\"}, {\"instruction\": \"j\", \"output\": \"p\"}]";
    o.format = SW_DATA_ALPACA;
    CHECK_EQ_INT(make(ctx, arr, "a.json", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_count(ds), 2);
    sw_dataset_sample(ds, 1, &s);
    CHECK_EQ_INT(s.row, 2);
    CHECK(!sw_dataset_rows_are_lines(ds));
    sw_dataset_free(ds);
    o.format = SW_DATA_AUTO;
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void test_errors(sw_ctx *ctx, const sw_tokenizer *tok) {
    sw_dataset_opts o = opts_for(tok);
    sw_dataset *ds = NULL;
    size_t before = data_now();

    CHECK_EQ_INT(make(ctx, MSG("q", "a") "{\"messages\": [oops\n" MSG("q2", "a2"), "d.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "d.jsonl:2: invalid JSON");
    CHECK_EQ_INT(make(ctx, "{\"instruction\": \"i\", \"output\": 3}\n", "d.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "d.jsonl:1: field 'output' must be a string, got number");
    CHECK_EQ_INT(make(ctx, MSG("q", "a") "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n", "d.jsonl", &o, &ds),
                 SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "d.jsonl:2: messages[0].role is 'bot'");
    CHECK_EQ_INT(make(ctx, MSG("q", "a") "{\"messages\": [{\"role\": \"user\", \"content\": null}]}\n", "d.jsonl", &o, &ds),
                 SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "messages[0].content must be a string, got null");
    CHECK_EQ_INT(make(ctx, MSG("q", "a") "{\"text\": \"x\"}\n", "d.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "d.jsonl:2: field 'messages' is missing");
    CHECK_EQ_INT(make(ctx, MSG("q", "a") "[1]\n", "d.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "a record must be a JSON object, got array");

    /* empty files */
    CHECK_EQ_INT(make(ctx, "", "e.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "e.jsonl: no records");
    CHECK_EQ_INT(make(ctx, "\n  \n\n", "e.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_EQ_INT(make(ctx, "[]", "e.json", &o, &ds), SW_EFORMAT);
    CHECK_EQ_INT(make(ctx, "[{\"text\": 1", "e.json", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "e.json:1:");

    /* an unknown shape: the keys found and the formats known; fatal even when skipping */
    o.skip_bad = true;
    CHECK_EQ_INT(make(ctx, "{\"question\": \"q\", \"answer\": \"a\"}\n", "u.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "u.jsonl:1: cannot tell the format from the keys {'question', 'answer'}");
    CHECK_CONTAINS(ctx->msg, "sharegpt (conversations)");
    o.skip_bad = false;

    /* nothing to train */
    CHECK_EQ_INT(make(ctx, "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n", "z.jsonl", &o, &ds), SW_EINVAL);
    CHECK_CONTAINS(ctx->msg, "z.jsonl:1: nothing to train on");
    o.max_len = 8; /* the prompt alone is longer */
    CHECK_EQ_INT(make(ctx, MSG("a long question", "a"), "z.jsonl", &o, &ds), SW_EINVAL);
    CHECK_CONTAINS(ctx->msg, "nothing to train on within max_len = 8");
    o.max_len = 1024;

    /* unknown template names list the built-ins */
    o.chat_template = "chatmel";
    CHECK(make(ctx, MSG("q", "a"), "t.jsonl", &o, &ds) != SW_OK);
    CHECK_CONTAINS(ctx->msg, "chatml");
    o.chat_template = "auto";

    /* skip: each bad record counted with its line and reason, the rest kept */
    o.skip_bad = true;
    const char *mixed = MSG("q", "a") "{\"messages\": [oops\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n"
                        "{\"messages\": 7}\n" MSG("q2", "a2");
    CHECK_EQ_INT(make(ctx, mixed, "k.jsonl", &o, &ds), SW_OK);
    CHECK_EQ_INT(sw_dataset_count(ds), 2);
    sw_dataset_stats st;
    sw_dataset_stats_get(ds, &st);
    CHECK_EQ_INT(st.skipped, 3);
    const sw_data_issue *is;
    CHECK_EQ_INT(sw_dataset_issues(ds, SW_CHECK_SKIPPED, &is), 3);
    CHECK_EQ_INT(is[0].row, 2);
    CHECK_CONTAINS(is[0].what, "invalid JSON");
    CHECK_EQ_INT(is[1].row, 4); /* blank line 3 holds no record */
    CHECK_CONTAINS(is[1].what, "nothing to train on");
    CHECK_EQ_INT(is[2].row, 5);
    CHECK_CONTAINS(is[2].what, "must be a list of messages");
    sw_sample s;
    sw_dataset_sample(ds, 1, &s);
    CHECK_EQ_INT(s.row, 6);
    sw_dataset_free(ds);
    CHECK_EQ_INT(make(ctx, "{\"messages\": [oops\n{\"messages\": 7}\n", "k.jsonl", &o, &ds), SW_EFORMAT);
    CHECK_CONTAINS(ctx->msg, "no usable records: all 2 were skipped");
    o.skip_bad = false;

    /* every failure left no data memory behind */
    CHECK_EQ_INT(data_now(), before);

    /* Ctrl-C while building */
    sw_interrupt_raise();
    CHECK_EQ_INT(make(ctx, MSG("q", "a"), "i.jsonl", &o, &ds), SW_EINTR);
    sw_interrupt_clear();
    CHECK_EQ_INT(data_now(), before);
}

/* ---- checks and stats -------------------------------------------------------------------- */

static void test_checks(sw_ctx *ctx, const sw_tokenizer *tok) {
    sw_dataset_opts o = opts_for(tok);
    o.max_len = 40;
    sw_dataset *ds = NULL;
    const char *text = MSG("What is 2+2?", "4") MSG("???", "ok") MSG("q", "  ") MSG("What is 2+2?", "4")
        MSG("q2", "an answer long enough to pass forty tokens with ease") MSG("What is 2+2?", "4");
    CHECK_EQ_INT(make(ctx, text, "c.jsonl", &o, &ds), SW_OK);
    const sw_data_issue *is;
    CHECK_EQ_INT(sw_dataset_issues(ds, SW_CHECK_NO_ALNUM, &is), 1);
    CHECK_EQ_INT(is[0].row, 2);
    CHECK_EQ_INT(sw_dataset_issues(ds, SW_CHECK_EMPTY, &is), 1);
    CHECK_EQ_INT(is[0].row, 3);
    CHECK_CONTAINS(is[0].what, "message 2 (assistant) is empty");
    CHECK_EQ_INT(sw_dataset_issues(ds, SW_CHECK_DUPLICATE, &is), 2);
    CHECK_EQ_INT(is[0].row, 4);
    CHECK_EQ_INT(is[0].other, 1);
    CHECK_EQ_INT(is[1].row, 6);
    CHECK_EQ_INT(is[1].other, 1);
    CHECK_EQ_INT(sw_dataset_issues(ds, SW_CHECK_OVERLONG, &is), 1);
    CHECK_EQ_INT(is[0].row, 5);
    sw_dataset_stats st;
    sw_dataset_stats_get(ds, &st);
    CHECK_EQ_INT(st.count, 6);
    CHECK_EQ_INT(st.truncated, 1);
    CHECK(st.min_len <= st.median_len && st.median_len <= st.p95_len && st.p95_len <= st.p99_len &&
          st.p99_len <= st.max_len_seen);
    CHECK_EQ_INT(st.suggested_max_len % 64, 0);
    CHECK(st.suggested_max_len >= st.p99_len);
    CHECK(st.tokens_kept == st.tokens - (st.max_len_seen - 40));
    sw_dataset_free(ds);
}

/* ---- offsets ------------------------------------------------------------------------------- */

static void test_offsets(sw_ctx *ctx, const sw_tokenizer *bt, const sw_tokenizer *st) {
    const char *text = "<|im_start|>user\nhé llo<|im_end|>\n";
    int32_t *ids, *ids2;
    sw_token_offset *off;
    int64_t n, n2;
    CHECK_EQ_INT(sw_tokenizer_encode_offsets(ctx, bt, text, strlen(text), false, &ids, &off, &n), SW_OK);
    CHECK_EQ_INT(sw_tokenizer_encode(ctx, bt, text, strlen(text), false, &ids2, &n2), SW_OK);
    CHECK_EQ_INT(n, n2);
    CHECK(!memcmp(ids, ids2, sizeof *ids * (size_t)n));
    int64_t at = 0;
    for (int64_t k = 0; k < n; k++) { /* byte-level tokens tile the text */
        CHECK_EQ_INT(off[k].begin, at);
        at = off[k].end;
    }
    CHECK_EQ_INT(at, (int64_t)strlen(text));
    CHECK_EQ_INT(off[0].end, 12); /* <|im_start|> */
    free(ids);
    free(ids2);
    free(off);

    /* SentencePiece: "▁" prepended maps to no byte; <s> from add_special is empty */
    const char *t2 = "ab a";
    CHECK_EQ_INT(sw_tokenizer_encode_offsets(ctx, st, t2, 4, true, &ids, &off, &n), SW_OK);
    CHECK_EQ_INT(n, 4); /* <s> ▁a b ▁a: the "▁ a" merge ranks first */
    CHECK(ids[0] == 1 && ids[1] == 262 && ids[2] == 261 && ids[3] == 262);
    CHECK(off[0].begin == 0 && off[0].end == 0);
    CHECK(off[1].begin == 0 && off[1].end == 1);
    CHECK(off[2].begin == 1 && off[2].end == 2);
    CHECK(off[3].begin == 2 && off[3].end == 4);
    free(ids);
    free(off);
    CHECK_EQ_INT(sw_tokenizer_encode_offsets(ctx, st, "", 0, false, &ids, &off, &n), SW_OK);
    CHECK_EQ_INT(n, 0);
    free(ids);
    free(off);
}

/* BOS once; EOS at the end of each response, or an error. */
static void test_bos_eos(sw_ctx *ctx, const sw_tokenizer *st) {
    sw_dataset_opts o = opts_for(st);
    sw_dataset *ds = NULL;
    o.chat_template = "none"; /* tokenizer adds <s>; the template writes none */
    CHECK_EQ_INT(make(ctx, "{\"prompt\": \"a\", \"completion\": \"ab\"}\n", "b.jsonl", &o, &ds), SW_OK);
    sw_sample s;
    sw_dataset_sample(ds, 0, &s);
    CHECK_EQ_INT(s.ids[0], 1);
    CHECK(s.ids[1] != 1);
    CHECK_EQ_INT(s.ids[s.len - 1], 2);
    CHECK_EQ_INT(s.labels[s.len - 1], 2);
    sw_dataset_free(ds);
    o.chat_template = "mistral"; /* the template writes <s>: no second one */
    CHECK_EQ_INT(make(ctx, "{\"prompt\": \"a\", \"completion\": \"ab\"}\n", "b.jsonl", &o, &ds), SW_OK);
    sw_dataset_sample(ds, 0, &s);
    CHECK_EQ_INT(s.ids[0], 1);
    int bos = 0;
    for (int64_t j = 0; j < s.len; j++) bos += s.ids[j] == 1;
    CHECK_EQ_INT(bos, 1);
    CHECK_EQ_INT(s.labels[s.len - 1], 2);
    sw_dataset_free(ds);
    o.chat_template = "chatml"; /* <|im_end|> is plain text to this vocabulary */
    CHECK_EQ_INT(make(ctx, "{\"prompt\": \"a\", \"completion\": \"ab\"}\n", "b.jsonl", &o, &ds), SW_EINVAL);
    CHECK_CONTAINS(ctx->msg, "b.jsonl:1: response 1 (message 2) does not end with an end-of-turn token");
}

/* ---- batches ------------------------------------------------------------------------------- */

static void test_shuffle(void) {
    for (int64_t n = 1; n <= 130; n += 7) {
        char seen[200] = {0};
        int ok = 1;
        for (int64_t i = 0; i < n; i++) {
            int64_t p = sw_data_shuffle(42, 3, n, i);
            if (p < 0 || p >= n || seen[p]++) ok = 0;
        }
        CHECK(ok);
    }
    int64_t same_epoch = 0, same_seed = 0;
    for (int64_t i = 0; i < 1000; i++) {
        same_epoch += sw_data_shuffle(7, 0, 1000, i) == sw_data_shuffle(7, 1, 1000, i);
        same_seed += sw_data_shuffle(7, 0, 1000, i) == sw_data_shuffle(8, 0, 1000, i);
    }
    CHECK(same_epoch < 20 && same_seed < 20); /* a random pair shares ~1 position */
}

static bool same_batch(const sw_batch *a, const sw_batch *b) {
    size_t cells = (size_t)(a->rows * a->len);
    return a->rows == b->rows && a->len == b->len && a->n_samples == b->n_samples &&
           !memcmp(a->ids, b->ids, 4 * cells) && !memcmp(a->labels, b->labels, 4 * cells) &&
           !memcmp(a->positions, b->positions, 4 * cells) &&
           !memcmp(a->samples, b->samples, sizeof(int64_t) * (size_t)a->n_samples);
}

static void test_batches(sw_ctx *ctx, const sw_tokenizer *tok) {
    /* 23 samples of varied length */
    static char text[16384];
    size_t k = 0;
    for (int i = 0; i < 23; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, MSG("question %d %.*s", "answer %d"), i, i % 7 * 3,
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
    sw_dataset_opts o = opts_for(tok);
    o.max_len = 64;
    sw_dataset *ds = NULL;
    CHECK_EQ_INT(make(ctx, text, "b.jsonl", &o, &ds), SW_OK);
    int64_t n = sw_dataset_count(ds);
    CHECK_EQ_INT(n, 23);
    size_t before = data_now();

    /* padding: to the longest row; pad never trains; one sample per row */
    sw_batch_opts bo = {.rows = 4, .packing = false, .shuffle = true, .seed = 3407};
    sw_data_cursor cur = {0, 0};
    sw_batch b;
    CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
    CHECK(data_now() > before);
    CHECK_EQ_INT(b.rows, 4);
    CHECK_EQ_INT(cur.index, 4);
    int64_t longest = 0, trained = 0;
    for (int64_t r = 0; r < b.rows; r++) {
        sw_sample s;
        sw_dataset_sample(ds, b.samples[r], &s);
        int64_t l = s.len < 64 ? s.len : 64;
        if (l > longest) longest = l;
        CHECK_EQ_INT(b.row_start[r + 1] - b.row_start[r], 2);
        CHECK_EQ_INT(b.offsets[b.row_start[r] + 1], l);
        CHECK(!memcmp(b.ids + r * b.len, s.ids, 4 * (size_t)l));
        CHECK(!memcmp(b.labels + r * b.len, s.labels, 4 * (size_t)l));
        for (int64_t t = l; t < b.len; t++) {
            CHECK_EQ_INT(b.labels[r * b.len + t], SW_LABEL_IGNORE);
            CHECK_EQ_INT(b.ids[r * b.len + t], b.pad_id);
        }
        for (int64_t t = 0; t < b.len; t++) trained += b.labels[r * b.len + t] != SW_LABEL_IGNORE;
    }
    CHECK_EQ_INT(b.len, longest);
    CHECK_EQ_INT(b.n_trained, trained);
    CHECK_EQ_INT(b.pad_id, 257); /* no pad token: eos */
    sw_batch_free(&b);
    CHECK_EQ_INT(data_now(), before);

    /* an epoch: every sample once; the last batch is short; then epoch 1 */
    char seen[23] = {0};
    cur = (sw_data_cursor){0, 0};
    int batches = 0;
    while (cur.epoch == 0) {
        CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
        for (int64_t j = 0; j < b.n_samples; j++) seen[b.samples[j]]++;
        CHECK_EQ_INT(b.rows, batches < 5 ? 4 : 3);
        batches++;
        sw_batch_free(&b);
        if (cur.index == n) {
            CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
            CHECK_EQ_INT(b.start.epoch, 1);
            CHECK_EQ_INT(b.start.index, 0);
            sw_batch_free(&b);
        }
    }
    CHECK_EQ_INT(batches, 6);
    for (int i = 0; i < 23; i++) CHECK_EQ_INT(seen[i], 1);

    /* a saved cursor replays the same batches */
    cur = (sw_data_cursor){0, 0};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
        sw_batch_free(&b);
    }
    sw_data_cursor saved = cur;
    sw_batch first[8];
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &first[i]), SW_OK);
    cur = saved;
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
        CHECK(same_batch(&b, &first[i]));
        sw_batch_free(&b);
        sw_batch_free(&first[i]);
    }
    /* a bad cursor is refused and left as it was */
    cur = (sw_data_cursor){0, 99};
    CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_EINVAL);
    CHECK_EQ_INT(cur.index, 99);
    CHECK(b.ids == NULL);

    /* packing: rows are the unpacked samples end to end, in the same order */
    sw_batch_opts po = bo;
    po.packing = true;
    po.rows = 2;
    cur = (sw_data_cursor){0, 0};
    sw_data_cursor ucur = {0, 0};
    int64_t packed_samples = 0;
    while (cur.epoch == 0 && cur.index < n) {
        CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &po, &cur, &b), SW_OK);
        int64_t j = 0;
        for (int64_t r = 0; r < b.rows; r++) {
            const int32_t *off = b.offsets + b.row_start[r];
            int64_t ns = b.row_start[r + 1] - b.row_start[r] - 1;
            CHECK(ns >= 1);
            CHECK(off[ns] <= 64);
            CHECK_EQ_INT(off[0], 0);
            for (int64_t q = 0; q < ns; q++, j++) {
                /* the same sample the unpacked run hands out next */
                sw_batch u;
                sw_batch_opts one = bo;
                one.rows = 1;
                CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &one, &ucur, &u), SW_OK);
                CHECK_EQ_INT(u.samples[0], b.samples[j]);
                int64_t l = off[q + 1] - off[q];
                CHECK_EQ_INT(l, u.offsets[1]);
                CHECK(!memcmp(b.ids + r * b.len + off[q], u.ids, 4 * (size_t)l));
                CHECK(!memcmp(b.labels + r * b.len + off[q], u.labels, 4 * (size_t)l));
                CHECK_EQ_INT(b.labels[r * b.len + off[q]], SW_LABEL_IGNORE); /* no label across samples */
                for (int64_t t = 0; t < l; t++) CHECK_EQ_INT(b.positions[r * b.len + off[q] + t], t);
                sw_batch_free(&u);
            }
            if (r + 1 < b.rows) { /* greedy: the next sample would not have fitted */
                sw_sample s;
                sw_dataset_sample(ds, b.samples[j], &s);
                CHECK(off[ns] + (s.len < 64 ? s.len : 64) > 64);
            }
            for (int64_t t = off[ns]; t < b.len; t++) CHECK_EQ_INT(b.labels[r * b.len + t], SW_LABEL_IGNORE);
        }
        CHECK_EQ_INT(j, b.n_samples);
        packed_samples += b.n_samples;
        sw_batch_free(&b);
    }
    CHECK_EQ_INT(packed_samples, n);
    CHECK_EQ_INT(data_now(), before);

    /* truncation */
    sw_dataset_free(ds);
    o.max_len = 20;
    o.train_on = SW_TRAIN_ALL;
    CHECK_EQ_INT(make(ctx, text, "b.jsonl", &o, &ds), SW_OK);
    bo.shuffle = false;
    cur = (sw_data_cursor){0, 0};
    CHECK_EQ_INT(sw_dataset_batch(ctx, ds, &bo, &cur, &b), SW_OK);
    CHECK_EQ_INT(b.len, 20);
    CHECK_EQ_INT(b.n_truncated, 4);
    CHECK_EQ_INT(b.samples[0], 0); /* no shuffle: in file order */
    CHECK_EQ_INT(b.samples[3], 3);
    sw_batch_free(&b);
    sw_dataset_free(ds);
}

int main(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_tokenizer *bt = bytes_tok(&ctx), *st = spm_tok(&ctx);
    CHECK(bt && st);
    if (!bt || !st) CHECK_DONE();
    size_t before = data_now();
    test_formats(&ctx, bt);
    test_errors(&ctx, bt);
    test_checks(&ctx, bt);
    test_offsets(&ctx, bt, st);
    test_bos_eos(&ctx, st);
    test_shuffle();
    test_batches(&ctx, bt);
    CHECK_EQ_INT(data_now(), before);
    sw_tokenizer_free(bt);
    sw_tokenizer_free(st);
    CHECK_DONE();
}
