"""f32 -> f16 / bf16 rounding against independent references: numpy's
float16 and ml_dtypes' bfloat16 (the type JAX uses), on random values that
cover normals, subnormals, overflow, ties and signed zeros."""
import subprocess

import ml_dtypes
import numpy as np
import pytest


@np.errstate(over="ignore")  # values past f32's range become inf, then dropped
def values():
    rng = np.random.default_rng(0)
    parts = [
        rng.standard_normal(4000).astype(np.float32),
        (rng.standard_normal(2000) * 1e-6).astype(np.float32),   # f16 subnormals
        (rng.standard_normal(2000) * 7e4).astype(np.float32),    # f16 overflow
        (rng.standard_normal(2000) * 1e38).astype(np.float32),   # near f32 max
        rng.integers(0, 2**32, 4000, dtype=np.uint64).astype(np.uint32).view(np.float32),  # any bits
        # exact ties for bf16 (low 16 bits 0x8000) and f16 (low 13 bits 0x1000)
        ((rng.integers(0, 2**16, 1000).astype(np.uint32) << 16) | 0x8000).view(np.float32),
        ((rng.integers(0x33000, 0x47800, 1000).astype(np.uint32) << 13) | 0x1000).view(np.float32),
        np.array([0.0, -0.0, 1.0, 65504, 65520, 2**-24, 2**-25], dtype=np.float32),
    ]
    v = np.concatenate(parts)
    return v[np.isfinite(v)]


@pytest.mark.parametrize("dtype,ref", [("f16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_rounding_matches_reference(stepwise_bin, env, tmp_path, dtype, ref):
    v = values()
    src = tmp_path / "in.txt"
    # A decimal point keeps Lua from reading "-0" as the integer 0.
    src.write_text("\n".join(f"{x:.9e}" for x in v.tolist()))
    script = f"""
    local vals = {{}}
    for line in io.lines("{src}") do vals[#vals + 1] = tonumber(line) end
    local t = sw.tensor(vals):to("{dtype}"):to("f32")
    local out = {{}}
    for i = 1, t.numel do out[i] = string.format("%.9g", t:get(i)) end
    io.write(table.concat(out, "\\n"))
    """
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = np.array([float(x) for x in r.stdout.split()], dtype=np.float32)
    with np.errstate(over="ignore"):  # overflow to inf is what is being tested
        want = v.astype(ref).astype(np.float32)
    assert got.shape == want.shape
    # Compare bits, so -0.0 vs 0.0 and inf signs count too.
    bad = np.nonzero(got.view(np.uint32) != want.view(np.uint32))[0]
    assert bad.size == 0, f"{bad.size} mismatches, first: {v[bad[:5]]} -> {got[bad[:5]]} vs {want[bad[:5]]}"
