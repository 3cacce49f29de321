# Anchor measurement (copied from the team's shared/bench so it travels to the GPU machine): HF transformers + PEFT LoRA training step on random-init models of real shapes.
# Prints tokens/s and peak GPU memory per config. Run on the GPU machine: python3 bench/hf_peft_baseline.py
import json, os, sys, time, gc
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model

SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
    "qwen2.5-1.5b-like": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0),
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0),
}

def run(shape, bs, seq, ckpt, steps=6, warm=2):
    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=8192, **SHAPES[shape])
    cfg._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lcfg = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"])
    model = get_peft_model(model, lcfg)
    params = [p for p in model.parameters() if p.requires_grad]
    ntrain = sum(p.numel() for p in params); ntotal = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (bs, seq), device="cuda")
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + warm):
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.3)
        opt.step(); opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= warm: times.append(time.perf_counter() - t0)
    times.sort(); med = times[len(times)//2]
    peak = torch.cuda.max_memory_allocated() / 2**30
    res = dict(shape=shape, bs=bs, seq=seq, ckpt=ckpt, step_s=round(med,4), tok_s=round(bs*seq/med,1),
               peak_gib=round(peak,2), trainable=ntrain, total=ntotal, loss=float(out.loss))
    del model, opt, out, params; gc.collect(); torch.cuda.empty_cache()
    return res

if __name__ == "__main__":
    print("torch", torch.__version__, torch.cuda.get_device_name(0), flush=True)
    import transformers, peft; print("transformers", transformers.__version__, "peft", peft.__version__, flush=True)
    configs = [("smollm2-135m", 8, 2048, False), ("smollm2-135m", 8, 2048, True),
               ("qwen2.5-1.5b-like", 4, 2048, True), ("llama3-8b", 4, 2048, True),
               ("llama3-8b", 1, 2048, True), ("llama3-8b", 4, 2048, False)]
    # stepwise: `--only shape:bs:seq:ckpt` runs one configuration (bench/gpu_side_by_side.py)
    if "--only" in sys.argv:
        sh, bs, seq, ck = sys.argv[sys.argv.index("--only") + 1].split(":")
        configs = [(sh, int(bs), int(seq), ck == "1")]
    out = []
    for c in configs:
        try:
            r = run(*c)
        except torch.OutOfMemoryError as e:
            r = dict(shape=c[0], bs=c[1], seq=c[2], ckpt=c[3], error="OOM")
            gc.collect(); torch.cuda.empty_cache()
        print(json.dumps(r), flush=True); out.append(r)
    if os.environ.get("OUT"):
        json.dump(out, open(os.path.join(os.environ["OUT"], "hf_peft_baseline.json"), "w"), indent=1)
