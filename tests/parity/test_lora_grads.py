"""The training step against HF transformers + PEFT on the tiny fixtures:
loss and every LoRA gradient (two sequences, packed into one row so each
attends only to itself), logits with the adapter active, gradient
checkpointing, and packing equivalence."""
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from test_hf_logits import FAMILIES, FIX

LORA_FAMILIES = [f for f in FAMILIES if (FIX / f / "adapter").exists()]


def run_lua(stepwise_bin, env, script, *args):
    r = subprocess.run([stepwise_bin, "-e", script, *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


GRADS = """
local fam, out, ckpt = %r, %r, %s
local st = sw.safetensors(fam .. "/expected.safetensors")
local rows = st:tensor("input_ids"):totable()
local ids = {}
for b = 1, 2 do for _, v in ipairs(rows[b]) do ids[#ids + 1] = math.tointeger(v) end end
local m = sw.load(fam)
local a = sw.load_adapter(m, fam .. "/adapter")
local loss, n = m:loss(ids, { starts = { 24 }, backward = true, checkpointing = ckpt })
local g = a:grads()
g["loss"] = sw.tensor({ loss })
sw.save_safetensors(out, g)
"""


@pytest.mark.parametrize("family", LORA_FAMILIES)
@pytest.mark.parametrize("ckpt", [False, True], ids=["saved", "checkpointing"])
def test_loss_and_lora_grads_match_peft(stepwise_bin, env, tmp_path, family, ckpt):
    exp = load_file(str(FIX / family / "expected.safetensors"))
    out = tmp_path / "grads.safetensors"
    run_lua(stepwise_bin, env, GRADS % (str(FIX / family), str(out), "true" if ckpt else "false"))
    got = load_file(str(out))
    assert abs(got["loss"][0] - exp["lora_loss"][0]) <= 1e-5 * abs(exp["lora_loss"][0])
    names = [k[len("grad."):] for k in exp if k.startswith("grad.")]
    assert len(names) == 28 and set(names) == set(got) - {"loss"}
    for k in names:
        want = exp["grad." + k]
        err = np.abs(got[k] - want).max() / np.abs(want).max()
        assert err <= 1e-4, f"{k}: relative error {err:.3g}"


@pytest.mark.parametrize("family", LORA_FAMILIES)
def test_logits_with_adapter(stepwise_bin, env, tmp_path, family):
    exp = load_file(str(FIX / family / "expected.safetensors"))
    out = tmp_path / "l.bin"
    ids = ",".join(str(int(i)) for i in exp["input_ids"][1])
    run_lua(stepwise_bin, env, f"""
        local m = sw.load("{FIX / family}")
        sw.load_adapter(m, "{FIX / family}/adapter")
        io.open("{out}", "wb"):write(m:logits({{{ids}}}, {{all = true}}):tobytes())""")
    got = np.frombuffer(out.read_bytes(), dtype=np.float32).reshape(24, -1)
    assert np.abs(got - exp["lora_logits"][1]).max() <= 1e-4


def test_packing_equals_separate_samples(stepwise_bin, env, tmp_path):
    """Three samples of different lengths packed in one row give the same
    per-sample logits as run alone (1e-5), and changing sample A leaves
    sample B's logits exactly unchanged."""
    out = run_lua(stepwise_bin, env, f"""
        local m = sw.load("{FIX / 'qwen3'}")
        m:lora{{ r = 4, init = "gaussian", seed = 1 }}
        local A, B, C = {{5, 9, 200, 17, 3}}, {{8, 8, 1, 90, 45, 6, 7, 250, 11}}, {{31, 2, 77}}
        local function cat(...)
          local r = {{}}
          for _, s in ipairs({{...}}) do for _, v in ipairs(s) do r[#r + 1] = v end end
          return r
        end
        local _, _, packed = m:loss(cat(A, B, C), {{ starts = {{5, 14}}, logits = true }})
        local worst = 0
        for k, s in ipairs({{A, B, C}}) do
          local off = ({{0, 5, 14}})[k]
          local _, _, alone = m:loss(s, {{ logits = true }})
          for t = 1, #s do for v = 1, 256 do
            worst = math.max(worst, math.abs(alone:get(t, v) - packed:get(off + t, v)))
          end end
        end
        local A2 = {{6, 10, 201, 18, 4}}
        local _, _, packed2 = m:loss(cat(A2, B, C), {{ starts = {{5, 14}}, logits = true }})
        local same = true
        for t = 6, 17 do for v = 1, 256 do same = same and packed:get(t, v) == packed2:get(t, v) end end
        -- the loss of the packed row is the token-weighted mean of the samples' losses
        local lp, np_ = m:loss(cat(A, B, C), {{ starts = {{5, 14}} }})
        local la, na = m:loss(A)
        local lb, nb = m:loss(B)
        local lc, nc = m:loss(C)
        print(worst, same, math.abs(lp - (la * na + lb * nb + lc * nc) / (na + nb + nc)), np_)
    """)
    worst, same, loss_err, n = out.split()
    assert float(worst) <= 1e-5
    assert same == "true"
    assert float(loss_err) <= 1e-6 and int(n) == 4 + 8 + 2
