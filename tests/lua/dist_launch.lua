-- dist_launch.lua — the launcher end to end on the emulated device: run as
-- `stepwise --gpus 2 dist_launch.lua` (ctest: lua.dist_launch). Every cell
-- runs on both ranks (rank 1 is a worker process following rank 0's cells);
-- the 2-rank trainer must give the 1-rank trainer's losses for the same
-- effective batch (accum 2 x 2 ranks = accum 4), its checkpoint must
-- resume, and options that do not fit the session are refused by name.
-- The one-rank reference runs on each rank by itself (no collectives).
assert(select(2, sw.ranks()) == 2, "run me with stepwise --gpus 2")

-- %% setup (every rank)
dofile("dist_setup.lua")

-- %% the reference: one rank, accum 4
m1, ds1, tr1 = fresh{ accum = 4 }
ref = {}
for i = 1, 3 do ref[i] = tr1:step() end

-- %% two ranks, accum 2: the same steps
m2, ds2, tr2 = fresh{ accum = 2, gpus = 2 }
for i = 1, 3 do
  local s = tr2:step()
  assert(math.abs(s.loss - ref[i].loss) <= 1e-5 * ref[i].loss,
    string.format("step %d: loss %.7f on 2 ranks, %.7f on one", i, s.loss, ref[i].loss))
  assert(math.abs(s.grad_norm - ref[i].grad_norm) <= 1e-5 * ref[i].grad_norm, "grad norm")
  assert(s.tokens == ref[i].tokens and s.trained_tokens == ref[i].trained_tokens, "token counts")
end

-- %% ZeRO-1: the same again; a checkpoint, then resume on both ranks
m3, ds3, tr3 = fresh{ accum = 2, gpus = 2, zero = 1, bucket_mb = 0.001 }
for i = 1, 3 do
  local s = tr3:step()
  assert(math.abs(s.loss - ref[i].loss) <= 1e-5 * ref[i].loss, "zero1 loss")
end
-- rank 0 writes one checkpoint; rank 1's path is its own so nothing races
tr3:save(dir .. "/ckpt")
if rank == 0 then
  local f = assert(io.open(dir .. "/ckpt/optimizer.safetensors", "rb"))
  f:close()
end

-- %% resume the 2-rank checkpoint on one rank (accum 2 x 2 becomes 4) and
-- on two ranks: the next step is the reference's 4th on both
m0, ds0, tr0 = fresh{ accum = 4 }
for i = 1, 4 do ref[i] = tr0:step() end
if rank == 0 then
  local m = sw.load("../fixtures/llama", { max_seq = 128, device = "emulate" })
  local ds = sw.dataset(DATA, { tokenizer = tok, max_len = 128 })
  local tr = sw.resume(dir .. "/ckpt", m, ds, { quiet = true })
  assert(tr.global_step == 3)
  local s = tr:step()
  assert(math.abs(s.loss - ref[4].loss) <= 1e-5 * ref[4].loss, "resumed on one rank")
end

-- %% options that do not fit this session are refused by name
local ok, err = pcall(sw.trainer, m3, ds3, with{ accum = 2, gpus = 3 })
assert(not ok and err:find("gpus") and err:find("2 ranks"), err)
ok, err = pcall(sw.trainer, m3, ds3, with{ accum = 2, gpus = 2, zero = 2 })
assert(not ok and err:find("'zero'"), err)
local mc = sw.load("../fixtures/llama", { max_seq = 128 })
mc:lora{ r = 4, alpha = 8 }
ok, err = pcall(sw.trainer, mc, ds3, with{ accum = 2, gpus = 2 })
assert(not ok and err:find("device"), err)
os.execute("rm -rf '" .. dir .. "'")
print("dist_launch: ok on rank " .. rank)
