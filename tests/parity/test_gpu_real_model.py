"""tests/gpu/run's checks on the real SmolLM2, here on the emulated device
(the GPU code path on host memory), so CI runs them every time; the GPU
machine runs the same scripts with device "cuda":

  - one whole trainer step against the float32 CPU: loss, gradient norm and
    every adapter gradient, for NF4 and for the file's own Q4_1 blocks;
  - memory: the accounting adds up and returns to where it started; a step
    that does not fit fails cleanly, changes nothing, and the next one runs;
  - the quickstart tutorial's loss curve, `stepwise --device emulate`
    against `--device cpu` (3 steps here, 50 on the GPU).
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def run(cmd, env, timeout=900):
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    return r.stdout


def test_one_step_matches_the_cpu(stepwise_bin, env):
    out = run([stepwise_bin, "tests/gpu/step_parity.lua", "emulate"], env)
    assert "2 passed, 0 failed" in out
    assert out.count("gradients: all") == 2


def test_memory_and_a_step_that_does_not_fit(stepwise_bin, env):
    out = run([stepwise_bin, "tests/gpu/memory.lua", "emulate"], env)
    assert "2 passed, 0 failed" in out
    assert "out of memory on cpu: activations needs" in out


def test_quickstart_loss_curve_tracks_the_cpu(stepwise_bin, env, tmp_path):
    out = run([sys.executable, "tests/gpu/tutorial_curve.py", "--bin", stepwise_bin, "--device", "emulate",
               "--steps", "3", "--out", str(tmp_path)], env, timeout=1800)
    assert "FAIL" not in out and "mean |loss difference|" in out
