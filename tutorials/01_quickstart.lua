-- 01_quickstart.lua — a first tour of stepwise, one cell at a time.
--
-- Run it:          ./stepwise tutorials/01_quickstart.lua
-- Step through it: ./stepwise --replay --pause tutorials/01_quickstart.lua
--
-- Each "-- %%" line starts a cell, as in a notebook. Today the tour covers
-- the runtime every later step stands on: devices, tensors, and what each
-- cell costs in time and memory. Loading SmolLM2, LoRA training and
-- generation join this file as they land.

-- %% 1. What is here
sw.profile(true)          -- a cost line after every cell
for _, d in ipairs(sw.devices()) do
  print(d.name, d.description)
end

-- %% 2. Tensors live on a device and are charged to a memory category
device = #sw.devices() > 1 and "cuda" or "cpu"
w = sw.randn({ 1024, 1024 }, { seed = 3407, scale = 0.02, device = device, category = "weights" })
print(w)

-- %% 3. bf16 halves the bytes; views cost nothing
w16 = w:to("bf16")
first_rows = w16:narrow(1, 1, 4)      -- rows 1..4, shares w16's memory
print(first_rows.shape[1], first_rows.shape[2], first_rows.dtype)

-- %% 4. The whole memory table, by device and category
sw.mem()

-- %% 5. Free what you no longer need; the cost line shows it come back
w:free()
w16:free()
first_rows:free()
