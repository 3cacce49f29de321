"""Logits of tiny random-init models of each family against HF transformers
(fixtures made by tests/fixtures/make_fixtures.py): stepwise loads the same
config.json + model.safetensors and must agree within 1e-4."""
import json
import pathlib
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

FIX = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
FAMILIES = sorted(p.name for p in FIX.iterdir() if (p / "expected.safetensors").exists()
                  and (p / "config.json").exists()) if FIX.exists() else []


def our_logits(stepwise_bin, env, tmp_path, model_dir, ids, opts="{}"):
    out = tmp_path / "logits.bin"
    script = (f'local m = sw.load("{model_dir}", {opts})\n'
              f'local l = m:logits({{{",".join(str(int(i)) for i in ids)}}}, {{all = true}})\n'
              f'io.open("{out}", "wb"):write(l:tobytes())\n')
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return np.frombuffer(out.read_bytes(), dtype=np.float32).reshape(len(ids), -1)


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers(stepwise_bin, env, tmp_path, family):
    d = FIX / family
    exp = load_file(str(d / "expected.safetensors"))
    if "logits" not in exp:
        pytest.skip(f"{family}: no plain logits in this fixture")
    ids, want = exp["input_ids"], exp["logits"]
    for b in range(ids.shape[0]):
        got = our_logits(stepwise_bin, env, tmp_path, d, ids[b])
        err = np.abs(got - want[b]).max()
        assert err <= 1e-4, f"{family} sequence {b}: max abs error {err:.3g}"


def test_fixtures_cover_every_family():
    cfgs = {json.loads((FIX / f / "config.json").read_text())["model_type"] for f in FAMILIES}
    assert {"llama", "mistral", "qwen2", "qwen3"} <= cfgs, cfgs


def test_nf4_on_load_matches_bitsandbytes(stepwise_bin, env, tmp_path):
    """quant = "nf4" on the float32 llama fixture quantizes as bitsandbytes
    does (NF4 codes identical; the double-quantized absmax can differ by one
    8-bit step where torch's float32 mean and ours round differently), so
    its logits match the bnb-quantized HF model's within NF4's precision,
    while the f32 model is much further away."""
    exp = load_file(str(FIX / "llama-bnb-nf4" / "expected.safetensors"))
    ids, want = exp["input_ids"], exp["logits"]
    f32 = load_file(str(FIX / "llama" / "expected.safetensors"))["logits"]
    for b in range(ids.shape[0]):
        got = our_logits(stepwise_bin, env, tmp_path, FIX / "llama", ids[b], '{quant = "nf4"}')
        err = np.abs(got - want[b]).max()
        gap = np.abs(f32[b] - want[b]).max()  # what quantizing changes at all
        assert err <= 1e-2 and err < gap / 10, f"sequence {b}: max abs error {err:.3g} (f32 vs nf4: {gap:.3g})"
    # and the pre-quantized checkpoint dequantized to f32 gives the same
    got = our_logits(stepwise_bin, env, tmp_path, FIX / "llama-bnb-nf4", ids[0], '{quant = "f32"}')
    assert np.abs(got - want[0]).max() <= 1e-4
