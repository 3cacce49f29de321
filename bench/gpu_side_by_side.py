#!/usr/bin/env python3
"""Run stepwise's GPU training benchmark and the HF transformers + PEFT anchor
side by side on one machine, in one call, and print a table of the ratios.

    python3 bench/gpu_side_by_side.py BUILD_DIR [config ...]

A config is shape:bs:seq:ckpt (ANCHORS.md's rows by default). For each one
stepwise runs with bf16 weights and, for the 8B shapes, NF4 weights; HF runs
its bf16 recipe. JSON goes to $OUT/gpu_bench.json (or bench/results/).
"""
import json, os, subprocess, sys, time

ROWS = ["smollm2-135m:8:2048:0", "smollm2-135m:8:2048:1", "qwen2.5-1.5b-like:4:2048:1",
        "llama3-8b:4:2048:1", "llama3-8b:1:2048:1", "llama3-8b:4:2048:0"]


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
    rows = sys.argv[2:] or ROWS
    exe = os.path.join(build, "bench_gpu_train")
    gemm = run_json([exe, "--gemm"], 120)
    tflops = gemm.get("gemm_bf16_tflops", 0)
    results = {"gemm": gemm, "rows": []}
    for row in rows:
        shape, bs, seq, ck = row.split(":")
        hf = run_json([sys.executable, "bench/hf_peft_baseline.py", "--only", row], 600)
        ours = {}
        for w in (["bf16", "nf4"] if shape.startswith("llama3") else ["bf16"]):
            ours[w] = run_json([exe, "--shape", shape, "--batch", bs, "--seq", seq, "--ckpt", ck, "--weights", w], 600)
        results["rows"].append({"config": row, "hf": hf, "stepwise": ours})
        print(json.dumps(results["rows"][-1]), flush=True)
    out = os.environ.get("OUT") or "bench/results"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu_bench.json"), "w") as f:
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


if __name__ == "__main__":
    main()
