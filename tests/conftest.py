"""Shared pytest fixtures: where the built binary is, and a clean env."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stepwise_bin():
    b = pathlib.Path(os.environ.get("STEPWISE_BIN", ROOT / "build" / "stepwise"))
    if not b.exists():
        pytest.fail(f"{b} is missing: build first (tests/run does)")
    return str(b)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e.update(NO_COLOR="1", TERM="xterm", STEPWISE_HISTORY=str(tmp_path / "history"),
             INPUTRC=str(tmp_path / "inputrc"))
    # Bracketed paste makes readline wrap every echoed line in escapes.
    (tmp_path / "inputrc").write_text("set enable-bracketed-paste off\n")
    return e
