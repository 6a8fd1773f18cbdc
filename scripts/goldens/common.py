"""Shared helpers for the golden-tensor scripts: a safetensors writer (no extra packages) and seeding.

Goldens are computed in float64 by PyTorch from inputs that are exactly representable in float32, so
the C++ tests can compare both their float and double instantiations against them.
"""
import json
import os
import struct

import torch

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden")

_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int32: "I32", torch.int64: "I64"}


def write_safetensors(name, tensors, meta=None):
    """Writes tests/data/golden/<name>.safetensors; tensors is a dict name -> torch tensor."""
    header = {}
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    blobs = []
    offset = 0
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        if t.dtype == torch.float32:
            t = t.double()
        raw = t.numpy().tobytes()  # little-endian on the hosts we support
        header[key] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name + ".safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    print(f"wrote {os.path.relpath(path)} ({offset} data bytes)")


def rand(*shape, gen, lo=-1.0, hi=1.0):
    """Uniform float32-representable values, returned as float64 with requires_grad."""
    x = (torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo).double()
    return x.requires_grad_(True)


def generator(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def fill_random(params, gen, std=0.3, norm_weight=lambda name: False):
    """Seeded N(0, std) values for every parameter ({name: Parameter}, in order), float32-representable;
    norm_weight(name) marks the LayerNorm weights, which get 1 + N(0, std)."""
    with torch.no_grad():
        for name, p in params.items():
            v = torch.randn(p.shape, generator=gen, dtype=torch.float32) * std
            if norm_weight(name):
                v = v + 1
            p.copy_(v.double())
