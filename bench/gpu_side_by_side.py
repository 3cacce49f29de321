#!/usr/bin/env python3
"""Run stepwise's GPU training benchmark and the HF transformers + PEFT anchor
side by side on one machine, in one call, and print a table of the ratios.

    python3 bench/gpu_side_by_side.py BUILD_DIR [--long] [config ...]

A config is shape:bs:seq:ckpt (ANCHORS.md's rows by default). For each one
stepwise runs with bf16 weights and, for the 8B shapes, NF4 weights; HF runs
its bf16 recipe. --long adds the long-context rows: the longest context whose
step allocates within 80 GiB (8B NF4, batch 1, checkpoints offloaded) and a
real step at 64K tokens. JSON goes to $OUT/gpu_bench.json (or bench/results/).
"""
import json, os, subprocess, sys, time

ROWS = ["smollm2-135m:8:2048:0", "smollm2-135m:8:2048:1", "qwen2.5-1.5b-like:4:2048:1",
        "llama3-8b:4:2048:1", "llama3-8b:1:2048:1", "llama3-8b:4:2048:0"]


PROFILE_ROWS = [("smollm2-135m:8:2048:0", "bf16"), ("llama3-8b:4:2048:1", "nf4"), ("llama3-8b:4:2048:0", "bf16")]


def run_json(cmd, timeout):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode or not lines:
        sys.stderr.write(f"$ {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}\n")
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    r = json.loads(lines[-1])
    r["wall_s"] = round(time.time() - t0, 1)
    return r


def main():
    build = sys.argv[1]
    long = "--long" in sys.argv[2:]
    only_long = "--only-long" in sys.argv[2:]
    rows = [] if only_long else [a for a in sys.argv[2:] if not a.startswith("--")] or ROWS
    long = long or only_long
    exe = os.path.join(build, "bench_gpu_train")
    gemm = {} if only_long else run_json([exe, "--gemm"], 120)
    tflops = gemm.get("gemm_bf16_tflops", 0)
    results = {"gemm": gemm, "rows": []}
    for row in rows:
        shape, bs, seq, ck = row.split(":")
        hf = run_json([sys.executable, "bench/hf_peft_baseline.py", "--only", row], 600)
        ours = {}
        for w in (["bf16", "nf4"] if shape.startswith("llama3") else ["bf16"]):
            ours[w] = run_json([exe, "--shape", shape, "--batch", bs, "--seq", seq, "--ckpt", ck, "--weights", w], 600)
        if shape.startswith("llama3") and ck == "1":  # checkpoints in pinned host memory
            ours["nf4+off"] = run_json([exe, "--shape", shape, "--batch", bs, "--seq", seq, "--ckpt", ck, "--weights",
                                        "nf4", "--offload", "1"], 600)
        results["rows"].append({"config": row, "hf": hf, "stepwise": ours})
        print(json.dumps(results["rows"][-1]), flush=True)
    # where the time goes: per-op timing of the rows whose targets are missed
    # (the profiler's events add a little host work, and it runs without graphs)
    results["profiles"] = {}
    for row, w in ([] if only_long else PROFILE_ROWS):
        shape, bs, seq, ck = row.split(":")
        results["profiles"][f"{row}:{w}"] = run_json([exe, "--shape", shape, "--batch", bs, "--seq", seq, "--ckpt", ck,
                                                      "--weights", w, "--profile", "1"], 600)
    if long:
        results["max_context"] = run_json([exe, "--max-context", "--shape", "llama3-8b", "--weights", "nf4",
                                           "--offload", "1", "--limit-gib", "80"], 600)
        print(json.dumps(results["max_context"]), flush=True)
        results["long_step"] = run_json([exe, "--shape", "llama3-8b", "--weights", "nf4", "--batch", "1", "--seq",
                                         "65536", "--ckpt", "1", "--offload", "1", "--steps", "1", "--warm", "1"], 600)
        print(json.dumps(results["long_step"]), flush=True)
    out = os.environ.get("OUT") or "bench/results"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu_bench_long.json" if only_long else "gpu_bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nmeasured bf16 GEMM rate: {tflops} TFLOP/s")
    print(f"{'config':28} {'HF tok/s':>9} {'HF GiB':>7} | {'weights':7} {'tok/s':>9} {'GiB':>6} {'MFU':>5} {'x HF':>5}")
    for r in results["rows"]:
        hf = r["hf"]
        for w, s in r["stepwise"].items():
            if "error" in s:
                print(f"{r['config']:28} {hf.get('tok_s', 0):9.0f} {hf.get('peak_gib', 0):7.1f} | {w:7} error: {s['error']}")
                continue
            mfu = s["tok_s"] * s["gflop_per_token"] * 1e9 / (tflops * 1e12) if tflops else 0
            ratio = s["tok_s"] / hf["tok_s"] if hf.get("tok_s") else 0
            print(f"{r['config']:28} {hf.get('tok_s', 0):9.0f} {hf.get('peak_gib', 0):7.1f} | {w:7} {s['tok_s']:9.0f} "
                  f"{s['peak_gib']:6.1f} {mfu:5.0%} {ratio:5.2f}")

    for name, p in results["profiles"].items():
        prof = p.get("profile")
        if not prof:
            print(f"\nprofile {name}: {p.get('error')}")
            continue
        print(f"\nwhere the time goes, {name}: {p['step_s'] * 1e3:.1f} ms/step, GPU busy {prof['busy_pct']:.0f}%")
        for op, v in list(prof["ops"].items())[:12]:
            print(f"  {op:22} {v['ms']:9.2f} ms {v['pct']:5.1f}%  {v['calls']:7.0f} calls")
    if long:
        m, ls = results["max_context"], results["long_step"]
        print(f"longest context allocating within 80 GiB (8B NF4, batch 1, offloaded checkpoints): "
              f"{m.get('max_context_allocated', m.get('error'))} tokens, peak {m.get('peak_gib', 0)} GiB")
        print(f"8B NF4 1x65536 step, offloaded: {ls.get('step_s', ls.get('error'))} s, {ls.get('tok_s', 0):.0f} tok/s, "
              f"{ls.get('peak_gib', 0)} GiB")


if __name__ == "__main__":
    main()
