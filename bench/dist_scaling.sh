#!/usr/bin/env bash
# dist_scaling.sh — scaling efficiency of data-parallel LoRA training for the
# 8B shape: bench_dist_scaling on 1, 2, 4, 8 GPUs (as many as the machine
# has), tokens/s per GPU on N GPUs / on one. NCCL's NVLink multicast stays
# off (the communicator forces NCCL_NVLS_ENABLE=0).
#
#   bench/dist_scaling.sh BUILD_DIR [OUT.json]     # extra args via BENCH_ARGS
set -euo pipefail
build=${1:?usage: bench/dist_scaling.sh BUILD_DIR [OUT.json]}
out=${2:-bench/results/dist_scaling.json}
args=${BENCH_ARGS:---shape llama3-8b --weights nf4 --batch 4 --seq 2048 --ckpt 1 --steps 6 --warm 2}
have=$(nvidia-smi -L 2>/dev/null | wc -l)
[[ $have -ge 1 ]] || { echo "dist_scaling: no GPU" >&2; exit 77; }
mkdir -p "$(dirname "$out")"
rows=()
for n in 1 2 4 8; do
  [[ $n -le $have ]] || { echo "dist_scaling: $n GPUs: not run (this machine has $have)" >&2; continue; }
  # shellcheck disable=SC2086
  rows+=("$("$build/bench_dist_scaling" --gpus "$n" $args)")
done
python3 - "$out" "${rows[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], [json.loads(r) for r in sys.argv[2:]]
one = next((r["tok_s_per_gpu"] for r in rows if r["gpus"] == 1), None)
for r in rows:
    r["scaling_efficiency"] = r["tok_s_per_gpu"] / one if one else None
    print(f'{r["gpus"]} GPU(s): {r["tok_s"]:.0f} tokens/s, {r["tok_s_per_gpu"]:.0f} per GPU, '
          f'efficiency {r["scaling_efficiency"]:.3f}' if one else r)
json.dump(rows, open(out, "w"), indent=1)
PY
