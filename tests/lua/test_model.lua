-- test_model.lua — sw.load and the Model object on the tiny fixtures:
-- printing, logits, state, memory accounting and clear errors.
local T = dofile("harness.lua")
local FIX = "../fixtures/"

local function host_now() collectgarbage(); collectgarbage(); return sw.mem({ quiet = true }).cpu.now end

T.test("load, print, config", function()
  local m = sw.load(FIX .. "qwen3", { max_seq = 64 })
  local s = tostring(m)
  T.eq(s:find("Model qwen3", 1, true) ~= nil, true)
  T.eq(s:find("layers 2, hidden 64, heads 4 (kv 2, dim 32)", 1, true) ~= nil, true)
  T.eq(s:find("memory: weights", 1, true) ~= nil, true)
  T.eq(m.config.arch, "qwen3"); T.eq(m.config.head_dim, 32); T.eq(m.max_seq, 64)
  T.eq(m.quant, "f32"); T.eq(m.tokenizer, nil)
  T.eq(m.n_params, 131520)
  m:free()
  T.raises(function() return m.config end, "has been freed")
  T.raises(function() m:free() end, "already freed")
end)

T.test("logits shapes and determinism", function()
  local m <close> = sw.load(FIX .. "llama", { max_seq = 32 })
  local ids = { 1, 5, 9, 200, 3 }
  local all = m:logits(ids, { all = true })
  T.eq(all.shape[1], 5); T.eq(all.shape[2], 256)
  local last = m:logits(ids)
  T.eq(last.ndim, 1)
  T.eq(last:get(17), all:get(5, 17))
  T.eq(m.n_past, 0)                         -- logits() leaves no state behind
  T.raises(function() m:logits({ 1, 256 }) end, "entry 2 is not a token id in [0, 256)")
  T.raises(function() m:logits({}) end, "no token ids")
  local long = {}
  for i = 1, 33 do long[i] = 1 end
  T.raises(function() m:logits(long) end, "exceed the context of 32")
  T.raises(function() m:logits(ids, { al = true }) end, "did you mean 'all'")
end)

T.test("quantized loads account their memory and free it", function()
  local base = host_now()
  local m = sw.load(FIX .. "llama", { quant = "nf4", max_seq = 16 })
  local used = host_now() - base
  local f32 = sw.load(FIX .. "llama", { quant = "f32", max_seq = 16 })
  local used32 = host_now() - base - used
  T.eq(m.quant, "nf4")
  T.eq(used < used32, true)                 -- NF4 weights are smaller
  local mem = sw.mem({ quiet = true }).cpu.categories
  T.eq(mem.kv_cache.now > 0 and mem.weights.now > 0, true)
  m:free(); f32:free()
  T.eq(host_now(), base)
end)

T.test("bad paths and options are clear errors", function()
  T.raises(function() sw.load("/nonexistent/model.gguf") end, "/nonexistent/model.gguf")
  T.raises(function() sw.load("/nonexistent-dir") end, "config.json")
  T.raises(function() sw.load(FIX .. "llama", { quant = "int3" }) end, "unknown quant 'int3'")
  T.raises(function() sw.load(FIX .. "llama", { qaunt = "nf4" }) end, "did you mean 'quant'")
  -- without a GPU (CI), asking for one is a clear error; with one, the model trains there
  local ok, err = pcall(sw.load, FIX .. "llama", { device = "cuda" })
  if not ok then
    T.eq(err:find("no CUDA device", 1, true) ~= nil or err:find("no CUDA backend", 1, true) ~= nil, true, err)
  end
  T.raises(function() sw.load(FIX .. "llama", { device = "tpu" }) end, "not one of cpu, cuda, cuda:N, emulate")
  local m <close> = sw.load(FIX .. "llama", { max_seq = 8 })
  T.raises(function() m:generate("hi") end, "loaded without a tokenizer")
end)

T.test("the default device: sw.default_device / stepwise --device / STEPWISE_DEVICE", function()
  local was = sw.default_device("emulate")           -- what `stepwise --device emulate` sets
  local m <close> = sw.load(FIX .. "llama", { max_seq = 8 })
  T.eq(m.device, "emulate")
  local c <close> = sw.load(FIX .. "llama", { max_seq = 8, device = "cpu" })  -- a call's own device wins
  T.eq(c.device, "cpu")
  T.eq(sw.default_device(was), "emulate")
  T.raises(function() sw.default_device("tpu") end, "not one of cpu, cuda, cuda:N, emulate")
  T.eq(sw.default_device(), was)                     -- a refused name changes nothing
end)

T.test("adapters: several by name, one active, enable/disable, replace, without_adapter", function()
  local m <close> = sw.load(FIX .. "llama", { max_seq = 32 })
  local ids = { 1, 5, 9, 200, 3 }
  local base = m:logits(ids):get(7)
  local a = sw.load_adapter(m, FIX .. "llama/adapter", { name = "fixture" })
  T.eq(a.active, true)
  local with = m:logits(ids):get(7)
  T.eq(math.abs(with - base) > 1e-3, true)               -- the adapter changes the output
  T.eq(m:without_adapter(function() return m:logits(ids):get(7) end), base)
  T.eq(a.active, true)                                   -- and comes back after
  local b = m:lora{ r = 4, name = "fresh" }              -- PEFT init: B = 0, so no change yet
  T.eq(b.active, true); T.eq(a.active, false)
  T.eq(m:logits(ids):get(7), base)
  a:enable()
  T.eq(m:logits(ids):get(7), with)
  a:disable()
  T.eq(m:logits(ids):get(7), base)
  local c = m:lora{ r = 8, name = "fresh" }              -- re-running the cell replaces "fresh"
  T.raises(function() return b.r end, "has been freed")
  T.eq(c.r, 8)
  T.raises(function() m:lora{ r = 4, targets = { "qproj" } } end, "did you mean 'q_proj'")
  T.raises(function() m:lora{ r = 0 } end, "r must be in 1..4096")
  T.raises(function() sw.load_adapter(m, "/nonexistent") end, "adapter_config.json")
  local ok = pcall(m.without_adapter, m, function() error("inside") end)
  T.eq(ok, false); T.eq(c.active, true)                  -- restored even on error
end)

T.done()
