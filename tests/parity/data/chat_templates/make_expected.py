"""Render every chat template here with Python's jinja2, the way Hugging
Face's apply_chat_template does, over a fixed set of conversations, and
write <template>.expected.json next to each: what stepwise must produce
byte for byte (tests/parity/test_chat_templates.py).

The environment is transformers' _compile_jinja_template (see
transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks, the loopcontrols extension and the
{% generation %} tag, tojson as json.dumps(ensure_ascii=False, ...),
raise_exception and strftime_now globals. strftime_now reads a fixed
clock (NOW, which stepwise gets as `now`), so the outputs do not change
with the day. Render variables are what apply_chat_template passes:
messages, tools=None, documents=None, add_generation_prompt, and the
tokenizer's special tokens (bos_token, eos_token).

    /work/main/.venv/bin/python tests/parity/data/chat_templates/make_expected.py
"""
import datetime
import json
import pathlib

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent
NOW = 1721995200  # 2024-07-26 12:00:00 UTC

# template file stem -> the special tokens its tokenizer has
TOKENS = {
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama-3.1": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2": ("<|begin_of_text|>", "<|eot_id|>"),
    "qwen2.5": ("", "<|im_end|>"),
    "qwen3": ("", "<|im_end|>"),
    "mistral-nemo": ("<s>", "</s>"),
    "phi-3.5-mini": ("<s>", "<|endoftext|>"),
    "gemma-2": ("<bos>", "<eos>"),
    "chatml": ("<s>", "</s>"),
    "alpaca": ("<s>", "</s>"),
    # more templates, for the engine's coverage (macros, Markup, tools...)
    "gpt-oss": ("<|startoftext|>", "<|return|>"),
    "mistral-small-3.2": ("<s>", "</s>"),
    "functionary-3.1": ("<|begin_of_text|>", "<|eot_id|>"),
    "deepseek-r1-distill": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "granite-3.3": ("<|end_of_text|>", "<|end_of_text|>"),
    "kimi-k2": ("[BOS]", "[EOS]"),
}

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city, in \"metric\" units",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"},
                           "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
            "required": ["city"],
        },
    },
}]

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}

CASES = [
    ("user", [U("Hello!")], True, None),
    ("user-no-gen", [U("Hello!")], False, None),
    ("system-user", [S("You are a pirate."), U("Where is the treasure?")], True, None),
    ("multi-turn", [S("Be brief."), U("Hi"), A("Hello. How can I help?"), U("What is 2+2?")], True, None),
    ("multi-turn-no-system", [U("Hi"), A("Hello!"), U("Bye"), A("Goodbye.")], False, None),
    ("unicode", [U("Grüße, 世界! 🙂 naïve café — ‘quotes’ «ёлка» Ελληνικά"), A("¡Olá! ✓")], True, None),
    ("quotes-braces", [U("He said \"hi\" and 'bye' {{ not a tag }} {% if %} {# c #} \\back\\slash\n\nnew\tlines"),
                       A("}} {{ ok ]] [[")], True, None),
    ("empty-content", [U("")], True, None),
    ("padded", [S("  padded system \n"), U("\n  padded user  \n\n"), A("  padded answer ")], False, None),
    ("two-users", [U("first"), U("second")], True, None),
    ("system-only", [S("Only a system message.")], True, None),
    ("empty", [], True, None),
    ("leading-assistant", [A("I speak first."), U("ok")], True, None),
    ("tools", [U("Weather in Paris?")], True, {"tools": TOOLS}),
    ("tool-call", [U("Weather in Paris?"),
                   {"role": "assistant", "content": "",
                    "tool_calls": [{"id": "call12345", "type": "function",
                                    "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
                   {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
                    "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
                   A("It is 21.5 °C and clear.")], False, {"tools": TOOLS}),
    ("date-string", [U("What day is it?")], True, {"date_string": "01 Jan 2025"}),
    ("long", [m for i in range(12) for m in (U("question %d" % i), A("answer %d" % i))], True, None),
]


class Generation(jinja2.ext.Extension):
    """transformers' AssistantTracker: {% generation %}...{% endgeneration %}
    marks assistant text and renders its body unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, bos, eos, messages, gen, extra):
    kwargs = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": gen,
              "bos_token": bos, "eos_token": eos}
    kwargs.update(extra or {})
    try:
        return {"output": env.from_string(source).render(**kwargs)}
    except jinja2.exceptions.TemplateError as e:
        kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        return {"error": str(e), "kind": kind}
    except Exception as e:  # a template bug jinja2 hits as a Python error (TypeError...)
        return {"error": str(e), "kind": type(e).__name__}


def main():
    env = environment()
    for path in sorted(HERE.glob("*.jinja")):
        bos, eos = TOKENS[path.stem]
        source = path.read_text()
        cases = []
        for name, messages, gen, extra in CASES:
            case = {"name": name, "messages": messages, "add_generation_prompt": gen, "vars": extra or {}}
            case.update(render(env, source, bos, eos, messages, gen, extra))
            cases.append(case)
        out = {"template": path.name, "bos_token": bos, "eos_token": eos, "now": NOW,
               "jinja2": jinja2.__version__, "cases": cases}
        (HERE / (path.stem + ".expected.json")).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        print("%-14s %d cases, %d errors" % (path.stem, len(cases), sum("error" in c for c in cases)))


if __name__ == "__main__":
    main()
