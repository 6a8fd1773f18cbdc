"""Goldens for dcsldm/optim: torch.optim.AdamW over several steps with decayed and non-decayed tensors,
and torch.nn.utils.clip_grad_norm_ (clipping active and inactive)."""
import torch

from common import generator, rand, write_safetensors

# Tensors in declaration order: (name, shape, decayed). The C++ arena reorders them (decayed first).
TENSORS = [("bias", (5,), False), ("weight", (5, 3), True), ("norm", (2, 1, 3), False),
           ("w2", (2, 3, 2, 2), True), ("empty", (0,), True)]
STEPS = 4
LRS = [1e-2, 3e-2, 2e-2, 5e-3]


def adamw_goldens():
    g = generator(11)
    cfg = dict(betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    params = {n: rand(*s, gen=g) for n, s, _ in TENSORS}
    t = {f"p0.{n}": p.detach().clone() for n, p in params.items()}
    decayed = [params[n] for n, _, d in TENSORS if d]
    plain = [params[n] for n, _, d in TENSORS if not d]
    opt = torch.optim.AdamW([{"params": decayed}, {"params": plain, "weight_decay": 0.0}], lr=LRS[0],
                            foreach=False, **cfg)
    for s in range(STEPS):
        for n, p in params.items():
            gr = rand(*p.shape, gen=g, lo=-2.0, hi=2.0).detach()
            p.grad = gr
            t[f"g{s}.{n}"] = gr.clone()
        for group in opt.param_groups:
            group["lr"] = LRS[s]
        opt.step()
    for n, p in params.items():
        t[f"p{STEPS}.{n}"] = p.detach().clone()
        t[f"m{STEPS}.{n}"] = opt.state[p]["exp_avg"].clone()
        t[f"v{STEPS}.{n}"] = opt.state[p]["exp_avg_sq"].clone()
    meta = {"steps": STEPS, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}
    meta.update({f"lr{s}": repr(lr) for s, lr in enumerate(LRS)})
    write_safetensors("adamw", t, meta)


def clip_goldens():
    g = generator(12)
    t = {}
    for case, max_norm in (("clip", 1.5), ("noclip", 100.0)):
        ps = [torch.zeros(*s, requires_grad=True) for _, s, _ in TENSORS]
        for (n, _, _), p in zip(TENSORS, ps):
            p.grad = rand(*p.shape, gen=g).detach()
            t[f"{case}.g.{n}"] = p.grad.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        for (n, _, _), p in zip(TENSORS, ps):
            t[f"{case}.out.{n}"] = p.grad.clone()
        t[f"{case}.norm"] = total.reshape(1)
        t[f"{case}.max_norm"] = torch.tensor([max_norm])
    write_safetensors("clip_grad", t)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    adamw_goldens()
    clip_goldens()
