#!/usr/bin/python3
"""PyTorch (CPU) timings of the ops in bench_dcsldm, at the same shapes, for compare_pytorch.sh.

Run with Debian's /usr/bin/python3 (python3-torch 1.13.1). Prints JSON to stdout:
  {"context": {...}, "times_s": {"<case>": seconds per call}}
where <case> is the bench_dcsldm name without its implementation part, e.g.
"gemm_fwd_NT/tokens:256/width:128" (bench_dcsldm: "gemm_fwd_NT/dcsldm/tokens:256/width:128").
Each time is the median over --repetitions of the mean over as many calls as fill --min-time seconds.
The ops mirror bench_dcsldm: GEMMs as torch.mm on contiguous tensors (the transposes are views, as BLAS
sees them), attention as explicit projections + softmax(Q K^T / sqrt(hd)) V (PyTorch 1.13 has no fused
CPU attention), LayerNorm + GELU(erf) with autograd for the backward cases.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def timeit(fn, min_time, repetitions):
    fn()  # warm-up (allocations, thread pools)
    fn()
    # calls per repetition so that one repetition takes about min_time
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_time / one))
    means = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        means.append((time.perf_counter() - t0) / n)
    return statistics.median(means)


def rand(*shape, scale=1.0):
    return (torch.rand(*shape, dtype=torch.float32) * 2 - 1) * scale


def gemm_cases():
    for tokens in (256, 1024):
        for width in (128, 256, 512, 1024):
            x = rand(tokens, width, scale=0.5)
            w = rand(width, width, scale=0.5)
            dy = rand(tokens, width, scale=0.5)
            y = torch.empty(tokens, width)
            dw = torch.zeros(width, width)
            suffix = f"tokens:{tokens}/width:{width}"
            # y = x W^T, dx = dy W, dW += dy^T x (the linear layer's three products)
            yield f"gemm_fwd_NT/{suffix}", (lambda x=x, w=w, y=y: torch.mm(x, w.t(), out=y))
            yield f"gemm_bwd_dx_NN/{suffix}", (lambda dy=dy, w=w, y=y: torch.mm(dy, w, out=y))
            yield f"gemm_bwd_dw_TN/{suffix}", (lambda dy=dy, x=x, dw=dw: dw.addmm_(dy.t(), x))


def attention(x, wq, bq, wk, bk, wv, bv, wo, bo, heads):
    b, t, c = x.shape
    hd = c // heads
    q = F.linear(x, wq, bq).view(b, t, heads, hd).transpose(1, 2)  # (B, H, T, hd)
    k = F.linear(x, wk, bk).view(b, t, heads, hd).transpose(1, 2)
    v = F.linear(x, wv, bv).view(b, t, heads, hd).transpose(1, 2)
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
    o = torch.matmul(torch.softmax(s, dim=-1), v)  # (B, H, T, hd)
    return F.linear(o.transpose(1, 2).reshape(b, t, c), wo, bo)


def attention_cases():
    for (b, t, c, h) in ((32, 81, 128, 4), (64, 32, 128, 4), (8, 256, 256, 4), (1, 1024, 512, 8)):
        name = f"B:{b}/T:{t}/C:{c}/H:{h}"
        x = rand(b, t, c)
        params = []
        for _ in range(4):
            params += [rand(c, c, scale=1 / math.sqrt(c)).requires_grad_(), rand(c, scale=0.1).requires_grad_()]
        xg = x.clone().requires_grad_()
        dy = rand(b, t, c)

        def fwd(x=x, params=params, h=h):
            with torch.no_grad():
                attention(x, *params, h)

        y = attention(xg, *params, h)
        yield f"attention_fwd/{name}", fwd
        yield f"attention_bwd/{name}", (lambda y=y, dy=dy: y.backward(dy, retain_graph=True))


def ln_gelu_cases():
    for rows in (2048,):
        for width in (256, 1024):
            name = f"rows:{rows}/width:{width}"
            x = rand(rows, width, scale=2.0)
            w = rand(width).requires_grad_()
            b = rand(width, scale=0.5).requires_grad_()
            xg = x.clone().requires_grad_()
            dy = rand(rows, width)

            def fwd(x=x, w=w, b=b, width=width):
                with torch.no_grad():
                    F.gelu(F.layer_norm(x, (width,), w, b, 1e-5))

            y = F.gelu(F.layer_norm(xg, (width,), w, b, 1e-5))
            yield f"layernorm_gelu_fwd/{name}", fwd
            yield f"layernorm_gelu_bwd/{name}", (lambda y=y, dy=dy: y.backward(dy, retain_graph=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--filter", default="", help="substring of the case names to run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    times = {}
    for gen in (gemm_cases, attention_cases, ln_gelu_cases):
        for name, fn in gen():
            if args.filter and args.filter not in name:
                continue
            times[name] = timeit(fn, args.min_time, args.repetitions)
            print(f"pytorch_ops: {name}: {times[name] * 1e3:.3f} ms", file=sys.stderr)
    ctx = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
    }
    json.dump({"context": ctx, "times_s": times}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
