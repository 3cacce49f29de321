-- harness.lua — a few assertions for the Lua binding tests. Each test file
-- ends with T.done(), which raises if anything failed, so the stepwise
-- process exits non-zero and ctest reports the file as failed.
local T = { passed = 0, failed = 0 }

function T.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    io.stderr:write(string.format("FAIL %s\n  %s\n", name, err))
  end
end

function T.eq(a, b, what)
  if a ~= b then
    error(string.format("%s: expected %s, got %s", what or "value", tostring(b), tostring(a)), 2)
  end
end

function T.near(a, b, tol, what)
  if math.abs(a - b) > tol then
    error(string.format("%s: expected %g +- %g, got %g", what or "value", b, tol, a), 2)
  end
end

-- fn must raise, with a message containing `needle` (plain text).
function T.raises(fn, needle)
  local ok, err = pcall(fn)
  if ok then error("expected an error containing '" .. needle .. "', got none", 2) end
  err = tostring(err)
  if not err:find(needle, 1, true) then
    error(string.format("error message '%s' does not contain '%s'", err, needle), 2)
  end
  return err
end

function T.done()
  io.stdout:write(string.format("%d passed, %d failed\n", T.passed, T.failed))
  if T.failed > 0 then error(string.format("%d test(s) failed", T.failed), 0) end
end

return T
