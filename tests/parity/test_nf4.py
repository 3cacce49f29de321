"""NF4 and its double quantization, three ways: bitsandbytes' own output
(fixtures/bnb_nf4.safetensors, bnb 0.50.2 on the CPU; see
fixtures/make_bnb_fixtures.py), a numpy reference written here from
bitsandbytes' documented algorithm, and stepwise (sw.nf4_quantize,
sw.nf4_double_quant, SafeTensors:bnb through the binary)."""
import pathlib
import subprocess

import numpy as np
from safetensors import deserialize

FIX = pathlib.Path(__file__).resolve().parent / "fixtures"

# bitsandbytes' get_4bit_type("nf4"), as float32.
NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0], dtype=np.float32)


def load(path):
    out = {}
    for name, t in deserialize(pathlib.Path(path).read_bytes()):
        raw = bytes(t["data"])
        if t["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, {"F32": np.float32, "U8": np.uint8}[t["dtype"]])
        out[name] = a.reshape(t["shape"])
    return out


# ---- the numpy reference ------------------------------------------------------

def ref_nf4(x):
    """Blocks of 64; absmax; scale by the float32 reciprocal; code = number
    of midpoints strictly below (ties go down); two codes a byte, high first.
    An all-zero block codes as 7 (bnb's CPU path; its CUDA kernel writes 0)."""
    b = x.astype(np.float32).reshape(-1, 64)
    absmax = np.abs(b).max(axis=1)
    inv = np.float32(1) / np.maximum(absmax, np.float32(1e-38))
    scaled = b * inv[:, None]
    mid = (NF4[:-1] + NF4[1:]) / np.float32(2)
    codes = (scaled[..., None] > mid).sum(-1).astype(np.uint8).reshape(-1)
    return (codes[0::2] << 4 | codes[1::2]).astype(np.uint8), absmax


def ref_code8(cmap, x):
    """The CUDA kernel's 8-bit coder: nearest entry of the sorted map; on
    an exact midpoint, the entry its binary search (from 127, steps 64..1)
    ended on."""
    pivot, lo_p, up_p, lo, up = 127, 0, 255, np.float32(-1), np.float32(1)
    val = cmap[pivot]
    step = 64
    while step:
        if x > val:
            lo_p, lo, pivot = pivot, val, pivot + step
        else:
            up_p, up, pivot = pivot, val, pivot - step
        val = cmap[pivot]
        step >>= 1
    if up_p == 255:
        up = cmap[255]
    if lo_p == 0:
        lo = cmap[0]
    if x > val:
        return up_p if x > (up + val) * np.float32(0.5) else pivot
    return lo_p if x < (lo + val) * np.float32(0.5) else pivot


def ref_double_quant(absmax, cmap, offset):
    v = (absmax - np.float32(offset)).astype(np.float32)
    q = np.zeros(len(v), np.uint8)
    a2 = []
    for s in range(0, len(v), 256):
        blk = v[s:s + 256]
        m = np.abs(blk).max()
        a2.append(m)
        inv = np.float32(1) / m
        for i, y in enumerate(blk):
            q[s + i] = ref_code8(cmap, np.float32(y * inv))
    return q, np.array(a2, np.float32)


# ---- tests ----------------------------------------------------------------------

def test_reference_matches_bitsandbytes():
    f = load(FIX / "bnb_nf4.safetensors")
    codes, absmax = ref_nf4(f["input"])
    np.testing.assert_array_equal(codes, f["plain.codes"])
    np.testing.assert_array_equal(absmax, f["plain.absmax"])
    np.testing.assert_array_equal(f["quant_map"], NF4)
    # Double quantization: bnb's CPU coder approximates the nearest entry
    # with a lookup table, so a few codes land one step away.
    q, a2 = ref_double_quant(absmax, f["dynamic_map"], f["nested.offset"][0])
    np.testing.assert_array_equal(a2, f["nested.nested_absmax"])
    d = q.astype(int) - f["nested.absmax"].astype(int)
    assert np.abs(d).max() <= 1 and np.count_nonzero(d) <= len(d) // 20
    # bnb's denesting: map[q] * absmax2 + offset, in float32.
    den = f["dynamic_map"][f["nested.absmax"]] * np.repeat(f["nested.nested_absmax"], 256)[:len(q)]
    np.testing.assert_array_equal((den + f["nested.offset"][0]).astype(np.float32), f["nested.denested_absmax"])


def run(stepwise_bin, env, script):
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_stepwise_matches_reference(stepwise_bin, env, tmp_path):
    f = load(FIX / "bnb_nf4.safetensors")
    rng = np.random.default_rng(5)
    # Random normal weights at several scales, plus bnb's own input.
    x = np.concatenate([f["input"].reshape(-1),
                        (rng.standard_normal(64 * 200) * 0.02).astype(np.float32),
                        rng.standard_normal(64 * 50).astype(np.float32) * 300,
                        np.zeros(64, np.float32)])
    src = tmp_path / "x.bin"
    x.tofile(src)
    out = tmp_path / "out.safetensors"
    run(stepwise_bin, env, f"""
    local f = io.open("{src}", "rb"); local bytes = f:read("a"); f:close()
    sw.save_safetensors("{tmp_path}/in.safetensors", {{x = {{dtype = "F32", shape = {{{len(x)}}}, bytes = bytes}}}})
    local x = sw.safetensors("{tmp_path}/in.safetensors"):tensor("x")
    local codes, absmax = sw.nf4_quantize(x)
    local q, a2, offset = sw.nf4_double_quant(absmax)
    sw.save_safetensors("{out}", {{
      codes = {{dtype = "U8", shape = {{{len(x) // 2}}}, bytes = codes:tobytes()}},
      absmax = absmax, q = q, a2 = a2, offset = sw.tensor({{offset}})}})
    """)
    got = load(out)
    codes, absmax = ref_nf4(x)
    np.testing.assert_array_equal(got["codes"], codes)
    np.testing.assert_array_equal(got["absmax"], absmax)
    # The offset is the float32 mean; ours is correctly rounded, torch's
    # float32 reduction may be an ulp off: compare the codes at ours.
    offset = got["offset"][0]
    assert abs(offset - absmax.astype(np.float64).mean()) <= np.spacing(np.float32(offset))
    q, a2 = ref_double_quant(absmax, f["dynamic_map"], offset)
    np.testing.assert_array_equal(got["q"], q)
    np.testing.assert_array_equal(got["a2"], a2)
    # Dequantized error stays within half the widest NF4 step times absmax
    # (absmax itself taken through the double quantization).
    den = (f["dynamic_map"][q] * np.repeat(a2, 256)[:len(q)] + offset).astype(np.float32)
    assert np.abs(den - absmax).max() <= 0.5 * np.diff(f["dynamic_map"]).max() * a2.max() + 1e-7
    y = (NF4[np.stack([codes >> 4, codes & 15], 1).reshape(-1)].reshape(-1, 64) * absmax[:, None]).reshape(-1)
    assert np.all(np.abs(y - x) <= 0.5 * np.diff(NF4).max() * np.repeat(absmax, 64) + 1e-7)


def test_bnb_checkpoint_through_lua(stepwise_bin, env, tmp_path):
    """SafeTensors:bnb dequantizes a bnb-4bit checkpoint exactly as bnb does."""
    ref = load(FIX / "tiny-llama-bnb4-ref.safetensors")
    out = tmp_path / "deq.safetensors"
    names = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.gate_proj.weight"]
    run(stepwise_bin, env, f"""
    local st = sw.safetensors("{FIX / 'tiny-llama-bnb4'}")
    local t = {{}}
    for _, n in ipairs({{"{names[0]}", "{names[1]}"}}) do t[n] = st:bnb(n, {{dtype = "bf16"}}) end
    sw.save_safetensors("{out}", t)
    """)
    got = load(out)
    for n in names:
        np.testing.assert_array_equal(got[n], ref[n])
