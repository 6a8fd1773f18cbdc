"""Model-level goldens for the DCS-DiT (dcsldm/dit/), from the PyTorch reference scripts/torch_ref/dcs_dit.py.

Per case: a tiny DiT with seeded random parameters (std 0.3, float32-representable; AdaLN and output layers
non-zero so every path is exercised) written as dit_<case>.model.safetensors, and dit_<case>.safetensors with
xt (B, S, c), t (B), labels (B, I32, including the null label), proj, v = DiT(xt, t, labels, levels, split),
and the gradients of L = sum(v * proj) w.r.t. every parameter as "grad.<name>". Metadata: levels, split.
"""
import os
import sys

import torch

from common import OUT_DIR, generator, write_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ref"))
import dcs_dit  # noqa: E402


def tiny_config():
    # tests/dit/test_dit_golden.cpp reads the configuration from the model file
    return dcs_dit.DitConfig(level_sizes=[2, 1, 3], latent_channels=3, width=12, heads=2, layers=2, mlp_ratio=2,
                             freq_dim=8, num_classes=3)


def dit_golden(case, levels, split, seed):
    cfg = tiny_config()
    model = dcs_dit.DcsDit(cfg)
    g = generator(seed)
    with torch.no_grad():
        for p in model.dit_parameters().values():
            p.copy_((torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.3).double())
    model.latent_mean = [0.1 * i for i in range(cfg.levels() * cfg.latent_channels)]
    model.latent_std = [1.0 + 0.5 * i for i in range(cfg.levels() * cfg.latent_channels)]
    model.save(os.path.join(OUT_DIR, f"dit_{case}.model.safetensors"))
    b, s = 3, cfg.tokens_upto(levels)
    xt = (torch.rand(b, s, cfg.latent_channels, generator=g, dtype=torch.float32) * 4 - 2).double()
    t = (torch.rand(b, generator=g, dtype=torch.float32) * 0.9 + 0.05).double()
    labels = torch.tensor([0, 2, cfg.num_classes], dtype=torch.int64)  # the last is the null label
    proj = (torch.rand(b, s, cfg.latent_channels, generator=g, dtype=torch.float32) * 2 - 1).double()
    v = model(xt, t, labels, levels, split)
    loss = (v * proj).sum()
    params = model.dit_parameters()
    grads = torch.autograd.grad(loss, list(params.values()))
    out = {"xt": xt, "t": t, "labels": labels.to(torch.int32), "proj": proj, "v": v.detach()}
    for (name, _), gr in zip(params.items(), grads):
        out["grad." + name] = gr
    write_safetensors(f"dit_{case}", out, {"levels": levels, "split": split})


if __name__ == "__main__":
    dit_golden("joint", 3, 0, 91)        # all levels noisy
    dit_golden("progressive", 3, 3, 92)  # levels 1-2 (3 tokens) clean, level 3 noisy
    dit_golden("prefix", 2, 0, 93)       # the first two levels only
