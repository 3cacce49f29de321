-- test_gguf.lua — sw.gguf: metadata as Lua values, the tensor table, tensors
-- as f32, lifetimes and errors, on a small file written here with
-- string.pack (the parity tests cover real models and every block type).
local T = dofile("harness.lua")

local path = os.tmpname()

-- A GGUF v3 file: keys of several types, an f32 tensor and a q8_0 tensor.
local function gguf_str(s) return string.pack("<I8", #s) .. s end
local function write_file(p)
  local kv = {
    gguf_str("general.architecture") .. string.pack("<I4", 8) .. gguf_str("llama"),
    gguf_str("t.i16") .. string.pack("<I4i2", 3, -7),
    gguf_str("t.f64") .. string.pack("<I4d", 12, 0.1),
    gguf_str("t.bool") .. string.pack("<I4B", 7, 0),
    gguf_str("t.toks") .. string.pack("<I4I4I8", 9, 8, 3) .. gguf_str("a") .. gguf_str("") .. gguf_str("c"),
    gguf_str("t.f32s") .. string.pack("<I4I4I8fff", 9, 6, 3, 1.5, -2, 0.25),
  }
  local infos = gguf_str("norm.weight") .. string.pack("<I4I8I4I8", 1, 4, 0, 0)
             .. gguf_str("embd.weight") .. string.pack("<I4I8I8I4I8", 2, 32, 2, 8, 32)
  local head = "GGUF" .. string.pack("<I4I8I8", 3, 2, #kv) .. table.concat(kv) .. infos
  head = head .. string.rep("\0", (32 - #head % 32) % 32)
  local data = string.pack("<ffff", 1, 2, 3, 4) .. string.rep("\0", 16)
  for b = 0, 1 do -- d = 2.0 (f16 0x4000), q = i - 16
    data = data .. string.pack("<I2", 0x4000)
    for i = 0, 31 do data = data .. string.pack("<i1", i - 16 + b) end
  end
  local f = assert(io.open(p, "wb"))
  f:write(head .. data)
  f:close()
end
write_file(path)

T.test("metadata reads as Lua values", function()
  local g <close> = sw.gguf(path)
  T.eq(g.version, 3, "version")
  T.eq(g.alignment, 32, "alignment")
  T.eq(g:meta("general.architecture"), "llama")
  T.eq(math.type(g:meta("t.i16")), "integer")
  T.eq(g:meta("t.i16"), -7)
  T.eq(g:meta("t.f64"), 0.1)
  T.eq(g:meta("t.bool"), false)
  T.eq(g:meta("nope"), nil)
  local toks = g:meta("t.toks")
  T.eq(#toks, 3); T.eq(toks[1], "a"); T.eq(toks[2], ""); T.eq(toks[3], "c")
  local f = g:meta("t.f32s")
  T.eq(f[1], 1.5); T.eq(f[2], -2.0); T.eq(f[3], 0.25)
  local t, et = g:meta_type("t.toks")
  T.eq(t, "array"); T.eq(et, "string")
  T.eq(g:meta_type("t.i16"), "i16")
  T.eq(table.concat(g:keys(), " "), "general.architecture t.i16 t.f64 t.bool t.toks t.f32s")
end)

T.test("tensor table and tensors", function()
  local g <close> = sw.gguf(path)
  local ts = g:tensors()
  T.eq(#ts, 2)
  T.eq(ts[2].name, "embd.weight"); T.eq(ts[2].type, "q8_0")
  T.eq(ts[2].shape[1], 2); T.eq(ts[2].shape[2], 32) -- outermost first
  T.eq(ts[2].offset, 32); T.eq(ts[2].nbytes, 68); T.eq(ts[2].readable, true)
  local e = g:tensor("embd.weight")
  T.eq(e.dtype, "f32"); T.eq(e.category, "weights"); T.eq(e.name, "embd.weight")
  T.eq(e:get(1, 1), -32); T.eq(e:get(1, 32), 30); T.eq(e:get(2, 1), -30)
  local n = g:tensor("norm.weight", { category = "workspace", dtype = "bf16" })
  T.eq(n.dtype, "bf16"); T.eq(n.category, "workspace"); T.eq(n:get(4), 4)
  local raw = g:tensor("embd.weight", { dtype = "q8_0" })
  T.eq(raw.dtype, "q8_0"); T.eq(raw.nbytes, 68)
  g:close()
  T.eq(e:get(2, 32), 32) -- tensors are copies: they outlive the file
end)

T.test("errors name the file, the tensor or the option", function()
  local g <close> = sw.gguf(path)
  T.raises(function() g:tensor("embd.weigth") end, "no tensor named 'embd.weigth' (did you mean 'embd.weight'?)")
  T.raises(function() g:tensor("embd.weight", { dtyep = "f32" }) end, "unknown option 'dtyep'")
  T.raises(function() g:tensor("embd.weight", { dtype = "q4_0" }) end, "loads as f32, f16, bf16 or q8_0")
  T.raises(function() return g.pth end, "GGUF has no field 'pth' (did you mean 'path'?)")
  T.raises(function() sw.gguf(path .. ".absent") end, path .. ".absent: cannot open")
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  local bad = path .. ".bad"
  f = assert(io.open(bad, "wb"))
  f:write(bytes:sub(1, 150))
  f:close()
  T.raises(function() sw.gguf(bad) end, bad .. ": key 't.toks': the array element type")
  os.remove(bad)
end)

T.test("close, <close> and collection", function()
  local g = sw.gguf(path)
  T.eq(tostring(g):match("^GGUF .* %(v3, 2 tensors, 6 keys%)$") ~= nil, true, "tostring")
  g:close()
  T.eq(tostring(g), "GGUF (closed)")
  T.raises(function() g:close() end, "closed")
  T.raises(function() g:meta("t.i16") end, "closed")
  T.raises(function() return g.version end, "closed")
  for _ = 1, 50 do sw.gguf(path) end -- left to the collector
  collectgarbage(); collectgarbage()
end)

os.remove(path)
T.done()
