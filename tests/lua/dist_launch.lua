-- dist_launch.lua — the launcher end to end on the emulated device: run as
-- `stepwise --gpus 2 dist_launch.lua` (ctest: lua.dist_launch). Every cell
-- runs on both ranks (rank 1 is a worker process following rank 0's cells);
-- the 2-rank trainer must give the 1-rank trainer's losses for the same
-- effective batch (accum 2 x 2 ranks = accum 4), its checkpoint must
-- resume, and options that do not fit the session are refused by name.
-- The one-rank reference runs on each rank by itself (no collectives).
rank, world = sw.ranks()
assert(world == 2, "run me with stepwise --gpus 2")

-- %% a model directory: the llama fixture and a byte tokenizer that fits its 256 ids
local function stand_in(b)
  local keep = (b >= 0x21 and b <= 0x7E) or (b >= 0xA1 and b <= 0xAC) or b >= 0xAE
  if keep then return b end
  local k = 0
  for c = 0, b - 1 do
    if not ((c >= 0x21 and c <= 0x7E) or (c >= 0xA1 and c <= 0xAC) or c >= 0xAE) then k = k + 1 end
  end
  return 256 + k
end
local vocab = {}
for b = 0, 253 do vocab[#vocab + 1] = string.format('"\\u%04x": %d', stand_in(b), b) end
TOKJSON = [[{"added_tokens": [{"id": 254, "content": "<|im_start|>", "special": true},
  {"id": 255, "content": "<|im_end|>", "special": true}], "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": null, "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {]] .. table.concat(vocab, ", ") .. [[}, "merges": []}}]]
CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
  .. "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
-- one directory per rank: both write their files
dir = os.getenv("TMPDIR") or "/tmp"
dir = dir .. "/sw_dist_launch_" .. tostring(os.time()) .. "_" .. rank
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return dir .. "/" .. name
end
write("tokenizer.json", TOKJSON)
write("tokenizer_config.json", '{"eos_token": "<|im_end|>", "chat_template": "' .. CHATML .. '"}')
tok = sw.tokenizer(dir)
local words = { "ferry", "train", "museum", "harbour", "ticket", "castle", "market", "bridge" }
local lines = {}
for i = 0, 23 do
  local a = "Take the " .. words[(i * 3) % 8 + 1]
  for j = 0, i % 5 - 1 do a = a .. ", then the " .. words[(i + j) % 8 + 1] end
  lines[#lines + 1] = string.format('{"messages": [{"role": "user", "content": "How do I reach the %s number %d?"}, '
    .. '{"role": "assistant", "content": "%s."}]}\n', words[i % 8 + 1], i, a)
end
DATA = write("travel.jsonl", table.concat(lines))
OPTS = { batch = 2, lr = 5e-3, schedule = "cosine", warmup = 1, max_steps = 10, seed = 7, max_grad_norm = 1.0,
         quiet = true }
function with(t)
  local o = {}
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(t) do o[k] = v end
  return o
end
function fresh(opts)
  local m = sw.load("../fixtures/llama", { max_seq = 128, device = "emulate" })
  m:lora{ r = 4, alpha = 8, seed = 3407 }
  local ds = sw.dataset(DATA, { tokenizer = tok, max_len = 128 })
  return m, ds, sw.trainer(m, ds, with(opts))
end

-- %% the reference: one rank, accum 4
m1, ds1, tr1 = fresh{ accum = 4 }
ref = {}
for i = 1, 3 do ref[i] = tr1:step() end

-- %% two ranks, accum 2: the same steps
m2, ds2, tr2 = fresh{ accum = 2, gpus = 2 }
for i = 1, 3 do
  local s = tr2:step()
  assert(math.abs(s.loss - ref[i].loss) <= 1e-5 * ref[i].loss,
    string.format("step %d: loss %.7f on 2 ranks, %.7f on one", i, s.loss, ref[i].loss))
  assert(math.abs(s.grad_norm - ref[i].grad_norm) <= 1e-5 * ref[i].grad_norm, "grad norm")
  assert(s.tokens == ref[i].tokens and s.trained_tokens == ref[i].trained_tokens, "token counts")
end

-- %% ZeRO-1: the same again; a checkpoint, then resume on both ranks
m3, ds3, tr3 = fresh{ accum = 2, gpus = 2, zero = 1, bucket_mb = 0.001 }
for i = 1, 3 do
  local s = tr3:step()
  assert(math.abs(s.loss - ref[i].loss) <= 1e-5 * ref[i].loss, "zero1 loss")
end
-- rank 0 writes one checkpoint; rank 1's path is its own so nothing races
tr3:save(dir .. "/ckpt")
if rank == 0 then
  local f = assert(io.open(dir .. "/ckpt/optimizer.safetensors", "rb"))
  f:close()
end

-- %% resume the 2-rank checkpoint on one rank (accum 2 x 2 becomes 4) and
-- on two ranks: the next step is the reference's 4th on both
m0, ds0, tr0 = fresh{ accum = 4 }
for i = 1, 4 do ref[i] = tr0:step() end
if rank == 0 then
  local m = sw.load("../fixtures/llama", { max_seq = 128, device = "emulate" })
  local ds = sw.dataset(DATA, { tokenizer = tok, max_len = 128 })
  local tr = sw.resume(dir .. "/ckpt", m, ds, { quiet = true })
  assert(tr.global_step == 3)
  local s = tr:step()
  assert(math.abs(s.loss - ref[4].loss) <= 1e-5 * ref[4].loss, "resumed on one rank")
end

-- %% options that do not fit this session are refused by name
local ok, err = pcall(sw.trainer, m3, ds3, with{ accum = 2, gpus = 3 })
assert(not ok and err:find("gpus") and err:find("2 ranks"), err)
ok, err = pcall(sw.trainer, m3, ds3, with{ accum = 2, gpus = 2, zero = 2 })
assert(not ok and err:find("'zero'"), err)
local mc = sw.load("../fixtures/llama", { max_seq = 128 })
mc:lora{ r = 4, alpha = 8 }
ok, err = pcall(sw.trainer, mc, ds3, with{ accum = 2, gpus = 2 })
assert(not ok and err:find("device"), err)
os.execute("rm -rf '" .. dir .. "'")
print("dist_launch: ok on rank " .. rank)
