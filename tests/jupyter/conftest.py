"""The kernelspec, installed into a temporary prefix that JUPYTER_PATH names."""
import os
import subprocess

import pytest


@pytest.fixture(scope="session")
def kernel_prefix(stepwise_bin, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    subprocess.run([stepwise_bin, "install-kernel", "--prefix", str(prefix)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([stepwise_bin, "install-kernel", "--prefix", str(prefix), "--name",
                    "stepwise-msg", "--interrupt-mode", "message"], check=True,
                   stdout=subprocess.DEVNULL)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    yield prefix
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old
