/* test_text_jinja.c — the Jinja engine on its own: syntax errors name the
 * template and line:column, runaway templates end in errors (not hangs or
 * crashes), and each filter, test and method on small inputs. Byte-for-
 * byte agreement with Python jinja2 is tests/parity/test_jinja_engine.py
 * and test_chat_templates.py; these are the cases that need C (limits,
 * Ctrl-C, status codes) plus a quick table that runs without Python.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/chat.h"
#include "core/interrupt.h"
#include "core/jinja.h"

static const char *MSGS =
    "[{\"role\": \"system\", \"content\": \"  sys  \"}, {\"role\": \"user\", \"content\": \"h\\u00e9llo\"},"
    " {\"role\": \"assistant\", \"content\": \"hi\"}]";

/* Render src with messages=MSGS; returns the status, output or message in buf. */
static sw_status render_limits(const char *src, char *buf, size_t n, size_t max_out, size_t max_mem) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_jinja *t = NULL;
    sw_jinja_env *e = NULL;
    char *out = NULL;
    size_t len = 0;
    sw_status st = sw_jinja_compile(&ctx, src, "t", &t);
    if (!st) st = sw_jinja_env_new(&ctx, &e);
    if (!st) st = sw_jinja_env_set_json(&ctx, e, "messages", MSGS);
    if (!st) st = sw_jinja_env_set_json(&ctx, e, "d", "{\"a\": 1, \"b\": [1, 2]}");
    if (!st) {
        sw_jinja_env_set_now(e, 1721995200); /* 2024-07-26 12:00:00 UTC */
        sw_jinja_env_set_limits(e, max_out, max_mem);
        st = sw_jinja_render(&ctx, t, e, &out, &len);
    }
    snprintf(buf, n, "%s", st ? ctx.msg : out);
    if (!st) CHECK_EQ_INT(len, strlen(out));
    free(out);
    sw_jinja_env_free(e);
    sw_jinja_free(t);
    return st;
}

static sw_status render(const char *src, char *buf, size_t n) { return render_limits(src, buf, n, 0, 0); }

#define CHECK_RENDERS(src, want)                                                                              \
    do {                                                                                                       \
        char got_[4096];                                                                                       \
        sw_status st_ = render(src, got_, sizeof got_);                                                        \
        check_count++;                                                                                         \
        if (st_ || strcmp(got_, want)) {                                                                       \
            check_failures++;                                                                                  \
            fprintf(stderr, "%s:%d: %s\n  want: \"%s\"\n  got:  %s\"%s\"\n", __FILE__, __LINE__, src, want,     \
                    st_ ? "error " : "", got_);                                                                 \
        }                                                                                                      \
    } while (0)

#define CHECK_FAILS(src, status, msg)                                                                          \
    do {                                                                                                       \
        char got_[4096];                                                                                       \
        sw_status st_ = render(src, got_, sizeof got_);                                                        \
        check_count++;                                                                                         \
        if (st_ != (status) || !strstr(got_, msg)) {                                                           \
            check_failures++;                                                                                  \
            fprintf(stderr, "%s:%d: %s\n  want %s containing \"%s\"\n  got %s: \"%s\"\n", __FILE__, __LINE__, src, \
                    sw_status_name(status), msg, sw_status_name(st_), got_);                                   \
        }                                                                                                      \
    } while (0)

static void syntax_errors(void) {
    /* name:line:column of the offending token */
    CHECK_FAILS("a\n{{ x | titel }}", SW_EINVAL, "t:2:8: unknown filter 'titel'");
    CHECK_FAILS("{{ x is odder }}", SW_EINVAL, "t:1:9: unknown test 'odder'");
    CHECK_FAILS("{% if true %}\nnever closed", SW_EINVAL, "t:2:13: unexpected end of template; expected 'elif' or 'else' or 'endif'");
    CHECK_FAILS("{% for x in y %}{% endif %}", SW_EINVAL, "t:1:20: unexpected 'endif'");
    CHECK_FAILS("{{ 1 + }}", SW_EINVAL, "t:1:8: unexpected '}}'");
    CHECK_FAILS("{{ 'open }}", SW_EINVAL, "t:1:4: unterminated string");
    CHECK_FAILS("{{ x ", SW_EINVAL, "t:1:1: unexpected end of template: '{{' was never closed");
    CHECK_FAILS("{# never closed", SW_EINVAL, "t:1:1: missing end of comment tag");
    CHECK_FAILS("{% include 'x.jinja' %}", SW_EINVAL, "t:1:4: unknown or unsupported tag 'include'");
    CHECK_FAILS("{% break %}", SW_EINVAL, "t:1:4: 'break' outside of a loop");
    CHECK_FAILS("{{ (1 }}", SW_EINVAL, "unexpected '}'");
    CHECK_FAILS("{{ 1 ]] }}", SW_EINVAL, "t:1:6: unexpected ']'");
    CHECK_FAILS("{{ a @ b }}", SW_EINVAL, "t:1:6: unexpected character '@'");
    CHECK_FAILS("{% set x %}unclosed", SW_EINVAL, "expected 'endset'");
    CHECK_FAILS("{% macro m(a=1, b) %}{% endmacro %}", SW_EINVAL, "without a default follows");
    CHECK_FAILS("{{ 99999999999999999999 }}", SW_EINVAL, "too large");
    CHECK_FAILS("{{ f(a=1, 2) }}", SW_EINVAL, "positional argument follows a keyword argument");
}

static void runtime_errors(void) {
    CHECK_FAILS("{{ raise_exception('Roles must alternate') }}", SW_EINVAL, "t:1:4: Roles must alternate");
    CHECK_FAILS("x\n  {{ y.z }}", SW_EINVAL, "t:2:7: 'y' is undefined");
    CHECK_FAILS("{{ messages[0].nope.x }}", SW_EINVAL, "'dict object' has no attribute 'nope'");
    CHECK_FAILS("{{ messages[9].role }}", SW_EINVAL, "list object has no element 9");
    CHECK_FAILS("{{ 'a' + 1 }}", SW_EINVAL, "can only concatenate str (not \"int\") to str");
    CHECK_FAILS("{{ 1 / 0 }}", SW_EINVAL, "division by zero");
    CHECK_FAILS("{{ [].append(1) }}", SW_EINVAL, "access to attribute 'append' of 'list' object is unsafe.");
    CHECK_FAILS("{{ x|tojson }}", SW_EINVAL, "Object of type Undefined is not JSON serializable");
    CHECK_FAILS("{{ 9223372036854775807 + 1 }}", SW_EINVAL, "integer overflow");
    CHECK_FAILS("{% set x.y = 1 %}", SW_EINVAL, "cannot assign attribute on non-namespace object");
    CHECK_FAILS("{{ 'x'|length > 'y' }}", SW_EINVAL, "'>' not supported between instances of 'int' and 'str'");
}

static void runaway(void) {
    char got[512];
    /* expression nesting: an error, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 16);
    strcpy(deep, "{{ ");
    for (size_t i = 0; i < depth; i++) strcat(deep + 3 + i, "(");
    memset(deep + 3, '(', depth);
    deep[3 + depth] = '1';
    memset(deep + 4 + depth, ')', depth);
    strcpy(deep + 4 + 2 * depth, " }}");
    CHECK(render(deep, got, sizeof got) == SW_EINVAL);
    CHECK_CONTAINS(got, "nested too deeply");
    /* block nesting */
    char *blocks = malloc(20000 * 14 + 1), *p = blocks;
    for (int i = 0; i < 10000; i++) p += sprintf(p, "{%% if 1 %%}");
    CHECK(render(blocks, got, sizeof got) == SW_EINVAL);
    CHECK_CONTAINS(got, "nested too deeply");
    free(deep);
    free(blocks);
    /* unary minus chains and not chains */
    char chain[30000];
    memset(chain, '-', sizeof chain);
    memcpy(chain, "{{ ", 3);
    strcpy(chain + sizeof chain - 6, "1 }}");
    CHECK(render(chain, got, sizeof got) == SW_EINVAL);
    /* recursion through macros */
    CHECK_FAILS("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", SW_EINVAL, "macro calls nested more than 64 deep");
    /* huge loops: range is capped as jinja2's sandbox caps it, and total iterations are capped */
    CHECK_FAILS("{% for i in range(1000000) %}{% endfor %}", SW_EINVAL, "Range too big");
    CHECK_FAILS("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", SW_EINVAL,
                "loop iterations");
    /* Ctrl-C stops a long loop */
    sw_interrupt_raise();
    CHECK_FAILS("{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}", SW_EINTR, "interrupted");
    sw_interrupt_clear();
    /* output and memory caps */
    CHECK(render_limits("{% for i in range(100000) %}0123456789{% endfor %}", got, sizeof got, 65536, 0) == SW_EINVAL);
    CHECK_CONTAINS(got, "output larger than 64 KiB");
    CHECK(render_limits("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                        got, sizeof got, 0, 1 << 20) == SW_EINVAL);
    CHECK_CONTAINS(got, "more than 1024 KiB of memory");
    CHECK_FAILS("{{ 'x' * 1000000000000 }}", SW_EINVAL, "repetition too large");
    /* a loop under the caps still runs */
    CHECK_RENDERS("{% set ns = namespace(n=0) %}{% for i in range(1000) %}{% for j in range(100) %}"
                  "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}", "100000");
}

static void filters_and_tests(void) {
    static const char *const cases[][2] = {
        {"{{ ' a \\n'|trim }}|{{ 'xax'|trim('x') }}", "a|a"},
        {"{{ 'ab'|upper }}{{ 'AB'|lower }} {{ 'hi there-x'|title }} {{ 'hI'|capitalize }}", "ABab Hi There-X Hi"},
        {"{{ 'a-b'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }}", "a+b bba"},
        {"{{ [1, 2]|length }} {{ 'héllo'|count }} {{ d|length }} {{ nope|length }}", "2 5 2 0"},
        {"{{ [1, 2]|first }} {{ [1, 2]|last }} {{ 'abc'|first }}", "1 2 a"},
        {"{{ [1, 2]|join(',') }} {{ messages|join('/', attribute='role') }}", "1,2 system/user/assistant"},
        {"{{ nope|default('d') }} {{ ''|d('e', true) }} {{ 0|default(5) }}", "d e 0"},
        {"{{ '42'|int + 1 }} {{ '4.5'|float }} {{ 'x'|int(-1) }} {{ 3.7|int }}", "43 4.5 -1 3"},
        {"{{ 5|string ~ 'x' }} {{ [1]|string }} {{ 'a'|list }} {{ 'a'|safe }}", "5x [1] ['a'] a"},
        {"{{ d|tojson }} {{ d|tojson(indent=1) }} {{ 'é\"'|tojson }}", "{\"a\": 1, \"b\": [1, 2]} {\n \"a\": 1,\n \"b\": [\n  1,\n  2\n ]\n} \"é\\\"\""},
        {"{{ d|items|list }} {{ d.items()|list }}", "[('a', 1), ('b', [1, 2])] [('a', 1), ('b', [1, 2])]"},
        {"{{ messages|selectattr('role', 'eq', 'user')|map(attribute='content')|first }}", "héllo"},
        {"{{ messages|rejectattr('role', 'in', ['user', 'system'])|list|length }}", "1"},
        {"{{ [1, 2, 3]|select('odd')|list }} {{ [1, 2, 3]|reject('odd')|list }}", "[1, 3] [2]"},
        {"{{ ['a', 'b']|map('upper')|join }} {{ [-1.5]|map('abs')|list }}", "AB [1.5]"},
        {"{{ 2.5|round }} {{ 2.567|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ -3|abs }}", "2.0 2.57 3.0 3"},
        {"{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(true) }} {{ [1, 1, 2]|unique|list }}", "[1, 2, 3] [3, 2, 1] [1, 2]"},
        {"{{ [1, 2]|reverse|list }} {{ 'ab'|reverse }} {{ [1, 3, 2]|max }} {{ [2, 1]|min }} {{ [1, 2]|sum }}", "[2, 1] ba 3 1 3"},
        {"{{ 'a\\nb'|indent(2) }}|{{ '<&>'|escape }}|{{ 'a b'|wordcount }}|{{ d|dictsort }}", "a\n  b|&lt;&amp;&gt;|2|[('a', 1), ('b', [1, 2])]"},
        {"{{ nope is defined }}{{ nope is undefined }}{{ none is none }}{{ 1 is number }}{{ 1.0 is float }}{{ 1 is integer }}",
         "FalseTrueTrueTrueTrueTrue"},
        {"{{ 's' is string }}{{ d is mapping }}{{ 's' is iterable }}{{ 1 is iterable }}{{ 's' is sequence }}{{ true is boolean }}",
         "TrueTrueTrueFalseTrueTrue"},
        {"{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 2 is gt 1 }}{{ 1 is in [1] }}",
         "TrueFalseTrueTrueFalseTrueTrue"},
        {"{{ true is true }}{{ 0 is false }}{{ 'a' is lower }}{{ 'A' is upper }}{{ range is callable }}", "TrueFalseTrueTrueTrue"},
        {"{{ ' a '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'ab'.startswith('a') }}|{{ 'ab'.endswith('a') }}",
         "a|['a', 'b']|True|False"},
        {"{{ 'a b'.title() }} {{ 'ab'.upper() }} {{ 'x-y'.replace('-', '') }} {{ '{}!'.format(1) }} {{ d.get('zz', 0) }}",
         "A B AB xy 1! 0"},
        {"{{ d.keys()|list }} {{ d.values()|list }} {{ 'hello'.find('l') }} {{ '-'.join(['a', 'b']) }}",
         "['a', 'b'] [1, [1, 2]] 2 a-b"},
        {"{{ range(3)|list }} {{ namespace(a=1).a }} {{ dict(x=1) }} {{ strftime_now('%Y-%m-%d') }}",
         "[0, 1, 2] 1 {'x': 1} 2024-07-26"},
        {"{% for m in messages %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }} {% endfor %}",
         "1TrueFalse33 2FalseFalse32 3FalseTrue31 "},
        {"  {% if true %}\n  x\n  {% endif %}\n{{- ' y ' -}}\n z", "  x\n y z"},
        {"{{ messages[0].content|trim }}{{ messages[-1]['role'] }}{{ messages[1:]|length }}{{ 'héllo'[::-1] }}",
         "sysassistant2olléh"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK_RENDERS(cases[i][0], cases[i][1]);
}

static void chat_api(void) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_chat_template *t;
    char *out;
    size_t len;
    CHECK(sw_chat_template_builtin(&ctx, "chatml", &t) == SW_OK);
    sw_chat_msg m[] = {{"user", "Hi"}};
    CHECK(sw_chat_apply(&ctx, t, m, 1, true, NULL, NULL, &out, &len) == SW_OK);
    CHECK(!strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    CHECK_EQ_INT(len, strlen(out));
    free(out);
    sw_chat_template_free(t);
    /* every built-in compiles and renders a two-turn conversation */
    for (const char *const *n = sw_chat_builtin_names(); *n; n++) {
        sw_chat_msg two[] = {{"user", "Hi"}, {"assistant", "Hello"}};
        CHECK(sw_chat_template_builtin(&ctx, *n, &t) == SW_OK);
        CHECK(sw_chat_apply(&ctx, t, two, 2, false, "<s>", "</s>", &out, &len) == SW_OK);
        CHECK(out && strstr(out, "Hello"));
        free(out);
        sw_chat_template_free(t);
    }
    CHECK(sw_chat_template_builtin(&ctx, "nope", &t) == SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "unknown chat template 'nope' (known: chatml, llama-3.1, alpaca, mistral, phi-3, gemma)");
    /* raise_exception is SW_EINVAL carrying the template's message */
    CHECK(sw_chat_template_builtin(&ctx, "gemma", &t) == SW_OK);
    sw_chat_msg sys[] = {{"system", "x"}, {"user", "y"}};
    CHECK(sw_chat_apply(&ctx, t, sys, 2, true, "<bos>", "<eos>", &out, &len) == SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "gemma:1:");
    CHECK_CONTAINS(ctx.msg, ": System role not supported");
    sw_chat_template_free(t);
    /* JSON messages and variables */
    CHECK(sw_chat_template_new(&ctx, "{{ messages[0].tool_calls[0].name }} {{ tools|length }} {{ date_string }}", "j", &t) == SW_OK);
    sw_chat_opts o = {.vars_json = "{\"tools\": [1, 2], \"date_string\": \"today\"}"};
    CHECK(sw_chat_apply_json(&ctx, t, "[{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\"}]}]", &o, &out, &len) == SW_OK);
    CHECK(out && !strcmp(out, "f 2 today"));
    free(out);
    CHECK(sw_chat_apply_json(&ctx, t, "[{\"role\": ", &o, &out, &len) == SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "messages: bad JSON");
    sw_chat_template_free(t);
    /* a compile error names the template */
    CHECK(sw_chat_template_new(&ctx, "{{ x|nofilter }}", "chat template", &t) == SW_EINVAL);
    CHECK_CONTAINS(ctx.msg, "chat template:1:6: unknown filter 'nofilter'");
    CHECK(t == NULL);
    sw_chat_template_free(NULL);
    sw_jinja_free(NULL);
    sw_jinja_env_free(NULL);
}

int main(void) {
    syntax_errors();
    runtime_errors();
    runaway();
    filters_and_tests();
    chat_api();
    CHECK_DONE();
}
