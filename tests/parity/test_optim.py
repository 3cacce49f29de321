"""AdamW and SGD (with clipping and the cosine warmup schedule) against
torch over three steps on the llama fixture's LoRA (fixtures from
tests/fixtures/make_optim_fixtures.py), and PEFT's rsLoRA scaling and
initialisation statistics."""
import json
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from test_hf_logits import FIX

STEPS = """
local kind, out = %r, %r
local st = sw.safetensors("%s/llama/expected.safetensors")
local rows = st:tensor("input_ids"):totable()
local ids = {}
for b = 1, 2 do for _, v in ipairs(rows[b]) do ids[#ids + 1] = math.tointeger(v) end end
local m = sw.load("%s/llama")
local a = sw.load_adapter(m, "%s/llama/adapter")
local opt = kind == "adamw" and sw.optimizer(a, { name = "adamw", weight_decay = 0.01 })
  or sw.optimizer(a, { name = "sgd", momentum = 0.9, weight_decay = 0.01 })
local base = kind == "adamw" and 1e-2 or 5e-2
local res, losses, norms, lrs = {}, {}, {}, {}
for step = 1, 3 do
  a:zero_grad()
  losses[step] = m:loss(ids, { starts = { 24 }, backward = true })
  norms[step] = opt:clip(0.3)
  lrs[step] = base * sw.lr_factor("cosine", step - 1, 1, 4)
  opt:update(lrs[step])
  for name, t in pairs(a:weights()) do res["step" .. step .. "." .. name] = t end
end
res.losses, res.grad_norms, res.lrs = sw.tensor(losses), sw.tensor(norms), sw.tensor(lrs)
sw.save_safetensors(out, res)
"""


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_three_steps_match_torch(stepwise_bin, env, tmp_path, kind):
    out = tmp_path / "steps.safetensors"
    r = subprocess.run([stepwise_bin, "-e", STEPS % (kind, str(out), FIX, FIX, FIX)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got, ref = load_file(str(out)), load_file(str(FIX / "optim" / f"{kind}.safetensors"))
    np.testing.assert_allclose(got["losses"], ref["losses"], rtol=1e-6)
    np.testing.assert_allclose(got["grad_norms"], ref["grad_norms"], rtol=1e-6)
    np.testing.assert_allclose(got["lrs"], ref["lrs"], rtol=1e-6)
    weights = [k for k in ref if k.startswith("step")]
    assert len(weights) == 3 * 28
    for k in weights:
        err = np.abs(got[k] - ref[k]).max() / np.abs(ref[k]).max()
        assert err <= 1e-5, f"{k}: relative error {err:.3g}"


def test_rslora_and_init_match_peft(stepwise_bin, env):
    peft = json.loads((FIX / "optim" / "peft_init.json").read_text())
    r = subprocess.run([stepwise_bin, "-e", f"""
        local m = sw.load("{FIX}/llama")
        local a = m:lora{{ r = 8, alpha = 16, rslora = true, targets = {{"q_proj", "down_proj"}} }}
        local w = a:weights()
        local function stats(t)
          local x, mx, s, s2, n = t:totable(), 0, 0, 0, 0
          for i = 1, #x do for j = 1, #x[i] do local v = x[i][j]; mx = math.max(mx, math.abs(v)); s = s + v; s2 = s2 + v * v; n = n + 1 end end
          return mx, math.sqrt(s2 / n - (s / n) ^ 2)
        end
        local qa, qs = stats(w["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"])
        local da, ds = stats(w["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"])
        local ba = stats(w["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])
        print(a.scale, qa, qs, da, ds, ba)"""], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    scale, qa, qs, da, ds, ba = map(float, r.stdout.split())
    assert abs(scale - peft["rslora_scaling"]) <= 1e-6 * peft["rslora_scaling"]
    assert ba == 0 == peft["B_absmax"]
    # Uniform on +-1/sqrt(in): the max approaches the bound, std = bound / sqrt(3).
    for amax, std, fan_in, ref_std in ((qa, qs, peft["q_proj_in"], peft["q_A_std"]),
                                       (da, ds, peft["down_proj_in"], peft["down_A_std"])):
        bound = 1 / np.sqrt(fan_in)
        assert 0.95 * bound <= amax <= bound
        assert abs(std - bound / np.sqrt(3)) <= 0.1 * bound / np.sqrt(3)
        assert abs(std - ref_std) <= 0.15 * ref_std
