"""The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF): stepwise's
logits against an independent numpy forward on the gguf package's
dequantizers, and a chat answer that makes sense."""
import os
import pathlib
import subprocess

import numpy as np
import pytest

from llama_numpy import GGUFLlama


def model_path():
    c = os.environ.get("STEPWISE_CACHE")
    x = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(c) if c else (pathlib.Path(x) / "stepwise" if x else pathlib.Path.home() / ".cache" / "stepwise")
    p = base / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not p.exists():
        pytest.fail(f"{p} is missing: ./bootstrap fetches it")
    return p


@pytest.fixture(scope="module")
def ref():
    return GGUFLlama(str(model_path()))


def ids_for(ref, words):
    """Token ids looked up in the GGUF vocabulary directly (no tokenizer)."""
    f = ref.r.fields["tokenizer.ggml.tokens"]
    vocab = {bytes(f.parts[i]).decode(): n for n, i in enumerate(f.data)}
    return [vocab[w] for w in words]


def test_logits_match_numpy_reference(stepwise_bin, env, tmp_path, ref):
    ids = ids_for(ref, ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"])
    out = tmp_path / "logits.bin"
    script = (f'local m = sw.load("{model_path()}")\n'
              f'local l = m:logits({{{",".join(map(str, ids))}}}, {{all = true}})\n'
              f'io.open("{out}", "wb"):write(l:tobytes())\n')
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = np.frombuffer(out.read_bytes(), dtype=np.float32).reshape(len(ids), -1)
    want = ref.logits(ids)
    err = np.abs(got - want).max()
    scale = np.abs(want).max()
    print(f"max abs error {err:.3g} over logits up to {scale:.3g}")
    assert err < 2e-3 * scale
    assert (got.argmax(-1) == want.argmax(-1)).all()
    # " Paris" is the model's top choice after "The capital of France is".
    assert got[-1].argmax() == ids_for(ref, ["ĠParis"])[0]


def run_lua(stepwise_bin, env, script, timeout=300):
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_chat_answer_is_coherent(stepwise_bin, env):
    out = run_lua(stepwise_bin, env, """
        local m = sw.load("smollm2-135m-instruct")
        local text, info = m:chat("What is the capital of France?", {max_new = 40, stream = false})
        print(text)
        print(info.stop_reason, info.new_tokens)
    """)
    text, last = out.rstrip("\n").rsplit("\n", 1)
    assert "Paris" in text, text
    reason, n = last.split("\t")
    assert reason in ("eos", "max_new") and 0 < int(n) <= 40


def test_generation_options_and_streaming(stepwise_bin, env):
    out = run_lua(stepwise_bin, env, """
        local m = sw.load("smollm2-135m-instruct")
        -- Same seed, same text; temperature 0 is greedy and ignores the seed.
        local a = m:generate("Once upon a time", {max_new = 12, temperature = 0.8, top_p = 0.9, seed = 7, stream = false})
        local b = m:generate("Once upon a time", {max_new = 12, temperature = 0.8, top_p = 0.9, seed = 7, stream = false})
        assert(a == b, "seeded sampling is not reproducible")
        local g1 = m:generate("Once upon a time", {max_new = 12, stream = false, seed = 1})
        local g2 = m:generate("Once upon a time", {max_new = 12, stream = false, seed = 2})
        assert(g1 == g2, "greedy depends on the seed")
        -- A stop string ends the text before it.
        local s, info = m:generate("1, 2, 3, 4,", {max_new = 30, stop = " 7", stream = false})
        assert(info.stop_reason == "stop" and not s:find(" 7", 1, true), s)
        -- Streaming prints the same text it returns.
        local streamed = {}
        local old = sw._stream
        sw._stream = function(t) streamed[#streamed + 1] = t end
        local t = m:generate("The sky is", {max_new = 10, top_k = 5, min_p = 0.05, repetition_penalty = 1.3, temperature = 0.7, seed = 3})
        sw._stream = old
        assert(table.concat(streamed) == t .. "\\n", "stream differs from the result")
        local ok, err = pcall(m.generate, m, "x", {temprature = 1})
        assert(not ok and err:find("did you mean 'temperature'"), err)
        ok, err = pcall(m.generate, m, "x", {top_p = 0})
        assert(not ok and err:find("top_p"), err)
        print("ok")
    """)
    assert out.strip().endswith("ok")
