"""Goldens for dcsldm/nn activations, MLPs, attention masks and multi-head attention.

The attention reference is written out explicitly (torch 1.13 has no scaled_dot_product_attention):
  softmax(Q K^T * scale + mask) V with nn.Linear projections, mask = 0 where allowed and -1e30 elsewhere,
  and rows without any allowed key zeroed (the library's convention: such rows output zeros).
"""
import math

import torch
import torch.nn.functional as F

from common import generator, rand, write_safetensors


def activation_goldens():
    g = generator(31)
    m, n = 5, 7
    x = rand(m, n, gen=g, lo=-4.0, hi=4.0)
    b = rand(n, gen=g)
    dy = rand(m, n, gen=g).detach()
    t = {"x": x, "b": b, "dy": dy}
    for kind in ("none", "tanh"):
        xx = x.detach().clone().requires_grad_(True)
        y = F.gelu(xx, approximate=kind)
        y.backward(dy)
        t[f"gelu_{kind}_y"], t[f"gelu_{kind}_dx"] = y, xx.grad
        xx = x.detach().clone().requires_grad_(True)
        bb = b.detach().clone().requires_grad_(True)
        y = F.gelu(xx + bb, approximate=kind)
        y.backward(dy)
        t[f"bias_gelu_{kind}_y"], t[f"bias_gelu_{kind}_dx"] = y, xx.grad
        t[f"bias_gelu_{kind}_db"] = bb.grad
    xx = x.detach().clone().requires_grad_(True)
    y = F.silu(xx)
    y.backward(dy)
    t["silu_y"], t["silu_dx"] = y, xx.grad
    # SwiGLU gate: first half gate, second half value.
    h = 3
    xs = rand(m, 2 * h, gen=g, lo=-4.0, hi=4.0)
    dys = rand(m, h, gen=g).detach()
    a, v = xs.chunk(2, dim=-1)
    ys = F.silu(a) * v
    ys.backward(dys)
    t["swiglu_x"], t["swiglu_dy"], t["swiglu_y"], t["swiglu_dx"] = xs, dys, ys, xs.grad
    write_safetensors("activations", t)


def linear(fin, fout, g, bias=True):
    lin = torch.nn.Linear(fin, fout, bias=bias).double()
    with torch.no_grad():
        lin.weight.copy_(rand(fout, fin, gen=g))
        if bias:
            lin.bias.copy_(rand(fout, gen=g))
    return lin


def mlp_goldens():
    g = generator(32)
    m, d, hid, dout = 9, 6, 11, 5
    for kind in ("none", "tanh"):
        x = rand(m, d, gen=g)
        fc1, fc2 = linear(d, hid, g), linear(hid, dout, g)
        y = fc2(F.gelu(fc1(x), approximate=kind))
        dy = rand(m, dout, gen=g).detach()
        y.backward(dy)
        write_safetensors(f"mlp_gelu_{kind}", {
            "x": x, "dy": dy, "y": y, "dx": x.grad,
            "fc1_weight": fc1.weight, "fc1_bias": fc1.bias, "fc2_weight": fc2.weight, "fc2_bias": fc2.bias,
            "dfc1_weight": fc1.weight.grad, "dfc1_bias": fc1.bias.grad,
            "dfc2_weight": fc2.weight.grad, "dfc2_bias": fc2.bias.grad})
    hid = 7
    x = rand(m, d, gen=g)
    fc1, fc2 = linear(d, 2 * hid, g), linear(hid, dout, g)
    a, v = fc1(x).chunk(2, dim=-1)
    y = fc2(F.silu(a) * v)
    dy = rand(m, dout, gen=g).detach()
    y.backward(dy)
    write_safetensors("mlp_swiglu", {
        "x": x, "dy": dy, "y": y, "dx": x.grad,
        "fc1_weight": fc1.weight, "fc1_bias": fc1.bias, "fc2_weight": fc2.weight, "fc2_bias": fc2.bias,
        "dfc1_weight": fc1.weight.grad, "dfc1_bias": fc1.bias.grad,
        "dfc2_weight": fc2.weight.grad, "dfc2_bias": fc2.bias.grad})


def allowed_matrix(kind, qg, kg, radius):
    """(Tq, Tk) bool from the mask rules, written independently of the C++ code."""
    tq, tk = qg.shape[0], kg.shape[0]
    qi = torch.arange(tq)[:, None]
    kj = torch.arange(tk)[None, :]
    if kind == "full":
        return torch.ones(tq, tk, dtype=torch.bool)
    if kind == "causal":
        return kj <= qi
    lq, lk = qg[:, 0][:, None], kg[:, 0][None, :]
    if kind == "level_causal":
        return lk <= lq
    sq, sk = qg[:, 1][:, None], kg[:, 1][None, :]
    if kind == "segment_level_causal":
        return (sk <= sq) & (lk <= lq)
    if kind == "neighbourhood":
        d = (qg[:, None, :] - kg[None, :, :]).abs()
        return (d <= radius).all(dim=-1)
    raise ValueError(kind)


def mha_reference(x, c, lq, lk, lv, lo, heads, allowed):
    b, tq, _ = x.shape
    tk = c.shape[1]
    e = lq.weight.shape[0]
    hd = e // heads
    q = lq(x).view(b, tq, heads, hd).transpose(1, 2)
    k = lk(c).view(b, tk, heads, hd).transpose(1, 2)
    v = lv(c).view(b, tk, heads, hd).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
    mask = torch.zeros(tq, tk, dtype=torch.float64).masked_fill(~allowed, -1e30)
    p = torch.softmax(s + mask, dim=-1) * allowed.double()  # fully masked rows -> 0
    o = (p @ v).transpose(1, 2).reshape(b, tq, e)
    return lo(o)


def attention_case(name, kind, b, tq, tk, d, dc, e, dout, heads, qg, kg, radius, block, self_attn, seed):
    g = generator(seed)
    x = rand(b, tq, d, gen=g)
    c = x if self_attn else rand(b, tk, dc, gen=g)
    lq, lk, lv, lo = linear(d, e, g), linear(dc, e, g), linear(dc, e, g), linear(e, dout, g)
    qg = torch.as_tensor(qg, dtype=torch.int32).reshape(tq, 3)
    kg = torch.as_tensor(kg, dtype=torch.int32).reshape(tk, 3)
    allowed = allowed_matrix(kind, qg.long(), kg.long(), radius)
    y = mha_reference(x, c, lq, lk, lv, lo, heads, allowed)
    dy = rand(b, tq, dout, gen=g).detach()
    y.backward(dy)
    t = {"x": x, "y": y, "dy": dy, "dx": x.grad, "q_groups": qg, "k_groups": kg}
    if not self_attn:
        t["context"], t["dcontext"] = c, c.grad
    for nm, lin in (("q", lq), ("k", lk), ("v", lv), ("o", lo)):
        t[f"{nm}_weight"], t[f"{nm}_bias"] = lin.weight, lin.bias
        t[f"d{nm}_weight"], t[f"d{nm}_bias"] = lin.weight.grad, lin.bias.grad
    write_safetensors(name, t, {"kind": kind, "heads": heads, "radius": radius, "block": block,
                                "self": int(self_attn), "empty_rows": int((~allowed.any(dim=1)).sum())})


def attention_goldens():
    t = 7
    zeros = [0] * (3 * t)
    # LevelCausal: the DCS-Tok encoder sequence [3 patch tokens ; level 1 (2 tokens) ; level 2 (2 tokens)].
    levels = [0, 0, 0, 1, 1, 2, 2]
    lvl = sum(([l, 0, 0] for l in levels), [])
    # SegmentLevelCausal: video latents (segment, level) mixed in no particular order.
    seglvl = sum(([l, s, 0] for l, s in zip([1, 2, 1, 2, 3, 1, 2], [0, 0, 1, 1, 0, 2, 2])), [])
    # Neighbourhood self-attention on (t, y, x) patch coordinates, radius 1.
    coords = [0, 0, 0, 0, 0, 1, 0, 1, 2, 0, 2, 2, 1, 0, 0, 1, 2, 1, 0, 3, 3]
    for kind, qg, radius in (("full", zeros, 0), ("causal", zeros, 0), ("level_causal", lvl, 0),
                             ("segment_level_causal", seglvl, 0), ("neighbourhood", coords, 1)):
        attention_case(f"attn_self_{kind}", kind, b=2, tq=t, tk=t, d=8, dc=8, e=8, dout=8, heads=2,
                       qg=qg, kg=qg, radius=radius, block=3, self_attn=True, seed=40)
    # Cross-attention, Neighbourhood: 5 queries, 9 keys on a 3x3 patch grid; query 3 is far from every
    # key (a fully masked row -> zeros). Dc != D, Dout != D, 3 heads of width 2.
    kgrid = sum(([0, y, x] for y in range(3) for x in range(3)), [])
    qpos = [0, 0, 0, 0, 1, 1, 0, 2, 2, 0, 9, 9, 0, 0, 2]
    attention_case("attn_cross_neighbourhood", "neighbourhood", b=2, tq=5, tk=9, d=6, dc=4, e=6, dout=5,
                   heads=3, qg=qpos, kg=kgrid, radius=1, block=2, self_attn=False, seed=41)
    # A single query (Tq = 1) reading 4 keys without mask, one head.
    attention_case("attn_cross_tq1", "full", b=1, tq=1, tk=4, d=3, dc=5, e=4, dout=3, heads=1,
                   qg=[0, 0, 0], kg=[0] * 12, radius=0, block=128, self_attn=False, seed=42)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    activation_goldens()
    mlp_goldens()
    attention_goldens()
