-- test_lifetime.lua — objects are born closed, freed once, and misuse is a
-- clear error; memory comes back on free, __close and collection.
local T = dofile("harness.lua")

-- Garbage from earlier tests is collected first, so counts are exact.
local function host_now() collectgarbage(); collectgarbage(); return sw.mem({ quiet = true }).cpu.now end

T.test("free returns memory; double free and use after free raise", function()
  local base = host_now()
  local t = sw.zeros({ 256, 256 })
  T.eq(host_now() - base, 256 * 256 * 4)
  t:free()
  T.eq(host_now(), base)
  T.raises(function() t:free() end, "already freed")
  T.raises(function() return t.shape end, "has been freed")
  T.raises(function() t:get(1, 1) end, "has been freed")
  T.raises(function() sw.zeros({ 2 }):copy(t) end, "has been freed")
  T.eq(tostring(t), "Tensor (freed)")
end)

T.test("<close> frees at scope end, and a later free is an error", function()
  local base = host_now()
  do
    local t <close> = sw.zeros({ 1024 })
    T.eq(host_now() - base, 4096)
  end
  T.eq(host_now(), base)
  local kept
  do
    local t <close> = sw.zeros({ 8 })
    kept = t
    t:free()                         -- then __close at scope end: harmless
  end
  T.raises(function() kept:free() end, "already freed")
end)

T.test("garbage collection frees unreachable tensors", function()
  local base = host_now()
  for _ = 1, 50 do local _ = sw.zeros({ 1000 }) end
  collectgarbage(); collectgarbage()
  T.eq(host_now(), base)
end)

T.test("wrong types are named", function()
  T.raises(function() sw.zeros({ 2 }):copy({}) end, "expected a Tensor, got table")
  T.raises(function() sw.zeros("3") end, "table expected")
  T.raises(function() sw.zeros({ -1 }) end, "non-negative integer")
  T.raises(function() sw.zeros({ 1, 1, 1, 1, 1 }) end, "at most 4 dimensions")
  T.raises(function() return sw.zeros({ 2 }).shap end, "did you mean 'shape'")
end)

T.test("a failed allocation changes nothing", function()
  local base = host_now()
  local t = sw.full({ 4 }, 1)
  local limit = host_now() + 64
  T.eq(sw.mem_limit("cpu", limit), nil)
  local before = host_now()
  T.raises(function() sw.zeros({ 1000 }) end, "out of memory on cpu")
  T.eq(host_now(), before)
  T.raises(function() sw.zeros({ 4 }):to("f32"):to("f32"):to("f32"):to("f32"):to("f32") end, "out of memory")
  collectgarbage()
  T.eq(host_now(), before)
  T.eq(sw.mem_limit("cpu", nil), limit)
  T.eq(t:get(4), 1.0)
  t:free()
  collectgarbage()
  T.eq(host_now(), base)
end)

T.done()
