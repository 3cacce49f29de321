"""A stepwise-trained adapter loads in PEFT and gives stepwise's logits.

Needs torch, transformers and peft (not in the test venv: run it where they
are, e.g. the GPU machine or a scratch venv):

    python tests/interop/peft_roundtrip.py build/stepwise          # both halves here
    python tests/interop/peft_roundtrip.py --make DIR build/stepwise   # stepwise side only
    python tests/interop/peft_roundtrip.py --check DIR             # PEFT side only (e.g. on the GPU machine)

stepwise trains a LoRA for a few steps on the llama fixture, saves it with
lora:save (PEFT format) and writes its logits; PeftModel.from_pretrained
loads the directory onto the same base and must agree within 1e-4.
"""
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
FIX = ROOT / "tests" / "fixtures"


FAMILIES = ("llama", "qwen2", "qwen3", "mistral")


def make(stepwise, root):
    """stepwise trains an adapter per family, saves it and its logits."""
    for fam in FAMILIES:
        d = FIX / fam
        out = pathlib.Path(root) / fam
        out.mkdir(parents=True, exist_ok=True)
        ids = load_file(str(d / "expected.safetensors"))["input_ids"]
        flat = ",".join(str(int(x)) for x in ids.reshape(-1))
        script = f"""
            local m = sw.load("{d}")
            local a = m:lora{{ r = 8, alpha = 16, seed = 7, targets = {{"q_proj", "v_proj", "o_proj", "down_proj"}} }}
            local opt = sw.optimizer(a, {{ name = "adamw" }})
            local ids = {{{flat}}}
            for _ = 1, 5 do a:zero_grad(); m:loss(ids, {{ starts = {{24}}, backward = true }}); opt:update(1e-2) end
            a:save("{out}/adapter")
            local rows = {{}}
            for b = 0, 1 do
              local s = {{}}
              for i = 1, 24 do s[i] = ids[b * 24 + i] end
              rows[#rows + 1] = m:logits(s, {{ all = true }})
            end
            io.open("{out}/logits.bin", "wb"):write(rows[1]:tobytes() .. rows[2]:tobytes())
        """
        r = subprocess.run([stepwise, "-e", script], capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)


def check(root):
    """PEFT loads each saved adapter onto the same base: same logits?"""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    results = []
    for fam in FAMILIES:
        d, out = FIX / fam, pathlib.Path(root) / fam
        exp = load_file(str(d / "expected.safetensors"))
        ours = np.frombuffer((out / "logits.bin").read_bytes(), dtype=np.float32).reshape(2, 24, -1)
        base = AutoModelForCausalLM.from_pretrained(str(d), torch_dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
        with torch.no_grad():
            theirs = model(input_ids=torch.tensor(exp["input_ids"], dtype=torch.long)).logits.numpy()
        results.append((fam, float(np.abs(ours - theirs).max()), float(np.abs(ours - exp["logits"]).max())))
    print(f"torch {torch.__version__}")
    print(f"{'family':8} {'max|stepwise - PEFT|':>22} {'adapter effect':>16}")
    for fam, err, effect in results:
        print(f"{fam:8} {err:22.3g} {effect:16.3g}")
    bad = [f for f, e, b in results if not (e <= 1e-4 and b > 1e-2)]
    if bad:
        sys.exit(f"FAILED: {bad}")
    print("ok: PEFT loads every stepwise adapter and reproduces its logits")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--make":
        make(a[2] if len(a) > 2 else str(ROOT / "build" / "stepwise"), a[1])
    elif a and a[0] == "--check":
        check(a[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            make(a[0] if a else str(ROOT / "build" / "stepwise"), tmp)
            check(tmp)
