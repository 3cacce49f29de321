/* tokenizer_impl.h — what the tokenizer files share; not a public header.
 *
 * tokenizer.c        object, vocabulary tables, the encode/decode pipeline
 * tokenizer_steps.c  normalizers, pre-tokenizers, decoders, regexes (PCRE2)
 * tokenizer_bpe.c    the BPE model: merges, byte-level alphabet, byte fallback
 * tokenizer_json.c   loading tokenizer.json / tokenizer_config.json (jansson)
 * tokenizer_gguf.c   loading tokenizer.ggml.* metadata
 * tokenizer_util.c   byte buffers, UTF-8, hash tables
 *
 * A loader fills an sw_tokenizer through the tk_* builder functions below and
 * calls tk_finish(), which builds the lookup tables and checks consistency.
 */
#ifndef SW_TOKENIZER_IMPL_H
#define SW_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "tokenizer.h"

/* ---- byte buffers, UTF-8 (tokenizer_util.c) --------------------------------- */

typedef struct tk_buf {
    char *p;
    size_t n, cap;
} tk_buf;

bool tk_buf_reserve(tk_buf *b, size_t extra);              /* false: out of memory */
bool tk_buf_put(tk_buf *b, const void *s, size_t n);
void tk_buf_free(tk_buf *b);

/* Length of the UTF-8 character at s[0..n), 1 for an invalid byte (which
 * *cp then holds as a negative number -1 - byte). n must be >= 1. */
int tk_utf8_next(const char *s, size_t n, int32_t *cp);
/* Start of the character that ends right before s[i] (i > 0). */
size_t tk_utf8_prev(const char *s, size_t i);
bool tk_utf8_valid(const char *s, size_t n);
/* Rust's String::from_utf8_lossy: each maximal invalid subsequence -> U+FFFD. */
bool tk_utf8_lossy(tk_buf *out, const char *s, size_t n);
/* Unicode White_Space (what Rust's char::is_whitespace and \s in HF mean). */
bool tk_is_space(int32_t cp);

/* A string table: strings by index, stored in one blob. Holes have len 0 and
 * off UINT32_MAX. */
typedef struct tk_strtab {
    tk_buf blob;
    uint32_t *off, *len;
    int32_t n, cap;
} tk_strtab;

bool tk_strtab_set(tk_strtab *t, int32_t i, const char *s, size_t n); /* grows as needed */
bool tk_strtab_has(const tk_strtab *t, int32_t i);
const char *tk_strtab_get(const tk_strtab *t, int32_t i, size_t *len);
void tk_strtab_free(tk_strtab *t);

/* Open-addressing map from a table's strings to their index. */
typedef struct tk_strmap {
    int32_t *slot; /* index or -1 */
    uint32_t mask;
} tk_strmap;

/* False when out of memory. A string present twice maps to its later index
 * (as HF's HashMap does); the pair is reported in *dup_a < *dup_b (else -1). */
bool tk_strmap_build(tk_strmap *m, const tk_strtab *t, int32_t *dup_a, int32_t *dup_b);
int32_t tk_strmap_get(const tk_strmap *m, const tk_strtab *t, const char *s, size_t n);
void tk_strmap_free(tk_strmap *m);

/* (left id, right id) -> (rank, merged id). */
typedef struct tk_pairmap {
    uint64_t *key;
    uint32_t *rank;
    int32_t *merged;
    uint32_t mask, n;
} tk_pairmap;

bool tk_pairmap_init(tk_pairmap *m, size_t expected);
bool tk_pairmap_put(tk_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
bool tk_pairmap_get(const tk_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);
void tk_pairmap_free(tk_pairmap *m);

/* ---- regexes (tokenizer_steps.c) ------------------------------------------ */

typedef struct tk_regex tk_regex;
/* Compiles an HF/Oniguruma pattern with PCRE2 (UTF, UCP, invalid UTF-8
 * tolerated, JIT when available). `\s`/`\S` are rewritten to Unicode
 * White_Space, which is what Oniguruma means by them. literal: escape it. */
sw_status tk_regex_new(sw_ctx *ctx, const char *pat, size_t len, bool literal, tk_regex **out);
void tk_regex_free(tk_regex *re);
/* Does re match somewhere in s[0..n)? (False on errors.) */
bool tk_regex_matches(const tk_regex *re, const char *s, size_t n);

/* ---- steps ---------------------------------------------------------------- */

typedef enum { TK_SPLIT_REMOVED, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT,
               TK_SPLIT_CONTIGUOUS } tk_behavior;
typedef enum { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER } tk_prepend;

typedef enum { TK_N_PREPEND, TK_N_REPLACE, TK_N_STRIP } tk_norm_kind;
typedef struct tk_norm {
    tk_norm_kind kind;
    char *text;       /* PREPEND: what; REPLACE: the replacement */
    size_t text_len;
    tk_regex *re;     /* REPLACE */
    bool left, right; /* STRIP */
} tk_norm;

typedef enum { TK_P_SPLIT, TK_P_BYTELEVEL, TK_P_DIGITS, TK_P_METASPACE } tk_pre_kind;
typedef struct tk_pre {
    tk_pre_kind kind;
    tk_regex *re;           /* SPLIT, DIGITS, BYTELEVEL with use_regex */
    tk_behavior behavior;   /* SPLIT, DIGITS */
    bool invert;            /* SPLIT */
    bool add_prefix_space;  /* BYTELEVEL */
    char rep[8];            /* METASPACE replacement character, UTF-8 */
    int rep_len;
    tk_prepend prepend;     /* METASPACE */
    bool split;             /* METASPACE */
} tk_pre;

typedef enum { TK_D_BYTELEVEL, TK_D_REPLACE, TK_D_BYTEFALLBACK, TK_D_FUSE, TK_D_STRIP,
               TK_D_METASPACE } tk_dec_kind;
typedef struct tk_dec {
    tk_dec_kind kind;
    tk_regex *re;       /* REPLACE */
    char *text;         /* REPLACE: the replacement */
    size_t text_len;
    int32_t ch;         /* STRIP: the character */
    int start, stop;    /* STRIP */
    char rep[8];        /* METASPACE */
    int rep_len;
    tk_prepend prepend; /* METASPACE */
} tk_dec;

typedef struct tk_added {
    int32_t id;
    char *content;
    size_t len;
    char *norm;      /* content after the normalizer, for normalized tokens */
    size_t norm_len;
    bool special, lstrip, rstrip, single_word, normalized;
} tk_added;

/* ---- the object ------------------------------------------------------------ */

struct sw_tokenizer {
    /* model (BPE) */
    tk_strtab vocab;          /* model pieces by id */
    tk_strmap vmap;
    tk_pairmap merges;
    int32_t unk_id;           /* model's unk token, -1 if none */
    bool fuse_unk, byte_fallback, ignore_merges, byte_level;
    int32_t byte_id[256];     /* <0xNN> tokens (byte fallback), -1 if absent */

    /* added tokens */
    tk_added *added;
    int32_t n_added, cap_added;
    tk_strtab added_tab;      /* content by added index, for id lookup */
    tk_strmap added_map;
    int32_t next_added;       /* HF's next id for a new added token, -1 before the first */
    /* tokens to match in the raw text (pass 0) and the normalized text
     * (pass 1): added indices bucketed by first byte */
    int32_t *match_idx[2];
    int32_t match_first[2][257];
    tk_regex *word_char;      /* \w, for single_word tokens */

    /* pipeline */
    tk_norm *norm;
    int n_norm;
    tk_pre *pre;
    int n_pre;
    tk_dec *dec;
    int n_dec;
    bool has_decoder;
    int32_t *post_before, *post_after; /* ids around $A when add_special */
    int n_post_before, n_post_after;

    /* per id, built by tk_finish */
    int32_t n_vocab;          /* highest id + 1 */
    uint8_t *flags;           /* TK_F_* */
    tk_strtab bytes;          /* what each token stands for (token_bytes) */

    int32_t bos, eos, pad;
    char *chat_template;
    char describe[160];
    char kind[64];            /* "byte-level BPE" / "SentencePiece BPE" */
    char pre_name[48];        /* "smollm", "tokenizer.json", ... */
};

enum { TK_F_PRESENT = 1, TK_F_SPECIAL = 2, TK_F_ADDED = 4 };

/* ---- builders ---------------------------------------------------------------- */

sw_tokenizer *tk_new(void);
sw_status tk_add_piece(sw_ctx *ctx, sw_tokenizer *t, int32_t id, const char *s, size_t n);
/* Merges by strings, rank = call order; errors name `where`. */
sw_status tk_add_merge(sw_ctx *ctx, sw_tokenizer *t, const char *a, size_t alen, const char *b,
                       size_t blen, uint32_t rank, const char *where);
/* After the pieces: build the vocabulary map (needed by tk_add_merge). */
sw_status tk_index_vocab(sw_ctx *ctx, sw_tokenizer *t);
/* a->id >= 0: that id (GGUF). a->id < 0: HF's rule for tokenizer.json, where
 * a token takes its vocabulary id when its content is in the vocabulary,
 * else the next free id. Strings are copied. A content seen before updates
 * the earlier entry's flags. */
sw_status tk_add_added(sw_ctx *ctx, sw_tokenizer *t, const tk_added *a);
tk_norm *tk_push_norm(sw_tokenizer *t);
tk_pre *tk_push_pre(sw_tokenizer *t);
tk_dec *tk_push_dec(sw_tokenizer *t);
/* Merges from piece scores, SentencePiece-style (GGUF "llama"). */
sw_status tk_merges_from_scores(sw_ctx *ctx, sw_tokenizer *t, const float *scores, const uint8_t *mergeable);
/* Build per-id tables, added-token normal forms, byte tables; checks. */
sw_status tk_finish(sw_ctx *ctx, sw_tokenizer *t);

/* ---- pipeline pieces ---------------------------------------------------------- */

/* A list of text segments, each either plain text still to be processed or an
 * id already decided (an added token). */
/* Pushed strings are copied into the list's buffer: p must not point into it. */
typedef struct tk_seg {
    size_t off, len;   /* into the list's buffer */
    int32_t id;        /* -1: text */
    bool at_start;     /* starts at offset 0 of the original text */
} tk_seg;

typedef struct tk_segs {
    tk_buf text;
    tk_seg *v;
    size_t n, cap;
} tk_segs;

bool tk_segs_push(tk_segs *s, const char *p, size_t n, int32_t id, bool at_start);
void tk_segs_free(tk_segs *s);

sw_status tk_normalize(sw_ctx *ctx, const sw_tokenizer *t, const char *s, size_t n, tk_buf *out);
sw_status tk_pre_tokenize(sw_ctx *ctx, const sw_tokenizer *t, tk_segs *segs);
sw_status tk_decode_pieces(sw_ctx *ctx, const sw_tokenizer *t, tk_buf *pieces, const size_t *ends,
                           size_t n, tk_buf *out);
void tk_steps_free(sw_tokenizer *t);

/* The BPE model on one pre-tokenized word; appends ids. */
sw_status tk_bpe_word(sw_ctx *ctx, const sw_tokenizer *t, const char *w, size_t n, int32_t **ids,
                      int64_t *n_ids, int64_t *cap);
/* Byte-level alphabet: byte -> UTF-8 of its character (1 or 2 bytes), and back. */
int tk_byte_to_char(uint8_t b, char out[2]);
int tk_char_to_byte(int32_t cp); /* -1 if not in the alphabet */

#endif
