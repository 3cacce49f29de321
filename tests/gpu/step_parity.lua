-- step_parity.lua — one whole training step of the real SmolLM2-135M on a
-- device against the float32 CPU: the loss, the gradient norm and every
-- adapter gradient (relative L2 error per tensor).
--
--   stepwise tests/gpu/step_parity.lua [DEVICE [QUANTS]]     (from the repository root)
--   DEVICE  cuda, cuda:N or emulate (default: emulate, what CI runs)
--   QUANTS  comma-separated sw.load quants (default "nf4,keep": QLoRA's NF4,
--           and the file's own GGUF Q4_1 blocks, which the device decodes itself)
--
-- Both models start from the same adapter, whose B matrices are random
-- rather than PEFT's zeros: with B = 0 every lora_A gradient is exactly zero
-- and would compare nothing. The trainer steps are the same (2 micro-batches
-- of 2 packed rows, no dropout) with clipping off, because the CPU clips its
-- gradients in place and the device scales inside the update instead.
--
-- Tolerances. The device computes in bf16 (8-bit mantissa: 2^-9 = 2e-3 per
-- rounding) with float32 accumulation, and keeps the residual stream in bf16
-- between layers as HF's bf16 models do; the CPU is float32 throughout. On
-- the 2-layer random models of tests/unit/test_gpu_engine.c that costs about
-- 1.2e-2 on logits and 1.8e-2 on gradients. SmolLM2 adds a noise floor of
-- its own: its residual stream carries a few huge activations (|x| ~ 750,
-- where one bf16 step is 4), and RMSNorm divides every token by them, so a
-- change of summation order that flips a few hundred last bits moves the
-- loss by ~1%. Measured on the emulated device: loss 5.5e-3 (NF4) and
-- 8.6e-3 (Q4_1), limit 2e-2, and 3e-2 for the gradient norm. A gradient's
-- error grows with the layers its signal crossed (about 2e-2 at the top,
-- 6e-2 at the bottom; a relative error e is a cosine of 1 - e^2/2): all
-- gradients together, what an optimizer step sees, 3.2e-2 / 3.9e-2, limit
-- 6e-2, as for the median tensor. The worst single tensor, a small one in
-- the bottom layers, 8e-2 / 1.4e-1: limit 2e-1. Measured values are
-- printed, so drift shows long before a limit trips.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local T = dofile(here .. "/../lua/harness.lua")

local DEVICE = arg[1] or "emulate"
local QUANTS = {}
for q in (arg[2] or "nf4,keep"):gmatch("[^,]+") do QUANTS[#QUANTS + 1] = q end
local MODEL, DATA = "smollm2-135m-instruct", "tutorials/data/travel_train.jsonl"
local TOL = { loss = 2e-2, norm = 3e-2, all = 6e-2, median = 6e-2, tensor = 2e-1 }
local TARGETS = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" }
local OPTS = { batch = 2, accum = 2, lr = 2e-4, max_steps = 4, warmup = 0, schedule = "constant", shuffle = true,
               seed = 7, quiet = true, max_grad_norm = 0 }

-- The shared adapter: PEFT-initialised A, random B, saved as a PEFT directory.
local function make_adapter(dir)
  local m <close> = sw.load(MODEL, { quant = "nf4", max_seq = 64, device = "cpu" })
  local l = m:lora{ r = 8, alpha = 16, seed = 11, targets = TARGETS }
  l:save(dir)
  local w, names = l:weights(), {}
  for name in pairs(w) do names[#names + 1] = name end
  table.sort(names)
  for i, name in ipairs(names) do
    if name:find("lora_B", 1, true) then w[name] = sw.randn(w[name].shape, { seed = i, scale = 0.01 }) end
  end
  sw.save_safetensors(dir .. "/adapter_model.safetensors", w)
  return #names
end

-- Sums for relative L2 errors: sum (x - ref)^2 and sum ref^2.
local function sq_sums(x, ref)
  local a, b = x:totable(), ref:totable()
  local e, r = 0.0, 0.0
  local function walk(u, v)
    for i = 1, #v do
      if type(v[i]) == "table" then walk(u[i], v[i])
      else
        local d = u[i] - v[i]
        e, r = e + d * d, r + v[i] * v[i]
      end
    end
  end
  walk(a, b)
  return e, r
end

local function setup(quant, device, dir)
  local m = sw.load(MODEL, { quant = quant, max_seq = 256, device = device })
  local a = sw.load_adapter(m, dir)
  local ds = sw.dataset(DATA, { model = m, max_len = 96 })
  return m, a, sw.trainer(m, ds, OPTS)
end

local dir = os.tmpname()
os.remove(dir)
local n_tensors = make_adapter(dir)
print(string.format("step parity on %s: SmolLM2-135M, r 8 on all 7 projections (%d tensors), 2 x 2 rows, no clipping",
                    DEVICE, n_tensors))

for _, quant in ipairs(QUANTS) do
  T.test("one step, " .. quant, function()
    local cm, ca, ctr = setup(quant, "cpu", dir)
    local dm, da, dtr = setup(quant, DEVICE, dir)
    T.eq(dm.device, DEVICE == "cuda" and "cuda:0" or DEVICE, "device")
    local cs, ds_ = ctr:step(), dtr:step()
    T.eq(cs.trained_tokens, ds_.trained_tokens, "trained tokens")
    local gc, gd = ca:grads(), da:grads()
    local rows, E, R = {}, 0.0, 0.0
    for name, ref in pairs(gc) do
      local e, r = sq_sums(gd[name], ref)
      E, R = E + e, R + r
      rows[#rows + 1] = { name = name, rel = math.sqrt(e / math.max(r, 1e-30)), norm = math.sqrt(r) }
    end
    T.eq(#rows, n_tensors, "gradient tensors")
    table.sort(rows, function(x, y) return x.rel > y.rel end)
    local loss_rel = math.abs(ds_.loss - cs.loss) / cs.loss
    local norm_rel = math.abs(ds_.grad_norm - cs.grad_norm) / cs.grad_norm
    local all_rel = math.sqrt(E / R)
    print(string.format("%-5s loss cpu %.5f %s %.5f (rel %.2e, limit %.0e) | grad norm %.4f vs %.4f (rel %.2e)",
                        quant, cs.loss, DEVICE, ds_.loss, loss_rel, TOL.loss, cs.grad_norm, ds_.grad_norm, norm_rel))
    local median = rows[#rows // 2 + 1].rel
    print(string.format("      gradients: all %.2e (limit %.0e), median tensor %.2e (limit %.0e), worst %.2e (limit %.1e):",
                        all_rel, TOL.all, median, TOL.median, rows[1].rel, TOL.tensor))
    for i = 1, 3 do
      print(string.format("        %.2e  %s (norm %.3g)", rows[i].rel, rows[i].name:gsub("^base_model%.model%.model%.", ""),
                          rows[i].norm))
    end
    T.eq(loss_rel <= TOL.loss, true, "loss within " .. TOL.loss)
    T.eq(norm_rel <= TOL.norm, true, "gradient norm within " .. TOL.norm)
    T.eq(all_rel <= TOL.all, true, "all gradients within " .. TOL.all)
    T.eq(median <= TOL.median, true, "the median tensor within " .. TOL.median)
    for _, row in ipairs(rows) do
      if not (row.rel <= TOL.tensor) then error(string.format("%s: relative error %.3g > %g", row.name, row.rel, TOL.tensor)) end
    end
    -- the step moved both adapters the same way (the device's came back to the host)
    local wc, wd = ca:weights(), da:weights()
    local e, r = 0.0, 0.0
    for name, ref in pairs(wc) do
      local a, b = sq_sums(wd[name], ref)
      e, r = e + a, r + b
    end
    T.eq(math.sqrt(e / r) < 1e-2, true, "adapter weights after the update")
    cm:free()
    dm:free()
  end)
end

os.remove(dir .. "/adapter_config.json")
os.remove(dir .. "/adapter_model.safetensors")
os.remove(dir)
T.done()
