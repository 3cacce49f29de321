/* tokenizer.h — text <-> token ids, exactly as Hugging Face `tokenizers` does.
 *
 * Two families, one engine (a BPE model behind a pipeline of steps):
 *   - byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM): text bytes map to 256
 *     printable characters, pre-tokenizer regexes cut words, merges by rank;
 *   - SentencePiece-style BPE (Llama 2, Mistral): spaces become "▁", merges by
 *     rank or by piece score, unknown characters fall back to <0xNN> tokens.
 * Sources: a tokenizer.json (optionally next to a tokenizer_config.json for
 * bos/eos/pad and the chat template), or the tokenizer.ggml.* keys of a GGUF.
 *
 * encode() follows HF's order: added tokens are cut out of the raw text first
 * (special tokens in the text are always recognised, as in HF), the rest is
 * normalized and pre-tokenized, each piece runs through the model, and
 * add_special applies the post-processor (BOS etc.). decode() returns what HF's
 * decode() returns: valid UTF-8, with U+FFFD where token bytes do not form it.
 *
 * Input text need not be valid UTF-8: invalid bytes never match a regex or an
 * added token and are encoded one byte at a time (the byte's own token in a
 * byte-level vocabulary, <0xNN> with byte fallback, else the unknown token).
 *
 * Ids are 0-based int32 everywhere. A tokenizer is immutable once loaded:
 * any number of threads may encode and decode with it at once.
 */
#ifndef SW_TOKENIZER_H
#define SW_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "gguf.h"

typedef struct sw_tokenizer sw_tokenizer;

/* path: a tokenizer.json, or a directory holding one (and perhaps a
 * tokenizer_config.json). Errors name the file and the JSON field at fault:
 * "tokenizer.json: model.merges[12]: 'Ġx' is not in the vocabulary". */
sw_status sw_tokenizer_from_json(sw_ctx *ctx, const char *path, sw_tokenizer **out);

/* The same from memory. config_json (tokenizer_config.json) may be NULL;
 * name is used in messages ("tokenizer.json" when NULL). */
sw_status sw_tokenizer_from_json_text(sw_ctx *ctx, const char *json, size_t len,
                                      const char *config_json, size_t config_len,
                                      const char *name, sw_tokenizer **out);

/* From a GGUF's metadata: tokenizer.ggml.model "gpt2" (byte-level BPE; the
 * pre-tokenizer from tokenizer.ggml.pre: "smollm", "llama-bpe", "qwen2",
 * "gpt-2"/"default", ...) or "llama" (SentencePiece with scores and byte
 * fallback). Control and user-defined tokens become added tokens (control ones
 * special); bos/eos/pad/add_bos_token/add_eos_token and the chat template are
 * read when present. The tokenizer copies what it needs: g may be closed after. */
sw_status sw_tokenizer_from_gguf(sw_ctx *ctx, const sw_gguf *g, sw_tokenizer **out);

void sw_tokenizer_free(sw_tokenizer *tok); /* NULL is fine */

/* *ids is malloc'd (free() it), even when *n is 0. add_special: apply the
 * post-processor (tokenizer.json) or add_bos/add_eos (GGUF). SW_EINTR if
 * Ctrl-C is pressed during a long text; nothing is returned then. */
sw_status sw_tokenizer_encode(sw_ctx *ctx, const sw_tokenizer *tok, const char *text, size_t len,
                              bool add_special, int32_t **ids, int64_t *n);

/* Where each token sits in the text: bytes [begin, end) of the input. */
typedef struct sw_token_offset {
    int64_t begin, end;
} sw_token_offset;

/* sw_tokenizer_encode (the same ids, always) plus each token's byte range in
 * the text; *offsets is malloc'd like *ids. The ranges come from lining each
 * token's bytes (sw_tokenizer_token_bytes) up with the text, in order. That is
 * exact for byte-level vocabularies, whose tokens tile the text; for
 * SentencePiece a space the normalizer prepended ("▁hi" for "hi") maps to no
 * byte, whitespace an added token stripped goes to the token after it, an
 * unknown token covers the text up to the next token, and tokens the
 * post-processor added (add_special) are empty ranges at 0 or at len. Text
 * that a normalizer changed in other ways cannot be lined up: that is
 * SW_EUNSUPPORTED naming the token, never a guess. */
sw_status sw_tokenizer_encode_offsets(sw_ctx *ctx, const sw_tokenizer *tok, const char *text, size_t len,
                                      bool add_special, int32_t **ids, sw_token_offset **offsets, int64_t *n);

/* *out is malloc'd and NUL-terminated; *len excludes the NUL. An id outside
 * 0..vocab_size-1 (or a hole in the vocabulary) is SW_EINVAL naming its index. */
sw_status sw_tokenizer_decode(sw_ctx *ctx, const sw_tokenizer *tok, const int32_t *ids, int64_t n,
                              bool skip_special, char **out, size_t *len);

/* ---- vocabulary ---------------------------------------------------------- */

/* Highest id + 1, added tokens included (what an embedding table needs). */
int32_t sw_tokenizer_vocab_size(const sw_tokenizer *tok);

/* The token's string as stored in the vocabulary ("Ġhello", "▁the",
 * "<0x0A>", "<|im_end|>"); NULL for an id that names no token. Not
 * NUL-terminated in general: use *len. */
const char *sw_tokenizer_piece(const sw_tokenizer *tok, int32_t id, size_t *len);

/* The bytes the token stands for inside a text (" hello", "\n", "<|im_end|>"):
 * byte-level characters mapped back, "▁" as a space, <0xNN> as that byte. A
 * token may hold part of a UTF-8 character: a streaming printer concatenates
 * these and prints whole characters. Decoder steps that look at the whole
 * text (dropping the leading space that SentencePiece adds) are not applied.
 * NULL for an id that names no token. */
const char *sw_tokenizer_token_bytes(const sw_tokenizer *tok, int32_t id, size_t *len);

/* The id of a piece ("Ġhello"); failing that, of the piece these text bytes
 * would be stored as (" hello" -> "Ġhello" or "▁hello"). -1 if none. */
int32_t sw_tokenizer_id(const sw_tokenizer *tok, const char *s, size_t len);

bool sw_tokenizer_is_special(const sw_tokenizer *tok, int32_t id);

/* Well-known ids, -1 when the tokenizer has none. */
int32_t sw_tokenizer_bos(const sw_tokenizer *tok);
int32_t sw_tokenizer_eos(const sw_tokenizer *tok);
int32_t sw_tokenizer_pad(const sw_tokenizer *tok);
int32_t sw_tokenizer_unk(const sw_tokenizer *tok);

/* The Jinja chat template (tokenizer_config.json or tokenizer.chat_template),
 * NULL if none. */
const char *sw_tokenizer_chat_template(const sw_tokenizer *tok);

/* One line for display: "byte-level BPE, 49152 tokens (17 special), pre-tokenizer smollm". */
const char *sw_tokenizer_describe(const sw_tokenizer *tok);

#endif
