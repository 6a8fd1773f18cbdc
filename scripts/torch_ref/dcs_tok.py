"""PyTorch reference of the dcsldm DCS-Tok tokenizer (include/dcsldm/tok/), written from the C++ headers'
documented math, not from their code. It reads and writes dcsldm tokenizer model files (safetensors with
the configuration in the "tok.*" metadata and the parameter names of tok/tokenizer_params.hpp), so one
file can be run by both implementations.

    model = DcsTok.load("tokenizer.safetensors")        # float64 on the CPU by default
    z = model.encode(x, fps=0)                          # x (B, T, H, W, C) -> z (B, N, c)
    y = model.decode(z, levels, T, H, W, fps=0)         # first `levels` levels -> y (B, T, H, W, C)
    model.save("copy.safetensors")

Everything is differentiable by autograd (parameters are torch.nn.Parameters of the module; the module can
be moved with .to(device, dtype)). No test logic lives here; scripts/goldens/tokenizer.py uses it for the
golden tensors.

The model (DESIGN.md section 2; tok/tokenizer.hpp):
  encode: pixel tokens gelu((x Wx^T) * (1 + Linear_g(ff)) + Linear_f(ff)) with ff the Fourier features of
          each pixel's (in-patch position, cell size) -> keys|values -> per patch, n learned queries attend over the
          patch's pixels (multi-head) -> Linear to width D, + Linear(Fourier(patch centre)), + slot
          embedding -> [patch tokens ; learned latent tokens] -> pre-LN transformer blocks with the
          level-causal mask (key level <= query level; patch tokens have level 0) -> LayerNorm ->
          Linear(D -> c) of the latent rows.
  decode: Linear(c -> D) of the latent rows of levels 1..m + latent position embedding ; one query token
          per (output patch, slot): Linear(Fourier(patch centre)) + slot embedding (+ row m - 1 of the
          level-count embedding with level_count_embedding) -> transformer blocks
          (full attention) -> LayerNorm -> keys|values of the patch tokens ; per output pixel a query
          GELU-MLP(ff) attends to the n tokens of its patch and of the up to 26 neighbouring patches,
          keys biased by a learned rel[offset * n + slot] -> output * (1 + Linear_mod(ff)) + query ->
          per-pixel GELU-MLP -> C values.
  GELU is the tanh approximation everywhere; LayerNorm eps is 1e-5.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

CONFIG_INT_KEYS = ("channels", "k", "queries", "pixel_width", "pixel_heads", "freqs", "pos_freqs", "width",
                   "heads", "enc_layers", "dec_layers", "mlp_ratio", "head_hidden", "latent_channels")
NEIGHBOUR_OFFSETS = [(dt, dy, dx) for dt in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
LN_EPS = 1e-5


# ------------------------------------------------------------------------------------------ configuration

class TokenizerConfig:
    """The architecture (tok/config.hpp); field names are the metadata keys without "tok."."""

    def __init__(self, channels=1, k=7, kt=0.0, queries=2, pixel_width=64, pixel_heads=4, freqs=6, pos_freqs=4,
                 width=128, heads=4, enc_layers=3, dec_layers=3, mlp_ratio=4, head_hidden=64,
                 level_sizes=(4, 4, 8, 16), latent_channels=8, level_count_embedding=False):
        self.channels, self.k, self.kt, self.queries = int(channels), int(k), float(kt), int(queries)
        self.pixel_width, self.pixel_heads = int(pixel_width), int(pixel_heads)
        self.freqs, self.pos_freqs = int(freqs), int(pos_freqs)
        self.width, self.heads = int(width), int(heads)
        self.enc_layers, self.dec_layers, self.mlp_ratio = int(enc_layers), int(dec_layers), int(mlp_ratio)
        self.head_hidden = int(head_hidden)
        self.level_sizes = [int(v) for v in level_sizes]
        self.latent_channels = int(latent_channels)
        self.level_count_embedding = bool(level_count_embedding)
        self.validate()

    def validate(self):
        for key in CONFIG_INT_KEYS:
            if getattr(self, key) < 1:
                raise ValueError(f"TokenizerConfig: {key} = {getattr(self, key)} must be >= 1")
        if self.kt < 0:
            raise ValueError(f"TokenizerConfig: kt = {self.kt} must be >= 0")
        if self.pixel_width % self.pixel_heads:
            raise ValueError(f"TokenizerConfig: pixel_width = {self.pixel_width} is not divisible by "
                             f"pixel_heads = {self.pixel_heads}")
        if self.width % self.heads:
            raise ValueError(f"TokenizerConfig: width = {self.width} is not divisible by heads = {self.heads}")
        if not self.level_sizes or min(self.level_sizes) < 1:
            raise ValueError(f"TokenizerConfig: level_sizes = {self.level_sizes}, expected entries >= 1")

    def levels(self):
        return len(self.level_sizes)

    def latent_tokens(self):
        return sum(self.level_sizes)

    def tokens_upto(self, m):
        return sum(self.level_sizes[:m])

    def pixel_feature_width(self):
        return 6 * (2 * self.freqs + 1)

    def patch_feature_width(self):
        return 3 * (2 * self.pos_freqs + 1)

    def to_metadata(self):
        md = {"tok." + key: "%.17g" % getattr(self, key) for key in CONFIG_INT_KEYS}
        md["tok.kt"] = "%.17g" % self.kt
        md["tok.level_sizes"] = ",".join(str(v) for v in self.level_sizes)
        if self.level_count_embedding:  # written only when on, as in C++
            md["tok.level_count_embedding"] = "1"
        return md

    @classmethod
    def from_metadata(cls, md, source="<metadata>"):
        def get(key):
            if "tok." + key not in md:
                raise ValueError(f"'{source}' has no metadata 'tok.{key}' (not a dcsldm tokenizer file?)")
            return md["tok." + key]

        def inum(key):
            v = float(get(key))
            if v != int(v):
                raise ValueError(f"'{source}': metadata 'tok.{key}' = {v} is not an integer")
            return int(v)

        args = {key: inum(key) for key in CONFIG_INT_KEYS}
        args["kt"] = float(get("kt"))
        args["level_sizes"] = [int(s) for s in get("level_sizes").split(",")]
        lce = md.get("tok.level_count_embedding", "0")
        if lce not in ("0", "1"):
            raise ValueError(f"'{source}': metadata 'tok.level_count_embedding' = {lce}, expected 0 or 1")
        args["level_count_embedding"] = lce == "1"
        return cls(**args)


def linear_shapes(name, o, i):
    """A Linear(i -> o) with bias: [(name.weight, (o, i)), (name.bias, (o,))] (tok::Impl::add_linear)."""
    return [(name + ".weight", (o, i)), (name + ".bias", (o,))]


def block_shapes(p, d, hidden):
    """A pre-LN transformer block of width d (tok::Impl::add_block): ln1, ln2, attn.{q,k,v,o}, mlp.fc1/fc2."""
    out = []
    for ln in (".ln1", ".ln2"):
        out += [(p + ln + ".weight", (d,)), (p + ln + ".bias", (d,))]
    for a in (".attn.q", ".attn.k", ".attn.v", ".attn.o"):
        out += linear_shapes(p + a, d, d)
    return out + linear_shapes(p + ".mlp.fc1", hidden, d) + linear_shapes(p + ".mlp.fc2", d, hidden)


def parameter_shapes(c):
    """[(name, shape)] in the order of tokenizer_layout (tok/tokenizer_params.hpp)."""
    e, d, n, ch, lc = c.pixel_width, c.width, c.queries, c.channels, c.latent_channels
    nl, fw, fp, hid = c.latent_tokens(), c.pixel_feature_width(), c.patch_feature_width(), c.mlp_ratio * c.width
    out = []

    def linear(name, o, i):
        out.extend(linear_shapes(name, o, i))

    def block(p):
        out.extend(block_shapes(p, d, hid))

    out.append(("enc.pix_x.weight", (e, ch)))
    linear("enc.pix_f", e, fw)
    linear("enc.pix_g", e, fw)
    linear("enc.pix_kv", 2 * e, e)
    out.append(("enc.pool_q", (n, e)))
    linear("enc.proj", d, e)
    linear("enc.pos", d, fp)
    out.append(("enc.slot", (n, d)))
    out.append(("enc.latent", (nl, d)))
    for i in range(c.enc_layers):
        block(f"enc.blocks.{i}")
    out.append(("enc.ln.weight", (d,)))
    out.append(("enc.ln.bias", (d,)))
    linear("enc.bottleneck", lc, d)
    linear("dec.in", d, lc)
    out.append(("dec.latent_pos", (nl, d)))
    linear("dec.pos", d, fp)
    out.append(("dec.slot", (n, d)))
    if c.level_count_embedding:
        out.append(("dec.level_count", (c.levels(), d)))
    for i in range(c.dec_layers):
        block(f"dec.blocks.{i}")
    out.append(("dec.ln.weight", (d,)))
    out.append(("dec.ln.bias", (d,)))
    linear("dec.kv", 2 * e, d)
    linear("dec.q.fc1", e, fw)
    linear("dec.q.fc2", e, e)
    linear("dec.mod", e, fw)
    out.append(("dec.rel", (27 * n, e)))
    linear("dec.head.fc1", c.head_hidden, e)
    linear("dec.head.fc2", ch, c.head_hidden)
    return out


# ------------------------------------------------------------------------------------------------ geometry

def scale_aware_grid(t, h, w, k, kt=0.0, fps=0.0):
    """(t, h, w, gt, gh, gw): k patches along the shorter spatial side, round(k * long / short) (halves up)
    along the longer one; gt = max(1, round(kt * t / fps)) for a video with kt > 0, else 1."""
    if k < 1 or min(t, h, w) < 1:
        raise ValueError(f"scale_aware_grid: k = {k}, (t, h, w) = ({t}, {h}, {w}); expected all >= 1")
    s, l = min(h, w), max(h, w)
    gl = max(1, (2 * k * l + s) // (2 * s))
    gt = 1
    if t > 1 and kt > 0:
        if fps <= 0:
            raise ValueError(f"scale_aware_grid: fps = {fps}, expected > 0 for a video (t = {t}, kt = {kt})")
        v = kt * t / fps
        r = math.floor(v)
        if v - r >= 0.5:  # std::round: halves away from zero
            r += 1
        if r > t:
            raise ValueError(f"scale_aware_grid: gt = {r} > t = {t} frames")
        gt = max(1, int(r))
    gh, gw = (k, gl) if h <= w else (gl, k)
    if gh > h or gw > w:
        raise ValueError(f"scale_aware_grid: patch grid ({gt}, {gh}, {gw}) has more patches than pixels "
                         f"({t}, {h}, {w}) along an axis")
    return (t, h, w, gt, gh, gw)


def _axis_patch(n, g):
    i = torch.arange(n, dtype=torch.int64)
    return torch.clamp(((2 * i + 1) * g) // (2 * n), max=g - 1)


def pixel_coords(grid, dtype=torch.float64):
    """(Npix, 6): [frac_t, frac_y, frac_x, g_t/t, g_y/h, g_x/w], pixels in (t, y, x) row-major order, with
    frac the in-patch position of u = (i + 0.5) g / n, computed from exact integers."""
    t, h, w, gt, gh, gw = grid
    cols = []
    for axis, (n, g) in enumerate(((t, gt), (h, gh), (w, gw))):
        i = torch.arange(n, dtype=torch.int64)
        num, den = (2 * i + 1) * g, 2 * n
        frac = (num - _axis_patch(n, g) * den).to(dtype) / den
        shape = [1, 1, 1]
        shape[axis] = n
        cols.append(frac.reshape(shape).expand(t, h, w).reshape(-1))
    npix = t * h * w
    for n, g in ((t, gt), (h, gh), (w, gw)):
        cols.append(torch.full((npix,), g / n, dtype=dtype))
    return torch.stack(cols, 1)


def patch_centres(grid, dtype=torch.float64):
    """(P, 3): [(pt + 0.5) / gt, (py + 0.5) / gh, (px + 0.5) / gw], P = (pt * gh + py) * gw + px."""
    _, _, _, gt, gh, gw = grid
    f64 = torch.float64  # (p + 0.5) / g in double, then one rounding to dtype
    pt, py, px = torch.meshgrid(torch.arange(gt, dtype=f64), torch.arange(gh, dtype=f64),
                                torch.arange(gw, dtype=f64), indexing="ij")
    c = torch.stack([(pt.reshape(-1) + 0.5) / gt, (py.reshape(-1) + 0.5) / gh, (px.reshape(-1) + 0.5) / gw], 1)
    return c.to(dtype)


def fourier_features(x, nf):
    """x (M, P) -> (M, P * (2F + 1)): per coordinate [x, sin(2^k pi x) (k < F), cos(2^k pi x) (k < F)]; the
    argument is reduced as pi * (2^k x mod 2) like nn/fourier_features.hpp."""
    s = 2.0 ** torch.arange(nf, dtype=x.dtype, device=x.device)
    u = x[..., None] * s
    arg = math.pi * (u - 2 * torch.floor(u * 0.5))
    return torch.cat([x[..., None], torch.sin(arg), torch.cos(arg)], -1).reshape(x.shape[0], -1)


class PatchTables:
    """Index tables of one grid: the pixels of every patch (padded to the largest patch), each pixel's slot
    in that padded table, and the token rows of the 27 neighbours of every patch (n tokens each)."""

    def __init__(self, grid, n, device):
        t, h, w, gt, gh, gw = grid
        num_p, npix = gt * gh * gw, t * h * w
        pt, py, px = _axis_patch(t, gt), _axis_patch(h, gh), _axis_patch(w, gw)
        patch = ((pt[:, None, None] * gh + py[None, :, None]) * gw + px[None, None, :]).reshape(-1)
        counts = torch.bincount(patch, minlength=num_p)
        m = int(counts.max())
        order = torch.sort(patch, stable=True).indices  # pixel ids grouped by patch, pixel order inside
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(npix) - starts[patch[order]]
        members = torch.zeros(num_p, m, dtype=torch.int64)
        valid = torch.zeros(num_p, m, dtype=torch.bool)
        members[patch[order], pos] = order
        valid[patch[order], pos] = True
        members = torch.where(valid, members, members[:, :1])  # padding points at a real pixel (masked)
        slot = torch.empty(npix, dtype=torch.int64)
        slot[order] = patch[order] * m + pos
        # Neighbours: offset o = ((dt+1)*3 + (dy+1))*3 + (dx+1), token (o, j) at column o*n + j.
        ct, cy, cx = torch.meshgrid(torch.arange(gt), torch.arange(gh), torch.arange(gw), indexing="ij")
        ct, cy, cx = ct.reshape(-1, 1), cy.reshape(-1, 1), cx.reshape(-1, 1)
        off = torch.tensor(NEIGHBOUR_OFFSETS, dtype=torch.int64)
        nt, ny, nx = ct + off[:, 0], cy + off[:, 1], cx + off[:, 2]  # (P, 27)
        ok = (nt >= 0) & (nt < gt) & (ny >= 0) & (ny < gh) & (nx >= 0) & (nx < gw)
        nb = torch.where(ok, (nt * gh + ny) * gw + nx, torch.zeros_like(nt))
        rows = nb[:, :, None] * n + torch.arange(n)[None, None, :]  # (P, 27, n)
        self.grid, self.num_patches, self.max_pixels = grid, num_p, m
        self.members = members.to(device)                     # (P, m) pixel ids
        self.member_valid = valid.to(device)                  # (P, m)
        self.pixel_slot = slot.to(device)                     # (Npix,) index into the flattened (P, m) table
        self.nb_rows = rows.reshape(num_p, 27 * n).to(device)   # (P, 27 n) token rows
        self.nb_valid = ok[:, :, None].expand(num_p, 27, n).reshape(num_p, 27 * n).to(device)


# ------------------------------------------------------------------------------------ pixel-level attention

def patch_pool_attention(kv, q, tab, heads):
    """kv (B, Npix, 2E) keys | values, q (n, E) -> (B, P*n, E): per patch P, query j and head,
    softmax over the patch's pixels of <q_j, k_i> / sqrt(hd), times v_i."""
    b, _, e2 = kv.shape
    e, n = e2 // 2, q.shape[0]
    hd = e // heads
    num_p, m = tab.members.shape
    g = kv[:, tab.members]  # (B, P, m, 2E)
    k = g[..., :e].reshape(b, num_p, m, heads, hd).permute(0, 1, 3, 2, 4)  # (B, P, H, m, hd)
    v = g[..., e:].reshape(b, num_p, m, heads, hd).permute(0, 1, 3, 2, 4)
    qh = q.reshape(n, heads, hd).permute(1, 0, 2)  # (H, n, hd)
    s = torch.matmul(qh, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))  # (B, P, H, n, m)
    s = s.masked_fill(~tab.member_valid[None, :, None, None, :], float("-inf"))
    o = torch.matmul(torch.softmax(s, -1), v)  # (B, P, H, n, hd)
    return o.permute(0, 1, 3, 2, 4).reshape(b, num_p * n, e)


def neighbour_attention(q, kv, rel, tab, n, heads):
    """q (Npix, E) per-pixel queries, kv (B, P*n, 2E) token keys | values, rel (27n, E) -> (B, Npix, E):
    pixel i in patch P attends to the tokens (o, j) of the patches P + offset(o) inside the grid, with
    keys kv[.., :E] + rel[o*n + j] and scores scaled by 1 / sqrt(hd), per head."""
    b, _, e2 = kv.shape
    e = e2 // 2
    hd = e // heads
    num_p, m = tab.members.shape
    r = 27 * n
    g = kv[:, tab.nb_rows]  # (B, P, 27n, 2E)
    k = (g[..., :e] + rel).reshape(b, num_p, r, heads, hd).permute(0, 1, 3, 2, 4)  # (B, P, H, 27n, hd)
    v = g[..., e:].reshape(b, num_p, r, heads, hd).permute(0, 1, 3, 2, 4)
    qh = q[tab.members].reshape(num_p, m, heads, hd).permute(0, 2, 1, 3)  # (P, H, m, hd)
    s = torch.matmul(qh, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))  # (B, P, H, m, 27n)
    s = s.masked_fill(~tab.nb_valid[None, :, None, None, :], float("-inf"))
    o = torch.matmul(torch.softmax(s, -1), v)  # (B, P, H, m, hd)
    o = o.permute(0, 1, 3, 2, 4).reshape(b, num_p * m, e)
    return o[:, tab.pixel_slot]


# --------------------------------------------------------------------------------------------- safetensors

_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file (little-endian host)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        dt = _ST_DTYPES[e["dtype"]]
        buf = bytearray(data[a:b])
        t = torch.frombuffer(buf, dtype=dt) if b > a else torch.zeros(0, dtype=dt)
        tensors[name] = t.reshape(e["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (name -> tensor, stored in their own dtype) and string metadata, atomically."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------- model

def _pname(name):
    return name.replace(".", "__")


class DcsTok(torch.nn.Module):
    """The DCS-Tok tokenizer with dcsldm's parameter names (self.param(name) or self.tok_parameters())."""

    def __init__(self, config, dtype=torch.float64, device="cpu"):
        super().__init__()
        self.config = config
        self.names = []
        for name, shape in parameter_shapes(config):
            self.names.append(name)
            self.register_parameter(_pname(name), torch.nn.Parameter(torch.zeros(shape, dtype=dtype, device=device)))
        self._tables = {}

    # parameters ---------------------------------------------------------------------------------------
    def param(self, name):
        return getattr(self, _pname(name))

    def tok_parameters(self):
        """{dcsldm name: Parameter}, in layout order."""
        return {name: self.param(name) for name in self.names}

    @torch.no_grad()
    def init(self, seed, scheme="unit"):
        """init_tokenizer's schemes (tok/tokenizer_params.hpp): norms 1, biases 0, embeddings N(0, 0.02);
        raw-feature weights N(0, 1/sqrt(fan_in)); with "unit" also the pixel-level chain and the blocks'
        attention q/k/v and MLP fc1; every other weight N(0, 0.02). Same distribution, not the same numbers
        as the C++ (different generator)."""
        if scheme not in ("unit", "small"):
            raise ValueError(f"init: unknown scheme '{scheme}' (expected unit or small)")
        gen = torch.Generator()
        gen.manual_seed(seed)
        raw = {"enc.pix_x.weight", "enc.pix_f.weight", "enc.pos.weight", "dec.pos.weight", "dec.in.weight",
               "dec.q.fc1.weight", "enc.pix_g.weight", "dec.mod.weight"}
        chain = {"enc.pix_kv.weight", "enc.proj.weight", "enc.bottleneck.weight", "dec.kv.weight",
                 "dec.q.fc2.weight", "dec.head.fc1.weight"}
        block_in = (".attn.q.weight", ".attn.k.weight", ".attn.v.weight", ".mlp.fc1.weight")
        for name in self.names:
            p = self.param(name)
            if ".ln" in name and name.endswith(".weight"):
                p.fill_(1)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                fan_in = p.shape[1] if p.dim() == 2 else 1
                unit = name in raw or (scheme == "unit" and (name in chain or name.endswith(block_in)))
                std = 1.0 / math.sqrt(fan_in) if unit else 0.02
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * std)
        return self

    @classmethod
    def load(cls, path, dtype=torch.float64, device="cpu"):
        tensors, meta = read_safetensors(path)
        if meta.get("dcsldm.kind") != "tokenizer":
            raise ValueError(f"'{path}' is not a dcsldm tokenizer (metadata 'dcsldm.kind' = "
                             f"'{meta.get('dcsldm.kind', '<missing>')}')")
        model = cls(TokenizerConfig.from_metadata(meta, path), dtype, device)
        with torch.no_grad():
            for name in model.names:
                p = model.param(name)
                if name not in tensors:
                    raise ValueError(f"'{path}' has no tensor '{name}' (expected shape {tuple(p.shape)})")
                if tuple(tensors[name].shape) != tuple(p.shape):
                    raise ValueError(f"'{path}', tensor '{name}': file shape {tuple(tensors[name].shape)} != "
                                     f"layout shape {tuple(p.shape)}")
                p.copy_(tensors[name])
        return model

    def save(self, path, extra_metadata=None):
        """Writes a dcsldm model file (parameters in their current dtype; C++ converts on load)."""
        meta = self.config.to_metadata()
        meta["dcsldm.kind"] = "tokenizer"
        meta.update(extra_metadata or {})
        write_safetensors(path, {name: self.param(name) for name in self.names}, meta)

    # geometry -----------------------------------------------------------------------------------------
    def grid(self, t, h, w, fps=0.0):
        c = self.config
        return scale_aware_grid(t, h, w, c.k, c.kt, fps)

    def _geometry(self, grid, dtype, device):
        key = (grid, str(dtype), str(device))
        if key not in self._tables:
            c = self.config
            ff = fourier_features(pixel_coords(grid, torch.float64), c.freqs).to(dtype=dtype, device=device)
            ffpos = fourier_features(patch_centres(grid, torch.float64), c.pos_freqs).to(dtype=dtype, device=device)
            self._tables[key] = (PatchTables(grid, c.queries, device), ff, ffpos)
        return self._tables[key]

    # layers -------------------------------------------------------------------------------------------
    def _linear(self, x, name, bias=True):
        return F.linear(x, self.param(name + ".weight"), self.param(name + ".bias") if bias else None)

    def _ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.param(name + ".weight"), self.param(name + ".bias"), LN_EPS)

    def _mlp(self, x, name):
        return self._linear(F.gelu(self._linear(x, name + ".fc1"), approximate="tanh"), name + ".fc2")

    def _attention(self, x, name, allowed):
        b, s, d = x.shape
        heads = self.config.heads
        hd = d // heads

        def split(t):
            return t.reshape(b, s, heads, hd).transpose(1, 2)  # (B, H, S, hd)

        q, k, v = (split(self._linear(x, name + p)) for p in (".q", ".k", ".v"))
        sc = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        if allowed is not None:
            sc = sc.masked_fill(~allowed, float("-inf"))
        o = torch.matmul(torch.softmax(sc, -1), v).transpose(1, 2).reshape(b, s, d)
        return self._linear(o, name + ".o")

    def _block(self, x, name, allowed):
        x = x + self._attention(self._ln(x, name + ".ln1"), name + ".attn", allowed)
        return x + self._mlp(self._ln(x, name + ".ln2"), name + ".mlp")

    # passes -------------------------------------------------------------------------------------------
    def encode(self, x, fps=0.0):
        """x (B, T, H, W, C) -> z (B, N, c). fps only matters for a video with kt > 0."""
        c = self.config
        b, t, h, w, ch = x.shape
        if ch != c.channels:
            raise ValueError(f"encode: x has {ch} channels, the model {c.channels}")
        grid = self.grid(t, h, w, fps)
        tab, ff, ffpos = self._geometry(grid, x.dtype, x.device)
        n, num_p = c.queries, tab.num_patches
        pn = num_p * n
        # Pixel tokens and the patchifier read-out.
        xw = F.linear(x.reshape(b, t * h * w, ch), self.param("enc.pix_x.weight"))
        pre = xw * (1 + self._linear(ff, "enc.pix_g")) + self._linear(ff, "enc.pix_f")
        kv = self._linear(F.gelu(pre, approximate="tanh"), "enc.pix_kv")  # (B, Npix, 2E)
        pooled = patch_pool_attention(kv, self.param("enc.pool_q"), tab, c.pixel_heads)  # (B, P*n, E)
        pos = self._linear(ffpos, "enc.pos")  # (P, D)
        tok = (self._linear(pooled, "enc.proj") + pos.repeat_interleave(n, 0)
               + self.param("enc.slot").repeat(num_p, 1))
        latent = self.param("enc.latent")
        seq = torch.cat([tok, latent.expand(b, *latent.shape)], 1)  # (B, P*n + N, D)
        levels = [0] * pn
        for l, size in enumerate(c.level_sizes):
            levels += [l + 1] * size
        lev = torch.tensor(levels, device=x.device)
        allowed = lev[None, :] <= lev[:, None]  # allowed[query, key]: level_key <= level_query
        for i in range(c.enc_layers):
            seq = self._block(seq, f"enc.blocks.{i}", allowed)
        return self._linear(self._ln(seq, "enc.ln")[:, pn:], "enc.bottleneck")

    def decode(self, z, levels, t, h, w, fps=0.0):
        """The first `levels` levels of z (B, N, c) -> y (B, t, h, w, C) on the grid of (t, h, w, fps)."""
        c = self.config
        if not 1 <= levels <= c.levels():
            raise ValueError(f"decode: levels = {levels}, expected 1..{c.levels()}")
        b = z.shape[0]
        grid = self.grid(t, h, w, fps)
        tab, ff, ffpos = self._geometry(grid, z.dtype, z.device)
        n, num_p = c.queries, tab.num_patches
        nm = c.tokens_upto(levels)
        lat = self._linear(z[:, :nm], "dec.in") + self.param("dec.latent_pos")[:nm]
        qpos = self._linear(ffpos, "dec.pos")
        qtok = qpos.repeat_interleave(n, 0) + self.param("dec.slot").repeat(num_p, 1)  # (P*n, D)
        if c.level_count_embedding:  # the decoder is told how many levels it decodes
            qtok = qtok + self.param("dec.level_count")[levels - 1]
        seq = torch.cat([lat, qtok.expand(b, *qtok.shape)], 1)  # (B, Nm + P*n, D)
        for i in range(c.dec_layers):
            seq = self._block(seq, f"dec.blocks.{i}", None)
        kv = self._linear(self._ln(seq, "dec.ln")[:, nm:], "dec.kv")  # (B, P*n, 2E)
        qpix = self._mlp(ff, "dec.q")  # (Npix, E)
        o = neighbour_attention(qpix, kv, self.param("dec.rel"), tab, n, c.pixel_heads)
        y = self._mlp(o * (1 + self._linear(ff, "dec.mod")) + qpix, "dec.head")  # (B, Npix, C)
        return y.reshape(b, t, h, w, c.channels)
