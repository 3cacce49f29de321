"""A real browser: JupyterLab (from PyPI) in Debian's headless chromium opens a
notebook on the stepwise kernel, runs every cell, and shows the outputs.

Selenium drives /usr/bin/chromium through /usr/bin/chromedriver (both from
apt, installed by ./bootstrap); nothing is downloaded. The test asserts on the
rendered text of the output areas and keeps a screenshot (plus, on failure,
the page text and the server log) under tests/artifacts/browser/.
"""
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

CELLS = [
    'print("hello from stepwise")',
    "1 + 41",
    'sw.display({["text/html"] = "<b>bold from stepwise</b>", '
    '["text/plain"] = "plain fallback"})',
    "sw.display(sw.mem({quiet = true}))",
]


def need_chromium():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} is not installed "
                    "(Debian packages chromium, chromium-driver; ./bootstrap installs them)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "stepwise", "display_name": "stepwise (Lua)",
                                 "language": "lua"}
    nb.metadata["language_info"] = {"name": "lua"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in CELLS]
    nbformat.write(nb, str(path))


@pytest.fixture
def lab(tmp_path, kernel_prefix):  # kernel_prefix: JUPYTER_PATH names the stepwise kernelspec
    """A JupyterLab server on a free port with its own config, data, runtime,
    settings and workspace directories; yields (base url, token, log path)."""
    need_chromium()
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "browser.ipynb")
    d = {k: tmp_path / k for k in ("config", "data", "runtime", "settings", "workspaces")}
    for p in d.values():
        p.mkdir()
    # No news prompt, no update check, no toasts: nothing of the kind reaches the network
    # or sits on top of the notebook.
    notif = d["settings"] / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(json.dumps(
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(d["config"]), JUPYTER_DATA_DIR=str(d["data"]),
               JUPYTER_RUNTIME_DIR=str(d["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(d["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(d["workspaces"]),
               JUPYTER_PLATFORM_DIRS="1")
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "server.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
             f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False",
             "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            env=env, cwd=root, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in 30 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base, token, log
    finally:
        # Ask the server to stop (it shuts its kernels down), then make sure it did.
        try:
            req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    need_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
              f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(a)
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


# --- page helpers (plain DOM reads through JavaScript: no stale elements) ------

JS_STATE = """
const q = (s) => Array.from(document.querySelectorAll(s));
const cells = q('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell.jp-CodeCell');
return {
  status: (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator') || {dataset: {}}).dataset.status || null,
  kernel: q('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelName, .jp-NotebookPanel:not(.lm-mod-hidden) [data-jp-item-name="kernelName"]').map(e => e.innerText.trim()).join(' '),
  dialogs: q('.jp-Dialog').map(e => e.innerText),
  toasts: q('.Toastify__toast').map(e => e.innerText),
  prompts: cells.map(c => (c.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText.trim()),
  outputs: cells.map(c => Array.from(c.querySelectorAll('.jp-OutputArea-output')).map(o => ({
    text: o.innerText, mime: o.getAttribute('data-mime-type') || '',
    tables: Array.from(o.querySelectorAll('table')).map(t => t.innerText),
    bold: Array.from(o.querySelectorAll('b')).map(b => b.innerText)}))),
};
"""


def state(driver):
    return driver.execute_script(JS_STATE)


def page_text(driver):
    try:
        return driver.execute_script("return document.body ? document.body.innerText : ''")
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"<page text unavailable: {e}>"


def handle_interruptions(driver):
    """A kernel-selection dialog (should not come: the notebook names an installed
    kernel) gets stepwise chosen; any other dialog or toast is dismissed."""
    for dlg in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
        try:
            for sel in dlg.find_elements(By.TAG_NAME, "select"):
                s = Select(sel)
                for o in s.options:
                    if "stepwise" in o.text:
                        s.select_by_visible_text(o.text)
                        break
            dlg.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()
        except Exception:  # noqa: BLE001 - it may close while we look at it
            pass
    for btn in driver.find_elements(By.CSS_SELECTOR, ".Toastify__toast .Toastify__close-button, "
                                                     ".Toastify__toast button.jp-toast-button"):
        try:
            btn.click()
        except Exception:  # noqa: BLE001
            pass


def wait_for(driver, what, pred, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        handle_interruptions(driver)
        last = state(driver)
        if pred(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last state: "
                         f"{json.dumps(last, indent=1)[:4000]}")


def click_text(driver, css, text, timeout=10):
    """Click the element matching css whose text is exactly `text`."""
    deadline = time.monotonic() + timeout
    while True:
        for e in driver.find_elements(By.CSS_SELECTOR, css):
            try:
                if e.text.strip() == text and e.is_displayed():
                    e.click()
                    return
            except Exception:  # noqa: BLE001 - re-rendered under us
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no visible {css!r} reading {text!r}")
        time.sleep(0.2)


def test_jupyterlab_runs_a_stepwise_notebook(lab, browser, tmp_path):
    base, token, log = lab
    driver = browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("failure.*"):
        old.unlink()
    shot = ARTIFACTS / "jupyterlab-stepwise.png"
    t0 = time.monotonic()
    phases = []

    def phase(name):
        phases.append(f"{name} {time.monotonic() - t0:.1f} s")

    ok = False
    try:
        driver.get(f"{base}/lab/tree/browser.ipynb?token={token}")
        phase("page loaded")
        # The notebook is open with all its cells and the kernel has started and settled.
        wait_for(driver, "the notebook with an idle stepwise kernel",
                 lambda s: len(s["prompts"]) == len(CELLS) and s["status"] == "idle"
                 and "stepwise" in s["kernel"], 40)
        phase("kernel idle")

        # Run -> Run All Cells, from the menu bar by its text.
        click_text(driver, ".lm-MenuBar-itemLabel", "Run")
        click_text(driver, ".lm-Menu-itemLabel", "Run All Cells")

        def done(s):
            return (s["status"] == "idle"
                    and s["prompts"] == [f"[{i}]:" for i in range(1, len(CELLS) + 1)]
                    and all(s["outputs"]))
        s = wait_for(driver, "every cell to run and show output", done, 30)
        phase("cells ran")
        driver.save_screenshot(str(shot))

        outs = s["outputs"]
        text = ["\n".join(o["text"] for o in cell) for cell in outs]
        assert "hello from stepwise" in text[0]
        assert any(o["text"].strip() == "42" for o in outs[1]), outs[1]
        # Rich output renders as HTML, not as its text/plain fallback.
        assert ["bold from stepwise"] in [o["bold"] for o in outs[2]], outs[2]
        assert "plain fallback" not in text[2]
        tables = [t for o in outs[3] for t in o["tables"]]
        assert len(tables) == 1, outs[3]
        for word in ("memory", "cpu now / peak", "weights", "kv_cache", "total"):
            assert word in tables[0], tables[0]
        # The cost line each cell ends with.
        assert all(" ms | " in t for t in text), text
        # No errors, no stderr.
        mimes = {o["mime"] for cell in outs for o in cell}
        assert "application/vnd.jupyter.stderr" not in mimes, outs
        assert not any("Error" in t or "error" in t for t in text), text
        assert not s["dialogs"], s["dialogs"]
        ok = True
    finally:
        elapsed = time.monotonic() - t0
        if not ok:
            stem = ARTIFACTS / "failure"
            try:
                driver.save_screenshot(str(stem.with_suffix(".png")))
            except Exception:  # noqa: BLE001
                pass
            body = page_text(driver)
            stem.with_suffix(".page.txt").write_text(body)
            server_log = log.read_text(errors="replace")
            stem.with_suffix(".server.log").write_text(server_log)
            drv = tmp_path / "chromedriver.log"
            if drv.exists():
                stem.with_suffix(".chromedriver.log").write_text(drv.read_text(errors="replace"))
            print(f"\n--- page text ---\n{body[-4000:]}\n--- server log ---\n{server_log[-4000:]}\n"
                  f"--- artifacts in {ARTIFACTS} ---", file=sys.stderr)
        print(f"browser test: {', '.join(phases)}; {elapsed:.1f} s in all", file=sys.stderr)
    assert elapsed < 60, f"the browser part took {elapsed:.1f} s"
