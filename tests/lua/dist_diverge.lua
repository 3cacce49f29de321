-- dist_diverge.lua — run as `stepwise --gpus 2 dist_diverge.lua` (ctest:
-- lua.dist_diverge). Rank 1 alone takes an extra step: its collective meets
-- rank 0's end of the cell, so the step fails there with a message saying
-- so (a failed step changes nothing; uncaught, rank 0 would print it
-- prefixed "rank 1:" and the script would stop). The next cell's step runs
-- on both ranks at the same step again.
dofile("dist_setup.lua")

-- %%
m, ds, tr = fresh{ accum = 2, gpus = 2 }
tr:step()

-- %% only rank 1 steps
if rank == 1 then
  local ok, err = pcall(tr.step, tr)
  assert(not ok and err:find("rank 0 finished this cell"), err)
end

-- %% both again: in step
local s = tr:step()
assert(s.step == 2, "step " .. s.step)
print("after: ok at step " .. s.step)
os.execute("rm -rf '" .. dir .. "'")
