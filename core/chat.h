/* chat.h — rendering a conversation with a model's chat template.
 *
 * This is the small renderer for the common template families, recognised
 * from the template text: ChatML (SmolLM2, Qwen), Llama 3 headers, and
 * Llama 2 / Mistral [INST] blocks. A model whose template is none of these
 * gets a clear error; the full Jinja engine arrives with the data pipeline.
 */
#ifndef SW_CHAT_H
#define SW_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "ctx.h"

typedef struct sw_chat_msg {
    const char *role;     /* "system", "user", "assistant" */
    const char *content;
} sw_chat_msg;

typedef enum sw_chat_style { SW_CHAT_CHATML, SW_CHAT_LLAMA3, SW_CHAT_INST, SW_CHAT_UNKNOWN } sw_chat_style;

sw_chat_style sw_chat_detect(const char *tmpl);
/* *out is malloc'd, NUL-terminated. */
sw_status sw_chat_render(sw_ctx *ctx, const char *tmpl, const sw_chat_msg *msgs, int n, bool add_generation_prompt,
                         char **out, size_t *len);

#endif
