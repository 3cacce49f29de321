"""Tutorial notebooks: each tutorials/*.lua has a committed .ipynb that is
exactly what sw.to_ipynb makes from it now, the notebook is valid nbformat
4.5, and (where the stepwise Jupyter kernel exists) it runs top to bottom.

Regenerate after editing a tutorial:
    ./build/stepwise -e 'sw.to_ipynb("tutorials/NN_name.lua")'
"""
import json
import pathlib
import shutil
import subprocess

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPTS = sorted((ROOT / "tutorials").glob("*.lua"))


def convert(stepwise_bin, script, out):
    code = f"sw.to_ipynb({json.dumps(str(script))}, {json.dumps(str(out))})"
    r = subprocess.run([stepwise_bin, "-e", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_committed_notebook_is_up_to_date(stepwise_bin, script, tmp_path):
    committed = script.with_suffix(".ipynb")
    assert committed.exists(), f"{committed.name} is missing: run sw.to_ipynb(\"tutorials/{script.name}\")"
    fresh = convert(stepwise_bin, script, tmp_path / committed.name)
    assert json.loads(fresh) == json.loads(committed.read_text(encoding="utf-8")), \
        f"{committed.name} is stale: run sw.to_ipynb(\"tutorials/{script.name}\")"
    assert fresh == committed.read_text(encoding="utf-8"), "same content, different layout"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_notebook_is_valid_and_matches_cells(script):
    nb = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "stepwise"
    assert nb.metadata.language_info.name == "lua"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)
    # every code line of the script is in a code cell, in order
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    lines = [l for l in script.read_text(encoding="utf-8").splitlines()
             if l.strip() and not l.lstrip().startswith("--")]
    pos = 0
    for l in lines:
        pos = code.find(l, pos)
        assert pos >= 0, f"line not in a code cell (or out of order): {l}"


def test_conversion_rules(stepwise_bin, tmp_path):
    src = tmp_path / "demo one.lua"
    src.write_text("#!/usr/bin/env stepwise\n-- Intro <prose>\n--\n-- more\n\n"
                   "-- %% 1. First\nx = 1\n\n-- %% Only words\n-- just a note\n"
                   "-- %%\nprint(\"a\\tb\")\n", encoding="utf-8")
    nb = json.loads(convert(stepwise_bin, src, tmp_path / "demo.ipynb"))
    cells = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    assert cells == [("markdown", "Intro <prose>\n\nmore"), ("markdown", "## 1. First"), ("code", "x = 1"),
                     ("markdown", "## Only words\n\njust a note"), ("code", 'print("a\\tb")')]
    assert [c["id"] for c in nb["cells"]] == [f"demo-one-{i:02d}" for i in range(1, 6)]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
    again = convert(stepwise_bin, src, tmp_path / "demo2.ipynb")
    assert again == (tmp_path / "demo.ipynb").read_text(encoding="utf-8"), "deterministic"
    nbformat.validate(nbformat.reads(again, as_version=4))


def kernel_available(stepwise_bin, tmp_path):
    """The kernel name to run with, after making a kernelspec if only the
    `stepwise kernel` subcommand exists; None when there is no kernel."""
    from jupyter_client.kernelspec import find_kernel_specs
    if "stepwise" in find_kernel_specs():
        return "stepwise"
    r = subprocess.run([stepwise_bin, "--help"], capture_output=True, text=True, timeout=30)
    if "kernel" not in r.stdout + r.stderr:
        return None
    spec = tmp_path / "jupyter" / "kernels" / "stepwise"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [stepwise_bin, "kernel", "-f", "{connection_file}"],
        "display_name": "stepwise (Lua)", "language": "lua"}))
    return str(spec)


def test_quickstart_notebook_runs(stepwise_bin, env, tmp_path, monkeypatch):
    spec = kernel_available(stepwise_bin, tmp_path)
    if spec is None:
        pytest.skip("needs the stepwise kernel")
    if spec != "stepwise":
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    from nbclient import NotebookClient
    for k, v in dict(env, STEPWISE_QUICK="1").items():
        monkeypatch.setenv(k, v)
    # Outputs land in tmp_path; the tutorial's data comes from the repo.
    (tmp_path / "tutorials").symlink_to(ROOT / "tutorials")
    nb = nbformat.read(ROOT / "tutorials" / "01_quickstart.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="stepwise", timeout=900,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.output_type != "error", "".join(o.get("traceback", []))
            texts.append(o.get("text", "") + json.dumps(o.get("data", {})))
    out = "\n".join(texts)
    assert "exact match:" in out
    assert (tmp_path / "out" / "travel-adapter" / "adapter_config.json").exists()
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_to_ipynb_flag(stepwise_bin, tmp_path):
    script = ROOT / "tutorials" / "01_quickstart.lua"
    out = tmp_path / "q.ipynb"
    r = subprocess.run([stepwise_bin, "--to-ipynb", str(script), "-o", str(out)],
                       capture_output=True, text=True, timeout=60)
    if "unknown option" in r.stderr:
        pytest.skip("repl/main.c does not offer --to-ipynb yet")
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == script.with_suffix(".ipynb").read_text(encoding="utf-8")
    r = subprocess.run([stepwise_bin, "--to-ipynb"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "needs a .lua file" in r.stderr
