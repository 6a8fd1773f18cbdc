"""Model-level goldens for the conventional baseline autoencoder (dcsldm/baseline/vit_autoencoder.hpp), from
the PyTorch reference scripts/torch_ref/vit_ae.py.

Per case (1D latent with N latent tokens; 2D latent, one token per patch): a tiny model with seeded random
parameters (std 0.3; norm weights 1 + N(0, 0.3); float32-representable) written as
vit_ae_<case>.model.safetensors, and vit_ae_<case>.safetensors with x (B, R, R, C), z = encode(x), y =
decode(z), proj (like y) and the gradients of L = sum(decode(encode(x)) * proj) w.r.t. every parameter as
"grad.<name>".
"""
import os
import sys

import torch

from common import OUT_DIR, fill_random, generator, write_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ref"))
import vit_ae  # noqa: E402


def vit_ae_golden(case, latent_tokens, seed):
    # tests/tok/test_vit_autoencoder.cpp reads the configuration from the model file
    cfg = vit_ae.VitAeConfig(res=6, patch=3, channels=2, width=8, heads=2, layers=1, mlp_ratio=2,
                             latent_tokens=latent_tokens, latent_channels=2)
    model = vit_ae.VitAE(cfg)
    g = generator(seed)
    fill_random(model.ae_parameters(), g, norm_weight=lambda n: "ln" in n and n.endswith(".weight"))
    model.save(os.path.join(OUT_DIR, f"vit_ae_{case}.model.safetensors"))
    x = torch.rand(2, cfg.res, cfg.res, cfg.channels, generator=g, dtype=torch.float32).double()
    proj = (torch.rand(2, cfg.res, cfg.res, cfg.channels, generator=g, dtype=torch.float32) * 2 - 1).double()
    z = model.encode(x)
    y = model.decode(z)
    params = model.ae_parameters()
    grads = torch.autograd.grad((y * proj).sum(), list(params.values()))
    out = {"x": x, "proj": proj, "z": z.detach(), "y": y.detach()}
    for (name, _), gr in zip(params.items(), grads):
        out["grad." + name] = gr
    write_safetensors(f"vit_ae_{case}", out, {"latent_tokens": latent_tokens})


if __name__ == "__main__":
    vit_ae_golden("latent1d", 3, 101)  # 3 latent tokens (the 1D-latent baseline of docs/tokenizer.md)
    vit_ae_golden("latent2d", 0, 102)  # one latent token per patch (the conventional LDM's autoencoder)
