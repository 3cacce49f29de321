-- 01_quickstart.lua — fine-tune a real model in a few minutes, one cell at a time.
--
-- Run it:          ./stepwise tutorials/01_quickstart.lua
-- Step through it: ./stepwise --replay --pause tutorials/01_quickstart.lua
--
-- SmolLM2-135M-Instruct (fetched by ./bootstrap) learns to answer "which
-- city is the traveller going to?" with just the city. We measure exact-match
-- accuracy on held-out sentences, train a LoRA adapter on the 4-bit (NF4)
-- base — QLoRA — for a few minutes on the CPU, and measure again. Every
-- cell ends with its cost: time, and memory by category.
--
-- STEPWISE_QUICK=1 runs a short version (CI uses it); STEPWISE_STEPS=n sets
-- the number of training steps. On a GPU: ./stepwise --device cuda tutorials/01_quickstart.lua

-- %% 1. Settings
sw.profile(true)
local quick = os.getenv("STEPWISE_QUICK") == "1"
STEPS = tonumber(os.getenv("STEPWISE_STEPS") or "") or (quick and 4 or 100)  -- optimizer steps of 4 samples each
EVAL_N = quick and 8 or 40           -- held-out questions to score
-- The data sits next to this file: from the repository root (the REPL) or
-- from tutorials/ (Jupyter starts a notebook's kernel in its folder).
DATA = io.open("tutorials/data/score.lua") and "tutorials/data/" or "data/"
dofile(DATA .. "score.lua")          -- defines exact_match(model, file, opts)
for _, d in ipairs(sw.devices()) do print(d.name, d.description) end

-- %% 2. Load the model, quantized to NF4 on load (the weights stay 4-bit)
model = sw.load("smollm2-135m-instruct", { quant = "nf4", max_seq = 512 })
print(model)

-- %% 3. The data: which tokens train (the answers) and which are masked
train = sw.dataset(DATA .. "travel_train.jsonl", { model = model, max_len = 256 })
eval = sw.dataset(DATA .. "travel_eval.jsonl", { model = model, max_len = 256 })
train:stats()
train:preview(1)

-- %% 4. Before training: how often is the reply exactly the city?
before = exact_match(model, DATA .. "travel_eval.jsonl", { limit = EVAL_N, max_new = 10 })

-- %% 5. A LoRA adapter on every projection (the base stays frozen, in NF4)
lora = model:lora{ r = 16, alpha = 16, dropout = 0, seed = 3407,
                   targets = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" } }
print(lora)

-- %% 6. The trainer: AdamW, cosine schedule with warmup, clipping
tr = sw.trainer(model, train, { batch = 4, accum = 1, lr = 5e-4, schedule = "cosine", warmup = 5,
                                weight_decay = 0.01, max_grad_norm = 1.0, max_steps = STEPS, seed = 3407,
                                eval = eval })
tr:step()                            -- one step, to see what a step costs

-- %% 7. Train the rest (Ctrl-C stops between steps; everything stays consistent)
tr:run{}
print(string.format("loss: first step %.3f, last step %.3f", tr.history[1].loss, tr.history[#tr.history].loss))
print(string.format("held-out loss %.3f", tr:eval().loss))

-- %% 8. After training: the same questions
after = exact_match(model, DATA .. "travel_eval.jsonl", { limit = EVAL_N, max_new = 10 })
print(string.format("exact match: %.0f%% before, %.0f%% after", 100 * before.accuracy, 100 * after.accuracy))

-- %% 9. Ask it something new
model:chat({ { role = "user", content = "Which city is the traveller going to? Answer with just the city name.\n\n"
  .. "Leaving Lisbon at dawn, Amara takes the night train to Vienna." } }, { max_new = 12 })

-- %% 10. Save the adapter (PEFT format: adapter_config.json + adapter_model.safetensors)
lora:save("out/travel-adapter")
print("saved out/travel-adapter")
sw.mem()
