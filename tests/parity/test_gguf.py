"""The GGUF reader and dequantizers against the gguf Python package.

(a) The default model (SmolLM2-135M-Instruct, Q4_1): every metadata key,
    type and value and the whole tensor table equal gguf.GGUFReader's, and
    a set of tensors of each type in the file (q8_0, q4_1, f32) dequantize
    bit for bit like gguf.quants.dequantize.
(b) Synthetic files written with gguf.GGUFWriter for the types the model
    lacks (q4_0, q4_k, q5_k, q6_k, f16, bf16): random blocks, compared the
    same way; plus every metadata value type, a custom alignment, a v2 file
    and a ggml type stepwise lists but cannot decode.
Values leave stepwise through Tensor:tobytes() into files, metadata through
a small tagged encoding (below), so nothing is lost to decimal printing.
"""
import os
import pathlib
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def model_path():
    """Where ./bootstrap puts the default model."""
    cache = os.environ.get("STEPWISE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stepwise")
    return pathlib.Path(cache) / MODEL


def lua_str(s):
    return "[==[" + str(s) + "]==]"


def run(stepwise_bin, env, script):
    r = subprocess.run([stepwise_bin, "-e", script], env=env, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


# ---- metadata: a tagged encoding that survives any bytes and any float -----
# n | b0 b1 | i<int>; | f<%a>; | s<len>:<bytes> | t<len>:<items>
ENCODER = r"""
local function enc(v, out)
  local t = type(v)
  if v == nil then out[#out + 1] = "n"
  elseif t == "boolean" then out[#out + 1] = v and "b1" or "b0"
  elseif math.type(v) == "integer" then out[#out + 1] = "i" .. v .. ";"
  elseif t == "number" then out[#out + 1] = "f" .. string.format("%a", v) .. ";"
  elseif t == "string" then out[#out + 1] = "s" .. #v .. ":" .. v
  else
    out[#out + 1] = "t" .. #v .. ":"
    for i = 1, #v do enc(v[i], out) end
  end
end
"""


def decode(buf, i=0):
    tag = buf[i:i + 1]
    if tag == b"n":
        return None, i + 1
    if tag == b"b":
        return buf[i + 1:i + 2] == b"1", i + 2
    if tag in (b"i", b"f"):
        j = buf.index(b";", i)
        text = buf[i + 1:j].decode()
        return (int(text) if tag == b"i" else float.fromhex(text)), j + 1
    j = buf.index(b":", i)
    n = int(buf[i + 1:j])
    if tag == b"s":
        return buf[j + 1:j + 1 + n], j + 1 + n
    assert tag == b"t", f"bad tag {tag!r} at {i}"
    items, i = [], j + 1
    for _ in range(n):
        v, i = decode(buf, i)
        items.append(v)
    return items, i


def dump_file(stepwise_bin, env, path):
    """Everything stepwise reports about a file: header fields, every key
    (type, element type, value) and the tensor table, decoded."""
    script = ENCODER + f"""
local g <close> = sw.gguf({lua_str(path)})
local out = {{}}
enc({{g.version, g.alignment, g.data_offset}}, out)
local keys = g:keys()
enc(#keys, out)
for _, k in ipairs(keys) do
  local t, et = g:meta_type(k)
  enc({{k, t, et or ""}}, out)
  enc(g:meta(k), out)
end
local ts = g:tensors()
enc(#ts, out)
for _, t in ipairs(ts) do enc({{t.name, t.type, t.shape, t.offset, t.nbytes, t.readable}}, out) end
io.write(table.concat(out))
"""
    buf = run(stepwise_bin, env, script)
    (version, alignment, data_offset), i = decode(buf)
    n, i = decode(buf, i)
    meta = {}
    for _ in range(n):
        (k, t, et), i = decode(buf, i)
        v, i = decode(buf, i)
        meta[k.decode()] = (t.decode(), et.decode(), v)
    n, i = decode(buf, i)
    tensors = []
    for _ in range(n):
        (name, typ, shape, offset, nbytes, readable), i = decode(buf, i)
        tensors.append((name.decode(), typ.decode(), shape, offset, nbytes, readable))
    assert i == len(buf)
    return dict(version=version, alignment=alignment, data_offset=data_offset, meta=meta, tensors=tensors)


def as_text(v):
    return v.decode() if isinstance(v, bytes) else [as_text(x) for x in v] if isinstance(v, list) else v


def check_against_reader(ours, reader):
    fields = [f for f in reader.fields.values() if not f.name.startswith("GGUF.")]
    assert list(ours["meta"]) == [f.name for f in fields]  # same keys, same order
    for f in fields:
        t, et, v = ours["meta"][f.name]
        assert t == TYPE_NAMES[f.types[0]], f.name
        if f.types[0] == GGUFValueType.ARRAY:
            assert et == TYPE_NAMES[f.types[-1]], f.name
        want = f.contents()
        got = as_text(v)
        assert type(got) is type(want) or isinstance(want, float), f.name
        assert got == want, f.name
    assert ours["alignment"] == reader.alignment
    assert ours["data_offset"] == reader.data_offset
    assert len(ours["tensors"]) == len(reader.tensors)
    for (name, typ, shape, offset, nbytes, _), rt in zip(ours["tensors"], reader.tensors):
        assert name == rt.name
        assert typ == rt.tensor_type.name.lower(), name
        assert shape == list(reversed(rt.shape.tolist())), name
        assert reader.data_offset + offset == rt.data_offset, name
        assert nbytes == rt.n_bytes, name


def dequant_with_stepwise(stepwise_bin, env, path, names, tmp_path):
    """{name: (f32 array from stepwise, its shape)} through Tensor:tobytes()."""
    lines = [f"local g <close> = sw.gguf({lua_str(path)})"]
    files = {}
    for k, name in enumerate(names):
        files[name] = tmp_path / f"t{k}.f32"
        lines.append(f"do local t <close> = g:tensor({lua_str(name)}); "
                     f"local f <close> = io.open({lua_str(files[name])}, 'wb'); f:write(t:tobytes()); "
                     f"print(table.concat(t.shape, ',')) end")
    shapes = run(stepwise_bin, env, "\n".join(lines)).decode().split()
    return {name: (np.fromfile(files[name], dtype=np.float32), [int(x) for x in s.split(",")])
            for name, s in zip(names, shapes)}


def assert_bits_equal(got, want, what):
    want = np.ascontiguousarray(want, dtype=np.float32).reshape(-1)
    assert got.shape == want.shape, what
    bad = np.nonzero(got.view(np.uint32) != want.view(np.uint32))[0]
    assert bad.size == 0, f"{what}: {bad.size} of {want.size} differ, first at {bad[:5]}: {got[bad[:5]]} vs {want[bad[:5]]}"


# ---- (a) the real model ------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    p = model_path()
    if not p.exists():
        pytest.skip(f"{p} is missing (./bootstrap fetches it)")
    return p


def test_model_metadata_and_tensor_table(stepwise_bin, env, model):
    reader = GGUFReader(model)
    ours = dump_file(stepwise_bin, env, model)
    assert ours["version"] == 3
    check_against_reader(ours, reader)
    assert len(ours["tensors"]) == 272
    assert all(t[5] for t in ours["tensors"])  # every type in the file is readable


MODEL_TENSORS = [
    "token_embd.weight",                                       # q8_0
    "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_down.weight",  # q4_1
    "blk.14.attn_v.weight", "blk.29.ffn_gate.weight", "blk.29.attn_output.weight",
    "blk.0.attn_norm.weight", "blk.17.ffn_norm.weight", "output_norm.weight",  # f32
]


def test_model_dequant_bit_exact(stepwise_bin, env, model, tmp_path):
    reader = GGUFReader(model)
    by_name = {t.name: t for t in reader.tensors}
    got = dequant_with_stepwise(stepwise_bin, env, model, MODEL_TENSORS, tmp_path)
    types = set()
    for name in MODEL_TENSORS:
        rt = by_name[name]
        types.add(rt.tensor_type)
        values, shape = got[name]
        assert shape == list(reversed(rt.shape.tolist())), name
        assert_bits_equal(values, dequantize(rt.data, rt.tensor_type), name)
    assert types == {Q.Q8_0, Q.Q4_1, Q.F32}


# ---- (b) synthetic files -----------------------------------------------------

# Where each block type keeps its f16 scales (byte offsets in the block).
F16_FIELDS = {Q.Q4_0: [0], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def random_f16(rng, n):
    """Finite f16 bit patterns of every kind: normals, subnormals, zeros."""
    bits = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    bits = np.where((bits & 0x7C00) == 0x7C00, bits & 0xBFFF, bits)  # no inf/NaN exponent
    return bits.astype(np.uint16)


def random_blocks(rng, qtype, rows, cols):
    block, size = GGML_QUANT_SIZES[qtype]
    nb = rows * cols // block
    raw = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = random_f16(rng, nb).view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, cols // block * size)


SYNTH = [  # name, type, shape (outermost first)
    ("q4_0.weight", Q.Q4_0, (24, 64)),
    ("q4_k.weight", Q.Q4_K, (16, 512)),
    ("q5_k.weight", Q.Q5_K, (3, 16, 256)),
    ("q6_k.weight", Q.Q6_K, (12, 768)),
    ("f16.weight", Q.F16, (40, 33)),
    ("bf16.weight", Q.BF16, (2, 3, 5, 7)),
]


def write_synthetic(path, rng, version=3):
    w = GGUFWriter(str(path), "llama")
    w.add_custom_alignment(64)
    w.add_key_value("t.u8", 255, GGUFValueType.UINT8)
    w.add_key_value("t.i8", -128, GGUFValueType.INT8)
    w.add_key_value("t.u16", 65535, GGUFValueType.UINT16)
    w.add_key_value("t.i16", -32768, GGUFValueType.INT16)
    w.add_key_value("t.u32", 4294967295, GGUFValueType.UINT32)
    w.add_key_value("t.i32", -2147483648, GGUFValueType.INT32)
    w.add_key_value("t.f32", 0.1, GGUFValueType.FLOAT32)
    w.add_key_value("t.u64", 2**63 - 1, GGUFValueType.UINT64)
    w.add_key_value("t.i64", -2**63, GGUFValueType.INT64)
    w.add_key_value("t.f64", -1.5e300, GGUFValueType.FLOAT64)
    w.add_key_value("t.bool", True, GGUFValueType.BOOL)
    w.add_key_value("t.string", "naïve ☃ \n\t\"quotes\"", GGUFValueType.STRING)
    w.add_key_value("t.empty", "", GGUFValueType.STRING)
    w.add_key_value("t.arr_i16", [-1, 0, 32767], GGUFValueType.ARRAY, GGUFValueType.INT16)
    w.add_key_value("t.arr_f32", [0.5, -2.25, 1e-30], GGUFValueType.ARRAY, GGUFValueType.FLOAT32)
    w.add_key_value("t.arr_f64", [0.1, 2.0], GGUFValueType.ARRAY, GGUFValueType.FLOAT64)
    w.add_key_value("t.arr_bool", [True, False, True], GGUFValueType.ARRAY, GGUFValueType.BOOL)
    w.add_key_value("t.arr_u64", [0, 2**63 - 1], GGUFValueType.ARRAY, GGUFValueType.UINT64)
    w.add_key_value("t.arr_str", ["a", "", "ü€𝄞"], GGUFValueType.ARRAY, GGUFValueType.STRING)
    data = {}
    for name, qtype, shape in SYNTH:
        if qtype == Q.F16:
            raw = random_f16(rng, int(np.prod(shape))).view(np.float16).reshape(shape)
            w.add_tensor(name, raw)
        elif qtype == Q.BF16:
            bits = rng.integers(0, 1 << 16, int(np.prod(shape)), dtype=np.uint32).astype(np.uint16)
            raw = bits.view(np.uint8).reshape(*shape[:-1], shape[-1] * 2)
            w.add_tensor(name, raw, raw_dtype=qtype)
        else:
            raw = random_blocks(rng, qtype, int(np.prod(shape[:-1])), shape[-1])
            raw = raw.reshape(*shape[:-1], raw.shape[-1])
            w.add_tensor(name, raw, raw_dtype=qtype)
        data[name] = raw
    # A type ggml defines and stepwise does not decode: listed, not loadable.
    w.add_tensor("q5_0.weight", rng.integers(0, 256, (2, 22), dtype=np.uint8), raw_dtype=Q.Q5_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        with open(path, "r+b") as f:  # v2 and v3 share the layout
            f.seek(4)
            f.write(int(version).to_bytes(4, "little"))
    return data


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "synthetic.gguf"
    write_synthetic(path, np.random.default_rng(3407))
    return path


def test_synthetic_metadata_and_tensor_table(stepwise_bin, env, synthetic):
    reader = GGUFReader(synthetic)
    ours = dump_file(stepwise_bin, env, synthetic)
    check_against_reader(ours, reader)
    assert ours["alignment"] == 64 and ours["data_offset"] % 64 == 0
    readable = {t[0]: t[5] for t in ours["tensors"]}
    assert readable.pop("q5_0.weight") is False and all(readable.values())


def test_synthetic_dequant_bit_exact(stepwise_bin, env, synthetic, tmp_path):
    reader = GGUFReader(synthetic)
    by_name = {t.name: t for t in reader.tensors}
    names = [s[0] for s in SYNTH]
    got = dequant_with_stepwise(stepwise_bin, env, synthetic, names, tmp_path)
    for name, qtype, shape in SYNTH:
        rt = by_name[name]
        assert rt.tensor_type == qtype
        values, our_shape = got[name]
        assert our_shape == list(shape), name
        assert_bits_equal(values, dequantize(rt.data, qtype), name)


def test_raw_copy_and_errors(stepwise_bin, env, synthetic, tmp_path):
    """dtype = the file's own type copies the blocks; errors name the file."""
    raw = tmp_path / "raw.bin"
    script = f"""
local g <close> = sw.gguf({lua_str(synthetic)})
local t = g:tensor("q4_k.weight", {{dtype = "q4_k"}})
assert(t.dtype == "q4_k" and t.shape[1] == 16 and t.shape[2] == 512)
io.open({lua_str(raw)}, "wb"):write(t:tobytes()):close()
local h = g:tensor("f16.weight", {{dtype = "bf16", category = "workspace"}})
assert(h.dtype == "bf16" and h.category == "workspace")
for _, case in ipairs({{
    {{"q5_0.weight"}}, {{"q4_k.weihgt"}}, {{"q4_k.weight", {{dtype = "q6_k"}}}},
    {{"q4_k.weight", {{dtpye = "f32"}}}}}}) do
  local ok, err = pcall(g.tensor, g, case[1], case[2])
  assert(not ok)
  print(err)
end
g:close()
print(select(2, pcall(g.meta, g, "t.u8")))
"""
    lines = run(stepwise_bin, env, script).decode().splitlines()
    assert "synthetic.gguf: tensor 'q5_0.weight': stepwise cannot decode ggml type q5_0" in lines[0]
    assert "no tensor named 'q4_k.weihgt' (did you mean 'q4_k.weight'?)" in lines[1]
    assert "loads as f32, f16, bf16 or q4_k, not q6_k" in lines[2]
    assert "unknown option 'dtpye' (did you mean 'dtype'?)" in lines[3]
    assert "closed" in lines[4]
    rt = next(t for t in GGUFReader(synthetic).tensors if t.name == "q4_k.weight")
    assert raw.read_bytes() == rt.data.tobytes()


@pytest.mark.parametrize("version,ok", [(2, True), (1, False), (4, False)])
def test_versions(stepwise_bin, env, tmp_path, version, ok):
    path = tmp_path / f"v{version}.gguf"
    write_synthetic(path, np.random.default_rng(1), version=version)
    script = f"""
local ok, g = pcall(sw.gguf, {lua_str(path)})
print(ok and ("v" .. g.version .. " " .. #g:tensors()) or g)
"""
    out = run(stepwise_bin, env, script).decode().strip()
    if ok:
        assert out == f"v{version} 7"
    else:
        assert out.startswith(str(path)) and f"GGUF version {version} is not supported" in out
