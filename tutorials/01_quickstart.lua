-- 01_quickstart.lua — a first tour of stepwise, one cell at a time.
--
-- Run it:          ./stepwise tutorials/01_quickstart.lua
-- Step through it: ./stepwise --replay --pause tutorials/01_quickstart.lua
--
-- Each "-- %%" line starts a cell, as in a notebook, and every cell ends
-- with what it cost: time, and memory by category. The model is
-- SmolLM2-135M-Instruct, which ./bootstrap fetched into the cache.
-- LoRA training joins this tour with the trainer.

-- %% 1. What is here
sw.profile(true)          -- a cost line after every cell
for _, d in ipairs(sw.devices()) do
  print(d.name, d.description)
end

-- %% 2. Load the model (its GGUF weights stay Q4_1; the cost line shows them arrive)
model = sw.load("smollm2-135m-instruct", { max_seq = 1024 })
print(model)

-- %% 3. Text becomes token ids, and back
tok = model.tokenizer
ids = tok:encode("Fine-tuning, one step at a time.")
print(#ids .. " tokens:", table.concat(ids, " "))
for i = 1, 4 do io.write(string.format("%q ", tok:token(ids[i]))) end
print()
print(tok:decode(ids))

-- %% 4. Ask it something (tokens stream as they are generated; Ctrl-C stops)
answer, info = model:chat("What is the capital of France? Answer in one sentence.", { max_new = 48 })
print(string.format("%d tokens, %.1f tokens/s, stopped by %s", info.new_tokens, info.tokens_per_second, info.stop_reason))

-- %% 5. Sampling: temperature, top-p and a seed make it varied but repeatable
model:chat("Give me a name for a friendly dragon.", { max_new = 24, temperature = 0.8, top_p = 0.9, seed = 3407 })

-- %% 6. Where the memory went
sw.mem()
