-- bench/cpu_train.lua — LoRA training throughput of SmolLM2-135M on this
-- machine's CPU, against the float32 GEMM rate of the same BLAS measured in
-- the same process.
--
--   ./stepwise bench/cpu_train.lua [out.json]     (default bench/results/cpu_train.json)
--   BENCH_QUANT=nf4|f32|keep  BENCH_SEQ=256  BENCH_ROWS=2  BENCH_CKPT=0|1
--
-- One step = forward + backward (activation gradients through the frozen
-- base, LoRA r=16 on all seven projections) over rows x seq tokens of
-- random ids. FLOPs per token: 2P forward + 2P backward (activations only),
-- P = the parameters of every projection and of the head; with gradient
-- checkpointing one more forward (2P). Attention's T^2 terms are added.

local out = arg[1] or "bench/results/cpu_train.json"
local quant = os.getenv("BENCH_QUANT") or "f32"
local seq = tonumber(os.getenv("BENCH_SEQ") or "256")
local rows = tonumber(os.getenv("BENCH_ROWS") or "2")
local ckpt = os.getenv("BENCH_CKPT") == "1"
local m = sw.load("smollm2-135m-instruct", { quant = quant, max_seq = seq })
local c = m.config
m:lora{ r = 16, alpha = 16 }

local P = c.layers * (c.hidden * (c.heads + 2 * c.kv_heads) * c.head_dim + c.heads * c.head_dim * c.hidden
  + 3 * c.hidden * c.intermediate) + c.vocab * c.hidden
local attn = 2 * 2 * c.layers * c.heads * c.head_dim * seq / 2  -- q.k and p.v, causal half, per token
local flops_token = (ckpt and 6 or 4) * P + (ckpt and 3 or 2) * attn * 2
-- The head runs only over trained positions: every position here.

local ids = {}
for i = 1, rows * seq do ids[i] = (i * 7919) % c.vocab end
local starts = {}
for r = 1, rows - 1 do starts[r] = r * seq end

m:loss({ 1, 2, 3 }, { backward = true }) -- warm up
local best = math.huge
for _ = 1, 3 do
  local t0 = sw.now()
  m:loss(ids, { starts = starts, backward = true, checkpointing = ckpt })
  best = math.min(best, sw.now() - t0)
end
local tps = rows * seq / best
local gemm = sw.gemm_rate(rows * seq, c.intermediate, c.hidden, 2.0)
local r = {
  model = "SmolLM2-135M-Instruct", weights = m.quant, lora_r = 16, rows = rows, seq = seq,
  checkpointing = ckpt and 1 or 0, step_seconds = best, tokens_per_s = tps,
  gflops = tps * flops_token / 1e9, gemm_gflops = gemm,
}
r.fraction_of_gemm = r.gflops / gemm
sw.write_results(out, r)
