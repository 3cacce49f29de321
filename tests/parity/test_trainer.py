"""The trainer on the real default model and the tutorial data: gradient
accumulation equivalence, bitwise determinism, save/resume, eval, history,
and a non-finite step that is skipped and explained."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

SETUP = """
local m = sw.load("smollm2-135m-instruct", { quant = "nf4", max_seq = 256 })
local ds = sw.dataset("tutorials/data/travel_train.jsonl", { model = m, max_len = 128 })
local function trainer(opts)
  m:lora{ r = 4, alpha = 8, seed = 11, targets = { "q_proj", "v_proj", "down_proj" } }
  local o = { batch = 4, accum = 1, lr = 1e-3, max_steps = 10, warmup = 0, schedule = "constant",
              shuffle = false, seed = 5, quiet = true }
  for k, v in pairs(opts or {}) do o[k] = v end
  return sw.trainer(m, ds, o)
end
"""


def run(stepwise_bin, env, body, timeout=600):
    r = subprocess.run([stepwise_bin, "-e", SETUP + body], env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_accumulation_is_the_same_step(stepwise_bin, env):
    out = run(stepwise_bin, env, """
        local res = {}
        for _, shape in ipairs({ {4, 1}, {2, 2}, {1, 4} }) do
          local tr = trainer({ batch = shape[1], accum = shape[2] })
          local s = tr:step()
          local a = tr:step()
          res[#res + 1] = { s.loss, a.loss, s.grad_norm }
        end
        for i = 2, 3 do
          for j = 1, 3 do print(math.abs(res[i][j] - res[1][j]) / math.abs(res[1][j])) end
        end
    """)
    assert max(float(x) for x in out) < 1e-5


def test_same_seed_same_losses_bitwise(stepwise_bin, env):
    out = run(stepwise_bin, env, """
        local a, b = trainer({ shuffle = true }), nil
        local la = { a:step().loss, a:step().loss, a:step().loss }
        b = trainer({ shuffle = true })
        local lb = { b:step().loss, b:step().loss, b:step().loss }
        for i = 1, 3 do print(la[i] == lb[i]) end
    """)
    assert out == ["true"] * 3


def test_resume_continues_bitwise(stepwise_bin, env, tmp_path):
    out = run(stepwise_bin, env, f"""
        local tr = trainer({{ shuffle = true, lr = 2e-3, warmup = 1, schedule = "cosine" }})
        tr:step(); tr:step()
        tr:save("{tmp_path}/ckpt")
        local straight = {{ tr:step().loss, tr:step().loss }}
        local tr2 = sw.resume("{tmp_path}/ckpt", m, ds, {{ quiet = true }})
        print(tr2.global_step)
        local again = {{ tr2:step().loss, tr2:step().loss }}
        print(straight[1] == again[1], straight[2] == again[2], #tr.history)
        -- a later save replaces the checkpoint whole
        tr2:save("{tmp_path}/ckpt")
        local tr3 = sw.resume("{tmp_path}/ckpt", m, ds, {{ quiet = true }})
        print(tr3.global_step, tr3.cursor.index)
    """)
    assert out[0] == "2"
    assert out[1:4] == ["true", "true", "4"]
    assert out[4] == "4" and int(out[5]) == 16


def test_eval_history_and_a_skipped_step(stepwise_bin, env):
    out = run(stepwise_bin, env, """
        local ev = sw.dataset("tutorials/data/travel_eval.jsonl", { model = m, max_len = 128 })
        local tr = trainer({ eval = ev })
        local e = tr:eval()
        print(e.loss > 0 and math.abs(e.perplexity - math.exp(e.loss)) < 1e-9 * e.perplexity, e.tokens)
        local h = tr:step()
        print(tr.history[1] ~= nil and tr.history[1].loss == h.loss and h.tokens_per_s > 0 and h.mem > 0)
        -- an absurd learning rate makes the weights overflow; the next step is skipped and says why
        local wild = trainer({ lr = 1e38, max_grad_norm = 0 })
        wild:step()
        local s = wild:step()
        print(s.skipped, (s.why or ""):find("not finite") ~= nil)
        local ok, err = pcall(sw.trainer, m, ds, { bacth = 2 })
        print(ok, err:find("did you mean 'batch'") ~= nil)
    """)
    assert out[0] == "true" and int(out[1]) > 0
    assert out[2] == "true"
    assert out[3:5] == ["true", "true"]
    assert out[5:7] == ["false", "true"]
