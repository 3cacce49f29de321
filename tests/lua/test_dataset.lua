-- test_dataset.lua — sw.dataset and the Dataset object: options and the
-- errors a user meets, preview, stats, records, batches and the cursor,
-- lifetimes (the tokenizer it borrows stays alive). A tiny byte-level
-- tokenizer with ChatML markers is built here; the SmolLM2 model, when the
-- cache has it, checks the tutorial data end to end.
local T = dofile("harness.lua")

-- ---- a byte-level tokenizer: ids 0..255 bytes, 256 <|im_start|>, 257 <|im_end|>
local function stand_in(b)
  local keep = (b >= 0x21 and b <= 0x7E) or (b >= 0xA1 and b <= 0xAC) or b >= 0xAE
  if keep then return b end
  local rank = 0
  for c = 0, b - 1 do
    if not ((c >= 0x21 and c <= 0x7E) or (c >= 0xA1 and c <= 0xAC) or c >= 0xAE) then rank = rank + 1 end
  end
  return 256 + rank
end
local vocab = {}
for b = 0, 255 do vocab[#vocab + 1] = string.format('"\\u%04x": %d', stand_in(b), b) end
local TOKJSON = [[{"added_tokens": [{"id": 256, "content": "<|im_start|>", "special": true},
  {"id": 257, "content": "<|im_end|>", "special": true}], "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": null, "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {]] .. table.concat(vocab, ", ") .. [[}, "merges": []}}]]
local CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
  .. "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return dir .. "/" .. name
end
write("tokenizer.json", TOKJSON)
write("tokenizer_config.json", '{"eos_token": "<|im_end|>", "chat_template": "' .. CHATML .. '"}')
local tok = sw.tokenizer(dir)

local function msg(u, a)
  return string.format('{"messages": [{"role": "user", "content": "%s"}, {"role": "assistant", "content": "%s"}]}\n', u, a)
end
local lines = {}
for i = 1, 10 do lines[i] = msg("question " .. i .. string.rep(" x", i), "answer " .. i) end
local GOOD = write("good.jsonl", table.concat(lines))

-- The text of the tokens whose label is (or is not) -100, runs ended by "|".
local function runs(t, trained)
  local out, inside = {}, false
  for i, id in ipairs(t.ids) do
    if (t.labels[i] ~= -100) == trained then
      out[#out + 1] = tok:token(id)
      inside = true
    elseif inside then
      out[#out + 1] = "|"
      inside = false
    end
  end
  if inside then out[#out + 1] = "|" end
  return table.concat(out)
end

T.test("options", function()
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, max_lne = 5 }) end, "unknown option 'max_lne' (did you mean 'max_len'?)")
  T.raises(function() sw.dataset(GOOD) end, "pass model = (or tokenizer =)")
  T.raises(function() sw.dataset(GOOD, { max_len = 5 }) end, "pass model = (or tokenizer =)")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, format = "jsonl" }) end, "unknown format 'jsonl'")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, train_on = "answers" }) end, "train_on must be")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, on_bad = "ignore" }) end, "on_bad must be 'error' or 'skip'")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, max_len = 1 }) end, "max_len must be at least 2")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, packing = 1 }) end, "option 'packing' must be a boolean")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, model = tok }) end, "not both")
  T.raises(function() sw.dataset(GOOD, { model = tok }) end, "option 'model' must be a Model")
  T.raises(function() sw.dataset(GOOD, { tokenizer = tok, template = "chatmel" }) end, "chatml")
  local m <close> = sw.load("../fixtures/qwen3", { max_seq = 16 })
  T.raises(function() sw.dataset(GOOD, { model = m }) end, "loaded without a tokenizer")
  T.raises(function() sw.dataset(dir .. "/missing.jsonl", { tokenizer = tok }) end, "missing.jsonl")
end)

T.test("an object: length, fields, printing, lifetime", function()
  local ds = sw.dataset(GOOD, { tokenizer = tok, max_len = 128, seed = 7 })
  T.eq(#ds, 10)
  T.eq(ds.format, "messages")
  T.eq(ds.template, "auto (the tokenizer's chat template)")
  T.eq(ds.train_on, "responses")
  T.eq(ds.max_len, 128)
  T.eq(ds.packing, false)
  T.eq(ds.shuffle, true)
  T.eq(ds.seed, 7)
  T.eq(ds.tokenizer, tok)
  T.eq(ds.model, nil)
  T.eq(ds.skipped, 0)
  T.eq(tostring(ds):match("^Dataset .*good%.jsonl: 10 samples %(messages%)") ~= nil, true, "tostring")
  T.raises(function() return ds.lenght end, "no field 'lenght'")
  T.raises(function() ds.max_len = 3 end, "cannot be set")
  ds:free()
  T.eq(tostring(ds), "Dataset (freed)")
  T.raises(function() ds:free() end, "already freed")
  T.raises(function() return #ds end, "has been freed")
  T.raises(function() ds:preview(1) end, "has been freed")
  do
    local d2 <close> = sw.dataset(GOOD, { tokenizer = tok })
    T.eq(#d2, 10)
  end
end)

T.test("records and malformed lines", function()
  local bad = write("bad.jsonl", msg("q", "a") .. '{"messages": [oops\n' .. '{"messages": [{"role": "user", "content": "q"}]}\n'
    .. '{"instruction": "i", "output": "o"}\n' .. msg("q2", "a2"))
  T.raises(function() sw.dataset(bad, { tokenizer = tok }) end, "bad.jsonl:2: invalid JSON")
  local ds <close> = sw.dataset(bad, { tokenizer = tok, on_bad = "skip" })
  T.eq(#ds, 2)
  T.eq(ds.skipped, 3)
  local st = ds:stats()
  T.eq(#st.checks.skipped, 3)
  T.eq(st.checks.skipped[1].row, 2)
  T.eq(st.checks.skipped[2].row, 3)
  T.eq(st.checks.skipped[2].what:find("nothing to train on", 1, true) ~= nil, true)
  T.eq(st.checks.skipped[3].row, 4)
  T.eq(st.checks.skipped[3].what, "field 'messages' is missing")
  T.eq(ds:sample(2).row, 5)
  local r = ds:record(2)
  T.eq(r.row, 5)
  T.eq(r.messages[2].role, "assistant")
  T.eq(r.messages[2].content, "a2")
  T.raises(function() ds:record(3) end, "sample 3 is out of range (1..2)")
  T.raises(function() ds:sample(0) end, "out of range")
  local empty = write("empty.jsonl", "")
  T.raises(function() sw.dataset(empty, { tokenizer = tok }) end, "empty.jsonl: no records")
  local unk = write("unk.jsonl", '{"q": 1, "a": 2}\n')
  T.raises(function() sw.dataset(unk, { tokenizer = tok }) end, "cannot tell the format from the keys {'q', 'a'}")
  local typed = write("typed.json", '[{"instruction": "i", "output": "o"}, {"instruction": "i", "output": 3}]')
  T.raises(function() sw.dataset(typed, { tokenizer = tok }) end, "typed.json: record 2: field 'output' must be a string, got number")
end)

T.test("preview: masks shown and returned", function()
  local ds <close> = sw.dataset(GOOD, { tokenizer = tok })
  local p = ds:preview(3)
  T.eq(#p.ids, #p.labels)
  T.eq(p.row, 3)
  T.eq(runs(p, true), "answer 3<|im_end|>|")
  T.eq(runs(p, false), "<|im_start|>user\nquestion 3 x x x<|im_end|>\n<|im_start|>assistant\n|\n|")
  T.eq(p.text, "<|im_start|>user\nquestion 3 x x x<|im_end|>\n<|im_start|>assistant\nanswer 3<|im_end|>\n")
  for i, l in ipairs(p.labels) do
    if l ~= -100 then T.eq(l, p.ids[i], "label = id where trained") end
  end
  T.eq(p.n_trained, 9)
  -- the tests run with stdout not a terminal: plain markers
  local s = tostring(p)
  T.eq(s:find("⟦<|im_start|>user\nquestion 3 x x x<|im_end|>\n<|im_start|>assistant\n⟧answer 3<|im_end|>⟦\n⟧", 1, true) ~= nil,
    true, "markers")
  T.eq(s:find("^sample 3 of 10 %(line 3%): %d+ tokens, 9 trained") ~= nil, true, "header")
  -- train_on = "all": everything but the first token
  local all <close> = sw.dataset(GOOD, { tokenizer = tok, train_on = "all" })
  local a = all:sample(1)
  T.eq(a.labels[1], -100)
  T.eq(a.n_trained, #a.ids - 1)
end)

T.test("stats and data checks", function()
  local f = write("checks.jsonl", msg("What is 2+2?", "4") .. msg("???", "ok") .. msg("q", "") .. msg("What is 2+2?", "4")
    .. msg("q2", string.rep("long ", 20)))
  local ds <close> = sw.dataset(f, { tokenizer = tok, max_len = 48 })
  local s = ds:stats()
  T.eq(s.count, 5)
  T.eq(s.truncated, 1)
  T.eq(#s.checks.over_long, 1)
  T.eq(s.checks.over_long[1].row, 5)
  T.eq(s.checks.duplicate[1].row, 4)
  T.eq(s.checks.duplicate[1].of, 1)
  T.eq(s.checks.no_alnum[1].row, 2)
  T.eq(s.checks.empty[1].row, 3)
  T.eq(s.length.max >= s.length.p99 and s.length.p99 >= s.length.p95 and s.length.p95 >= s.length.median, true)
  T.eq(s.suggested_max_len % 64, 0)
  T.eq(s.trained_fraction > 0 and s.trained_fraction < 1, true)
  local text = tostring(s)
  T.eq(text:find("exact duplicates       1: line 4 (line 4: same as line 1)", 1, true) ~= nil, true, text)
  T.eq(text:find("suggested max_len 128", 1, true) ~= nil, true, text)
end)

T.test("batches, cursor, packing", function()
  local ds <close> = sw.dataset(GOOD, { tokenizer = tok, max_len = 64 })
  T.eq(ds.cursor.epoch, 1)
  T.eq(ds.cursor.index, 0)
  local b = ds:batch(3)
  T.eq(b.rows, 3)
  T.eq(#b.ids, 3)
  T.eq(#b.ids[1], b.len)
  T.eq(b.epoch, 1)
  T.eq(b.index, 0)
  T.eq(ds.cursor.index, 3)
  T.eq(tostring(b):match("^Batch 3 x %d+: 3 samples") ~= nil, true)
  for r = 1, b.rows do
    local s = ds:sample(b.samples[r][1])
    T.eq(b.offsets[r][1], 0)
    T.eq(b.offsets[r][2], #s.ids)
    for t = #s.ids + 1, b.len do T.eq(b.labels[r][t], -100, "padding") end
  end
  local saved = ds.cursor
  local next1, next2 = ds:batch(3), ds:batch(3)
  ds.cursor = saved
  local again = ds:batch(3)
  T.eq(table.concat(again.ids[2], ","), table.concat(next1.ids[2], ","))
  ds:seek(saved)
  T.eq(table.concat(ds:batch(3).samples[1], ","), table.concat(next1.samples[1], ","))
  T.raises(function() ds:seek({ epoch = 0, index = 0 }) end, "outside this dataset")
  T.raises(function() ds:batch(0) end, "must be positive")
  T.raises(function() ds:batch(2, { packign = true }) end, "unknown option 'packign' (did you mean 'packing'?)")
  -- the rest of the epoch, then a whole new one
  local seen = 0
  for bb in ds:batches(4) do seen = seen + bb.n_samples end
  T.eq(seen, 10 - 6)
  T.eq(ds.cursor.index, 10)
  local count, order = 0, {}
  for bb in ds:batches(4) do
    count = count + bb.n_samples
    for _, row in ipairs(bb.samples) do order[#order + 1] = row[1] end
    T.eq(bb.epoch, 2)
  end
  T.eq(count, 10)
  table.sort(order)
  T.eq(table.concat(order, ","), "1,2,3,4,5,6,7,8,9,10")
  -- packing: several samples a row, positions restart, boundaries given
  local pk <close> = sw.dataset(GOOD, { tokenizer = tok, max_len = 160 })
  local p = pk:batch(2, { packing = true })
  T.eq(#p.samples[1] > 1, true)
  for r = 1, p.rows do
    local off = p.offsets[r]
    for j = 1, #off - 1 do
      local s = pk:sample(p.samples[r][j])
      T.eq(off[j + 1] - off[j], #s.ids)
      for t = 1, #s.ids do
        T.eq(p.ids[r][off[j] + t], s.ids[t])
        T.eq(p.positions[r][off[j] + t], t - 1)
      end
      T.eq(p.labels[r][off[j] + 1], -100, "first token of a sample")
    end
    T.eq(off[#off] <= 160, true)
  end
  pk.packing = true
  T.eq(pk:batch(1).n_samples > 1, true)
end)

T.test("the tokenizer stays alive with the dataset", function()
  local t = sw.tokenizer(dir)
  local ds = sw.dataset(GOOD, { tokenizer = t })
  t = nil
  collectgarbage()
  collectgarbage()
  T.eq(runs(ds:preview(1), true), "answer 1<|im_end|>|")
  ds.tokenizer:free()
  T.raises(function() ds:preview(1) end, "has been freed")
  T.eq(#ds:batch(2).ids, 2) -- batches need only the dataset
  ds:free()
end)

T.test("a template that does not render a growing prefix is refused", function()
  -- {{ messages|length }} at the top changes the start as the conversation grows.
  local src = "{{ messages|length }}" .. CHATML
  local ok, err = pcall(sw.dataset, GOOD, { tokenizer = tok, template = src })
  if ok then
    -- the interim renderer (before the Jinja engine) ignores the expression
    T.eq(runs(err:preview(1), false):sub(1, 1), "<")
  else
    T.eq(tostring(err):find("good.jsonl:1: the template renders", 1, true) ~= nil, true, tostring(err))
  end
end)

-- SmolLM2 with the tutorial data, when the cache holds the model.
local cache = os.getenv("STEPWISE_CACHE") or ((os.getenv("HOME") or ".") .. "/.cache/stepwise")
local f = io.open(cache .. "/SmolLM2-135M-Instruct.Q4_1.gguf", "rb")
if f then
  f:close()
  T.test("SmolLM2: the tutorial data in both formats", function()
    local m <close> = sw.load("smollm2-135m-instruct", { max_seq = 256 })
    local a <close> = sw.dataset("../../tutorials/data/travel_eval.jsonl", { model = m })
    local b <close> = sw.dataset("../../tutorials/data/travel_eval.json", { model = m })
    T.eq(#a, 100)
    T.eq(a.model, m)
    T.eq(b.format, "alpaca")
    for i = 1, #a do
      local x, y = a:sample(i), b:sample(i)
      T.eq(table.concat(x.ids, ","), table.concat(y.ids, ","), "messages and alpaca render alike")
      T.eq(table.concat(x.labels, ","), table.concat(y.labels, ","))
    end
    local r = a:record(1)
    local trained = {}
    for i, l in ipairs(a:sample(1).labels) do
      if l ~= -100 then trained[#trained + 1] = l end
    end
    T.eq(m.tokenizer:decode(trained), r.messages[2].content .. "<|im_end|>")
    T.eq(a:stats().checks.duplicate[1], nil)
  end)
else
  io.stderr:write("note: SmolLM2 is not in the cache; its dataset test is skipped\n")
end

os.execute("rm -rf '" .. dir .. "'")
T.done()
