"""`stepwise install-kernel`: the kernelspec directory."""
import json
import os
import struct
import subprocess
import zlib


def test_install_prefix_writes_spec_and_logo(stepwise_bin, tmp_path):
    subprocess.run([stepwise_bin, "install-kernel", "--prefix", str(tmp_path)], check=True,
                   capture_output=True)
    d = tmp_path / "share" / "jupyter" / "kernels" / "stepwise"
    spec = json.loads((d / "kernel.json").read_text())
    assert spec["argv"] == [os.path.realpath(stepwise_bin), "kernel", "-f", "{connection_file}"]
    assert spec["language"] == "lua" and spec["display_name"] == "stepwise (Lua)"
    assert spec["interrupt_mode"] == "signal"
    png = (d / "logo-64x64.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    i, chunks = 8, {}
    while i < len(png):
        n, = struct.unpack(">I", png[i:i + 4])
        kind, body = png[i + 4:i + 8], png[i + 8:i + 8 + n]
        assert struct.unpack(">I", png[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        i += 12 + n
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (64, 64)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 64 * (1 + 3 * 64)


def test_install_message_mode_and_bad_options(stepwise_bin, tmp_path):
    subprocess.run([stepwise_bin, "install-kernel", "--prefix", str(tmp_path), "--interrupt-mode",
                    "message"], check=True, capture_output=True)
    spec = json.loads((tmp_path / "share/jupyter/kernels/stepwise/kernel.json").read_text())
    assert spec["interrupt_mode"] == "message"
    r = subprocess.run([stepwise_bin, "install-kernel", "--interrupt-mode", "never"],
                       capture_output=True)
    assert r.returncode == 2
    r = subprocess.run([stepwise_bin, "kernel"], capture_output=True)
    assert r.returncode == 2 and b"usage" in r.stderr


def test_install_user_honours_jupyter_data_dir(stepwise_bin, tmp_path):
    env = dict(os.environ, JUPYTER_DATA_DIR=str(tmp_path / "data"))
    subprocess.run([stepwise_bin, "install-kernel", "--user"], check=True, env=env,
                   capture_output=True)
    assert (tmp_path / "data" / "kernels" / "stepwise" / "kernel.json").exists()
