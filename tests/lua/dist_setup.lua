-- dist_setup.lua — shared by dist_launch.lua and dist_diverge.lua (dofile'd
-- on every rank): a byte tokenizer that fits the llama fixture's 256 ids, a
-- small chat dataset in a per-rank temporary directory, and fresh(opts): a
-- model on the emulated device with an adapter and a trainer.
rank, world = sw.ranks()
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

