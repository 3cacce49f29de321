-- test_tokenizer.lua — the sw.tokenizer binding: loading from a file and a
-- directory, encode/decode options, token/piece/id, properties, lifetimes and
-- the errors a user meets. (Exactness against HF: tests/parity.)
local T = dofile("harness.lua")

-- A tiny SentencePiece-style tokenizer: <unk> <s> </s>, bytes, a few pieces.
local pieces = { '"<unk>": 0', '"<s>": 1', '"</s>": 2' }
for b = 0, 255 do pieces[#pieces + 1] = string.format('"<0x%02X>": %d', b, b + 3) end
for i, p in ipairs({ "\\u2581", "h", "i", "\\u2581h", "\\u2581hi" }) do
  pieces[#pieces + 1] = string.format('"%s": %d', p, 258 + i)
end
local JSON = [[{
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true, "normalized": false},
    {"id": 1, "content": "<s>", "special": true, "normalized": false},
    {"id": 2, "content": "</s>", "special": true, "normalized": false}],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
    {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {]] .. table.concat(pieces, ", ") .. [[}, "merges": ["\u2581 h", "\u2581h i"]}
}]]

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end
write("tokenizer.json", JSON)
write("tokenizer_config.json", '{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "pad_token": null,'
  .. ' "chat_template": "{{ messages }}"}')

T.test("load from a file and from a directory", function()
  local tok <close> = sw.tokenizer(dir .. "/tokenizer.json")
  T.eq(tok.vocab_size, 264)
  T.eq(tostring(tok):match("^Tokenizer SentencePiece BPE, 264 tokens") ~= nil, true, "tostring")
  local tok2 <close> = sw.tokenizer(dir)
  T.eq(tok2.bos_id, 1)
  T.eq(tok2.eos_id, 2)
  T.eq(tok2.pad_id, nil)
  T.eq(tok2.unk_id, 0)
  T.eq(tok2.chat_template, "{{ messages }}")
end)

T.test("encode and decode", function()
  local tok <close> = sw.tokenizer(dir)
  local ids = tok:encode("hi hi")
  T.eq(table.concat(ids, ","), "1,263,263", "ids with <s>")
  T.eq(math.type(ids[1]), "integer")
  T.eq(table.concat(tok:encode("hi hi", { add_special = false }), ","), "263,263")
  T.eq(#tok:encode("", { add_special = false }), 0)
  T.eq(tok:decode(ids), "<s> hi hi")
  T.eq(tok:decode(ids, { skip_special = true }), "hi hi")
  T.eq(tok:decode({}), "")
  -- a character without a piece falls back to its UTF-8 bytes
  local e = tok:encode("é", { add_special = false })
  T.eq(table.concat(e, ","), "259," .. (0xC3 + 3) .. "," .. (0xA9 + 3))
  T.eq(tok:decode(e), "é")
  -- invalid UTF-8 in: byte tokens; decode answers as HF does (U+FFFD)
  local bad = tok:encode("h\xff", { add_special = false })
  T.eq(table.concat(bad, ","), "262," .. (0xFF + 3))
  T.eq(tok:decode(bad), "h\u{FFFD}")
  T.eq(tok:token(bad[1]) .. tok:token(bad[2]), " h\xff", "token bytes")
end)

T.test("token, piece, id", function()
  local tok <close> = sw.tokenizer(dir)
  T.eq(tok:piece(263), "\u{2581}hi")
  T.eq(tok:token(263), " hi")
  T.eq(tok:token(1), "<s>")
  T.eq(tok:id("\u{2581}hi"), 263)
  T.eq(tok:id(" hi"), 263)
  T.eq(tok:id("nope"), nil)
  T.eq(tok:is_special(1), true)
  T.eq(tok:is_special(263), false)
end)

T.test("errors say what is wrong", function()
  local tok <close> = sw.tokenizer(dir)
  T.raises(function() tok:encode("x", { add_specal = true }) end, "unknown option 'add_specal' (did you mean 'add_special'?)")
  T.raises(function() tok:encode("x", { add_special = 1 }) end, "must be a boolean")
  T.raises(function() tok:decode({ 1, 999 }) end, "id 999 at position 1")
  T.raises(function() tok:decode({ 1, "x" }) end, "entry 2 must be an integer")
  T.raises(function() tok:decode({ 1 }, { skip = true }) end, "unknown option 'skip'")
  T.raises(function() tok:token(-1) end, "id -1 is not a token")
  T.raises(function() tok:piece(264) end, "id 264 is not a token")
  T.raises(function() return tok.vocab_sise end, "did you mean 'vocab_size'")
  T.raises(function() sw.tokenizer(dir .. "/missing.json") end, "missing.json")
  write("broken.json", '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}')
  T.raises(function() sw.tokenizer(dir .. "/broken.json") end, "model.merges[0]: 'b' is not in the vocabulary")
end)

T.test("free, double free, use after free", function()
  local tok = sw.tokenizer(dir)
  tok:free()
  T.raises(function() tok:free() end, "already freed")
  T.raises(function() tok:encode("x") end, "has been freed")
  T.raises(function() return tok.vocab_size end, "has been freed")
  T.eq(tostring(tok), "Tokenizer (freed)")
end)

os.remove(dir .. "/tokenizer.json")
os.remove(dir .. "/tokenizer_config.json")
os.remove(dir .. "/broken.json")
os.remove(dir)
T.done()
