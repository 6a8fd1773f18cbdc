"""PyTorch reference of dcsldm's conventional baseline autoencoder (include/dcsldm/baseline/vit_autoencoder.hpp),
written from the header's documented math. It reads and writes dcsldm baseline model files (safetensors with
the configuration in the "ae.*" metadata, "dcsldm.kind" = "vit_autoencoder", parameter names of
vit_ae_layout), so one file can be run by both implementations.

    model = VitAE.load("fmnist_ldm_ae.safetensors")   # float64 by default
    z = model.encode(x)                               # x (B, R, R, C) -> z (B, Z, c)
    y = model.decode(z)                               # -> (B, R, R, C), at the training resolution only

The model:
  encode: non-overlapping p x p patches, X(b, py*g + px, (i*p + j)*C + ch) = x(b, py*p + i, px*p + j, ch)
          -> Linear(p*p*C -> D) + learned position -> [patch tokens ; N learned latent tokens] -> pre-LN
          transformer blocks (full attention) -> LayerNorm -> Linear(D -> c) of the latent rows (N > 0) or of
          every patch row (N = 0: the 2D latent of a conventional latent diffusion model, Z = (R/p)^2).
  decode: Linear(c -> D)(z); N > 0: [that + latent position ; mask token + position per patch], N = 0: that +
          position per patch -> blocks -> LayerNorm -> Linear(D -> p*p*C) of the patch rows -> pixels.
The blocks are DCS-Tok's (dcs_tok.DcsTok._block: GELU-tanh MLP, LayerNorm eps 1e-5).
"""
import torch

import dcs_tok

INT_KEYS = ("res", "patch", "channels", "width", "heads", "layers", "mlp_ratio", "latent_tokens", "latent_channels")


class VitAeConfig:
    def __init__(self, res=28, patch=4, channels=1, width=128, heads=4, layers=3, mlp_ratio=4, latent_tokens=32,
                 latent_channels=8):
        self.res, self.patch, self.channels = int(res), int(patch), int(channels)
        self.width, self.heads, self.layers, self.mlp_ratio = int(width), int(heads), int(layers), int(mlp_ratio)
        self.latent_tokens, self.latent_channels = int(latent_tokens), int(latent_channels)
        if self.res % self.patch or self.width % self.heads:
            raise ValueError(f"VitAeConfig: res {self.res} not a multiple of patch {self.patch}, or width "
                             f"{self.width} not divisible by heads {self.heads}")

    def grid(self):
        return self.res // self.patch

    def patches(self):
        return self.grid() ** 2

    def patch_dim(self):
        return self.patch * self.patch * self.channels

    def latent_count(self):
        return self.latent_tokens if self.latent_tokens > 0 else self.patches()

    def to_metadata(self):
        md = {"ae." + k: str(getattr(self, k)) for k in INT_KEYS}
        md["dcsldm.kind"] = "vit_autoencoder"
        return md

    @classmethod
    def from_metadata(cls, md, source="<metadata>"):
        missing = [k for k in INT_KEYS if "ae." + k not in md]
        if missing:
            raise ValueError(f"'{source}' has no metadata 'ae.{missing[0]}'")
        return cls(**{k: int(md["ae." + k]) for k in INT_KEYS})


def parameter_shapes(c):
    """[(name, shape)] in the order of vit_ae_layout."""
    d, n, hid = c.width, c.latent_tokens, c.mlp_ratio * c.width
    out = []

    def linear(name, o, i):
        out.extend(dcs_tok.linear_shapes(name, o, i))

    def block(p):
        out.extend(dcs_tok.block_shapes(p, d, hid))

    linear("ae.patch", d, c.patch_dim())
    out.append(("ae.pos", (c.patches(), d)))
    if n > 0:
        out.append(("ae.latent", (n, d)))
    for i in range(c.layers):
        block(f"ae.enc.{i}")
    out.append(("ae.enc_ln.weight", (d,)))
    out.append(("ae.enc_ln.bias", (d,)))
    linear("ae.bottleneck", c.latent_channels, d)
    linear("ae.dec_in", d, c.latent_channels)
    if n > 0:
        out.append(("ae.dec_latent_pos", (n, d)))
        out.append(("ae.mask", (1, d)))
    out.append(("ae.dec_pos", (c.patches(), d)))
    for i in range(c.layers):
        block(f"ae.dec.{i}")
    out.append(("ae.dec_ln.weight", (d,)))
    out.append(("ae.dec_ln.bias", (d,)))
    linear("ae.unpatch", c.patch_dim(), d)
    return out


class VitAE(torch.nn.Module):
    def __init__(self, config, dtype=torch.float64):
        super().__init__()
        self.config = config
        self.names = []
        for name, shape in parameter_shapes(config):
            self.names.append(name)
            self.register_parameter(name.replace(".", "__"), torch.nn.Parameter(torch.zeros(shape, dtype=dtype)))

    def param(self, name):
        return getattr(self, name.replace(".", "__"))

    def ae_parameters(self):
        return {n: self.param(n) for n in self.names}

    @classmethod
    def load(cls, path, dtype=torch.float64):
        tensors, meta = dcs_tok.read_safetensors(path)
        if meta.get("dcsldm.kind") != "vit_autoencoder":
            raise ValueError(f"'{path}' is not a dcsldm vit_autoencoder file")
        m = cls(VitAeConfig.from_metadata(meta, path), dtype)
        with torch.no_grad():
            for n in m.names:
                if n not in tensors or tuple(tensors[n].shape) != tuple(m.param(n).shape):
                    raise ValueError(f"'{path}': tensor '{n}' missing or of another shape")
                m.param(n).copy_(tensors[n])
        return m

    def save(self, path):
        dcs_tok.write_safetensors(path, self.ae_parameters(), self.config.to_metadata())

    # the layers are DCS-Tok's (the same C++ blocks)
    _linear = dcs_tok.DcsTok._linear
    _ln = dcs_tok.DcsTok._ln
    _mlp = dcs_tok.DcsTok._mlp
    _attention = dcs_tok.DcsTok._attention
    _block = dcs_tok.DcsTok._block

    def _to_patches(self, x):
        c = self.config
        b, g, p, ch = x.shape[0], c.grid(), c.patch, c.channels
        return x.reshape(b, g, p, g, p, ch).permute(0, 1, 3, 2, 4, 5).reshape(b, g * g, p * p * ch)

    def _from_patches(self, y):
        c = self.config
        b, g, p, ch = y.shape[0], c.grid(), c.patch, c.channels
        return y.reshape(b, g, g, p, p, ch).permute(0, 1, 3, 2, 4, 5).reshape(b, g * p, g * p, ch)

    def encode(self, x):
        c = self.config
        b, n, np_ = x.shape[0], c.latent_tokens, c.patches()
        seq = self._linear(self._to_patches(x), "ae.patch") + self.param("ae.pos")
        if n > 0:
            latent = self.param("ae.latent")
            seq = torch.cat([seq, latent.expand(b, *latent.shape)], 1)
        for i in range(c.layers):
            seq = self._block(seq, f"ae.enc.{i}", None)
        h = self._ln(seq, "ae.enc_ln")
        return self._linear(h[:, np_:] if n > 0 else h, "ae.bottleneck")

    def decode(self, z):
        c = self.config
        b, n = z.shape[0], c.latent_tokens
        lat = self._linear(z, "ae.dec_in")
        if n > 0:
            q = self.param("ae.mask") + self.param("ae.dec_pos")
            seq = torch.cat([lat + self.param("ae.dec_latent_pos"), q.expand(b, *q.shape)], 1)
        else:
            seq = lat + self.param("ae.dec_pos")
        for i in range(c.layers):
            seq = self._block(seq, f"ae.dec.{i}", None)
        h = self._ln(seq, "ae.dec_ln")
        return self._from_patches(self._linear(h[:, n:], "ae.unpatch"))

