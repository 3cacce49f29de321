"""The README's main job, shortened (STEPWISE_QUICK=1: 4 steps, 8 questions):
the quickstart runs cell by cell to the end, trains, and saves a PEFT
adapter directory."""
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def test_quickstart_runs_end_to_end(stepwise_bin, env, tmp_path):
    env = dict(env, STEPWISE_QUICK="1")
    # Run from a copy's point of view: outputs land in tmp_path, data comes from the repo.
    (tmp_path / "tutorials").symlink_to(ROOT / "tutorials")
    r = subprocess.run([stepwise_bin, "--replay", "tutorials/01_quickstart.lua"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "exact match:" in out and "before" in out and "after" in out
    assert "-- %% [10/10] 10. Save the adapter" in out
    cfg = json.loads((tmp_path / "out" / "travel-adapter" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 16 and len(cfg["target_modules"]) == 7
    assert (tmp_path / "out" / "travel-adapter" / "adapter_model.safetensors").stat().st_size > 1000
    steps = [l for l in out.splitlines() if l.startswith("step ") and "| loss" in l]
    assert len(steps) >= 4
