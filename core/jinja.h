/* jinja.h — a Jinja template engine that renders as Python's jinja2 does
 * in the environment Hugging Face's apply_chat_template builds:
 *
 *   ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
 *                                 extensions=[loopcontrols, {% generation %}])
 *   filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=, separators=, sort_keys=)
 *   globals: raise_exception(msg), strftime_now(fmt)
 *
 * plus jinja2's defaults: keep_trailing_newline=False, Undefined (falsy,
 * prints empty, fails on attribute access or arithmetic), the sandbox's
 * range() cap of 100000. What it covers is what chat templates use: see
 * jinja_parse.c for statements and expressions, jinja_filters.c for
 * filters, tests and methods.
 *
 * Compile once (sw_jinja_compile), then per render: an environment holding
 * the variables, then sw_jinja_render. Errors name the template and the
 * line:column: "chat template:3:17: unknown filter 'titel'".
 */
#ifndef SW_JINJA_H
#define SW_JINJA_H

#include <stdbool.h>
#include <stddef.h>

#include "ctx.h"

typedef struct sw_jinja sw_jinja;
typedef struct sw_jinja_env sw_jinja_env;

/* The most a render may write, and the most memory its values may take:
 * a template that loops forever or doubles a string stops with SW_EINVAL. */
#define SW_JINJA_MAX_OUTPUT ((size_t)128 << 20)
#define SW_JINJA_MAX_MEMORY ((size_t)1 << 30)

sw_status   sw_jinja_compile(sw_ctx *ctx, const char *source, const char *name, sw_jinja **out);
void        sw_jinja_free(sw_jinja *t);
const char *sw_jinja_source(const sw_jinja *t);
const char *sw_jinja_name(const sw_jinja *t);

/* Variables for one render. Setting a name twice replaces it. */
sw_status sw_jinja_env_new(sw_ctx *ctx, sw_jinja_env **out);
void      sw_jinja_env_free(sw_jinja_env *e);
sw_status sw_jinja_env_set_string(sw_ctx *ctx, sw_jinja_env *e, const char *name, const char *s);
sw_status sw_jinja_env_set_bool(sw_ctx *ctx, sw_jinja_env *e, const char *name, bool b);
sw_status sw_jinja_env_set_none(sw_ctx *ctx, sw_jinja_env *e, const char *name);
/* A JSON value (object, array, string...): how structured variables such
 * as messages with tool calls, or tools, come in. */
sw_status sw_jinja_env_set_json(sw_ctx *ctx, sw_jinja_env *e, const char *name, const char *json);
/* Every member of a JSON object, as variables. */
sw_status sw_jinja_env_set_json_object(sw_ctx *ctx, sw_jinja_env *e, const char *json);
/* strftime_now()'s clock, seconds since the epoch, formatted as UTC, so
 * tests get a fixed date; 0 (the default) reads the local clock as Python's
 * datetime.now() does. */
void sw_jinja_env_set_now(sw_jinja_env *e, long long epoch_seconds);

/* Lower (or restore, with 0) the caps above for renders with e: tests
 * use small ones to try runaway templates cheaply. */
void sw_jinja_env_set_limits(sw_jinja_env *e, size_t max_output, size_t max_memory);

/* Render. *out is malloc'd and NUL-terminated; *len excludes the NUL. A
 * template's raise_exception(msg) is SW_EINVAL, its message after the
 * template name and position. */
sw_status sw_jinja_render(sw_ctx *ctx, const sw_jinja *t, sw_jinja_env *e, char **out, size_t *len);

#endif
