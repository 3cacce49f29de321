-- score.lua — exact-match accuracy of a model on a held-out split.
--
--   ./stepwise tutorials/data/score.lua [eval file] [limit]
--       scores SmolLM2-135M-Instruct on tutorials/data/travel_eval.jsonl
--   dofile("tutorials/data/score.lua")   -- from a tutorial: defines exact_match()
--
-- exact_match(model, path, {max_new = 16, limit = n, show = 3}) reads any
-- file sw.dataset reads, asks the model each record's conversation up to its
-- last answer (greedy: temperature 0) and compares the reply with that
-- answer after trimming spaces and one trailing full stop. It returns
-- {accuracy =, correct =, total =, contains =, seconds =} and prints a few
-- misses. `contains` counts replies that hold the answer somewhere: the
-- distance between the two is the format the model has not learned yet.

local function trim(s)
  s = s:gsub("^%s+", ""):gsub("%s+$", "")
  return (s:gsub("%.$", ""))
end

function exact_match(model, path, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "max_new" and k ~= "limit" and k ~= "show" then
      error("exact_match: unknown option '" .. tostring(k) .. "' (max_new, limit, show)", 2)
    end
  end
  local ds <close> = sw.dataset(path, { model = model })
  local n = math.min(#ds, opts.limit or #ds)
  local correct, contains, shown, t0 = 0, 0, 0, sw.now()
  for i = 1, n do
    local msgs = ds:record(i).messages
    local answer = table.remove(msgs)
    assert(answer.role == "assistant", "exact_match: the last message of each record must be the answer")
    local reply = model:chat(msgs, { max_new = opts.max_new or 16, temperature = 0, stream = false })
    local want, got = trim(answer.content), trim(reply)
    if got == want then
      correct = correct + 1
    elseif shown < (opts.show or 3) then
      shown = shown + 1
      print(string.format("  miss %d: want %q, got %q", i, want, got))
    end
    if reply:find(want, 1, true) then contains = contains + 1 end
  end
  local r = { accuracy = correct / n, correct = correct, total = n, contains = contains / n,
              seconds = sw.now() - t0 }
  print(string.format("exact match %d/%d = %.1f%% (answer somewhere in the reply: %.1f%%) in %.0f s",
    correct, n, 100 * r.accuracy, 100 * r.contains, r.seconds))
  return r
end

if arg and arg[0] and arg[0]:match("score%.lua$") then
  local model = sw.load("smollm2-135m-instruct")
  local r = exact_match(model, arg[1] or "tutorials/data/travel_eval.jsonl", { limit = tonumber(arg[2]) })
  print(string.format('{"model": "SmolLM2-135M-Instruct", "file": "%s", "accuracy": %.4f, "correct": %d, '
    .. '"total": %d, "contains": %.4f}', arg[1] or "tutorials/data/travel_eval.jsonl", r.accuracy, r.correct,
    r.total, r.contains))
end
