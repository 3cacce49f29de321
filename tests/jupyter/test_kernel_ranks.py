"""The kernel with --gpus 2: a worker rank follows every cell; its errors
come back into the cell's output, prefixed with its rank; a kernel made by
`install-kernel --gpus 2` carries the flag."""
import json
import subprocess

import pytest
from jupyter_client.manager import start_new_kernel


@pytest.fixture
def ranks_kernel(stepwise_bin, tmp_path, monkeypatch):
    prefix = tmp_path / "prefix"
    subprocess.run([stepwise_bin, "install-kernel", "--prefix", str(prefix), "--name", "stepwise-2", "--gpus", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    spec = json.loads((prefix / "share/jupyter/kernels/stepwise-2/kernel.json").read_text())
    assert spec["argv"][-2:] == ["--gpus", "2"]
    assert "2 GPUs" in spec["display_name"]
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    km, kc = start_new_kernel(kernel_name="stepwise-2", startup_timeout=30)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code, timeout=30):
    mid = kc.execute(code)
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != mid:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        out.append((m["msg_type"], m["content"]))
    while True:
        r = kc.get_shell_msg(timeout=timeout)
        if r["parent_header"].get("msg_id") == mid:
            return r["content"], out


def text(out, name):
    return "".join(c["text"] for t, c in out if t == "stream" and c["name"] == name)


def test_worker_follows_cells(ranks_kernel):
    kc = ranks_kernel
    reply, out = run(kc, "r, w = sw.ranks(); print(r, w)")
    assert reply["status"] == "ok"
    assert text(out, "stdout").splitlines()[0] == "0\t2"  # the worker prints nowhere
    # state carries over on the worker too: it fails only where x is missing
    run(kc, "x = 41")
    reply, out = run(kc, "if r == 1 then assert(x == 41); error('only on rank 1') end")
    assert "rank 1:" in text(out, "stderr") and "only on rank 1" in text(out, "stderr")
    reply, out = run(kc, "print(x + 1)")
    assert reply["status"] == "ok" and text(out, "stdout").splitlines()[0] == "42"
