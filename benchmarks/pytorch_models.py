#!/usr/bin/python3
"""PyTorch (CPU) timings of the whole-model cases of bench_dcsldm (benchmarks/bench_models.cpp), with the
PyTorch reference of the models (scripts/torch_ref: dcs_tok.py, dcs_dit.py) loaded from the same shipped
model files, in float32, for compare_pytorch.sh.

Run with Debian's /usr/bin/python3 (python3-torch 1.13.1). Prints JSON to stdout:
  {"context": {...}, "times_s": {"<case>": seconds per call}}
with <case> the bench_dcsldm name without its implementation part, e.g. "model_decode/res:448/batch:1".
Each time is the median over --repetitions of the mean over as many calls as fill --min-time seconds.

The cases do what the C++ ones do:
  model_tok_train   encode (28 px) -> z + 0.05 N(0,1) -> decode all levels (28 px) -> L1 + MSE + 1e-3 mean(z^2),
                    backward, clip_grad_norm_(1), AdamW (foreach), EMA (foreach), loss read back
  model_dit_train   rectified flow on random latents normalised by the model's statistics: t logit-normal,
                    a clean prefix of levels with probability 0.3, MSE on the noisy tokens, backward,
                    clipping, AdamW, EMA, loss read back
  model_encode / model_decode   inference (torch.inference_mode), all levels
  model_generate    50 Euler steps over all levels with classifier-free guidance 1.5 (one DiT call on the
                    doubled batch per step), de-normalisation, decode at 28 px
"""
import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "torch_ref"))
import dcs_dit  # noqa: E402
import dcs_tok  # noqa: E402
from pytorch_ops import timeit  # noqa: E402  (same timing rule as the op-level comparison)


def latent_stats(dit):
    """The DiT's per-(level, channel) latent mean and std, expanded to (N, c) token rows."""
    c = dit.config
    lev = torch.tensor(c.token_levels(c.levels())) - 1
    mean = torch.tensor(dit.latent_mean, dtype=torch.float32).reshape(c.levels(), c.latent_channels)[lev]
    std = torch.tensor(dit.latent_std, dtype=torch.float32).reshape(c.levels(), c.latent_channels)[lev]
    return mean, std


def training_state(params, lr, weight_decay):
    """AdamW (foreach) and an EMA copy, as the C++ trainers keep them."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, foreach=True)
    return opt, [p.detach().clone() for p in params]


def finish_step(loss, params, opt, ema, decay=0.999):
    """The end of a training step on both sides: backward, clipping to norm 1, AdamW, EMA, loss read back."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    with torch.no_grad():
        torch._foreach_mul_(ema, decay)
        torch._foreach_add_(ema, params, alpha=1.0 - decay)
    return loss.item()


def tok_train_case(path, batch):
    tok = dcs_tok.DcsTok.load(path, torch.float32)
    c = tok.config
    params = list(tok.parameters())
    opt, ema = training_state(params, 8e-4, 0.02)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 1, 28, 28, c.channels, generator=g)
    target = torch.rand(batch, 1, 28, 28, c.channels, generator=g)
    levels = c.levels()

    def step():
        opt.zero_grad(set_to_none=False)
        z = tok.encode(x)
        y = tok.decode(z + 0.05 * torch.randn_like(z), levels, 1, 28, 28)
        d = y - target
        return finish_step(d.abs().mean() + (d * d).mean() + 1e-3 * (z * z).mean(), params, opt, ema)

    return step


def dit_train_case(path, batch):
    dit = dcs_dit.DcsDit.load(path, torch.float32)
    c = dit.config
    params = list(dit.parameters())
    opt, ema = training_state(params, 5e-4, 0.0)
    n, ch, levels = c.latent_tokens(), c.latent_channels, c.levels()
    mean, std = latent_stats(dit)
    g = torch.Generator().manual_seed(2)
    data = torch.rand(256, n, ch, generator=g) * 2 - 1
    labels_all = torch.arange(256) % max(c.num_classes, 1)
    step_no = [0]

    def step():
        gs = torch.Generator().manual_seed(1000 + step_no[0])
        step_no[0] += 1
        split = 0
        if levels > 1 and torch.rand(1, generator=gs).item() < 0.3:
            split = c.tokens_upto(int(torch.randint(1, levels, (1,), generator=gs)))
        idx = torch.randint(0, 256, (batch,), generator=gs)
        x0 = (data[idx] - mean) / std
        t = torch.sigmoid(torch.randn(batch, generator=gs))
        eps = torch.randn(batch, n, ch, generator=gs)
        labels = labels_all[idx]
        drop = torch.rand(batch, generator=gs) < 0.1
        labels = torch.where(drop, torch.full_like(labels, c.num_classes), labels)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * eps
        xt[:, :split] = x0[:, :split]
        opt.zero_grad(set_to_none=False)
        v = dit(xt, t, labels, levels, split)
        d = (v - (eps - x0))[:, split:]
        return finish_step((d * d).mean(), params, opt, ema)

    return step


def codec_case(path, decode, res, batch):
    tok = dcs_tok.DcsTok.load(path, torch.float32)
    c = tok.config
    g = torch.Generator().manual_seed(3)
    x = torch.rand(batch, 1, res, res, c.channels, generator=g)
    with torch.inference_mode():
        z = tok.encode(x)

    def call():
        with torch.inference_mode():
            return tok.decode(z, c.levels(), 1, res, res) if decode else tok.encode(x)

    return call


def generate_case(tok_path, dit_path, batch, steps=50, scale=1.5, res=28):
    tok = dcs_tok.DcsTok.load(tok_path, torch.float32)
    dit = dcs_dit.DcsDit.load(dit_path, torch.float32)
    c = dit.config
    n, ch, levels = c.latent_tokens(), c.latent_channels, c.levels()
    mean, std = latent_stats(dit)
    labels = torch.cat([torch.arange(batch) % 10, torch.full((batch,), c.num_classes)])
    ts = [1.0 - i / steps for i in range(steps + 1)]

    def call():
        with torch.inference_mode():
            z = torch.randn(batch, n, ch, generator=torch.Generator().manual_seed(4))
            for i in range(steps):
                v = dit(torch.cat([z, z]), torch.full((2 * batch,), ts[i]), labels, levels, 0)
                vc, vn = v[:batch], v[batch:]
                z = z + (ts[i + 1] - ts[i]) * (vn + scale * (vc - vn))
            return tok.decode(z * std + mean, tok.config.levels(), 1, res, res)

    return call


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--filter", default="", help="run the cases whose name contains this string")
    ap.add_argument("--models", default=os.environ.get("DCSLDM_MODELS_DIR", os.path.join(ROOT, "examples", "models")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok_path = os.path.join(a.models, "fmnist_tok.safetensors")
    dit_path = os.path.join(a.models, "fmnist_dit.safetensors")
    cases = []
    for b in (1, 32):
        cases.append((f"model_tok_train/batch:{b}", lambda b=b: tok_train_case(tok_path, b)))
    for b in (1, 64):
        cases.append((f"model_dit_train/batch:{b}", lambda b=b: dit_train_case(dit_path, b)))
    for decode in (False, True):
        for b in (1, 32):
            for r in (28, 112, 448):
                if b > 1 and r > 112:
                    continue
                name = f"{'model_decode' if decode else 'model_encode'}/res:{r}/batch:{b}"
                cases.append((name, lambda d=decode, r=r, b=b: codec_case(tok_path, d, r, b)))
    for b in (1, 10):
        cases.append((f"model_generate/batch:{b}", lambda b=b: generate_case(tok_path, dit_path, b)))
    times = {}
    for name, make in cases:
        if a.filter and a.filter not in name:
            continue
        times[name] = timeit(make(), a.min_time, a.repetitions)
        print(f"# {name}: {times[name] * 1e3:.2f} ms", file=sys.stderr)
    ctx = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "mkldnn": torch.backends.mkldnn.is_available(), "config": torch.__config__.parallel_info().splitlines()[:6]}
    json.dump({"context": ctx, "times_s": times}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
