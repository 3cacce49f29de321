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
