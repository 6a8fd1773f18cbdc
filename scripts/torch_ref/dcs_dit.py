"""PyTorch reference of the dcsldm DCS-DiT (include/dcsldm/dit/), written from the headers' documented math.
It reads and writes dcsldm DiT model files (safetensors with the configuration and the per-(level, channel)
latent statistics in the "dit.*" metadata and the parameter names of dit/dit_params.hpp).

    model = DcsDit.load("dit.safetensors")              # float64 on the CPU by default
    v = model(xt, t, labels, levels, split)             # xt (B, S, c) normalised latent rows of levels 1..m

The model (DESIGN.md section 3; dit/dit.hpp):
  two conditions per sample: row 0 for the first `split` tokens (held clean, t = 0), row 1 for the rest (time t):
      cond = t.fc2(SiLU(t.fc1(sinusoid(1000 t)))) + label(y);   s = SiLU(cond)
  tokens: h = in(xt) + pos[:S]
  block (AdaLN-Zero, ada = blocks.i.ada(s) split into shift1 scale1 gate1 shift2 scale2 gate2; each token reads
  its condition's row):
      h = h + gate1 * Attn(LN(h) * (1 + scale1) + shift1)     level-causal: key level <= query level
      h = h + gate2 * MLP(LN(h) * (1 + scale2) + shift2)      GELU (tanh)
  v = final.out(LN(h) * (1 + scale) + shift) with shift, scale = final.ada(s).
  LayerNorm without parameters, eps 1e-6. Sinusoid: [cos(t f_j), sin(t f_j)], f_j = exp(-ln(10000) j / half).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcs_tok import read_safetensors, write_safetensors  # noqa: E402


class DitConfig:
    KEYS = ("latent_channels", "width", "heads", "layers", "mlp_ratio", "freq_dim", "num_classes")

    def __init__(self, level_sizes=(4, 4, 8, 16), latent_channels=8, width=192, heads=6, layers=6, mlp_ratio=4,
                 freq_dim=128, num_classes=10):
        self.level_sizes = [int(v) for v in level_sizes]
        self.latent_channels, self.width, self.heads = int(latent_channels), int(width), int(heads)
        self.layers, self.mlp_ratio, self.freq_dim = int(layers), int(mlp_ratio), int(freq_dim)
        self.num_classes = int(num_classes)

    def levels(self):
        return len(self.level_sizes)

    def latent_tokens(self):
        return sum(self.level_sizes)

    def tokens_upto(self, m):
        return sum(self.level_sizes[:m])

    def token_levels(self, m):
        out = []
        for l, n in enumerate(self.level_sizes[:m]):
            out += [l + 1] * n
        return out

    def to_metadata(self):
        md = {f"dit.{k}": str(getattr(self, k)) for k in self.KEYS}
        md["dit.level_sizes"] = ",".join(str(v) for v in self.level_sizes)
        return md

    @classmethod
    def from_metadata(cls, md, source="<metadata>"):
        def get(k):
            if "dit." + k not in md:
                raise ValueError(f"'{source}' has no metadata 'dit.{k}'")
            return md["dit." + k]
        kw = {k: int(get(k)) for k in cls.KEYS}
        return cls(level_sizes=[int(v) for v in get("level_sizes").split(",")], **kw)


def parameter_shapes(c):
    """[(name, shape)] in the order of dit_layout (dit/dit_params.hpp)."""
    d, h = c.width, c.mlp_ratio * c.width
    out = []

    def linear(name, o, i):
        out.append((name + ".weight", (o, i)))
        out.append((name + ".bias", (o,)))

    linear("in", d, c.latent_channels)
    out.append(("pos", (c.latent_tokens(), d)))
    linear("t.fc1", d, c.freq_dim)
    linear("t.fc2", d, d)
    if c.num_classes > 0:
        out.append(("label", (c.num_classes + 1, d)))
    for i in range(c.layers):
        p = f"blocks.{i}"
        linear(p + ".ada", 6 * d, d)
        for a in (".attn.q", ".attn.k", ".attn.v", ".attn.o"):
            linear(p + a, d, d)
        linear(p + ".mlp.fc1", h, d)
        linear(p + ".mlp.fc2", d, h)
    linear("final.ada", 2 * d, d)
    linear("final.out", c.latent_channels, d)
    return out


def _pname(name):
    return name.replace(".", "__")


def timestep_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


class DcsDit(torch.nn.Module):
    def __init__(self, config, dtype=torch.float64):
        super().__init__()
        self.config = config
        self.names = []
        for name, shape in parameter_shapes(config):
            self.names.append(name)
            self.register_parameter(_pname(name), torch.nn.Parameter(torch.zeros(shape, dtype=dtype)))
        nstat = config.levels() * config.latent_channels
        self.latent_mean = [0.0] * nstat
        self.latent_std = [1.0] * nstat

    def param(self, name):
        return getattr(self, _pname(name))

    def dit_parameters(self):
        return {n: self.param(n) for n in self.names}

    @classmethod
    def load(cls, path, dtype=torch.float64):
        tensors, meta = read_safetensors(path)
        if meta.get("dcsldm.kind") != "dit":
            raise ValueError(f"'{path}' is not a dcsldm DiT")
        m = cls(DitConfig.from_metadata(meta, path), dtype)
        with torch.no_grad():
            for n in m.names:
                m.param(n).copy_(tensors[n])
        m.latent_mean = [float(v) for v in meta["dit.latent_mean"].split(",")]
        m.latent_std = [float(v) for v in meta["dit.latent_std"].split(",")]
        return m

    def save(self, path):
        meta = self.config.to_metadata()
        meta["dcsldm.kind"] = "dit"
        meta["dit.latent_mean"] = ",".join(repr(v) for v in self.latent_mean)
        meta["dit.latent_std"] = ",".join(repr(v) for v in self.latent_std)
        write_safetensors(path, {n: self.param(n) for n in self.names}, meta)

    def _linear(self, x, name):
        return F.linear(x, self.param(name + ".weight"), self.param(name + ".bias"))

    def forward(self, xt, t, labels, levels, split=0):
        c = self.config
        b, s, _ = xt.shape
        d = c.width
        assert s == c.tokens_upto(levels)
        tt = torch.stack([torch.zeros_like(t), t], 1).reshape(-1) * 1000.0  # (2B)
        temb = timestep_embedding(tt, c.freq_dim).to(xt.dtype)
        cond = self._linear(F.silu(self._linear(temb, "t.fc1")), "t.fc2")
        if c.num_classes > 0:
            cond = cond + self.param("label")[labels.repeat_interleave(2)]
        sc = F.silu(cond).reshape(b, 2, d)
        sel = (torch.arange(s) >= split).long()  # condition row of each token

        def per_token(a):  # (B, 2, k) -> (B, S, k)
            return a[:, sel]

        h = self._linear(xt, "in") + self.param("pos")[:s]
        lev = torch.tensor(c.token_levels(levels))
        allowed = lev[None, :] <= lev[:, None]
        hd = d // c.heads
        for i in range(c.layers):
            p = f"blocks.{i}"
            ada = per_token(self._linear(sc, p + ".ada"))
            sh1, sc1, g1, sh2, sc2, g2 = ada.split(d, -1)
            a = F.layer_norm(h, (d,), eps=1e-6) * (1 + sc1) + sh1

            def split_heads(x):
                return x.reshape(b, s, c.heads, hd).transpose(1, 2)

            q, k, v = (split_heads(self._linear(a, p + ".attn." + n)) for n in "qkv")
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
            o = self._linear((att @ v).transpose(1, 2).reshape(b, s, d), p + ".attn.o")
            h = h + g1 * o
            a2 = F.layer_norm(h, (d,), eps=1e-6) * (1 + sc2) + sh2
            m = self._linear(F.gelu(self._linear(a2, p + ".mlp.fc1"), approximate="tanh"), p + ".mlp.fc2")
            h = h + g2 * m
        fa = per_token(self._linear(sc, "final.ada"))
        sh, scl = fa.split(d, -1)
        return self._linear(F.layer_norm(h, (d,), eps=1e-6) * (1 + scl) + sh, "final.out")
