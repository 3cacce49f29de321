/* chat.h — a model's chat template, compiled once, applied to conversations.
 *
 * Templates are the Jinja source models ship (tokenizer_config.json's
 * chat_template, GGUF's tokenizer.chat_template), rendered with HF's
 * apply_chat_template semantics: variables messages, add_generation_prompt,
 * bos_token, eos_token. Built-in named templates serve models that carry
 * none: chatml, llama-3.1, alpaca, mistral, phi-3, gemma.
 */
#ifndef SW_CHAT_H
#define SW_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "ctx.h"

typedef struct sw_chat_msg {
    const char *role;     /* "system", "user", "assistant", "tool" */
    const char *content;
} sw_chat_msg;

typedef struct sw_chat_template sw_chat_template;

/* Compile Jinja source (see jinja.h for what the engine covers); name is
 * used in error messages ("chat template:3:17: unknown filter 'titel'"). */
sw_status sw_chat_template_new(sw_ctx *ctx, const char *source, const char *name, sw_chat_template **out);
/* A built-in template by name; an unknown name lists the known ones. */
sw_status sw_chat_template_builtin(sw_ctx *ctx, const char *name, sw_chat_template **out);
void      sw_chat_template_free(sw_chat_template *t);
const char *sw_chat_template_source(const sw_chat_template *t);

/* Render. bos/eos may be NULL (then empty strings). *out is malloc'd and
 * NUL-terminated. A template's raise_exception() is an SW_EINVAL error
 * carrying its message. The variables are what transformers passes:
 * messages, add_generation_prompt, bos_token, eos_token, tools=None,
 * documents=None. */
sw_status sw_chat_apply(sw_ctx *ctx, const sw_chat_template *t, const sw_chat_msg *msgs, int n,
                        bool add_generation_prompt, const char *bos, const char *eos, char **out, size_t *len);

/* The same with everything a template may read. */
typedef struct sw_chat_opts {
    bool add_generation_prompt;
    const char *bos_token, *eos_token; /* NULL: "" */
    /* More variables as one JSON object, e.g. {"tools": [...],
     * "date_string": "26 Jul 2024"}; they override the defaults. NULL: none. */
    const char *vars_json;
    /* strftime_now()'s clock in seconds since the epoch, formatted as UTC
     * (tests pin the date this way); 0: the local clock, as transformers. */
    long long now;
} sw_chat_opts;

/* messages_json: a JSON array of message objects (role, content, and
 * whatever else the template reads: tool_calls, name...). */
sw_status sw_chat_apply_json(sw_ctx *ctx, const sw_chat_template *t, const char *messages_json,
                             const sw_chat_opts *opts, char **out, size_t *len);

/* The built-in names, NULL-terminated. */
const char *const *sw_chat_builtin_names(void);

#endif
