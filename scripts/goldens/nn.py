"""Goldens for dcsldm/nn norms, softmax, losses, adaLN, Fourier features, timestep and label embeddings.

Run: cd scripts/goldens && /usr/bin/python3 nn.py   (or /usr/bin/python3 scripts/make_goldens.py)
Every file holds the inputs (float32-representable, stored as float64), the outputs and the gradients
that PyTorch 1.13 autograd computes for a given upstream gradient dy.
"""
import math

import torch
import torch.nn.functional as F

from common import generator, rand, write_safetensors


def layer_norm_goldens():
    g = generator(21)
    m, c = 7, 13
    # affine, with a row offset so that a one-pass variance would lose digits
    x = (rand(m, c, gen=g).detach() + 3.0).requires_grad_(True)
    ln = torch.nn.LayerNorm(c, eps=1e-5).double()
    with torch.no_grad():
        ln.weight.copy_(rand(c, gen=g, lo=0.5, hi=1.5))
        ln.bias.copy_(rand(c, gen=g))
    y = ln(x)
    dy = rand(m, c, gen=g).detach()
    y.backward(dy)
    write_safetensors("layer_norm", {"x": x, "weight": ln.weight, "bias": ln.bias, "y": y, "dy": dy,
                                     "dx": x.grad, "dweight": ln.weight.grad, "dbias": ln.bias.grad},
                      {"eps": 1e-5})
    # elementwise_affine=False, DiT's eps
    x = rand(m, c, gen=g)
    ln = torch.nn.LayerNorm(c, eps=1e-6, elementwise_affine=False).double()
    y = ln(x)
    dy = rand(m, c, gen=g).detach()
    y.backward(dy)
    write_safetensors("layer_norm_noaffine", {"x": x, "y": y, "dy": dy, "dx": x.grad}, {"eps": 1e-6})


def rms_norm_goldens():
    # PyTorch 1.13 has no RMSNorm: the reference is written in torch ops, autograd gives the gradients.
    g = generator(22)
    m, c, eps = 7, 13, 1e-6
    x = rand(m, c, gen=g)
    w = rand(c, gen=g, lo=0.5, hi=1.5)
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w
    dy = rand(m, c, gen=g).detach()
    y.backward(dy)
    write_safetensors("rms_norm", {"x": x, "weight": w, "y": y, "dy": dy, "dx": x.grad, "dweight": w.grad},
                      {"eps": eps})


def softmax_goldens():
    g = generator(23)
    m, c = 6, 11
    x = (rand(m, c, gen=g).detach() * 8.0)
    x[2] += 80.0  # large logits: exp overflows without the max shift
    x.requires_grad_(True)
    y = torch.softmax(x, dim=-1)
    dy = rand(m, c, gen=g).detach()
    y.backward(dy)
    write_safetensors("softmax", {"x": x, "y": y, "dy": dy, "dx": x.grad})


def loss_goldens():
    g = generator(24)
    shape = (4, 5, 3)
    pred = rand(*shape, gen=g)
    target = rand(*shape, gen=g).detach()
    with torch.no_grad():
        target.view(-1)[::7] = pred.detach().view(-1)[::7]  # exact ties: torch's l1 gradient there is 0
    weight = rand(*shape, gen=g, lo=0.0, hi=2.0).detach()
    upstream = 1.5
    t = {"pred": pred, "target": target, "weight": weight}
    for name, fn in (("l1", lambda p: F.l1_loss(p, target)),
                     ("mse", lambda p: F.mse_loss(p, target)),
                     ("l1_w", lambda p: (weight * F.l1_loss(p, target, reduction="none")).mean()),
                     ("mse_w", lambda p: (weight * F.mse_loss(p, target, reduction="none")).mean())):
        p = pred.detach().clone().requires_grad_(True)
        loss = fn(p)
        loss.backward(torch.tensor(upstream))
        t[name] = loss.reshape(1)
        t["dpred_" + name] = p.grad
    write_safetensors("loss", t, {"upstream": upstream})


def adaln_goldens():
    g = generator(25)
    b, n, d = 3, 5, 7
    x = rand(b, n, d, gen=g)
    shift, scale = rand(b, d, gen=g), rand(b, d, gen=g)
    y = x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)  # DiT's modulate
    dy = rand(b, n, d, gen=g).detach()
    y.backward(dy)
    t = {"x": x, "shift": shift, "scale": scale, "y_mod": y, "dy_mod": dy, "dx_mod": x.grad,
         "dshift": shift.grad, "dscale": scale.grad}
    r = rand(b, n, d, gen=g)
    h = rand(b, n, d, gen=g)
    gate = rand(b, d, gen=g)
    y = r + gate.unsqueeze(1) * h  # adaLN-Zero gated residual
    dy = rand(b, n, d, gen=g).detach()
    y.backward(dy)
    t.update({"r": r, "h": h, "gate": gate, "y_res": y, "dy_res": dy, "dr": r.grad, "dh": h.grad,
              "dgate": gate.grad})
    write_safetensors("adaln", t)


def fourier_features(x, num_freq):
    """[x, sin(2^k pi x) for k, cos(2^k pi x) for k] per coordinate, coordinates side by side."""
    freqs = (2.0 ** torch.arange(num_freq, dtype=torch.float64)) * math.pi  # (F)
    arg = x.unsqueeze(-1) * freqs  # (M, P, F)
    feats = torch.cat([x.unsqueeze(-1), torch.sin(arg), torch.cos(arg)], dim=-1)  # (M, P, 2F+1)
    return feats.reshape(x.shape[0], -1)


def fourier_goldens():
    g = generator(26)
    m, p, nf = 6, 3, 5
    x = rand(m, p, gen=g, lo=-1.5, hi=1.5).detach()
    x[0, 0], x[1, 1], x[2, 2] = 0.5, -1.0, 0.0
    x.requires_grad_(True)
    y = fourier_features(x, nf)
    dy = rand(*y.shape, gen=g).detach()
    y.backward(dy)
    write_safetensors("fourier_features", {"x": x, "y": y, "dy": dy, "dx": x.grad}, {"num_frequencies": nf})


def timestep_embedding(t, dim, max_period=10000):
    """DiT's TimestepEmbedder.timestep_embedding, in float64."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float64) / half)
    args = t[:, None].double() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def timestep_goldens():
    g = generator(27)
    t = (torch.rand(6, generator=g, dtype=torch.float32) * 1000.0).double()
    t[0], t[1] = 0.0, 999.0
    write_safetensors("timestep_embedding", {"t": t, "emb_even": timestep_embedding(t, 32),
                                             "emb_odd": timestep_embedding(t, 33),
                                             "emb_p100": timestep_embedding(t, 16, 100.0)})


def label_goldens():
    g = generator(28)
    num_classes, d = 10, 6
    table = rand(num_classes + 1, d, gen=g)
    labels = torch.tensor([3, 0, 10, 3, 9, 3, 10, 1, 9], dtype=torch.int64)
    y = F.embedding(labels, table)
    dy = rand(labels.shape[0], d, gen=g).detach()
    y.backward(dy)
    drop = torch.tensor([0, 1, 0, 0, 1, 0, 0, 0, 1], dtype=torch.int32)
    u = torch.rand(labels.shape[0], generator=g, dtype=torch.float32).double()
    prob = 0.3
    write_safetensors("label_embedding", {
        "table": table, "labels": labels.int(), "y": y, "dy": dy, "dtable": table.grad,
        "drop": drop, "u": u,
        "labels_mask": torch.where(drop != 0, torch.full_like(labels, num_classes), labels).int(),
        "labels_uniform": torch.where(u < prob, torch.full_like(labels, num_classes), labels).int()},
        {"num_classes": num_classes, "prob": prob})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    layer_norm_goldens()
    rms_norm_goldens()
    softmax_goldens()
    loss_goldens()
    adaln_goldens()
    fourier_goldens()
    timestep_goldens()
    label_goldens()
