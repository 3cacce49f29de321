"""Dataset masks against an independent reference: Jinja2 renders the chat
template as transformers' apply_chat_template does, Hugging Face `tokenizers`
tokenizes and gives character offsets, and the trained spans are worked out
here again from those two. For each template:

  - the token ids stepwise keeps equal HF's encoding of the rendered text;
  - every run of trained tokens decodes to exactly one assistant message's
    content followed by the end-of-turn marker, in order, one run per message;
  - the masked runs and the trained runs, interleaved, give back the whole
    rendered text (byte-level vocabularies, whose decode is exact);
  - for SmolLM2's own template (Jinja source from the GGUF) the labels equal,
    token for token, the labels computed here from Jinja2 + HF offsets.

Templates: SmolLM2's (auto), and the built-ins chatml (SmolLM2's vocabulary),
llama-3.1 (Llama 3's) and mistral (Mistral's SentencePiece vocabulary).
"""
import json
import pathlib
import subprocess

import pytest
from tokenizers import Tokenizer

import tokenizer_refs as refs

RECORDS = [
    [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris"}],
    [{"role": "system", "content": "You answer in one word."},
     {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 12345 + 1?"}, {"role": "assistant", "content": "12346"}],
    [{"role": "user", "content": "Say hello in Japanese and add an emoji."},
     {"role": "assistant", "content": "こんにちは 🚀 — Café déjà vu"}],
    [{"role": "user", "content": "Write a function."},
     {"role": "assistant", "content": "def f(x):\n    return x * 2\n\nprint(f(3))"}],
    [{"role": "user", "content": "Trailing spaces?"}, {"role": "assistant", "content": "yes  it keeps them."}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "uno"},
     {"role": "user", "content": "two"}, {"role": "assistant", "content": "dos"},
     {"role": "user", "content": "three"}, {"role": "assistant", "content": "tres"}],
]

DRIVER = r"""
local tok = sw.tokenizer([==[{tok}]==])
local ds = sw.dataset([==[{data}]==], {{ tokenizer = tok, template = [==[{template}]==], max_len = 4096 }})
local out = assert(io.open([==[{out}]==], "wb"))
local function put(s) out:write(#s, "\n", s, "\n") end
put(tostring(#ds))
for i = 1, #ds do
  local p = ds:preview(i)
  put(table.concat(p.ids, " "))
  put(table.concat(p.labels, " "))
  put(p.text)
end
out:close()
"""


def unframe(data):
    out, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        n = int(data[pos:nl])
        out.append(data[nl + 1:nl + 1 + n])
        pos = nl + n + 2
    return out


def smollm2():
    d = refs.smollm2_dir()
    return Tokenizer.from_file(str(d / "tokenizer.json")), str(refs.SMOLLM2_GGUF), True


def llama3():
    p = refs.llama3_json()
    return Tokenizer.from_file(str(p)), str(p), True


def mistral():
    p = refs.mistral_json("legacy")
    return Tokenizer.from_file(str(p)), str(p), False


# name -> (reference maker, template, end-of-turn marker)
CASES = {
    "smollm2-auto": (smollm2, "auto", "<|im_end|>"),
    "smollm2-chatml": (smollm2, "chatml", "<|im_end|>"),
    "llama3-llama-3.1": (llama3, "llama-3.1", "<|eot_id|>"),
    "mistral-mistral": (mistral, "mistral", "</s>"),
}


def run(stepwise_bin, env, tmp_path, tok_path, template, records):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": m}, ensure_ascii=False) + "\n" for m in records))
    script = DRIVER.format(tok=tok_path, data=data, template=template, out=tmp_path / "out")
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = unframe((tmp_path / "out").read_bytes())
    n = int(out[0])
    assert n == len(records)
    return [([int(x) for x in out[1 + 3 * i].split()], [int(x) for x in out[2 + 3 * i].split()],
             out[3 + 3 * i].decode("utf-8")) for i in range(n)]


def runs_of(ids, labels):
    """[(trained, [ids])] in order."""
    out = []
    for i, l in zip(ids, labels):
        t = l != -100
        if not out or out[-1][0] != t:
            out.append((t, []))
        out[-1][1].append(i)
    return out


def expected_contents(msgs, template):
    # Llama 3 templates trim each message.
    return [m["content"].strip() if template == "llama-3.1" else m["content"] for m in msgs if m["role"] == "assistant"]


@pytest.mark.parametrize("name", list(CASES))
def test_masks_match_reference(stepwise_bin, env, tmp_path, name):
    make, template, eot = CASES[name]
    try:
        hf, tok_path, byte_level = make()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    records = RECORDS
    if template == "mistral":
        # Mistral's template moves the system prompt into the LAST user turn,
        # so a conversation with one has no stable prefixes to mask by: see
        # test_mistral_system_turn_is_refused.
        records = [m for m in RECORDS if m[0]["role"] != "system"]
    samples = run(stepwise_bin, env, tmp_path, tok_path, template, records)
    for k, (msgs, (ids, labels, text)) in enumerate(zip(records, samples)):
        where = f"{name}, record {k + 1}"
        # the ids are HF's encoding of the rendered text (the template writes any BOS)
        assert ids == hf.encode(text, add_special_tokens=False).ids, where
        assert all(l == -100 or l == i for i, l in zip(ids, labels)), where
        assert labels[0] == -100, where
        runs = runs_of(ids, labels)
        trained = [hf.decode(r, skip_special_tokens=False) for t, r in runs if t]
        assert trained == [c + eot for c in expected_contents(msgs, template)], where
        if byte_level:
            whole = "".join(hf.decode(r, skip_special_tokens=False) for _, r in runs)
            assert whole == text, where


def hf_render(template_src, msgs, gen):
    """transformers' apply_chat_template rendering (its Jinja2 environment)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg):
        raise ValueError(msg)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template_src).render(messages=msgs, add_generation_prompt=gen,
                                                bos_token="<|im_start|>", eos_token="<|im_end|>")


def test_smollm2_labels_match_jinja_and_hf_offsets(stepwise_bin, env, tmp_path):
    pytest.importorskip("jinja2")
    try:
        hf, gguf_path, _ = smollm2()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    src = json.loads((refs.smollm2_dir() / "tokenizer_config.json").read_text())["chat_template"]
    samples = run(stepwise_bin, env, tmp_path, gguf_path, "auto", RECORDS)
    for k, (msgs, (ids, labels, text)) in enumerate(zip(RECORDS, samples)):
        full = hf_render(src, msgs, False)
        assert text == full, f"record {k + 1}: the rendering differs from Jinja2's"
        spans = []
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            s = len(hf_render(src, msgs[:i], True))
            e = len(hf_render(src, msgs[:i + 1], False))
            while e > s and full[e - 1] in " \n\t\r":
                e -= 1
            spans.append((s, e))
        enc = hf.encode(full, add_special_tokens=False)
        want = [tid if any(s <= a and b <= e and a < b for s, e in spans) else -100
                for tid, (a, b) in zip(enc.ids, enc.offsets)]
        want[0] = -100
        assert ids == enc.ids, f"record {k + 1}"
        assert labels == want, f"record {k + 1}"


def test_mistral_system_turn_is_refused(stepwise_bin, env, tmp_path):
    """With a template whose earlier turns change when later ones are added,
    masks cannot be placed by rendering prefixes: the sample is an error that
    names its line, never a silently wrong mask."""
    try:
        hf, tok_path, byte_level = mistral()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    with pytest.raises(AssertionError, match=r"data.jsonl:1: the template renders"):
        run(stepwise_bin, env, tmp_path, tok_path, "mistral", [RECORDS[1]])
