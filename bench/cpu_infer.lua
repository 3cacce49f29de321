-- bench/cpu_infer.lua — SmolLM2-135M-Instruct on this machine's CPU:
-- prompt processing and decode tokens/s, and the fraction of the machine's
-- float32 GEMM rate (same BLAS, same process) that each reaches.
--
--   ./stepwise bench/cpu_infer.lua [out.json]      (default bench/results/cpu_infer.json)
--
-- FLOPs per token are 2 x (parameters in the matrices a token passes
-- through: every projection and the head); attention's own FLOPs are added.

local out = arg[1] or "bench/results/cpu_infer.json"
local quant = os.getenv("BENCH_QUANT") or "keep"
local m = sw.load("smollm2-135m-instruct", { quant = quant, max_seq = 1024 })
local c = m.config

local matrix_params = c.layers * (c.hidden * (c.heads + 2 * c.kv_heads) * c.head_dim
  + c.heads * c.head_dim * c.hidden + 3 * c.hidden * c.intermediate) + c.vocab * c.hidden
local function flops_per_token(ctx_len)
  -- q.k and att.v: 2 x 2 x heads x head_dim x positions per layer
  return 2 * matrix_params + 4 * c.layers * c.heads * c.head_dim * ctx_len
end

local function best_of(n, fn)
  local best = math.huge
  for _ = 1, n do
    local t0 = sw.now()
    fn()
    local dt = sw.now() - t0
    if dt < best then best = dt end
  end
  return best
end

-- Prompt processing: 256 tokens in one forward.
local prompt = {}
for i = 1, 256 do prompt[i] = (i * 7919) % c.vocab end
m:logits({ 1, 2, 3 }) -- warm up
local pp_s = best_of(3, function() m:logits(prompt) end)
local pp_tps = #prompt / pp_s

-- Decode: 64 new tokens after a short prompt, greedy.
local text, info = m:generate("The history of the printing press", { max_new = 64, stream = false, temperature = 0 })
local dec_tps = info.tokens_per_second

-- The machine's GEMM rate on the forward's shapes (x W^T).
local gemm_pp = sw.gemm_rate(#prompt, c.intermediate, c.hidden, 2.0)
local gemm_dec = sw.gemm_rate(1, c.intermediate, c.hidden, 1.0)

local r = {
  model = "SmolLM2-135M-Instruct", weights = m.quant, threads = os.getenv("OPENBLAS_NUM_THREADS") or "default",
  prompt_tokens = #prompt, prompt_tokens_per_s = pp_tps,
  prompt_gflops = pp_tps * flops_per_token(#prompt / 2) / 1e9,
  gemm_gflops_prompt_shape = gemm_pp,
  decode_tokens = info.new_tokens, decode_tokens_per_s = dec_tps,
  decode_gflops = dec_tps * flops_per_token(info.prompt_tokens + info.new_tokens / 2) / 1e9,
  gemm_gflops_decode_shape = gemm_dec,
}
r.prompt_fraction_of_gemm = r.prompt_gflops / gemm_pp
r.decode_fraction_of_gemm = r.decode_gflops / gemm_dec

sw.write_results(out, r)
