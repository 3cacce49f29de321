"""The trainer on the device engine (core/gpu_*.c) through the Lua API.

Here it runs on the emulated device (device = "emulate": the GPU code path
on host memory), so CI checks the whole route from sw.trainer to the engine
and back on a machine without a GPU; tests/gpu and bench/ run the same
engine on CUDA. The engine computes in bf16, so it tracks the CPU float32
losses within bf16 tolerance rather than bitwise."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

SETUP = """
local function setup(device)
  local m = sw.load("smollm2-135m-instruct", { quant = "nf4", max_seq = 256, device = device })
  local ds = sw.dataset("tutorials/data/travel_train.jsonl", { model = m, max_len = 96 })
  -- dropout on: the device draws the same masks as the CPU (core/train.c's stream)
  m:lora{ r = 4, alpha = 8, seed = 11, dropout = 0.1, targets = { "q_proj", "v_proj", "down_proj" } }
  local tr = sw.trainer(m, ds, { batch = 2, accum = 1, lr = 2e-4, max_steps = 10, warmup = 1, schedule = "cosine",
                                 shuffle = true, seed = 5, quiet = true, max_grad_norm = 0.5 })
  return m, ds, tr
end
"""


def run(stepwise_bin, env, body, timeout=900):
    r = subprocess.run([stepwise_bin, "-e", SETUP + body], env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_device_losses_track_the_cpu(stepwise_bin, env):
    out = run(stepwise_bin, env, """
        local _, _, cpu = setup("cpu")
        local _, _, dev = setup("emulate")
        for i = 1, 3 do
          local a, b = cpu:step(), dev:step()
          print(a.loss, b.loss, a.grad_norm, b.grad_norm)
        end
    """)
    vals = [float(x) for x in out]
    rows = [vals[i:i + 4] for i in range(0, len(vals), 4)]
    assert len(rows) == 3
    for cl, dl, cn, dn in rows:
        # bf16 activations through 30 layers (the residual stream too, as HF's
        # bf16 models keep it) move the loss by a few percent, not more
        assert abs(dl - cl) / cl < 5e-2, rows
        assert abs(dn - cn) / cn < 1e-1, rows
    assert rows[-1][1] < rows[0][1]  # it learns


def test_device_save_resume_and_errors(stepwise_bin, env, tmp_path):
    out = run(stepwise_bin, env, f"""
        local m, ds, tr = setup("emulate")
        tr:step()
        tr:save("{tmp_path}/ckpt")
        local straight = {{ tr:step().loss, tr:step().loss }}
        local tr2 = sw.resume("{tmp_path}/ckpt", m, ds, {{ quiet = true }})
        local again = {{ tr2:step().loss, tr2:step().loss }}
        print(straight[1] == again[1], straight[2] == again[2])
        -- eval runs on the device copy, which holds the resumed adapter
        local f = io.open("{tmp_path}/few.jsonl", "w")
        local n = 0
        for line in io.lines("tutorials/data/travel_eval.jsonl") do
          if n < 3 then f:write(line, "\\n") end
          n = n + 1
        end
        f:close()
        local e = tr2:eval(sw.dataset("{tmp_path}/few.jsonl", {{ model = m, max_len = 96 }}))
        print(e.loss > 0)
        local ok, err = pcall(sw.load, "smollm2-135m-instruct", {{ device = "tpu" }})
        print(ok, err:find("not one of cpu, cuda", 1, true) ~= nil)
    """)
    assert out == ["true", "true", "true", "false", "true"]


def test_offloaded_checkpoints_match(stepwise_bin, env, tmp_path):
    # checkpointing = "offload" keeps the layer inputs in (pinned) host memory;
    # the step is the same computation, so on the emulated device the losses
    # are bitwise those of checkpointing = true, and the choice survives a resume
    out = run(stepwise_bin, env, f"""
        local m = sw.load("smollm2-135m-instruct", {{ quant = "nf4", max_seq = 256, device = "emulate" }})
        local ds = sw.dataset("tutorials/data/travel_train.jsonl", {{ model = m, max_len = 96 }})
        m:lora{{ r = 4, alpha = 8, seed = 11, targets = {{ "q_proj", "down_proj" }} }}
        local function trainer(ck)
          return sw.trainer(m, ds, {{ batch = 2, lr = 2e-4, max_steps = 4, seed = 5, quiet = true,
                                      checkpointing = ck }})
        end
        local a = trainer(true):step().loss
        m:lora{{ r = 4, alpha = 8, seed = 11, targets = {{ "q_proj", "down_proj" }} }}
        local tr = trainer("offload")
        local b = tr:step().loss
        print(a == b, tostring(tr):find("checkpointing offloaded", 1, true) ~= nil)
        tr:save("{tmp_path}/ck")
        local tr2 = sw.resume("{tmp_path}/ck", m, ds, {{ quiet = true }})
        print(tostring(tr2):find("checkpointing offloaded", 1, true) ~= nil)
        local ok, err = pcall(trainer, "disk")
        print(ok, err:find("'checkpointing' must be true, false or \\"offload\\"", 1, true) ~= nil)
    """)
    assert out == ["true", "true", "true", "false", "true"]
