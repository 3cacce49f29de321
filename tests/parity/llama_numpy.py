"""An independent Llama forward pass in numpy over a GGUF file, built on the
`gguf` package's reader and dequantizers: the reference stepwise's logits
are compared against. Written from the architecture (RMSNorm, rotary
embeddings, grouped-query attention, SwiGLU), not from stepwise's code."""
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class GGUFLlama:
    def __init__(self, path):
        self.r = GGUFReader(path)
        self.t = {t.name: t for t in self.r.tensors}
        f = self.r.fields
        arch = bytes(f["general.architecture"].parts[-1]).decode()
        g = lambda k: f[f"{arch}.{k}"].contents()
        self.arch = arch
        self.n_layers = g("block_count")
        self.n_heads = g("attention.head_count")
        self.n_kv = g("attention.head_count_kv")
        self.hidden = g("embedding_length")
        self.head_dim = self.hidden // self.n_heads
        self.theta = g("rope.freq_base")
        self.eps = g("attention.layer_norm_rms_epsilon")

    def w(self, name):
        t = self.t[name]
        # gguf shapes are innermost-first; numpy wants (rows, cols).
        x = dequantize(t.data, t.tensor_type).astype(np.float32)
        return x.reshape([int(n) for n in reversed(t.shape.tolist())])

    def rmsnorm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        # llama GGUF files store q/k so that rotary pairs are adjacent.
        d = self.head_dim
        inv = 1.0 / (self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        ang = pos[:, None].astype(np.float64) * inv[None, :]          # (T, d/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x1 * c + x0 * s
        return out

    def logits(self, ids):
        ids = np.asarray(ids)
        T, H, KV, D = len(ids), self.n_heads, self.n_kv, self.head_dim
        x = self.w("token_embd.weight")[ids].astype(np.float64)
        pos = np.arange(T)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self.rmsnorm(x, self.w(p + "attn_norm.weight"))
            q = (h @ self.w(p + "attn_q.weight").T).reshape(T, H, D)
            k = (h @ self.w(p + "attn_k.weight").T).reshape(T, KV, D)
            v = (h @ self.w(p + "attn_v.weight").T).reshape(T, KV, D)
            q, k = self.rope(q, pos), self.rope(k, pos)
            k = np.repeat(k, H // KV, axis=1)
            v = np.repeat(v, H // KV, axis=1)
            sc = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            att = np.einsum("hts,shd->thd", sc, v).reshape(T, H * D)
            x = x + att @ self.w(p + "attn_output.weight").T
            h = self.rmsnorm(x, self.w(p + "ffn_norm.weight"))
            g = h @ self.w(p + "ffn_gate.weight").T
            u = h @ self.w(p + "ffn_up.weight").T
            x = x + (g / (1 + np.exp(-g)) * u) @ self.w(p + "ffn_down.weight").T
        x = self.rmsnorm(x, self.w("output_norm.weight"))
        head = self.w("output.weight") if "output.weight" in self.t else self.w("token_embd.weight")
        return (x @ head.T).astype(np.float32)
