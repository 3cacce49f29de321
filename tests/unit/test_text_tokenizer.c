/* test_text_tokenizer.c — the tokenizer on bad input: malformed files,
 * merges naming unknown tokens, unsupported steps, invalid UTF-8 in the text,
 * empty strings, ids out of range, Ctrl-C during a long encode. Every failure
 * must come back as a status with a message naming the field, never a crash.
 * (Exactness against HF is tests/parity/test_tokenizer.py.) */
#include <stdlib.h>

#include "check.h"
#include "core/interrupt.h"
#include "core/tokenizer.h"

/* ---- building test tokenizer.json texts ----------------------------------------- */

typedef struct sb {
    char buf[1 << 16];
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

/* GPT-2's byte -> character map, written out independently of the library. */
static unsigned byte_char(unsigned b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256 + n;
}

/* A JSON string holding the UTF-8 of code point cp ("\u0120" style). */
static void put_cp(sb *b, unsigned cp) {
    char e[16];
    if (cp == '"' || cp == '\\') snprintf(e, sizeof e, "\\%c", (char)cp);
    else if (cp < 0x80) snprintf(e, sizeof e, "%c", (char)cp);
    else snprintf(e, sizeof e, "\\u%04x", cp);
    put(b, e);
}

/* Byte-level BPE: the 256 byte characters (ids 0..255), "he" = 256,
 * "ll" = 257, "hell" = 258, "<|end|>" = 259 (special), extra merges given. */
static void bytelevel_json(sb *b, const char *merges_extra, const char *pre) {
    b->n = 0;
    put(b, "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 259, \"content\": \"<|end|>\", \"special\": true,"
           " \"normalized\": false}], \"normalizer\": null, \"pre_tokenizer\": ");
    put(b, pre ? pre : "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}");
    put(b, ", \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (unsigned i = 0; i < 256; i++) {
        put(b, i ? ", \"" : "\"");
        put_cp(b, byte_char(i));
        char e[16];
        snprintf(e, sizeof e, "\": %u", i);
        put(b, e);
    }
    put(b, ", \"he\": 256, \"ll\": 257, \"hell\": 258, \"<|end|>\": 259}, \"merges\": [\"h e\", \"l l\", \"he ll\"");
    put(b, merges_extra ? merges_extra : "");
    put(b, "]}}");
}

/* SentencePiece-style: <unk>, <s>, </s>, then <0x00>..<0xFF>, then pieces. */
static void spm_json(sb *b) {
    b->n = 0;
    put(b, "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},"
           "{\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false}],"
           "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
           "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
           "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
           "{\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}},"
           "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"},"
           "\"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \","
           "\"start\": 1, \"stop\": 0}]},"
           "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": true, \"vocab\": {"
           "\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (unsigned i = 0; i < 256; i++) {
        char e[32];
        snprintf(e, sizeof e, ", \"<0x%02X>\": %u", i, i + 3);
        put(b, e);
    }
    put(b, ", \"\\u2581\": 259, \"a\": 260, \"b\": 261, \"\\u2581a\": 262, \"ab\": 263}, \"merges\": [\"\\u2581 a\", \"a b\"]}}");
}

static sw_tokenizer *load(sw_ctx *ctx, const sb *b, sw_status want) {
    sw_tokenizer *t = NULL;
    sw_ctx_clear(ctx);
    sw_status s = sw_tokenizer_from_json_text(ctx, b->buf, b->n, NULL, 0, "test.json", &t);
    CHECK_EQ_INT(s, want);
    if (s != SW_OK) CHECK(t == NULL);
    return t;
}

static sw_status load_text(sw_ctx *ctx, const char *json) {
    sw_tokenizer *t = NULL;
    sw_ctx_clear(ctx);
    sw_status s = sw_tokenizer_from_json_text(ctx, json, strlen(json), NULL, 0, "test.json", &t);
    CHECK(s == SW_OK || t == NULL);
    sw_tokenizer_free(t);
    return s;
}

/* Concatenated token_bytes of ids == the original bytes. */
static int bytes_equal(const sw_tokenizer *t, const int32_t *ids, int64_t n, const char *want, size_t wlen) {
    char got[4096];
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l;
        const char *p = sw_tokenizer_token_bytes(t, ids[i], &l);
        if (!p || k + l > sizeof got) return 0;
        memcpy(got + k, p, l);
        k += l;
    }
    return k == wlen && !memcmp(got, want, k);
}

int main(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    static sb b;

    /* ---- malformed files ---- */
    CHECK_EQ_INT(load_text(&ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0"), SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "test.json: line 1");
    CHECK_EQ_INT(load_text(&ctx, "[1, 2]"), SW_EFORMAT);
    CHECK_EQ_INT(load_text(&ctx, "{}"), SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "model");
    CHECK_EQ_INT(load_text(&ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}"), SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "model.vocab['a']");
    CHECK_EQ_INT(load_text(&ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}"), SW_EFORMAT);
    CHECK_EQ_INT(load_text(&ctx, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}"), SW_EUNSUPPORTED);
    CHECK_CONTAINS(ctx.msg, "Unigram");
    CHECK_EQ_INT(load_text(&ctx, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}"),
                 SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "model.unk_token");

    /* ---- merges naming unknown tokens, or malformed ---- */
    bytelevel_json(&b, ", \"h zz\"", NULL);
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "model.merges[3]");
    CHECK_CONTAINS(ctx.msg, "'zz' is not in the vocabulary");
    bytelevel_json(&b, ", \"e l\"", NULL); /* both known, "el" is not */
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "merged token 'el'");
    bytelevel_json(&b, ", \"hel\"", NULL);
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "one space");
    bytelevel_json(&b, ", \"h e l\"", NULL);
    load(&ctx, &b, SW_EFORMAT);
    bytelevel_json(&b, ", 42", NULL);
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "model.merges[3]");

    /* ---- unsupported or broken steps ---- */
    bytelevel_json(&b, NULL, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}]}");
    load(&ctx, &b, SW_EUNSUPPORTED);
    CHECK_CONTAINS(ctx.msg, "pre_tokenizer.pretokenizers[0]");
    CHECK_CONTAINS(ctx.msg, "Whitespace");
    bytelevel_json(&b, NULL, "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}");
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "pre_tokenizer.pattern");
    bytelevel_json(&b, NULL, "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}");
    load(&ctx, &b, SW_EFORMAT);
    CHECK_CONTAINS(ctx.msg, "Sideways");

    /* ---- a working byte-level tokenizer ---- */
    bytelevel_json(&b, NULL, NULL);
    sw_tokenizer *t = load(&ctx, &b, SW_OK);
    CHECK(t != NULL);
    if (!t) CHECK_DONE();
    CHECK_EQ_INT(sw_tokenizer_vocab_size(t), 260);
    int32_t *ids;
    int64_t n;
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, "hello<|end|>", 12, true, &ids, &n), SW_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_INT(ids[0], 258); /* hell */
        CHECK_EQ_INT(ids[1], 'o'); /* byte b's token has id b here */
        CHECK_EQ_INT(ids[2], 259);
    }
    free(ids);

    /* empty text: no ids, but a valid (freeable) array */
    ids = NULL;
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, "", 0, true, &ids, &n), SW_OK);
    CHECK_EQ_INT(n, 0);
    CHECK(ids != NULL);
    free(ids);
    char *s;
    size_t len;
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, NULL, 0, false, &s, &len), SW_OK);
    CHECK(s && len == 0 && s[0] == '\0');
    free(s);

    /* invalid UTF-8: each bad byte is its own byte token; the bytes come back
     * exactly through token_bytes, and decode replaces them as HF would */
    const char bad[] = "a\xff\xfe h\xc3(\xe2\x82 \xed\xa0\x80";
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, bad, sizeof bad - 1, false, &ids, &n), SW_OK);
    CHECK(n >= 10);
    CHECK(bytes_equal(t, ids, n, bad, sizeof bad - 1));
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, ids, n, false, &s, &len), SW_OK);
    /* a, FFFD, FFFD, " h", FFFD, "(", FFFD (E2 82), " ", FFFD x3 (ED A0 80: no surrogates) */
    CHECK(!strcmp(s, "a\xEF\xBF\xBD\xEF\xBF\xBD h\xEF\xBF\xBD(\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
    free(s);
    free(ids);

    /* ids out of range or negative */
    int32_t badids[] = {5, 260, 7};
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, badids, 3, false, &s, &len), SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "id 260 at position 1");
    CHECK(s == NULL);
    int32_t neg[] = {-1};
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, neg, 1, false, &s, &len), SW_EINVAL);
    CHECK(sw_tokenizer_piece(t, 260, &len) == NULL);
    CHECK(sw_tokenizer_piece(t, -3, &len) == NULL);
    CHECK(sw_tokenizer_token_bytes(t, 999, &len) == NULL);
    CHECK_EQ_INT(sw_tokenizer_id(t, "nope", 4), -1);
    CHECK_EQ_INT(sw_tokenizer_id(t, "hell", 4), 258);
    CHECK_EQ_INT(sw_tokenizer_id(t, "\xc4\xa0", 2), ' '); /* the piece "Ġ" is byte 32's token */
    CHECK_EQ_INT(sw_tokenizer_id(t, " ", 1), ' ');         /* and the text " " finds it too */
    CHECK(sw_tokenizer_is_special(t, 259));
    CHECK(!sw_tokenizer_is_special(t, 258));
    CHECK(!sw_tokenizer_is_special(t, 100000));

    /* skip_special drops special tokens */
    int32_t sp[] = {258, 259};
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, sp, 2, true, &s, &len), SW_OK);
    CHECK(!strcmp(s, "hell"));
    free(s);

    /* Ctrl-C during a long encode unwinds with SW_EINTR and returns nothing */
    size_t big = 1 << 20;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++) text[i] = (i % 3) ? 'x' : ' ';
    sw_interrupt_raise();
    ids = (int32_t *)&n;
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, text, big, false, &ids, &n), SW_EINTR);
    CHECK(ids == NULL);
    sw_interrupt_clear();
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, text, big, false, &ids, &n), SW_OK);
    free(ids);
    free(text);
    sw_tokenizer_free(t);

    /* ---- SentencePiece style: byte fallback and BOS ---- */
    spm_json(&b);
    t = load(&ctx, &b, SW_OK);
    if (!t) CHECK_DONE();
    CHECK_EQ_INT(sw_tokenizer_bos(t), 1);
    CHECK_EQ_INT(sw_tokenizer_unk(t), 0);
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, "ab\xff" "a", 4, true, &ids, &n), SW_OK);
    /* <s>, ▁a, b, <0xFF>, a  ("▁ab" is no piece: ▁a + b) */
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK_EQ_INT(ids[0], 1);
        CHECK_EQ_INT(ids[1], 262);
        CHECK_EQ_INT(ids[2], 261);
        CHECK_EQ_INT(ids[3], 0xFF + 3);
        CHECK_EQ_INT(ids[4], 260);
    }
    CHECK_EQ_INT(sw_tokenizer_decode(&ctx, t, ids, n, true, &s, &len), SW_OK);
    CHECK(!strcmp(s, "ab\xEF\xBF\xBD" "a"));
    free(s);
    free(ids);
    /* a character with no piece and no byte token would be <unk>; here é -> bytes */
    CHECK_EQ_INT(sw_tokenizer_encode(&ctx, t, "\xc3\xa9", 2, false, &ids, &n), SW_OK);
    CHECK_EQ_INT(n, 3);
    CHECK(bytes_equal(t, ids, n, " \xc3\xa9", 3));
    free(ids);
    sw_tokenizer_free(t);

    /* ---- files ---- */
    sw_ctx_clear(&ctx);
    CHECK_EQ_INT(sw_tokenizer_from_json(&ctx, "/nonexistent/tokenizer.json", &t), SW_EIO);
    CHECK_CONTAINS(ctx.msg, "/nonexistent/tokenizer.json");
    CHECK(t == NULL);
    CHECK_EQ_INT(sw_tokenizer_from_json(&ctx, "/", &t), SW_EIO); /* a directory without tokenizer.json */
    CHECK_CONTAINS(ctx.msg, "//tokenizer.json");
    sw_tokenizer_free(NULL);
    CHECK_DONE();
}
