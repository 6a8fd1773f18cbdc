"""Goldens for dcsldm/tok patch-pool attention and neighbourhood attention (the DCS-Tok pixel-level ops).

Straightforward PyTorch references with explicit gathers and masks, differentiated by autograd:
  - patch pool: the keys/values of the pixels of each patch are gathered into a padded (P, max_pixels)
    table with a validity mask; n learned queries (shared by all patches) attend per head.
  - neighbourhood: every pixel gathers the n tokens of the 27 patches around its own (a padded (Npix, 27 n)
    table with a validity mask for offsets outside the grid), adds the learned key bias rel[o*n + j] to the
    keys and attends per head with its own query.
A pixel's patch on an axis with n pixels and g patches is floor((2i + 1) g / (2n)) (integer arithmetic),
the continuous coordinate u = (i + 0.5) g / n of dcsldm/tok/patch_grid.hpp.
"""
import math

import torch

from common import generator, rand, write_safetensors

OFFSETS = [(dt, dy, dx) for dt in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def axis_patch(i, n, g):
    return min(((2 * i + 1) * g) // (2 * n), g - 1)


def pixel_patches(grid):
    """(Npix,) patch index and (Npix, 3) patch coordinates, pixels in (t, y, x) row-major order."""
    t, h, w, gt, gh, gw = grid
    ids, coords = [], []
    for ti in range(t):
        for yi in range(h):
            for xi in range(w):
                c = (axis_patch(ti, t, gt), axis_patch(yi, h, gh), axis_patch(xi, w, gw))
                coords.append(c)
                ids.append((c[0] * gh + c[1]) * gw + c[2])
    return ids, coords


def pool_reference(kv, q, grid, heads):
    """y (B, P*n, E) = per patch and query, softmax over the patch's pixels of scale <q_j, k_i>, times v_i."""
    b, npix, e2 = kv.shape
    e, n = e2 // 2, q.shape[0]
    hd = e // heads
    _, _, _, gt, gh, gw = grid
    num_p = gt * gh * gw
    ids, _ = pixel_patches(grid)
    members = [[i for i in range(npix) if ids[i] == p] for p in range(num_p)]
    m = max(len(x) for x in members)
    idx = torch.zeros(num_p, m, dtype=torch.long)
    mask = torch.zeros(num_p, m, dtype=torch.bool)
    for p, mem in enumerate(members):
        idx[p, :len(mem)] = torch.tensor(mem)
        mask[p, :len(mem)] = True
    k = kv[:, :, :e].reshape(b, npix, heads, hd)[:, idx]  # (B, P, m, H, hd)
    v = kv[:, :, e:].reshape(b, npix, heads, hd)[:, idx]
    qh = q.reshape(n, heads, hd)
    s = torch.einsum("jhd,bpmhd->bpjhm", qh, k) / math.sqrt(hd)
    s = s.masked_fill(~mask[None, :, None, None, :], float("-inf"))
    a = torch.softmax(s, dim=-1)
    out = torch.einsum("bpjhm,bpmhd->bpjhd", a, v)  # (B, P, n, H, hd)
    return out.reshape(b, num_p * n, e)


def neighbour_reference(q, kv, rel, grid, n, heads):
    """y (B, Npix, E): each pixel attends to the n tokens of the (up to) 27 patches around its own."""
    b, rows, e2 = kv.shape
    e = e2 // 2
    hd = e // heads
    npix = q.shape[0]
    _, _, _, gt, gh, gw = grid
    _, coords = pixel_patches(grid)
    idx = torch.zeros(npix, 27 * n, dtype=torch.long)
    mask = torch.zeros(npix, 27 * n, dtype=torch.bool)
    for i, (pt, py, px) in enumerate(coords):
        for o, (dt, dy, dx) in enumerate(OFFSETS):
            nt, ny, nx = pt + dt, py + dy, px + dx
            if 0 <= nt < gt and 0 <= ny < gh and 0 <= nx < gw:
                pnb = (nt * gh + ny) * gw + nx
                for j in range(n):
                    idx[i, o * n + j] = pnb * n + j
                    mask[i, o * n + j] = True
    k = (kv[:, :, :e][:, idx] + rel[None, None]).reshape(b, npix, 27 * n, heads, hd)
    v = kv[:, :, e:][:, idx].reshape(b, npix, 27 * n, heads, hd)
    qh = q.reshape(npix, heads, hd)
    s = torch.einsum("ihd,bimhd->bihm", qh, k) / math.sqrt(hd)
    s = s.masked_fill(~mask[None, :, None, :], float("-inf"))
    a = torch.softmax(s, dim=-1)
    return torch.einsum("bihm,bimhd->bihd", a, v).reshape(b, npix, e)


def meta_of(grid, n, heads, b, e):
    t, h, w, gt, gh, gw = grid
    return {"t": t, "h": h, "w": w, "gt": gt, "gh": gh, "gw": gw, "n": n, "heads": heads, "batch": b, "width": e}


def pool_golden(name, grid, b, n, e, heads, seed):
    g = generator(seed)
    t, h, w, _, _, _ = grid
    kv = rand(b, t * h * w, 2 * e, gen=g, lo=-2.0, hi=2.0)
    q = rand(n, e, gen=g, lo=-2.0, hi=2.0)
    y = pool_reference(kv, q, grid, heads)
    dy = rand(*y.shape, gen=g).detach()
    y.backward(dy)
    write_safetensors(name, {"kv": kv, "q": q, "dy": dy, "y": y, "dkv": kv.grad, "dq": q.grad},
                      meta_of(grid, n, heads, b, e))


def neighbour_golden(name, grid, b, n, e, heads, seed):
    g = generator(seed)
    t, h, w, gt, gh, gw = grid
    q = rand(t * h * w, e, gen=g, lo=-2.0, hi=2.0)
    kv = rand(b, gt * gh * gw * n, 2 * e, gen=g, lo=-2.0, hi=2.0)
    rel = rand(27 * n, e, gen=g)
    y = neighbour_reference(q, kv, rel, grid, n, heads)
    dy = rand(*y.shape, gen=g).detach()
    y.backward(dy)
    write_safetensors(name, {"q": q, "kv": kv, "rel": rel, "dy": dy, "y": y, "dq": q.grad, "dkv": kv.grad,
                             "drel": rel.grad}, meta_of(grid, n, heads, b, e))


if __name__ == "__main__":
    # Non-integer patch sizes everywhere: 5x7 pixels on 2x3 patches, a 3-frame video on 2 temporal patches,
    # and a head dimension above the kernels' 32-wide accumulator chunk ("wide").
    pool_golden("pixel_attention_pool_image", (1, 5, 7, 1, 2, 3), 2, 2, 8, 2, 71)
    pool_golden("pixel_attention_pool_video", (3, 4, 5, 2, 2, 3), 2, 2, 8, 2, 72)
    pool_golden("pixel_attention_pool_wide", (1, 5, 6, 1, 2, 2), 1, 3, 72, 2, 73)
    neighbour_golden("pixel_attention_neighbour_image", (1, 5, 7, 1, 2, 3), 2, 2, 8, 2, 74)
    neighbour_golden("pixel_attention_neighbour_video", (3, 4, 5, 2, 2, 3), 2, 2, 8, 2, 75)
    neighbour_golden("pixel_attention_neighbour_wide", (1, 5, 6, 1, 2, 2), 1, 3, 72, 2, 76)
