-- bench/data_tokenize.lua — how fast records become training samples on this
-- CPU: JSONL parsing, chat-template rendering (2k+1 renderings for k
-- responses, for the spans), one tokenization with offsets, masking, checks.
-- Then how fast packed batches come out of the result.
--
--   ./stepwise bench/data_tokenize.lua [out.json] [records]
--       default bench/results/data_tokenize.json, 50000 records
--
-- The input is generated here, deterministically, into build/ (not in git):
-- messages-format conversations of 1-3 exchanges, a system turn in a third of
-- them, with SmolLM2-135M-Instruct's tokenizer and chat template.

local out = arg[1] or "bench/results/data_tokenize.json"
local n = tonumber(arg[2] or "50000")
local cache = os.getenv("STEPWISE_CACHE") or ((os.getenv("HOME") or ".") .. "/.cache/stepwise")
local tok = sw.tokenizer(cache .. "/SmolLM2-135M-Instruct.Q4_1.gguf")

local WORDS = {}
for w in ([[the a of to and in is it that for on with as was at by this be from or an are
  which one have not but had his they you were her all she there would their we him been has when who will
  more no if out so said what up its about into than them can only other new some could time these two may
  then do first any my now such like our over man me even most made after also did many before must through
  back years where much your way well down should because each just those people how too little state good
  very make world still own see men work long get here between both life being under never day same another
  know while last might us great old year off come since against go came right used take three train city
  river bridge market coffee garden window letter music number answer question reason model data token]]):gmatch("%a+") do
  WORDS[#WORDS + 1] = w
end
local function sentence(k)
  local t = {}
  for i = 1, k do t[i] = WORDS[math.random(#WORDS)] end
  t[1] = t[1]:sub(1, 1):upper() .. t[1]:sub(2)
  return table.concat(t, " ") .. (math.random(4) == 1 and "?" or ".")
end
local function quote(s) return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"' end

os.execute("mkdir -p build")
local path = "build/bench_data_tokenize.jsonl"
math.randomseed(3407)
local f = assert(io.open(path, "wb"))
for _ = 1, n do
  local msgs = {}
  if math.random(3) == 1 then msgs[#msgs + 1] = '{"role": "system", "content": ' .. quote(sentence(8)) .. "}" end
  for _ = 1, math.random(3) do
    msgs[#msgs + 1] = '{"role": "user", "content": ' .. quote(sentence(math.random(6, 30))) .. "}"
    msgs[#msgs + 1] = '{"role": "assistant", "content": ' .. quote(sentence(math.random(4, 60)) .. "\n" .. sentence(8)) .. "}"
  end
  f:write('{"messages": [', table.concat(msgs, ", "), "]}\n")
end
f:close()
local fsize = io.open(path, "rb"):seek("end")

local t0 = sw.now()
local ds <close> = sw.dataset(path, { tokenizer = tok, max_len = 1024 })
local build_s = sw.now() - t0
local st = ds:stats()

-- Packed batches over one whole epoch.
t0 = sw.now()
local batches, rows = 0, 0
for b in ds:batches(8, { packing = true }) do
  batches, rows = batches + 1, rows + b.rows
end
local batch_s = sw.now() - t0

local r = {
  records = #ds, file_bytes = fsize, tokens = st.tokens, trained_tokens = st.trained,
  mean_tokens_per_record = st.length.mean, build_seconds = build_s,
  records_per_s = #ds / build_s, tokens_per_s = st.tokens / build_s, mib_per_s = fsize / build_s / 2 ^ 20,
  packed_batches = batches, packed_rows = rows, batch_rows = 8, max_len = 1024,
  batch_seconds = batch_s, packed_batches_per_s = batches / batch_s,
  threads = "1 (the build is single-threaded)", tokenizer = tok.description, cpu = "?",
}
local ci = io.open("/proc/cpuinfo", "r")
if ci then
  r.cpu = ci:read("a"):match("model name%s*:%s*([^\n]+)") or "?"
  ci:close()
end
sw.write_results(out, r)
print(string.format("%d records in %.2f s: %.0f records/s, %.0f tokens/s; %d packed batches in %.2f s", #ds, build_s,
  r.records_per_s, r.tokens_per_s, batches, batch_s))
