"""Tokenizers against Hugging Face `tokenizers`, id for id.

For each reference tokenizer (see tokenizer_refs.py for where each comes
from), every line of data/tokenizer_corpus.txt and the whole corpus as one
text are encoded by stepwise (through the binary, as a user's Lua would) and
by HF, with and without special tokens; HF's ids are decoded by both, with
and without skipping special tokens; and decode(encode(x)) must give x back
wherever HF's does. The GGUF loader is held to the same references.
"""
import json
import pathlib
import subprocess

import pytest
from tokenizers import Tokenizer

import tokenizer_refs as refs

CORPUS = pathlib.Path(__file__).resolve().parent / "data" / "tokenizer_corpus.txt"

JSON_REFS = {
    "smollm2": lambda: refs.smollm2_dir(),
    "llama3": lambda: refs.llama3_json(),
    "llama3-vocab-qwen2-pre": lambda: refs.llama3_json("qwen2"),
    "llama3-vocab-gpt2-pre": lambda: refs.llama3_json("gpt2"),
    "mistral-legacy": lambda: refs.mistral_json("legacy"),
    "mistral-metaspace": lambda: refs.mistral_json("metaspace"),
}
# GGUF file -> the tokenizer.json it must agree with
GGUF_REFS = {
    "smollm2": (lambda: refs.SMOLLM2_GGUF, "smollm2"),
    "llama3": (lambda: refs.llama3_gguf(), "llama3"),
    "qwen2-pre": (lambda: refs.llama3_gguf("qwen2"), "llama3-vocab-qwen2-pre"),
    "gpt2-pre": (lambda: refs.llama3_gguf("gpt-2"), "llama3-vocab-gpt2-pre"),
    "mistral": (lambda: refs.mistral_gguf(), "mistral-legacy"),
}

DRIVER = r"""
local tok = sw.tokenizer([==[{tok}]==])
local function frames(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  local out, pos = {{}}, 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local n = math.tointeger(tonumber(data:sub(pos, nl - 1)))
    out[#out + 1] = data:sub(nl + 1, nl + n)
    pos = nl + n + 2
  end
  return out
end
local function ids_of(line)
  local ids = {{}}
  for w in line:gmatch("%S+") do ids[#ids + 1] = math.tointeger(tonumber(w)) end
  return ids
end
local texts, hf_ids = frames([==[{texts}]==]), frames([==[{ids}]==])
local out = assert(io.open([==[{out}]==], "wb"))
local function put(s) out:write(#s, "\n", s, "\n") end
put(tostring(tok.vocab_size))
for i, t in ipairs(texts) do
  local plain = tok:encode(t, {{add_special = false}})
  put(table.concat(plain, " "))
  put(table.concat(tok:encode(t, {{add_special = true}}), " "))
  put(tok:decode(plain))
  local ids = ids_of(hf_ids[i])
  put(tok:decode(ids, {{skip_special = false}}))
  put(tok:decode(ids, {{skip_special = true}}))
end
for _, id in ipairs(ids_of(hf_ids[#texts + 1])) do
  put(tok:piece(id))
  put(tostring(tok:id(tok:piece(id))))
end
out:close()
"""
PER_TEXT = 5


def frame(items):
    out = bytearray()
    for s in items:
        b = s.encode("utf-8") if isinstance(s, str) else s
        out += b"%d\n" % len(b) + b + b"\n"
    return bytes(out)


def unframe(data):
    out, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        n = int(data[pos:nl])
        out.append(data[nl + 1:nl + 1 + n])
        pos = nl + n + 2
    return out


def corpus_texts():
    data = CORPUS.read_bytes().decode("utf-8")
    return data.split("\n") + [data]  # every line, then the whole corpus as one text


def load_ref(name):
    try:
        path = JSON_REFS[name]()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    p = pathlib.Path(path)
    return Tokenizer.from_file(str(p / "tokenizer.json" if p.is_dir() else p)), p


def hf_results(hf, texts):
    enc = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    spec = [hf.encode(t, add_special_tokens=True).ids for t in texts]
    return enc, spec


def sample_ids(hf):
    n = hf.get_vocab_size(with_added_tokens=True)
    return sorted(set(list(range(0, min(n, 300))) + list(range(0, n, 97)) + list(range(max(0, n - 300), n))))


def run_driver(stepwise_bin, env, tmp_path, tok_path, texts, hf_spec_ids, piece_ids):
    (tmp_path / "texts").write_bytes(frame(texts))
    (tmp_path / "ids").write_bytes(frame([" ".join(map(str, ids)) for ids in hf_spec_ids] +
                                         [" ".join(map(str, piece_ids))]))
    script = DRIVER.format(tok=tok_path, texts=tmp_path / "texts", ids=tmp_path / "ids", out=tmp_path / "out")
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, timeout=600)
    return r, (unframe((tmp_path / "out").read_bytes()) if r.returncode == 0 else None)


def ids_str(ids):
    return " ".join(map(str, ids)).encode()


def report(kind, bad, texts):
    shown = "\n".join(f"  line {i + 1}: {texts[i][:80]!r}\n    got  {g[:200]!r}\n    want {w[:200]!r}"
                      for i, g, w in bad[:5])
    return f"{len(bad)} {kind} mismatches of {len(texts)} texts:\n{shown}"


@pytest.fixture(scope="module")
def corpus():
    return corpus_texts()


@pytest.mark.parametrize("name", list(JSON_REFS))
def test_tokenizer_json_matches_hf(stepwise_bin, env, tmp_path, corpus, name):
    hf, path = load_ref(name)
    texts = corpus
    assert len(texts) > 1000
    enc, spec = hf_results(hf, texts)
    pids = sample_ids(hf)
    r, out = run_driver(stepwise_bin, env, tmp_path, path, texts, spec, pids)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]

    assert int(out[0]) == hf.get_vocab_size(with_added_tokens=True)
    rows = [out[1 + i * PER_TEXT:1 + (i + 1) * PER_TEXT] for i in range(len(texts))]
    bad_plain = [(i, r[0], ids_str(enc[i])) for i, r in enumerate(rows) if r[0] != ids_str(enc[i])]
    bad_spec = [(i, r[1], ids_str(spec[i])) for i, r in enumerate(rows) if r[1] != ids_str(spec[i])]
    assert not bad_plain, report("encode (add_special=false)", bad_plain, texts)
    assert not bad_spec, report("encode (add_special=true)", bad_spec, texts)

    bad_dec, bad_skip, bad_rt, rt_checked = [], [], [], 0
    for i, (t, row) in enumerate(zip(texts, rows)):
        want = hf.decode(spec[i], skip_special_tokens=False).encode()
        want_skip = hf.decode(spec[i], skip_special_tokens=True).encode()
        if row[3] != want:
            bad_dec.append((i, row[3], want))
        if row[4] != want_skip:
            bad_skip.append((i, row[4], want_skip))
        if hf.decode(enc[i], skip_special_tokens=False) == t:  # where HF round-trips, so must we
            rt_checked += 1
            if row[2] != t.encode():
                bad_rt.append((i, row[2], t.encode()))
    assert not bad_dec, report("decode", bad_dec, texts)
    assert not bad_skip, report("decode (skip_special)", bad_skip, texts)
    assert not bad_rt, report("round-trip", bad_rt, texts)
    assert rt_checked > len(texts) // 2

    tail = out[1 + len(texts) * PER_TEXT:]
    assert len(tail) == 2 * len(pids)
    for k, id_ in enumerate(pids):
        assert tail[2 * k] == hf.id_to_token(id_).encode(), f"piece of id {id_}"
        assert int(tail[2 * k + 1]) == hf.token_to_id(hf.id_to_token(id_)), f"id of piece {hf.id_to_token(id_)!r}"


@pytest.mark.parametrize("name", list(GGUF_REFS))
def test_gguf_matches_hf(stepwise_bin, env, tmp_path, corpus, name):
    make, json_name = GGUF_REFS[name]
    try:
        gguf_path = make()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    if not pathlib.Path(gguf_path).exists():
        pytest.skip(f"{gguf_path} is missing")
    hf, _ = load_ref(json_name)
    texts = corpus
    enc, spec = hf_results(hf, texts)
    r, out = run_driver(stepwise_bin, env, tmp_path, gguf_path, texts, spec, [])
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err[-2000:]
    assert int(out[0]) == hf.get_vocab_size(with_added_tokens=True)
    rows = [out[1 + i * PER_TEXT:1 + (i + 1) * PER_TEXT] for i in range(len(texts))]
    bad_plain = [(i, r[0], ids_str(enc[i])) for i, r in enumerate(rows) if r[0] != ids_str(enc[i])]
    bad_spec = [(i, r[1], ids_str(spec[i])) for i, r in enumerate(rows) if r[1] != ids_str(spec[i])]
    bad_dec = [(i, r[4], hf.decode(spec[i]).encode()) for i, r in enumerate(rows)
               if r[4] != hf.decode(spec[i], skip_special_tokens=True).encode()]
    assert not bad_plain, report("GGUF encode (add_special=false)", bad_plain, texts)
    assert not bad_spec, report("GGUF encode (add_special=true)", bad_spec, texts)
    assert not bad_dec, report("GGUF decode (skip_special)", bad_dec, texts)


def test_config_and_properties(stepwise_bin, env):
    """bos/eos/pad and the chat template come from tokenizer_config.json; token
    shows the text a token stands for, piece its vocabulary entry."""
    try:
        d = refs.smollm2_dir()
    except refs.Unavailable as e:
        pytest.skip(str(e))
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    script = f"""
    local tok <close> = sw.tokenizer([==[{d}]==])
    local hello = tok:id("Ġhello")
    io.write(table.concat({{tok.vocab_size, tok.bos_id, tok.eos_id, tok.pad_id,
      tok:token(hello), tok:piece(hello), tok:id(" hello"), hello, tostring(tok:is_special(2)),
      tostring(tok.chat_template == {json.dumps(cfg["chat_template"])})}}, "|"))
    """
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    f = r.stdout.split("|")
    assert f[:4] == ["49152", "1", "2", "2"]
    assert f[4:7] == [" hello", "Ġhello", f[7]]
    assert f[8:] == ["true", "true"]
