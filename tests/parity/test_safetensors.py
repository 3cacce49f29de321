"""safetensors files cross between the Python `safetensors` package (the
reference implementation) and stepwise, both ways, for every dtype:
files it writes we read byte for byte, and files we write it reads."""
import subprocess

import numpy as np
import pytest
import safetensors
from safetensors import TensorSpec

# safetensors dtype name (as in the header) -> the name TensorSpec takes.
DTYPES = {
    "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U8": "uint8",
    "I8": "int8", "BOOL": "bool", "I16": "int16", "U16": "uint16", "U32": "uint32",
    "I64": "int64", "U64": "uint64", "F64": "float64", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1, "I16": 2, "U16": 2,
        "U32": 4, "I64": 8, "U64": 8, "F64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
SHAPES = [[], [0], [3], [2, 5], [2, 3, 4], [1, 2, 1, 3, 1]]


def sample(rng, dtype, shape):
    n = int(np.prod(shape)) * SIZE[dtype]
    if dtype == "BOOL":
        return rng.integers(0, 2, n, dtype=np.uint8).tobytes()
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def run_lua(stepwise_bin, env, script):
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


# Lua that prints one line per tensor: name, dtype, shape, hex bytes.
DUMP = """
local st = sw.safetensors(%r)
for _, name in ipairs(st:names()) do
  local i = st:info(name)
  local hex = st:bytes(name):gsub(".", function(c) return string.format("%%02x", c:byte()) end)
  io.write(name, "\\t", i.dtype, "\\t", table.concat(i.shape, ","), "\\t", hex, "\\n")
end
for k, v in pairs(st:metadata()) do io.write("meta\\t", k, "\\t", v, "\\n") end
"""


def parse_dump(out):
    tensors, meta = {}, {}
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] == "meta":
            meta[f[1]] = f[2]
        else:
            shape = [int(x) for x in f[2].split(",")] if f[2] else []
            tensors[f[0]] = (f[1], shape, bytes.fromhex(f[3]))
    return tensors, meta


def test_we_read_what_safetensors_writes(stepwise_bin, env, tmp_path):
    rng = np.random.default_rng(0)
    want, keep = {}, []
    for dt in DTYPES:
        for k, shape in enumerate(SHAPES):
            name = f"model.{dt.lower()}.{k}"
            data = sample(rng, dt, shape)
            buf = np.frombuffer(data, dtype=np.uint8).copy() if data else np.zeros(1, np.uint8)
            keep.append(buf)
            want[name] = (dt, shape, data, buf)
    specs = {n: TensorSpec(dtype=DTYPES[dt], shape=shape, data_ptr=buf.ctypes.data, data_len=len(data))
             for n, (dt, shape, data, buf) in want.items()}
    path = tmp_path / "ref.safetensors"
    safetensors.serialize_file(specs, str(path), metadata={"format": "pt", "ünï": "çødé"})
    got, meta = parse_dump(run_lua(stepwise_bin, env, DUMP % str(path)))
    assert meta == {"format": "pt", "ünï": "çødé"}
    assert set(got) == set(want)
    for n, (dt, shape, data, _) in want.items():
        assert got[n] == (dt, shape, data), n


def test_safetensors_reads_what_we_write(stepwise_bin, env, tmp_path):
    """Tensors of our own dtypes (including a strided view) and raw entries
    of every other dtype, plus metadata; read back by the reference."""
    rng = np.random.default_rng(1)
    raw = {}
    lines = []
    for dt in DTYPES:
        shape = [2, 3]
        data = sample(rng, dt, shape)
        raw[f"raw.{dt}"] = (dt, shape, data)
        hexs = data.hex()
        lines.append(f'  ["raw.{dt}"] = {{dtype = "{dt}", shape = {{2, 3}}, bytes = hex("{hexs}")}},')
    path = tmp_path / "ours.safetensors"
    script = f"""
    local function hex(s) return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end)) end
    local a = sw.tensor({{{{1.5, -2, 3}}, {{4, 5.25, -6}}}})
    local t = {{
    {chr(10).join(lines)}
      ["t.f32"] = a,
      ["t.f32_transposed"] = a:t(),
      ["t.bf16"] = a:to("bf16"),
      ["t.f16"] = a:to("f16"),
      ["t.i32"] = sw.tensor({{7, -8, 9}}, {{dtype = "i32"}}),
      ["t.scalar"] = sw.tensor(2.5),
    }}
    sw.save_safetensors("{path}", t, {{metadata = {{format = "pt", source = "stepwise"}}}})
    """
    run_lua(stepwise_bin, env, script)
    blob = path.read_bytes()
    header_len = int.from_bytes(blob[:8], "little")
    assert header_len % 8 == 0 and blob[8:9] == b"{"
    items = dict(safetensors.deserialize(blob))
    for n, (dt, shape, data) in raw.items():
        assert items[n]["dtype"] == dt and items[n]["shape"] == shape and bytes(items[n]["data"]) == data, n
    # The numpy front end of the reference reads the numbers back (numpy
    # itself has no bf16 or fp8, so those were checked as bytes above).
    with safetensors.safe_open(str(path), framework="numpy") as f:
        arrs = {k: f.get_tensor(k) for k in f.keys() if items[k]["dtype"] not in ("BF16", "F8_E4M3", "F8_E5M2")}
    for n, (dt, shape, data) in raw.items():
        if n in arrs:
            assert arrs[n].tobytes() == data and list(arrs[n].shape) == shape, n
    a = np.array([[1.5, -2, 3], [4, 5.25, -6]], dtype=np.float32)
    np.testing.assert_array_equal(arrs["t.f32"], a)
    np.testing.assert_array_equal(arrs["t.f32_transposed"], a.T)
    np.testing.assert_array_equal(arrs["t.f16"], a.astype(np.float16))
    np.testing.assert_array_equal(arrs["t.i32"], np.array([7, -8, 9], dtype=np.int32))
    assert arrs["t.scalar"].shape == () and arrs["t.scalar"] == 2.5
    bf = items["t.bf16"]
    assert bf["dtype"] == "BF16" and bf["shape"] == [2, 3]
    np.testing.assert_array_equal(
        (np.frombuffer(bytes(bf["data"]), np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(2, 3), a)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "source": "stepwise"}


def test_sharded_directory(stepwise_bin, env, tmp_path):
    """A model directory with an index, as transformers writes it."""
    import json
    from safetensors.numpy import save_file
    d = tmp_path / "model"
    d.mkdir()
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(4, dtype=np.int64)
    save_file({"a": a}, str(d / "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    save_file({"b": b}, str(d / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    (d / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 56},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    out = run_lua(stepwise_bin, env, f"""
    local st = sw.safetensors("{d}")
    io.write(#st, " ", st:metadata().total_size, " ", st:tensor("a"):get(2, 3), " ", st:tensor("b"):get(4), " ",
             st:tensor("b").dtype)
    """)
    assert out.split() == ["2", "56", "5", "3", "i32"]


@pytest.mark.parametrize("hdr,want", [
    (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}}', "are reversed"),
    (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}', "run past the end"),
    (b'not json at all', "does not start with '{'"),
])
def test_bad_files_raise_lua_errors(stepwise_bin, env, tmp_path, hdr, want):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(len(hdr).to_bytes(8, "little") + hdr + bytes(8))
    r = subprocess.run([stepwise_bin, "-e", f'sw.safetensors("{p}")'], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert str(p) in r.stderr and want in r.stderr
