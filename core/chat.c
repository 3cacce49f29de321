/* chat.c — chat templates (chat.h) over the Jinja engine (jinja.h).
 *
 * A template is compiled once; each apply builds a fresh environment with
 * the variables transformers' apply_chat_template passes (messages,
 * add_generation_prompt, bos_token, eos_token, tools=None,
 * documents=None) and renders. The built-in templates are in
 * chat_builtin.c.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "jinja_impl.h"

struct sw_chat_template {
    sw_jinja *j;
};

/* chat_builtin.c */
extern const char *const sw_chat_builtin_name[];
extern const char *const sw_chat_builtin_source[];

sw_status sw_chat_template_new(sw_ctx *ctx, const char *source, const char *name, sw_chat_template **out) {
    *out = NULL;
    if (!source) return sw_err(ctx, SW_EINVAL, "%s: no template source", name ? name : "chat template");
    sw_chat_template *t = calloc(1, sizeof *t);
    if (!t) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    sw_status st = sw_jinja_compile(ctx, source, name ? name : "chat template", &t->j);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    return SW_OK;
}

const char *const *sw_chat_builtin_names(void) { return sw_chat_builtin_name; }

sw_status sw_chat_template_builtin(sw_ctx *ctx, const char *name, sw_chat_template **out) {
    *out = NULL;
    for (int i = 0; sw_chat_builtin_name[i]; i++)
        if (!strcmp(sw_chat_builtin_name[i], name)) return sw_chat_template_new(ctx, sw_chat_builtin_source[i], name, out);
    char known[256] = "";
    for (int i = 0; sw_chat_builtin_name[i]; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", sw_chat_builtin_name[i]);
    return sw_err(ctx, SW_EINVAL, "unknown chat template '%s' (known: %s)", name, known);
}

void sw_chat_template_free(sw_chat_template *t) {
    if (!t) return;
    sw_jinja_free(t->j);
    free(t);
}

const char *sw_chat_template_source(const sw_chat_template *t) { return sw_jinja_source(t->j); }

/* The defaults transformers passes, then the caller's. */
static sw_status setup(sw_ctx *ctx, sw_jinja_env *e, const sw_chat_opts *o) {
    sw_status st;
    if ((st = sw_jinja_env_set_none(ctx, e, "tools")) || (st = sw_jinja_env_set_none(ctx, e, "documents")) ||
        (st = sw_jinja_env_set_bool(ctx, e, "add_generation_prompt", o->add_generation_prompt)) ||
        (st = sw_jinja_env_set_string(ctx, e, "bos_token", o->bos_token ? o->bos_token : "")) ||
        (st = sw_jinja_env_set_string(ctx, e, "eos_token", o->eos_token ? o->eos_token : "")))
        return st;
    if (o->vars_json && (st = sw_jinja_env_set_json_object(ctx, e, o->vars_json))) return st;
    sw_jinja_env_set_now(e, o->now);
    return SW_OK;
}

static sw_status render(sw_ctx *ctx, const sw_chat_template *t, sw_jinja_env *e, char **out, size_t *len) {
    size_t n = 0;
    sw_status st = sw_jinja_render(ctx, t->j, e, out, &n);
    if (len) *len = n;
    return st;
}

sw_status sw_chat_apply_json(sw_ctx *ctx, const sw_chat_template *t, const char *messages_json,
                             const sw_chat_opts *opts, char **out, size_t *len) {
    *out = NULL;
    sw_chat_opts none = {0};
    sw_jinja_env *e;
    sw_status st = sw_jinja_env_new(ctx, &e);
    if (st) return st;
    if (!(st = setup(ctx, e, opts ? opts : &none)) && !(st = sw_jinja_env_set_json(ctx, e, "messages", messages_json)))
        st = render(ctx, t, e, out, len);
    sw_jinja_env_free(e);
    return st;
}

sw_status sw_chat_apply(sw_ctx *ctx, const sw_chat_template *t, const sw_chat_msg *msgs, int n,
                        bool add_generation_prompt, const char *bos, const char *eos, char **out, size_t *len) {
    *out = NULL;
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return sw_err(ctx, SW_EINVAL, "message %d: role and content must be set", i + 1);
    sw_chat_opts o = {.add_generation_prompt = add_generation_prompt, .bos_token = bos, .eos_token = eos};
    sw_jinja_env *e;
    sw_status st = sw_jinja_env_new(ctx, &e);
    if (st) return st;
    if ((st = setup(ctx, e, &o))) goto done;
    /* messages: a list of {role, content} dicts, built directly */
    jn_arena *a = &e->arena;
    jv list = jv_list(a, n), role = jv_cstr(a, "role"), content = jv_cstr(a, "content");
    if (list.t != JV_LIST || role.t != JV_STR || content.t != JV_STR) goto oom;
    for (int i = 0; i < n; i++) {
        jv d = jv_dict(a, 2), r = jv_cstr(a, msgs[i].role), c = jv_cstr(a, msgs[i].content);
        if (d.t != JV_DICT || r.t != JV_STR || c.t != JV_STR || !jv_dict_set(a, d, role, r) || !jv_dict_set(a, d, content, c))
            goto oom;
        list.u.l->v[list.u.l->n++] = d;
    }
    if ((st = jn_env_set(ctx, e, "messages", list))) goto done;
    st = render(ctx, t, e, out, len);
    goto done;
oom:
    st = sw_err(ctx, SW_ENOMEM, "host out of memory");
done:
    sw_jinja_env_free(e);
    return st;
}
