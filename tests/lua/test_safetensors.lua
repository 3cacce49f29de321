-- test_safetensors.lua — sw.safetensors / sw.save_safetensors / NF4 from Lua.
local T = dofile("harness.lua")

local dir = os.tmpname()
os.remove(dir)
local path = dir .. ".safetensors"

T.test("save and read back", function()
  local a = sw.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
  sw.save_safetensors(path, {
    a = a,
    b = a:to("bf16"),
    ids = { dtype = "I64", shape = { 2 }, bytes = string.pack("<i8<i8", 5, -7) },
  }, { metadata = { format = "pt" } })
  local st <close> = sw.safetensors(path)
  T.eq(#st, 3)
  T.eq(st.count, 3)
  T.eq(st.path, path)
  T.eq(table.concat(st:names(), ","), "a,b,ids")
  T.eq(st:metadata().format, "pt")
  local i = st:info("ids")
  T.eq(i.dtype, "I64")
  T.eq(i.nbytes, 16)
  T.eq(i.shape[1], 2)
  local t = st:tensor("a", { category = "workspace" })
  T.eq(t:get(2, 3), 6.0)
  T.eq(t.category, "workspace")
  T.eq(st:tensor("b").dtype, "bf16")
  T.eq(st:tensor("ids"):get(2), -7)
  T.eq(st:bytes("ids"), string.pack("<i8<i8", 5, -7))
  T.eq(tostring(st):find("3 tensors", 1, true) ~= nil, true)
end)

T.test("errors name the file, the tensor and the option", function()
  local st = sw.safetensors(path)
  T.raises(function() st:tensor("nope") end, "no tensor 'nope' in " .. path)
  T.raises(function() st:tensor("a", { devcie = "cpu" }) end, "did you mean 'device'?")
  T.raises(function() st:bnb("a") end, "not a bitsandbytes 4-bit weight")
  T.raises(function() st:nope() end, "SafeTensors has no field 'nope'")
  st:close()
  T.raises(function() st:names() end, "this SafeTensors has been freed")
  T.raises(function() sw.safetensors(dir .. "-missing") end, dir .. "-missing")
  T.raises(function() sw.save_safetensors(path, { x = { dtype = "F32", shape = { 3 }, bytes = "abc" } }) end,
    "3 bytes given, F32 of that shape needs 12")
  T.raises(function() sw.save_safetensors(path, { x = 1 }) end, "expected a Tensor")
  T.raises(function() sw.save_safetensors(path, {}, { metdata = {} }) end, "did you mean 'metadata'?")
end)

T.test("nf4 quantize", function()
  local w = sw.randn({ 4, 128 }, { seed = 1, scale = 0.02 })
  local codes, absmax = sw.nf4_quantize(w)
  T.eq(codes.dtype, "nf4")
  T.eq(absmax.shape[2], 2)
  local q, a2, offset = sw.nf4_double_quant(absmax)
  T.eq(q.dtype, "u8")
  T.eq(a2.numel, 1)
  T.eq(type(offset), "number")
  T.raises(function() sw.nf4_quantize(sw.zeros({ 3, 10 })) end, "multiple of 64")
end)

os.remove(path)
T.done()
