"""Chat templates rendered by stepwise against Python jinja2, byte for byte.

data/chat_templates/ holds real models' templates (SOURCES.md says where
each is from) and, for each, <name>.expected.json: jinja2's renderings in
Hugging Face's environment over a set of conversations, made by
make_expected.py. Here stepwise renders the same conversations through
its Lua binding (sw.chat_template(source):apply(messages, opts)), as a
user's script would, and every output must match exactly; a conversation
jinja2 rejects must be rejected with the same message. The built-in
templates (sw.chat_template("chatml")...) are held to the renderings of
the fixtures they are copies of.
"""
import json
import pathlib
import subprocess

import pytest

DATA = pathlib.Path(__file__).resolve().parent / "data" / "chat_templates"
EXPECTED = sorted(DATA.glob("*.expected.json"))
# built-in name -> the fixture it is a copy of (see make_builtins.py)
BUILTINS = {"chatml": "chatml", "llama-3.1": "llama-3.1", "alpaca": "alpaca", "mistral": "mistral-nemo",
            "phi-3": "phi-3.5-mini", "gemma": "gemma-2"}

DRIVER = r"""
local t = {make}
local out = assert(io.open([==[{out}]==], "wb"))
local function put(tag, s) out:write(tag, "\n", #s, "\n", s, "\n") end
local cases = {{
{cases}
}}
for _, c in ipairs(cases) do
  local ok, r = pcall(t.apply, t, c[1], {{add_generation_prompt = c[2], bos_token = [==[{bos}]==],
                                         eos_token = [==[{eos}]==], now = {now}, vars = c[3]}})
  put(ok and "OK" or "ERR", tostring(r))
end
out:close()
"""


def lua_str(s):
    assert "]==]" not in s
    return "[==[" + s + "]==]"


def run_cases(stepwise_bin, tmp_path, exp, make):
    cases = ",\n".join("{%s, %s, %s}" % (lua_str(json.dumps(c["messages"], ensure_ascii=False)),
                                         "true" if c["add_generation_prompt"] else "false",
                                         lua_str(json.dumps(c["vars"], ensure_ascii=False)))
                       for c in exp["cases"])
    out = tmp_path / "out.bin"
    script = tmp_path / "drive.lua"
    script.write_text(DRIVER.format(make=make, out=out, cases=cases, bos=exp["bos_token"], eos=exp["eos_token"],
                                    now=exp["now"]), encoding="utf-8")
    r = subprocess.run([stepwise_bin, str(script)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    data, pos, results = out.read_bytes(), 0, []
    while pos < len(data):
        nl = data.index(b"\n", pos)
        tag = data[pos:nl].decode()
        nl2 = data.index(b"\n", nl + 1)
        n = int(data[nl + 1:nl2])
        results.append((tag, data[nl2 + 1:nl2 + 1 + n].decode("utf-8")))
        pos = nl2 + 2 + n
    assert len(results) == len(exp["cases"])
    return results


def compare(exp, results, label):
    bad = []
    for c, (tag, got) in zip(exp["cases"], results):
        if "output" in c:
            if tag != "OK":
                bad.append("%s/%s: expected output, got error: %s" % (label, c["name"], got))
            elif got != c["output"]:
                bad.append("%s/%s:\n  jinja2:   %r\n  stepwise: %r" % (label, c["name"], c["output"], got))
        elif tag != "ERR":
            bad.append("%s/%s: jinja2 raised %r, stepwise rendered %r" % (label, c["name"], c["error"], got))
        elif not got.endswith(": " + c["error"]):
            bad.append("%s/%s: error message differs:\n  jinja2:   %r\n  stepwise: %r" % (label, c["name"], c["error"], got))
    return bad


@pytest.mark.parametrize("path", EXPECTED, ids=lambda p: p.name.replace(".expected.json", ""))
def test_template_matches_jinja2(stepwise_bin, tmp_path, path):
    exp = json.loads(path.read_text(encoding="utf-8"))
    make = "sw.chat_template(assert(io.open([==[%s]==], 'rb')):read('a'), %s)" % (DATA / exp["template"],
                                                                               lua_str(exp["template"]))
    results = run_cases(stepwise_bin, tmp_path, exp, make)
    bad = compare(exp, results, path.stem)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_matches_jinja2(stepwise_bin, tmp_path, name):
    fixture = BUILTINS[name]
    exp = json.loads((DATA / (fixture + ".expected.json")).read_text(encoding="utf-8"))
    # the built-in's source is the fixture's, byte for byte
    src = tmp_path / "src.jinja"
    r = subprocess.run([stepwise_bin, "-e", "io.open([==[%s]==], 'wb'):write(sw.chat_template('%s'):source())"
                        % (src, name)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert src.read_bytes() == (DATA / (fixture + ".jinja")).read_bytes()
    results = run_cases(stepwise_bin, tmp_path, exp, "sw.chat_template('%s')" % name)
    bad = compare(exp, results, name)
    assert not bad, "\n".join(bad)


def test_messages_as_lua_tables(stepwise_bin):
    """Lua tables (not JSON text) for messages, tools and vars."""
    code = r"""
local t = sw.chat_template("llama-3.1")
local s = t:apply({{role = "system", content = "sys"}, {role = "user", content = "hi"}},
                  {add_generation_prompt = true, bos_token = "<B>", vars = {date_string = "02 Feb 2025"}})
assert(s == "<B><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n" ..
  "Today Date: 02 Feb 2025\n\nsys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>" ..
  "<|start_header_id|>assistant<|end_header_id|>\n\n", s)
local q = sw.chat_template("{{ tools|length }} {{ tools[0].function.name }} {{ messages[0].n + 1 }}")
assert(q:apply({{n = 41}}, {tools = {{type = "function", ["function"] = {name = "f"}}}}) == "1 f 42")
local ok, err = pcall(t.apply, t, {{role = "user", content = "x"}}, {add_generation_promt = true})
assert(not ok and err:find("did you mean 'add_generation_prompt'", 1, true), err)
print("ok")
"""
    r = subprocess.run([stepwise_bin, "-e", code], capture_output=True, timeout=60)
    assert r.returncode == 0 and b"ok" in r.stdout, r.stderr.decode(errors="replace")
