-- test_tensor.lua — sw tensors from Lua: constructors, properties, views,
-- conversions, display, and clear errors for misuse.
local T = dofile("harness.lua")

T.test("zeros and properties", function()
  local t = sw.zeros({ 2, 3 }, { dtype = "bf16", category = "activations", name = "h" })
  T.eq(t.ndim, 2); T.eq(t.shape[1], 2); T.eq(t.shape[2], 3); T.eq(#t, 2)
  T.eq(t.dtype, "bf16"); T.eq(t.device, "cpu"); T.eq(t.category, "activations")
  T.eq(t.numel, 6); T.eq(t.nbytes, 12); T.eq(t.contiguous, true); T.eq(t.name, "h")
  T.eq(t:get(2, 3), 0.0)
  t:free()
end)

T.test("from data, get/set, totable, item", function()
  local t = sw.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
  T.eq(t:get(2, 1), 4.0)
  t:set(2, 1, 40)
  T.eq(t:totable()[2][1], 40.0)
  T.eq(sw.tensor(2.5):item(), 2.5)
  local i = sw.tensor({ 7, 8 }, { dtype = "i32" })
  T.eq(math.type(i:get(2)), "integer")
  T.raises(function() sw.tensor({ { 1, 2 }, { 3 } }) end, "ragged")
  T.raises(function() sw.tensor({ 1, "x" }) end, "entry 2 of dimension 1 is string")
  T.raises(function() t:get(3, 1) end, "out of range")
  T.raises(function() t:get(1) end, "expected 2 index(es)")
end)

T.test("views share storage, 1-based", function()
  local t = sw.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
  local tt = t:t()
  T.eq(tt.shape[1], 3); T.eq(tt.contiguous, false); T.eq(tt:get(3, 2), 6.0)
  local row = t:narrow(1, 2, 1)
  T.eq(row:get(1, 3), 6.0)
  row:fill(0)
  T.eq(t:get(2, 2), 0.0)                 -- the view wrote through
  local r = t:reshape({ 3, -1 })
  T.eq(r.shape[2], 2); T.eq(r:get(3, 1), 0.0)
  T.raises(function() tt:reshape({ 6 }) end, "contiguous")
  T.raises(function() t:narrow(1, 2, 2) end, "outside dimension 1")
  T.raises(function() t:narrow(3, 1, 1) end, "out of range")
  t:free()
  T.eq(row:get(1, 1), 0.0)               -- the view keeps the buffer alive
  T.eq(r:get(1, 1), 1.0)
end)

T.test("conversions and copies", function()
  local a = sw.tensor({ 1.0, 3.14159265, -65520.0 })
  local h = a:to("f16")
  T.eq(h.dtype, "f16")
  T.eq(h:get(1), 1.0); T.eq(h:get(3), -math.huge)   -- past f16's range
  local b = a:to({ dtype = "bf16" })
  T.eq(b:get(2), 3.140625)
  local c = sw.zeros({ 3 })
  c:copy(b)
  T.eq(c:get(2), 3.140625)
  T.raises(function() c:copy(sw.zeros({ 4 })) end, "shapes differ")
  T.raises(function() a:to("fp42") end, "neither a dtype nor a usable device")
  local k = a:clone(); k:set(1, 9)
  T.eq(a:get(1), 1.0)
end)

T.test("tobytes", function()
  local t = sw.tensor({ { 1, 2 }, { 3, 4 } }):t()     -- strided: copied first
  local s = t:tobytes()
  T.eq(#s, 16)
  T.eq(select(2, string.unpack("<f", s, 5)), 9)     -- next offset after element 2
  T.eq(string.unpack("<f", s, 5), 3.0)               -- row-major of the transpose
  T.eq(#sw.zeros({ 3 }, { dtype = "bf16" }):tobytes(), 6)
end)

T.test("randn is seeded", function()
  local x = sw.randn({ 1000 }, { seed = 7 })
  local y = sw.randn({ 1000 }, { seed = 7 })
  local z = sw.randn({ 1000 }, { seed = 8, scale = 0.02 })
  local same, sum, big = true, 0, 0
  for i = 1, 1000 do
    same = same and x:get(i) == y:get(i)
    sum = sum + x:get(i)
    big = math.max(big, math.abs(z:get(i)))
  end
  T.eq(same, true)
  T.near(sum / 1000, 0, 0.15, "mean")
  T.eq(big < 0.02 * 6, true)
  T.eq(sw.full({ 2 }, 3.5):get(2), 3.5)
end)

T.test("display", function()
  local t = sw.tensor({ { 1, 2 }, { 3, 4 } }, { name = "w" })
  local s = tostring(t)
  T.eq(s:find("Tensor w f32[2, 2] cpu workspace", 1, true) ~= nil, true)
  T.eq(s:find("[[1, 2],\n [3, 4]]", 1, true) ~= nil, true)
  local long = tostring(sw.zeros({ 100 }))
  T.eq(long:find("..., ", 1, true) ~= nil, true)
  T.eq(sw.repr({ 1, 2, a = { b = true } }), "{ 1, 2, a = { b = true } }")
  local cyc = {}; cyc.self = cyc
  T.eq(sw.repr(cyc), "{ self = <cycle> }")
end)

T.test("devices", function()
  local d = sw.devices()
  T.eq(d[1].name, "cpu")
  if #d == 1 then
    T.raises(function() sw.zeros({ 2 }, { device = "cuda" }) end, "cuda")
  end
  T.raises(function() sw.zeros({ 2 }, { device = "tpu" }) end, "unknown device 'tpu'")
end)

T.done()
