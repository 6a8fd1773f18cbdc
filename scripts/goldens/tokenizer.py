"""Model-level goldens for the DCS-Tok tokenizer (dcsldm/tok/model.hpp), from the PyTorch reference
scripts/torch_ref/dcs_tok.py.

Per case: a tiny model with seeded random parameters (std 0.3; norm weights 1 + N(0, 0.3); every tensor
non-trivial, all float32-representable) written as a dcsldm model file tokenizer_<case>.model.safetensors,
and tokenizer_<case>.safetensors with
  x (B, T, H, W, C) on a grid with non-integer patch sizes, z = encode(x) (B, N, c),
  y<m> = decode(z, m) at another output size for m = 1..L, proj (like y), and for m = grad_m the gradients
  of L = sum(y * proj) w.r.t. every parameter as "grad.<name>" (through decode and encode).
Metadata: the output size and fps of input and output, levels, grad_m.
"""
import os
import sys

import torch

from common import OUT_DIR, fill_random, generator, write_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ref"))
import dcs_tok  # noqa: E402


def tiny_config(queries, kt, level_count_embedding=False):
    # tests/tok/test_tokenizer.cpp's tiny_config(), with the number of queries and kt of the case
    return dcs_tok.TokenizerConfig(channels=2, k=2, kt=kt, queries=queries, pixel_width=8, pixel_heads=2, freqs=2,
                                   pos_freqs=2, width=16, heads=2, enc_layers=1, dec_layers=1, mlp_ratio=2,
                                   head_hidden=8, level_sizes=[1, 2], latent_channels=3,
                                   level_count_embedding=level_count_embedding)


def random_model(cfg, seed):
    model = dcs_tok.DcsTok(cfg, torch.float64)
    fill_random(model.tok_parameters(), generator(seed), norm_weight=lambda n: ".ln" in n and n.endswith(".weight"))
    return model


def tokenizer_golden(case, cfg, x_shape, fps_in, out_size, fps_out, grad_m, seed):
    model = random_model(cfg, seed)
    model.save(os.path.join(OUT_DIR, f"tokenizer_{case}.model.safetensors"))
    g = generator(seed + 1)
    x = torch.rand(*x_shape, generator=g, dtype=torch.float32).double()
    b, c = x_shape[0], cfg.channels
    t, h, w = out_size
    proj = (torch.rand(b, t, h, w, c, generator=g, dtype=torch.float32) * 2 - 1).double()
    out = {"x": x, "proj": proj}
    with torch.no_grad():
        z = model.encode(x, fps_in)
        out["z"] = z
        for m in range(1, cfg.levels() + 1):
            out[f"y{m}"] = model.decode(z, m, t, h, w, fps_out)
    params = model.tok_parameters()
    loss = (model.decode(model.encode(x, fps_in), grad_m, t, h, w, fps_out) * proj).sum()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    for (name, p), gr in zip(params.items(), grads):
        out["grad." + name] = torch.zeros_like(p) if gr is None else gr
    meta = {"case": case, "fps_in": fps_in, "fps_out": fps_out, "out_t": t, "out_h": h, "out_w": w,
            "levels": cfg.levels(), "grad_m": grad_m, "loss": repr(loss.item())}
    write_safetensors(f"tokenizer_{case}", out, meta)


if __name__ == "__main__":
    # Image: 5x7 pixels on the 2x3 patch grid (non-integer patch sizes), decoded at 6x9 (2x3 patches again,
    # other patch sizes); gradients with both levels.
    tokenizer_golden("image", tiny_config(2, 0.0), (2, 1, 5, 7, 2), 0.0, (1, 6, 9), 0.0, 2, 81)
    # Video: one query per patch, 4 frames at 4 fps with kt = 2 (2 temporal patches of 2 frames), decoded to
    # 2 frames at 2 fps (2 temporal patches of 1 frame); gradients with the first level only.
    tokenizer_golden("video", tiny_config(1, 2.0), (2, 4, 5, 7, 2), 4.0, (2, 6, 9), 2.0, 1, 82)
    # The image case with the level-count embedding: every decode adds its own row; gradients with the first
    # level only (row 2 of the table gets none).
    tokenizer_golden("image_level_count", tiny_config(2, 0.0, True), (2, 1, 5, 7, 2), 0.0, (1, 6, 9), 0.0, 1, 83)
